package checks

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	. "github.com/sluicemq/sluice/linearizability"
)

// A group may commit an offset only once every message below it was delivered to one of its
// members; messages the drain does not hold, and groups not judged, are left alone.
func TestCommits(t *testing.T) {
	drain := map[QueueKey][]PulledMsg{qa: {{Offset: 0, MsgID: "a"}, {Offset: 1, MsgID: "b"}, {Offset: 3, MsgID: "d"}}}
	deliver := func(offset, at int64) Delivery { return Delivery{Group: "g", Queue: qa, Offset: offset, At: at} }
	commit := func(offset, at int64) CommitOp {
		return CommitOp{Client: "c1", Group: "g", Queue: qa, Offset: offset, At: at}
	}
	tests := []struct {
		name      string
		delivered []Delivery
		commits   []CommitOp
		want      []string
		destroyed int64 // the offset a fault destroyed a copy of (-1: none)
	}{
		{"commits behind deliveries", []Delivery{deliver(0, 10), deliver(1, 10)}, []CommitOp{commit(1, 10), commit(2, 20)}, nil, -1},
		{"a commit past an undelivered message", []Delivery{deliver(0, 10)}, []CommitOp{commit(2, 20)}, []string{KindCommitPastUnprocessed + " b"}, -1},
		{"a commit before the delivery it passes", []Delivery{deliver(0, 10), deliver(1, 30)}, []CommitOp{commit(2, 20)}, []string{KindCommitPastUnprocessed + " b"}, -1},
		{"an offset the drain does not hold is not judged", []Delivery{deliver(0, 10), deliver(1, 10)}, []CommitOp{commit(3, 20)}, nil, -1},
		{"past the last message", []Delivery{deliver(0, 10), deliver(1, 10)}, []CommitOp{commit(4, 20)}, []string{KindCommitPastUnprocessed + " d"}, -1},
		{"another group's deliveries do not count", []Delivery{{Group: "h", Queue: qa, Offset: 0, At: 1}}, []CommitOp{commit(1, 20)}, []string{KindCommitPastUnprocessed + " a"}, -1},
		{"a group not judged", nil, []CommitOp{{Client: "c1", Group: "sql", Queue: qa, Offset: 4, At: 20}}, nil, -1},
		{"one violation per group and queue", nil, []CommitOp{commit(1, 20), commit(2, 30)}, []string{KindCommitPastUnprocessed + " a"}, -1},
		{"a commit of 0 passes nothing", nil, []CommitOp{commit(0, 20)}, nil, -1},
		{"a message whose copy a fault destroyed is not judged", []Delivery{deliver(0, 10)}, []CommitOp{commit(2, 20)}, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Commits(tc.commits, tc.delivered, drain, []string{"g"}, func(q QueueKey, offset int64) bool { return q == qa && offset == tc.destroyed })
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nfull: %v", diff, got)
			}
		})
	}
}
