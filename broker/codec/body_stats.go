package codec

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Bodies of RocketMQ's admin statistics and configuration requests, as the Java broker writes
// them with fastjson: GET_BROKER_RUNTIME_INFO's KVTable, GET_TOPIC_STATS_INFO's
// TopicStatsTable, GET_CONSUME_STATS's ConsumeStats, the SubscriptionGroupConfig of
// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, and the java.util.Properties text of GET_BROKER_CONFIG
// and UPDATE_BROKER_CONFIG.
//
// fastjson writes a map whose keys are objects (a MessageQueue) with the object itself as the
// key, which is not JSON: {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{...}}}.
// The encoders here write exactly that (fields in fastjson's alphabetical order); the decoders
// read it, and also keys that are strings holding such an object, with the scanner of
// DecodeResetOffsetBody (body_conn.go): they read bodies from outside (adminclient) and must
// not panic on any input.

// compareMQ orders queues by topic, broker group and queue id.
func compareMQ(a, b MessageQueue) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), strings.Compare(a.BrokerName, b.BrokerName), cmp.Compare(a.QueueID, b.QueueID))
}

// KVTable is GET_BROKER_RUNTIME_INFO's body: {"table":{"key":"value",...}}, every value a
// string. encoding/json writes the keys sorted.
type KVTable struct {
	Table map[string]string `json:"table"`
}

// DecodeKVTable reads a KVTable body.
func DecodeKVTable(b []byte) (KVTable, error) {
	var t KVTable
	if err := json.Unmarshal(b, &t); err != nil {
		return KVTable{}, fmt.Errorf("runtime info: %w", err)
	}
	if t.Table == nil {
		t.Table = map[string]string{}
	}
	return t, nil
}

// TopicOffset is one queue of a TopicStatsTable (Java's TopicOffset).
type TopicOffset struct {
	LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"` // store time of the queue's last message (ms), 0 if none
	MaxOffset           int64 `json:"maxOffset"`
	MinOffset           int64 `json:"minOffset"`
}

// QueueTopicOffset is a TopicOffset with its queue.
type QueueTopicOffset struct {
	Queue MessageQueue
	TopicOffset
}

// TopicStatsTable is GET_TOPIC_STATS_INFO's body: each queue's offsets.
type TopicStatsTable struct {
	Offsets []QueueTopicOffset // sorted by queue
}

// Encode writes the table as fastjson does: {"offsetTable":{{mq}:{offsets},...}}.
func (t TopicStatsTable) Encode() []byte {
	qs := slices.Clone(t.Offsets)
	slices.SortFunc(qs, func(a, b QueueTopicOffset) int { return compareMQ(a.Queue, b.Queue) })
	var buf bytes.Buffer
	buf.WriteString(`{"offsetTable":{`)
	for i, q := range qs {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeMQEntry(&buf, q.Queue, q.TopicOffset)
	}
	buf.WriteString(`}}`)
	return buf.Bytes()
}

// DecodeTopicStatsTable reads a TopicStatsTable body, queues sorted.
func DecodeTopicStatsTable(b []byte) (TopicStatsTable, error) {
	var t TopicStatsTable
	err := decodeMQTable(b, "topic stats", "offsetTable", nil, func(mq MessageQueue, v []byte) error {
		var o TopicOffset
		if err := json.Unmarshal(v, &o); err != nil {
			return err
		}
		t.Offsets = append(t.Offsets, QueueTopicOffset{Queue: mq, TopicOffset: o})
		return nil
	})
	if err != nil {
		return TopicStatsTable{}, err
	}
	slices.SortFunc(t.Offsets, func(a, b QueueTopicOffset) int { return compareMQ(a.Queue, b.Queue) })
	return t, nil
}

