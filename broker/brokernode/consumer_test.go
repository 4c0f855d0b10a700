package brokernode

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

func offsetExt(group string, queue string) map[string]string {
	return map[string]string{"consumerGroup": group, "topic": "Orders", "queueId": queue, "bname": "broker-a"}
}

// A consumer group commits its offset and reads it back, per group and queue. A group that
// never committed on a young queue reads offset 0 (Java's rule, TestNewGroupOffsetRule).
func TestConsumerOffsetRoundTrip(t *testing.T) {
	h, _ := brokerWithMessages(t, testConfig(), 1)
	c := h.env.accept(h.b, "127.0.9.8:50001")

	if resp := h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset, offsetExt("cg", "0"), nil)); resp.Code != codec.Success || resp.Ext("offset") != "0" {
		t.Fatalf("query before any commit: code %d offset %q, want 0 and 0", resp.Code, resp.Ext("offset"))
	}
	upd := offsetExt("cg", "0")
	upd["commitOffset"] = "42"
	if resp := h.mustAnswer(c, h.request(c, codec.ReqUpdateConsumerOffset, upd, nil)); resp.Code != codec.Success {
		t.Fatalf("update: code %d (%s)", resp.Code, resp.Remark)
	}
	resp := h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset, offsetExt("cg", "0"), nil))
	if resp.Code != codec.Success || resp.Ext("offset") != "42" {
		t.Fatalf("query after committing 42: code %d offset %q", resp.Code, resp.Ext("offset"))
	}
	for _, other := range []map[string]string{offsetExt("other-group", "0"), offsetExt("cg", "1")} {
		if resp := h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset, other, nil)); resp.Code != codec.Success || resp.Ext("offset") != "0" {
			t.Errorf("query %v: code %d offset %q, want 0 (offsets are per group and queue)", other, resp.Code, resp.Ext("offset"))
		}
	}
	// GET_MAX_OFFSET reports the next offset to be written.
	if resp := h.mustAnswer(c, h.request(c, codec.ReqGetMaxOffset, offsetExt("", "0"), nil)); resp.Ext("offset") != "1" {
		t.Errorf("max offset of queue 0: %q, want 1", resp.Ext("offset"))
	}
}

func heartbeat(clientID, group string) []byte {
	b, _ := json.Marshal(map[string]any{
		"clientID":        clientID,
		"producerDataSet": []any{},
		"consumerDataSet": []any{map[string]any{
			"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
			"consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "unitMode": false,
			"subscriptionDataSet": []any{
				map[string]any{"topic": "Orders", "subString": "*", "tagsSet": []string{}, "codeSet": []string{}},
				map[string]any{"topic": "%RETRY%" + group, "subString": "*", "tagsSet": []string{}, "codeSet": []string{}},
			},
		}},
	})
	return b
}

func consumerList(t *testing.T, h *brokerHarness, c node.ConnID, group string) []string {
	t.Helper()
	resp := h.mustAnswer(c, h.request(c, codec.ReqGetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil))
	var body struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if resp.Code != codec.Success || json.Unmarshal(resp.Body, &body) != nil || body.ConsumerIDList == nil {
		t.Fatalf("consumer list of %s: code %d body %q", group, resp.Code, resp.Body)
	}
	return body.ConsumerIDList
}

// A consumer's heartbeat makes it a member of its group (GET_CONSUMER_LIST_BY_GROUP returns
// it), creates %RETRY%<group> and registers that with the name server; a second member makes
// the broker tell the first to rebalance; a closed connection removes its member.
func TestHeartbeatRecordsTheConsumer(t *testing.T) {
	h, _ := brokerWithMessages(t, testConfig(), 1)
	ns := h.nameServerConn()
	c1 := h.env.accept(h.b, "127.0.9.8:50001")
	c2 := h.env.accept(h.b, "127.0.9.9:50002")

	if got := consumerList(t, h, c1, "cg"); len(got) != 0 {
		t.Fatalf("consumers before any heartbeat: %v", got)
	}
	registered := len(h.framesTo(ns))
	if resp := h.mustAnswer(c1, h.request(c1, codec.ReqHeartBeat, nil, heartbeat("127.0.9.8@1", "cg"))); resp.Code != codec.Success {
		t.Fatalf("heartbeat: code %d (%s)", resp.Code, resp.Remark)
	}
	if got := consumerList(t, h, c1, "cg"); len(got) != 1 || got[0] != "127.0.9.8@1" {
		t.Fatalf("consumers after one heartbeat: %v", got)
	}
	if tc, ok := h.b.Store().Topic("%RETRY%cg"); !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 {
		t.Fatalf("%%RETRY%%cg after the heartbeat: %+v (exists %v), want 1 queue", tc, ok)
	}
	frames := h.framesTo(ns)
	if len(frames) != registered+1 || !json.Valid(frames[len(frames)-1].Body) ||
		!strings.Contains(string(frames[len(frames)-1].Body), `"%RETRY%cg"`) {
		t.Fatalf("the retry topic was not registered with the name server (%d frames, had %d)", len(frames), registered)
	}

	// Joining is a membership change the member itself is told of, as Java does; a repeated
	// heartbeat changes nothing; a second client joins and the first is told again.
	if n := len(notifications(h, c1)); n != 1 {
		t.Fatalf("joining sent %d NOTIFY_CONSUMER_IDS_CHANGED, want 1", n)
	}
	h.request(c1, codec.ReqHeartBeat, nil, heartbeat("127.0.9.8@1", "cg"))
	if n := len(notifications(h, c1)); n != 1 {
		t.Fatalf("a repeated heartbeat sent another NOTIFY_CONSUMER_IDS_CHANGED (%d in all)", n)
	}
	h.request(c2, codec.ReqHeartBeat, nil, heartbeat("127.0.9.9@2", "cg"))
	if got := consumerList(t, h, c1, "cg"); len(got) != 2 || got[0] != "127.0.9.8@1" || got[1] != "127.0.9.9@2" {
		t.Fatalf("consumers after two heartbeats: %v (want sorted)", got)
	}
	if n := notifications(h, c1); len(n) != 2 || n[1].Ext("consumerGroup") != "cg" {
		t.Fatalf("the first member got %d NOTIFY_CONSUMER_IDS_CHANGED, want 2 for cg", len(n))
	}

	h.b.OnConnClosed(c2)
	if got := consumerList(t, h, c1, "cg"); len(got) != 1 || got[0] != "127.0.9.8@1" {
		t.Fatalf("consumers after the second one's connection closed: %v", got)
	}
	if n := len(notifications(h, c1)); n != 3 {
		t.Fatalf("the remaining member got %d notifications in all, want 3 (its join, the other's join and leave)", n)
	}
}

