package checks

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	. "github.com/sluicemq/sluice/linearizability"
)

func TestDrainIDs(t *testing.T) {
	tests := []struct {
		name  string
		h     History
		drain map[QueueKey][]string
		want  []string
	}{
		{
			name:  "clean run",
			h:     history(sendOK(0, "a", 0, 10, 0), sendOK(0, "b", 20, 30, 1), pull(1, 0, 40, 50, 0, "a", 1, "b")),
			drain: map[QueueKey][]string{qa: {"a", "b"}},
		},
		{
			name:  "lost acknowledged message",
			h:     history(sendOK(0, "a", 0, 10, 0), sendOK(0, "b", 20, 30, 1)),
			drain: map[QueueKey][]string{qa: {"a"}},
			want:  []string{KindLostAcked + " b"},
		},
		{
			name: "queue missing from the drain counts as empty",
			h:    history(sendOK(0, "a", 0, 10, 0)),
			want: []string{KindLostAcked + " a"},
		},
		{
			name:  "unknown send that took effect",
			h:     history(sendUnknown(0, "u", 0), sendOK(0, "a", 10, 20, 1)),
			drain: map[QueueKey][]string{qa: {"u", "a"}},
		},
		{
			name:  "unknown send that did not",
			h:     history(sendUnknown(0, "u", 0), sendOK(0, "a", 10, 20, 0)),
			drain: map[QueueKey][]string{qa: {"a"}},
		},
		{
			name:  "unknown send seen by a pull, then lost",
			h:     history(sendUnknown(0, "u", 0), pull(1, 0, 10, 20, 0, "u")),
			drain: map[QueueKey][]string{qa: {}},
			want:  []string{KindLostObserved + " u"},
		},
		{
			name:  "failed send drained",
			h:     history(sendFailed(0, "f", 0, 10), sendOK(0, "a", 20, 30, 1)),
			drain: map[QueueKey][]string{qa: {"f", "a"}},
			want:  []string{KindFailedObserved + " f"},
		},
		{
			name:  "failed send pulled",
			h:     history(sendFailed(0, "f", 0, 10), pull(1, 0, 20, 30, 0, "f")),
			drain: map[QueueKey][]string{qa: {}},
			want:  []string{KindFailedObserved + " f", KindLostObserved + " f"},
		},
		{
			name:  "a retry with the same id that failed once and then succeeded is fine",
			h:     history(sendFailed(0, "r", 0, 10), sendOK(0, "r", 20, 30, 0)),
			drain: map[QueueKey][]string{qa: {"r"}},
		},
		{
			name: "pull at offset 3 sees the message acknowledged at offset 2",
			h: history(sendOK(0, "m0", 0, 10, 0), sendOK(0, "m1", 20, 30, 1), sendOK(0, "m2", 40, 50, 2),
				pull(1, 3, 60, 70, 3, "m2")),
			drain: map[QueueKey][]string{qa: {"m0", "m1", "m2"}},
			want:  []string{KindTwoOffsets + " m2"},
		},
		{
			name:  "two acknowledged sends at one offset",
			h:     history(sendOK(0, "a", 0, 10, 0), sendOK(1, "b", 5, 15, 0)),
			drain: map[QueueKey][]string{qa: {"a", "b"}},
			want:  []string{KindTwoOffsets + " b", KindOffsetConflict},
		},
		{
			name:  "drain holds a message twice",
			h:     history(sendOK(0, "a", 0, 10, 0)),
			drain: map[QueueKey][]string{qa: {"a", "a"}},
			want:  []string{KindTwoOffsets + " a"},
		},
		{
			name:  "message in the wrong queue",
			h:     history(sendOK(0, "a", 0, 10, 0)),
			drain: map[QueueKey][]string{qa: {"a"}, qb: {"a"}},
			want:  []string{KindTwoOffsets + " a", KindWrongQueue + " a"},
		},
		{
			name:  "phantom message",
			h:     history(sendOK(0, "a", 0, 10, 0)),
			drain: map[QueueKey][]string{qa: {"a", "ghost"}},
			want:  []string{KindPhantom + " ghost"},
		},
		{
			name:  "hole in the drain",
			h:     history(sendOK(0, "a", 0, 10, 0), sendUnknown(0, "u", 5), sendOK(0, "b", 20, 30, 2)),
			drain: map[QueueKey][]string{qa: {"a", "", "b"}},
			want:  []string{KindDrainOrder + " b"},
		},
		{
			name:  "pulls that did not return OK are not sightings",
			h:     history(sendOK(0, "a", 0, 10, 0), PullOp{Queue: qa, Outcome: Failed, Call: 1, Return: 2, Msgs: []PulledMsg{{Offset: 5, MsgID: "zz"}}}),
			drain: map[QueueKey][]string{qa: {"a"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DrainIDs(tc.h, tc.drain)
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nfull: %v", diff, got)
			}
			for _, v := range got {
				if v.Message == "" {
					t.Errorf("violation without a message: %+v", v)
				}
			}
		})
	}
}

