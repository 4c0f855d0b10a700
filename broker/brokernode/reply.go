package brokernode

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// Request/reply, as RocketMQ 4.x serves it (Java's ReplyMessageProcessor). A requester sends
// an ordinary message carrying CORRELATION_ID, REPLY_TO_CLIENT (its client id) and TTL; the
// broker stores it with CLUSTER (send.go). A consumer answers with a reply message
// (MSG_TYPE=reply) to <cluster>_REPLY_TOPIC, sent with SEND_REPLY_MESSAGE (324, the long send
// header) or SEND_REPLY_MESSAGE_V2 (325, the short one). The broker pushes the reply to the
// requesting client's connection with PUSH_REPLY_MESSAGE_TO_CLIENT (326), found by client id
// among the clients that heartbeated as producers, waits for the client's answer (or
// ReplyPushTimeout, or the connection's close), then stores the reply in its topic if
// StoreReplyMessage is set, and only then answers the replier: SUCCESS if the push was
// answered SUCCESS, SYSTEM_ERROR with Java's remark otherwise. Java stores the reply whether
// or not the push succeeded, and so does this broker.

// ReplyTopicSuffix names a cluster's reply topic, <cluster>_REPLY_TOPIC (Java's
// MixAll.REPLY_TOPIC_POSTFIX), which every broker creates at startup with one queue.
const ReplyTopicSuffix = "_REPLY_TOPIC"

// DefaultReplyPushTimeout is how long the broker waits for a requester's answer to a pushed
// reply (Java's Broker2Client.callClient waits 10 s).
const DefaultReplyPushTimeout = 10 * time.Second

// maxPendingReplies bounds the replies waiting for their requesters' answers; beyond it a
// reply is answered SYSTEM_BUSY.
const maxPendingReplies = 10000

// ReplyTopic is the reply topic of cluster.
func ReplyTopic(cluster string) string { return cluster + ReplyTopicSuffix }

// replyPush is a reply message pushed to its requester, waiting for the requester's answer.
type replyPush struct {
	opaque   int32 // the push's
	to       node.ConnID
	clientID string
	// from and req are the replier's connection and its request; m is the
	// message to store, tc and queueID its topic and queue.
	from    node.ConnID
	req     *codec.Command
	m       *codec.Message
	tc      store.TopicConfig
	queueID int32
	timer   node.TimerID
	done    bool
}

// handleSendReply serves SEND_REPLY_MESSAGE and SEND_REPLY_MESSAGE_V2: the
// reply is checked as a send is, then pushed to its requester. The answer goes out when the
// push is settled and the reply stored (finishReply), so nil is returned unless the reply is
// refused at once.
func (b *Broker) handleSendReply(c node.ConnID, req *codec.Command) *codec.Command {
	h, resp := b.acceptSend(req)
	if resp != nil {
		return resp
	}
	tc, m, resp := b.sendMessage(c, req, &h) // Java stores a reply's properties as sent: no CLUSTER
	if resp != nil {
		return resp
	}
	if isHalfMessage(m) {
		// Java would store it as a half message no transaction ever resolves; refuse it.
		return codec.NewResponse(req, codec.MessageIllegal, "a reply message cannot be a transactional half message")
	}
	rp := &replyPush{from: c, req: req, m: m, tc: tc, queueID: m.QueueID}
	rp.clientID = codec.Property(h.Properties, codec.PropReplyToClient)
	if rp.clientID == "" {
		b.log.Warn("reply message without REPLY_TO_CLIENT, can not reply", "topic", h.Topic)
		return b.finishReply(rp, false, "reply message properties["+codec.PropReplyToClient+"] is null")
	}
	to, ok := b.txn.producers.clientConn(rp.clientID)
	if !ok {
		remark := "push reply message fail, channel of <" + rp.clientID + "> not found."
		b.log.Warn(remark)
		return b.finishReply(rp, false, remark)
	}
	if len(b.replies) >= maxPendingReplies {
		return codec.NewResponse(req, codec.SystemBusy,
			"too many reply messages ("+strconv.Itoa(maxPendingReplies)+") are waiting for their requesters")
	}
	now := b.env.Now().UnixMilli()
	ph := codec.ReplyPushHeader{SendHeader: h,
		BornHost:       javaHostString(m.BornHost.Addr().String(), m.BornHost.Port()),
		StoreHost:      javaHostString(b.storeHost.Addr().String(), b.storeHost.Port()),
		StoreTimestamp: now,
	}
	ph.Properties = codec.SetProperty(h.Properties, codec.PropPushReplyTime, strconv.FormatInt(now, 10))
	push := codec.NewRequest(codec.ReqPushReplyMessageToClient, codec.EncodeHeader(&ph), req.Body)
	push.Opaque = b.nextOpaque()
	rp.opaque, rp.to = push.Opaque, to
	rp.timer = b.env.SetTimer(b.replyPushTimeout(), rp)
	if b.replies == nil {
		b.replies = map[int32]*replyPush{}
	}
	b.replies[rp.opaque] = rp
	b.env.Send(to, push)
	return nil
}

