package brokernode

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// Request/reply (reply.go): a requester's message carries its client id; the replier's answer
// is pushed to that client's connection, and the replier is answered once the push is settled.

const (
	requesterID = "10.0.0.1@111"
	otherID     = "10.0.0.2@222"
)

// replyWorld is a broker with two producer clients that heartbeated (the requester and another
// one) and a replier's connection.
type replyWorld struct {
	*brokerHarness
	requester, other, replier node.ConnID
}

func newReplyWorld(t *testing.T, cfg Config) *replyWorld {
	h := startBroker(t, cfg, nil)
	w := &replyWorld{brokerHarness: h}
	w.requester = h.env.accept(h.b, "127.0.1.1:40001")
	w.other = h.env.accept(h.b, "127.0.1.2:40002")
	w.replier = h.env.accept(h.b, "127.0.1.3:40003")
	for _, p := range []struct {
		c  node.ConnID
		id string
	}{{w.requester, requesterID}, {w.other, otherID}} {
		if r := h.mustAnswer(p.c, h.request(p.c, codec.ReqHeartBeat, nil, producerHeartbeat(p.id, "rpg"))); r.Code != codec.Success {
			t.Fatalf("heartbeat of %s: %d %s", p.id, r.Code, r.Remark)
		}
	}
	return w
}

// replyProps are a reply's properties as consumer.CreateReplyMessage writes them, to client to.
func replyProps(to, correlationID string) map[string]string {
	return map[string]string{codec.PropMsgType: codec.MsgTypeReply, codec.PropCorrelationID: correlationID,
		codec.PropReplyToClient: to, codec.PropMessageTTL: "3", codec.PropUniqKey: "C0A80001000000000000000000000" + correlationID[len(correlationID)-3:]}
}

// sendReply is SEND_REPLY_MESSAGE on the replier's connection, to the cluster's reply topic.
func (w *replyWorld) sendReply(to, correlationID, body string) int32 {
	return w.request(w.replier, codec.ReqSendReplyMessage, sendExt(ReplyTopic("DefaultCluster"), "0", replyProps(to, correlationID)), []byte(body))
}

// pushes lists the PUSH_REPLY_MESSAGE_TO_CLIENT requests the broker sent on c.
func (w *replyWorld) pushes(c node.ConnID) []*codec.Command {
	var out []*codec.Command
	for _, f := range w.framesTo(c) {
		if f.Code == codec.ReqPushReplyMessageToClient {
			out = append(out, f)
		}
	}
	return out
}

// stored pulls the cluster's reply topic from offset 0.
func (w *replyWorld) stored() []*codec.Message {
	w.t.Helper()
	resp := w.mustAnswer(w.replier, w.pull(w.replier, ReplyTopic("DefaultCluster"), 0, 0))
	if resp.Code == codec.PullNotFound || resp.Code == codec.PullOffsetMoved {
		return nil
	}
	if resp.Code != codec.Success {
		w.t.Fatalf("pull of the reply topic: %d %s", resp.Code, resp.Remark)
	}
	return decodeBody(w.t, resp.Body)
}