// OffsetWrapper is one queue of a ConsumeStats (Java's OffsetWrapper): the queue's max offset
// on the broker, the group's committed offset, and the store time (ms) of the last message the
// group consumed (0 if none).
type OffsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`
	ConsumerOffset int64 `json:"consumerOffset"`
	LastTimestamp  int64 `json:"lastTimestamp"`
}

// QueueOffsetWrapper is an OffsetWrapper with its queue.
type QueueOffsetWrapper struct {
	Queue MessageQueue
	OffsetWrapper
}

// ConsumeStats is GET_CONSUME_STATS's body: a group's offsets on each queue of the topics it
// consumes, and its consume rate (messages per second).
type ConsumeStats struct {
	ConsumeTps float64
	Offsets    []QueueOffsetWrapper // sorted by queue
}

// Encode writes the stats as fastjson does: {"consumeTps":n,"offsetTable":{{mq}:{...},...}}.
func (s ConsumeStats) Encode() []byte {
	qs := slices.Clone(s.Offsets)
	slices.SortFunc(qs, func(a, b QueueOffsetWrapper) int { return compareMQ(a.Queue, b.Queue) })
	var buf bytes.Buffer
	buf.WriteString(`{"consumeTps":`)
	buf.WriteString(strconv.FormatFloat(s.ConsumeTps, 'f', -1, 64))
	buf.WriteString(`,"offsetTable":{`)
	for i, q := range qs {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeMQEntry(&buf, q.Queue, q.OffsetWrapper)
	}
	buf.WriteString(`}}`)
	return buf.Bytes()
}

// DecodeConsumeStats reads a ConsumeStats body, queues sorted.
func DecodeConsumeStats(b []byte) (ConsumeStats, error) {
	var s ConsumeStats
	err := decodeMQTable(b, "consume stats", "offsetTable", map[string]func([]byte) error{
		"consumeTps": func(v []byte) error { return json.Unmarshal(v, &s.ConsumeTps) },
	}, func(mq MessageQueue, v []byte) error {
		var o OffsetWrapper
		if err := json.Unmarshal(v, &o); err != nil {
			return err
		}
		s.Offsets = append(s.Offsets, QueueOffsetWrapper{Queue: mq, OffsetWrapper: o})
		return nil
	})
	if err != nil {
		return ConsumeStats{}, err
	}
	slices.SortFunc(s.Offsets, func(a, b QueueOffsetWrapper) int { return compareMQ(a.Queue, b.Queue) })
	return s, nil
}

// writeMQEntry writes one entry of a fastjson map keyed by MessageQueue.
func writeMQEntry(buf *bytes.Buffer, mq MessageQueue, v any) {
	k, _ := json.Marshal(mq) // plain fields: cannot fail
	val, _ := json.Marshal(v)
	buf.Write(k)
	buf.WriteByte(':')
	buf.Write(val)
}

// maxMQEntries bounds the entries a decoded table may hold.
const maxMQEntries = 1 << 20

// decodeMQTable reads an object (body what, for errors) whose member table is a map keyed by
// MessageQueue in fastjson's shape (or with string keys holding the queue, or null), calling
// entry for each of its entries and other[name] for the object's other members it knows;
// unknown members are skipped. It uses DecodeResetOffsetBody's scanner (body_conn.go).
func decodeMQTable(b []byte, what, table string, other map[string]func([]byte) error, entry func(MessageQueue, []byte) error) error {
	s := &scanner{b: b, what: what}
	s.ws()
	if !s.eat('{') {
		return s.errorf("want an object")
	}
	for fields := 0; ; fields++ {
		if s.ws(); s.eat('}') {
			break
		}
		if fields > 0 {
			if !s.eat(',') {
				return s.errorf("want ',' or '}'")
			}
			s.ws()
		}
		name, err := s.str()
		if err != nil {
			return err
		}
		if s.ws(); !s.eat(':') {
			return s.errorf("want ':'")
		}
		s.ws()
		if name == table {
			if err := s.mqEntries(entry); err != nil {
				return err
			}
			continue
		}
		v, err := s.value()
		if err != nil {
			return err
		}
		if f := other[name]; f != nil {
			if err := f(v); err != nil {
				return s.errorf("%s: %v", name, err)
			}
		}
	}
	if s.ws(); s.i != len(s.b) {
		return s.errorf("trailing bytes")
	}
	return nil
}

// mqEntries reads a map keyed by MessageQueue ({key:value,...} or null), each value raw.
func (s *scanner) mqEntries(entry func(MessageQueue, []byte) error) error {
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return nil
	}
	if !s.eat('{') {
		return s.errorf("want an object")
	}
	for n := 0; ; n++ {
		if s.ws(); s.eat('}') {
			return nil
		}
		if n > 0 {
			if !s.eat(',') {
				return s.errorf("want ',' or '}'")
			}
			s.ws()
		}
		if n >= maxMQEntries {
			return s.errorf("more than %d queues", maxMQEntries)
		}
		k, err := s.value()
		if err != nil {
			return err
		}
		if s.ws(); !s.eat(':') {
			return s.errorf("want ':'")
		}
		s.ws()
		v, err := s.value()
		if err != nil {
			return err
		}
		mq, err := s.queue(k)
		if err != nil {
			return err
		}
		if err := entry(mq, v); err != nil {
			return s.errorf("entry of %s/%s/%d: %v", mq.Topic, mq.BrokerName, mq.QueueID, err)
		}
	}
}

// SubscriptionGroupConfig is Java's SubscriptionGroupConfig: the body of
// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP and one group of GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
type SubscriptionGroupConfig struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums                 int32  `json:"retryQueueNums"`
	RetryMaxTimes                  int32  `json:"retryMaxTimes"`
	BrokerID                       int64  `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
}

