package brokernode

import (
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// sendHeader is the header of a send, decoded from SEND_MESSAGE's long names (PROTOCOL.md
// 2.2); SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE come through sendV1 first.
type sendHeader struct {
	topic          string
	queueID        int64
	sysFlag        int32
	flag           int32
	bornTimestamp  int64
	properties     string
	reconsumeTimes int32
	// defaultTopicQueueNums is the queue count for a topic created by this send (0: the
	// broker's default).
	defaultTopicQueueNums int64
}

// sendV2Names pairs the one-letter ext names of SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE
// (SendMessageRequestHeaderV2, PROTOCOL.md 2.2) with SEND_MESSAGE's. n is RocketMQ 5's broker
// name, bname in the long header.
var sendV2Names = [...]struct{ short, long string }{
	{"a", "producerGroup"}, {"b", "topic"}, {"c", "defaultTopic"}, {"d", "defaultTopicQueueNums"},
	{"e", "queueId"}, {"f", "sysFlag"}, {"g", "bornTimestamp"}, {"h", "flag"}, {"i", "properties"},
	{"j", "reconsumeTimes"}, {"k", "unitMode"}, {"l", "maxReconsumeTimes"}, {"m", "batch"}, {"n", "bname"},
}

// sendV1 is a request with a V2 send header rewritten to SEND_MESSAGE's names, as the Java
// broker converts it (SendMessageRequestHeaderV2.createSendMessageRequestHeaderV1) before one
// send path serves both. Java reads only the letters of a V2 header, so a long name the request
// also carries is dropped, not mixed in; other ext fields (ACL, trace) are kept. req is not
// modified.
func sendV1(req *codec.Command) *codec.Command {
	v1 := *req
	v1.ExtFields = maps.Clone(req.ExtFields)
	if v1.ExtFields == nil {
		v1.ExtFields = map[string]string{}
	}
	for _, n := range sendV2Names {
		delete(v1.ExtFields, n.long)
	}
	for _, n := range sendV2Names {
		if v, ok := req.ExtFields[n.short]; ok {
			delete(v1.ExtFields, n.short)
			v1.ExtFields[n.long] = v
		}
	}
	return &v1
}

// decodeSendHeader reads a send header. The topic and queue id are required; the numeric
// fields the client always sends default to 0 when absent or malformed, as before.
func decodeSendHeader(req *codec.Command) (sendHeader, error) {
	h := sendHeader{topic: req.Ext("topic"), properties: req.Ext("properties")}
	if err := validTopic(h.topic); err != nil {
		return h, err
	}
	var err error
	if h.queueID, err = req.ExtInt("queueId"); err != nil {
		return h, fmt.Errorf("queue id: %w", err)
	}
	if len(h.properties) > codec.MaxPropertiesBytes {
		return h, fmt.Errorf("message properties are longer than %d bytes", codec.MaxPropertiesBytes)
	}
	h.sysFlag = int32(extInt(req, "sysFlag", 0))
	h.flag = int32(extInt(req, "flag", 0))
	h.bornTimestamp = extInt(req, "bornTimestamp", 0)
	h.reconsumeTimes = int32(extInt(req, "reconsumeTimes", 0))
	h.defaultTopicQueueNums = extInt(req, "defaultTopicQueueNums", 0)
	return h, nil
}

// acceptSend decodes a send's header and checks what every kind of send must pass (the store
// recovered, the body's size, the delay property); a refusal is returned as the response.
func (b *Broker) acceptSend(req *codec.Command) (sendHeader, *codec.Command) {
	if !b.ready {
		return sendHeader{}, codec.NewResponse(req, codec.ServiceNotAvailable, "broker is recovering its store")
	}
	if resp := b.refuseIfDiskFull(req); resp != nil {
		return sendHeader{}, resp
	}
	h, err := decodeSendHeader(req)
	if err != nil {
		return h, codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	if err := b.checkBody(len(req.Body)); err != nil {
		return h, codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	if err := checkDelayProperty(h.properties); err != nil {
		return h, codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	return h, nil
}

// handleSend stores one message (SEND_MESSAGE, and SEND_MESSAGE_V2 through sendV1). In
// sync-flush mode the response is held until the fsync that covers it (nil is returned);
// otherwise it is returned at once.
func (b *Broker) handleSend(c node.ConnID, req *codec.Command) *codec.Command {
	h, resp := b.acceptSend(req)
	if resp != nil {
		return resp
	}
	var err error
	if h.topic, h.queueID, h.properties, err = b.retryAsNormal(req, h.topic, h.queueID, h.properties); err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	if h.properties, err = b.withCluster(h.properties); err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	tc, queueID, resp := b.sendQueue(req, &h)
	if resp != nil {
		return resp
	}
	m := b.newMessage(c, &h, queueID)
	m.Flag = h.flag
	m.Body = req.Body
	m.Properties = h.properties
	if isHalfMessage(m) {
		if err := b.prepareHalf(m, req.Ext("producerGroup")); err != nil {
			return codec.NewResponse(req, codec.MessageIllegal, err.Error())
		}
	}
	return b.storeSend(c, req, tc, []*codec.Message{m})
}

// handleSendBatch stores the messages of one SEND_BATCH_MESSAGE, all to the header's queue, in
// order. The whole batch is checked before the first message is appended, so a bad batch
// stores nothing. Each message keeps its own flag, body and properties (UNIQ_KEY, TAGS, KEYS,
// user properties); header properties, if any, and CLUSTER are added to every message, as
// Java does.
func (b *Broker) handleSendBatch(c node.ConnID, req *codec.Command) *codec.Command {
	if !b.ready {
		return codec.NewResponse(req, codec.ServiceNotAvailable, "broker is recovering its store")
	}
	req = sendV1(req)
	h, err := decodeSendHeader(req)
	if err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	if err := b.checkBody(len(req.Body)); err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, "batch: "+err.Error())
	}
	// Java's store refuses these too (CommitLog.asyncPutMessages): a batch is written straight
	// to its queue, so it can be neither delayed nor half of a transaction.
	if h.sysFlag&codec.SysFlagTransactionMask != 0 {
		return codec.NewResponse(req, codec.MessageIllegal, "a batch cannot be a transaction message (sysFlag "+strconv.Itoa(int(h.sysFlag))+")")
	}
	if codec.Property(h.properties, codec.PropDelay) != "" {
		return codec.NewResponse(req, codec.MessageIllegal, "a batch cannot carry a delay level")
	}
	batch, err := codec.DecodeBatch(req.Body)
	if err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, "batch body: "+err.Error())
	}
	props := make([]string, len(batch))
	for i, bm := range batch {
		if codec.Property(bm.Properties, codec.PropDelay) != "" {
			return codec.NewResponse(req, codec.MessageIllegal,
				"batch message "+strconv.Itoa(i)+" carries a delay level; delayed messages must be sent one by one")
		}
		if props[i], err = b.withCluster(joinProperties(bm.Properties, h.properties)); err != nil {
			return codec.NewResponse(req, codec.MessageIllegal, "batch message "+strconv.Itoa(i)+": "+err.Error())
		}
	}
	tc, queueID, resp := b.sendQueue(req, &h)
	if resp != nil {
		return resp
	}
	msgs := make([]*codec.Message, len(batch))
	for i, bm := range batch {
		m := b.newMessage(c, &h, queueID)
		m.Flag = bm.Flag
		m.Body = bm.Body
		m.Properties = props[i]
		msgs[i] = m
	}
	return b.storeSend(c, req, tc, msgs)
}

