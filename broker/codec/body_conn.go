package codec

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The bodies of the connection, offset-reset and controller admin requests, in RocketMQ's
// shapes: GET_CONSUMER_CONNECTION_LIST (ConsumerConnection), GET_PRODUCER_CONNECTION_LIST
// (ProducerConnection), INVOKE_BROKER_TO_RESET_OFFSET and RESET_CONSUMER_CLIENT_OFFSET
// (ResetOffsetBody) and CONTROLLER_GET_SYNC_STATE_DATA (BrokerReplicasInfo). Java writes them
// with fastjson, fields in name order; the json tags here are in that order too, so
// encoding/json writes the same bytes.

// Connection is one connected client (Java's Connection): its client id, remote address,
// language (LanguageCode's name: JAVA, GO, CPP...) and MQVersion ordinal.
type Connection struct {
	ClientAddr string `json:"clientAddr"`
	ClientID   string `json:"clientId"`
	Language   string `json:"language"`
	Version    int32  `json:"version"`
}

// SubscriptionData is a consumer group's subscription to one topic, as Java's
// SubscriptionData encodes it.
type SubscriptionData struct {
	ClassFilterMode bool     `json:"classFilterMode"`
	CodeSet         []int32  `json:"codeSet"`
	ExpressionType  string   `json:"expressionType"`
	SubString       string   `json:"subString"`
	SubVersion      int64    `json:"subVersion"`
	TagsSet         []string `json:"tagsSet"`
	Topic           string   `json:"topic"`
}

// NewSubscriptionData is the subscription a client's expression makes, with the tag set and
// the tags' Java hash codes that Java's FilterAPI.buildSubscriptionData derives from a TAG
// expression ("a || b"; "*" or empty: every tag, an empty set).
func NewSubscriptionData(topic, exprType, subString string, subVersion int64) SubscriptionData {
	if exprType == "" {
		exprType = "TAG"
	}
	sd := SubscriptionData{CodeSet: []int32{}, ExpressionType: exprType, SubString: subString,
		SubVersion: subVersion, TagsSet: []string{}, Topic: topic}
	if exprType != "TAG" || subString == "" || subString == "*" {
		return sd
	}
	for _, t := range strings.Split(subString, "||") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(sd.TagsSet, t) {
			sd.TagsSet = append(sd.TagsSet, t)
			sd.CodeSet = append(sd.CodeSet, int32(TagsHash(t)))
		}
	}
	return sd
}

// ConsumerConnection is GET_CONSUMER_CONNECTION_LIST's answer: the group's connected clients,
// its subscriptions by topic, and how it consumes (ConsumeType: CONSUME_ACTIVELY or
// CONSUME_PASSIVELY; MessageModel: CLUSTERING or BROADCASTING; ConsumeFromWhere:
// CONSUME_FROM_LAST_OFFSET...).
type ConsumerConnection struct {
	ConnectionSet     []Connection                `json:"connectionSet"`
	ConsumeFromWhere  string                      `json:"consumeFromWhere,omitempty"`
	ConsumeType       string                      `json:"consumeType,omitempty"`
	MessageModel      string                      `json:"messageModel,omitempty"`
	SubscriptionTable map[string]SubscriptionData `json:"subscriptionTable"`
}

// ProducerConnection is GET_PRODUCER_CONNECTION_LIST's answer: the group's connected clients.
type ProducerConnection struct {
	ConnectionSet []Connection `json:"connectionSet"`
}

// MessageQueue names one queue of a topic on one broker group.
type MessageQueue struct {
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
	Topic      string `json:"topic"`
}

// QueueOffset is one entry of a ResetOffsetBody's offset table.
type QueueOffset struct {
	Queue  MessageQueue
	Offset int64
}

// maxOffsetTable bounds the entries DecodeResetOffsetBody reads: a broker has at most a few
// thousand queues of a topic.
const maxOffsetTable = 1 << 16

