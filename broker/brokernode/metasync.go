package brokernode

// Metadata synchronisation (RocketMQ 4.x SlaveSynchronize). A broker group replicates its
// commit log record by record (replica.go); the rest of a broker's durable state is not in the
// log: topic configurations (topics.json, with the tombstones of deleted topics), consumer
// offsets (offsets.json, which also hold the delay levels' progress as offsets of group
// %SCHEDULE_PROGRESS% and the transactions' progress as offsets of CID_SYS_RMQ_TRANS) and the
// consumer groups known to admins. A slave copies them from its master every MetaSyncInterval,
// one request after the other, as Java's slave does:
//
//	GET_ALL_TOPIC_CONFIG (21)             -> store.SyncTopics (topics.json, atomic write)
//	GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201) -> the groups it lists (memory, as on the master)
//	GET_ALL_CONSUMER_OFFSET (43)          -> store.SyncOffsets, then offsets.json (atomic write)
//	GET_ALL_DELAY_OFFSET (45)             -> store.SyncOffsets of the delay progress, likewise
//
// The merge rules are store.SyncTopics's and store.SyncOffsets's (broker/store/sync.go): the
// master's topics replace the slave's (tombstones adopted once the slave's log reaches them);
// the master's offsets replace the slave's, clamped to the slave's confirmed queue ends. A
// slave asks with masterEpoch, and only the master at that epoch answers it, so a deposed
// master's metadata is never copied.
//
// After a failover the new master keeps what it has: the offsets it copied last (at most
// MetaSyncInterval old) and any committed to it directly since, and it never copies again
// while it is master; offsets do not move backwards when it takes over. (It answers offset
// queries once it has confirmed the log it took over and raised the offsets it had to clamp,
// store.RaiseClampedOffsets; until then it refuses them, as it refuses pulls.) Consumers therefore
// receive again what they consumed during the last MetaSyncInterval before the failover (and
// what their client had not committed yet). When the old master returns as a slave it takes
// the new master's offsets, even lower ones: the new master is the authority from then on.
// Offsets a consumer commits to a slave directly (a stale route, or reading from slaves while
// the master is away) are overwritten by the next round, as in Java; and a replica elected
// after missing rounds (it was down) has the offsets of its last round.
// The new master reloads the delay levels' progress and rebuilds its transaction bookkeeping
// from the store when it starts its duties (masterRole.maybeStartDuties): delayed messages
// re-put by the old master during the last MetaSyncInterval are re-put again, and transaction
// check counts (kept in memory only) start afresh.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store"
)

// DefaultMetaSyncInterval is how often a slave copies its master's metadata (Java: 10 s).
const DefaultMetaSyncInterval = 3 * time.Second

// metaSyncCodes are the requests of one synchronisation round, in order: topics first, so the
// offsets that follow find their queues.
var metaSyncCodes = []int16{codec.ReqGetAllTopicConfig, codec.ReqGetAllSubscriptionGroup,
	codec.ReqGetAllConsumerOffset, codec.ReqGetAllDelayOffset}

// metaSync is a slave's synchronisation state. It counts group ticks (timers) rather than
// reading the clock, which a clock jump could hold still for long.
type metaSync struct {
	conn   node.ConnID // to the master; 0: not dialled
	opaque int32       // the request in flight (0: none)
	step   int         // index in metaSyncCodes of the request in flight
	// waited counts the ticks the request in flight has waited; idle the ticks until the next
	// round starts.
	waited, idle int
	// groups are the consumer groups the master listed last.
	groups []string
	rounds int // completed rounds, for tests and logs
}

// resetMetaSync drops the connection to the master (a new master, or no longer a slave); the
// next round starts at the next group tick.
func (b *Broker) resetMetaSync() {
	m := &b.repl.meta
	if m.conn != 0 {
		b.env.Close(m.conn)
	}
	m.conn, m.opaque, m.step, m.waited, m.idle = 0, 0, 0, 0, 0
}

// ticks is d in group ticks, at least one.
func ticks(d time.Duration) int { return max(1, int((d+replicaTickInterval-1)/replicaTickInterval)) }

// endRound ends the round (or gives it up) and starts the next after d.
func (b *Broker) endRound(d time.Duration) {
	m := &b.repl.meta
	m.opaque, m.step, m.waited, m.idle = 0, 0, 0, ticks(d)
}

// metaSyncTick (every replica tick of a slave) starts a round when one is due, and gives up a
// request unanswered for too long.
func (b *Broker) metaSyncTick() {
	g, m := b.repl, &b.repl.meta
	if b.cfg.MetaSyncInterval < 0 || g.masterAddr == "" {
		return
	}
	if m.opaque != 0 {
		if m.waited++; m.waited > ticks(2*b.cfg.ControllerTimeout) {
			b.log.Warn("master does not answer a metadata request; retrying later", "master", g.masterAddr, "code", metaSyncCodes[m.step])
			b.resetMetaSync()
			b.endRound(replicaRetryDelay)
		}
		return
	}
	if m.idle > 0 {
		m.idle--
		return
	}
	m.step = 0
	b.sendMetaRequest()
}

