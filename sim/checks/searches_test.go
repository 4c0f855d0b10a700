package checks

import (
	"testing"
	"time"

	. "github.com/sluicemq/sluice/linearizability"
)

// An offset search for time T answers the first offset stored at or after T (by the
// millisecond) among the messages visible when it ran: everything before it older, everything
// from it on not, except messages not yet visible then.
func TestSearches(t *testing.T) {
	ms := int64(time.Millisecond)
	drain := drainOf(qa, map[int]int64{0: 10 * ms, 1: 20 * ms, 2: 20*ms + 5, 3: 30 * ms}, "a", "b", "c", "d")
	// A pull at 35 ms showed the whole queue: every message was visible to the searches.
	seen := History{Pulls: []PullOp{{Queue: qa, Offset: 0, Call: 34 * ms, Return: 35 * ms, Outcome: OK,
		Msgs: drain[qa]}}}
	search := func(at, offset int64) SearchOp {
		return SearchOp{Queue: qa, Time: at, Call: 40 * ms, Return: 41 * ms, Outcome: OK, Offset: offset}
	}
	tests := []struct {
		name string
		s    SearchOp
		bad  bool
	}{
		{"before everything", search(5*ms, 0), false},
		{"exactly at a message", search(20*ms, 1), false},
		{"between two", search(25*ms, 3), false},
		{"after everything", search(35*ms, 4), false},
		{"one too far", search(20*ms, 2), true},
		{"one short", search(25*ms, 2), true},
		{"beyond the queue", search(35*ms, 7), true},
		{"unknown outcomes are not checked", SearchOp{Queue: qa, Time: 5 * ms, Call: 1, Outcome: Unknown, Offset: 3}, false},
	}
	// Store times that go backwards (a moved clock) split nothing: not checked.
	jumped := drainOf(qa, map[int]int64{0: 10 * ms, 1: 5 * ms}, "a", "b")
	if got := Searches(&History{Searches: []SearchOp{search(7*ms, 0)}}, jumped); len(got) != 0 {
		t.Errorf("search over store times that go backwards: %v", got)
	}
	for _, tc := range tests {
		h := seen
		h.Searches = []SearchOp{tc.s}
		got := Searches(&h, drain)
		if (len(got) > 0) != tc.bad {
			t.Errorf("%s: violations %v, want bad=%v", tc.name, got, tc.bad)
		}
	}

	// Messages stored before T that became visible only after the search (their fsync was
	// slow) may follow its answer, the end of what was visible: here only a and b had been
	// pulled, c and d were not known to be visible until 50 ms.
	early := History{Pulls: []PullOp{
		{Queue: qa, Offset: 0, Call: 34 * ms, Return: 35 * ms, Outcome: OK, Msgs: drain[qa][:2]},
		{Queue: qa, Offset: 2, Call: 49 * ms, Return: 50 * ms, Outcome: OK, Msgs: drain[qa][2:]}}}
	for _, tc := range []struct {
		name string
		s    SearchOp
		bad  bool
	}{
		{"the end of what was visible", search(35*ms, 2), false},
		{"short of what was visible", search(35*ms, 1), true},
		{"a newer message that was visible is skipped", search(15*ms, 2), true},
	} {
		h := early
		h.Searches = []SearchOp{tc.s}
		if got := Searches(&h, drain); (len(got) > 0) != tc.bad {
			t.Errorf("%s: violations %v, want bad=%v", tc.name, got, tc.bad)
		}
	}
}