// withCluster is the property block props with CLUSTER set to the broker's cluster name, as
// the Java broker sets it on every message a producer sends (SendMessageProcessor), replacing
// any CLUSTER the producer wrote. Request/reply depends on it: a replier addresses its reply
// to <cluster>_REPLY_TOPIC, the cluster read from the request it received. The result must
// still fit the stored record's properties field.
func (b *Broker) withCluster(props string) (string, error) {
	if b.cfg.ClusterName != "" {
		props = codec.SetProperty(props, codec.PropCluster, b.cfg.ClusterName)
	}
	if len(props) > codec.MaxPropertiesBytes {
		return "", fmt.Errorf("message properties are longer than %d bytes", codec.MaxPropertiesBytes)
	}
	return props, nil
}

// joinProperties appends the encoded block extra to own, with a separator between them if own
// lacks its trailing one.
func joinProperties(own, extra string) string {
	if extra == "" {
		return own
	}
	if own != "" && !strings.HasSuffix(own, "\x02") {
		own += "\x02"
	}
	return own + extra
}

// checkBody applies the message size limit.
func (b *Broker) checkBody(n int) error {
	if n > b.cfg.MaxMessageBytes {
		return fmt.Errorf("message body of %d bytes exceeds the limit of %d", n, b.cfg.MaxMessageBytes)
	}
	return nil
}