func (b *Broker) sendMetaRequest() {
	g, m := b.repl, &b.repl.meta
	if m.conn == 0 {
		m.conn = b.env.Dial(g.masterAddr)
	}
	req := codec.NewRequest(metaSyncCodes[m.step], codec.EncodeHeader(&codec.ReplicaHeader{BrokerID: b.cfg.BrokerID, MasterEpoch: g.epoch}), nil)
	req.Opaque = b.nextOpaque()
	m.opaque, m.waited = req.Opaque, 0
	b.env.Send(m.conn, req)
}

// onMetaSyncAnswer applies one answer and sends the round's next request, or ends the round.
func (b *Broker) onMetaSyncAnswer(resp *codec.Command) {
	g, m := b.repl, &b.repl.meta
	m.opaque = 0
	code := metaSyncCodes[m.step]
	if b.slave() == nil {
		panic("brokernode: a metadata answer matched on a replica that is not a slave (leaving the slave role drops the round)")
	}
	var err error
	if resp.Code != codec.Success {
		err = fmt.Errorf("answered %d: %s", resp.Code, resp.Remark)
	} else {
		err = b.applyMeta(code, resp.Body)
	}
	if resp.Code == codec.ServiceNotAvailable {
		// Not the master at this epoch (yet: the controller told this slave first), or no
		// longer: the controller will say.
		b.log.Info("master refused a metadata request; retrying shortly", "master", g.masterAddr, "code", code, "remark", resp.Remark)
		b.endRound(replicaRetryDelay)
		return
	}
	if err != nil {
		b.log.Warn("metadata sync from the master failed; next round later", "master", g.masterAddr, "code", code, "err", err)
		b.endRound(b.cfg.MetaSyncInterval)
		return
	}
	if m.step++; m.step < len(metaSyncCodes) {
		b.sendMetaRequest()
		return
	}
	b.endRound(b.cfg.MetaSyncInterval)
	m.rounds++
}

// applyMeta applies the master's answer to request code.
func (b *Broker) applyMeta(code int16, body []byte) error {
	switch code {
	case codec.ReqGetAllTopicConfig:
		topics, deleted, err := decodeAllTopics(body)
		if err != nil {
			return err
		}
		res, err := b.store.SyncTopics(topics, deleted)
		if err != nil {
			return err
		}
		if len(res.Deferred) > 0 || len(res.Kept) > 0 {
			b.log.Info("topics synced with exceptions", "deferred", res.Deferred, "kept", res.Kept)
		}
		if res.Changed {
			b.forgetCheckpointLogs(res.Removed)
			b.wakePullsOf(res.Deleted)
			b.registerAll()
		}
	case codec.ReqGetAllSubscriptionGroup:
		groups, configured, err := decodeAllGroups(body)
		if err != nil {
			return err
		}
		if _, err := b.store.SyncSubscriptionGroups(configured); err != nil {
			return fmt.Errorf("persist synced subscription groups: %w", err)
		}
		b.repl.meta.groups = groups
	case codec.ReqGetAllConsumerOffset, codec.ReqGetAllDelayOffset:
		var offs []store.Offset
		var err error
		if code == codec.ReqGetAllConsumerOffset {
			offs, err = decodeAllOffsets(body)
		} else {
			offs, err = decodeDelayOffsets(body)
		}
		if err != nil {
			return err
		}
		res := b.store.SyncOffsets(offs)
		if res.Skipped > 0 {
			b.log.Warn("master's offsets with illegal entries skipped", "code", code, "skipped", res.Skipped)
		}
		// Also when no offset changed: the master's values it had to clamp may have.
		if err := b.store.FlushOffsets(); err != nil {
			return fmt.Errorf("persist synced offsets: %w", err)
		}
	default:
		panic(fmt.Sprintf("brokernode: metadata sync of request code %d", code))
	}
	return nil
}

// wakePullsOf answers the pulls parked on the queues of topics (deleted: they find nothing).
func (b *Broker) wakePullsOf(topics []string) {
	if len(topics) == 0 {
		return
	}
	var parked []queueKey
	for k := range b.parked.byQueue {
		if slices.Contains(topics, k.topic) {
			parked = append(parked, k)
		}
	}
	slices.SortFunc(parked, func(x, y queueKey) int {
		if c := strings.Compare(x.topic, y.topic); c != 0 {
			return c
		}
		return int(x.queue) - int(y.queue)
	})
	for _, k := range parked {
		b.wakePulls(k)
	}
}

