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

// subscriptionGroupConfig is one group of the GET_ALL_SUBSCRIPTIONGROUP_CONFIG body, with
// Java's defaults (SubscriptionGroupConfig): Sluice keeps no per-group settings.
type subscriptionGroupConfig struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums                 int    `json:"retryQueueNums"`
	RetryMaxTimes                  int    `json:"retryMaxTimes"`
	BrokerID                       int64  `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
}

// dataVersion is RocketMQ's DataVersion: it changes whenever the data it versions does.
type dataVersion struct {
	Timestamp int64 `json:"timestamp"`
	Counter   int64 `json:"counter"`
}

// groupsVersion versions the set of known consumer groups as GET_ALL_SUBSCRIPTIONGROUP_CONFIG
// last reported it.
type groupsVersion struct {
	groups  []string
	version dataVersion
}

// knownGroups are the consumer groups with live members (from heartbeats), committed offsets
// or, on a replica of a group, listed by its master when it last copied them, sorted.
func (b *Broker) knownGroups() []string {
	set := map[string]bool{}
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

// handleAllSubscriptionGroups serves GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201):
// {"subscriptionGroupTable":{"g":{...}},"dataVersion":{...}}, groups in name order.
func (b *Broker) handleAllSubscriptionGroups(req *codec.Command) *codec.Command {
	if resp := b.metaCheck(req); resp != nil {
		return resp
	}
	groups := b.knownGroups()
	if b.groupsVersion.version.Counter == 0 || !slices.Equal(groups, b.groupsVersion.groups) {
		b.groupsVersion = groupsVersion{groups: groups, version: dataVersion{
			Timestamp: b.env.Now().UnixMilli(), Counter: b.groupsVersion.version.Counter + 1}}
	}
	table := make(map[string]subscriptionGroupConfig, len(groups))
	for _, g := range groups {
		table[g] = subscriptionGroupConfig{GroupName: g, ConsumeEnable: true, ConsumeFromMinEnable: true,
			ConsumeBroadcastEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16, WhichBrokerWhenConsumeSlowly: 1,
			NotifyConsumerIdsChangedEnable: true}
	}
	resp := codec.NewResponse(req, codec.Success, "")
	// encoding/json writes map keys sorted, so the same groups give the same bytes.
	resp.Body = mustJSON(struct {
		SubscriptionGroupTable map[string]subscriptionGroupConfig `json:"subscriptionGroupTable"`
		DataVersion            dataVersion                        `json:"dataVersion"`
	}{table, b.groupsVersion.version})
	return resp
}
