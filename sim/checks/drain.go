// Package checks owns the direct checks of a simulated run's recorded history
// (linearizability.History) and its final drain: the invariants that are not about
// linearizability. No acknowledged or observed message is lost; a message sits at one position
// and a position holds one message; no failed send and no message nobody sent is observed;
// every queue drains in order; the broker's own writes (delayed, committed, retried messages)
// appear on time and are never lost; withheld messages are never delivered (Drain); two
// clients never hold one queue's lock at once (Locks); offset searches agree with store times
// (Searches); a consumer group never commits an offset past a message it was not delivered
// (Commits); a broadcasting consumer is delivered every message of the queues it reads
// (Broadcast).
//
// Each check reads the history after the run and never touches a node. Whether the reads and
// writes of a queue fit one append-only log is the log model's question (package
// linearizability), not these checks'; the checks the simulator makes of the nodes themselves
// (replicas, masters, consumer offsets) live with the simulator (sim/cluster).
package checks

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/linearizability"
)

// DrainIDs is Drain for a final drain given as message ids by offset: finalDrain[q][i] is the
// message id at offset i of queue q; "" marks an offset the drain found nothing at (reported
// as a drain out of order).
func DrainIDs(h linearizability.History, finalDrain map[linearizability.QueueKey][]string) []Violation {
	drain := make(map[linearizability.QueueKey][]linearizability.PulledMsg, len(finalDrain))
	for q, ids := range finalDrain {
		msgs := make([]linearizability.PulledMsg, 0, len(ids))
		for i, id := range ids {
			if id != "" { // a hole: the drain found nothing at offset i
				msgs = append(msgs, linearizability.PulledMsg{Offset: int64(i), MsgID: id})
			}
		}
		drain[q] = msgs
	}
	return Drain(h, drain)
}

// position is a place in a queue.
type position struct {
	queue  linearizability.QueueKey
	offset int64
}

func (p position) compare(o position) int {
	if c := p.queue.Compare(o.queue); c != 0 {
		return c
	}
	return cmp.Compare(p.offset, o.offset)
}

func (p position) String() string { return fmt.Sprintf("%v@%d", p.queue, p.offset) }

// source is what saw a message: an acknowledgement, a pull or the final drain. It is
// formatted only when a violation names it.
type source struct {
	kind   sourceKind
	op     int // index of the send or pull
	client int
}

type sourceKind uint8

const (
	fromAck sourceKind = iota
	fromPull
	fromDrain
)

func (s source) String() string {
	switch s.kind {
	case fromAck:
		return fmt.Sprintf("acknowledged to send #%d (client %d)", s.op, s.client)
	case fromPull:
		return fmt.Sprintf("pulled by pull #%d (client %d)", s.op, s.client)
	}
	return "in the final drain"
}

// sighting is where a message id was seen, and by what.
type sighting struct {
	pos    position
	msgID  string
	source source
}

// Drain checks h and the final drain of every queue directly, without Porcupine (see the
// package comment and the Kind constants for what it reports). finalDrain[q] is what the drain
// of queue q read, from offset 0 once faults healed, with the offsets the pulls returned; each
// queue's drained offsets must run 0, 1, 2, ... in order (skipping only offsets h.Unreadable
// lists, and starting up to h.Retained above 0). A queue of the history missing from finalDrain counts as drained empty, so every
// acknowledged message in it is reported lost. Violations come sorted by queue, kind, message
// id and text.
func Drain(h linearizability.History, finalDrain map[linearizability.QueueKey][]linearizability.PulledMsg) []Violation {
	c := &drainCheck{h: &h, finalDrain: finalDrain, mayExist: map[string]bool{}, sent: map[string]bool{},
		queuesOf: map[string]map[linearizability.QueueKey]bool{}, writes: map[string]*linearizability.BrokerWrite{},
		withheld: map[string]string{}, drained: map[linearizability.QueueKey]map[string]bool{}}
	c.index()
	c.positions()
	c.losses()
	c.brokerWrites()
	c.placement()
	c.provenance()
	slices.SortFunc(c.out, func(a, b Violation) int {
		if c := a.Queue.Compare(b.Queue); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.MsgID, b.MsgID), strings.Compare(a.Message, b.Message))
	})
	return c.out
}

