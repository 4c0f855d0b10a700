package linearizability

import (
	"fmt"
	"math"
)

// The broker's clock, for reading store times back as virtual times.
//
// A broker stamps each message with its own clock as it appends it, so a pulled message's
// store time says when the append happened, to the stamp's precision, as long as the checker
// knows how far the broker's clock was from virtual time then. Clock faults move it (a skew
// for a while, a step slewed back), so the history carries the clock as a list of pieces over
// which it runs linearly; the checker inverts it. A single slack for the whole run, the sum of
// every fault's offset, would make one skew of a minute unpin every broker write of the run.

// ClockPiece is one stretch of virtual time [From, To] over which the broker's clock runs
// linearly: at From it reads From+OffsetFrom, at To it reads To+OffsetTo, and in between the
// offset moves linearly from one to the other. Outside every piece the clock reads virtual
// time. Pieces may touch (a skew's offset appears or vanishes at an instant) but not overlap.
type ClockPiece struct {
	From, To             int64
	OffsetFrom, OffsetTo int64
}

// validateClock checks the pieces are in time order, each forward, none overlapping another.
func (h *History) validateClock() error {
	for i, p := range h.BrokerClock {
		switch {
		case p.To < p.From:
			return fmt.Errorf("clock piece #%d: ends at %d before it starts at %d", i, p.To, p.From)
		case i > 0 && p.From < h.BrokerClock[i-1].To:
			return fmt.Errorf("clock piece #%d from %d: overlaps piece #%d up to %d", i, p.From, i-1, h.BrokerClock[i-1].To)
		}
	}
	return nil
}

// appendedWithin bounds when, within [lo, hi], a message the broker stamped with store time st
// was appended: the earliest and latest instants of [lo, hi] at which its clock read within
// StoreTimeSlack of st (not every instant between them need be one: a clock stepped back reads
// the same time twice, and one skewed forward reads later what it read early). ok is false when
// the history carries no store-time slack; callers pass only stamped store times (a clock set
// back may read before the epoch, so a negative one is real). When no instant of [lo, hi] fits, the store time is
// read as virtual time, so that an append stamped out of place is still placed where its
// stamp says, for the caller to find it out.
func (h *History) appendedWithin(st, lo, hi int64) (from, to int64, ok bool) {
	if h.StoreTimeSlack <= 0 {
		return 0, 0, false
	}
	rlo, rhi := st-h.StoreTimeSlack, st+h.StoreTimeSlack
	from, to = math.MaxInt64, math.MinInt64
	fit := func(a, b, offA, offB int64) {
		if a > hi || b < lo {
			return
		}
		if f, t, ok := inverse(a, b, offA, offB, rlo, rhi); ok && t >= lo && f <= hi {
			from, to = min(from, max(f, lo)), max(to, min(t, hi))
		}
	}
	prev := int64(math.MinInt64)
	for _, p := range h.BrokerClock {
		if p.From > prev {
			fit(prev, p.From, 0, 0) // true time between pieces
		}
		fit(p.From, p.To, p.OffsetFrom, p.OffsetTo)
		prev = p.To
	}
	fit(prev, math.MaxInt64, 0, 0)
	if from > to {
		return rlo, rhi, true
	}
	return from, to, true
}

// inverse is the part of [from, to] over which a clock whose offset runs linearly from offFrom
// to offTo reads within [rlo, rhi]. A slew is solved in floats and widened by a microsecond,
// far above their rounding error at these magnitudes.
func inverse(from, to, offFrom, offTo, rlo, rhi int64) (lo, hi int64, ok bool) {
	if offFrom == offTo { // a constant offset, possibly over an unbounded stretch
		lo, hi = max(from, sat(rlo, -offFrom)), min(to, sat(rhi, -offFrom))
		return lo, hi, lo <= hi
	}
	r0, r1 := float64(from)+float64(offFrom), float64(to)+float64(offTo)
	if r0 == r1 { // the clock stands still: every instant reads r0
		return from, to, r0 >= float64(rlo) && r0 <= float64(rhi)
	}
	at := func(r float64) float64 { return float64(from) + (r-r0)*float64(to-from)/(r1-r0) }
	a, b := at(float64(rlo)), at(float64(rhi))
	if a > b {
		a, b = b, a // the clock runs backwards here
	}
	const widen = 1000
	a, b = max(a-widen, float64(from)), min(b+widen, float64(to)) // in range before converting
	if a > b {
		return 0, 0, false
	}
	return max(from, int64(a)), min(to, int64(math.Ceil(b))), true
}

// sat is a+b clamped to the int64 range.
func sat(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}
