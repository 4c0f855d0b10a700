package linearizability

import (
	"math"
	"testing"
	"time"
)

// Store times read back through the broker's clock: outside clock faults a store time is its
// own instant, give or take the slack; under a skew it is moved back by the skew; under a
// slewed jump it is solved for. A reading the clock gave twice (a skew forward reads early
// what true time reads later; a step back repeats readings) gives both instants, unless the
// window asked about rules one out.
func TestAppendedWithin(t *testing.T) {
	const ms, s = int64(time.Millisecond), int64(time.Second)
	const never, forever = math.MinInt64, math.MaxInt64
	skew := ClockPiece{From: 1 * s, To: 2 * s, OffsetFrom: 10 * s, OffsetTo: 10 * s}
	// Stepped back by 4s at 3s and slewed back to true time by 11s: it reads -1s at 3s and
	// runs at 1.5 times true speed until then.
	jump := ClockPiece{From: 3 * s, To: 11 * s, OffsetFrom: -4 * s, OffsetTo: 0}
	// Stepped back by 500ms at 20s until the end of the run.
	back := ClockPiece{From: 20 * s, To: 30 * s, OffsetFrom: -500 * ms, OffsetTo: -500 * ms}
	tests := []struct {
		name     string
		clock    []ClockPiece
		st       int64
		lo, hi   int64 // the window asked about
		from, to int64 // the answer, within 2µs (a slew is solved in floats)
	}{
		{"no clock faults", nil, 500 * ms, never, forever, 499 * ms, 501 * ms},
		{"before a skew", []ClockPiece{skew}, 500 * ms, never, forever, 499 * ms, 501 * ms},
		{"under a skew, or true time later", []ClockPiece{skew}, 11500 * ms, never, forever, 1499 * ms, 11501 * ms},
		{"under a skew, the window says", []ClockPiece{skew}, 11500 * ms, 0, 5 * s, 1499 * ms, 1501 * ms},
		{"after a skew, the window says", []ClockPiece{skew}, 11500 * ms, 5 * s, 20 * s, 11499 * ms, 11501 * ms},
		// 2s: before the jump, and at 5s in the slew (3s + (2s - -1s)/1.5).
		{"a reading a jump back repeats", []ClockPiece{jump}, 2 * s, never, forever, 1999 * ms, 5*s + 667*ms/1000},
		{"in the slew, the window says", []ClockPiece{jump}, 2 * s, 2500 * ms, forever, 5*s - 667*ms/1000, 5*s + 667*ms/1000},
		{"a clock stepped back to the end", []ClockPiece{jump, back}, 19700 * ms, never, forever, 19699 * ms, 20201 * ms},
		{"a reading no instant of the window gave is read as virtual time", []ClockPiece{skew}, 11500 * ms, 3 * s, 5 * s, 11499 * ms, 11501 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := History{StoreTimeSlack: ms, BrokerClock: tc.clock}
			if err := h.Validate(); err != nil {
				t.Fatal(err)
			}
			from, to, ok := h.appendedWithin(tc.st, tc.lo, tc.hi)
			near := func(a, b int64) bool { return max(a-b, b-a) <= 2000 }
			if !ok || !near(from, tc.from) || !near(to, tc.to) {
				t.Errorf("appendedWithin(%d, %d, %d) = %d, %d, %v; want %d, %d", tc.st, tc.lo, tc.hi, from, to, ok, tc.from, tc.to)
			}
		})
	}
	if _, _, ok := (&History{}).appendedWithin(500*ms, never, forever); ok {
		t.Error("a history without a store-time slack placed a store time")
	}
	bad := History{BrokerClock: []ClockPiece{skew, {From: 1500 * ms, To: 1600 * ms}}}
	if err := bad.Validate(); err == nil {
		t.Error("overlapping clock pieces validated")
	}
}
