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
//   - Failed sends are left out (they never took effect; CheckInvariants makes sure their ids
//     are never observed) and so are pulls that did not return OK.

type opKind uint8

const (
	opSend         opKind = iota
	opSendUnknown         // an Unknown send that stays nondeterministic
	opSendObserved        // an Unknown send a pull saw: checked like an OK send at the offset seen
	opFiller              // an Unknown send nobody saw: one spare slot that may fill a gap
	opBrokerWrite         // an append by the broker itself, at the offset a pull saw it
	opPull
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
	offset int64  // pulls: the requested offset
	// gapFrom (OK and observed sends): the lowest log length from which the send may fill the
	// gap up to its offset with spare slots; every offset from it to the send's is unpinned.
	gapFrom int64
	cause   string // broker writes
}

// opOutput is a porcupine operation's output.
type opOutput struct {
	offset int64       // OK sends: the acknowledged offset
	msgs   []PulledMsg // pulls
}

// sharedLog backs many states: entries below len(ids) are never rewritten, so a state that is a
// prefix of the log can share it. hashes[i] is the hash of ids[:i+1].
type sharedLog struct {
	ids    []string
	hashes []uint64
}

// logState is one possible content of a queue: the first n ids of log, plus the number of
// spare slots (unseen Unknown sends that may still append). It is immutable.
type logState struct {
	log   *sharedLog
	n     int
	spare int
}

func (s logState) at(i int64) string { return s.log.ids[i] }

// prefixHash is the hash of the first n ids.
func (s logState) prefixHash() uint64 {
	if s.n == 0 {
		return 0
	}
	return s.log.hashes[s.n-1]
}

func (s logState) hash() uint64 { return s.prefixHash() ^ uint64(s.spare)*0x9E3779B97F4A7C15 }

