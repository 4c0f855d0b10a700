package linearizability

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// withCrashes adds crashes (async flush) to h.
func withCrashes(h History, cs ...Crash) History {
	h.Crashes = append(h.Crashes, cs...)
	return h
}

// finalDrainOf is a final drain of qa holding ids at offsets 0, 1, 2, ...
func finalDrainOf(ids ...string) map[QueueKey][]PulledMsg {
	msgs := []PulledMsg{}
	for i, id := range ids {
		msgs = append(msgs, PulledMsg{Offset: int64(i), MsgID: id})
	}
	return map[QueueKey][]PulledMsg{qa: msgs}
}

// drainPull is the final drain as the pull that read it.
func drainPull(call int64, ids ...string) PullOp {
	var msgs []any
	for i, id := range ids {
		msgs = append(msgs, i, id)
	}
	return pull(9, 0, call, call+5, msgs...)
}

// What async flush promises: a crash may cut each queue back to what was appended by its loss
// window's start (LossFrom), and new messages then reuse the offsets; nothing appended before
// the window is lost, and the rest of the history keeps every other rule (sim/checks'
// TestDrainAcrossCrashes holds the drain invariants to the same histories).
func TestCrashesInTheLogModel(t *testing.T) {
	// A crash at 1000 whose loss window opens at 500: a and b were acknowledged before it,
	// c inside it.
	crash := Crash{At: 1000, LossFrom: 500}
	tests := []struct {
		name    string
		h       History
		drain   []string
		verdict Verdict
		lost    []string // accepted as lost unflushed
	}{
		{
			name: "the unsynced tail is cut and its offset reused",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 200, 210, 1),
				sendOK(0, "c", 700, 710, 2),
				pull(1, 0, 800, 810, 0, "a", 1, "b", 2, "c"),
				sendOK(0, "d", 1500, 1510, 2), // after the restart, at c's offset
				drainPull(2000, "a", "b", "d"),
			), crash),
			drain: []string{"a", "b", "d"}, verdict: VerdictOk,
			lost: []string{"c acknowledged"},
		},
		{
			name: "a crash may cut nothing",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 700, 710, 1),
				sendOK(0, "d", 1500, 1510, 2),
				drainPull(2000, "a", "c", "d"),
			), crash),
			drain: []string{"a", "c", "d"}, verdict: VerdictOk,
		},
		{
			name: "an acknowledgement older than the flush interval is lost",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 200, 210, 1), // synced by the window's start
				sendOK(0, "c", 700, 710, 2),
				sendOK(0, "d", 1500, 1510, 1), // b's offset reused
				drainPull(2000, "a", "d"),
			), crash),
			drain: []string{"a", "d"}, verdict: VerdictIllegal,
			lost: []string{"c acknowledged"},
		},
		{
			name: "without the crash the same loss is a violation",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 200, 210, 1),
				sendOK(0, "c", 700, 710, 2),
				sendOK(0, "d", 1500, 1510, 2),
				drainPull(2000, "a", "b", "d"),
			),
			drain: []string{"a", "b", "d"}, verdict: VerdictIllegal,
		},
		{
			name: "a message cut at a crash and seen again at another offset",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 700, 710, 1),
				pull(1, 1, 720, 730, 1, "c"),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d", "c"), // c again, at 2: it was written once
			), crash),
			// Offset 1 may well hold d now (c was cut); c at 2 is the duplicate.
			drain: []string{"a", "d", "c"}, verdict: VerdictIllegal,
		},
		{
			name: "a pulled message cut at the crash",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendUnknown(0, "u", 650),
				pull(1, 1, 700, 710, 1, "u"),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			), crash),
			drain: []string{"a", "d"}, verdict: VerdictOk,
			lost: []string{"u observed"},
		},
		{
			name: "a pulled message lost although it was in the log before the window",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendUnknown(0, "u", 150),
				pull(1, 1, 300, 310, 1, "u"),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			), crash),
			drain: []string{"a", "d"}, verdict: VerdictIllegal,
		},
		{
			name: "the log is longer after the crash than anything the window allows to vanish",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 700, 710, 1),
				pull(1, 2, 1500, 1510), // empty at 2: c survived
				drainPull(2000, "a", "c"),
			), crash),
			drain: []string{"a", "c"}, verdict: VerdictOk,
		},
		{
			name: "an empty read below what was synced",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 200, 210, 1),
				pull(1, 1, 1500, 1510), // nothing at 1 after the crash: b lost
				sendOK(0, "d", 1600, 1610, 1),
				drainPull(2000, "a", "d"),
			), crash),
			drain: []string{"a", "d"}, verdict: VerdictIllegal,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Check(tc.h, 5*time.Second, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", res.Verdict, tc.verdict)
			}
			drain := finalDrainOf(tc.drain...)
			var lost []string
			for _, l := range UnflushedLosses(tc.h, drain) {
				lost = append(lost, l.MsgID+" "+l.What)
			}
			if diff := cmp.Diff(tc.lost, lost); diff != "" {
				t.Errorf("lost unflushed (-want +got):\n%s", diff)
			}
		})
	}
}

