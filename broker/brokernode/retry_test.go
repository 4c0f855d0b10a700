package brokernode

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

// sendBack is CONSUMER_SEND_MSG_BACK as the Go push consumer writes it.
func (h *brokerHarness) sendBack(c node.ConnID, m *codec.Message, delayLevel, maxReconsume int) int32 {
	return h.request(c, codec.ReqConsumerSendMsgBack, map[string]string{
		"group": "cg", "offset": strconv.FormatInt(m.PhysicalOffset, 10), "delayLevel": strconv.Itoa(delayLevel),
		"originMsgId": codec.Property(m.Properties, codec.PropUniqKey), "originTopic": "Orders",
		"unitMode": "false", "maxReconsumeTimes": strconv.Itoa(maxReconsume), "bname": "broker-a",
	}, nil)
}

// retryConfig has levels 1..6 of 1..6 seconds, so level n waits n seconds.
func retryConfig() Config {
	var levels []time.Duration
	for i := 1; i <= 6; i++ {
		levels = append(levels, time.Duration(i)*time.Second)
	}
	return delayConfig(levels...)
}

// A consumer fails a message three times with maxReconsumeTimes 2. Each send-back is answered
// only once the copy is durable; the copies go to %RETRY%cg through delay levels 3 then 4
// (3 + reconsumeTimes), keeping body, flag, born host and time, tags and UNIQ_KEY, with
// RETRY_TOPIC naming the original topic, ORIGIN_MESSAGE_ID the original's offset id and
// reconsumeTimes counting up; the third failure sends it to %DLQ%cg at once, without a delay.
func TestSendBackRetriesThenDeadLetters(t *testing.T) {
	h := startBroker(t, retryConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	cons := h.env.accept(h.b, "127.0.9.8:50001")
	props := map[string]string{codec.PropTags: "TagA", codec.PropUniqKey: "C0A8000100002A9F0000000000000001", "user": "u"}
	send := h.send(p, "Orders", 0, "payload", props)
	h.settle()
	orig := h.queue("Orders", 0)[0]
	originID := h.mustAnswer(p, send).Ext("msgId")

	failed := orig
	for round, level := range []int{3, 4} {
		op := h.sendBack(cons, failed, 0, 2)
		if resp := h.answer(cons, op); resp != nil {
			t.Fatalf("round %d: send-back answered before its fsync: %+v", round, resp)
		}
		h.completeSyncs()
		if resp := h.mustAnswer(cons, op); resp.Code != codec.Success {
			t.Fatalf("round %d: send-back: code %d (%s)", round, resp.Code, resp.Remark)
		}
		h.settle()
		held := h.queue(ScheduleTopic, int32(level-1))
		if len(held) != 1 {
			t.Fatalf("round %d: level %d holds %d messages, want 1", round, level, len(held))
		}
		if got := codec.Property(held[0].Properties, codec.PropRealTopc); got != "%RETRY%cg" {
			t.Fatalf("round %d: held copy's REAL_TOPIC %q", round, got)
		}
		h.wait(time.Duration(level)*time.Second - time.Millisecond)
		if n := len(h.queue("%RETRY%cg", 0)); n != round {
			t.Fatalf("round %d: retry queue holds %d messages before the level-%d delay passed, want %d", round, n, level, round)
		}
		h.wait(time.Millisecond)
		retries := h.queue("%RETRY%cg", 0)
		if len(retries) != round+1 {
			t.Fatalf("round %d: retry queue holds %d messages after the delay, want %d", round, len(retries), round+1)
		}
		r := retries[round]
		rp := codec.ParseProperties(r.Properties)
		switch {
		case string(r.Body) != "payload" || r.BornTimestamp != orig.BornTimestamp || r.BornHost != orig.BornHost || r.Flag != orig.Flag:
			t.Errorf("round %d: retry copy body %q born %d %v flag %d, want the original's", round, r.Body, r.BornTimestamp, r.BornHost, r.Flag)
		case r.ReconsumeTimes != int32(round+1):
			t.Errorf("round %d: reconsumeTimes %d, want %d", round, r.ReconsumeTimes, round+1)
		case rp[codec.PropRetryTopic] != "Orders" || rp[codec.PropOriginMessageID] != originID:
			t.Errorf("round %d: RETRY_TOPIC %q ORIGIN_MESSAGE_ID %q, want Orders and %s", round, rp[codec.PropRetryTopic], rp[codec.PropOriginMessageID], originID)
		case rp[codec.PropTags] != "TagA" || rp[codec.PropUniqKey] != props[codec.PropUniqKey] || rp["user"] != "u":
			t.Errorf("round %d: user properties lost: %v", round, rp)
		case rp[codec.PropDelay] != "":
			t.Errorf("round %d: the delivered retry still carries DELAY=%s", round, rp[codec.PropDelay])
		}
		failed = r
	}

	op := h.sendBack(cons, failed, 0, 2)
	h.settle()
	if resp := h.mustAnswer(cons, op); resp.Code != codec.Success {
		t.Fatalf("third send-back: code %d (%s)", resp.Code, resp.Remark)
	}
	dlq := h.queue("%DLQ%cg", 0)
	if len(dlq) != 1 {
		t.Fatalf("%%DLQ%%cg holds %d messages right after the third failure, want 1", len(dlq))
	}
	d := dlq[0]
	dp := codec.ParseProperties(d.Properties)
	if string(d.Body) != "payload" || d.ReconsumeTimes != 3 || dp[codec.PropRetryTopic] != "Orders" ||
		dp[codec.PropOriginMessageID] != originID || dp[codec.PropDelay] != "" || dp[codec.PropUniqKey] != props[codec.PropUniqKey] {
		t.Errorf("dead letter: body %q reconsumeTimes %d properties %v", d.Body, d.ReconsumeTimes, dp)
	}
	tc, ok := h.b.Store().Topic("%DLQ%cg")
	if !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 || tc.Perm&route.PermRead == 0 {
		t.Errorf("DLQ topic config %+v (%v): want 1 readable queue", tc, ok)
	}
	h.wait(10 * time.Second)
	if n := len(h.queue("%RETRY%cg", 0)); n != 2 {
		t.Errorf("retry queue holds %d messages at the end, want 2", n)
	}
}

// delayLevel -1 (orderly consumption past its limit) sends straight to the DLQ; a consumer's
// own delay level is honoured.
func TestSendBackDelayLevelFromTheConsumer(t *testing.T) {
	h := startBroker(t, retryConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.send(p, "Orders", 0, "a", nil)
	h.send(p, "Orders", 0, "b", nil)
	h.settle()
	msgs := h.queue("Orders", 0)
	opA := h.sendBack(p, msgs[0], -1, 16)
	opB := h.sendBack(p, msgs[1], 1, 16)
	h.settle()
	for _, op := range []int32{opA, opB} {
		if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
			t.Fatalf("send-back: code %d (%s)", resp.Code, resp.Remark)
		}
	}
	if got := bodies(h.queue("%DLQ%cg", 0)); strings.Join(got, ",") != "a" {
		t.Errorf("DLQ holds %v, want [a]", got)
	}
	if got := bodies(h.queue(ScheduleTopic, 0)); strings.Join(got, ",") != "b" {
		t.Errorf("level 1 holds %v, want [b]", got)
	}
	h.wait(time.Second)
	if got := bodies(h.queue("%RETRY%cg", 0)); strings.Join(got, ",") != "b" {
		t.Errorf("retry queue after 1s holds %v, want [b]", got)
	}
}

// Bad send-back requests get a clear error and store nothing.
func TestSendBackErrors(t *testing.T) {
	h := startBroker(t, retryConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.send(p, "Orders", 0, "a", map[string]string{codec.PropUniqKey: "K1"})
	h.settle()
	last := h.b.Store().CommitLog().LastIndex()
	for _, tc := range []struct {
		name string
		ext  map[string]string
		want string
	}{
		{"no group", map[string]string{"offset": "1"}, `missing header field "group"`},
		{"bad group", map[string]string{"group": "a b", "offset": "1"}, "valid retry topic"},
		{"no offset", map[string]string{"group": "cg"}, "offset"},
		{"offset not a number", map[string]string{"group": "cg", "offset": "x"}, `header field "offset": "x" is not an integer`},
		{"unknown offset", map[string]string{"group": "cg", "offset": "99"}, "no message at commit-log offset 99"},
		{"offset zero", map[string]string{"group": "cg", "offset": "0"}, "no message at commit-log offset 0"},
		{"bad delay level", map[string]string{"group": "cg", "offset": "1", "delayLevel": "soon"}, "delayLevel"},
		{"bad max", map[string]string{"group": "cg", "offset": "1", "maxReconsumeTimes": "many"}, "maxReconsumeTimes"},
		// The message the consumer pulled at that offset was lost in a crash (async flush) and
		// the offset reused: another message's retry must not stand in for it.
		{"another message at the offset", map[string]string{"group": "cg", "offset": "1", "originMsgId": "K0"}, "is K1, not K0"},
	} {
		resp := h.mustAnswer(p, h.request(p, codec.ReqConsumerSendMsgBack, tc.ext, nil))
		if resp.Code != codec.SystemError || !strings.Contains(resp.Remark, tc.want) {
			t.Errorf("%s: code %d remark %q, want 1 with %q", tc.name, resp.Code, resp.Remark, tc.want)
		}
	}
	if got := h.b.Store().CommitLog().LastIndex(); got != last {
		t.Errorf("bad send-backs stored %d messages", got-last)
	}
}

// Retry-as-normal: the client's SEND_MESSAGE to %RETRY%cg goes through the delay levels while
// reconsumeTimes < maxReconsumeTimes, and to %DLQ%cg (no delay) once it reaches it; a retry
// topic nobody created is still 17.
func TestSendToRetryTopicAppliesTheDeadLetterRule(t *testing.T) {
	h := startBroker(t, retryConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.b.ensureRetryTopic("cg")
	retry := func(body string, reconsume, max int) int32 {
		ext := sendExt("%RETRY%cg", "0", map[string]string{codec.PropDelay: strconv.Itoa(3 + reconsume - 1),
			codec.PropRetryTopic: "Orders", codec.PropOriginMessageID: "ID"})
		ext["producerGroup"] = "CLIENT_INNER_PRODUCER"
		ext["reconsumeTimes"] = strconv.Itoa(reconsume)
		ext["maxReconsumeTimes"] = strconv.Itoa(max)
		return h.request(p, codec.ReqSendMessage, ext, []byte(body))
	}
	ops := []int32{retry("again", 1, 2), retry("dead", 2, 2)}
	h.settle()
	for _, op := range ops {
		if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
			t.Fatalf("retry-as-normal send: code %d (%s)", resp.Code, resp.Remark)
		}
	}
	dlq := h.queue("%DLQ%cg", 0)
	if len(dlq) != 1 || string(dlq[0].Body) != "dead" || codec.Property(dlq[0].Properties, codec.PropDelay) != "" || dlq[0].ReconsumeTimes != 2 {
		t.Fatalf("DLQ holds %v, want [dead] without DELAY, reconsumeTimes 2", bodies(dlq))
	}
	if got := bodies(h.queue(ScheduleTopic, 2)); strings.Join(got, ",") != "again" {
		t.Fatalf("level 3 holds %v, want [again]", got)
	}
	h.wait(3 * time.Second)
	if got := bodies(h.queue("%RETRY%cg", 0)); strings.Join(got, ",") != "again" {
		t.Fatalf("retry queue holds %v, want [again]", got)
	}
	resp := h.mustAnswer(p, h.send(p, "%RETRY%nobody", 0, "x", nil))
	if resp.Code != codec.TopicNotExist {
		t.Errorf("send to an uncreated retry topic: code %d, want 17", resp.Code)
	}
}
