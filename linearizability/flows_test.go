package linearizability

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	qretry = QueueKey{Broker: "broker-a", Topic: "%RETRY%cg", QueueID: 0}
)

func write(q QueueKey, id string, after int64, owed bool) BrokerWrite {
	return BrokerWrite{Queue: q, MsgID: id, Cause: "test", After: after, Owed: owed}
}

// Messages the broker appends by itself (delayed, committed, retried) enter the log model
// where pulls saw them, so acknowledged sends around them still line up; an append the
// history does not declare, or one that contradicts an acknowledgement, is not linearizable.
func TestBrokerWritesInTheLogModel(t *testing.T) {
	tests := []struct {
		name string
		h    History
		want Verdict
	}{
		{"a delayed message between two sends", withWrites(history(
			sendOK(0, "a", 0, 10, 0),
			pull(1, 1, 30, 40, 1, "d"),
			sendOK(0, "b", 50, 60, 2),
			pull(1, 0, 70, 80, 0, "a", 1, "d", 2, "b"),
		), write(qa, "d", 5, true)), VerdictOk},
		{"delivered twice (at least once)", withWrites(history(
			sendOK(0, "a", 0, 10, 0),
			sendOK(0, "b", 50, 60, 3),
			pull(1, 0, 70, 80, 0, "a", 1, "d", 2, "d", 3, "b"),
		), write(qa, "d", 5, true)), VerdictOk},
		// Appended before it was due: the window cannot open at the due time, so the model lets
		// it pass and CheckDrainInvariants reports it (KindTooEarly).
		{"due after a later send was acknowledged", withWrites(history(
			sendOK(0, "a", 0, 10, 0),
			sendOK(0, "b", 20, 30, 2),
			pull(1, 0, 40, 50, 0, "a", 1, "d", 2, "b"),
		), write(qa, "d", 35, true)), VerdictOk},
		{"due after a later pull had to see it", withWrites(history(
			pull(1, 0, 20, 30, 0, "x"),
			sendOK(0, "b", 40, 50, 1),
		), write(qa, "x", 60, true)), VerdictOk},
		{"seen late, its window closed by a later acknowledgement", withWrites(history(
			sendOK(0, "a", 0, 10, 0),
			sendOK(0, "b", 20, 30, 2),
			pull(1, 0, 40, 50, 0, "a", 1, "d", 2, "b"),
		), write(qa, "d", 5, true)), VerdictOk},
		{"an undeclared broker append leaves a gap", history(
			sendOK(0, "a", 0, 10, 0),
			sendOK(0, "b", 50, 60, 2),
			pull(1, 0, 70, 80, 0, "a", 1, "d", 2, "b"),
		), VerdictIllegal},
		{"a broker write where an acknowledged send is", withWrites(history(
			sendOK(0, "a", 0, 10, 0),
			pull(1, 0, 20, 30, 0, "d"),
		), write(qa, "d", 5, true)), VerdictIllegal},
		{"gone after it was seen", withWrites(history(
			pull(1, 0, 20, 30, 0, "d"),
			pull(1, 0, 40, 50),
		), write(qa, "d", 0, true)), VerdictIllegal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Check(tc.h, 5*time.Second, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s", res.Verdict, tc.want)
			}
		})
	}
}

func withWrites(h History, ws ...BrokerWrite) History {
	h.Writes = append(h.Writes, ws...)
	return h
}

func drainOf(q QueueKey, storeTimes map[int]int64, ids ...string) map[QueueKey][]PulledMsg {
	msgs := make([]PulledMsg, len(ids))
	for i, id := range ids {
		st, stamped := storeTimes[i]
		msgs[i] = PulledMsg{Offset: int64(i), MsgID: id, StoreTime: st, Stamped: stamped}
	}
	return map[QueueKey][]PulledMsg{q: msgs}
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
			got := CheckDrainInvariants(tc.h, tc.drain)
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nfull: %v", diff, got)
			}
		})
	}
}

func TestValidateBrokerWrites(t *testing.T) {
	for _, h := range []History{
		withWrites(history(), write(qa, "", 0, false)),
		withWrites(history(), write(qa, "d", 0, false), write(qa, "d", 0, false)),
		withWrites(history(sendOK(0, "d", 0, 10, 0)), write(qa, "d", 0, false)),
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("history with writes %+v validated", h.Writes)
		}
	}
}

func lock(client int, call, ret int64, granted bool) LockOp {
	return LockOp{Client: client, Group: "og", Queue: qa, Call: call, Return: ret, Outcome: OK, Granted: granted}
}

func unlock(client int, call, ret int64, outcome Outcome) LockOp {
	return LockOp{Client: client, Group: "og", Queue: qa, Call: call, Return: ret, Outcome: outcome, Unlock: true}
}

// Two clients never hold a queue's lock while the first one's lease surely runs; a release
// (an unlock that may have worked, a broker restart) or an expired lease lets the next in.
func TestCheckLocks(t *testing.T) {
	const lease = 100
	tests := []struct {
		name     string
		locks    []LockOp
		restarts []int64
		want     []string
	}{
		{"one holder renewing", []LockOp{lock(1, 0, 10, true), lock(1, 50, 60, true), lock(2, 70, 80, false)}, nil, nil},
		{"taken while held", []LockOp{lock(1, 0, 10, true), lock(2, 20, 30, true)}, nil, []string{KindLockOverlap}},
		{"taken after a renewal", []LockOp{lock(1, 0, 10, true), lock(1, 90, 95, true), lock(2, 120, 130, true)}, nil, []string{KindLockOverlap}},
		{"taken once the lease ran out", []LockOp{lock(1, 0, 10, true), lock(2, 100, 110, true)}, nil, nil},
		{"taken after an unlock", []LockOp{lock(1, 0, 10, true), unlock(1, 15, 18, OK), lock(2, 20, 30, true)}, nil, nil},
		{"taken after an unlock of unknown outcome", []LockOp{lock(1, 0, 10, true), unlock(1, 15, 0, Unknown), lock(2, 20, 30, true)}, nil, nil},
		{"a failed unlock releases nothing", []LockOp{lock(1, 0, 10, true), unlock(1, 15, 18, Failed), lock(2, 20, 30, true)}, nil, []string{KindLockOverlap}},
		{"taken after a broker restart", []LockOp{lock(1, 0, 10, true), lock(2, 20, 30, true)}, []int64{15}, nil},
		{"concurrent grants cannot be ordered", []LockOp{lock(1, 0, 25, true), lock(2, 20, 30, true)}, nil, nil},
		{"another group's lock is another lock", []LockOp{lock(1, 0, 10, true), {Client: 2, Group: "other", Queue: qa, Call: 20, Return: 30, Outcome: OK, Granted: true}}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckLocks(tc.locks, lease, tc.restarts)
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nfull: %v", diff, got)
			}
		})
	}
}

// An offset search for time T answers the first offset stored at or after T (by the
// millisecond) among the messages visible when it ran: everything before it older, everything
// from it on not, except messages not yet visible then.
func TestCheckSearches(t *testing.T) {
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
	if got := CheckSearches(&History{Searches: []SearchOp{search(7*ms, 0)}}, jumped); len(got) != 0 {
		t.Errorf("search over store times that go backwards: %v", got)
	}
	for _, tc := range tests {
		h := seen
		h.Searches = []SearchOp{tc.s}
		got := CheckSearches(&h, drain)
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
		if got := CheckSearches(&h, drain); (len(got) > 0) != tc.bad {
			t.Errorf("%s: violations %v, want bad=%v", tc.name, got, tc.bad)
		}
	}
}
