package brokernode

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// advanceSynced moves the clock by d in checkpoint-interval steps, completing every fsync
// after each step, so checkpoints (which bound retention) keep up.
func (h *brokerHarness) advanceSynced(d time.Duration) {
	for step := h.cfg.CheckpointInterval; d > 0; d -= step {
		h.env.advance(h.b, min(step, d))
		h.syncAll()
	}
}

// hourlyRetention is the test config with retention due at every hour for messages older
// than reserved.
func hourlyRetention(reserved time.Duration) Config {
	cfg := testConfig()
	cfg.FileReservedTime = reserved
	cfg.DeleteWhen = nil
	for hour := range 24 {
		cfg.DeleteWhen = append(cfg.DeleteWhen, hour)
	}
	return cfg
}

// Messages older than FileReservedTime go at a DeleteWhen hour; a consumer behind the new min
// offset is moved to it with PULL_OFFSET_MOVED (counted), then consumes what is left.
func TestRetentionMovesConsumersForward(t *testing.T) {
	cfg := hourlyRetention(time.Hour)
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	sendN := func(from, to int) {
		for i := from; i <= to; i++ {
			h.mustSend(p, "Orders", fmt.Sprintf("m%d", i))
		}
	}
	sendN(1, 5)
	h.advanceSynced(time.Hour)
	sendN(6, 10)
	if min := h.b.Store().MinOffset("Orders", 0); min != 0 {
		t.Fatalf("min offset %d before anything expired", min)
	}
	h.advanceSynced(30 * time.Minute)
	if min := h.b.Store().MinOffset("Orders", 0); min != 5 {
		t.Fatalf("min offset %d after m1..m5 expired, want 5", min)
	}
	resp := h.mustAnswer(p, h.pull(p, "Orders", 0, 2))
	if resp.Code != codec.PullOffsetMoved || resp.Ext("nextBeginOffset") != "5" {
		t.Fatalf("pull below the min offset: code %d next %q, want 21 and 5", resp.Code, resp.Ext("nextBeginOffset"))
	}
	if got := h.b.RetentionStats(); got.OffsetsMoved != 1 || got.RemovedEntries < 5 {
		t.Fatalf("stats %+v", got)
	}
	resp = h.mustAnswer(p, h.pull(p, "Orders", 0, 5))
	msgs := decodeBody(t, resp.Body)
	if resp.Code != codec.Success || len(msgs) != 5 || string(msgs[0].Body) != "m6" {
		t.Fatalf("pull from the new min offset: code %d, %d messages", resp.Code, len(msgs))
	}
	// Nothing newer than FileReservedTime goes, however often retention runs.
	h.advanceSynced(10 * time.Minute)
	if min := h.b.Store().MinOffset("Orders", 0); min != 5 {
		t.Fatalf("min offset %d: unexpired messages removed", min)
	}
}

// The defaults delete nothing in a run shorter than FileReservedTime (72 h), at any hour.
func TestDefaultRetentionKeepsRecentMessages(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	for i := range 3 {
		h.send(p, "Orders", 0, fmt.Sprintf("m%d", i), nil)
		h.syncAll()
	}
	h.advanceSynced(6 * time.Hour)
	if min, got := h.b.Store().MinOffset("Orders", 0), h.b.RetentionStats(); min != 0 || got.RemovedEntries != 0 {
		t.Fatalf("default retention removed messages within 6 hours: min %d, stats %+v", min, got)
	}
}

// A delayed message not yet due is kept, however old: retention stops below it (the schedule
// queue is protected from its level's progress on), and it is delivered when due.
func TestRetentionKeepsDelayedMessagesNotYetDue(t *testing.T) {
	cfg := hourlyRetention(time.Hour)
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	level := len(cfg.DelayLevels) // the longest delay
	delay := cfg.DelayLevels[level-1]
	if delay <= cfg.FileReservedTime {
		t.Fatalf("the longest delay level %v is not beyond the test's retention", delay)
	}
	op := h.send(p, "Orders", 0, "later", map[string]string{"DELAY": fmt.Sprint(level)})
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("delayed send: code %d %q", resp.Code, resp.Remark)
	}
	h.advanceSynced(delay - 10*time.Minute)
	if got := h.b.Store().MaxOffset(ScheduleTopic, int32(level-1)) - h.b.Store().MinOffset(ScheduleTopic, int32(level-1)); got != 1 {
		t.Fatalf("the schedule queue holds %d messages before the delay passed, want 1", got)
	}
	h.advanceSynced(20 * time.Minute)
	resp := h.mustAnswer(p, h.pull(p, "Orders", 0, 0))
	if msgs := decodeBody(t, resp.Body); resp.Code != codec.Success || len(msgs) != 1 || string(msgs[0].Body) != "later" {
		t.Fatalf("the delayed message once due: code %d %q", resp.Code, resp.Remark)
	}
}

// Twelve simulated hours of steady sends on a small simulated disk: with a retention of an hour
// the disk holds about an hour of messages; with a disk too small for an hour, retention
// forced by disk pressure keeps it below the full ratio, so sends are never refused. Every
// message is readable until it is older than the retention (or forced out), and queue offsets
// only move forward.
func TestRetentionKeepsASmallDiskBounded(t *testing.T) {
	for _, tc := range []struct {
		name        string
		capacity    uint64
		wantForced  bool
		maxUsedPerc int
	}{
		{"retention by age", 4 << 20, false, 75},
		{"retention forced by the disk", 400 << 10, true, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := simdisk.New()
			disk.SetCapacity(tc.capacity)
			h := startBroker(t, hourlyRetention(time.Hour), disk)
			p := h.env.accept(h.b, "127.0.9.7:50000")
			body := strings.Repeat("x", 1000)
			var lastMin int64
			peak := 0
			for minute := 0; minute < 12*60; minute += 5 {
				for range 50 { // 10 a minute
					h.send(p, "Orders", 0, body, nil)
				}
				h.syncAll()
				if max := h.b.Store().MaxOffset("Orders", 0); max != int64(minute+5)*10 {
					t.Fatalf("minute %d: %d messages stored, want %d (refused: %d)", minute, max, (minute+5)*10, h.b.RetentionStats().SendsRefused)
				}
				h.env.advance(h.b, 5*time.Minute) // the fsyncs complete at the end: checkpoints lag
				h.syncAll()
				used, capacity, _ := disk.Space()
				peak = max(peak, int(used*100/capacity))
				min, max := h.b.Store().MinOffset("Orders", 0), h.b.Store().MaxOffset("Orders", 0)
				if min < lastMin {
					t.Fatalf("minute %d: min offset moved back from %d to %d", minute, lastMin, min)
				}
				lastMin = min
				if !tc.wantForced && minute >= 60 && max-min < 55*10 {
					t.Fatalf("minute %d: only %d messages kept, want the last hour's (about 600)", minute, max-min)
				}
			}
			stats := h.b.RetentionStats()
			if peak > tc.maxUsedPerc || (stats.ForcedRuns > 0) != tc.wantForced || stats.RemovedEntries < 5000 {
				t.Fatalf("peak use %d%% (want at most %d%%), stats %+v", peak, tc.maxUsedPerc, stats)
			}
			t.Logf("peak use %d%%, stats %+v", peak, stats)
		})
	}
}