func notifications(h *brokerHarness, c node.ConnID) []*codec.Command {
	var out []*codec.Command
	for _, f := range h.framesTo(c) {
		if f.Code == 40 {
			out = append(out, f)
		}
	}
	return out
}

// SEARCH_OFFSET_BY_TIMESTAMP (CONSUME_FROM_TIMESTAMP) answers the first offset stored at or
// after the time, or the end of the queue; GET_MIN_OFFSET and GET_MAX_OFFSET bound the queue.
// Every answer the client can use carries ext offset; a malformed request is refused.
func TestSearchOffsetByTimestamp(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	t0 := h.env.Now().UnixMilli()
	h.send(p, "Orders", 0, "m0", nil)
	h.env.advance(h.b, 10*time.Second)
	h.send(p, "Orders", 0, "m1", nil)
	h.send(p, "Orders", 0, "m2", nil)
	h.syncAll()
	c := h.env.accept(h.b, "127.0.9.8:50001")
	ask := func(code int16, topic, queue, ts string) *codec.Command {
		ext := map[string]string{"topic": topic, "queueId": queue, "bname": "broker-a"}
		if ts != "" {
			ext["timestamp"] = ts
		}
		return h.mustAnswer(c, h.request(c, code, ext, nil))
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(t0+d.Milliseconds(), 10) }
	cases := []struct {
		name             string
		code             int16
		topic, queue, ts string
		wantCode         int16
		wantOffset       string
	}{
		{"before everything", codec.ReqSearchOffsetByTimestamp, "Orders", "0", "0", codec.Success, "0"},
		{"exactly the first store time", codec.ReqSearchOffsetByTimestamp, "Orders", "0", ms(0), codec.Success, "0"},
		{"between the two sends", codec.ReqSearchOffsetByTimestamp, "Orders", "0", ms(5 * time.Second), codec.Success, "1"},
		{"exactly the second store time", codec.ReqSearchOffsetByTimestamp, "Orders", "0", ms(10 * time.Second), codec.Success, "1"},
		{"after everything: the end", codec.ReqSearchOffsetByTimestamp, "Orders", "0", ms(time.Hour), codec.Success, "3"},
		{"empty queue", codec.ReqSearchOffsetByTimestamp, "Orders", "1", "0", codec.Success, "0"},
		{"unknown topic", codec.ReqSearchOffsetByTimestamp, "Nope", "0", "0", codec.Success, "0"},
		{"no timestamp", codec.ReqSearchOffsetByTimestamp, "Orders", "0", "", codec.SystemError, ""},
		{"timestamp not a number", codec.ReqSearchOffsetByTimestamp, "Orders", "0", "soon", codec.SystemError, ""},
		{"queue id out of range", codec.ReqSearchOffsetByTimestamp, "Orders", "4294967296", "0", codec.SystemError, ""},
		{"min offset", codec.ReqGetMinOffset, "Orders", "0", "", codec.Success, "0"},
		{"max offset", codec.ReqGetMaxOffset, "Orders", "0", "", codec.Success, "3"},
		{"max offset of an empty queue", codec.ReqGetMaxOffset, "Orders", "2", "", codec.Success, "0"},
		{"max offset, bad queue", codec.ReqGetMaxOffset, "Orders", "-1", "", codec.SystemError, ""},
	}
	for _, tc := range cases {
		resp := ask(tc.code, tc.topic, tc.queue, tc.ts)
		off, has := resp.ExtFields["offset"]
		if resp.Code != tc.wantCode || off != tc.wantOffset || has != (tc.wantOffset != "") {
			t.Errorf("%s: code %d offset %q (present %v) remark %q; want code %d offset %q",
				tc.name, resp.Code, off, has, resp.Remark, tc.wantCode, tc.wantOffset)
		}
	}
}

