package linearizability

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Crashes that may lose acknowledged writes: what ASYNC_FLUSH promises.
//
// A broker in async-flush mode acknowledges a write (a send, a send-back, a transaction's half
// message or commit, and its own re-puts of delayed and retried messages) once it is in the
// commit log, and makes it visible to pulls at once; a timer syncs the log every flush
// interval. A crash keeps a prefix of the commit log: everything synced, and of the unsynced
// tail all, none or a prefix. So each queue loses at most a suffix, and new messages then reuse
// the lost offsets. What is promised is this bound: a write appended at or before
// Crash.LossFrom (the flush interval and its slack, the fsync latency bound and the stalls of
// the broker's disk and process, before the crash) was synced before the crash and survives
// it. And what the disk did narrows it further: a write appended before Crash.Synced (when the
// latest sync the disk completed before the crash was asked for) was synced too. Only what was
// appended after both may be lost: the crash's loss window. Everything else holds for the rest
// of the history as without crashes: one position per message, one message per position,
// order, the log model's reads.
//
// The two bounds check different things. The promise catches a broker that syncs too seldom
// (it loses writes older than the flush interval allows); the disk's syncs catch a broker that
// loses what was durable (its recovery cut the log short, say), and keep the windows short:
// with the promise alone, a run with many stalls has windows of seconds, each one a stretch
// where any append may or may not have survived, and the search over them explodes.
//
// The log model checks it with two instantaneous operations per crash on every queue: a mark
// where the loss window opens that records the log's length then, and the crash, which cuts the log back to any
// length from the mark's up to its own (a nondeterministic step). The direct invariants accept
// a message missing from the final drain when it may have been appended inside a crash's loss
// window, and count it as lost unflushed; outside every window it is lost for
// good, a violation.

// Crash is one crash of a broker whose acknowledged writes are not all synced (async flush).
type Crash struct {
	// At is when the broker crashed, in virtual nanoseconds.
	At int64
	// LossFrom is the earliest instant whose appends the crash may lose as the promise bounds
	// it: everything appended at or before it was synced.
	LossFrom int64
	// Synced, when above 0, is when the latest sync of the log that the disk completed before
	// the crash was asked for: everything appended before it was durable.
	Synced int64
}

// lossFrom is crash i's loss window's start: the later of its LossFrom and the instant before
// its Synced, clamped after the previous crash (whatever survived that one was on disk when
// the broker restarted).
func (h *History) lossFrom(i int) int64 {
	c := h.Crashes[i]
	from := c.LossFrom
	if c.Synced > 0 {
		from = max(from, c.Synced-1)
	}
	if i > 0 {
		from = max(from, h.Crashes[i-1].At+1)
	}
	return from
}

// Window is when a write's record was appended: no earlier than Call, no later than Return.
type Window struct {
	Call, Return int64
}

// KindLostUnflushed is not a violation: an acknowledged or observed message missing from the
// final drain that a crash may have lost under async flush (see Crash). UnflushedLosses lists
// them, for the report's count.
const KindLostUnflushed = "lost unflushed"

// MayLose reports whether a record appended at some instant in [call, ret] may have been lost
// at a crash of the history: whether that span meets some crash's loss window (lossFrom, At].
func (h *History) MayLose(call, ret int64) bool {
	for i, c := range h.Crashes {
		if call <= c.At && ret > h.lossFrom(i) {
			return true
		}
	}
	return false
}

// mayLoseSeen reports whether a record appended in [call, ret] and first seen by a pull
// called at seen may have been lost at a crash after that pull was served: whether some crash's
// loss window meets the span and the crash comes no earlier than the pull's call. (The log model
// lets an append leave a gap of unseen entries only then: the next crash must cut the gap, and
// so the append above it, which a pull served after that crash cannot have seen.)
func (h *History) mayLoseSeen(call, ret, seen int64) bool {
	for i, c := range h.Crashes {
		if call <= c.At && seen <= c.At && ret > h.lossFrom(i) {
			return true
		}
	}
	return false
}

// mayLoseAll reports whether every window may have been lost (false for none).
func (h *History) mayLoseAll(ws []Window) bool {
	for _, w := range ws {
		if !h.MayLose(w.Call, w.Return) {
			return false
		}
	}
	return len(ws) > 0
}

// epochAfter is the number of crashes at or before t; epochBefore, strictly before t. No crash
// falls in (a, b) exactly when epochAfter(a) == epochBefore(b) (for a < b).
func (h *History) epochAfter(t int64) int {
	n, _ := slices.BinarySearchFunc(h.Crashes, t, func(c Crash, t int64) int {
		if c.At <= t {
			return -1
		}
		return 1
	})
	return n
}

