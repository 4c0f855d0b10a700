package brokernode

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node/nodetest"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// delayConfig is the test broker with a short delay table.
func delayConfig(levels ...time.Duration) Config {
	cfg := testConfig()
	cfg.DelayLevels = levels
	return cfg
}

// settle fires the timers due now and completes fsyncs until the broker is quiet.
func (h *brokerHarness) settle() {
	h.t.Helper()
	for i := 0; ; i++ {
		if i > 1000 {
			h.t.Fatal("the broker does not settle")
		}
		h.env.advance(h.b, 0)
		if h.completeSyncs() == 0 {
			return
		}
	}
}

// wait moves time forward by d and lets the broker settle.
func (h *brokerHarness) wait(d time.Duration) {
	h.t.Helper()
	h.env.advance(h.b, d)
	h.settle()
}

// queue reads every message of a queue readers may see, straight from the store.
func (h *brokerHarness) queue(topic string, q int32) []*codec.Message {
	h.t.Helper()
	var out []*codec.Message
	for off := int64(0); ; {
		res, err := h.b.Store().Get(topic, q, off, 32, nil)
		if err != nil {
			h.t.Fatalf("read %s/%d at %d: %v", topic, q, off, err)
		}
		if len(res.Records) == 0 {
			return out
		}
		for _, r := range res.Records {
			m, _, err := codec.DecodeRecord(r)
			if err != nil {
				h.t.Fatalf("%s/%d: %v", topic, q, err)
			}
			out = append(out, m)
		}
		off = res.NextOffset
	}
}

func bodies(ms []*codec.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Body)
	}
	return out
}

// progress is a level's persisted-to-be delivery progress in the offset table.
func (h *brokerHarness) progress(level int) (int64, bool) {
	return h.b.Store().QueryOffset(delayProgressGroup, ScheduleTopic, int32(level-1))
}

