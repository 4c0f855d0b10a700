package adminclient

// Reading and writing messages as mqadmin's message commands do: a pull of a queue's
// messages from its broker group's master without committing an offset (queryMsgByOffset,
// consumeMessage), a queue's offset range and a search by store time, and a send of one
// message (sendMessage).

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// ToolsConsumerGroup is the group mqadmin's pulls run under (Java's MixAll.TOOLS_CONSUMER_GROUP):
// a throwaway group that never commits an offset.
const ToolsConsumerGroup = "TOOLS_CONSUMER"

// ToolsProducerGroup is the producer group sendMessage sends under.
const ToolsProducerGroup = "TOOLS_PRODUCER"

// Queue is one message queue of a topic.
type Queue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

func (q Queue) String() string { return fmt.Sprintf("%s@%s:%d", q.Topic, q.BrokerName, q.QueueID) }

// groupAddr is the address to read brokerName's queues from: its master, else (a group
// without a master) its replica of lowest id.
func groupAddr(r *route.TopicRouteData, brokerName string) (string, error) {
	for _, b := range masters(r) {
		if b.Name == brokerName {
			return b.Addr, nil
		}
	}
	return "", fmt.Errorf("the route names no broker %s", brokerName)
}

// ReadQueues returns a topic's readable queues, sorted by broker name and queue id; a
// non-empty brokerName keeps only that group's.
func (c *Client) ReadQueues(topic, brokerName string) ([]Queue, error) {
	r, err := c.Route(topic)
	if err != nil {
		return nil, err
	}
	out := routeQueues(r, topic, func(qd route.QueueData) (int32, bool) {
		return qd.ReadQueueNums, (brokerName == "" || qd.BrokerName == brokerName) && qd.Perm&route.PermRead != 0
	})
	if len(out) == 0 {
		if brokerName != "" {
			return nil, fmt.Errorf("topic %s has no readable queue on broker %s", topic, brokerName)
		}
		return nil, fmt.Errorf("topic %s has no readable queue", topic)
	}
	return out, nil
}

// queueAddr is the address to read q from.
func (c *Client) queueAddr(q Queue) (string, error) {
	r, err := c.Route(q.Topic)
	if err != nil {
		return "", err
	}
	return groupAddr(r, q.BrokerName)
}

// offsetCall sends an offset request (GET_MIN_OFFSET, GET_MAX_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP)
// about q and returns the offset answered.
func (c *Client) offsetCall(q Queue, code int16, h codec.Header, what string) (int64, error) {
	addr, err := c.queueAddr(q)
	if err != nil {
		return 0, fmt.Errorf("%s of %s: %w", what, q, err)
	}
	resp, err := c.callOK(addr, codec.NewRequest(code, codec.EncodeHeader(h), nil))
	if err != nil {
		return 0, fmt.Errorf("%s of %s: %w", what, q, err)
	}
	oh, err := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
	if err != nil {
		return 0, fmt.Errorf("%s of %s: %s answered no offset: %w", what, q, addr, err)
	}
	return oh.Offset, nil
}

// QueueRange returns q's offset range: its oldest message's offset and the offset its next
// message will get (GET_MIN_OFFSET and GET_MAX_OFFSET).
func (c *Client) QueueRange(q Queue) (minOffset, maxOffset int64, err error) {
	h := &codec.QueueOffsetHeader{Topic: q.Topic, QueueID: int64(q.QueueID), BrokerName: q.BrokerName}
	if minOffset, err = c.offsetCall(q, codec.ReqGetMinOffset, h, "min offset"); err != nil {
		return 0, 0, err
	}
	if maxOffset, err = c.offsetCall(q, codec.ReqGetMaxOffset, h, "max offset"); err != nil {
		return 0, 0, err
	}
	return minOffset, maxOffset, nil
}

// SearchOffset returns the offset of q's first message stored at or after ms
// (SEARCH_OFFSET_BY_TIMESTAMP).
func (c *Client) SearchOffset(q Queue, ms int64) (int64, error) {
	return c.offsetCall(q, codec.ReqSearchOffsetByTimestamp,
		&codec.SearchOffsetHeader{Topic: q.Topic, QueueID: int64(q.QueueID), TimestampMs: ms, BrokerName: q.BrokerName},
		"search offset")
}