func (h *History) epochBefore(t int64) int {
	n, _ := slices.BinarySearchFunc(h.Crashes, t, func(c Crash, t int64) int {
		if c.At < t {
			return -1
		}
		return 1
	})
	return n
}

// within reports the epoch an operation from call to ret lies in, and false when a crash falls
// inside it.
func (h *History) within(call, ret int64) (int, bool) {
	e := h.epochAfter(call)
	return e, e == h.epochBefore(ret) || ret <= call
}

// validateCrashes checks crashes are in time order with their loss windows before them.
func (h *History) validateCrashes() error {
	for i, c := range h.Crashes {
		switch {
		case c.LossFrom > c.At:
			return fmt.Errorf("crash #%d at %d: loss window from %d after it", i, c.At, c.LossFrom)
		case c.Synced > c.At:
			return fmt.Errorf("crash #%d at %d: synced at %d after it", i, c.At, c.Synced)
		case i > 0 && c.At <= h.Crashes[i-1].At:
			return fmt.Errorf("crash #%d at %d: not after crash #%d at %d", i, c.At, i-1, h.Crashes[i-1].At)
		}
	}
	return nil
}

// span bounds when a message may have been appended.
type span struct{ lo, hi int64 }

// appendSpans bounds, for each id of h, when it may have been appended: no earlier than its
// first send's call (a broker write's After), and for acknowledged sends no later than the
// last acknowledgement.
func (h *History) appendSpans() map[string]span {
	spans := map[string]span{}
	widen := func(id string, lo, hi int64) {
		s, ok := spans[id]
		if !ok {
			spans[id] = span{lo, hi}
			return
		}
		spans[id] = span{min(s.lo, lo), max(s.hi, hi)}
	}
	const forever = math.MaxInt64
	for _, s := range h.Sends {
		switch s.Outcome {
		case OK:
			widen(s.MsgID, s.Call, s.Return)
		case Unknown:
			widen(s.MsgID, s.Call, forever)
		}
	}
	for _, w := range h.Writes {
		widen(w.MsgID, w.After, forever)
	}
	return spans
}

// mayCut reports whether a crash may have cut off message id from where something saw it by
// time by: whether it may have been appended there inside a crash's loss window.
// spans is h.appendSpans().
func (h *History) mayCut(spans map[string]span, id string, by int64) bool {
	s, ok := spans[id]
	return ok && h.MayLose(s.lo, min(s.hi, by))
}

// Loss is one message missing from the final drain that a crash may have lost (async flush).
type Loss struct {
	Queue QueueKey
	MsgID string
	// What: "acknowledged", "observed" (pulled, never acknowledged) or "owed write".
	What string
}

func (l Loss) String() string { return fmt.Sprintf("%s %s %s", l.Queue, l.What, l.MsgID) }

// losses is what the drain is missing that the crashes of h may have lost, by queue and id.
type losses map[QueueKey]map[string]string

func (l losses) has(q QueueKey, id string) bool { _, ok := l[q][id]; return ok }

func (l losses) add(q QueueKey, id, what string) {
	if l[q] == nil {
		l[q] = map[string]string{}
	}
	if _, ok := l[q][id]; !ok {
		l[q][id] = what
	}
}

// unflushed finds, for h and its final drain, each message missing from the drain of its
// queue that a crash may have lost: an acknowledged send appended in a loss window, a pulled
// message that may have been, an owed broker write all of whose causes may have been lost.
func unflushed(h *History, drained map[QueueKey]map[string]bool) losses {
	out := losses{}
	if len(h.Crashes) == 0 {
		return out
	}
	spans := h.appendSpans()
	for _, s := range h.Sends {
		if s.Outcome == OK && !drained[s.Queue][s.MsgID] && h.MayLose(s.Call, s.Return) {
			out.add(s.Queue, s.MsgID, "acknowledged")
		}
	}
	// A pulled message was appended before the first pull that returned it.
	firstPulled := map[QueueKey]map[string]int64{}
	for _, p := range h.Pulls {
		if p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			if drained[p.Queue][m.MsgID] {
				continue
			}
			if firstPulled[p.Queue] == nil {
				firstPulled[p.Queue] = map[string]int64{}
			}
			if t, ok := firstPulled[p.Queue][m.MsgID]; !ok || p.Return < t {
				firstPulled[p.Queue][m.MsgID] = p.Return
			}
		}
	}
	for _, q := range sortedKeys(firstPulled, QueueKey.Compare) {
		for id, by := range firstPulled[q] {
			s, ok := spans[id]
			if ok && h.MayLose(s.lo, min(s.hi, by)) {
				out.add(q, id, "observed")
			}
		}
	}
	for _, w := range h.Writes {
		if w.Owed && !drained[w.Queue][w.MsgID] && h.mayLoseAll(w.Records) {
			out.add(w.Queue, w.MsgID, "owed write")
		}
	}
	return out
}

