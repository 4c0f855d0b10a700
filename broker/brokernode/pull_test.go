package brokernode

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// brokerWithMessages is a ready broker whose topic Orders holds n durable messages on queue 0
// (queues 1..3 exist but are empty).
func brokerWithMessages(t *testing.T, cfg Config, n int) (*brokerHarness, node.ConnID) {
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	for i := 0; i < n; i++ {
		h.send(p, "Orders", 0, "m"+strconv.Itoa(i), map[string]string{codec.PropTags: "TagA"})
	}
	h.syncAll()
	return h, p
}

// Every PULL_MESSAGE answer carries nextBeginOffset, minOffset and maxOffset, whatever its
// code, and each store outcome maps to the code and next offset RocketMQ clients act on
// (docs/protocol.md, "Pulls").
func TestPullStatusMapping(t *testing.T) {
	cases := []struct {
		name     string
		topic    string
		queue    int
		offset   int64
		extra    []string
		wantCode int16
		wantNext int64
		wantMax  int64
		wantMsgs int
	}{
		{name: "messages at the offset", topic: "Orders", offset: 1, wantCode: codec.Success, wantNext: 3, wantMax: 3, wantMsgs: 2},
		{name: "maxMsgNums bounds the batch", topic: "Orders", offset: 0, extra: []string{"maxMsgNums", "2"}, wantCode: codec.Success, wantNext: 2, wantMax: 3, wantMsgs: 2},
		{name: "offset at the end", topic: "Orders", offset: 3, wantCode: codec.PullNotFound, wantNext: 3, wantMax: 3},
		{name: "offset past the end", topic: "Orders", offset: 7, wantCode: codec.PullOffsetMoved, wantNext: 3, wantMax: 3},
		{name: "empty queue at offset 0", topic: "Orders", queue: 1, offset: 0, wantCode: codec.PullNotFound, wantNext: 0, wantMax: 0},
		{name: "empty queue at offset above 0", topic: "Orders", queue: 1, offset: 5, wantCode: codec.PullOffsetMoved, wantNext: 0, wantMax: 0},
		{name: "no message matches the subscription", topic: "Orders", offset: 0, extra: []string{"sysFlag", "4", "subscription", "TagB"},
			wantCode: codec.PullRetryImmediately, wantNext: 3, wantMax: 3},
		{name: "the subscription matches", topic: "Orders", offset: 0, extra: []string{"sysFlag", "4", "subscription", "TagB || TagA"},
			wantCode: codec.Success, wantNext: 3, wantMax: 3, wantMsgs: 3},
		{name: "unknown topic", topic: "NoSuchTopic", offset: 4, wantCode: codec.TopicNotExist, wantNext: 4, wantMax: 0},
		{name: "queue out of range", topic: "Orders", queue: 4, offset: 0, wantCode: codec.SystemError, wantNext: 0, wantMax: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := brokerWithMessages(t, testConfig(), 3)
			c := h.env.accept(h.b, "127.0.9.8:50001")
			resp := h.mustAnswer(c, h.pull(c, tc.topic, tc.queue, tc.offset, tc.extra...))
			for _, k := range []string{"nextBeginOffset", "minOffset", "maxOffset"} {
				if _, ok := resp.ExtFields[k]; !ok {
					t.Fatalf("code %d answer lacks ext %s: %v", resp.Code, k, resp.ExtFields)
				}
			}
			ph, _ := codec.DecodeHeader[codec.PullResponseHeader](resp)
			next, max, min := ph.NextBeginOffset, ph.MaxOffset, ph.MinOffset
			if resp.Code != tc.wantCode || next != tc.wantNext || max != tc.wantMax || min != 0 {
				t.Errorf("code %d next %d min %d max %d (%s); want code %d next %d min 0 max %d",
					resp.Code, next, min, max, resp.Remark, tc.wantCode, tc.wantNext, tc.wantMax)
			}
			if tc.wantCode != codec.Success && len(resp.Body) != 0 {
				t.Errorf("code %d answer has a body of %d bytes", resp.Code, len(resp.Body))
			}
			if got := len(decodeBody(t, resp.Body)); got != tc.wantMsgs {
				t.Errorf("%d messages, want %d", got, tc.wantMsgs)
			}
		})
	}
}