// The reply goes to the requester's connection, and only there, with Java's
// ReplyMessageRequestHeader; the replier's answer waits for the requester's.
func TestReplyPushedToTheRequestersConnection(t *testing.T) {
	w := newReplyWorld(t, testConfig())
	w.env.advance(w.b, 1500*time.Millisecond)
	op := w.sendReply(requesterID, "corr-001", "the answer")
	w.syncAll()
	if r := w.answer(w.replier, op); r != nil {
		t.Fatalf("the replier was answered (%d %s) before the requester took the reply", r.Code, r.Remark)
	}
	if n := len(w.pushes(w.other)) + len(w.pushes(w.replier)); n != 0 {
		t.Fatalf("%d pushes went to connections other than the requester's", n)
	}
	pushes := w.pushes(w.requester)
	if len(pushes) != 1 {
		t.Fatalf("%d pushes to the requester, want 1", len(pushes))
	}
	push := pushes[0]
	now := strconv.FormatInt(w.env.Now().UnixMilli(), 10)
	for k, want := range map[string]string{
		"producerGroup": "pg", "topic": "DefaultCluster_REPLY_TOPIC", "queueId": "0", "sysFlag": "0", "flag": "0",
		"bornTimestamp": "1767225600000", "reconsumeTimes": "0", "unitMode": "false", "defaultTopic": "TBW102",
		"defaultTopicQueueNums": "4", "bornHost": "127.0.1.3:40003", "storeHost": w.cfg.Addr, "storeTimestamp": now,
	} {
		if got := push.Ext(k); got != want {
			t.Errorf("push ext %s = %q, want %q", k, got, want)
		}
	}
	props := codec.ParseProperties(push.Ext("properties"))
	for k, want := range replyProps(requesterID, "corr-001") {
		if props[k] != want {
			t.Errorf("pushed property %s = %q, want %q", k, props[k], want)
		}
	}
	if props[codec.PropPushReplyTime] != now {
		t.Errorf("pushed PUSH_REPLY_TIME = %q, want the push's time %s", props[codec.PropPushReplyTime], now)
	}
	if string(push.Body) != "the answer" || push.IsResponse() || push.Flag&codec.FlagOneway != 0 {
		t.Errorf("push: body %q flag %d; want the reply's body in a two-way request", push.Body, push.Flag)
	}

	// The requester takes it; the reply is stored, then the replier is answered.
	w.b.OnFrame(w.requester, codec.NewResponse(push, codec.Success, ""))
	if r := w.answer(w.replier, op); r != nil {
		t.Fatalf("answered (%d) before the stored reply's fsync", r.Code)
	}
	w.syncAll()
	r := w.mustAnswer(w.replier, op)
	if r.Code != codec.Success || r.Ext("queueId") != "0" || r.Ext("queueOffset") != "0" {
		t.Fatalf("replier answered %d %q queueId %q queueOffset %q, want SUCCESS at queue 0 offset 0", r.Code, r.Remark, r.Ext("queueId"), r.Ext("queueOffset"))
	}
	msgs := w.stored()
	if len(msgs) != 1 {
		t.Fatalf("%d replies stored, want 1", len(msgs))
	}
	m := msgs[0]
	if codec.OffsetMsgID(m.StoreHost, m.PhysicalOffset) != r.Ext("msgId") {
		t.Errorf("answer msgId %q does not name the stored reply at %d", r.Ext("msgId"), m.PhysicalOffset)
	}
	// Stored as sent, as Java stores a reply: neither CLUSTER nor PUSH_REPLY_TIME.
	if want := codec.EncodeProperties(replyProps(requesterID, "corr-001")); m.Properties != want || string(m.Body) != "the answer" {
		t.Errorf("stored reply: properties %q body %q, want %q and the body as sent", m.Properties, m.Body, want)
	}
	if len(w.b.replies) != 0 || len(w.env.liveTimers(func(tag any) bool { _, ok := tag.(*replyPush); return ok })) != 0 {
		t.Errorf("a settled push left state behind: %d pending, timers live", len(w.b.replies))
	}
}