// --- the bodies (served by every broker; Java's shapes) ---

// topicConfigJSON is one topic of GET_ALL_TOPIC_CONFIG, in Java's TopicConfig shape.
type topicConfigJSON struct {
	TopicName       string `json:"topicName"`
	ReadQueueNums   int32  `json:"readQueueNums"`
	WriteQueueNums  int32  `json:"writeQueueNums"`
	Perm            int32  `json:"perm"`
	TopicFilterType string `json:"topicFilterType"`
	TopicSysFlag    int32  `json:"topicSysFlag"`
	Order           bool   `json:"order"`
}

// tombstoneJSON is one deleted topic: its messages up to commit-log index UpToIndex are gone.
type tombstoneJSON struct {
	Topic     string `json:"topic"`
	UpToIndex uint64 `json:"upToIndex"`
}

// allTopicsBody is GET_ALL_TOPIC_CONFIG's body, Java's TopicConfigSerializeWrapper, plus
// Sluice's deletedTopics (Java's parser ignores it).
type allTopicsBody struct {
	TopicConfigTable map[string]topicConfigJSON `json:"topicConfigTable"`
	DataVersion      dataVersion                `json:"dataVersion"`
	DeletedTopics    []tombstoneJSON            `json:"deletedTopics,omitempty"`
}

// allOffsetsBody is GET_ALL_CONSUMER_OFFSET's body, Java's ConsumerOffsetSerializeWrapper:
// "topic@group" to queue id to offset. (fastjson writes the queue ids unquoted; Sluice writes
// valid JSON, which fastjson reads too.)
type allOffsetsBody struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

// delayOffsetsBody is GET_ALL_DELAY_OFFSET's body, Java's DelayOffsetSerializeWrapper: delay
// level (1-based) to the next schedule-queue offset to deliver.
type delayOffsetsBody struct {
	OffsetTable map[int32]int64 `json:"offsetTable"`
}

// metaVersion versions one served table: the counter moves when the table's bytes change.
type metaVersion struct {
	last    []byte
	version dataVersion
}

func (v *metaVersion) of(table []byte, now time.Time) dataVersion {
	if v.version.Counter == 0 || string(table) != string(v.last) {
		v.last = table
		v.version = dataVersion{Timestamp: now.UnixMilli(), Counter: v.version.Counter + 1}
	}
	return v.version
}

// metaCheck refuses a metadata request a slave sends (it names the master epoch it follows)
// unless this broker is the master at that epoch; admins' requests (no masterEpoch) are served
// by any broker.
func (b *Broker) metaCheck(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.ReplicaHeader](req)
	if err == nil && h.MasterEpoch == codec.NoMasterEpoch {
		return nil
	}
	return b.masterCheck(req, h.MasterEpoch)
}

// handleAllTopics serves GET_ALL_TOPIC_CONFIG (21).
func (b *Broker) handleAllTopics(req *codec.Command) *codec.Command {
	if resp := b.metaCheck(req); resp != nil {
		return resp
	}
	table := map[string]topicConfigJSON{}
	for _, tc := range b.store.Topics() {
		table[tc.Name] = topicConfigJSON{TopicName: tc.Name, ReadQueueNums: tc.ReadQueueNums,
			WriteQueueNums: tc.WriteQueueNums, Perm: tc.Perm, TopicFilterType: "SINGLE_TAG"}
	}
	deleted := b.store.DeletedTopics()
	var tombs []tombstoneJSON
	for _, name := range slices.Sorted(maps.Keys(deleted)) {
		tombs = append(tombs, tombstoneJSON{Topic: name, UpToIndex: deleted[name]})
	}
	key := mustJSON(struct {
		T map[string]topicConfigJSON
		D []tombstoneJSON
	}{table, tombs})
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(allTopicsBody{TopicConfigTable: table, DataVersion: b.topicsVersion.of(key, b.env.Now()), DeletedTopics: tombs})
	return resp
}

