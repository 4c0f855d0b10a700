package linearizability

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
)

// Bursts of broker writes. A broker that re-puts many messages at once (a delay level coming
// due, its retries after a restart) appends thousands of them within one millisecond, so their
// store times give them one window. Porcupine then tries, at every step, each write of the
// burst until it finds the one whose offset is the log's end: a burst of n costs n² steps, and
// bursts of thousands made queues undecidable.
//
// A run of them is one operation instead, appending its writes in offset order, when that
// loses no linearization: writes at consecutive offsets with one window, with no crash inside
// the window, and no pull that may have found the log empty inside the run (an empty pull at an
// offset the run covers, its window meeting the run's). Then in every
// linearization the writes come in offset order, each exactly at the end (only the first may
// leave a gap of unseen writes before it, when it may: the others' offsets follow on, and
// none can come after the next crash to fill a gap the first left), and only operations that
// commute with them come between:
// pulls that returned messages (the log after the whole run holds what they saw), empty pulls
// at offsets outside the run (true before the run or after it as in its middle), spare slots.
// So collapsing the run to the instant of its first write keeps every linearization legal.
// A loss-window mark inside the window may fall between writes of the run, which the merged
// run no longer allows; but the mark placed before the whole run records a shorter synced
// length and opens the window earlier, which only allows more (the crash may cut to more
// lengths, unseen writes may stand in gaps sooner), so a linearization with the mark inside
// the run has one with the mark before it. Only a crash inside the window keeps a run apart.

// burstWrite is one write of a merged run.
type burstWrite struct {
	msgID, cause string
	fresh        bool
}

// mergeBursts replaces the runs of broker writes in ops (one queue's) that can be one
// operation, as the comment above says, and returns the operations. A run takes its first
// write's input (unseen, gapFrom) for the whole.
func mergeBursts(ops []porcupine.Operation) []porcupine.Operation {
	type window struct{ call, ret int64 }
	byWindow := map[window][]int{} // indexes of mergeable writes, by window
	var windows []window
	var instants []int64 // crash operations
	var empty []porcupine.Operation
	for i, op := range ops {
		in := op.Input.(opInput)
		switch {
		case in.kind == opBrokerWrite:
			w := window{op.Call, op.Return}
			if _, ok := byWindow[w]; !ok {
				windows = append(windows, w)
			}
			byWindow[w] = append(byWindow[w], i)
		case in.kind == opCrash:
			instants = append(instants, op.Call)
		case in.kind == opPull && len(op.Output.(opOutput).msgs) == 0:
			empty = append(empty, op)
		}
	}
	merged := map[int]bool{}
	var out []porcupine.Operation
	for _, w := range windows {
		idx := byWindow[w]
		if len(idx) < 2 || slices.ContainsFunc(instants, func(t int64) bool { return t >= w.call && t <= w.ret }) {
			continue
		}
		slices.SortFunc(idx, func(a, b int) int {
			return cmp.Compare(ops[a].Output.(opOutput).offset, ops[b].Output.(opOutput).offset)
		})
		// The offsets of the empty pulls meeting the window, sorted.
		var emptyAt []int64
		for _, p := range empty {
			if p.Call <= w.ret && p.Return >= w.call {
				emptyAt = append(emptyAt, p.Input.(opInput).offset)
			}
		}
		slices.Sort(emptyAt)
		for start := 0; start < len(idx); {
			end := start + 1 // the run is idx[start:end]
			first := ops[idx[start]].Output.(opOutput).offset
			for end < len(idx) && ops[idx[end]].Output.(opOutput).offset == first+int64(end-start) {
				end++
			}
			// Shorten it to end below the first empty pull inside it, in (first, last].
			if i, _ := slices.BinarySearch(emptyAt, first+1); i < len(emptyAt) && emptyAt[i] < first+int64(end-start) {
				end = start + int(emptyAt[i]-first)
			}
			if end-start >= 2 {
				head := ops[idx[start]]
				in := head.Input.(opInput)
				in.kind, in.burst = opBrokerWrites, nil
				for _, i := range idx[start:end] {
					w := ops[i].Input.(opInput)
					in.burst = append(in.burst, burstWrite{msgID: w.msgID, cause: w.cause, fresh: w.fresh})
					merged[i] = true
				}
				head.Input = in
				out = append(out, head)
			}
			start = end
		}
	}
	for i, op := range ops {
		if !merged[i] {
			out = append(out, op)
		}
	}
	return out
}

// stepBurst applies a merged run's writes in offset order (see mergeBursts): the first as
// itself, gap and all, the others each at the end.
func stepBurst(s logState, in opInput, out opOutput) []interface{} {
	for i, w := range in.burst {
		one := opInput{kind: opBrokerWrite, queue: in.queue, client: in.client, msgID: w.msgID, fresh: w.fresh, retainedTo: in.retainedTo}
		if i == 0 {
			one.unseen, one.gapFrom = in.unseen, in.gapFrom
		}
		next := stepLog(s, one, opOutput{offset: out.offset + int64(i)})
		if len(next) == 0 {
			return nil
		}
		s = next[0].(logState)
	}
	return []interface{}{s}
}

func describeBurst(in opInput, out opOutput) string {
	return fmt.Sprintf("broker writes %d messages at once, seen @%d..%d: %s (%s) first", len(in.burst),
		out.offset, out.offset+int64(len(in.burst))-1, in.burst[0].msgID, in.burst[0].cause)
}