func isParkedPull(tag any) bool { _, ok := tag.(*parkedPull); return ok }

// A long-polling pull (sysFlag bit 2) that finds nothing new is held, and answered as soon as
// a message for its queue becomes durable: not when it is written, when it is fsynced.
func TestLongPollIsAnsweredWhenAMessageArrives(t *testing.T) {
	h, p := brokerWithMessages(t, testConfig(), 1)
	c := h.env.accept(h.b, "127.0.9.8:50001")

	op := h.pull(c, "Orders", 0, 1, "sysFlag", "6", "suspendTimeoutMillis", "20000")
	if resp := h.answer(c, op); resp != nil {
		t.Fatalf("a long-polling pull at the end of the queue was answered at once: code %d", resp.Code)
	}
	// A message on another queue does not wake it.
	h.send(p, "Orders", 1, "elsewhere", nil)
	h.syncAll()
	if h.answer(c, op) != nil {
		t.Fatal("a message on queue 1 woke a pull parked on queue 0")
	}
	h.send(p, "Orders", 0, "m1", nil)
	if h.answer(c, op) != nil {
		t.Fatal("the parked pull was answered before the new message's fsync")
	}
	h.syncAll()
	resp := h.mustAnswer(c, op)
	msgs := decodeBody(t, resp.Body)
	if resp.Code != codec.Success || len(msgs) != 1 || string(msgs[0].Body) != "m1" || resp.Ext("nextBeginOffset") != "2" {
		t.Fatalf("woken pull: code %d, %d messages, next %q", resp.Code, len(msgs), resp.Ext("nextBeginOffset"))
	}
	if live := h.env.liveTimers(isParkedPull); len(live) != 0 {
		t.Fatalf("the woken pull left %d long-poll timers running", len(live))
	}
}

// A long-polling pull whose time runs out is answered 19 at its own offset; the time is what
// the client asked, capped at MaxLongPoll so the answer beats the client's 30 s timeout.
func TestLongPollTimesOutWithNotFound(t *testing.T) {
	cases := []struct {
		name      string
		suspendMs string
		want      time.Duration
	}{
		{"the client's time", "2000", 2 * time.Second},
		{"capped at MaxLongPoll", "20000", 15 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := brokerWithMessages(t, testConfig(), 1)
			c := h.env.accept(h.b, "127.0.9.8:50001")
			op := h.pull(c, "Orders", 0, 1, "sysFlag", "6", "suspendTimeoutMillis", tc.suspendMs)
			timers := h.env.liveTimers(isParkedPull)
			if len(timers) != 1 || timers[0].D != tc.want {
				t.Fatalf("long-poll timers %v, want one of %v", timers, tc.want)
			}
			h.env.advance(h.b, tc.want-time.Millisecond)
			if h.answer(c, op) != nil {
				t.Fatal("answered before its long-polling time ran out")
			}
			h.env.advance(h.b, time.Millisecond)
			resp := h.mustAnswer(c, op)
			if resp.Code != codec.PullNotFound || resp.Ext("nextBeginOffset") != "1" || resp.Ext("maxOffset") != "1" {
				t.Fatalf("timed-out pull: code %d ext %v, want 19 with next 1, max 1", resp.Code, resp.ExtFields)
			}
		})
	}
}

// Without the suspend bit, or with no suspend time, a pull at the end is answered at once.
func TestPullWithoutSuspendIsNotParked(t *testing.T) {
	for _, extra := range [][]string{
		{"sysFlag", "4", "suspendTimeoutMillis", "20000"},
		{"sysFlag", "6", "suspendTimeoutMillis", "0"},
	} {
		h, _ := brokerWithMessages(t, testConfig(), 1)
		c := h.env.accept(h.b, "127.0.9.8:50001")
		if resp := h.answer(c, h.pull(c, "Orders", 0, 1, extra...)); resp == nil || resp.Code != codec.PullNotFound {
			t.Fatalf("pull %v at the end: %+v, want an immediate 19", extra, resp)
		}
	}
}