// A send with DELAY=2 is stored in the schedule topic's queue 1 with the real topic and queue
// in REAL_TOPIC/REAL_QID; consumers of the real queue see nothing until store time plus the
// level's delay, then the message itself, without DELAY, everything else as sent. The level's
// progress is recorded only once the re-put message is durable.
func TestDelayedSendIsInvisibleUntilDue(t *testing.T) {
	h := startBroker(t, delayConfig(time.Second, 5*time.Second, 10*time.Second), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	props := map[string]string{codec.PropTags: "TagA", codec.PropUniqKey: "C0A8000100002A9F0000000000000001",
		codec.PropDelay: "2", "user": "u1"}
	op := h.send(p, "Orders", 1, "late", props)
	h.settle()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success || resp.Ext("queueId") != "1" {
		t.Fatalf("delayed send: %+v", resp)
	}
	if got := h.queue("Orders", 1); len(got) != 0 {
		t.Fatalf("the real queue shows %v before the delay", bodies(got))
	}
	held := h.queue(ScheduleTopic, 1)
	if len(held) != 1 {
		t.Fatalf("schedule queue 1 (level 2) holds %d messages, want 1", len(held))
	}
	hp := codec.ParseProperties(held[0].Properties)
	if hp[codec.PropRealTopc] != "Orders" || hp[codec.PropRealQID] != "1" || hp[codec.PropDelay] != "2" {
		t.Errorf("held message properties %v, want REAL_TOPIC=Orders REAL_QID=1 DELAY=2", hp)
	}
	if pull := h.mustAnswer(p, h.pull(p, "Orders", 1, 0)); pull.Code != codec.PullNotFound {
		t.Fatalf("pull of the real queue before the delay: code %d", pull.Code)
	}

	h.wait(5*time.Second - time.Millisecond)
	if got := h.queue("Orders", 1); len(got) != 0 {
		t.Fatalf("delivered %v a millisecond early", bodies(got))
	}
	h.env.advance(h.b, time.Millisecond)
	// Re-put, not yet durable: invisible, and the progress not recorded.
	if got := h.queue("Orders", 1); len(got) != 0 {
		t.Fatalf("re-put message visible before its fsync: %v", bodies(got))
	}
	if off, ok := h.progress(2); ok {
		t.Fatalf("level 2 progress %d recorded before the re-put was durable", off)
	}
	h.settle()
	got := h.queue("Orders", 1)
	if len(got) != 1 || string(got[0].Body) != "late" {
		t.Fatalf("after the delay the real queue holds %v, want [late]", bodies(got))
	}
	m := got[0]
	gp := codec.ParseProperties(m.Properties)
	if _, ok := gp[codec.PropDelay]; ok {
		t.Errorf("delivered message still carries DELAY: %v", gp)
	}
	for _, k := range []string{codec.PropTags, codec.PropUniqKey, "user"} {
		if gp[k] != props[k] {
			t.Errorf("property %s = %q, want %q", k, gp[k], props[k])
		}
	}
	if m.Topic != "Orders" || m.QueueID != 1 || m.BornTimestamp != 1767225600000 || m.StoreTimestamp != h.env.Now().UnixMilli() {
		t.Errorf("delivered record: topic %s queue %d born %d stored %d", m.Topic, m.QueueID, m.BornTimestamp, m.StoreTimestamp)
	}
	if off, ok := h.progress(2); !ok || off != 1 {
		t.Errorf("level 2 progress %d (%v), want 1 once the re-put is durable", off, ok)
	}
	if groups := h.mustAnswer(p, h.request(p, codec.ReqGetAllSubscriptionGroup, nil, nil)); strings.Contains(string(groups.Body), delayProgressGroup) {
		t.Errorf("the delay progress shows up as a subscription group: %s", groups.Body)
	}
	if pull := h.mustAnswer(p, h.pull(p, "Orders", 1, 0, "subscription", "TagA", "sysFlag", "4")); pull.Code != codec.Success {
		t.Errorf("pull with the tag filter: code %d (%s)", pull.Code, pull.Remark)
	}
}

// Levels beyond the table are clamped to the last level; DELAY 0 or negative means no delay;
// a DELAY that is not a number is refused; nobody may send to the schedule topic itself.
func TestDelayLevelEdges(t *testing.T) {
	h := startBroker(t, delayConfig(time.Second, 2*time.Second, 3*time.Second), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	ops := map[string]int32{}
	for _, lv := range []string{"99", "0", "-1"} {
		ops[lv] = h.send(p, "Orders", 0, "delay="+lv, map[string]string{codec.PropDelay: lv})
	}
	h.settle()
	for lv, op := range ops {
		if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
			t.Errorf("send with DELAY=%s: code %d (%s)", lv, resp.Code, resp.Remark)
		}
	}
	held := h.queue(ScheduleTopic, 2)
	if len(held) != 1 || string(held[0].Body) != "delay=99" || codec.Property(held[0].Properties, codec.PropDelay) != "3" {
		t.Fatalf("last level's queue: %v, want the DELAY=99 message with DELAY rewritten to 3", bodies(held))
	}
	if got := bodies(h.queue("Orders", 0)); strings.Join(got, ",") != "delay=0,delay=-1" {
		t.Errorf("undelayed messages in the real queue: %v", got)
	}
	bad := h.mustAnswer(p, h.send(p, "Orders", 0, "x", map[string]string{codec.PropDelay: "soon"}))
	if bad.Code != codec.MessageIllegal || !strings.Contains(bad.Remark, "DELAY") {
		t.Errorf("DELAY=soon: code %d remark %q, want 13 naming DELAY", bad.Code, bad.Remark)
	}
	direct := h.mustAnswer(p, h.send(p, ScheduleTopic, 0, "x", nil))
	if direct.Code != codec.NoPermission {
		t.Errorf("send to %s: code %d, want 16", ScheduleTopic, direct.Code)
	}
	h.wait(3 * time.Second)
	if got := bodies(h.queue("Orders", 0)); len(got) != 3 || got[2] != "delay=99" {
		t.Errorf("after 3s the real queue holds %v", got)
	}
}

// A level delivers its messages in order, each at its own due time, and messages of different
// levels do not wait for each other.
func TestDelayLevelsAreIndependentFIFOs(t *testing.T) {
	h := startBroker(t, delayConfig(time.Second, 4*time.Second), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.send(p, "Orders", 0, "slow-a", map[string]string{codec.PropDelay: "2"})
	h.settle()
	h.wait(500 * time.Millisecond)
	h.send(p, "Orders", 0, "slow-b", map[string]string{codec.PropDelay: "2"})
	h.send(p, "Orders", 0, "fast", map[string]string{codec.PropDelay: "1"})
	h.settle()
	steps := []struct {
		after time.Duration
		want  string
	}{
		{999 * time.Millisecond, ""},
		{time.Millisecond, "fast"},
		{2499 * time.Millisecond, "fast"},
		{time.Millisecond, "fast,slow-a"},
		{499 * time.Millisecond, "fast,slow-a"},
		{time.Millisecond, "fast,slow-a,slow-b"},
	}
	for i, s := range steps {
		h.wait(s.after)
		if got := strings.Join(bodies(h.queue("Orders", 0)), ","); got != s.want {
			t.Fatalf("step %d (t=%v): real queue %q, want %q", i, h.env.Now().Sub(nodetest.Start), got, s.want)
		}
	}
}

// A message stored while the broker's clock was an hour ahead is delivered once its delay has
// elapsed after the clock was stepped back, as Java's correctDeliverTimestamp does, not an hour
// later; the messages of its level behind it are not held up either.
func TestDelayedMessageStoredAheadOfASteppedBackClock(t *testing.T) {
	h := startBroker(t, delayConfig(time.Second, 10*time.Second), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.env.StepClock(time.Hour)
	h.send(p, "Orders", 0, "ahead", map[string]string{codec.PropDelay: "2"})
	h.settle()
	h.env.StepClock(-time.Hour)
	h.send(p, "Orders", 0, "behind", map[string]string{codec.PropDelay: "2"})
	h.settle()
	h.wait(10*time.Second - time.Millisecond)
	if got := bodies(h.queue("Orders", 0)); len(got) != 0 {
		t.Fatalf("delivered %v before the delay elapsed", got)
	}
	h.wait(time.Millisecond)
	if got := strings.Join(bodies(h.queue("Orders", 0)), ","); got != "ahead,behind" {
		t.Fatalf("10s after the sends the real queue holds %q, want ahead,behind (the level held for the clock step)", got)
	}
}

// A broker that crashes while messages wait delivers them after the restart: the one whose
// time came while it was down at once, the other on time. A re-put lost in the crash (its fsync
// never happened) is delivered again, not lost.
func TestDelayedMessagesSurviveACrash(t *testing.T) {
	disk := simdisk.New()
	cfg := delayConfig(time.Second, 7*time.Second, 30*time.Second)
	h := startBroker(t, cfg, disk)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.send(p, "Orders", 0, "one", map[string]string{codec.PropDelay: "1"})
	h.send(p, "Orders", 0, "two", map[string]string{codec.PropDelay: "2"})
	h.send(p, "Orders", 0, "thirty", map[string]string{codec.PropDelay: "3"})
	h.settle()
	h.wait(time.Second)                           // "one" re-put and durable
	h.wait(cfg.OffsetFlushInterval - time.Second) // offsets flushed at 5s
	if off, ok := h.progress(1); !ok || off != 1 {
		t.Fatalf("level 1 progress %d (%v) before the crash, want 1", off, ok)
	}
	// "two" is re-put at 7s, but its fsync never completes: the crash takes it.
	h.env.advance(h.b, 2*time.Second)
	crashedAt := h.env.Now()
	if got := bodies(h.queue("Orders", 0)); strings.Join(got, ",") != "one" {
		t.Fatalf("before the crash the real queue holds %v", got)
	}
	disk.CrashWith(func(string, uint64) (uint64, bool) { return 0, false })

	h = startBrokerAt(t, cfg, disk, crashedAt.Add(5*time.Second))
	h.settle()
	if got := strings.Join(bodies(h.queue("Orders", 0)), ","); got != "one,two" {
		t.Fatalf("after the restart the real queue holds %q, want one,two (two was due while the broker was down)", got)
	}
	sentAt := nodetest.Start
	h.wait(sentAt.Add(30*time.Second).Sub(h.env.Now()) - time.Millisecond)
	if got := strings.Join(bodies(h.queue("Orders", 0)), ","); got != "one,two" {
		t.Fatalf("30s level delivered early: %q", got)
	}
	h.wait(time.Millisecond)
	if got := strings.Join(bodies(h.queue("Orders", 0)), ","); got != "one,two,thirty" {
		t.Fatalf("after 30s the real queue holds %q", got)
	}
}

// A clean restart (offsets flushed on Close) delivers nothing twice; a crash after the re-put
// was durable but before the progress was flushed delivers it twice (at least once, never
// lost).
func TestDelayProgressAcrossRestarts(t *testing.T) {
	cfg := delayConfig(time.Second)
	for _, tc := range []struct {
		name  string
		clean bool
		want  string
	}{
		{"clean stop", true, "a"},
		{"crash before the progress is flushed", false, "a,a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := simdisk.New()
			h := startBroker(t, cfg, disk)
			p := h.env.accept(h.b, "127.0.9.7:50000")
			h.send(p, "Orders", 0, "a", map[string]string{codec.PropDelay: "1"})
			h.settle()
			h.wait(time.Second)
			if got := strings.Join(bodies(h.queue("Orders", 0)), ","); got != "a" {
				t.Fatalf("before the restart: %q", got)
			}
			if tc.clean {
				if err := h.b.Store().Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				disk.CrashWith(func(string, uint64) (uint64, bool) { return 0, false })
			}
			h = startBrokerAt(t, cfg, disk, h.env.Now().Add(time.Second))
			h.settle()
			h.wait(2 * time.Second)
			if got := strings.Join(bodies(h.queue("Orders", 0)), ","); got != tc.want {
				t.Fatalf("after the restart the real queue holds %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseDelayLevels(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []time.Duration
		wantErr string
	}{
		{DefaultDelayLevels, nil, ""},
		{"1s 5s", []time.Duration{time.Second, 5 * time.Second}, ""},
		{" 500ms\t1.5s 2m 1h 1d ", []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Minute, time.Hour, 24 * time.Hour}, ""},
		{"", nil, "at least one"},
		{"1s x", nil, `level 2 "x": not a duration`},
		{"1s 0s", nil, "level 2 \"0s\": must be positive"},
		{"-1s", nil, "must be positive"},
		{"1xd", nil, "not a duration"},
		{strings.Repeat("1s ", 1025), nil, "at most 1024"},
	} {
		got, err := ParseDelayLevels(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDelayLevels(%q) error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDelayLevels(%q): %v", tc.in, err)
			continue
		}
		if tc.in == DefaultDelayLevels {
			if len(got) != 18 || got[0] != time.Second || got[17] != 2*time.Hour {
				t.Errorf("default table parsed as %v", got)
			}
			continue
		}
		if FormatDelayLevels(got) != FormatDelayLevels(tc.want) {
			t.Errorf("ParseDelayLevels(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNewRefusesABadDelayTable(t *testing.T) {
	cfg := delayConfig(time.Second, 0)
	if _, err := New(newBrokerEnv(t, simdisk.New()), cfg); err == nil || !strings.Contains(err.Error(), "delay level 2") {
		t.Fatalf("New with a zero delay: %v, want an error naming level 2", err)
	}
}

// In async-flush mode a delayed message is acknowledged at once and re-put when due; its
// progress is recorded once the flush timer's fsync covers the re-put.
func TestDelayInAsyncFlushMode(t *testing.T) {
	cfg := delayConfig(2 * time.Second)
	cfg.FlushMode = AsyncFlush
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	if resp := h.mustAnswer(p, h.send(p, "Orders", 0, "a", map[string]string{codec.PropDelay: "1"})); resp.Code != codec.Success {
		t.Fatalf("async delayed send: code %d (%s)", resp.Code, resp.Remark)
	}
	h.env.advance(h.b, 2*time.Second-time.Millisecond)
	if got := h.queue("Orders", 0); len(got) != 0 {
		t.Fatalf("delivered early: %v", bodies(got))
	}
	h.env.advance(h.b, time.Millisecond)
	if got := bodies(h.queue("Orders", 0)); strings.Join(got, ",") != "a" {
		t.Fatalf("at 2s the real queue holds %v, want [a]", got)
	}
	if off, ok := h.progress(1); ok {
		t.Fatalf("progress %d recorded before any fsync covered the re-put", off)
	}
	h.env.advance(h.b, cfg.AsyncFlushInterval)
	h.syncAll() // the fsync in flight since before the re-put, then the one the timer asked for
	if off, ok := h.progress(1); !ok || off != 1 {
		t.Fatalf("progress %d (%v) after the flush, want 1", off, ok)
	}
}