// EncodeResetOffsetBody is a ResetOffsetBody as fastjson writes it, a map whose keys are
// MessageQueue objects (not JSON, but what Java sends and what the official clients parse):
// {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5,...}}. Entries are written
// sorted by topic, broker and queue.
func EncodeResetOffsetBody(table []QueueOffset) []byte {
	table = slices.Clone(table)
	slices.SortFunc(table, func(a, b QueueOffset) int {
		return cmp.Or(cmp.Compare(a.Queue.Topic, b.Queue.Topic), cmp.Compare(a.Queue.BrokerName, b.Queue.BrokerName),
			cmp.Compare(a.Queue.QueueID, b.Queue.QueueID))
	})
	var b bytes.Buffer
	b.WriteString(`{"offsetTable":{`)
	for i, e := range table {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.Queue) // plain strings and ints: cannot fail
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(e.Offset, 10))
	}
	b.WriteString("}}")
	return b.Bytes()
}

// DecodeResetOffsetBody reads a ResetOffsetBody's offset table in any of the shapes RocketMQ
// brokers write: fastjson's object keys ({{"brokerName":...}:5}), keys that are JSON strings
// holding the object ({"{\"brokerName\":...}":5}), or gson's list of pairs ([[{...},5]]).
// Entries come back sorted as EncodeResetOffsetBody writes them.
func DecodeResetOffsetBody(body []byte) ([]QueueOffset, error) {
	s := scanner{b: body}
	s.ws()
	if !s.eat('{') {
		return nil, s.errorf("want an object")
	}
	var out []QueueOffset
	for fields := 0; ; fields++ {
		if s.ws(); s.eat('}') {
			break
		}
		if fields > 0 {
			if !s.eat(',') {
				return nil, s.errorf("want ',' or '}'")
			}
			s.ws()
		}
		name, err := s.str()
		if err != nil {
			return nil, err
		}
		if s.ws(); !s.eat(':') {
			return nil, s.errorf("want ':'")
		}
		s.ws()
		if name != "offsetTable" {
			if _, err := s.value(); err != nil {
				return nil, err
			}
			continue
		}
		if out, err = s.offsetTable(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b QueueOffset) int {
		return cmp.Or(cmp.Compare(a.Queue.Topic, b.Queue.Topic), cmp.Compare(a.Queue.BrokerName, b.Queue.BrokerName),
			cmp.Compare(a.Queue.QueueID, b.Queue.QueueID))
	})
	return out, nil
}

// scanner reads the few JSON-like shapes DecodeResetOffsetBody accepts.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("reset offset body: at byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// value skips one JSON value (objects and arrays balanced, strings with their escapes) and
// returns its bytes.
func (s *scanner) value() ([]byte, error) {
	start, depth, inStr := s.i, 0, false
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case inStr && c == '\\':
			s.i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return s.scalar(start)
			}
			depth--
			if depth == 0 {
				s.i++
				return s.b[start:s.i], nil
			}
		case depth == 0 && (c == ',' || c == ':'):
			return s.scalar(start)
		}
	}
	if depth > 0 || inStr {
		return nil, s.errorf("unterminated value")
	}
	return s.scalar(start)
}

func (s *scanner) scalar(start int) ([]byte, error) {
	v := bytes.TrimSpace(s.b[start:s.i])
	if len(v) == 0 {
		return nil, s.errorf("want a value")
	}
	if v[0] == '"' && (len(v) < 2 || v[len(v)-1] != '"') {
		return nil, s.errorf("unterminated string")
	}
	return v, nil
}

func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.errorf("want a string")
	}
	v, err := s.value()
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(v, &out); err != nil {
		return "", s.errorf("bad string: %v", err)
	}
	return out, nil
}

func (s *scanner) offset() (int64, error) {
	v, err := s.value()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, s.errorf("offset %q is not an integer", v)
	}
	return n, nil
}