// When the consumer's connection closes its parked pull is forgotten: its timer is cancelled
// and a later message does not try to answer it.
func TestClosingTheConnectionDropsAParkedPull(t *testing.T) {
	h, p := brokerWithMessages(t, testConfig(), 1)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	stays := h.env.accept(h.b, "127.0.9.9:50002")
	gone := h.pull(c, "Orders", 0, 1, "sysFlag", "6", "suspendTimeoutMillis", "20000")
	kept := h.pull(stays, "Orders", 0, 1, "sysFlag", "6", "suspendTimeoutMillis", "20000")

	h.b.OnConnClosed(c)
	if live := h.env.liveTimers(isParkedPull); len(live) != 1 {
		t.Fatalf("after the close %d long-poll timers run, want 1 (the other consumer's)", len(live))
	}
	h.send(p, "Orders", 0, "m1", nil)
	h.syncAll()
	h.env.advance(h.b, time.Minute)
	for _, f := range h.env.Sent() {
		if f.Conn == c && f.Cmd.Opaque == gone {
			t.Fatalf("the broker answered a pull on a closed connection: code %d", f.Cmd.Code)
		}
	}
	if resp := h.answer(stays, kept); resp == nil || resp.Code != codec.Success {
		t.Fatalf("the other consumer's parked pull: %+v", resp)
	}
	if h.b.parked.count != 0 {
		t.Fatalf("%d pulls still counted as parked", h.b.parked.count)
	}
}

// A pull with the commit-offset bit records the consumer's offset as a side effect.
func TestPullWithCommitOffsetBitStoresTheOffset(t *testing.T) {
	h, _ := brokerWithMessages(t, testConfig(), 3)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	h.mustAnswer(c, h.pull(c, "Orders", 0, 2, "sysFlag", "5", "commitOffset", "2"))
	resp := h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset,
		map[string]string{"consumerGroup": "cg", "topic": "Orders", "queueId": "0"}, nil))
	if resp.Code != codec.Success || resp.Ext("offset") != "2" {
		t.Fatalf("offset after a pull committing 2: code %d offset %q", resp.Code, resp.Ext("offset"))
	}
}

// Server-side tag filtering is exact: "Aa" and "BB" have the same Java String.hashCode (the
// consume queue's tags hash), yet a subscription to one never receives the other, whether the
// pull carries the subscription (pull consumer) or the group's heartbeat does (push consumer).
// Skipped messages still count as scanned, so nextBeginOffset moves past them.
func TestTagFilterIsExactDespiteHashCollisions(t *testing.T) {
	if codec.TagsHash("Aa") != codec.TagsHash("BB") {
		t.Fatal("the test needs two tags with the same hash")
	}
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	tags := []string{"Aa", "BB", "", "Aa", "BBx", "BB"}
	for i, tag := range tags {
		props := map[string]string{}
		if tag != "" {
			props[codec.PropTags] = tag
		}
		h.send(p, "Orders", 0, "m"+strconv.Itoa(i), props)
	}
	h.syncAll()
	c := h.env.accept(h.b, "127.0.9.8:50001")
	bodies := func(resp *codec.Command) []string {
		var out []string
		for _, m := range decodeBody(t, resp.Body) {
			out = append(out, string(m.Body))
		}
		return out
	}
	cases := []struct {
		sub      string
		offset   int64
		wantCode int16
		want     []string
		wantNext int64
	}{
		{"Aa", 0, codec.Success, []string{"m0", "m3"}, 6},
		{"BB", 0, codec.Success, []string{"m1", "m5"}, 6},
		{" BB || BBx ", 0, codec.Success, []string{"m1", "m4", "m5"}, 6},
		{"Aa", 4, codec.PullRetryImmediately, nil, 6}, // only a colliding BB left
		{"*", 0, codec.Success, []string{"m0", "m1", "m2", "m3", "m4", "m5"}, 6},
	}
	for _, tc := range cases {
		resp := h.mustAnswer(c, h.pull(c, "Orders", 0, tc.offset, "sysFlag", "4", "subscription", tc.sub))
		ph, _ := codec.DecodeHeader[codec.PullResponseHeader](resp)
		next := ph.NextBeginOffset
		if got := bodies(resp); resp.Code != tc.wantCode || !slices.Equal(got, tc.want) || next != tc.wantNext {
			t.Errorf("subscription %q from %d: code %d, %v, next %d; want code %d, %v, next %d",
				tc.sub, tc.offset, resp.Code, got, next, tc.wantCode, tc.want, tc.wantNext)
		}
	}

	// A push consumer's pull has no subscription (sysFlag bit 2 clear): the group's heartbeat
	// subscription filters.
	hb := mustJSON(map[string]any{"clientID": "127.0.9.8@1", "consumerDataSet": []any{map[string]any{
		"groupName": "cg", "messageModel": "CLUSTERING",
		"subscriptionDataSet": []any{map[string]any{"topic": "Orders", "subString": "BB"}}}}})
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, hb))
	resp := h.mustAnswer(c, h.pull(c, "Orders", 0, 0, "sysFlag", "2", "subscription", ""))
	if got := bodies(resp); resp.Code != codec.Success || !slices.Equal(got, []string{"m1", "m5"}) {
		t.Errorf("push pull with the group subscribed to BB: code %d, %v; want [m1 m5]", resp.Code, got)
	}
}