// javaHostString writes an address as Java's InetAddress.getHostAddress() + ":" + port does
// (an IPv6 address without brackets).
func javaHostString(addr string, port uint16) string {
	return addr + ":" + strconv.Itoa(int(port))
}

func (b *Broker) replyPushTimeout() time.Duration {
	if b.cfg.ReplyPushTimeout <= 0 {
		return DefaultReplyPushTimeout
	}
	return b.cfg.ReplyPushTimeout
}

// onReplyPushResponse settles the push a response answers, if it answers one: the requester
// received the reply (SUCCESS) or refused it. It reports whether resp was such an answer.
func (b *Broker) onReplyPushResponse(c node.ConnID, resp *codec.Command) bool {
	rp := b.replies[resp.Opaque]
	if rp == nil || rp.to != c {
		return false
	}
	if resp.Code == codec.Success {
		b.settleReply(rp, true)
		return true
	}
	b.log.Warn("the requester refused a pushed reply", "client", rp.clientID, "code", resp.Code, "remark", resp.Remark)
	b.settleReply(rp, false)
	return true
}

// replyPushTimedOut fails a push its requester did not answer in time.
func (b *Broker) replyPushTimedOut(rp *replyPush) {
	if rp.done {
		return
	}
	b.log.Warn("push of a reply message timed out", "client", rp.clientID, "timeout", b.replyPushTimeout())
	b.settleReply(rp, false)
}

// replyConnClosed fails the pushes waiting on a requester's connection that closed, in the
// order they were pushed.
func (b *Broker) replyConnClosed(c node.ConnID) {
	for _, op := range slices.Sorted(maps.Keys(b.replies)) {
		if rp := b.replies[op]; rp.to == c {
			b.log.Warn("the requester's connection closed before it answered a pushed reply", "client", rp.clientID)
			b.settleReply(rp, false)
		}
	}
}

// settleReply ends a push and answers the replier (after storing the reply).
func (b *Broker) settleReply(rp *replyPush, ok bool) {
	rp.done = true
	delete(b.replies, rp.opaque)
	b.env.CancelTimer(rp.timer)
	remark := ""
	if !ok {
		remark = "push reply message to " + rp.clientID + "fail." // Java's words, missing space included
	}
	if resp := b.finishReply(rp, ok, remark); resp != nil {
		b.env.Send(rp.from, resp)
	}
}

// finishReply stores the reply if StoreReplyMessage is set and builds the replier's answer, as
// Java's handlePushReplyResult and handlePutMessageResult do: the push decides the code; a
// stored reply's answer names where it was stored, a reply pushed but not stored names msgId
// "0" and queue offset 0. It returns the answer, or nil when the answer goes out after the
// fsync that covers the stored reply (sync-flush mode).
func (b *Broker) finishReply(rp *replyPush, pushed bool, remark string) *codec.Command {
	code := codec.Success
	if !pushed {
		code = codec.SystemError
	}
	resp := codec.NewResponse(rp.req, code, remark)
	answer := codec.NewSendResponseHeader("", 0, 0)
	answer.NoMessage = true // unless pushed or stored
	if pushed {
		answer = codec.NewSendResponseHeader("0", rp.queueID, 0)
	}
	resp.SetHeader(&answer)
	if !b.cfg.StoreReplyMessage {
		return resp
	}
	rp.m.StoreTimestamp = b.env.Now().UnixMilli()
	res, err := b.putMessage(rp.m)
	if err != nil {
		// Java logs a failed put of a reply and answers by the push alone.
		b.log.Error("store reply message", "topic", rp.tc.Name, "queue", rp.queueID, "err", err)
		return resp
	}
	answer = codec.NewSendResponseHeader(codec.OffsetMsgID(b.storeHost, int64(res.Index)), rp.queueID, res.QueueOffset)
	resp.SetHeader(&answer)
	return b.answerOnAck(rp.from, res.Index, resp)
}

// ensureReplyTopic creates the cluster's reply topic (one queue, read and write) if it is
// missing, as Java's TopicConfigManager does at startup.
func ensureReplyTopic(st *store.Store, cluster string) error {
	name := ReplyTopic(cluster)
	if cluster == "" || !store.ValidTopicName(name) {
		return nil
	}
	if _, ok := st.Topic(name); ok {
		return nil
	}
	return st.CreateTopic(store.TopicConfig{Name: name, ReadQueueNums: 1, WriteQueueNums: 1, Perm: route.PermRead | route.PermWrite})
}