// drainCheck is one run of Drain: the history indexed, and the violations found.
type drainCheck struct {
	h          *linearizability.History
	finalDrain map[linearizability.QueueKey][]linearizability.PulledMsg
	out        []Violation

	// What the sends and broker writes say about each id: whether one was sent (or written)
	// at all, whether one may have taken effect, and to which queues.
	sent, mayExist map[string]bool
	queuesOf       map[string]map[linearizability.QueueKey]bool
	writes         map[string]*linearizability.BrokerWrite
	withheld       map[string]string // why, by id
	// seen is every sighting, in a deterministic order: acknowledgements, pulls, then the
	// drains by queue (drainQueues, sorted); drained the ids each queue's drain read.
	seen        []sighting
	drainQueues []linearizability.QueueKey
	drained     map[linearizability.QueueKey]map[string]bool
	// unsynced is what crashes may have lost under async flush (linearizability.Crash): not
	// lost for good, and not holding its position against the message that reused it.
	unsynced lossSet
}

func (c *drainCheck) report(kind string, q linearizability.QueueKey, id, format string, args ...any) {
	c.out = append(c.out, Violation{Kind: kind, Queue: q, MsgID: id, Message: fmt.Sprintf(format, args...)})
}

// queueMsg is a message id in one queue.
type queueMsg struct {
	queue linearizability.QueueKey
	msgID string
}

// index fills in what the other checks read, and checks that each queue drained in order.
func (c *drainCheck) index() {
	h, finalDrain, report := c.h, c.finalDrain, c.report
	// What the sends say about each id: whether any send may have taken effect, and where.
	mayExist, sent, queuesOf := c.mayExist, c.sent, c.queuesOf
	addQueue := func(id string, q linearizability.QueueKey) {
		if queuesOf[id] == nil {
			queuesOf[id] = map[linearizability.QueueKey]bool{}
		}
		queuesOf[id][q] = true
	}
	for _, s := range h.Sends {
		sent[s.MsgID] = true
		addQueue(s.MsgID, s.Queue)
		if s.Outcome != linearizability.Failed {
			mayExist[s.MsgID] = true
		}
	}
	writes := c.writes
	for i := range h.Writes {
		w := &h.Writes[i]
		writes[w.MsgID] = w
		sent[w.MsgID] = true
		mayExist[w.MsgID] = true
		addQueue(w.MsgID, w.Queue)
	}
	withheld := c.withheld
	for _, w := range h.Withheld {
		withheld[w.MsgID] = w.Why
	}

	// Every sighting, in a deterministic order: acknowledgements, pulls, then drains by queue.
	n := len(h.Sends)
	for _, p := range h.Pulls {
		n += len(p.Msgs)
	}
	for _, msgs := range finalDrain {
		n += len(msgs)
	}
	seen := make([]sighting, 0, n)
	for i, s := range h.Sends {
		if s.Outcome == linearizability.OK {
			seen = append(seen, sighting{position{s.Queue, s.Offset}, s.MsgID, source{fromAck, i, s.Client}})
		}
	}
	for i, p := range h.Pulls {
		if p.Outcome != linearizability.OK {
			continue
		}
		for _, m := range p.Msgs {
			seen = append(seen, sighting{position{p.Queue, m.Offset}, m.MsgID, source{fromPull, i, p.Client}})
		}
	}
	drainQueues := make([]linearizability.QueueKey, 0, len(finalDrain))
	for q := range finalDrain {
		drainQueues = append(drainQueues, q)
	}
	slices.SortFunc(drainQueues, linearizability.QueueKey.Compare)
	c.drainQueues = drainQueues
	drained := c.drained
	for _, q := range drainQueues {
		ids := map[string]bool{}
		want := int64(0)
		for i, m := range finalDrain[q] {
			if start := h.Retained[q]; m.Offset > want && want < start {
				want = min(m.Offset, start) // removed by retention (History.Retained)
			}
			for m.Offset > want && h.Unreadable[q][want] {
				want++ // a destroyed message the broker skips
			}
			if m.Offset != want {
				report(KindDrainOrder, q, m.MsgID, "drain entry %d is at offset %d, want %d", i, m.Offset, want)
			}
			want++
			ids[m.MsgID] = true
			seen = append(seen, sighting{position{q, m.Offset}, m.MsgID, source{kind: fromDrain}})
		}
		drained[q] = ids
	}
	c.unsynced = unflushed(*h, finalDrain)
	c.seen = seen
}

