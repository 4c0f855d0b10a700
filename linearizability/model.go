package linearizability

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The model: each queue is an append-only log of message ids.
//
//   - An OK send acknowledged at offset o is legal iff o == len(log); it appends its id.
//   - An Unknown send either never happened or appended its id, at any time after its call (the
//     request may land after the client gave up). Written directly, that is a nondeterministic
//     step in an operation open until the end of the history, and every such open operation
//     doubles the search when a history is illegal: eight of them made a 400-operation queue
//     undecidable in 5 s. queueOperations therefore rewrites Unknown sends exactly:
//       - seen by a pull at offset o: it happened, at o, before that pull returned, so it is
//         checked as a send acknowledged at o whose window ends when the pull returned;
//       - seen by nobody: no pull can tell its id apart from any other unseen message, so all
//         that matters is that it may fill a gap. It becomes a "filler" operation at its call
//         instant that adds one spare slot to the state; an acknowledged send at offset o > len
//         consumes o-len spare slots, filling them with anonymous entries. Filling lazily, just
//         before the first send that needs the gap, is never less permissive than filling
//         earlier (an earlier append only makes empty pulls stricter), so this is equivalent.
//         A spare slot never fills a pinned offset (one an acknowledged send or a pull's message
//         needs a real id at), so a send whose gap holds one is rejected at once (gapFrom):
//         otherwise, with sends seen only by the final drain open until it, the search tried
//         every such skip and ran on to the drain to find each one dead.
//       - seen at o, the window of an observed send also closes at filledBy(o) (below): the
//         offset was filled, by it, before anything needed the log longer.
//       - seen, but its id is shared with another send or was seen before the send began: it
//         stays the nondeterministic open operation (porcupine.NondeterministicModel), and the
//         pull that saw it decides.
//   - An OK pull that returned messages is legal iff every returned offset is inside the log and
//     holds the returned id. An OK pull that returned nothing at offset o is legal iff
//     len(log) <= o: the broker serves only confirmed messages, so an empty answer at o means
//     nothing was confirmed at o at the pull's linearization point.
//   - A broker write (History.Writes: a delayed, committed, retried or dead-lettered message
//     the broker appends by itself) becomes one append per distinct offset o a pull saw it at.
//     Its window opens when it may first be appended (BrokerWrite.After: its due time, its
//     commit) and closes at the earliest of: the return of the first pull that saw it at o, and
//     filledBy(o), the return of the first operation that needed the log longer than o (an
//     acknowledged send at a higher offset, a pull that returned a higher offset). Closing it
//     there loses no linearization and keeps windows short when pulls see a write late (a
//     window spanning the whole run makes the search blow up). A write goes exactly at the end
//     of the log: it never uses spare slots to fill a gap before it. Only a position no pull ever
//     saw could need that, and the final drain sees every position; letting writes fill gaps
//     made the search try every order of the writes pending at the end of a run (their windows
//     overlap up to the drain) with every way of spending the spare slots. Unseen, a write is a
//     gap only an Unknown send could fill, so the final drain is what makes it count.
//   - Failed sends are left out (they never took effect; sim/checks makes sure their ids
//     are never observed) and so are pulls that did not return OK.
//   - A crash that may lose acknowledged writes (History.Crashes, async flush; see crash.go) is
//     two instantaneous operations on every queue: a mark where its loss window opens that
//     records the log's length (what is in the log then was synced before the crash), and the crash itself,
//     which cuts the log back to any length from the mark's to its own. Offsets cut off are
//     reused by later appends. What above relies on entries never being rewritten (filledBy,
//     pinnedBelow, one append per offset a broker write was seen at) holds only between the
//     crashes that may cut the offset concerned (crashCuts: a crash cannot cut what was proven
//     in the log at its mark), so it is applied within such spans; a broker write seen at one
//     offset on both sides of such a crash is one append per side, the later one opening at
//     the crash and a no-op when the earlier one survived. Between a mark and its crash, an
//     append may also leave a gap of entries nobody saw (broker writes appended and cut before
//     any pull read them: the drain no longer sees every position): the crash must then cut
//     the log below the gap, so only an append that no pull served after that crash saw there
//     may leave one. With History.StoreTimeSlack, a broker write's append, and a send's that a
//     pull saw at its offset, is placed at the store time the pulls saw on it, read back
//     through History.BrokerClock.

type opKind uint8

