package diskfile

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sluicemq/sluice/broker/node"
)

func pendingPayload(i uint64) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "p%06d;", i), 1+int(i%13))
}

func openPendingLog(t *testing.T, dir string, segmentBytes, maxPending int) (*Disk, *Log) {
	t.Helper()
	d, err := Open(dir, Options{SegmentBytes: segmentBytes, MaxPendingBytes: maxPending, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	nl, err := d.OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	return d, nl.(*Log)
}

func walLast(t *testing.T, l *Log) uint64 {
	t.Helper()
	i, err := l.w.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestReadPendingEntries: appended entries are readable before any write to the wal, from
// the wal after a Sync, and a returned view is never overwritten by later appends.
func TestReadPendingEntries(t *testing.T) {
	_, l := openPendingLog(t, t.TempDir(), 700, 0)
	defer l.Close()
	var views [][]byte
	for i := uint64(1); i <= 50; i++ {
		if got, err := l.Append(pendingPayload(i)); err != nil || got != i {
			t.Fatalf("Append = %d, %v; want %d", got, err, i)
		}
		v, err := l.Read(i)
		if err != nil || !bytes.Equal(v, pendingPayload(i)) {
			t.Fatalf("Read(%d) of a pending entry = %q, %v", i, v, err)
		}
		views = append(views, v)
	}
	if w := walLast(t, l); w != 0 {
		t.Fatalf("the wal has entries up to %d before any Sync; Append must not write", w)
	}
	if l.LastIndex() != 50 {
		t.Fatalf("LastIndex = %d, want 50 (pending entries count)", l.LastIndex())
	}
	if _, err := l.Read(51); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("Read(51) = %v, want ErrNotFound", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if w := walLast(t, l); w != 50 {
		t.Fatalf("wal last index %d after Sync, want 50", w)
	}
	checkMirror(t, l)
	for round := uint64(0); round < 3; round++ { // reuse of batch buffers
		for i := 51 + round*50; i <= 100+round*50; i++ {
			if _, err := l.Append(pendingPayload(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(1); i <= 200; i++ {
		if v, err := l.Read(i); err != nil || !bytes.Equal(v, pendingPayload(i)) {
			t.Fatalf("Read(%d) = %q, %v", i, v, err)
		}
	}
	for i, v := range views {
		if !bytes.Equal(v, pendingPayload(uint64(i+1))) {
			t.Fatalf("view of entry %d returned while pending was overwritten: %q", i+1, v)
		}
	}
	checkMirror(t, l)
}

// TestBackPressure: past MaxPendingBytes Append writes the pending batch itself (no fsync).
func TestBackPressure(t *testing.T) {
	_, l := openPendingLog(t, t.TempDir(), 2000, 1000)
	defer l.Close()
	for i := uint64(1); i <= 100; i++ {
		if _, err := l.Append(pendingPayload(i)); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		pend := l.pending.bytes()
		l.mu.Unlock()
		if pend > 1000+crcBytes+len(pendingPayload(i)) {
			t.Fatalf("after Append %d, %d bytes pending; limit 1000", i, pend)
		}
	}
	if w := walLast(t, l); w < 80 {
		t.Fatalf("wal has entries up to %d of 100; back-pressure should have written most", w)
	}
	checkMirror(t, l)
	for i := uint64(1); i <= 100; i++ {
		if v, err := l.Read(i); err != nil || !bytes.Equal(v, pendingPayload(i)) {
			t.Fatalf("Read(%d) = %q, %v", i, v, err)
		}
	}
}

// TestTruncateWithPending: truncations with entries still pending, in both directions, on
// either side of the pending batch.
func TestTruncateWithPending(t *testing.T) {
	for _, tc := range []struct {
		name        string
		back, front uint64 // 0: none
		first, last uint64
	}{
		{"BackIntoPending", 45, 0, 1, 45},
		{"BackIntoWritten", 20, 0, 1, 20},
		{"BackEmpties", 0, 0, 1, 0}, // handled below: TruncateBack(0)
		{"FrontIntoPending", 0, 45, 45, 60},
		{"FrontIntoWritten", 0, 20, 20, 60},
		{"FrontEmpties", 0, 61, 61, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d, l := openPendingLog(t, dir, 700, 0)
			for i := uint64(1); i <= 60; i++ {
				if _, err := l.Append(pendingPayload(i)); err != nil {
					t.Fatal(err)
				}
				if i == 30 {
					if err := l.Sync(); err != nil { // 1..30 written, 31..60 pending
						t.Fatal(err)
					}
				}
			}
			switch {
			case tc.front != 0:
				if err := l.TruncateFront(tc.front); err != nil {
					t.Fatal(err)
				}
			default:
				if err := l.TruncateBack(tc.back); err != nil {
					t.Fatal(err)
				}
			}
			check := func(l node.Log) {
				t.Helper()
				if l.FirstIndex() != tc.first || l.LastIndex() != tc.last {
					t.Fatalf("log has %d..%d, want %d..%d", l.FirstIndex(), l.LastIndex(), tc.first, tc.last)
				}
				for i := tc.first; i <= tc.last; i++ {
					if v, err := l.Read(i); err != nil || !bytes.Equal(v, pendingPayload(i)) {
						t.Fatalf("Read(%d) = %q, %v", i, v, err)
					}
				}
			}
			check(l)
			checkMirror(t, l)
			// Append after the truncation, pending again, then close and reopen.
			next := tc.last + 1
			if i, err := l.Append(pendingPayload(next)); err != nil || i != next {
				t.Fatalf("Append after truncation = %d, %v; want %d", i, err, next)
			}
			tc.last = next
			check(l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			nl, err := d.OpenLog("cl")
			if err != nil {
				t.Fatal(err)
			}
			defer nl.Close()
			check(nl)
		})
	}
}

// TestConcurrentAppendSyncRead: the event loop appends and reads (entries pending, being
// written and in the wal) while the disk worker syncs; run with -race.
func TestConcurrentAppendSyncRead(t *testing.T) {
	_, l := openPendingLog(t, t.TempDir(), 8192, 16384)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var syncErr error
	var syncs int
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := l.Sync(); err != nil {
				syncErr = err
				return
			}
			syncs++
		}
	})
	var held [][]byte // views kept by the "node", which must never change
	for i := uint64(1); i <= 5000; i++ {
		if got, err := l.Append(pendingPayload(i)); err != nil || got != i {
			t.Fatalf("Append = %d, %v; want %d", got, err, i)
		}
		for _, j := range []uint64{i, i - i%7, i / 2, i - 1} {
			if j < l.FirstIndex() || j > l.LastIndex() {
				continue
			}
			v, err := l.Read(j)
			if err != nil || !bytes.Equal(v, pendingPayload(j)) {
				t.Fatalf("Read(%d) after appending %d = %q, %v", j, i, v, err)
			}
			if i%97 == 0 {
				held = append(held, v)
			}
		}
		if i%1000 == 0 {
			if err := l.TruncateBack(i - 10); err != nil {
				t.Fatal(err)
			}
			for j := i - 9; j <= i; j++ { // re-append the same entries
				if _, err := l.Append(pendingPayload(j)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.TruncateFront(l.FirstIndex() + 100); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if syncErr != nil {
		t.Fatalf("concurrent Sync: %v", syncErr)
	}
	if syncs == 0 {
		t.Fatal("no Sync ran")
	}
	for _, v := range held {
		want := pendingPayload(0)
		var idx uint64
		if _, err := fmt.Sscanf(string(v), "p%06d;", &idx); err == nil {
			want = pendingPayload(idx)
		}
		if !bytes.Equal(v, want) {
			t.Fatalf("a view returned by Read changed: %q", v)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkMirror(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCrashLosesOnlyUnsynced simulates a process crash: entries appended, some synced, more
// appended (some written by back-pressure, the rest only in memory), then the Log is dropped
// without Close. Reopening finds every synced entry and, after them, a prefix of the rest.
func TestCrashLosesOnlyUnsynced(t *testing.T) {
	for _, maxPending := range []int{0, 3000} {
		t.Run(fmt.Sprintf("maxPending%d", maxPending), func(t *testing.T) {
			dir := t.TempDir()
			_, l := openPendingLog(t, dir, 4000, maxPending)
			const synced, total = 120, 300
			for i := uint64(1); i <= total; i++ {
				if _, err := l.Append(pendingPayload(i)); err != nil {
					t.Fatal(err)
				}
				if i == synced {
					if err := l.Sync(); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Crash: no Close, no flush; the dropped Log's descriptors stay open as a killed
			// process's pages stay in the page cache.
			_, l2 := openPendingLog(t, dir, 4000, maxPending)
			defer l2.Close()
			last := l2.LastIndex()
			if l2.FirstIndex() != 1 || last < synced || last > total {
				t.Fatalf("after the crash the log has %d..%d; want 1..n with %d <= n <= %d",
					l2.FirstIndex(), last, synced, total)
			}
			if maxPending == 0 && last != synced {
				t.Fatalf("after the crash the log ends at %d; nothing after the Sync was written, want %d", last, synced)
			}
			for i := uint64(1); i <= last; i++ {
				if v, err := l2.Read(i); err != nil || !bytes.Equal(v, pendingPayload(i)) {
					t.Fatalf("Read(%d) after the crash = %q, %v", i, v, err)
				}
			}
			// The log carries on from where it ends.
			if i, err := l2.Append(pendingPayload(last + 1)); err != nil || i != last+1 {
				t.Fatalf("Append after the crash = %d, %v; want %d", i, err, last+1)
			}
		})
	}
}

// TestCloseWritesPending: Close writes the pending entries and makes them durable.
func TestCloseWritesPending(t *testing.T) {
	dir := t.TempDir()
	d, l := openPendingLog(t, dir, 700, 0)
	for i := uint64(1); i <= 40; i++ {
		if _, err := l.Append(pendingPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	nl, err := d.OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	if nl.LastIndex() != 40 {
		t.Fatalf("after Close and reopen the log ends at %d, want 40", nl.LastIndex())
	}
	checkMirror(t, nl.(*Log))
}