// positions: one id, one position (but a broker write's duplicates in its own queue); one
// position, one id (but a message a crash may have cut off it).
func (c *drainCheck) positions() {
	h, seen, writes, drainQueues, finalDrain, report := c.h, c.seen, c.writes, c.drainQueues, c.finalDrain, c.report
	// One id, one position; one position, one id. Remember the first source of each pair.
	positionsOf := make(map[string]firstSources[position], len(seen))
	idsAt := make(map[position]firstSources[string], len(seen))
	for _, s := range seen {
		if f, ok := positionsOf[s.msgID]; !ok {
			positionsOf[s.msgID] = firstSources[position]{key: s.pos, src: s.source}
		} else if f.add(s.pos, s.source) {
			positionsOf[s.msgID] = f
		}
		if f, ok := idsAt[s.pos]; !ok {
			idsAt[s.pos] = firstSources[string]{key: s.msgID, src: s.source}
		} else if f.add(s.msgID, s.source) {
			idsAt[s.pos] = f
		}
	}
	for _, id := range severalKeys(positionsOf, strings.Compare) {
		at := positionsOf[id].all()
		if w := writes[id]; w != nil && onlyIn(at, w.Queue) {
			continue // delivered at least once: duplicates in its own queue are allowed
		}
		poss := sortedKeys(at, position.compare)
		parts := make([]string, len(poss))
		for i, p := range poss {
			parts[i] = fmt.Sprintf("%v (%s)", p, at[p])
		}
		report(KindTwoOffsets, poss[0].queue, id, "%s seen at %s", id, strings.Join(parts, ", "))
	}
	shared := severalKeys(idsAt, position.compare)
	if len(shared) == 0 {
		return
	}
	mayCut := h.MayCut()
	drainAt := map[position]string{}
	for _, q := range drainQueues {
		for _, m := range finalDrain[q] {
			drainAt[position{q, m.Offset}] = m.MsgID
		}
	}
	for _, pos := range shared {
		holders := idsAt[pos].all()
		ids := sortedKeys(holders, strings.Compare)
		// A message a crash may have cut off this position (not there in the drain, and
		// appended within a crash's loss window) does not hold it against the one that
		// reused it; two that held it are a conflict.
		held := 0
		for _, id := range ids {
			if drainAt[pos] == id || !mayCut(id, sourceReturn(h, holders[id])) {
				held++
			}
		}
		if held < 2 {
			continue
		}
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%s (%s)", id, holders[id])
		}
		report(KindOffsetConflict, pos.queue, "", "offset %d holds %s", pos.offset, strings.Join(parts, ", "))
	}
}

// losses: acknowledged and observed messages survive into the drain of their queue.
func (c *drainCheck) losses() {
	h, drained, unsynced, report := c.h, c.drained, c.unsynced, c.report
	for i, s := range h.Sends {
		if s.Outcome == linearizability.OK && !drained[s.Queue][s.MsgID] && !unsynced.has(s.Queue, s.MsgID) {
			report(KindLostAcked, s.Queue, s.MsgID, "%s acknowledged at offset %d to send #%d (client %d) is not in the final drain", s.MsgID, s.Offset, i, s.Client)
		}
	}
	lostObserved := map[queueMsg]bool{} // report each lost message once
	for i, p := range h.Pulls {
		if p.Outcome != linearizability.OK {
			continue
		}
		for _, m := range p.Msgs {
			key := queueMsg{p.Queue, m.MsgID}
			if drained[p.Queue][m.MsgID] || lostObserved[key] || unsynced.has(p.Queue, m.MsgID) {
				continue
			}
			lostObserved[key] = true
			report(KindLostObserved, p.Queue, m.MsgID, "%s pulled at offset %d by pull #%d (client %d) is not in the final drain", m.MsgID, m.Offset, i, p.Client)
		}
	}
}