// sendQueue finds (or auto-creates) the topic of a send, checks it is writable, and resolves
// the queue: a negative queue id picks a random write queue, as Java does. A non-nil response
// is the error to answer.
func (b *Broker) sendQueue(req *codec.Command, h *sendHeader) (store.TopicConfig, int32, *codec.Command) {
	if h.topic == ScheduleTopic || isTxnTopic(h.topic) {
		return store.TopicConfig{}, 0, codec.NewResponse(req, codec.NoPermission, "sending to the system topic "+h.topic+" is forbidden")
	}
	tc, ok := b.store.Topic(h.topic)
	if !ok {
		tc, ok = b.autoCreate(h.topic, h.defaultTopicQueueNums)
		if !ok {
			return tc, 0, codec.NewResponse(req, codec.TopicNotExist, "topic "+h.topic+" does not exist and auto-creation is off")
		}
	}
	if tc.Perm&route.PermWrite == 0 {
		return tc, 0, codec.NewResponse(req, codec.NoPermission, "topic "+h.topic+" is not writable")
	}
	queueID := h.queueID
	if queueID < 0 {
		queueID = int64(b.env.Rand().Int32N(tc.WriteQueueNums))
	}
	if queueID >= int64(tc.WriteQueueNums) {
		return tc, 0, codec.NewResponse(req, codec.SystemError, "queueId "+strconv.FormatInt(queueID, 10)+" is out of range for topic "+h.topic)
	}
	return tc, int32(queueID), nil
}

// newMessage is a message of a send as the header and the connection describe it; the caller
// sets its flag, body and properties.
func (b *Broker) newMessage(c node.ConnID, h *sendHeader, queueID int32) *codec.Message {
	return &codec.Message{
		Topic:          h.topic,
		QueueID:        queueID,
		SysFlag:        h.sysFlag,
		BornTimestamp:  h.bornTimestamp,
		BornHost:       b.bornHost(c),
		StoreTimestamp: b.env.Now().UnixMilli(),
		StoreHost:      b.storeHost,
		ReconsumeTimes: h.reconsumeTimes,
	}
}

// storeSend appends msgs (one queue, in order) with the put path and builds the answer: the
// offset msgIds joined by commas, the queue id and the queue offset of the first message. Only
// the last message carries the response, so in sync-flush mode it goes out once the whole send
// is durable (nil is returned); in async-flush mode it is returned at once.
//
// If an append fails part-way (a disk error), the messages before it stay in the log and the
// send is answered SYSTEM_ERROR: its outcome is unknown to the client, as for a lost answer.
func (b *Broker) storeSend(c node.ConnID, req *codec.Command, tc store.TopicConfig, msgs []*codec.Message) *codec.Command {
	if len(msgs) == 0 {
		panic("brokernode: storeSend without messages")
	}
	resp := codec.NewResponse(req, codec.Success, "")
	ids := make([]string, len(msgs))
	queueID := msgs[0].QueueID // the queue asked for: putMessage moves a delayed message to the schedule topic
	var first int64
	for i, m := range msgs {
		var r *codec.Command
		if i == len(msgs)-1 {
			r = resp
		}
		res, err := b.putMessage(m, c, r)
		if err != nil {
			return b.storeFailed(req, err)
		}
		if i == 0 {
			first = res.QueueOffset
		}
		ids[i] = codec.OffsetMsgID(b.storeHost, int64(res.Index))
	}
	resp.ExtFields = map[string]string{
		"msgId":       strings.Join(ids, ","),
		"queueId":     strconv.Itoa(int(queueID)),
		"queueOffset": strconv.FormatInt(first, 10),
		"MSG_REGION":  "DefaultRegion",
		"TRACE_ON":    "true",
	}
	if b.answersAtOnce() {
		return resp
	}
	return nil
}