// Pulled is the answer to one pull.
type Pulled struct {
	Addr string // the broker asked
	// Status is the answer's code: SUCCESS (Msgs holds what was found), PULL_NOT_FOUND (no
	// message at or after the offset), PULL_RETRY_IMMEDIATELY (none matched) or
	// PULL_OFFSET_MOVED (the offset is outside the queue).
	Status               int16
	NextBeginOffset      int64
	MinOffset, MaxOffset int64
	Msgs                 []*codec.Message
}

// Pull reads up to maxMsgs messages of q from offset, as mqadmin's pull consumer does: a
// PULL_MESSAGE to the group's master under ToolsConsumerGroup with subscription "*" in the
// request, neither committing an offset nor long-polling.
func (c *Client) Pull(q Queue, offset int64, maxMsgs int) (Pulled, error) {
	what := fmt.Sprintf("pull %s at %d", q, offset)
	addr, err := c.queueAddr(q)
	if err != nil {
		return Pulled{}, fmt.Errorf("%s: %w", what, err)
	}
	const subscriptionInRequest = 1 << 2 // the pull sysFlag bits: no commit, no suspend
	resp, err := c.Call(addr, codec.NewRequest(codec.ReqPullMessage, codec.EncodeHeader(&codec.PullHeader{
		ConsumerGroup: ToolsConsumerGroup, Topic: q.Topic, QueueID: int64(q.QueueID), QueueOffset: offset,
		MaxMsgNums: int64(maxMsgs), SysFlag: subscriptionInRequest, CommitOffset: 0, Subscription: "*",
		ExpressionType: "TAG", BrokerName: q.BrokerName,
	}), nil))
	if err != nil {
		return Pulled{}, fmt.Errorf("%s: %w", what, err)
	}
	ph, _ := codec.DecodeHeader[codec.PullResponseHeader](resp) // lenient: no field can be malformed
	p := Pulled{Addr: addr, Status: resp.Code, NextBeginOffset: ph.NextBeginOffset, MinOffset: ph.MinOffset, MaxOffset: ph.MaxOffset}
	switch resp.Code {
	case codec.Success:
		if p.Msgs, err = DecodeRecords(resp.Body); err != nil {
			return Pulled{}, fmt.Errorf("%s from %s: %w", what, addr, err)
		}
		if len(p.Msgs) == 0 {
			return Pulled{}, fmt.Errorf("%s from %s: answered SUCCESS with no message", what, addr)
		}
	case codec.PullNotFound, codec.PullRetryImmediately, codec.PullOffsetMoved:
	default:
		return p, fmt.Errorf("%s: %w", what, &ResponseError{Addr: addr, Code: resp.Code, Remark: resp.Remark})
	}
	return p, nil
}

// Outgoing is a message sendMessage sends.
type Outgoing struct {
	Topic, Tags, Keys string
	Body              []byte
	// Queue, when BrokerName is set and QueueID is 0 or more, is the queue to send to. Otherwise
	// one of the topic's writable queues is chosen, of group BrokerName if set (and another
	// tried after a refusal the official client retries).
	Queue Queue
}

// SendResult is a send's outcome, in RocketMQ's SendResult field names.
type SendResult struct {
	// SendStatus is SEND_OK, or the stored-but-not-confirmed statuses FLUSH_DISK_TIMEOUT,
	// FLUSH_SLAVE_TIMEOUT and SLAVE_NOT_AVAILABLE, as Java names them.
	SendStatus  string `json:"sendStatus"`
	MsgID       string `json:"msgId"` // the UNIQ_KEY the client gave the message
	Queue       Queue  `json:"messageQueue"`
	QueueOffset int64  `json:"queueOffset"`
	OffsetMsgID string `json:"offsetMsgId"`
	RegionID    string `json:"regionId"`
	TraceOn     bool   `json:"traceOn"`
	Addr        string `json:"brokerAddr"`
}

// The response codes of a send that stored the message without the confirmation asked for.
const (
	codeFlushDiskTimeout  int16 = 10
	codeSlaveNotAvailable int16 = 11
	codeFlushSlaveTimeout int16 = 12
)

