package linearizability

import (
	"testing"
	"time"
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
