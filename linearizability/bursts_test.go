package linearizability

import (
	"slices"
	"testing"
	"time"
)

// A burst of broker writes stamped in one millisecond is checked as one operation, and checks
// the same: the writes line up with the acknowledgements around them, a later empty read
// where they are is a violation, and an empty read that may fall inside the burst splits it; a
// crash's loss window opening inside it does not.
func TestBurstsOfBrokerWrites(t *testing.T) {
	burst := func(extra ...any) History {
		ops := append([]any{
			sendOK(0, "a", 100, 110, 0),
			pull(1, 1, 600, 610, 1, "w1", 2, "w2", 3, "w3", 4, "w4", 5, "w5"),
			sendOK(0, "b", 700, 710, 6),
		}, extra...)
		h := history(ops...)
		for i := range h.Pulls {
			for j := range h.Pulls[i].Msgs {
				h.Pulls[i].Msgs[j].StoreTime, h.Pulls[i].Msgs[j].Stamped = 500, true // one millisecond, as it were
			}
		}
		h.StoreTimeSlack = 1
		return withWrites(h, write(qa, "w1", 0, false), write(qa, "w2", 0, false), write(qa, "w3", 0, false),
			write(qa, "w4", 0, false), write(qa, "w5", 0, false))
	}
	tests := []struct {
		name    string
		h       History
		runs    []int // the sizes of the merged runs
		verdict Verdict
	}{
		{"one run", burst(), []int{5}, VerdictOk},
		{"an empty read after it", burst(pull(2, 1, 520, 530)), []int{5}, VerdictIllegal},
		{"an empty read that may fall inside it", burst(pull(2, 3, 500, 500)), []int{2, 3}, VerdictOk},
		// The loss window of a crash after it opens inside it: one run still (see mergeBursts).
		{"a loss-window mark inside it", withCrashes(burst(), Crash{At: 650, LossFrom: 500}), []int{5}, VerdictOk},
		{"a loss-window mark inside it, the crash cutting it", withCrashes(burst(pull(2, 3, 800, 810)), Crash{At: 650, LossFrom: 500}), []int{5}, VerdictIllegal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var runs []int
			for _, op := range queueOperations(&tc.h, qa, sendsByID(&tc.h)) {
				if in := op.Input.(opInput); in.kind == opBrokerWrites {
					runs = append(runs, len(in.burst))
				} else if in.kind == opBrokerWrite {
					t.Errorf("a write left out of every run: %s", describeOperation(op.Input, op.Output))
				}
			}
			if slices.Sort(runs); !slices.Equal(runs, tc.runs) {
				t.Errorf("runs %v, want %v", runs, tc.runs)
			}
			res, err := Check(tc.h, 5*time.Second, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", res.Verdict, tc.verdict)
			}
		})
	}
}