// sendStatus names a send answer's code as Java's SendStatus does; "" if the send failed.
func sendStatus(code int16) string {
	switch code {
	case codec.Success:
		return "SEND_OK"
	case codeFlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case codeFlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case codeSlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	}
	return ""
}

// autoCreateQueues is how many queues a send asks the broker to create a new topic with (the
// official producer's defaultTopicQueueNums).
const autoCreateQueues = 4

// maxSendAttempts is the official producer's default (retryTimesWhenSendFailed 2, plus one).
const maxSendAttempts = 3

// Send sends one message with SEND_MESSAGE_V2 to the master of its queue's group, with a
// UNIQ_KEY as the official client gives each message. Without a queue named, it tries up to
// three writable queues (another group first) after refusals the official client retries. A
// topic without a route is sent by TBW102's, for the broker to create.
func (c *Client) Send(m Outgoing) (SendResult, error) {
	r, err := c.Route(m.Topic)
	var re *ResponseError
	if errors.As(err, &re) && re.Code == codec.TopicNotExist {
		// As the official producer does: send by the auto-create template's route, to the
		// queues the broker will create the topic with (if it allows).
		if r, err = c.Route(route.DefaultTopic); err == nil {
			for i := range r.QueueDatas {
				qd := &r.QueueDatas[i]
				qd.ReadQueueNums, qd.WriteQueueNums = min(qd.ReadQueueNums, autoCreateQueues), min(qd.WriteQueueNums, autoCreateQueues)
			}
		}
	}
	if err != nil {
		return SendResult{}, fmt.Errorf("send to %s: %w", m.Topic, err)
	}
	candidates, chosen := []Queue{m.Queue}, m.Queue.BrokerName != "" && m.Queue.QueueID >= 0
	if !chosen {
		candidates = slices.DeleteFunc(writeQueues(r, m.Topic), func(q Queue) bool {
			return m.Queue.BrokerName != "" && q.BrokerName != m.Queue.BrokerName
		})
		if len(candidates) == 0 {
			return SendResult{}, fmt.Errorf("send to %s: the route has no writable queue (of broker %q)", m.Topic, m.Queue.BrokerName)
		}
	}
	props := map[string]string{codec.PropUniqKey: newUniqKey(), codec.PropWait: "true"}
	if m.Tags != "" {
		props[codec.PropTags] = m.Tags
	}
	if m.Keys != "" {
		props[codec.PropKeys] = m.Keys
	}
	encoded := codec.EncodeProperties(props)
	start := randIndex(len(candidates))
	var errs []error
	lastBroker := ""
	for attempt := 0; attempt < maxSendAttempts && attempt < len(candidates); attempt++ {
		q := pickAvoiding(candidates, start+attempt, lastBroker)
		lastBroker = q.BrokerName
		res, err := c.sendTo(r, q, encoded, m.Body)
		if err == nil {
			res.MsgID = props[codec.PropUniqKey]
			return res, nil
		}
		errs = append(errs, err)
		var re *ResponseError
		if !errors.As(err, &re) || !retriedCode(re.Code) || chosen {
			break
		}
	}
	return SendResult{}, fmt.Errorf("send to %s: %w", m.Topic, errors.Join(errs...))
}

// retriedCode reports whether the official producer retries a send refused with code.
func retriedCode(code int16) bool {
	switch code {
	case codec.SystemError, codec.ServiceNotAvailable, codec.NoPermission, codec.TopicNotExist:
		return true
	}
	return false
}