const (
	opSend         opKind = iota
	opSendUnknown         // an Unknown send that stays nondeterministic
	opSendObserved        // an Unknown send a pull saw: checked like an OK send at the offset seen
	opFiller              // an Unknown send nobody saw: one spare slot that may fill a gap
	opBrokerWrite         // an append by the broker itself, at the offset a pull saw it
	opPull
	opDurable // a crash's loss window opens: the log as it is now survives the crash
	opCrash   // the crash: the log loses any part of its tail written since the mark
	// opBrokerWrites: broker writes at consecutive offsets with one window, as one operation
	// (bursts.go).
	opBrokerWrites
)

// fillerID marks a log entry written by a spare slot. Real message ids are never empty.
const fillerID = ""

// opInput is a porcupine operation's input.
type opInput struct {
	kind   opKind
	queue  QueueKey
	client int    // the history's client number (porcupine's ClientId is renumbered densely)
	index  int    // index in History.Sends or History.Pulls
	msgID  string // sends
	offset int64  // pulls: the requested offset; crash operations: the crash's time
	// gapFrom (OK and observed sends): the lowest log length from which the send may fill the
	// gap up to its offset with spare slots; every offset from it to the send's is unpinned.
	gapFrom int64
	cause   string // broker writes
	// unseen (sends and broker writes, in a history with crashes): the queue has broker writes,
	// so a gap before the offset may hold some that no pull saw, appended in a crash's loss
	// window and cut by the crash (the next crash must cut the log back below them).
	unseen bool
	// fresh (broker writes): its store time tells it apart from every other append of the
	// message at that offset, so it appends; otherwise it may also find itself already there
	// (an earlier append seen across a crash that did not cut it).
	fresh bool
	burst []burstWrite // opBrokerWrites: the writes, from the offset of the output on
	// retainedTo (sends and broker writes): History.Retained for the queue. Retention removed
	// the entries below it, judged one by one by the retention check, so the drain does not see
	// them: an append at or below it may find a gap of entries nobody saw (broker writes
	// removed before any pull read them) and fill it, like spare slots, up to the pinned
	// offsets (gapFrom).
	retainedTo int64
}

// opOutput is a porcupine operation's output.
type opOutput struct {
	offset int64       // OK sends: the acknowledged offset
	msgs   []PulledMsg // pulls
}

// sharedLog backs many states: entries below its length are never rewritten, so a state that
// is a prefix of the log can share it. Entry i is ids[i-base] from base on, and below base its
// parent's: a state that appends something else than the log holds at its length forks a log
// on top of the shared prefix instead of copying it (a search forks at almost every step, and
// copies of logs thousands of entries long filled memory). Chains are flattened every
// maxLogDepth forks, so reading an entry walks a bounded number of links. hashes[i-base] is
// the hash of the first i+1 entries.
type sharedLog struct {
	parent *sharedLog
	base   int
	depth  int // links above it
	ids    []string
	hashes []uint64
}

// maxLogDepth bounds a log's chain of parents.
const maxLogDepth = 16

func (l *sharedLog) len() int { return l.base + len(l.ids) }

// at is entry i (below len).
func (l *sharedLog) at(i int) string {
	for i < l.base {
		l = l.parent
	}
	return l.ids[i-l.base]
}

// hashAt is the hash of the first i+1 entries.
func (l *sharedLog) hashAt(i int) uint64 {
	for i < l.base {
		l = l.parent
	}
	return l.hashes[i-l.base]
}

// fork is a log whose first n entries are l's, to append to.
func (l *sharedLog) fork(n int) *sharedLog {
	if l.depth < maxLogDepth {
		return &sharedLog{parent: l, base: n, depth: l.depth + 1}
	}
	f := &sharedLog{ids: make([]string, n), hashes: make([]uint64, n)}
	for i := range n {
		f.ids[i], f.hashes[i] = l.at(i), l.hashAt(i)
	}
	return f
}

// logState is one possible content of a queue: the first n ids of log, plus the number of
// spare slots (unseen Unknown sends that may still append), the length the next crash may
// not cut it below (set by the crash's mark), and, when it holds entries nobody saw that only
// a crash could hide (unseen broker writes), one past the length the next crash must cut it
// to (0: none). It is immutable.
type logState struct {
	log     *sharedLog
	n       int
	spare   int
	durable int
	cutTo   int
	// window: between a crash's mark and the crash, where appends may be lost.
	window bool
}

