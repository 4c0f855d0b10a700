package checks

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/linearizability"
)

// KindSearchOffset: an offset search answered an offset that disagrees with the store
// times of the queue's messages.
const KindSearchOffset = "offset search wrong"

// Searches checks every OK offset search of h against the final drain of its queue (with
// store times): the store times of a queue only grow with its offsets, so the first offset
// stored at or after T splits the drain in two: every message before it was stored before T
// (by the millisecond), every message from it on at or after T. A message stored after the
// search was stored after T, so the split holds for the whole final drain, with one
// exception: the broker searches only what readers may see, and a message takes its store
// time when it is written but becomes visible only once it is durable (a slow fsync holds it
// back), so messages stored before T may follow the answer if they were not visible yet when
// the search ran (the answer is then the end of what was visible). Such a message is a
// violation only once the history shows it was visible (filledBy) before the search's call.
func Searches(h *linearizability.History, finalDrain map[linearizability.QueueKey][]linearizability.PulledMsg) []Violation {
	var out []Violation
	ms := func(t int64) int64 { return t / int64(time.Millisecond) }
	filled := map[linearizability.QueueKey]func(o, t int64) int64{}
	for i, s := range h.Searches {
		if s.Outcome != linearizability.OK {
			continue
		}
		msgs, ok := finalDrain[s.Queue]
		if !ok || !storedInOrder(msgs) {
			continue
		}
		if filled[s.Queue] == nil {
			filled[s.Queue] = linearizability.FilledBy(h, s.Queue)
		}
		base := int64(0)
		if h.Retained[s.Queue] > 0 {
			// Retention removed the queue's oldest messages: the drain starts at its min offset,
			// and an answer below it was judged against messages the drain no longer holds.
			if len(msgs) == 0 || s.Offset < msgs[0].Offset {
				continue
			}
			base = msgs[0].Offset
		}
		if s.Offset < 0 || s.Offset > base+int64(len(msgs)) {
			out = append(out, Violation{Kind: KindSearchOffset, Queue: s.Queue, Message: fmt.Sprintf(
				"search #%d (client %d) for %v answered offset %d; the queue holds offsets 0..%d",
				i, s.Client, time.Duration(s.Time), s.Offset, base+int64(len(msgs))-1)})
			continue
		}
		for _, m := range msgs {
			if !m.Stamped {
				continue
			}
			before := ms(m.StoreTime) < ms(s.Time)
			if before && m.Offset >= s.Offset && filled[s.Queue](m.Offset, s.Call) >= s.Call {
				break // not visible yet when the search ran, nor is anything after it
			}
			if before != (m.Offset < s.Offset) {
				out = append(out, Violation{Kind: KindSearchOffset, Queue: s.Queue, MsgID: m.MsgID, Message: fmt.Sprintf(
					"search #%d (client %d) for %v answered offset %d, but %s at offset %d was stored at %v",
					i, s.Client, time.Duration(s.Time), s.Offset, m.MsgID, m.Offset, time.Duration(m.StoreTime))})
				break
			}
		}
	}
	return out
}

// storedInOrder reports whether store times never decrease with the offset.
func storedInOrder(msgs []linearizability.PulledMsg) bool {
	var last int64
	seen := false
	for _, m := range msgs {
		if !m.Stamped {
			continue
		}
		if seen && m.StoreTime < last {
			return false
		}
		last, seen = m.StoreTime, true
	}
	return true
}