// appended returns s with id appended, sharing the backing log when it can.
func (s logState) appended(id string) logState {
	l := s.log
	switch {
	case s.n < len(l.ids) && l.ids[s.n] == id:
		return logState{l, s.n + 1, s.spare}
	case s.n < len(l.ids):
		// Another branch appended something else here: fork a copy of our prefix.
		l = &sharedLog{
			ids:    slices.Clone(l.ids[:s.n]),
			hashes: slices.Clone(l.hashes[:s.n]),
		}
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	next := s.prefixHash()*1099511628211 ^ h.Sum64()
	l.ids = append(l.ids, id)
	l.hashes = append(l.hashes, next)
	return logState{l, s.n + 1, s.spare}
}

func equalStates(a, b logState) bool {
	if a.n != b.n || a.spare != b.spare || a.prefixHash() != b.prefixHash() {
		return false
	}
	if a.log == b.log {
		return true
	}
	return slices.Equal(a.log.ids[:a.n], b.log.ids[:b.n])
}

func stepLog(state, input, output interface{}) []interface{} {
	s := state.(logState)
	in := input.(opInput)
	out := output.(opOutput)
	switch in.kind {
	case opBrokerWrite:
		// Exactly at the end: see the model comment.
		if out.offset != int64(s.n) {
			return nil
		}
		return []interface{}{s.appended(in.msgID)}
	case opSend, opSendObserved:
		gap := out.offset - int64(s.n)
		if gap < 0 || gap > int64(s.spare) || gap > 0 && int64(s.n) < in.gapFrom {
			return nil
		}
		for ; gap > 0; gap-- {
			s = s.appended(fillerID)
			s.spare--
		}
		return []interface{}{s.appended(in.msgID)}
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
	ids := slices.Clone(s.log.ids[max(0, s.n-tail):s.n])
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

// filledBy returns, for queue q of h, when offset o was surely filled: the earliest return of
// an operation that took effect only once the log was longer than o (an acknowledged send at an
// offset above o, an OK pull that returned an offset at or above o), or math.MaxInt64.
func filledBy(h *History, q QueueKey) func(o int64) int64 {
	// byOffset[k]: the earliest return of an operation proving every offset <= k filled.
	byOffset := map[int64]int64{}
	note := func(k, ret int64) {
		if old, ok := byOffset[k]; !ok || ret < old {
			byOffset[k] = ret
		}
	}
	for _, s := range h.Sends {
		if s.Queue == q && s.Outcome == OK && s.Offset > 0 {
			note(s.Offset-1, s.Return)
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
		note(top, p.Return)
	}
	keys := slices.Sorted(maps.Keys(byOffset))
	// suffix[i]: the earliest return among keys[i:].
	suffix := make([]int64, len(keys)+1)
	suffix[len(keys)] = math.MaxInt64
	for i := len(keys) - 1; i >= 0; i-- {
		suffix[i] = min(suffix[i+1], byOffset[keys[i]])
	}
	return func(o int64) int64 {
		i, _ := slices.BinarySearch(keys, o)
		return suffix[i]
	}
}

// pinnedBelow returns, for queue q of h, the function mapping an offset o to one past the
// highest pinned offset below o (0 if none). An offset is pinned when some operation needs a
// real id there: an acknowledged send at it, or an OK pull that returned a message at it. No
// spare slot can fill a pinned offset in any linearization (the send appends its own id at
// exactly its offset; the pull needs its id there, and entries are never rewritten), so a send
// that would spend spare slots on a gap holding a pinned offset is rejected at once rather
// than after the search has run on to the operation that needed that offset.
func pinnedBelow(h *History, q QueueKey) func(o int64) int64 {
	var pinned []int64
	for _, s := range h.Sends {
		if s.Queue == q && s.Outcome == OK {
			pinned = append(pinned, s.Offset)
		}
	}
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			pinned = append(pinned, m.Offset)
		}
	}
	slices.Sort(pinned)
	pinned = slices.Compact(pinned)
	return func(o int64) int64 {
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
	for _, q := range h.Queues() {
		ops = append(ops, queueOperations(h, q)...)
	}
	return ops, nil
}

// queueOperations converts the operations of one queue of a validated history.
func queueOperations(h *History, q QueueKey) []porcupine.Operation {
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
	if len(writes) > 0 {
		clients = append(clients, BrokerClient)
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	dense := func(c int) int { i, _ := slices.BinarySearch(clients, c); return i }

	// Rewrite Unknown sends as the model comment at the top of this file explains.
	type sighting struct {
		offset int64
		by     int64 // return of the earliest pull that saw it
	}
	sendsWithID := map[string]int{}
	for _, s := range h.Sends {
		sendsWithID[s.MsgID]++
	}
	observed := map[string]sighting{}
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			if o, ok := observed[m.MsgID]; !ok || p.Return < o.by {
				observed[m.MsgID] = sighting{offset: m.Offset, by: p.Return}
			}
		}
	}

	gapFrom := pinnedBelow(h, q)
	filled := filledBy(h, q)

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
				ret = max(s.Call, min(seen.by, filled(seen.offset)))
			default:
				in.kind = opSendUnknown
				ret = end + 1
			}
		}
		if in.kind == opSend || in.kind == opSendObserved {
			in.gapFrom = gapFrom(out.offset)
		}
		ops = append(ops, porcupine.Operation{
			ClientId: dense(s.Client), Input: in, Call: s.Call, Output: out, Return: ret,
		})
	}
	// Broker writes: each offset a pull saw one at is an append (see the model comment).
	type appearance struct {
		msgID  string
		offset int64
	}
	firstSeen := map[appearance]int64{}
	var appearances []appearance
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			if writes[m.MsgID] == nil {
				continue
			}
			a := appearance{m.MsgID, m.Offset}
			if by, ok := firstSeen[a]; !ok {
				appearances = append(appearances, a)
				firstSeen[a] = p.Return
			} else if p.Return < by {
				firstSeen[a] = p.Return
			}
		}
	}
	for _, a := range appearances {
		w := writes[a.msgID]
		end := min(firstSeen[a], filled(a.offset))
		ops = append(ops, porcupine.Operation{
			ClientId: dense(BrokerClient),
			Input:    opInput{kind: opBrokerWrite, queue: q, client: BrokerClient, msgID: a.msgID, cause: w.Cause},
			Call:     min(w.After, end), Output: opOutput{offset: a.offset}, Return: end,
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
	return ops
}
