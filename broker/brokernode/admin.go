package brokernode

import (
	"errors"
	"maps"
	"slices"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/store"
)

// handleDeleteTopic serves DELETE_TOPIC_IN_BROKER (215): the store deletes the topic's
// configuration, consume queues and consumer offsets (its messages stay in the commit log,
// unreachable); pulls parked on it are answered at once (as for an unknown topic); and the
// broker re-registers so the name servers drop the topic from its routes.
func (b *Broker) handleDeleteTopic(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.TopicHeader](req) // no field can be malformed
	topic := h.Topic
	if err := validTopic(topic); err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	removed, err := b.store.DeleteTopic(topic)
	if errors.Is(err, store.ErrUnknownTopic) {
		return codec.NewResponse(req, codec.TopicNotExist, "topic "+topic+" does not exist on this broker")
	}
	if err != nil {
		b.log.Error("delete topic", "topic", topic, "err", err)
		return codec.NewResponse(req, codec.SystemError, "delete topic "+topic+": "+err.Error())
	}
	b.log.Info("topic deleted", "topic", topic)
	b.forgetCheckpointLogs(removed)
	var parked []queueKey
	for k := range b.parked.byQueue {
		if k.topic == topic {
			parked = append(parked, k)
		}
	}
	slices.SortFunc(parked, func(x, y queueKey) int { return int(x.queue) - int(y.queue) })
	for _, k := range parked {
		b.wakePulls(k)
	}
	b.registerAll()
	return codec.NewResponse(req, codec.Success, "")
}

// forgetCheckpointLogs stops a checkpoint in flight from waiting for the syncs of logs that
// were removed (their sync fails or never completes); the deleted topic's entries need no
// checkpoint, its tombstone covers them.
func (b *Broker) forgetCheckpointLogs(names []string) {
	if b.ckptPending == nil {
		return
	}
	for _, name := range names {
		delete(b.ckptPending, name)
	}
	if len(b.ckptPending) == 0 {
		b.ckptPending = nil
		if err := b.store.FinishCheckpoint(b.ckptUpTo); err != nil {
			b.log.Error("write checkpoint", "err", err)
		}
	}
}

// dataVersion is RocketMQ's DataVersion: it changes whenever the data it versions does.
type dataVersion struct {
	Timestamp int64 `json:"timestamp"`
	Counter   int64 `json:"counter"`
}

// groupsVersion versions the set of known consumer groups and their configurations as
// GET_ALL_SUBSCRIPTIONGROUP_CONFIG last reported them.
type groupsVersion struct {
	groups  []string
	configs []codec.SubscriptionGroupConfig
	version dataVersion
}

// knownGroups are the consumer groups an admin configured, with live members (from
// heartbeats), committed offsets or, on a replica of a group, listed by its master when it
// last copied them, sorted.
func (b *Broker) knownGroups() []string {
	set := map[string]bool{}
	for _, c := range b.store.SubscriptionGroups() {
		set[c.GroupName] = true
	}
	for g := range b.groups.byName {
		set[g] = true
	}
	for _, g := range b.store.OffsetGroups() {
		set[g] = true
	}
	if b.repl != nil {
		for _, g := range b.repl.meta.groups { // copied from the master (metasync.go)
			set[g] = true
		}
	}
	delete(set, delayProgressGroup) // the delay levels' progress, not a consumer group
	return slices.Sorted(maps.Keys(set))
}

// allGroupsBody is GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body, Java's
// SubscriptionGroupWrapper, plus Sluice's configuredGroups: the groups an admin configured (a
// slave stores those, and lists the others as its master does; Java's parser ignores it).
type allGroupsBody struct {
	SubscriptionGroupTable map[string]codec.SubscriptionGroupConfig `json:"subscriptionGroupTable"`
	DataVersion            dataVersion                              `json:"dataVersion"`
	ConfiguredGroups       []string                                 `json:"configuredGroups,omitempty"`
}

// handleAllSubscriptionGroups serves GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201):
// {"subscriptionGroupTable":{"g":{...}},"dataVersion":{...}}, groups in name order: the
// configuration an admin gave a group (subgroups.go), else Java's defaults
// (codec.DefaultSubscriptionGroup).
func (b *Broker) handleAllSubscriptionGroups(req *codec.Command) *codec.Command {
	if resp := b.metaCheck(req); resp != nil {
		return resp
	}
	groups, configs := b.knownGroups(), b.store.SubscriptionGroups()
	if v := b.groupsVersion; v.version.Counter == 0 || !slices.Equal(groups, v.groups) || !slices.Equal(configs, v.configs) {
		b.groupsVersion = groupsVersion{groups: groups, configs: configs, version: dataVersion{
			Timestamp: b.env.Now().UnixMilli(), Counter: v.version.Counter + 1}}
	}
	table := make(map[string]codec.SubscriptionGroupConfig, len(groups))
	for _, g := range groups {
		c, ok := b.store.SubscriptionGroup(g)
		if !ok {
			c = codec.DefaultSubscriptionGroup(g)
		}
		table[g] = c
	}
	var configured []string
	for _, c := range configs {
		configured = append(configured, c.GroupName)
	}
	resp := codec.NewResponse(req, codec.Success, "")
	// encoding/json writes map keys sorted, so the same groups give the same bytes.
	resp.Body = mustJSON(allGroupsBody{table, b.groupsVersion.version, configured})
	return resp
}