func (s *scanner) queue(v []byte) (MessageQueue, error) {
	if len(v) > 0 && v[0] == '"' { // a key written as a JSON string holding the object
		var inner string
		if err := json.Unmarshal(v, &inner); err != nil {
			return MessageQueue{}, s.errorf("bad queue key: %v", err)
		}
		v = []byte(inner)
	}
	var mq MessageQueue
	if err := json.Unmarshal(v, &mq); err != nil {
		return MessageQueue{}, s.errorf("bad queue %q: %v", v, err)
	}
	return mq, nil
}

// offsetTable reads the table's value: {key:n,...} or [[key,n],...], or null.
func (s *scanner) offsetTable() ([]QueueOffset, error) {
	var out []QueueOffset
	add := func(k []byte, n int64) error {
		if len(out) >= maxOffsetTable {
			return s.errorf("more than %d queues", maxOffsetTable)
		}
		mq, err := s.queue(k)
		if err != nil {
			return err
		}
		out = append(out, QueueOffset{mq, n})
		return nil
	}
	switch {
	case bytes.HasPrefix(s.b[s.i:], []byte("null")):
		s.i += 4
		return nil, nil
	case s.eat('{'):
		for s.ws(); !s.eat('}'); s.ws() {
			if len(out) > 0 {
				if !s.eat(',') {
					return nil, s.errorf("want ',' or '}'")
				}
				s.ws()
			}
			k, err := s.value()
			if err != nil {
				return nil, err
			}
			if s.ws(); !s.eat(':') {
				return nil, s.errorf("want ':'")
			}
			s.ws()
			n, err := s.offset()
			if err != nil {
				return nil, err
			}
			if err := add(k, n); err != nil {
				return nil, err
			}
		}
	case s.eat('['):
		for s.ws(); !s.eat(']'); s.ws() {
			if len(out) > 0 {
				if !s.eat(',') {
					return nil, s.errorf("want ',' or ']'")
				}
				s.ws()
			}
			if !s.eat('[') {
				return nil, s.errorf("want a [queue, offset] pair")
			}
			s.ws()
			k, err := s.value()
			if err != nil {
				return nil, err
			}
			if s.ws(); !s.eat(',') {
				return nil, s.errorf("want ','")
			}
			s.ws()
			n, err := s.offset()
			if err != nil {
				return nil, err
			}
			if s.ws(); !s.eat(']') {
				return nil, s.errorf("want ']'")
			}
			if err := add(k, n); err != nil {
				return nil, err
			}
		}
	default:
		return nil, errors.New("reset offset body: offsetTable is neither an object nor a list")
	}
	return out, nil
}

// ReplicaIdentity is one replica of a broker group in a BrokerReplicasInfo.
type ReplicaIdentity struct {
	Alive         bool   `json:"alive"`
	BrokerAddress string `json:"brokerAddress"`
	BrokerID      int64  `json:"brokerId"`
	BrokerName    string `json:"brokerName"`
}

// ReplicasInfo is one broker group's master, epochs and replicas, in and out of its in-sync
// set (Java's BrokerReplicasInfo.ReplicasInfo).
type ReplicasInfo struct {
	InSyncReplicas    []ReplicaIdentity `json:"inSyncReplicas"`
	MasterAddress     string            `json:"masterAddress"`
	MasterBrokerID    int64             `json:"masterBrokerId"`
	MasterEpoch       int64             `json:"masterEpoch"`
	NotInSyncReplicas []ReplicaIdentity `json:"notInSyncReplicas"`
	SyncStateSetEpoch int64             `json:"syncStateSetEpoch"`
}

// BrokerReplicasInfo is CONTROLLER_GET_SYNC_STATE_DATA's answer: the groups asked for, by
// broker name. The request's body is the JSON list of broker names.
type BrokerReplicasInfo struct {
	ReplicasInfoTable map[string]ReplicasInfo `json:"replicasInfoTable"`
}
