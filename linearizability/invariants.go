package linearizability

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Kinds of invariant violation.
const (
	// KindLostAcked: an acknowledged send's message is not in the final drain of its queue.
	KindLostAcked = "lost acknowledged message"
	// KindLostObserved: a message some pull returned is not in the final drain of its queue.
	KindLostObserved = "lost observed message"
	// KindTwoOffsets: one message id was acknowledged or observed at two positions.
	KindTwoOffsets = "message at two offsets"
	// KindOffsetConflict: two message ids were acknowledged or observed at one position.
	KindOffsetConflict = "two messages at one offset"
	// KindFailedObserved: a message whose every send failed definitely was pulled or drained.
	KindFailedObserved = "failed send observed"
	// KindPhantom: a pulled or drained message id that no send in the history carried.
	KindPhantom = "message never sent"
	// KindDrainOrder: the final drain of a queue is not offsets 0, 1, 2, ... in order.
	KindDrainOrder = "drain not contiguous"
	// KindWrongQueue: a message seen in a queue that none of its sends or broker writes named.
	KindWrongQueue = "message in the wrong queue"
	// KindLostWrite: a broker write whose cause was acknowledged is not in the final drain.
	KindLostWrite = "lost broker write"
	// KindTooEarly: a broker write was pulled before it could legally appear (a delayed message
	// before its due time, a transaction's message before its commit).
	KindTooEarly = "broker write too early"
	// KindTooLate: a broker write was first stored after its deadline.
	KindTooLate = "broker write too late"
	// KindWithheldDelivered: a message that must never be delivered was pulled or drained.
	KindWithheldDelivered = "withheld message delivered"
)

// Violation is one broken invariant.
type Violation struct {
	Kind    string
	Queue   QueueKey
	MsgID   string // "" when the violation is not about one message
	Message string // for a person: what was seen, and where
}

func (v Violation) String() string { return fmt.Sprintf("%s: %v: %s", v.Kind, v.Queue, v.Message) }

// CheckInvariants checks h and the final drain of every queue directly, without Porcupine.
// finalDrain[q][i] is the message id at offset i of queue q, read from offset 0 after faults
// healed; "" marks an offset the drain found nothing at (reported as a drain out of order). A queue of the history missing from finalDrain counts as drained empty, so every
// acknowledged message in it is reported lost. Violations come sorted by queue, kind, message
// id and text.
func CheckInvariants(h History, finalDrain map[QueueKey][]string) []Violation {
	drain := make(map[QueueKey][]PulledMsg, len(finalDrain))
	for q, ids := range finalDrain {
		msgs := make([]PulledMsg, 0, len(ids))
		for i, id := range ids {
			if id != "" { // a hole: the drain found nothing at offset i
				msgs = append(msgs, PulledMsg{Offset: int64(i), MsgID: id})
			}
		}
		drain[q] = msgs
	}
	return CheckDrainInvariants(h, drain)
}