// Every PULL_MESSAGE answer, whatever its code and however it is reached (at once, after
// long polling, woken by a message, refused), carries nextBeginOffset, minOffset, maxOffset
// and suggestWhichBrokerId as decimal strings (docs/protocol.md, "Pulls": a missing nextBeginOffset
// sends a consumer back to offset 0). Orders/0 holds m0..m2, Orders/1 is empty.
func TestEveryPullAnswerCarriesItsOffsets(t *testing.T) {
	type outcome struct {
		h  *brokerHarness
		c  node.ConnID
		op int32
	}
	pullNow := func(t *testing.T, setup func(*brokerHarness), queue int, offset int64, extra ...string) outcome {
		h, _ := brokerWithMessages(t, testConfig(), 3)
		if setup != nil {
			setup(h)
		}
		c := h.env.accept(h.b, "127.0.9.8:50001")
		return outcome{h, c, h.pull(c, "Orders", queue, offset, extra...)}
	}
	park := []string{"sysFlag", "6", "suspendTimeoutMillis", "5000"}
	cases := []struct {
		name     string
		run      func(t *testing.T) outcome
		wantCode int16
		wantNext string
	}{
		{"found", func(t *testing.T) outcome { return pullNow(t, nil, 0, 1) }, codec.Success, "3"},
		{"nothing new, not parked", func(t *testing.T) outcome { return pullNow(t, nil, 0, 3) }, codec.PullNotFound, "3"},
		{"nothing new, long poll ran out", func(t *testing.T) outcome {
			o := pullNow(t, nil, 0, 3, park...)
			o.h.env.advance(o.h.b, 5*time.Second)
			return o
		}, codec.PullNotFound, "3"},
		{"long poll woken by a message", func(t *testing.T) outcome {
			o := pullNow(t, nil, 0, 3, park...)
			p := o.h.env.accept(o.h.b, "127.0.9.9:50002")
			o.h.send(p, "Orders", 0, "m3", nil)
			o.h.syncAll()
			return o
		}, codec.Success, "4"},
		{"nothing matches the tags", func(t *testing.T) outcome { return pullNow(t, nil, 0, 0, "sysFlag", "4", "subscription", "TagB") },
			codec.PullRetryImmediately, "3"},
		{"messages removed from the commit log", func(t *testing.T) outcome {
			return pullNow(t, func(h *brokerHarness) {
				p := h.env.accept(h.b, "127.0.9.9:50002")
				h.send(p, "Orders", 1, "keeps the commit log non-empty", nil)
				h.syncAll()
				if err := h.b.Store().CommitLog().TruncateFront(4); err != nil {
					t.Fatal(err)
				}
			}, 0, 0)
		}, codec.PullRetryImmediately, "3"},
		{"empty queue, offset 0, long poll ran out", func(t *testing.T) outcome {
			o := pullNow(t, nil, 1, 0, park...)
			o.h.env.advance(o.h.b, 5*time.Second)
			return o
		}, codec.PullNotFound, "0"},
		{"empty queue, offset above 0", func(t *testing.T) outcome { return pullNow(t, nil, 1, 2) }, codec.PullOffsetMoved, "0"},
		{"past the end", func(t *testing.T) outcome { return pullNow(t, nil, 0, 9) }, codec.PullOffsetMoved, "3"},
		{"below the start", func(t *testing.T) outcome {
			h, _ := brokerWithMessages(t, testConfig(), 3)
			h = restartWithLogFront(t, h, "cq/Orders/0", 3) // offsets 0 and 1 gone
			c := h.env.accept(h.b, "127.0.9.8:50001")
			return outcome{h, c, h.pull(c, "Orders", 0, 0)}
		}, codec.PullOffsetMoved, "2"},
		{"unknown topic", func(t *testing.T) outcome {
			h, _ := brokerWithMessages(t, testConfig(), 3)
			c := h.env.accept(h.b, "127.0.9.8:50001")
			return outcome{h, c, h.pull(c, "Nope", 0, 5)}
		}, codec.TopicNotExist, "5"},
		{"queue out of range", func(t *testing.T) outcome { return pullNow(t, nil, 7, 1) }, codec.SystemError, "1"},
		{"queueOffset not a number", func(t *testing.T) outcome { return pullNow(t, nil, 0, 0, "queueOffset", "x") }, codec.SystemError, "0"},
		{"unreadable message skipped", func(t *testing.T) outcome {
			return pullNow(t, func(h *brokerHarness) {
				if err := h.disk.FlipByte("commitlog", 1); err != nil {
					t.Fatal(err)
				}
			}, 0, 0)
		}, codec.Success, "3"},
		{"broker still recovering", func(t *testing.T) outcome {
			env := newBrokerEnv(t, simdisk.New())
			b, err := New(env, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			b.Start() // the recovery fsync never completes
			h := &brokerHarness{t: t, env: env, b: b, cfg: testConfig()}
			c := env.accept(b, "127.0.9.8:50001")
			return outcome{h, c, h.pull(c, "Orders", 0, 4)}
		}, codec.SystemBusy, "4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.run(t)
			resp := o.h.mustAnswer(o.c, o.op)
			for _, k := range []string{"nextBeginOffset", "minOffset", "maxOffset", "suggestWhichBrokerId"} {
				v, ok := resp.ExtFields[k]
				if _, err := strconv.ParseInt(v, 10, 64); !ok || err != nil {
					t.Fatalf("code %d (%s): ext %s = %q (present %v), want a decimal string; ext %v", resp.Code, resp.Remark, k, v, ok, resp.ExtFields)
				}
			}
			if resp.Code != tc.wantCode || resp.Ext("nextBeginOffset") != tc.wantNext || resp.Ext("suggestWhichBrokerId") != "0" {
				t.Errorf("code %d (%s) next %s suggest %s; want code %d next %s suggest 0", resp.Code, resp.Remark,
					resp.Ext("nextBeginOffset"), resp.Ext("suggestWhichBrokerId"), tc.wantCode, tc.wantNext)
			}
		})
	}
}