// brokerWrites: owed broker writes survive into the drain; none appears before its cause
// allows or is first stored after its deadline.
func (c *drainCheck) brokerWrites() {
	h, drained, unsynced, writes, drainQueues, finalDrain, report := c.h, c.drained, c.unsynced, c.writes, c.drainQueues, c.finalDrain, c.report
	for i, w := range h.Writes {
		if w.Owed && !drained[w.Queue][w.MsgID] && !unsynced.has(w.Queue, w.MsgID) {
			report(KindLostWrite, w.Queue, w.MsgID, "%s (%s, broker write #%d) is owed but not in the final drain", w.MsgID, w.Cause, i)
		}
	}
	// When each appearance of a write was surely in the log: seen by a pull, or implied by a
	// later offset (filledBy).
	type appearance struct {
		queue  linearizability.QueueKey
		msgID  string
		offset int64
	}
	inLogBy := map[appearance]int64{}
	var byWhat = map[appearance]string{}
	var order []appearance
	noteAppearance := func(a appearance, t int64, what string) {
		if old, ok := inLogBy[a]; !ok || t < old {
			if !ok {
				order = append(order, a)
			}
			inLogBy[a], byWhat[a] = t, what
		}
	}
	for i, p := range h.Pulls {
		if p.Outcome != linearizability.OK {
			continue
		}
		for _, m := range p.Msgs {
			if w := writes[m.MsgID]; w != nil && p.Queue == w.Queue {
				noteAppearance(appearance{p.Queue, m.MsgID, m.Offset}, p.Return, fmt.Sprintf("pull #%d (client %d) returned it", i, p.Client))
			}
		}
	}
	for _, q := range drainQueues {
		for _, m := range finalDrain[q] {
			if w := writes[m.MsgID]; w != nil && q == w.Queue {
				noteAppearance(appearance{q, m.MsgID, m.Offset}, math.MaxInt64, "")
			}
		}
	}
	filled := map[linearizability.QueueKey]func(o, t int64) int64{}
	early := map[string]bool{}
	for _, a := range order {
		if filled[a.queue] == nil {
			filled[a.queue] = linearizability.FilledBy(h, a.queue)
		}
		t, what := inLogBy[a], byWhat[a]
		if f := filled[a.queue](a.offset, t); f < t {
			t, what = f, "a later offset of the queue was acknowledged or pulled then"
		}
		if w := writes[a.msgID]; t < w.After && !early[a.msgID] {
			early[a.msgID] = true
			report(KindTooEarly, a.queue, a.msgID, "%s (%s) was at offset %d by %v (%s), before it was due at %v",
				a.msgID, w.Cause, a.offset, time.Duration(t), what, time.Duration(w.After))
		}
	}
	firstStored := map[string]int64{}
	for _, q := range drainQueues {
		for _, m := range finalDrain[q] {
			if w := writes[m.MsgID]; w != nil && q == w.Queue && m.Stamped {
				if t, ok := firstStored[m.MsgID]; !ok || m.StoreTime < t {
					firstStored[m.MsgID] = m.StoreTime
				}
			}
		}
	}
	for _, id := range sortedKeys(firstStored, strings.Compare) {
		if w := writes[id]; w.Deadline > 0 && firstStored[id] > w.Deadline {
			report(KindTooLate, w.Queue, id, "%s (%s) was first stored at %v, after its deadline %v",
				id, w.Cause, time.Duration(firstStored[id]), time.Duration(w.Deadline))
		}
	}
}