func (s logState) at(i int64) string { return s.log.at(int(i)) }

// prefixHash is the hash of the first n ids.
func (s logState) prefixHash() uint64 {
	if s.n == 0 {
		return 0
	}
	return s.log.hashAt(s.n - 1)
}

func (s logState) hash() uint64 {
	return s.prefixHash() ^ uint64(s.spare)*0x9E3779B97F4A7C15 ^ uint64(s.durable)*0xC2B2AE3D27D4EB4F ^
		uint64(s.cutTo)*0x165667B19E3779F9 ^ uint64(b2i(s.window))*0x27D4EB2F165667C5
}

// appended returns s with id appended, sharing the backing log when it can.
func (s logState) appended(id string) logState {
	l := s.log
	switch {
	case s.n < l.len() && l.at(s.n) == id:
		t := s
		t.n++
		return t
	case s.n < l.len():
		// Another branch appended something else here: fork on top of our prefix.
		l = l.fork(s.n)
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	next := s.prefixHash()*1099511628211 ^ h.Sum64()
	l.ids = append(l.ids, id)
	l.hashes = append(l.hashes, next)
	t := s
	t.log, t.n = l, s.n+1
	return t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// withRetained returns s with k entries nobody saw appended, which retention removed since
// (opInput.retainedTo).
func (s logState) withRetained(k int64) logState {
	for ; k > 0; k-- {
		s = s.appended(fillerID)
	}
	return s
}

// withUnseen returns s with k entries nobody saw appended, which the next crash must cut.
func (s logState) withUnseen(k int64) logState {
	if s.cutTo == 0 {
		s.cutTo = s.n + 1
	}
	for ; k > 0; k-- {
		s = s.appended(fillerID)
	}
	return s
}

func equalStates(a, b logState) bool {
	if a.n != b.n || a.spare != b.spare || a.durable != b.durable || a.cutTo != b.cutTo || a.window != b.window || a.prefixHash() != b.prefixHash() {
		return false
	}
	if a.log == b.log {
		return true
	}
	for i := range a.n {
		if a.log.at(i) != b.log.at(i) {
			return false
		}
	}
	return true
}

func stepLog(state, input, output interface{}) []interface{} {
	s := state.(logState)
	in := input.(opInput)
	out := output.(opOutput)
	switch in.kind {
	case opBrokerWrite:
		// Exactly at the end: see the model comment. Already there: an earlier append of it
		// at this offset survived a crash.
		if !in.fresh && out.offset < int64(s.n) && s.at(out.offset) == in.msgID {
			return []interface{}{s}
		}
		if out.offset < int64(s.n) {
			return nil
		}
		if out.offset > int64(s.n) && out.offset <= in.retainedTo && int64(s.n) >= in.gapFrom {
			return []interface{}{s.withRetained(out.offset - int64(s.n)).appended(in.msgID)}
		}
		if out.offset > int64(s.n) {
			// Only unseen broker writes a crash then cut can stand in the gap.
			if !in.unseen || !s.window || int64(s.n) < in.gapFrom {
				return nil
			}
			s = s.withUnseen(out.offset - int64(s.n))
		}
		return []interface{}{s.appended(in.msgID)}
	case opBrokerWrites:
		return stepBurst(s, in, out)
	case opDurable:
		s.durable, s.window = s.n, true
		return []interface{}{s}
	case opCrash:
		top := s.n
		if s.cutTo > 0 {
			top = min(top, s.cutTo-1)
		}
		var out []interface{}
		for n := s.durable; n <= top; n++ {
			out = append(out, logState{log: s.log, n: n, spare: s.spare, durable: n})
		}
		return out
	case opSend, opSendObserved:
		gap := out.offset - int64(s.n)
		if gap < 0 || gap > 0 && int64(s.n) < in.gapFrom {
			return nil
		}
		var next []interface{}
		if gap > 0 && out.offset <= in.retainedTo {
			return []interface{}{s.withRetained(gap).appended(in.msgID)}
		}
		if gap <= int64(s.spare) {
			t := s
			for g := gap; g > 0; g-- {
				t = t.appended(fillerID)
				t.spare--
			}
			next = append(next, t.appended(in.msgID))
		}
		if gap > 0 && in.unseen && s.window {
			// Or unseen broker writes a crash then cut, alone or after the spare slots.
			next = append(next, s.withUnseen(gap).appended(in.msgID))
			if s.spare > 0 && gap > int64(s.spare) {
				t := s
				for ; t.spare > 0; t.spare-- {
					t = t.appended(fillerID)
				}
				next = append(next, t.withUnseen(out.offset-int64(t.n)).appended(in.msgID))
			}
		}
		return next
	case opFiller:
		s.spare++
		return []interface{}{s}
	case opSendUnknown:
		return []interface{}{s, s.appended(in.msgID)}
	case opPull:
		if len(out.msgs) == 0 {
			if in.offset >= int64(s.n) {
				return []interface{}{s}
			}
			return nil
		}
		for _, m := range out.msgs {
			if m.Offset >= int64(s.n) || s.at(m.Offset) != m.MsgID {
				return nil
			}
		}
		return []interface{}{s}
	}
	panic(fmt.Sprintf("linearizability: unknown operation kind %d", in.kind))
}

func describeOperation(input, output interface{}) string {
	in := input.(opInput)
	out := output.(opOutput)
	switch in.kind {
	case opSend:
		return fmt.Sprintf("c%d send %s -> ok @%d", in.client, in.msgID, out.offset)
	case opSendUnknown:
		return fmt.Sprintf("c%d send %s -> unknown", in.client, in.msgID)
	case opSendObserved:
		return fmt.Sprintf("c%d send %s -> unknown, seen @%d", in.client, in.msgID, out.offset)
	case opFiller:
		return fmt.Sprintf("c%d send %s -> unknown, never seen", in.client, in.msgID)
	case opBrokerWrite:
		return fmt.Sprintf("broker writes %s (%s), seen @%d", in.msgID, in.cause, out.offset)
	case opBrokerWrites:
		return describeBurst(in, out)
	case opDurable, opCrash:
		return describeCrash(in)
	default:
		if len(out.msgs) == 0 {
			return fmt.Sprintf("c%d pull @%d -> none", in.client, in.offset)
		}
		parts := make([]string, len(out.msgs))
		for i, m := range out.msgs {
			parts[i] = fmt.Sprintf("%d:%s", m.Offset, m.MsgID)
		}
		return fmt.Sprintf("c%d pull @%d -> [%s]", in.client, in.offset, strings.Join(parts, " "))
	}
}

// describeState shows short logs whole and long ones by their length and tail; "?" is an entry
// an unseen Unknown send filled.
func describeState(state interface{}) string {
	s := state.(logState)
	const tail = 6
	var ids []string
	for i := max(0, s.n-tail); i < s.n; i++ {
		ids = append(ids, s.log.at(i))
	}
	for i, id := range ids {
		if id == fillerID {
			ids[i] = "?"
		}
	}
	d := "[" + strings.Join(ids, " ") + "]"
	if s.n > tail {
		d = fmt.Sprintf("len %d [... %s", s.n, d[1:])
	}
	if s.spare > 0 {
		d += fmt.Sprintf(" +%d spare", s.spare)
	}
	if s.durable > 0 {
		d += fmt.Sprintf(" (synced %d)", s.durable)
	}
	return d
}

func queueOf(input interface{}) QueueKey { return input.(opInput).queue }

// partitionOps splits a history by queue, in queue order.
func partitionOps(history []porcupine.Operation) [][]porcupine.Operation {
	return partitionBy(history, func(op porcupine.Operation) QueueKey { return queueOf(op.Input) })
}

// partitionEvents splits an event history by queue; a return event follows its call's queue.
func partitionEvents(history []porcupine.Event) [][]porcupine.Event {
	queueOfID := map[int]QueueKey{}
	return partitionBy(history, func(ev porcupine.Event) QueueKey {
		q, ok := queueOfID[ev.Id]
		if !ok {
			q = queueOf(ev.Value)
			queueOfID[ev.Id] = q
		}
		return q
	})
}

// partitionBy groups items by queue, keeping their order within a queue, in queue order.
func partitionBy[T any](items []T, queue func(T) QueueKey) [][]T {
	byQueue := map[QueueKey][]T{}
	var keys []QueueKey
	for _, it := range items {
		q := queue(it)
		if _, ok := byQueue[q]; !ok {
			keys = append(keys, q)
		}
		byQueue[q] = append(byQueue[q], it)
	}
	slices.SortFunc(keys, QueueKey.Compare)
	out := make([][]T, len(keys))
	for i, q := range keys {
		out[i] = byQueue[q]
	}
	return out
}

// filledBy returns, for queue q of h, when offset o was surely filled with what a read at time
// t saw there: the earliest return of an operation that took effect only once the log was
// longer than o (an acknowledged send at an offset above o, an OK pull that returned an offset
// at or above o) with no crash that may cut o (crashCuts) between its call and t (such a crash
// may cut the log back, and the offset be filled anew), or math.MaxInt64.
func filledBy(h *History, q QueueKey) func(o, t int64) int64 {
	cuts := newCrashCuts(h, q)
	type proof struct{ k, call, ret int64 }
	var proofs []proof
	for _, s := range h.Sends {
		if s.Queue == q && s.Outcome == OK && s.Offset > 0 {
			proofs = append(proofs, proof{s.Offset - 1, s.Call, s.Return})
		}
	}
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK || len(p.Msgs) == 0 {
			continue
		}
		top := p.Msgs[0].Offset
		for _, m := range p.Msgs {
			top = max(top, m.Offset)
		}
		proofs = append(proofs, proof{top, p.Call, p.Return})
	}
	// tables[e]: over the proofs called after crash e-1 (every proof for e == 0), by the
	// offset k they prove filled, the earliest return among those proving every offset <= k.
	type table struct {
		keys   []int64
		suffix []int64 // suffix[i]: the earliest return among keys[i:]
	}
	tables := make([]table, len(h.Crashes)+1)
	for e := range tables {
		byOffset := map[int64]int64{}
		for _, p := range proofs {
			if cuts.since(p.call) < e {
				continue
			}
			if old, ok := byOffset[p.k]; !ok || p.ret < old {
				byOffset[p.k] = p.ret
			}
		}
		keys := slices.Sorted(maps.Keys(byOffset))
		suffix := make([]int64, len(keys)+1)
		suffix[len(keys)] = math.MaxInt64
		for i := len(keys) - 1; i >= 0; i-- {
			suffix[i] = min(suffix[i+1], byOffset[keys[i]])
		}
		tables[e] = table{keys, suffix}
	}
	return func(o, t int64) int64 {
		tb := tables[cuts.span(o, t)]
		i, _ := slices.BinarySearch(tb.keys, o)
		return tb.suffix[i]
	}
}

// pinnedBelow returns, for queue q of h, the function mapping an offset o to one past the
// highest pinned offset below o (0 if none), for a send from call to ret. An offset is pinned
// when some operation needs a real id there: an acknowledged send at it, or an OK pull that
// returned a message at it. No spare slot can fill a pinned offset in any linearization (the
// send appends its own id at exactly its offset; the pull needs its id there, and entries are
// never rewritten), so a send that would spend spare slots on a gap holding a pinned offset is
// rejected at once rather than after the search has run on to the operation that needed that
// offset. With crashes, entries are rewritten after a crash cut the log back: only operations
// between the same two crashes as the send pin offsets for it, and a send a crash falls inside
// has none.
func pinnedBelow(h *History, q QueueKey) func(o, call, ret int64) int64 {
	pinnedIn := map[int][]int64{}
	pin := func(call, ret int64, offsets ...int64) {
		if e, ok := h.within(call, ret); ok {
			pinnedIn[e] = append(pinnedIn[e], offsets...)
		}
	}
	h.eachFilled(q, func(call, ret, offset int64) { pin(call, ret, offset) })
	for e, pinned := range pinnedIn {
		slices.Sort(pinned)
		pinnedIn[e] = slices.Compact(pinned)
	}
	return func(o, call, ret int64) int64 {
		e, ok := h.within(call, ret)
		if !ok {
			return 0
		}
		pinned := pinnedIn[e]
		i, _ := slices.BinarySearch(pinned, o) // pinned[i-1] < o
		if i == 0 {
			return 0
		}
		return pinned[i-1] + 1
	}
}

// LogModel is the nondeterministic Porcupine model of queues as append-only logs, partitioned
// by queue. Convert it with its ToModel method and check the operations from Operations.
func LogModel() porcupine.NondeterministicModel {
	return porcupine.NondeterministicModel{
		Partition:      partitionOps,
		PartitionEvent: partitionEvents,
		Init: func() []interface{} {
			return []interface{}{logState{log: &sharedLog{}}}
		},
		Step:              stepLog,
		Equal:             func(a, b interface{}) bool { return equalStates(a.(logState), b.(logState)) },
		Hash:              func(s interface{}) uint64 { return s.(logState).hash() },
		DescribeOperation: describeOperation,
		DescribeState:     describeState,
	}
}

// Operations converts a history to Porcupine operations, queue by queue in queue order, then in
// history order. Failed sends and pulls that did not return OK are left out; Unknown sends are
// rewritten as the model's description explains. Client ids are renumbered
// densely per queue (0, 1, ...) in the order of the history's client numbers, which keeps the
// visualisation compact; descriptions show the history's numbers.
func Operations(h *History) ([]porcupine.Operation, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	var ops []porcupine.Operation
	ids := sendsByID(h)
	for _, q := range h.Queues() {
		ops = append(ops, queueOperations(h, q, ids)...)
	}
	return ops, nil
}

// sendsByID counts the sends of h by message id (queueOperations' last argument).
func sendsByID(h *History) map[string]int {
	n := make(map[string]int, len(h.Sends))
	for _, s := range h.Sends {
		n[s.MsgID]++
	}
	return n
}

// queueOperations converts the operations of one queue of a validated history; sendsWithID
// is sendsByID(h), which it only reads (the same for every queue).
func queueOperations(h *History, q QueueKey, sendsWithID map[string]int) []porcupine.Operation {
	var end int64
	var clients []int
	for _, s := range h.Sends {
		if s.Queue != q || s.Outcome == Failed {
			continue
		}
		end = max(end, s.Call)
		if s.Outcome == OK {
			end = max(end, s.Return)
		}
		clients = append(clients, s.Client)
	}
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		end = max(end, p.Return)
		clients = append(clients, p.Client)
	}
	writes := h.writesOn(q)
	if len(writes) > 0 || len(h.Crashes) > 0 {
		clients = append(clients, BrokerClient)
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	dense := func(c int) int { i, _ := slices.BinarySearch(clients, c); return i }

	// Rewrite Unknown sends as the model comment at the top of this file explains.
	type sighting struct {
		offset  int64
		by      int64 // return of the earliest pull that saw it
		call    int64 // and its call
		stored  int64 // and the store time it carried
		stamped bool  // whether it carried one
	}
	observed := map[string]sighting{}
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			if o, ok := observed[m.MsgID]; !ok || p.Return < o.by {
				observed[m.MsgID] = sighting{offset: m.Offset, by: p.Return, call: p.Call, stored: m.StoreTime, stamped: m.Stamped}
			}
		}
	}

	gapFrom := pinnedBelow(h, q)
	filled := filledBy(h, q)
	cuts := newCrashCuts(h, q)
	unseen := len(h.Crashes) > 0 && len(writes) > 0

	var ops []porcupine.Operation
	for i, s := range h.Sends {
		if s.Queue != q || s.Outcome == Failed {
			continue
		}
		in := opInput{kind: opSend, queue: q, client: s.Client, index: i, msgID: s.MsgID}
		out := opOutput{offset: s.Offset}
		ret := s.Return
		if s.Outcome == Unknown {
			seen, ok := observed[s.MsgID]
			switch {
			case !ok:
				in.kind = opFiller
				ret = s.Call
			case sendsWithID[s.MsgID] == 1 && seen.by >= s.Call:
				in.kind = opSendObserved
				out.offset = seen.offset
				// Appended at seen.offset before anything needed the log longer (see filledBy).
				ret = max(s.Call, min(seen.by, filled(seen.offset, seen.by)))
			default:
				in.kind = opSendUnknown
				ret = end + 1
			}
		}
		call := s.Call
		if in.kind == opSend || in.kind == opSendObserved {
			if seen, ok := observed[s.MsgID]; ok && seen.offset == out.offset && sendsWithID[s.MsgID] == 1 {
				// The broker stamped it as it appended it (one append: a send's id is its own).
				if lo, hi, ok := h.appendedWithin(seen.stored, call, ret); ok && seen.stamped {
					ret = max(call, min(ret, hi))
					call = min(ret, max(call, lo))
				}
			}
			in.gapFrom = gapFrom(out.offset, call, ret)
			// Unseen entries below it are cut by the next crash, and it with them: not if a
			// pull served after that crash saw it there.
			seenAt := int64(math.MinInt64)
			if seen, ok := observed[s.MsgID]; ok && seen.offset == out.offset {
				seenAt = seen.call
			}
			in.unseen = unseen && h.mayLoseSeen(call, ret, seenAt)
		}
		ops = append(ops, porcupine.Operation{
			ClientId: dense(s.Client), Input: in, Call: call, Output: out, Return: ret,
		})
	}
	// Broker writes: each offset a pull saw one at is an append (see the model comment), one
	// per span between crashes that may cut the offset (crashCuts.span): from to to are the
	// spans of the sighting pull's call and return (a crash may fall inside a pull).
	type appearance struct {
		msgID    string
		offset   int64
		from, to int
		stored   bool // from the store time: one append, never a no-op
	}
	firstSeen := map[appearance]int64{}
	storedAt := map[appearance]PulledMsg{} // the first sighting, with the store time it carried
	seenCall := map[appearance]int64{}     // the call of the first sighting
	var appearances []appearance
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			if writes[m.MsgID] == nil {
				continue
			}
			a := appearance{m.MsgID, m.Offset, cuts.span(m.Offset, p.Call), cuts.span(m.Offset, p.Return), false}
			if lo, hi, ok := h.appendedWithin(m.StoreTime, math.MinInt64, p.Return); ok && m.Stamped {
				// The store time says when the entry seen was appended, so which append it is.
				if lo, hi := cuts.span(m.Offset, lo), cuts.span(m.Offset, hi); lo == hi {
					a.from, a.to, a.stored = lo, hi, true
				}
			}
			if by, ok := firstSeen[a]; !ok {
				appearances = append(appearances, a)
				firstSeen[a], storedAt[a], seenCall[a] = p.Return, m, p.Call
			} else if p.Return < by {
				firstSeen[a], storedAt[a], seenCall[a] = p.Return, m, p.Call
			}
		}
	}
	firstSpan := map[appearance]int{} // by id and offset: the earliest span it may have been seen in
	for _, a := range appearances {
		k := appearance{a.msgID, a.offset, 0, 0, false}
		if e, ok := firstSpan[k]; !ok || a.from < e {
			firstSpan[k] = a.from
		}
	}
	for _, a := range appearances {
		w := writes[a.msgID]
		end := min(firstSeen[a], filled(a.offset, firstSeen[a]))
		call := min(w.After, end)
		st, stamped := storedAt[a].StoreTime, storedAt[a].Stamped
		if a.from > firstSpan[appearance{a.msgID, a.offset, 0, 0, false}] {
			// Seen there before a crash that may have cut it: this one, if not a no-op, is
			// the append after that crash.
			call = max(call, min(h.Crashes[a.from-1].At, end))
		}
		if lo, hi, ok := h.appendedWithin(st, call, end); ok && stamped {
			// The broker stamps a message when it appends it.
			end = max(call, min(end, hi))
			call = min(end, max(call, lo))
		}
		ops = append(ops, porcupine.Operation{
			ClientId: dense(BrokerClient),
			Input: opInput{kind: opBrokerWrite, queue: q, client: BrokerClient, msgID: a.msgID, cause: w.Cause,
				unseen: unseen && h.mayLoseSeen(call, end, seenCall[a]), gapFrom: gapFrom(a.offset, call, end), fresh: a.stored},
			Call: call, Output: opOutput{offset: a.offset}, Return: end,
		})
	}
	for i, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		ops = append(ops, porcupine.Operation{
			ClientId: dense(p.Client),
			Input:    opInput{kind: opPull, queue: q, client: p.Client, index: i, offset: p.Offset},
			Call:     p.Call, Output: opOutput{msgs: p.Msgs}, Return: p.Return,
		})
	}
	if to := h.Retained[q]; to > 0 {
		for i := range ops {
			in := ops[i].Input.(opInput)
			in.retainedTo = to
			ops[i].Input = in
		}
	}
	// Crashes: a mark where the loss window opens, then the crash (see the model comment).
	for i, c := range h.Crashes {
		from := min(h.lossFrom(i), c.At-1) // strictly before the crash, so never after it
		ops = append(ops,
			porcupine.Operation{ClientId: dense(BrokerClient), Input: opInput{kind: opDurable, queue: q, client: BrokerClient, index: i, offset: c.At},
				Call: from, Output: opOutput{}, Return: from},
			porcupine.Operation{ClientId: dense(BrokerClient), Input: opInput{kind: opCrash, queue: q, client: BrokerClient, index: i, offset: c.At},
				Call: c.At, Output: opOutput{}, Return: c.At})
	}
	return mergeBursts(ops)
}