// Broker writes across a crash: one cut and written again at the offset it had, and one nobody
// saw in a loss window, which only the crash that cut it can explain.
func TestCrashesAndBrokerWrites(t *testing.T) {
	crash := Crash{At: 1000, LossFrom: 500}
	tests := []struct {
		name    string
		h       History
		verdict Verdict
	}{
		{"a delayed message cut and delivered again at the same offset", withWrites(withCrashes(history(
			sendOK(0, "a", 100, 110, 0),
			pull(1, 1, 600, 610, 1, "w"),
			sendOK(0, "d", 1500, 1510, 2),
			pull(1, 1, 1520, 1530, 1, "w", 2, "d"),
		), crash), write(qa, "w", 550, true)), VerdictOk},
		{"an acknowledgement above an unseen write the crash cut", withWrites(withCrashes(history(
			sendOK(0, "a", 100, 110, 0),
			sendOK(0, "c", 700, 710, 2), // 1 held something nobody saw
			sendOK(0, "d", 1500, 1510, 1),
			drainPull(2000, "a", "d"),
		), crash), write(qa, "w", 550, false)), VerdictOk},
		{"an unseen write that the crash did not cut", withWrites(withCrashes(history(
			sendOK(0, "a", 100, 110, 0),
			sendOK(0, "c", 700, 710, 2),
			drainPull(2000, "a", "x", "c"), // x: 1 survived, so c did too, and 1 is no write
		), crash), write(qa, "w", 550, false)), VerdictIllegal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
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

func TestMayLose(t *testing.T) {
	h := History{Crashes: []Crash{{At: 1000, LossFrom: 500}, {At: 1200, LossFrom: 700}}}
	for _, tc := range []struct {
		call, ret int64
		want      bool
	}{
		{100, 400, false},  // synced before the first window opened
		{100, 600, true},   // may have been appended inside it
		{1100, 1150, true}, // the second window, clamped to after the first crash
		{900, 1001, true},
		{1300, 1400, false}, // after every crash
	} {
		if got := h.MayLose(tc.call, tc.ret); got != tc.want {
			t.Errorf("MayLose(%d, %d) = %v, want %v", tc.call, tc.ret, got, tc.want)
		}
	}
	if err := (&History{Crashes: []Crash{{At: 10, LossFrom: 20}}}).Validate(); err == nil {
		t.Error("a loss window after its crash validated")
	}
}

// The log model (sim/checks holds the drain invariants to the same histories): the loss window
// is the later of the promise's (LossFrom) and the disk's (Synced): what was appended before the latest sync the disk completed was flushed, and losing it is a violation
// even inside the promise's window; only the unflushed tail after it may go. With no sync, or
// an older one, the promise still bounds the window.
func TestCrashWindowNarrowedBySyncs(t *testing.T) {
	// The promise allows losing what was appended after 500; the disk synced what the log
	// held at 800.
	synced := Crash{At: 1000, LossFrom: 500, Synced: 800}
	tests := []struct {
		name    string
		crash   Crash
		h       History
		verdict Verdict
	}{
		{
			name: "a lost flushed message is a violation inside the promise's window",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 600, 610, 1), // after LossFrom, before the sync was asked for
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: synced, verdict: VerdictIllegal,
		},
		{
			name: "a lost unflushed tail is accepted",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 600, 610, 1),
				sendOK(0, "c", 850, 860, 2), // after the sync was asked for
				sendOK(0, "d", 1500, 1510, 2),
				drainPull(2000, "a", "b", "d"),
			),
			crash: synced, verdict: VerdictOk,
		},
		{
			name: "an append that may have come after the sync was asked for may be lost",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 790, 810, 1),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: synced, verdict: VerdictOk,
		},
		{
			name: "a lost flushed pulled message is a violation",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendUnknown(0, "u", 600),
				pull(1, 1, 700, 710, 1, "u"),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: synced, verdict: VerdictIllegal,
		},
		{
			name: "nothing unsynced at the crash: nothing may be lost",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 850, 860, 1),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: Crash{At: 1000, LossFrom: 500, Synced: 1000}, verdict: VerdictIllegal,
		},
		{
			name: "a sync older than the promise does not widen it",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 300, 310, 1), // after the sync, before LossFrom
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: Crash{At: 1000, LossFrom: 500, Synced: 200}, verdict: VerdictIllegal,
		},
		{
			name: "without a sync the promise bounds the window (a broker that syncs too seldom)",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 300, 310, 1),
				sendOK(0, "c", 600, 610, 2),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: Crash{At: 1000, LossFrom: 500}, verdict: VerdictIllegal,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := withCrashes(tc.h, tc.crash)
			res, err := Check(h, 5*time.Second, "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", res.Verdict, tc.verdict)
			}
		})
	}
	if err := (&History{Crashes: []Crash{{At: 10, LossFrom: 5, Synced: 20}}}).Validate(); err == nil {
		t.Error("a crash synced after it validated")
	}
}