// placement: withheld messages never appear; others appear only in a queue they were sent
// or written to.
func (c *drainCheck) placement() {
	seen, withheld, queuesOf, report := c.seen, c.withheld, c.queuesOf, c.report
	wrongQueue := map[queueMsg]bool{}
	for _, s := range seen {
		key := queueMsg{s.pos.queue, s.msgID}
		if wrongQueue[key] {
			continue
		}
		if why, ok := withheld[s.msgID]; ok {
			wrongQueue[key] = true
			report(KindWithheldDelivered, s.pos.queue, s.msgID, "%s (%s) was %s at %v", s.msgID, why, s.source, s.pos)
			continue
		}
		if qs := queuesOf[s.msgID]; qs != nil && !qs[s.pos.queue] {
			wrongQueue[key] = true
			report(KindWrongQueue, s.pos.queue, s.msgID, "%s was %s at %v; it was sent or written to %s",
				s.msgID, s.source, s.pos, strings.Join(queueNames(qs), ", "))
		}
	}
}

// provenance: observed ids come from a send that may have taken effect.
func (c *drainCheck) provenance() {
	seen, mayExist, withheld, sent, report := c.seen, c.mayExist, c.withheld, c.sent, c.report
	reported := map[string]bool{}
	for _, s := range seen {
		if s.source.kind == fromAck || reported[s.msgID] || mayExist[s.msgID] || isWithheld(withheld, s.msgID) {
			continue
		}
		reported[s.msgID] = true
		if sent[s.msgID] {
			report(KindFailedObserved, s.pos.queue, s.msgID, "%s, whose every send failed, was %s at %v", s.msgID, s.source, s.pos)
		} else {
			report(KindPhantom, s.pos.queue, s.msgID, "%s was %s at %v but no send carried it", s.msgID, s.source, s.pos)
		}
	}
}

func isWithheld(withheld map[string]string, id string) bool {
	_, ok := withheld[id]
	return ok
}

// onlyIn reports whether every position is in queue q.
func onlyIn(positions map[position]source, q linearizability.QueueKey) bool {
	for p := range positions {
		if p.queue != q {
			return false
		}
	}
	return true
}

func queueNames(qs map[linearizability.QueueKey]bool) []string {
	var out []string
	for _, q := range sortedKeys(qs, linearizability.QueueKey.Compare) {
		out = append(out, q.String())
	}
	return out
}

// firstSources is the first source seen of each of a set of keys (positions of an id, ids at a
// position), kept without a map while there is only one key, as there is for almost every id
// and position.
type firstSources[K comparable] struct {
	key  K
	src  source
	rest map[K]source // the keys other than key, once there are any
}

// add notes k's source s unless k has one already; it reports whether it created rest (the
// caller must then store f back).
func (f *firstSources[K]) add(k K, s source) bool {
	if k == f.key {
		return false
	}
	created := f.rest == nil
	if created {
		f.rest = map[K]source{}
	}
	if _, ok := f.rest[k]; !ok {
		f.rest[k] = s
	}
	return created
}

// all is every key with its first source.
func (f firstSources[K]) all() map[K]source {
	m := make(map[K]source, 1+len(f.rest))
	m[f.key] = f.src
	maps.Copy(m, f.rest)
	return m
}

// severalKeys is, sorted, the keys of m whose entries hold more than one key.
func severalKeys[K, J comparable](m map[K]firstSources[J], compare func(a, b K) int) []K {
	var out []K
	for k, f := range m {
		if f.rest != nil {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, compare)
	return out
}

func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	return slices.SortedFunc(maps.Keys(m), compare)
}

// sourceReturn is when a sighting's source returned (never, for the final drain).
func sourceReturn(h *linearizability.History, s source) int64 {
	switch s.kind {
	case fromAck:
		return h.Sends[s.op].Return
	case fromPull:
		return h.Pulls[s.op].Return
	}
	return math.MaxInt64
}

// lossSet is what the drain is missing that crashes may have lost, by queue and id.
type lossSet map[linearizability.QueueKey]map[string]bool

func (l lossSet) has(q linearizability.QueueKey, id string) bool { return l[q][id] }

// unflushed is linearizability.UnflushedLosses as a set.
func unflushed(h linearizability.History, finalDrain map[linearizability.QueueKey][]linearizability.PulledMsg) lossSet {
	out := lossSet{}
	for _, l := range linearizability.UnflushedLosses(h, finalDrain) {
		if out[l.Queue] == nil {
			out[l.Queue] = map[string]bool{}
		}
		out[l.Queue][l.MsgID] = true
	}
	return out
}