// position is a place in a queue.
type position struct {
	queue  QueueKey
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

// CheckDrainInvariants is CheckInvariants for a drain that carries its offsets, as read by
// pulls; it also checks that each queue's drained offsets run 0, 1, 2, ... in order (skipping
// only offsets h.Unreadable lists).
func CheckDrainInvariants(h History, finalDrain map[QueueKey][]PulledMsg) []Violation {
	var out []Violation
	report := func(kind string, q QueueKey, id, format string, args ...any) {
		out = append(out, Violation{Kind: kind, Queue: q, MsgID: id, Message: fmt.Sprintf(format, args...)})
	}

	// What the sends say about each id: whether any send may have taken effect, and where.
	mayExist := map[string]bool{}
	sent := map[string]bool{}
	queuesOf := map[string]map[QueueKey]bool{}
	addQueue := func(id string, q QueueKey) {
		if queuesOf[id] == nil {
			queuesOf[id] = map[QueueKey]bool{}
		}
		queuesOf[id][q] = true
	}
	for _, s := range h.Sends {
		sent[s.MsgID] = true
		addQueue(s.MsgID, s.Queue)
		if s.Outcome != Failed {
			mayExist[s.MsgID] = true
		}
	}
	writes := map[string]*BrokerWrite{}
	for i := range h.Writes {
		w := &h.Writes[i]
		writes[w.MsgID] = w
		sent[w.MsgID] = true
		mayExist[w.MsgID] = true
		addQueue(w.MsgID, w.Queue)
	}
	withheld := map[string]string{}
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
		if s.Outcome == OK {
			seen = append(seen, sighting{position{s.Queue, s.Offset}, s.MsgID, source{fromAck, i, s.Client}})
		}
	}
	for i, p := range h.Pulls {
		if p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			seen = append(seen, sighting{position{p.Queue, m.Offset}, m.MsgID, source{fromPull, i, p.Client}})
		}
	}
	drainQueues := make([]QueueKey, 0, len(finalDrain))
	for q := range finalDrain {
		drainQueues = append(drainQueues, q)
	}
	slices.SortFunc(drainQueues, QueueKey.Compare)
	drained := map[QueueKey]map[string]bool{}
	for _, q := range drainQueues {
		ids := map[string]bool{}
		want := int64(0)
		for i, m := range finalDrain[q] {
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
	// What crashes may have lost under async flush (crash.go): not lost for good, and not
	// holding its position against the message that reused it.
	unsynced := unflushed(&h, drained)

	// One id, one position; one position, one id. Remember the first source of each pair.
	positionsOf := map[string]map[position]source{}
	idsAt := map[position]map[string]source{}
	for _, s := range seen {
		if positionsOf[s.msgID] == nil {
			positionsOf[s.msgID] = map[position]source{}
		}
		if _, ok := positionsOf[s.msgID][s.pos]; !ok {
			positionsOf[s.msgID][s.pos] = s.source
		}
		if idsAt[s.pos] == nil {
			idsAt[s.pos] = map[string]source{}
		}
		if _, ok := idsAt[s.pos][s.msgID]; !ok {
			idsAt[s.pos][s.msgID] = s.source
		}
	}
	for _, id := range sortedKeys(positionsOf, strings.Compare) {
		if len(positionsOf[id]) < 2 {
			continue
		}
		if w := writes[id]; w != nil && onlyIn(positionsOf[id], w.Queue) {
			continue // delivered at least once: duplicates in its own queue are allowed
		}
		poss := sortedKeys(positionsOf[id], position.compare)
		parts := make([]string, len(poss))
		for i, p := range poss {
			parts[i] = fmt.Sprintf("%v (%s)", p, positionsOf[id][p])
		}
		report(KindTwoOffsets, poss[0].queue, id, "%s seen at %s", id, strings.Join(parts, ", "))
	}
	spans := h.appendSpans()
	drainAt := map[position]string{}
	for _, q := range drainQueues {
		for _, m := range finalDrain[q] {
			drainAt[position{q, m.Offset}] = m.MsgID
		}
	}
	for _, pos := range sortedKeys(idsAt, position.compare) {
		if len(idsAt[pos]) < 2 {
			continue
		}
		ids := sortedKeys(idsAt[pos], strings.Compare)
		// A message a crash may have cut off this position (not there in the drain, and
		// appended within a crash's loss window) does not hold it against the one that
		// reused it; two that held it are a conflict.
		held := 0
		for _, id := range ids {
			if drainAt[pos] == id || !h.mayCut(spans, id, h.sourceReturn(idsAt[pos][id])) {
				held++
			}
		}
		if held < 2 {
			continue
		}
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%s (%s)", id, idsAt[pos][id])
		}
		report(KindOffsetConflict, pos.queue, "", "offset %d holds %s", pos.offset, strings.Join(parts, ", "))
	}

	// Acknowledged and observed messages must survive into the drain of their queue.
	for i, s := range h.Sends {
		if s.Outcome == OK && !drained[s.Queue][s.MsgID] && !unsynced.has(s.Queue, s.MsgID) {
			report(KindLostAcked, s.Queue, s.MsgID, "%s acknowledged at offset %d to send #%d (client %d) is not in the final drain", s.MsgID, s.Offset, i, s.Client)
		}
	}
	type queueMsg struct {
		queue QueueKey
		msgID string
	}
	lostObserved := map[queueMsg]bool{} // report each lost message once
	for i, p := range h.Pulls {
		if p.Outcome != OK {
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

	// Broker writes: owed ones survive into the drain; none appears before its cause allows
	// or is first stored after its deadline.
	for i, w := range h.Writes {
		if w.Owed && !drained[w.Queue][w.MsgID] && !unsynced.has(w.Queue, w.MsgID) {
			report(KindLostWrite, w.Queue, w.MsgID, "%s (%s, broker write #%d) is owed but not in the final drain", w.MsgID, w.Cause, i)
		}
	}
	// When each appearance of a write was surely in the log: seen by a pull, or implied by a
	// later offset (filledBy).
	type appearance struct {
		queue  QueueKey
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
		if p.Outcome != OK {
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
	filled := map[QueueKey]func(o, t int64) int64{}
	early := map[string]bool{}
	for _, a := range order {
		if filled[a.queue] == nil {
			filled[a.queue] = filledBy(&h, a.queue)
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

	// Withheld messages never appear; others appear only in a queue they were sent or written to.
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

	// Observed ids must come from a send that may have taken effect.
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

	slices.SortFunc(out, func(a, b Violation) int {
		if c := a.Queue.Compare(b.Queue); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.MsgID, b.MsgID), strings.Compare(a.Message, b.Message))
	})
	return out
}

func isWithheld(withheld map[string]string, id string) bool {
	_, ok := withheld[id]
	return ok
}

// onlyIn reports whether every position is in queue q.
func onlyIn(positions map[position]source, q QueueKey) bool {
	for p := range positions {
		if p.queue != q {
			return false
		}
	}
	return true
}

func queueNames(qs map[QueueKey]bool) []string {
	var out []string
	for _, q := range sortedKeys(qs, QueueKey.Compare) {
		out = append(out, q.String())
	}
	return out
}

func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}