// sendTo sends the message to q's group master.
func (c *Client) sendTo(r *route.TopicRouteData, q Queue, properties string, body []byte) (SendResult, error) {
	addr, ok := r.MasterAddr(q.BrokerName)
	if !ok {
		return SendResult{}, fmt.Errorf("queue %s: broker %s has no master in the route", q, q.BrokerName)
	}
	h := codec.SendHeader{ProducerGroup: ToolsProducerGroup, Topic: q.Topic, DefaultTopic: route.DefaultTopic,
		DefaultTopicQueueNums: autoCreateQueues, QueueID: int64(q.QueueID), BornTimestamp: time.Now().UnixMilli(),
		Properties: properties, MaxReconsumeTimes: codec.DefaultMaxReconsumeTimes, BrokerName: q.BrokerName}
	resp, err := c.Call(addr, codec.NewRequest(codec.ReqSendMessageV2, codec.EncodeSendHeaderV2(h), body))
	if err != nil {
		return SendResult{}, fmt.Errorf("queue %s: %w", q, err)
	}
	status := sendStatus(resp.Code)
	if status == "" {
		return SendResult{}, fmt.Errorf("queue %s: %w", q, &ResponseError{Addr: addr, Code: resp.Code, Remark: resp.Remark})
	}
	sh, err := codec.DecodeHeader[codec.SendResponseHeader](resp)
	if err == nil && sh.NoMessage {
		err = errors.New("the answer names no message")
	}
	if err != nil {
		return SendResult{}, fmt.Errorf("queue %s: %s stored the message but its answer is malformed: %w", q, addr, err)
	}
	q.QueueID = sh.QueueID
	return SendResult{SendStatus: status, Queue: q, QueueOffset: sh.QueueOffset, OffsetMsgID: sh.MsgID,
		RegionID: sh.Region, TraceOn: sh.TraceOn, Addr: addr}, nil
}

// writeQueues are the writable queues of the route's groups that have a master, sorted by
// broker name and queue id.
func writeQueues(r *route.TopicRouteData, topic string) []Queue {
	return routeQueues(r, topic, func(qd route.QueueData) (int32, bool) {
		_, hasMaster := r.MasterAddr(qd.BrokerName)
		return qd.WriteQueueNums, hasMaster && qd.Perm&route.PermWrite != 0
	})
}

// routeQueues are the queues of the route's groups that count accepts, as many of each as
// count says, sorted by broker name and queue id.
func routeQueues(r *route.TopicRouteData, topic string, count func(route.QueueData) (n int32, ok bool)) []Queue {
	var out []Queue
	for _, qd := range r.QueueDatas {
		n, ok := count(qd)
		for id := int32(0); ok && id < n; id++ {
			out = append(out, Queue{Topic: topic, BrokerName: qd.BrokerName, QueueID: id})
		}
	}
	slices.SortFunc(out, func(a, b Queue) int {
		return cmp.Or(strings.Compare(a.BrokerName, b.BrokerName), cmp.Compare(a.QueueID, b.QueueID))
	})
	return out
}

// pickAvoiding returns the queue at index i (round robin from there) whose broker is not
// avoid, or the one at i if every queue is on avoid.
func pickAvoiding(qs []Queue, i int, avoid string) Queue {
	for k := range qs {
		if q := qs[(i+k)%len(qs)]; q.BrokerName != avoid {
			return q
		}
	}
	return qs[i%len(qs)]
}

func randIndex(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return int(v.Int64())
}

// uniqKeyCounter numbers the UNIQ_KEYs this process makes.
var uniqKeyCounter atomic.Uint32

// uniqPrefix is the fixed first half of this process's UNIQ_KEYs.
var uniqPrefix = newUniqPrefix()

// newUniqPrefix is the first 10 bytes of a UNIQ_KEY as the official clients lay it out
// (Java's MessageClientIDSetter): an IPv4 address of this host, the process id, and 4 bytes
// that tell processes apart (the clients' class-loader hash; random here).
func newUniqPrefix() []byte {
	b := make([]byte, 10)
	copy(b, localIPv4().AsSlice())
	binary.BigEndian.PutUint16(b[4:], uint16(os.Getpid()))
	if _, err := rand.Read(b[6:]); err != nil {
		binary.BigEndian.PutUint32(b[6:], uint32(time.Now().UnixNano()))
	}
	return b
}

// newUniqKey returns a message id as the official clients make them: the prefix, the
// milliseconds since the start of this month, and a counter, 32 upper-case hex digits.
func newUniqKey() string {
	now := time.Now()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	b := append([]byte{}, uniqPrefix...)
	b = binary.BigEndian.AppendUint32(b, uint32(now.Sub(monthStart).Milliseconds()))
	b = binary.BigEndian.AppendUint16(b, uint16(uniqKeyCounter.Add(1)))
	return strings.ToUpper(hex.EncodeToString(b))
}

// localIPv4 is a non-loopback IPv4 address of this host, else 127.0.0.1.
func localIPv4() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
				return p.Addr()
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}
