package brokernode

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// decodeSendHeader reads a send header of any kind (codec.DecodeSendHeader) and checks what
// the broker needs of it: a valid topic and properties within the stored record's limit.
func decodeSendHeader(req *codec.Command) (codec.SendHeader, error) {
	h, err := codec.DecodeSendHeader(req)
	if err != nil {
		return h, err
	}
	if err := validTopic(h.Topic); err != nil {
		return h, err
	}
	if len(h.Properties) > codec.MaxPropertiesBytes {
		return h, fmt.Errorf("message properties are longer than %d bytes", codec.MaxPropertiesBytes)
	}
	return h, nil
}

// acceptSend decodes a send's header and checks what every kind of send must pass (the store
// recovered, the body's size, the delay property); a refusal is returned as the response.
func (b *Broker) acceptSend(req *codec.Command) (codec.SendHeader, *codec.Command) {
	if !b.ready {
		b.metrics.refused(refusedRecovering)
		return codec.SendHeader{}, codec.NewResponse(req, codec.ServiceNotAvailable, "broker is recovering its store")
	}
	if resp := b.refuseIfDiskFull(req); resp != nil {
		return codec.SendHeader{}, resp
	}
	h, err := decodeSendHeader(req)
	if err != nil {
		return h, codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	if err := b.checkBody(len(req.Body)); err != nil {
		return h, codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	if err := checkDelayProperty(h.Properties); err != nil {
		return h, codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	return h, nil
}

// handleSend stores one message (SEND_MESSAGE and SEND_MESSAGE_V2). In
// sync-flush mode the response is held until the fsync that covers it (nil is returned);
// otherwise it is returned at once.
func (b *Broker) handleSend(c node.ConnID, req *codec.Command) *codec.Command {
	h, resp := b.acceptSend(req)
	if resp != nil {
		return resp
	}
	var err error
	if h.Topic, h.QueueID, h.Properties, err = b.retryAsNormal(&h); err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	if h.Properties, err = b.withCluster(h.Properties); err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	tc, m, resp := b.sendMessage(c, req, &h)
	if resp != nil {
		return resp
	}
	if isHalfMessage(m) {
		if err := b.prepareHalf(m, h.ProducerGroup); err != nil {
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
		b.metrics.refused(refusedRecovering)
		return codec.NewResponse(req, codec.ServiceNotAvailable, "broker is recovering its store")
	}
	h, err := decodeSendHeader(req)
	if err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	if err := b.checkBody(len(req.Body)); err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, "batch: "+err.Error())
	}
	// Java's store refuses these too (CommitLog.asyncPutMessages): a batch is written straight
	// to its queue, so it can be neither delayed nor half of a transaction.
	if h.SysFlag&codec.SysFlagTransactionMask != 0 {
		return codec.NewResponse(req, codec.MessageIllegal, "a batch cannot be a transaction message (sysFlag "+strconv.Itoa(int(h.SysFlag))+")")
	}
	if codec.Property(h.Properties, codec.PropDelay) != "" {
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
		if props[i], err = b.withCluster(joinProperties(bm.Properties, h.Properties)); err != nil {
			return codec.NewResponse(req, codec.MessageIllegal, "batch message "+strconv.Itoa(i)+": "+err.Error())
		}
	}
	tc, queueID, resp := b.sendQueue(req, &h)
	if resp != nil {
		return resp
	}
	msgs := make([]*codec.Message, len(batch))
	for i, bm := range batch {
		m := b.newMessage(c, &h, queueID, bm.Body)
		m.Flag = bm.Flag
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
func (b *Broker) sendQueue(req *codec.Command, h *codec.SendHeader) (store.TopicConfig, int32, *codec.Command) {
	if h.Topic == ScheduleTopic || isTxnTopic(h.Topic) {
		return store.TopicConfig{}, 0, codec.NewResponse(req, codec.NoPermission, "sending to the system topic "+h.Topic+" is forbidden")
	}
	tc, ok := b.store.Topic(h.Topic)
	if !ok {
		var err error
		tc, ok, err = b.autoCreate(h.Topic, h.DefaultTopicQueueNums)
		if resp := b.refuseForResources(req, "auto-create topic "+h.Topic, err); resp != nil {
			return tc, 0, resp
		}
		if !ok {
			return tc, 0, codec.NewResponse(req, codec.TopicNotExist, "topic "+h.Topic+" does not exist and auto-creation is off")
		}
	}
	if tc.Perm&route.PermWrite == 0 {
		return tc, 0, codec.NewResponse(req, codec.NoPermission, "topic "+h.Topic+" is not writable")
	}
	queueID := h.QueueID
	if queueID < 0 {
		queueID = int64(b.env.Rand().Int32N(tc.WriteQueueNums))
	}
	if queueID >= int64(tc.WriteQueueNums) {
		return tc, 0, codec.NewResponse(req, codec.SystemError, "queueId "+strconv.FormatInt(queueID, 10)+" is out of range for topic "+h.Topic)
	}
	return tc, int32(queueID), nil
}

// newMessage is a message of a send as the header and the connection describe it, carrying
// body and the header's flag and properties (a batch replaces them with each message's own).
func (b *Broker) newMessage(c node.ConnID, h *codec.SendHeader, queueID int32, body []byte) *codec.Message {
	return &codec.Message{
		Topic:          h.Topic,
		QueueID:        queueID,
		Flag:           h.Flag,
		SysFlag:        h.SysFlag,
		BornTimestamp:  h.BornTimestamp,
		BornHost:       b.bornHost(c),
		StoreTimestamp: b.env.Now().UnixMilli(),
		StoreHost:      b.storeHost,
		ReconsumeTimes: int32(h.ReconsumeTimes),
		Body:           body,
		Properties:     h.Properties,
	}
}

// sendMessage picks the queue of a single send (sendQueue) and builds its message from the
// header and the request's body; a refusal is returned as the response.
func (b *Broker) sendMessage(c node.ConnID, req *codec.Command, h *codec.SendHeader) (store.TopicConfig, *codec.Message, *codec.Command) {
	tc, queueID, resp := b.sendQueue(req, h)
	if resp != nil {
		return tc, nil, resp
	}
	return tc, b.newMessage(c, h, queueID, req.Body), nil
}

// restamped is a copy of the stored message m for a new write by this broker: what its
// producer set (flag, system flag, birth, reconsume count, body, properties) is kept, and it is
// stamped as stored here and now. The caller sets the topic and queue and changes whatever the
// new write changes.
func (b *Broker) restamped(m *codec.Message) *codec.Message {
	return &codec.Message{
		Flag:           m.Flag,
		SysFlag:        m.SysFlag,
		BornTimestamp:  m.BornTimestamp,
		BornHost:       m.BornHost,
		StoreTimestamp: b.env.Now().UnixMilli(),
		StoreHost:      b.storeHost,
		ReconsumeTimes: m.ReconsumeTimes,
		Body:           m.Body,
		Properties:     m.Properties,
	}
}

// storeSend appends msgs (one queue, in order) with the put path and builds the answer: the
// offset msgIds joined by commas, the queue id and the queue offset of the first message. The
// answer goes out when the last message is acknowledged (answerOnAck): at once in async-flush
// mode (it is returned), after the fsync that covers the whole send otherwise (nil is returned).
//
// If an append fails part-way (a disk error), the messages before it stay in the log and the
// send is answered SYSTEM_ERROR: its outcome is unknown to the client, as for a lost answer.
func (b *Broker) storeSend(c node.ConnID, req *codec.Command, tc store.TopicConfig, msgs []*codec.Message) *codec.Command {
	if len(msgs) == 0 {
		panic("brokernode: storeSend without messages")
	}
	ids := make([]string, len(msgs))
	queueID := msgs[0].QueueID // the queue asked for: putMessage moves a delayed message to the schedule topic
	var first int64
	var last uint64
	topic, bodyBytes := msgs[0].Topic, 0 // the topic sent to: putMessage moves a delayed message
	for i, m := range msgs {
		bodyBytes += len(m.Body)
		res, err := b.putMessage(m)
		if err != nil {
			return b.storeFailed(req, err)
		}
		if i == 0 {
			first = res.QueueOffset
		}
		ids[i] = codec.OffsetMsgID(b.storeHost, int64(res.Index))
		last = res.Index
	}
	b.metrics.stored(topic, len(msgs), bodyBytes)
	b.countStored(len(msgs))
	resp := codec.NewResponse(req, codec.Success, "")
	answer := codec.NewSendResponseHeader(strings.Join(ids, ","), queueID, first)
	resp.SetHeader(&answer)
	return b.answerOnAck(c, last, resp)
}

// putMessage appends m to the commit log and hands it to the ack pipeline (acks.go), which
// makes it visible to consumers when the policy allows. The caller answers the write through
// answerOnAck once its answer is complete; internal writes (delayed, retried, committed
// messages) have none. A message carrying a delay level (property DELAY) is stored in the
// schedule topic instead (scheduleIfDelayed rewrites m's topic, queue and properties) and
// re-put when due.
func (b *Broker) putMessage(m *codec.Message) (store.AppendResult, error) {
	if !b.role.writable(b) {
		return store.AppendResult{}, errNotMaster
	}
	if err := b.scheduleIfDelayed(m); err != nil {
		return store.AppendResult{}, err
	}
	res, err := b.store.Append(m)
	if err != nil {
		return res, err
	}
	b.observe(Wrote{Epoch: b.epoch(), Index: res.Index})
	b.queueWrite(res.Index, queueKey{topic: m.Topic, queue: m.QueueID})
	return res, nil
}

// autoCreate creates an unknown topic on first send when allowed (ok false when it is not, or
// when creating it failed: err says why).
// queues is the producer's defaultTopicQueueNums, capped at DefaultQueueNums.
func (b *Broker) autoCreate(topic string, queues int64) (_ store.TopicConfig, ok bool, err error) {
	if !b.cfg.AutoCreateTopic || strings.HasPrefix(topic, "%") {
		return store.TopicConfig{}, false, nil
	}
	n := b.cfg.DefaultQueueNums
	if queues >= 1 && queues < int64(n) {
		n = int32(queues)
	}
	tc := store.TopicConfig{Name: topic, ReadQueueNums: n, WriteQueueNums: n, Perm: route.PermRead | route.PermWrite}
	if err := b.store.CreateTopic(tc); err != nil {
		if !errors.Is(err, node.ErrNoSpace) && !errors.Is(err, node.ErrNoFiles) {
			b.log.Error("auto-create topic", "topic", topic, "err", err) // the others are counted
		}
		return store.TopicConfig{}, false, err
	}
	b.log.Info("topic auto-created", "topic", topic, "queues", n)
	b.registerAll()
	return tc, true, nil
}

func (b *Broker) bornHost(c node.ConnID) netip.AddrPort {
	if ap, ok := b.remotes[c]; ok {
		return ap
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
}