// A reply to a client no producer connection names is answered with Java's error (and stored,
// as Java stores it); so is a reply without REPLY_TO_CLIENT.
func TestReplyToAnUnknownClient(t *testing.T) {
	w := newReplyWorld(t, testConfig())
	op := w.sendReply("10.9.9.9@999", "corr-002", "lost")
	w.syncAll()
	r := w.mustAnswer(w.replier, op)
	if r.Code != codec.SystemError || r.Remark != "push reply message fail, channel of <10.9.9.9@999> not found." {
		t.Errorf("reply to an unknown client: %d %q, want SYSTEM_ERROR and Java's remark", r.Code, r.Remark)
	}
	props := replyProps("", "corr-003")
	delete(props, codec.PropReplyToClient)
	op = w.request(w.replier, codec.ReqSendReplyMessage, sendExt(ReplyTopic("DefaultCluster"), "0", props), []byte("nobody"))
	w.syncAll()
	if r := w.mustAnswer(w.replier, op); r.Code != codec.SystemError || r.Remark != "reply message properties[REPLY_TO_CLIENT] is null" {
		t.Errorf("reply without REPLY_TO_CLIENT: %d %q, want SYSTEM_ERROR and Java's remark", r.Code, r.Remark)
	}
	for _, c := range []node.ConnID{w.requester, w.other, w.replier} {
		if n := len(w.pushes(c)); n != 0 {
			t.Errorf("%d pushes on connection %d", n, c)
		}
	}
	if n := len(w.stored()); n != 2 {
		t.Errorf("%d replies stored, want both: Java stores a reply it could not push", n)
	}
	// A client that heartbeated only as a consumer is not a requester either (Java looks in
	// the producer table).
	consumer := w.env.accept(w.b, "127.0.1.4:40004")
	w.mustAnswer(consumer, w.request(consumer, codec.ReqHeartBeat, nil, heartbeat("10.0.0.4@444", "cg")))
	op = w.sendReply("10.0.0.4@444", "corr-004", "consumer")
	w.syncAll()
	if r := w.mustAnswer(w.replier, op); r.Code != codec.SystemError || len(w.pushes(consumer)) != 0 {
		t.Errorf("reply to a consumer-only client: %d %q, %d pushes; want SYSTEM_ERROR and none", r.Code, r.Remark, len(w.pushes(consumer)))
	}
}

// A push the requester does not answer fails after ReplyPushTimeout; one whose connection
// closes, or that the requester refuses, fails at once. Each failure is Java's remark.
func TestReplyPushFailures(t *testing.T) {
	cfg := testConfig()
	cfg.ReplyPushTimeout = 4 * time.Second
	w := newReplyWorld(t, cfg)
	failed := "push reply message to " + requesterID + "fail."

	op := w.sendReply(requesterID, "corr-005", "slow")
	w.syncAll()
	w.env.advance(w.b, 4*time.Second-time.Millisecond)
	w.syncAll()
	if r := w.answer(w.replier, op); r != nil {
		t.Fatalf("answered %d %q before the push timed out", r.Code, r.Remark)
	}
	w.env.advance(w.b, time.Millisecond)
	w.syncAll()
	if r := w.mustAnswer(w.replier, op); r.Code != codec.SystemError || r.Remark != failed {
		t.Errorf("timed-out push: %d %q, want SYSTEM_ERROR %q", r.Code, r.Remark, failed)
	}
	// The requester's late answer is ignored.
	w.b.OnFrame(w.requester, codec.NewResponse(w.pushes(w.requester)[0], codec.Success, ""))
	w.syncAll()

	op = w.sendReply(requesterID, "corr-006", "refused")
	w.syncAll()
	w.b.OnFrame(w.requester, codec.NewResponse(w.pushes(w.requester)[1], codec.SystemError, "no"))
	w.syncAll()
	if r := w.mustAnswer(w.replier, op); r.Code != codec.SystemError || r.Remark != failed {
		t.Errorf("refused push: %d %q, want SYSTEM_ERROR %q", r.Code, r.Remark, failed)
	}

	// An answer on another connection with the push's opaque does not settle it.
	op = w.sendReply(requesterID, "corr-007", "closed")
	w.syncAll()
	w.b.OnFrame(w.other, codec.NewResponse(w.pushes(w.requester)[2], codec.Success, ""))
	w.syncAll()
	if r := w.answer(w.replier, op); r != nil {
		t.Fatalf("an answer from another connection settled the push: %d", r.Code)
	}
	w.b.OnConnClosed(w.requester)
	w.syncAll()
	if r := w.mustAnswer(w.replier, op); r.Code != codec.SystemError || r.Remark != failed {
		t.Errorf("push to a closed connection: %d %q, want SYSTEM_ERROR %q", r.Code, r.Remark, failed)
	}
	// The closed connection's client is forgotten: the next reply to it finds no channel.
	op = w.sendReply(requesterID, "corr-008", "gone")
	w.syncAll()
	if r := w.mustAnswer(w.replier, op); r.Remark != "push reply message fail, channel of <"+requesterID+"> not found." {
		t.Errorf("reply after the requester's connection closed: %d %q", r.Code, r.Remark)
	}
	if len(w.b.replies) != 0 {
		t.Errorf("%d pushes still pending", len(w.b.replies))
	}
}