// handleAllOffsets serves GET_ALL_CONSUMER_OFFSET (43): every committed offset but the delay
// levels' progress (GET_ALL_DELAY_OFFSET's), as Java keeps them apart.
func (b *Broker) handleAllOffsets(req *codec.Command) *codec.Command {
	if resp := b.metaCheck(req); resp != nil {
		return resp
	}
	table := map[string]map[int32]int64{}
	for _, o := range b.store.Offsets() {
		if o.Group == delayProgressGroup {
			continue
		}
		k := o.Topic + "@" + o.Group
		if table[k] == nil {
			table[k] = map[int32]int64{}
		}
		table[k][o.QueueID] = o.Offset
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(allOffsetsBody{OffsetTable: table})
	return resp
}

// handleDelayOffsets serves GET_ALL_DELAY_OFFSET (45): each delay level's stored progress.
func (b *Broker) handleDelayOffsets(req *codec.Command) *codec.Command {
	if resp := b.metaCheck(req); resp != nil {
		return resp
	}
	table := map[int32]int64{}
	for _, o := range b.store.Offsets() {
		if o.Group == delayProgressGroup && o.Topic == ScheduleTopic {
			table[o.QueueID+1] = o.Offset
		}
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(delayOffsetsBody{OffsetTable: table})
	return resp
}

// decodeAllTopics reads a GET_ALL_TOPIC_CONFIG body: the topics (checked by the store) and
// the tombstones.
func decodeAllTopics(body []byte) ([]store.TopicConfig, map[string]uint64, error) {
	var doc allTopicsBody
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("topic configs: %w", err)
	}
	var topics []store.TopicConfig
	for _, name := range slices.Sorted(maps.Keys(doc.TopicConfigTable)) {
		tc := doc.TopicConfigTable[name]
		if tc.TopicName != name {
			return nil, nil, fmt.Errorf("topic configs: entry %q names topic %q", name, tc.TopicName)
		}
		topics = append(topics, store.TopicConfig{Name: name, ReadQueueNums: tc.ReadQueueNums,
			WriteQueueNums: tc.WriteQueueNums, Perm: tc.Perm})
	}
	deleted := map[string]uint64{}
	for _, d := range doc.DeletedTopics {
		if _, dup := deleted[d.Topic]; dup || !store.ValidTopicName(d.Topic) {
			return nil, nil, fmt.Errorf("topic configs: tombstone of topic %q (invalid or repeated)", d.Topic)
		}
		deleted[d.Topic] = d.UpToIndex
	}
	return topics, deleted, nil
}

// decodeAllGroups reads a GET_ALL_SUBSCRIPTIONGROUP_CONFIG body: the group names, sorted, and
// the configurations of those an admin configured (configuredGroups), sorted by name.
func decodeAllGroups(body []byte) ([]string, []codec.SubscriptionGroupConfig, error) {
	var doc struct {
		SubscriptionGroupTable map[string]json.RawMessage `json:"subscriptionGroupTable"`
		ConfiguredGroups       []string                   `json:"configuredGroups"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("subscription groups: %w", err)
	}
	groups := slices.Sorted(maps.Keys(doc.SubscriptionGroupTable))
	if slices.Contains(groups, "") {
		return nil, nil, fmt.Errorf("subscription groups: a group without a name")
	}
	var configured []codec.SubscriptionGroupConfig
	for _, name := range slices.Sorted(slices.Values(doc.ConfiguredGroups)) {
		raw, ok := doc.SubscriptionGroupTable[name]
		if !ok {
			return nil, nil, fmt.Errorf("subscription groups: configured group %q is not in the table", name)
		}
		c, err := codec.DecodeSubscriptionGroup(raw)
		if err != nil {
			return nil, nil, err
		}
		if c.GroupName != name {
			return nil, nil, fmt.Errorf("subscription groups: group %q is named %q in its configuration", name, c.GroupName)
		}
		if len(configured) > 0 && configured[len(configured)-1].GroupName == name {
			continue // listed twice
		}
		configured = append(configured, c)
	}
	return groups, configured, nil
}

// decodeAllOffsets reads a GET_ALL_CONSUMER_OFFSET body, sorted; the store checks the values.
func decodeAllOffsets(body []byte) ([]store.Offset, error) {
	var doc allOffsetsBody
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("consumer offsets: %w", err)
	}
	var out []store.Offset
	for _, k := range slices.Sorted(maps.Keys(doc.OffsetTable)) {
		topic, group, ok := strings.Cut(k, "@")
		if !ok || topic == "" || group == "" {
			return nil, fmt.Errorf("consumer offsets: key %q is not topic@group", k)
		}
		qs := doc.OffsetTable[k]
		for _, q := range slices.Sorted(maps.Keys(qs)) {
			out = append(out, store.Offset{Group: group, Topic: topic, QueueID: q, Offset: qs[q]})
		}
	}
	return out, nil
}

// decodeDelayOffsets reads a GET_ALL_DELAY_OFFSET body as the offsets the store keeps them as.
func decodeDelayOffsets(body []byte) ([]store.Offset, error) {
	var doc delayOffsetsBody
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("delay offsets: %w", err)
	}
	var out []store.Offset
	for _, level := range slices.Sorted(maps.Keys(doc.OffsetTable)) {
		if level < 1 || level > store.MaxQueueNums {
			return nil, fmt.Errorf("delay offsets: level %d outside 1..%d", level, store.MaxQueueNums)
		}
		out = append(out, store.Offset{Group: delayProgressGroup, Topic: ScheduleTopic, QueueID: level - 1, Offset: doc.OffsetTable[level]})
	}
	return out, nil
}
