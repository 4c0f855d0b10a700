package linearizability

import (
	"fmt"
	"slices"
	"time"
)

// Checks of queue locks and offset searches: flows whose results are not appends or reads of
// a queue's log, checked directly against what the run observed.

// Kinds of violation found by CheckLocks and CheckSearches.
const (
	// KindLockOverlap: two clients of a group held the lock of one queue at the same time.
	KindLockOverlap = "two lock holders"
	// KindSearchOffset: an offset search answered an offset that disagrees with the store
	// times of the queue's messages.
	KindSearchOffset = "offset search wrong"
)

// LockOp is one LOCK_BATCH_MQ or UNLOCK_BATCH_MQ for one queue (a request naming several
// queues is recorded once per queue).
type LockOp struct {
	Client       int
	Group        string
	Queue        QueueKey
	Call, Return int64
	Outcome      Outcome
	// Unlock: an unlock, not a lock.
	Unlock bool
	// Granted: an OK lock that the broker granted for this queue.
	Granted bool
}

// SearchOp is one SEARCH_OFFSET_BY_TIMESTAMP: the offset of the first message stored at or
// after Time.
type SearchOp struct {
	Client       int
	Queue        QueueKey
	Time         int64 // virtual nanoseconds, of millisecond precision
	Call, Return int64
	Outcome      Outcome
	Offset       int64 // meaningful when Outcome is OK
}

// CheckLocks checks that no two clients held one queue's lock at once. A grant to B breaks
// it when a grant to another client A surely came first (A returned before B was called) and
// A's lease, renewed no earlier than A's call, had surely not run out when B's grant returned
// (the broker frees a lock not renewed for more than lease), unless A may have released it in
// between: an unlock by A that did not fail definitely, called after A's lock and before B's
// return, or a broker restart (locks live in memory) in that window. restarts lists the
// virtual times the broker went down.
func CheckLocks(locks []LockOp, lease time.Duration, restarts []int64) []Violation {
	if lease <= 0 {
		return nil
	}
	type key struct {
		group string
		queue QueueKey
	}
	byKey := map[key][]int{}
	var keys []key
	for i, l := range locks {
		k := key{l.Group, l.Queue}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.group != b.group {
			if a.group < b.group {
				return -1
			}
			return 1
		}
		return a.queue.Compare(b.queue)
	})
	restartIn := func(from, to int64) bool {
		for _, r := range restarts {
			if r >= from && r <= to {
				return true
			}
		}
		return false
	}
	var out []Violation
	for _, k := range keys {
		idx := byKey[k]
		released := func(client int, from, to int64) bool {
			for _, i := range idx {
				u := locks[i]
				if u.Unlock && u.Client == client && u.Outcome != Failed && u.Call >= from && u.Call <= to {
					return true
				}
			}
			return false
		}
		reported := map[int]bool{}
		for _, ib := range idx {
			b := locks[ib]
			if !b.Granted || b.Outcome != OK || reported[ib] {
				continue
			}
			for _, ia := range idx {
				a := locks[ia]
				if !a.Granted || a.Outcome != OK || a.Client == b.Client || a.Return > b.Call {
					continue
				}
				if b.Return-a.Call >= int64(lease) || released(a.Client, a.Call, b.Return) || restartIn(a.Call, b.Return) {
					continue
				}
				reported[ib] = true
				out = append(out, Violation{Kind: KindLockOverlap, Queue: k.queue, Message: fmt.Sprintf(
					"group %s: client %d was granted the lock in [%v, %v] while client %d held it since a grant in [%v, %v] (lease %v, no unlock or restart between)",
					k.group, b.Client, time.Duration(b.Call), time.Duration(b.Return), a.Client, time.Duration(a.Call), time.Duration(a.Return), lease)})
				break
			}
		}
	}
	return out
}

// CheckSearches checks every OK offset search of h against the final drain of its queue (with
// store times): the store times of a queue only grow with its offsets, so the first offset
// stored at or after T splits the drain in two: every message before it was stored before T
// (by the millisecond), every message from it on at or after T. A message stored after the
// search was stored after T, so the split holds for the whole final drain, with one
// exception: the broker searches only what readers may see, and a message takes its store
// time when it is written but becomes visible only once it is durable (a slow fsync holds it
// back), so messages stored before T may follow the answer if they were not visible yet when
// the search ran (the answer is then the end of what was visible). Such a message is a
// violation only once the history shows it was visible (filledBy) before the search's call.
func CheckSearches(h *History, finalDrain map[QueueKey][]PulledMsg) []Violation {
	var out []Violation
	ms := func(t int64) int64 { return t / int64(time.Millisecond) }
	filled := map[QueueKey]func(o, t int64) int64{}
	for i, s := range h.Searches {
		if s.Outcome != OK {
			continue
		}
		msgs, ok := finalDrain[s.Queue]
		if !ok || !storedInOrder(msgs) {
			continue
		}
		if filled[s.Queue] == nil {
			filled[s.Queue] = filledBy(h, s.Queue)
		}
		if s.Offset < 0 || s.Offset > int64(len(msgs)) {
			out = append(out, Violation{Kind: KindSearchOffset, Queue: s.Queue, Message: fmt.Sprintf(
				"search #%d (client %d) for %v answered offset %d; the queue holds offsets 0..%d",
				i, s.Client, time.Duration(s.Time), s.Offset, len(msgs)-1)})
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
func storedInOrder(msgs []PulledMsg) bool {
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
