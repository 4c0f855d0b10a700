package brokernode

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// heartbeatAs delivers a heartbeat on c with the request header's language and version a
// client writes.
func (h *brokerHarness) heartbeatAs(c node.ConnID, lang string, version int32, body []byte) {
	h.t.Helper()
	h.opaque++
	req := codec.NewRequest(codec.ReqHeartBeat, nil, body)
	req.Opaque, req.Language, req.Version = h.opaque, lang, version
	h.b.OnFrame(c, req)
	if resp := h.mustAnswer(c, h.opaque); resp.Code != codec.Success {
		h.t.Fatalf("heartbeat: %d %s", resp.Code, resp.Remark)
	}
}

// GET_CONSUMER_CONNECTION_LIST shows the group's clients (id, remote address, language and
// version of their heartbeats), its subscriptions with their tag sets, and how it consumes,
// in Java's ConsumerConnection shape; a group with no client connected is CONSUMER_NOT_ONLINE,
// as is one whose client's connection closed. GET_PRODUCER_CONNECTION_LIST shows the producer
// group's clients.
func TestConnectionLists(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	h.heartbeatAs(c, "GO", 317, []byte(goClientHeartbeat))
	admin := h.env.accept(h.b, "127.0.9.9:50002")
	ask := func(code int16, ext map[string]string) *codec.Command {
		return h.mustAnswer(admin, h.request(admin, code, ext, nil))
	}
	resp := ask(codec.ReqGetConsumerConnectionList, map[string]string{"consumerGroup": "cg"})
	if resp.Code != codec.Success {
		t.Fatalf("consumer connections: %d %s", resp.Code, resp.Remark)
	}
	want := `{"connectionSet":[{"clientAddr":"127.0.9.8:50001","clientId":"10.0.0.1@4242","language":"GO","version":317}],` +
		`"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{` +
		`"%RETRY%cg":{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"%RETRY%cg"},` +
		`"Orders":{"classFilterMode":false,"codeSet":[2598919,2598920],"expressionType":"TAG","subString":"TagA || TagB","subVersion":1767225600000000000,"tagsSet":["TagA","TagB"],"topic":"Orders"}}}`
	if diff := cmp.Diff(want, string(resp.Body)); diff != "" {
		t.Errorf("consumer connection body (-want +got):\n%s", diff)
	}
	resp = ask(codec.ReqGetProducerConnectionList, map[string]string{"producerGroup": "pg"})
	want = `{"connectionSet":[{"clientAddr":"127.0.9.8:50001","clientId":"10.0.0.1@4242","language":"GO","version":317}]}`
	if resp.Code != codec.Success || string(resp.Body) != want {
		t.Errorf("producer connections: %d %s %s, want %s", resp.Code, resp.Remark, resp.Body, want)
	}
	for _, tc := range []struct {
		name string
		code int16
		ext  map[string]string
		want int16
	}{
		{"unknown consumer group", codec.ReqGetConsumerConnectionList, map[string]string{"consumerGroup": "nobody"}, codec.ConsumerNotOnline},
		{"no consumer group", codec.ReqGetConsumerConnectionList, nil, codec.SystemError},
		{"unknown producer group", codec.ReqGetProducerConnectionList, map[string]string{"producerGroup": "nobody"}, codec.SystemError},
		{"no producer group", codec.ReqGetProducerConnectionList, nil, codec.SystemError},
	} {
		if resp := ask(tc.code, tc.ext); resp.Code != tc.want || len(resp.Body) != 0 {
			t.Errorf("%s: code %d (%s) body %q, want code %d and no body", tc.name, resp.Code, resp.Remark, resp.Body, tc.want)
		}
	}
	h.b.OnConnClosed(c)
	if resp := ask(codec.ReqGetConsumerConnectionList, map[string]string{"consumerGroup": "cg"}); resp.Code != codec.ConsumerNotOnline {
		t.Errorf("after the client's connection closed: code %d, want CONSUMER_NOT_ONLINE", resp.Code)
	}
	if resp := ask(codec.ReqGetProducerConnectionList, map[string]string{"producerGroup": "pg"}); resp.Code != codec.SystemError {
		t.Errorf("producers after the client's connection closed: code %d, want SYSTEM_ERROR", resp.Code)
	}
}

