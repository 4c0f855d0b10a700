package checks

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	. "github.com/sluicemq/sluice/linearizability"
)

// What async flush promises, as the drain invariants hold it (linearizability's
// TestCrashesInTheLogModel holds the log model to the same histories): a crash may cut each
// queue back to what was appended by its loss window's start (LossFrom), and new messages then
// reuse the offsets; nothing appended before the window is lost, and the rest of the history
// keeps every other rule.
func TestDrainAcrossCrashes(t *testing.T) {
	// A crash at 1000 whose loss window opens at 500: a and b were acknowledged before it,
	// c inside it.
	crash := Crash{At: 1000, LossFrom: 500}
	tests := []struct {
		name  string
		h     History
		drain []string
		want  []string // invariant violations
		lost  []string // accepted as lost unflushed
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
			drain: []string{"a", "b", "d"},
			lost:  []string{"c acknowledged"},
		},
		{
			name: "a crash may cut nothing",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 700, 710, 1),
				sendOK(0, "d", 1500, 1510, 2),
				drainPull(2000, "a", "c", "d"),
			), crash),
			drain: []string{"a", "c", "d"},
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
			drain: []string{"a", "d"},
			want:  []string{KindLostAcked + " b", KindOffsetConflict},
			lost:  []string{"c acknowledged"},
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
			drain: []string{"a", "b", "d"},
			want:  []string{KindLostAcked + " c", KindOffsetConflict},
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
			drain: []string{"a", "d", "c"},
			want:  []string{KindTwoOffsets + " c"},
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
			drain: []string{"a", "d"},
			lost:  []string{"u observed"},
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
			drain: []string{"a", "d"},
			want:  []string{KindLostObserved + " u", KindOffsetConflict},
		},
		{
			name: "the log is longer after the crash than anything the window allows to vanish",
			h: withCrashes(history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 700, 710, 1),
				pull(1, 2, 1500, 1510), // empty at 2: c survived
				drainPull(2000, "a", "c"),
			), crash),
			drain: []string{"a", "c"},
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
			drain: []string{"a", "d"},
			want:  []string{KindLostAcked + " b", KindOffsetConflict},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			drain := finalDrainOf(tc.drain...)
			if diff := cmp.Diff(tc.want, kinds(Drain(tc.h, drain))); diff != "" {
				t.Errorf("invariant violations (-want +got):\n%s", diff)
			}
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

// As the drain invariants hold it (linearizability's TestCrashWindowNarrowedBySyncs holds the
// log model to the same histories): the loss window is the later of the promise's (LossFrom) and the disk's (Synced): what was
// appended before the latest sync the disk completed was flushed, and losing it is a violation
// even inside the promise's window; only the unflushed tail after it may go. With no sync, or
// an older one, the promise still bounds the window.
func TestDrainWindowNarrowedBySyncs(t *testing.T) {
	// The promise allows losing what was appended after 500; the disk synced what the log
	// held at 800.
	synced := Crash{At: 1000, LossFrom: 500, Synced: 800}
	tests := []struct {
		name  string
		crash Crash
		h     History
		drain []string
		want  []string // invariant violations
		lost  []string // accepted as lost unflushed
	}{
		{
			name: "a lost flushed message is a violation inside the promise's window",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 600, 610, 1), // after LossFrom, before the sync was asked for
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: synced, drain: []string{"a", "d"},
			want: []string{KindLostAcked + " b", KindOffsetConflict},
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
			crash: synced, drain: []string{"a", "b", "d"},
			lost: []string{"c acknowledged"},
		},
		{
			name: "an append that may have come after the sync was asked for may be lost",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 790, 810, 1),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: synced, drain: []string{"a", "d"},
			lost: []string{"c acknowledged"},
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
			crash: synced, drain: []string{"a", "d"},
			want: []string{KindLostObserved + " u", KindOffsetConflict},
		},
		{
			name: "nothing unsynced at the crash: nothing may be lost",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "c", 850, 860, 1),
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: Crash{At: 1000, LossFrom: 500, Synced: 1000}, drain: []string{"a", "d"},
			want: []string{KindLostAcked + " c", KindOffsetConflict},
		},
		{
			name: "a sync older than the promise does not widen it",
			h: history(
				sendOK(0, "a", 100, 110, 0),
				sendOK(0, "b", 300, 310, 1), // after the sync, before LossFrom
				sendOK(0, "d", 1500, 1510, 1),
				drainPull(2000, "a", "d"),
			),
			crash: Crash{At: 1000, LossFrom: 500, Synced: 200}, drain: []string{"a", "d"},
			want: []string{KindLostAcked + " b", KindOffsetConflict},
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
			crash: Crash{At: 1000, LossFrom: 500}, drain: []string{"a", "d"},
			want: []string{KindLostAcked + " b", KindOffsetConflict},
			lost: []string{"c acknowledged"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := withCrashes(tc.h, tc.crash)
			drain := finalDrainOf(tc.drain...)
			if diff := cmp.Diff(tc.want, kinds(Drain(h, drain))); diff != "" {
				t.Errorf("invariant violations (-want +got):\n%s", diff)
			}
			var lost []string
			for _, l := range UnflushedLosses(h, drain) {
				lost = append(lost, l.MsgID+" "+l.What)
			}
			if diff := cmp.Diff(tc.lost, lost); diff != "" {
				t.Errorf("lost unflushed (-want +got):\n%s", diff)
			}
		})
	}
}