// A consumer's offset may move back to a queue's new end after a crash cut the queue, and only
// then: the crash must come between the reads, and may not cut what the log surely held.
func TestMayCutBelow(t *testing.T) {
	h := withCrashes(history(
		sendOK(0, "a", 100, 110, 0),
		sendOK(0, "b", 200, 210, 1), // before the window opens: the crash cannot cut it
		sendOK(0, "c", 700, 710, 2), // inside it
		sendOK(0, "d", 800, 810, 3),
	), Crash{At: 1000, LossFrom: 500})
	for _, tc := range []struct {
		offset, from, to int64
		want             bool
	}{
		{2, 900, 1100, true},   // back to c's offset: c and d may be cut
		{3, 900, 1100, true},   // back to d's
		{1, 900, 1100, false},  // b was in the log before the window: no cut reaches it
		{2, 1001, 1100, false}, // no crash between the reads
		{2, 0, 999, false},
	} {
		if got := h.MayCutBelow(qa, tc.offset, tc.from, tc.to); got != tc.want {
			t.Errorf("MayCutBelow(%d, %d, %d) = %v, want %v", tc.offset, tc.from, tc.to, got, tc.want)
		}
	}
	if none := history(sendOK(0, "a", 100, 110, 0)); none.MayCutBelow(qa, 0, 0, 2000) {
		t.Error("a history without crashes may cut a queue")
	}
}

// A send acknowledged across a crash is placed by the store time a pull saw on it: stamped
// before the loss window opened, it was flushed, and losing it is a violation; stamped
// inside the window, it may be lost.
func TestStoreTimePlacesASendAcrossACrash(t *testing.T) {
	for _, tc := range []struct {
		stored  int64
		verdict Verdict
	}{
		{200, VerdictIllegal}, // before LossFrom: synced
		{700, VerdictOk},      // inside the window
	} {
		h := withCrashes(history(
			sendOK(0, "a", 50, 60, 0),
			sendOK(0, "b", 100, 1500, 1), // called before the crash, acknowledged after it
			pull(1, 1, 300, 800, 1, "b"),
			sendOK(0, "d", 1600, 1610, 1), // b's offset reused: b was lost
		), Crash{At: 1000, LossFrom: 500})
		h.Pulls[0].Msgs[0].StoreTime, h.Pulls[0].Msgs[0].Stamped = tc.stored, true
		h.StoreTimeSlack = 1
		res, err := Check(h, 5*time.Second, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != tc.verdict {
			t.Errorf("stored at %d: verdict %s, want %s", tc.stored, res.Verdict, tc.verdict)
		}
	}
}

// A store time proves an entry in the log from when it was appended: a pull after a crash that
// sees an entry stamped before the crash (inside its loss window or before it) shows the crash
// did not cut it (nor anything below it). Without the stamp, the same sightings prove nothing.
func TestStoreTimeProvesEntriesSurviveCrashes(t *testing.T) {
	stamped := func(stamp bool) History {
		h := withCrashes(history(
			sendOK(0, "a", 100, 110, 0),
			sendUnknown(0, "c", 650),
			pull(1, 1, 1500, 1510, 1, "c"), // after the crash: c, appended inside the window
			sendUnknown(0, "e", 1520),
			sendUnknown(0, "d", 1600),
			pull(1, 3, 3500, 3510, 3, "d"), // after the second crash: d, appended before its window
		), Crash{At: 1000, LossFrom: 500}, Crash{At: 3000, LossFrom: 2500})
		h.StoreTimeSlack = 1
		h.Pulls[0].Msgs[0].StoreTime, h.Pulls[0].Msgs[0].Stamped = 700, stamp
		h.Pulls[1].Msgs[0].StoreTime, h.Pulls[1].Msgs[0].Stamped = 1700, stamp
		return h
	}
	for _, stamp := range []bool{true, false} {
		h := stamped(stamp)
		if got := h.MayCutBelow(qa, 1, 900, 1100); got == stamp {
			t.Errorf("stamped %v: MayCutBelow(1) across the first crash = %v", stamp, got)
		}
		if got := h.MayCutBelow(qa, 3, 2900, 3100); got == stamp {
			t.Errorf("stamped %v: MayCutBelow(3) across the second crash = %v", stamp, got)
		}
	}
}
