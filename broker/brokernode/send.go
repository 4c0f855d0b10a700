package brokernode

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// handleSend stores one message. In sync-flush mode the response is held until the fsync that
// covers it (nil is returned); otherwise it is returned at once.
func (b *Broker) handleSend(c node.ConnID, req *codec.Command) *codec.Command {
	if !b.ready {
		return codec.NewResponse(req, codec.ServiceNotAvailable, "broker is recovering its store")
	}
	topic := req.Ext("topic")
	if err := validTopic(topic); err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	queueID, err := req.ExtInt("queueId")
	if err != nil {
		return codec.NewResponse(req, codec.MessageIllegal, err.Error())
	}
	if len(req.Body) > b.cfg.MaxMessageBytes {
		return codec.NewResponse(req, codec.MessageIllegal,
			"message body of "+strconv.Itoa(len(req.Body))+" bytes exceeds the limit of "+strconv.Itoa(b.cfg.MaxMessageBytes))
	}
	props := req.Ext("properties")
	if len(props) > codec.MaxPropertiesBytes {
		return codec.NewResponse(req, codec.MessageIllegal, "message properties are longer than 32767 bytes")
	}
	tc, ok := b.store.Topic(topic)
	if !ok {
		tc, ok = b.autoCreate(req, topic)
		if !ok {
			return codec.NewResponse(req, codec.TopicNotExist, "topic "+topic+" does not exist and auto-creation is off")
		}
	}
	if tc.Perm&route.PermWrite == 0 {
		return codec.NewResponse(req, codec.NoPermission, "topic "+topic+" is not writable")
	}
	if queueID < 0 {
		// Java picks a random queue for a negative queue id.
		queueID = int64(b.env.Rand().Int32N(tc.WriteQueueNums))
	}
	if queueID >= int64(tc.WriteQueueNums) {
		return codec.NewResponse(req, codec.SystemError, "queueId "+strconv.FormatInt(queueID, 10)+" is out of range for topic "+topic)
	}
	m := &codec.Message{
		Topic:          topic,
		QueueID:        int32(queueID),
		Flag:           int32(extInt(req, "flag", 0)),
		SysFlag:        int32(extInt(req, "sysFlag", 0)),
		BornTimestamp:  extInt(req, "bornTimestamp", 0),
		BornHost:       b.bornHost(c),
		StoreTimestamp: b.env.Now().UnixMilli(),
		StoreHost:      b.storeHost,
		ReconsumeTimes: int32(extInt(req, "reconsumeTimes", 0)),
		Body:           req.Body,
		Properties:     props,
	}
	resp := codec.NewResponse(req, codec.Success, "")
	res, err := b.putMessage(m, c, resp)
	if err != nil {
		b.log.Error("append to commit log", "topic", topic, "queue", queueID, "err", err)
		return codec.NewResponse(req, codec.SystemError, "store message: "+err.Error())
	}
	resp.ExtFields = map[string]string{
		"msgId":       codec.OffsetMsgID(b.storeHost, int64(res.Index)),
		"queueId":     strconv.FormatInt(queueID, 10),
		"queueOffset": strconv.FormatInt(res.QueueOffset, 10),
		"MSG_REGION":  "DefaultRegion",
		"TRACE_ON":    "true",
	}
	if b.cfg.FlushMode == AsyncFlush || b.cfg.UnsafeAckBeforeSync {
		return resp // in sync mode with UnsafeAckBeforeSync: the planted bug, acknowledged before its fsync
	}
	return nil
}

// putMessage appends m to the commit log and makes it visible to consumers once the flush
// policy holds: at once in async-flush mode, after the covering fsync in sync-flush mode. resp,
// if not nil, is sent on c at that moment in sync-flush mode (the caller answers at once in
// async mode); internal writes (delayed, retried, committed messages) pass a nil resp.
// The caller fills resp's fields after the call: it is sent later, never by putMessage itself.
func (b *Broker) putMessage(m *codec.Message, c node.ConnID, resp *codec.Command) (store.AppendResult, error) {
	res, err := b.store.Append(m)
	if err != nil {
		return res, err
	}
	key := queueKey{topic: m.Topic, queue: m.QueueID}
	if b.cfg.FlushMode == AsyncFlush {
		b.store.Confirm(res.Index)
		b.wakePulls(key)
		return res, nil
	}
	b.pending = append(b.pending, pendingAck{index: res.Index, conn: c, resp: resp, queue: key})
	b.requestSync()
	return res, nil
}

// autoCreate creates an unknown topic on first send when allowed.
func (b *Broker) autoCreate(req *codec.Command, topic string) (store.TopicConfig, bool) {
	if !b.cfg.AutoCreateTopic || strings.HasPrefix(topic, "%") {
		return store.TopicConfig{}, false
	}
	n := int32(extInt(req, "defaultTopicQueueNums", int64(b.cfg.DefaultQueueNums)))
	if n < 1 || n > b.cfg.DefaultQueueNums {
		n = b.cfg.DefaultQueueNums
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