// SEND_REPLY_MESSAGE_V2 carries the send header's one-letter names: the push carries the long
// names, and the reply is stored as with 324.
func TestReplyV2Header(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMode = AsyncFlush
	w := newReplyWorld(t, cfg)
	ext := v2Letters(sendExt(ReplyTopic("DefaultCluster"), "0", replyProps(requesterID, "corr-009")))
	ext["h"] = "5"
	op := w.request(w.replier, codec.ReqSendReplyMessageV2, ext, []byte("short"))
	pushes := w.pushes(w.requester)
	if len(pushes) != 1 {
		t.Fatalf("%d pushes, want 1", len(pushes))
	}
	p := pushes[0]
	if p.Ext("topic") != "DefaultCluster_REPLY_TOPIC" || p.Ext("flag") != "5" || p.Ext("producerGroup") != "pg" || p.Ext("b") != "" ||
		codec.Property(p.Ext("properties"), codec.PropCorrelationID) != "corr-009" {
		t.Errorf("push ext %v: want the long names with the V2 header's values", p.ExtFields)
	}
	w.b.OnFrame(w.requester, codec.NewResponse(p, codec.Success, ""))
	if r := w.mustAnswer(w.replier, op); r.Code != codec.Success {
		t.Fatalf("V2 reply: %d %q", r.Code, r.Remark)
	}
	if msgs := w.stored(); len(msgs) != 1 || msgs[0].Flag != 5 || !bytes.Equal(msgs[0].Body, []byte("short")) {
		t.Errorf("stored %d replies, want the V2 one with flag 5", len(msgs))
	}
}

// With StoreReplyMessage off the reply is only pushed: the answer names msgId "0", as Java's.
func TestReplyNotStored(t *testing.T) {
	cfg := testConfig()
	cfg.StoreReplyMessage = false
	w := newReplyWorld(t, cfg)
	op := w.sendReply(requesterID, "corr-010", "ephemeral")
	w.b.OnFrame(w.requester, codec.NewResponse(w.pushes(w.requester)[0], codec.Success, ""))
	r := w.mustAnswer(w.replier, op)
	if r.Code != codec.Success || r.Ext("msgId") != "0" || r.Ext("queueOffset") != "0" {
		t.Errorf("answer %d msgId %q queueOffset %q, want SUCCESS, 0, 0", r.Code, r.Ext("msgId"), r.Ext("queueOffset"))
	}
	if last := w.b.Store().CommitLog().LastIndex(); last != 0 {
		t.Errorf("the commit log holds %d entries, want none", last)
	}
}

// A request is an ordinary message: stored with the broker's CLUSTER, which the replier turns
// into the reply topic <cluster>_REPLY_TOPIC, a topic the broker creates at startup.
func TestRequestStoredWithClusterAndReplyTopicExists(t *testing.T) {
	cfg := testConfig()
	cfg.ClusterName = "Blue"
	h := startBroker(t, cfg, nil)
	c := h.env.accept(h.b, "127.0.1.1:40001")
	props := map[string]string{codec.PropCorrelationID: "corr-011", codec.PropReplyToClient: requesterID, codec.PropMessageTTL: "3"}
	op := h.send(c, "Orders", 0, "question", props)
	h.syncAll()
	if r := h.mustAnswer(c, op); r.Code != codec.Success {
		t.Fatalf("send: %d %s", r.Code, r.Remark)
	}
	msgs := decodeBody(t, h.mustAnswer(c, h.pull(c, "Orders", 0, 0)).Body)
	if len(msgs) != 1 || codec.Property(msgs[0].Properties, codec.PropCluster) != "Blue" ||
		codec.Property(msgs[0].Properties, codec.PropCorrelationID) != "corr-011" {
		t.Fatalf("stored request: %d messages, properties %q; want CLUSTER=Blue beside the request's own", len(msgs), msgs[0].Properties)
	}
	tc, ok := h.b.Store().Topic("Blue_REPLY_TOPIC")
	if !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 || tc.Perm != 6 {
		t.Errorf("reply topic: %+v (exists %v), want one queue, perm 6", tc, ok)
	}
}