// A heartbeat whose consumeType, consumeFromWhere or subVersion is not what a client writes
// is still accepted: the connection list shows what it can.
func TestConnectionListOfAnOddHeartbeat(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	h.heartbeatAs(c, "JAVA", 0, []byte(`{"clientID":"c1","consumerDataSet":[{"groupName":"cg","consumeType":3,"consumeFromWhere":null,`+
		`"subscriptionDataSet":[{"topic":"T","subString":"a||b","subVersion":"soon"}]}]}`))
	resp := h.mustAnswer(c, h.request(c, codec.ReqGetConsumerConnectionList, map[string]string{"consumerGroup": "cg"}, nil))
	var got codec.ConsumerConnection
	if err := json.Unmarshal(resp.Body, &got); err != nil || resp.Code != codec.Success {
		t.Fatalf("code %d, body %s: %v", resp.Code, resp.Body, err)
	}
	if got.ConsumeType != "3" || got.ConsumeFromWhere != "" || got.SubscriptionTable["T"].SubVersion != 0 ||
		!cmp.Equal(got.SubscriptionTable["T"].TagsSet, []string{"a", "b"}) {
		t.Errorf("shown as %+v", got)
	}
}

// INVOKE_BROKER_TO_RESET_OFFSET moves the group's committed offset of every queue of the topic
// to the first message stored at or after the time, pushes the new table to each client of
// the group (RESET_CONSUMER_CLIENT_OFFSET, oneway, with the topic, group and timestamp), and
// answers the table. Without isForce it moves no queue forward; a group with no client
// online still has its offsets moved.
func TestResetOffsetByTime(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	t0 := h.env.Now().UnixMilli()
	h.send(p, "Orders", 0, "m0", nil)
	h.send(p, "Orders", 1, "n0", nil)
	h.env.advance(h.b, 10*time.Second)
	h.send(p, "Orders", 0, "m1", nil)
	h.send(p, "Orders", 0, "m2", nil)
	h.syncAll()
	c := h.env.accept(h.b, "127.0.9.8:50001")
	h.heartbeatAs(c, "GO", 317, heartbeat("127.0.9.8@1", "cg"))
	commit := func(q int, off int64) {
		ext := map[string]string{"consumerGroup": "cg", "topic": "Orders", "queueId": strconv.Itoa(q), "commitOffset": strconv.FormatInt(off, 10)}
		if r := h.mustAnswer(c, h.request(c, codec.ReqUpdateConsumerOffset, ext, nil)); r.Code != codec.Success {
			t.Fatalf("commit: %d %s", r.Code, r.Remark)
		}
	}
	commit(0, 3)
	commit(1, 1)
	admin := h.env.accept(h.b, "127.0.9.9:50002")
	reset := func(group, topic string, ts int64, force bool) *codec.Command {
		ext := codec.EncodeHeader(&codec.ResetOffsetHeader{Group: group, Topic: topic, TimestampMs: ts, IsForce: force, QueueID: -1, Offset: -1})
		return h.mustAnswer(admin, h.request(admin, codec.ReqInvokeBrokerToResetOffset, ext, nil))
	}
	offsets := func() []int64 {
		var out []int64
		for q := int32(0); q < 4; q++ {
			off, _ := h.b.Store().QueryOffset("cg", "Orders", q)
			out = append(out, off)
		}
		return out
	}
	mq := func(q int32) codec.MessageQueue {
		return codec.MessageQueue{BrokerName: "broker-a", QueueID: q, Topic: "Orders"}
	}
	pushesBefore := len(h.framesTo(c))

	resp := reset("cg", "Orders", t0+5000, true)
	if resp.Code != codec.Success {
		t.Fatalf("reset: %d %s", resp.Code, resp.Remark)
	}
	table, err := codec.DecodeResetOffsetBody(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Queue 0: m1 is the first stored after t0+5s; queue 1: all older, its end; 2, 3: empty.
	qo := func(q int32, off int64) codec.QueueOffset { return codec.QueueOffset{Queue: mq(q), Offset: off} }
	want := []codec.QueueOffset{qo(0, 1), qo(1, 1), qo(2, 0), qo(3, 0)}
	if diff := cmp.Diff(want, table); diff != "" {
		t.Errorf("answered table (-want +got):\n%s", diff)
	}
	if got := offsets(); !cmp.Equal(got, []int64{1, 1, 0, 0}) {
		t.Errorf("committed offsets %v, want [1 1 0 0]", got)
	}
	pushes := h.framesTo(c)[pushesBefore:]
	if len(pushes) != 1 {
		t.Fatalf("%d frames pushed to the consumer, want 1", len(pushes))
	}
	push := pushes[0]
	if push.Code != codec.ReqResetConsumerClientOffset || push.Flag&codec.FlagOneway == 0 || string(push.Body) != string(resp.Body) ||
		push.ExtFields["group"] != "cg" || push.ExtFields["topic"] != "Orders" || push.ExtFields["timestamp"] != strconv.FormatInt(t0+5000, 10) {
		t.Errorf("push %+v with body %s", push, push.Body)
	}

	// Not forced: a reset to the start moves queues back, one to the end moves nothing.
	if resp := reset("cg", "Orders", -1, false); resp.Code != codec.Success {
		t.Fatalf("reset to the end: %d %s", resp.Code, resp.Remark)
	}
	if got := offsets(); !cmp.Equal(got, []int64{1, 1, 0, 0}) {
		t.Errorf("an unforced reset to the end moved offsets to %v", got)
	}
	if resp := reset("cg", "Orders", -1, true); resp.Code != codec.Success {
		t.Fatalf("forced reset to the end: %d %s", resp.Code, resp.Remark)
	}
	if got := offsets(); !cmp.Equal(got, []int64{3, 1, 0, 0}) {
		t.Errorf("a forced reset to the end: offsets %v, want [3 1 0 0]", got)
	}

	// The client gone, the offsets still move, and nothing is pushed.
	h.b.OnConnClosed(c)
	if resp := reset("cg", "Orders", 0, true); resp.Code != codec.Success {
		t.Fatalf("reset with no client online: %d %s", resp.Code, resp.Remark)
	}
	if got := offsets(); !cmp.Equal(got, []int64{0, 0, 0, 0}) {
		t.Errorf("reset with no client online: offsets %v, want all 0", got)
	}

	// One queue to an offset: forward too, unforced; out of the queue's range, refused.
	resetOne := func(q, off int64) *codec.Command {
		ext := codec.EncodeHeader(&codec.ResetOffsetHeader{Group: "cg", Topic: "Orders", TimestampMs: 0, QueueID: q, Offset: off})
		return h.mustAnswer(admin, h.request(admin, codec.ReqInvokeBrokerToResetOffset, ext, nil))
	}
	resp = resetOne(0, 2)
	if table, err := codec.DecodeResetOffsetBody(resp.Body); resp.Code != codec.Success || err != nil || !cmp.Equal(table, []codec.QueueOffset{qo(0, 2)}) {
		t.Errorf("reset of queue 0 to 2: code %d (%s), table %v, %v", resp.Code, resp.Remark, table, err)
	}
	if got := offsets(); !cmp.Equal(got, []int64{2, 0, 0, 0}) {
		t.Errorf("reset of queue 0 to 2: offsets %v", got)
	}
	for _, bad := range [][2]int64{{0, 4}, {4, 0}} {
		if resp := resetOne(bad[0], bad[1]); resp.Code != codec.SystemError {
			t.Errorf("reset of queue %d to %d: code %d (%s), want SYSTEM_ERROR", bad[0], bad[1], resp.Code, resp.Remark)
		}
	}
	if got := offsets(); !cmp.Equal(got, []int64{2, 0, 0, 0}) {
		t.Errorf("refused resets moved offsets to %v", got)
	}

	for _, tc := range []struct {
		name, group, topic string
		want               int16
	}{
		{"unknown topic", "cg", "Nope", codec.TopicNotExist},
		{"unknown group", "nobody", "Orders", codec.SubscriptionGroupNotExist},
	} {
		if resp := reset(tc.group, tc.topic, 0, true); resp.Code != tc.want {
			t.Errorf("%s: code %d (%s), want %d", tc.name, resp.Code, resp.Remark, tc.want)
		}
	}
	if resp := h.mustAnswer(admin, h.request(admin, codec.ReqInvokeBrokerToResetOffset, map[string]string{"group": "cg", "topic": "Orders"}, nil)); resp.Code != codec.SystemError {
		t.Errorf("a reset without timestamp: code %d, want SYSTEM_ERROR", resp.Code)
	}
}