// answersAtOnce reports whether a write is answered as soon as putMessage returns: in
// async-flush mode, and in sync mode with bugs.AckBeforeSync (the planted bug, acknowledged
// before its fsync). Otherwise putMessage sends the answer after the covering fsync.
func (b *Broker) answersAtOnce() bool {
	return b.cfg.FlushMode == AsyncFlush || b.cfg.Bugs.Has(bugs.AckBeforeSync)
}

// putMessage appends m to the commit log and makes it visible to consumers once the flush
// policy holds: at once in async-flush mode, after the covering fsync in sync-flush mode. resp,
// if not nil, is sent on c at that moment in sync-flush mode (the caller answers at once in
// async mode); internal writes (delayed, retried, committed messages) pass a nil resp.
// The caller fills resp's fields after the call: it is sent later, never by putMessage itself.
// A message carrying a delay level (property DELAY) is stored in the schedule topic instead
// (scheduleIfDelayed rewrites m's topic, queue and properties) and re-put when due.
func (b *Broker) putMessage(m *codec.Message, c node.ConnID, resp *codec.Command) (store.AppendResult, error) {
	if !b.writable() {
		return store.AppendResult{}, errNotMaster
	}
	if err := b.scheduleIfDelayed(m); err != nil {
		return store.AppendResult{}, err
	}
	res, err := b.store.Append(m)
	if err != nil {
		return res, err
	}
	if b.grp != nil && b.cfg.OnWrite != nil {
		b.cfg.OnWrite(b.grp.epoch, res.Index)
	}
	key := queueKey{topic: m.Topic, queue: m.QueueID}
	if b.cfg.FlushMode == AsyncFlush {
		b.store.Confirm(res.Index)
		b.messagesVisible(key)
		return res, nil
	}
	b.pending = append(b.pending, pendingAck{index: res.Index, conn: c, resp: resp, queue: key})
	b.requestSync()
	return res, nil
}

// autoCreate creates an unknown topic on first send when allowed.
// queues is the producer's defaultTopicQueueNums, capped at DefaultQueueNums.
func (b *Broker) autoCreate(topic string, queues int64) (store.TopicConfig, bool) {
	if !b.cfg.AutoCreateTopic || strings.HasPrefix(topic, "%") {
		return store.TopicConfig{}, false
	}
	n := b.cfg.DefaultQueueNums
	if queues >= 1 && queues < int64(n) {
		n = int32(queues)
	}
	tc := store.TopicConfig{Name: topic, ReadQueueNums: n, WriteQueueNums: n, Perm: route.PermRead | route.PermWrite}
	if err := b.store.CreateTopic(tc); err != nil {
		b.log.Error("auto-create topic", "topic", topic, "err", err)
		return store.TopicConfig{}, false
	}
	b.log.Info("topic auto-created", "topic", topic, "queues", n)
	b.registerAll()
	return tc, true
}

func (b *Broker) bornHost(c node.ConnID) netip.AddrPort {
	if ap, ok := b.remotes[c]; ok {
		return ap
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
}

func extInt(req *codec.Command, key string, def int64) int64 {
	v, err := req.ExtInt(key)
	if err != nil {
		return def
	}
	return v
}