// A clean stop persists the offsets committed since the last periodic flush.
func TestOnStopFlushesOffsets(t *testing.T) {
	h, _ := brokerWithMessages(t, testConfig(), 1)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	upd := offsetExt("cg", "0")
	upd["commitOffset"] = "1"
	h.mustAnswer(c, h.request(c, codec.ReqUpdateConsumerOffset, upd, nil))
	if b, _ := h.disk.ReadFile("offsets.json"); strings.Contains(string(b), `"cg"`) {
		t.Fatalf("the offset was flushed before the stop: %s", b)
	}
	h.b.OnStop()
	if b, err := h.disk.ReadFile("offsets.json"); err != nil || !strings.Contains(string(b), `"cg"`) {
		t.Fatalf("offsets.json after OnStop: %s %v", b, err)
	}
}

// A group with no offset on a queue reads offset 0 while the queue is young, as from a Java
// 4.x broker (ConsumerManageProcessor.queryConsumerOffset: min offset 0 and the head still in
// memory), so a new group with CONSUME_FROM_LAST_OFFSET receives what a young topic holds;
// once the head is older than RecentHeadEntries commit-log entries, or the topic is unknown,
// it reads 22 QUERY_NOT_FOUND and the client applies its consumeFromWhere.
func TestNewGroupOffsetRule(t *testing.T) {
	cfg := testConfig()
	cfg.RecentHeadEntries = 5
	h, p := brokerWithMessages(t, cfg, 3) // Orders queue 0: commit-log indexes 1..3
	c := h.env.accept(h.b, "127.0.9.8:50001")
	query := func(topic, queue string) *codec.Command {
		return h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset,
			map[string]string{"consumerGroup": "new", "topic": topic, "queueId": queue}, nil))
	}
	expect := func(step, topic, queue string, code int16, offset string) {
		t.Helper()
		if r := query(topic, queue); r.Code != code || r.Ext("offset") != offset {
			t.Errorf("%s: %s/%s answered code %d offset %q, want %d %q", step, topic, queue, r.Code, r.Ext("offset"), code, offset)
		}
	}
	expect("young queue", "Orders", "0", codec.Success, "0")
	expect("empty queue", "Orders", "1", codec.Success, "0")
	expect("unknown topic", "Nope", "0", codec.QueryNotFound, "")

	// Two more messages elsewhere: the head (index 1) is 4 entries behind the end (5).
	h.send(p, "Orders", 2, "x", nil)
	h.send(p, "Orders", 2, "y", nil)
	h.syncAll()
	expect("head 4 entries behind", "Orders", "0", codec.Success, "0")
	h.send(p, "Orders", 2, "z", nil)
	h.syncAll()
	expect("head 5 entries behind", "Orders", "0", codec.QueryNotFound, "")
	expect("queue 2, head 2 entries behind", "Orders", "2", codec.Success, "0")
	expect("still empty", "Orders", "1", codec.Success, "0")

	// A stored offset wins over the rule, both ways.
	h.commitOffset(c, "new", "Orders", 0, 2)
	h.commitOffset(c, "new", "Orders", 2, 3)
	expect("committed on an old queue", "Orders", "0", codec.Success, "2")
	expect("committed on a young queue", "Orders", "2", codec.Success, "3")
}

// UNREGISTER_CLIENT (35), which Java clients send at shutdown (the Go client never does):
// the client leaves its groups at once, the remaining members are told, the answer is SUCCESS.
func TestUnregisterClient(t *testing.T) {
	h, _ := brokerWithMessages(t, testConfig(), 1)
	c1 := h.env.accept(h.b, "127.0.9.8:50001")
	c2 := h.env.accept(h.b, "127.0.9.9:50002")
	h.request(c1, codec.ReqHeartBeat, nil, heartbeat("127.0.9.8@1", "cg"))
	h.request(c2, codec.ReqHeartBeat, nil, heartbeat("127.0.9.9@2", "cg"))
	before := len(notifications(h, c1))
	resp := h.mustAnswer(c2, h.request(c2, codec.ReqUnregisterClient,
		map[string]string{"clientID": "127.0.9.9@2", "consumerGroup": "cg"}, nil))
	if resp.Code != codec.Success {
		t.Fatalf("UNREGISTER_CLIENT: code %d (%s)", resp.Code, resp.Remark)
	}
	if got := consumerList(t, h, c1, "cg"); len(got) != 1 || got[0] != "127.0.9.8@1" {
		t.Fatalf("consumers after the second one unregistered: %v", got)
	}
	if n := len(notifications(h, c1)); n != before+1 {
		t.Fatalf("the remaining member got %d notifications after the unregister, want 1", n-before)
	}
}