func TestDrainOrder(t *testing.T) {
	h := history(sendOK(0, "a", 0, 10, 0), sendOK(0, "b", 20, 30, 1))
	got := Drain(h, map[QueueKey][]PulledMsg{qa: {{Offset: 1, MsgID: "b"}, {Offset: 0, MsgID: "a"}}})
	if diff := cmp.Diff([]string{KindDrainOrder + " a", KindDrainOrder + " b"}, kinds(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDrainDeterministic: many violations over several queues come out in the same,
// sorted order every time, whatever the map iteration order.
func TestDrainDeterministic(t *testing.T) {
	qc := QueueKey{Broker: "broker-b", Topic: "T", QueueID: 3}
	h := history(
		onQueue(qc, sendOK(0, "c1", 0, 10, 0), sendOK(0, "c2", 0, 10, 0), sendFailed(1, "cf", 0, 1)),
		onQueue(qb, sendOK(0, "b1", 0, 10, 0), pull(1, 0, 20, 30, 0, "bx")),
		onQueue(qa, sendOK(0, "a1", 0, 10, 0), sendOK(0, "a2", 20, 30, 1)),
	)
	drain := map[QueueKey][]string{qa: {"a2"}, qb: {"b1", "cf"}, qc: {"c2"}}
	first := DrainIDs(h, drain)
	if len(first) < 6 {
		t.Fatalf("expected many violations, got %v", first)
	}
	if !slices.IsSortedFunc(first, func(a, b Violation) int { return a.Queue.Compare(b.Queue) }) {
		t.Errorf("not sorted by queue: %v", first)
	}
	for range 20 {
		if again := DrainIDs(h, drain); !cmp.Equal(first, again) {
			t.Fatalf("order changed between runs:\n%v\n%v", first, again)
		}
	}
}

// Broker writes are owed once their cause was acknowledged, never seen before their cause
// allows, first stored by their deadline, and delivered only to their own queue (duplicates
// there are allowed). Withheld messages (rolled back) are never delivered.
func TestBrokerWriteInvariants(t *testing.T) {
	ms := int64(time.Millisecond)
	late := write(qa, "d", 0, true)
	late.Deadline = 100 * ms
	tests := []struct {
		name  string
		h     History
		drain map[QueueKey][]PulledMsg
		want  []string
	}{
		{"owed and drained", withWrites(history(), write(qa, "d", 0, true)), drainOf(qa, nil, "d"), nil},
		{"duplicates in its own queue", withWrites(history(), write(qa, "d", 0, true)), drainOf(qa, nil, "d", "d"), nil},
		{"owed and lost", withWrites(history(), write(qa, "d", 0, true)), drainOf(qa, nil), []string{KindLostWrite + " d"}},
		{"not owed and absent", withWrites(history(), write(qa, "d", 0, false)), drainOf(qa, nil), nil},
		{"pulled before its due time", withWrites(history(pull(1, 0, 10, 20, 0, "d")), write(qa, "d", 50, true)),
			drainOf(qa, nil, "d"), []string{KindTooEarly + " d"}},
		{"pulled after its due time", withWrites(history(pull(1, 0, 40, 60, 0, "d")), write(qa, "d", 50, true)),
			drainOf(qa, nil, "d"), nil},
		{"in the log before its due time, as a later acknowledgement shows", withWrites(history(sendOK(0, "b", 10, 20, 1)),
			write(qa, "d", 50, true)), drainOf(qa, nil, "d", "b"), []string{KindTooEarly + " d"}},
		{"stored after its deadline", withWrites(history(), late), drainOf(qa, map[int]int64{0: 101 * ms}, "d"),
			[]string{KindTooLate + " d"}},
		// A broker clock set back before virtual time 0 stamps negative store times; the
		// earliest copy still counts (not a later one that happens to be positive).
		{"stored by its deadline on a clock set back, its duplicate later", withWrites(history(), late),
			drainOf(qa, map[int]int64{0: -2000 * ms, 1: 900 * ms}, "d", "d"), nil},
		{"stored by its deadline, its duplicate later", withWrites(history(), late), drainOf(qa, map[int]int64{0: 100 * ms, 1: 900 * ms}, "d", "d"), nil},
		{"written to another queue", withWrites(history(), write(qretry, "d", 0, false)), drainOf(qa, nil, "d"),
			[]string{KindWrongQueue + " d"}},
		{"withheld and delivered", History{Withheld: []Withheld{{MsgID: "t", Why: "rolled back"}}}, drainOf(qa, nil, "t"),
			[]string{KindWithheldDelivered + " t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Drain(tc.h, tc.drain)
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nfull: %v", diff, got)
			}
		})
	}
}
