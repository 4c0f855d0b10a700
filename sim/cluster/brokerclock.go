package cluster

import (
	"slices"
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
)

// brokerClock is the broker's clock as the plan's clock faults move it (a skew offsets it by
// its delta while it lasts; a jump steps it by its delta and slews it back linearly over its
// duration; overlapping faults add up, crashes leave them be; HealAll at healedAt ends those
// still on): the pieces the history reads store times back with
// (linearizability.History.BrokerClock). Only instants where some fault is active get a piece.
func brokerClock(plan []faults.Fault, healedAt time.Duration) []linearizability.ClockPiece {
	var clock []faults.Fault
	var ends []time.Duration // when each ends, HealAll included
	var bounds []time.Duration
	for _, f := range plan {
		if !slices.Contains(faults.ClockKinds, f.Kind) || !stallsBroker(f) {
			continue
		}
		end := f.At + f.Duration
		if f.At < healedAt {
			end = min(end, healedAt)
		}
		clock = append(clock, f)
		ends = append(ends, end)
		bounds = append(bounds, f.At, end)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	// offset is the clock's offset at t from the faults active over all of [a, b] (t in it).
	offset := func(a, b, t time.Duration) (off time.Duration, active bool) {
		for i, f := range clock {
			if f.At > a || ends[i] < b {
				continue
			}
			active = true
			switch f.Kind {
			case faults.ClockSkew:
				off += f.Delta
			case faults.ClockJump:
				left := f.At + f.Duration - t
				off += time.Duration(float64(f.Delta) * float64(left) / float64(f.Duration))
			}
		}
		return off, active
	}
	var out []linearizability.ClockPiece
	for i := 0; i+1 < len(bounds); i++ {
		a, b := bounds[i], bounds[i+1]
		from, active := offset(a, b, a)
		if !active {
			continue
		}
		to, _ := offset(a, b, b)
		out = append(out, linearizability.ClockPiece{From: int64(a), To: int64(b), OffsetFrom: int64(from), OffsetTo: int64(to)})
	}
	return out
}