// DefaultSubscriptionGroup is the configuration Java gives a group it creates on its own.
func DefaultSubscriptionGroup(name string) SubscriptionGroupConfig {
	return SubscriptionGroupConfig{GroupName: name, ConsumeEnable: true, ConsumeFromMinEnable: true,
		ConsumeBroadcastEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16, WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIdsChangedEnable: true}
}

// DecodeSubscriptionGroup reads a SubscriptionGroupConfig body; the fields it lacks take
// Java's defaults.
func DecodeSubscriptionGroup(b []byte) (SubscriptionGroupConfig, error) {
	c := DefaultSubscriptionGroup("")
	if err := json.Unmarshal(b, &c); err != nil {
		return SubscriptionGroupConfig{}, fmt.Errorf("subscription group: %w", err)
	}
	return c, nil
}

// ConfigProperty is one key and value of a java.util.Properties text (a broker config).
type ConfigProperty struct{ Key, Value string }

// EncodeConfigProperties writes properties as Java's MixAll.properties2String does: "key=value\n"
// each, in the order given.
func EncodeConfigProperties(ps []ConfigProperty) []byte {
	var buf bytes.Buffer
	for _, p := range ps {
		buf.WriteString(p.Key)
		buf.WriteByte('=')
		buf.WriteString(p.Value)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// DecodeConfigProperties reads a properties text leniently, as Properties.load would for the text
// brokers write: blank lines and lines starting with # or ! are skipped; a line is split at
// its first '=' or ':' (the whole line is a key with an empty value without one); keys and
// values are trimmed. Later duplicates win, in the first one's place.
func DecodeConfigProperties(b []byte) []ConfigProperty {
	var out []ConfigProperty
	at := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v := line, ""
		if i := strings.IndexAny(line, "=:"); i >= 0 {
			k, v = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
		if i, ok := at[k]; ok {
			out[i].Value = v
			continue
		}
		at[k] = len(out)
		out = append(out, ConfigProperty{k, v})
	}
	return out
}

// ConsumeStatsHeader is GET_CONSUME_STATS's header (Java's GetConsumeStatsRequestHeader): the
// group, and the one topic to report ("" for every topic the group has offsets on).
type ConsumeStatsHeader struct {
	ConsumerGroup string
	Topic         string
}

func (h *ConsumeStatsHeader) fields(f extFields) {
	f.requiredStr("consumerGroup", &h.ConsumerGroup)
	f.strIf("topic", &h.Topic)
}

// DeleteSubscriptionGroupHeader is DELETE_SUBSCRIPTIONGROUP's header (Java's
// DeleteSubscriptionGroupRequestHeader): the group, and whether its consumer offsets go too,
// which RocketMQ 5 calls cleanOffset and 4.x's admin tools removeOffset (either is read; both
// are written).
type DeleteSubscriptionGroupHeader struct {
	GroupName   string
	CleanOffset bool
}

func (h *DeleteSubscriptionGroupHeader) fields(f extFields) {
	f.requiredStr("groupName", &h.GroupName)
	f.custom(func(r *extReader) { h.CleanOffset = r.bool("cleanOffset") || r.bool("removeOffset") },
		func(w extWriter) { w.bool("cleanOffset", h.CleanOffset); w.bool("removeOffset", h.CleanOffset) })
}