// restartWithLogFront stops h's broker, drops the entries of one of its logs before index
// first (as retention would), and starts a broker on the same disk.
func restartWithLogFront(t *testing.T, h *brokerHarness, log string, first uint64) *brokerHarness {
	t.Helper()
	// A checkpoint first, so that recovery does not rebuild the queue from the commit log.
	h.env.advance(h.b, h.cfg.CheckpointInterval)
	h.syncAll()
	if h.b.Store().Checkpoint() == 0 {
		t.Fatal("no checkpoint was taken")
	}
	if err := h.b.Store().Close(); err != nil {
		t.Fatal(err)
	}
	l, err := h.disk.OpenLog(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFront(first); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return startBroker(t, h.cfg, h.disk)
}

// Several consumers (broadcasting, or a consumer and a lagging one) may park pulls on the
// same queue: one message wakes them all.
func TestLongPollWakesEveryPullOnTheQueue(t *testing.T) {
	h, p := brokerWithMessages(t, testConfig(), 1)
	conns := []node.ConnID{h.env.accept(h.b, "127.0.9.8:50001"), h.env.accept(h.b, "127.0.9.9:50002")}
	var ops []int32
	for _, c := range conns {
		ops = append(ops, h.pull(c, "Orders", 0, 1, "sysFlag", "6", "suspendTimeoutMillis", "20000"))
	}
	h.send(p, "Orders", 0, "m1", nil)
	h.syncAll()
	for i, c := range conns {
		if resp := h.answer(c, ops[i]); resp == nil || resp.Code != codec.Success || len(decodeBody(t, resp.Body)) != 1 {
			t.Fatalf("parked pull %d after the message: %+v", i, resp)
		}
	}
}