// UnflushedLosses lists the messages missing from the final drain that the crashes of h may
// have lost under async flush (see Crash), sorted by queue then id. CheckDrainInvariants
// accepts exactly these; the simulator reports how many there were.
func UnflushedLosses(h History, finalDrain map[QueueKey][]PulledMsg) []Loss {
	l := unflushed(&h, drainedIDs(finalDrain))
	var out []Loss
	for _, q := range sortedKeys(l, QueueKey.Compare) {
		for _, id := range sortedKeys(l[q], strings.Compare) {
			out = append(out, Loss{Queue: q, MsgID: id, What: l[q][id]})
		}
	}
	return out
}

func drainedIDs(finalDrain map[QueueKey][]PulledMsg) map[QueueKey]map[string]bool {
	out := make(map[QueueKey]map[string]bool, len(finalDrain))
	for q, msgs := range finalDrain {
		ids := make(map[string]bool, len(msgs))
		for _, m := range msgs {
			ids[m.MsgID] = true
		}
		out[q] = ids
	}
	return out
}

// describeCrash is how the visualisation shows the crash operations.
func describeCrash(in opInput) string {
	if in.kind == opDurable {
		return fmt.Sprintf("synced: what is in the log now survives the crash at %v", time.Duration(in.offset))
	}
	return "broker crash: the log may lose its unsynced tail"
}

// MayCutBelow reports whether a crash after from and at or before to may have cut queue q back
// to offset or below (async flush): whether such a crash may cut the entry at offset (nothing
// proved it in the log by the crash's mark; see crashCuts). A consumer whose committed offset
// lay past such a cut is moved back to the queue's new end, which is no loss of an offset.
func (h *History) MayCutBelow(q QueueKey, offset, from, to int64) bool {
	if len(h.Crashes) == 0 {
		return false
	}
	cuts := newCrashCuts(h, q)
	for i, c := range h.Crashes {
		if c.At > from && c.At <= to && offset > cuts.durable[i] {
			return true
		}
	}
	return false
}

// crashCuts knows, for one queue, which crashes may cut which offsets. A crash cannot cut an
// offset the log surely held at its mark (where its loss window opens): one that an operation
// between the previous crash and the mark proved filled (an acknowledged send above it, a pull
// that returned it or one above it), one a pull after the crash saw an entry at (or above)
// whose store time says it was appended before the crash, or one that the previous crash
// could not cut either (what survives a crash is on disk). So the offsets crash i may cut are
// those above durable[i], which never decreases: the crashes that may cut offset o are the
// first k(o) of them.
type crashCuts struct {
	h       *History
	durable []int64 // durable[i]: the highest offset crash i cannot cut (-1: none)
}

func newCrashCuts(h *History, q QueueKey) crashCuts {
	c := crashCuts{h: h, durable: make([]int64, len(h.Crashes))}
	top := make([]int64, len(h.Crashes)) // the highest offset proven filled at crash i's mark
	for i := range top {
		top[i] = -1
	}
	prove := func(call, ret, offset int64) {
		e := h.epochAfter(call) // the crash it came after; it proves offset for the next one
		if e < len(h.Crashes) && ret <= h.lossFrom(e) {
			top[e] = max(top[e], offset)
		}
	}
	h.eachFilled(q, prove)
	// The store time bounds when an entry seen was appended (by hi: every instant whose
	// reading fits the stamp is within the bound, and an entry cut and appended again is
	// stamped again), and it was in the log from then until the pull: so no crash between hi
	// and the pull cut it, even when the pull came crashes later. (It is not taken to prove the
	// offset filled at the mark of the crash after hi: with that, async seed 334 failed; why is
	// not yet known.)
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			if _, hi, ok := h.appendedWithin(m.StoreTime, math.MinInt64, p.Return); ok && m.Stamped && hi <= p.Return {
				for i := h.epochAfter(hi); i < len(h.Crashes) && h.Crashes[i].At < p.Call; i++ {
					top[i] = max(top[i], m.Offset)
				}
			}
		}
	}
	prev := int64(-1)
	for i := range c.durable {
		c.durable[i] = max(prev, top[i])
		prev = c.durable[i]
	}
	return c
}

// span is which crashes may have cut offset o by time t: its index is the number of crashes
// before t that may cut o. Two sightings of o in one span saw the same entry.
func (c crashCuts) span(o, t int64) int {
	k, _ := slices.BinarySearch(c.durable, o) // durable[:k] < o
	return min(k, c.h.epochBefore(t))
}

// since is the span a proof called at call belongs to: the crashes at or before it.
func (c crashCuts) since(call int64) int { return c.h.epochAfter(call) }
