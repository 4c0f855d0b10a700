package simdisk

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/node"
)

func appendN(t *testing.T, l node.Log, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		idx, err := l.Append([]byte(fmt.Sprintf("e%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if idx != uint64(i) {
			t.Fatalf("append %d got index %d", i, idx)
		}
	}
}

func TestLogBasics(t *testing.T) {
	d := New()
	l, err := d.OpenLog("cq/t/0")
	if err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 1 || l.LastIndex() != 0 {
		t.Fatalf("empty log: first %d last %d", l.FirstIndex(), l.LastIndex())
	}
	appendN(t, l, 1, 5)
	if b, err := l.Read(3); err != nil || string(b) != "e3" {
		t.Fatalf("read 3: %q %v", b, err)
	}
	if _, err := l.Read(6); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("read past end: %v", err)
	}
	if err := l.TruncateBack(3); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 4, 6)
	if err := l.TruncateFront(3); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 3 || l.LastIndex() != 6 {
		t.Fatalf("after truncations: %d..%d", l.FirstIndex(), l.LastIndex())
	}
	if _, err := l.Read(2); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("read before front: %v", err)
	}
	if err := l.TruncateBack(1); err == nil {
		t.Fatal("truncate back below first-1 accepted")
	}
	if err := l.TruncateBack(9); err != nil || l.LastIndex() != 6 {
		t.Fatalf("truncate back past the end: %v, last %d", err, l.LastIndex())
	}
	if err := l.TruncateFront(1); err != nil || l.FirstIndex() != 3 {
		t.Fatalf("truncate front before the start: %v, first %d", err, l.FirstIndex())
	}
	if err := l.TruncateFront(8); err == nil {
		t.Fatal("truncate front beyond last+1 accepted")
	}
	if _, err := d.OpenLog("cq/t/0"); err == nil {
		t.Fatal("second open accepted")
	}
	if err := d.RemoveLog("cq/t/0"); err == nil {
		t.Fatal("removed an open log")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append on closed handle: %v", err)
	}
	l, _ = d.OpenLog("cq/t/0")
	if l.FirstIndex() != 3 || l.LastIndex() != 6 {
		t.Fatalf("reopen: %d..%d", l.FirstIndex(), l.LastIndex())
	}
	l.Close()
	for _, n := range []string{"commitlog", "cq/t/1", "cq/a/0"} {
		l, _ := d.OpenLog(n)
		l.Close()
	}
	got, _ := d.ListLogs("cq/")
	if want := []string{"cq/a/0", "cq/t/0", "cq/t/1"}; !slices.Equal(got, want) {
		t.Fatalf("ListLogs = %v, want %v", got, want)
	}
	if err := d.RemoveLog("cq/t/0"); err != nil {
		t.Fatal(err)
	}
	got, _ = d.ListLogs("")
	if want := []string{"commitlog", "cq/a/0", "cq/t/1"}; !slices.Equal(got, want) {
		t.Fatalf("ListLogs = %v, want %v", got, want)
	}
}

func TestFiles(t *testing.T) {
	d := New()
	if _, err := d.ReadFile("topics.json"); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	d.WriteFile("topics.json", []byte("a"))
	d.WriteFile("topics.json", []byte("b"))
	d.Crash(rand.New(rand.NewPCG(1, 2)))
	if b, err := d.ReadFile("topics.json"); err != nil || string(b) != "b" {
		t.Fatalf("file after crash: %q %v", b, err)
	}
	if err := d.WriteFile("../x", nil); err == nil {
		t.Fatal("accepted a name with ..")
	}
}

// TestCrashKeepsSyncedAndAPrefix crashes many times and checks that every synced entry survives,
// the survivors are a prefix of what was appended, and old handles are dead.
func TestCrashKeepsSyncedAndAPrefix(t *testing.T) {
	outcomes := map[string]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		d := New()
		l, _ := d.OpenLog("commitlog")
		appendN(t, l, 1, 4)
		l.Sync()
		appendN(t, l, 5, 8)
		d.SyncLog("commitlog", 6)
		appendN(t, l, 9, 12)
		d.Crash(rand.New(rand.NewPCG(seed, 7)))
		if _, err := l.Read(1); !errors.Is(err, ErrClosed) {
			t.Fatalf("stale handle read: %v", err)
		}
		l, err := d.OpenLog("commitlog")
		if err != nil {
			t.Fatal(err)
		}
		last := l.LastIndex()
		if last < 6 || last > 12 {
			t.Fatalf("seed %d: last index %d after crash", seed, last)
		}
		for i := uint64(1); i <= last; i++ {
			b, err := l.Read(i)
			if err != nil || string(b) != fmt.Sprintf("e%d", i) {
				t.Fatalf("seed %d: entry %d = %q %v", seed, i, b, err)
			}
		}
		switch st := d.Stats(); {
		case last == 6:
			outcomes["all lost"] = true
		case last == 12:
			outcomes["all kept"] = true
		case st.TornRepaired > 0:
			outcomes["torn"] = true
		default:
			outcomes["prefix"] = true
		}
		// What survived is durable now: a second crash loses nothing.
		appendN(t, l, int(last)+1, int(last)+1)
		l.TruncateBack(last)
		d.Crash(rand.New(rand.NewPCG(seed, 8)))
		l, _ = d.OpenLog("commitlog")
		if l.LastIndex() != last {
			t.Fatalf("seed %d: second crash changed last index %d -> %d", seed, last, l.LastIndex())
		}
	}
	for _, o := range []string{"all lost", "all kept", "torn", "prefix"} {
		if !outcomes[o] {
			t.Errorf("crash outcome %q never happened in 200 seeds", o)
		}
	}
}

func TestSyncToOnStaleHandle(t *testing.T) {
	d := New()
	l, _ := d.OpenLog("commitlog")
	appendN(t, l, 1, 3)
	d.Crash(rand.New(rand.NewPCG(3, 3)))
	if err := l.(*Log).SyncTo(3); !errors.Is(err, ErrClosed) {
		t.Fatalf("SyncTo on stale handle: %v", err)
	}
}

func TestFlipByte(t *testing.T) {
	d := New()
	l, _ := d.OpenLog("commitlog")
	appendN(t, l, 1, 3)
	if err := d.FlipByte("commitlog", 2); err != nil {
		t.Fatal(err)
	}
	if b, err := l.Read(2); !errors.Is(err, node.ErrCorrupt) || b != nil {
		t.Fatalf("read flipped entry: %q %v", b, err)
	}
	if b, err := l.Read(3); err != nil || string(b) != "e3" {
		t.Fatalf("neighbour of flipped entry: %q %v", b, err)
	}
	// A flipped last entry is not torn: reopening keeps it, corrupt.
	d.FlipByte("commitlog", 3)
	l.Close()
	l, _ = d.OpenLog("commitlog")
	if l.LastIndex() != 3 {
		t.Fatalf("flipped tail dropped: last %d", l.LastIndex())
	}
	for _, i := range []uint64{2, 3} {
		if _, err := l.Read(i); !errors.Is(err, node.ErrCorrupt) {
			t.Fatalf("flipped entry %d served after reopen: %v", i, err)
		}
	}
}

// TestCrashDeterministic: the same seed gives the same survivors.
func TestCrashDeterministic(t *testing.T) {
	run := func() []uint64 {
		d := New()
		var out []uint64
		for i := 0; i < 10; i++ {
			l, _ := d.OpenLog(fmt.Sprintf("cq/t/%d", i))
			appendN(t, l, 1, 10)
		}
		d.Crash(rand.New(rand.NewPCG(42, 42)))
		names, _ := d.ListLogs("")
		for _, n := range names {
			l, _ := d.OpenLog(n)
			out = append(out, l.LastIndex())
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different survivors: %v vs %v", a, b)
	}
}

func TestInjectedErrors(t *testing.T) {
	d := New()
	l, _ := d.OpenLog("commitlog")
	appendN(t, l, 1, 2)
	d.SetSyncError(node.ErrIO)
	if err := l.Sync(); !errors.Is(err, node.ErrIO) {
		t.Fatalf("Sync with a sync fault: %v", err)
	}
	if err := d.SyncLog("commitlog", 2); !errors.Is(err, node.ErrIO) {
		t.Fatalf("SyncLog with a sync fault: %v", err)
	}
	if got, _ := d.Durable("commitlog"); got != 0 {
		t.Fatalf("failed sync made %d entries durable", got)
	}
	d.SetSyncError(nil)
	d.SetWriteError(node.ErrNoSpace)
	if _, err := l.Append([]byte("x")); !errors.Is(err, node.ErrNoSpace) {
		t.Fatalf("Append with a write fault: %v", err)
	}
	if err := d.WriteFile("f", nil); !errors.Is(err, node.ErrNoSpace) {
		t.Fatalf("WriteFile with a write fault: %v", err)
	}
	if l.LastIndex() != 2 {
		t.Fatalf("failed append changed the log: last %d", l.LastIndex())
	}
	d.SetWriteError(nil)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Durable("commitlog"); got != 2 {
		t.Fatalf("durable %d after sync, want 2", got)
	}
}

// Span reports a log's bounds whether or not it is open, and follows truncation.
func TestSpan(t *testing.T) {
	d := New()
	if _, _, ok := d.Span("commitlog"); ok {
		t.Fatal("span of a missing log")
	}
	l, _ := d.OpenLog("commitlog")
	if f, la, ok := d.Span("commitlog"); !ok || f != 1 || la != 0 {
		t.Fatalf("empty log span %d..%d %v", f, la, ok)
	}
	appendN(t, l, 1, 5)
	if err := l.TruncateFront(3); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if f, la, ok := d.Span("commitlog"); !ok || f != 3 || la != 5 {
		t.Fatalf("span %d..%d %v, want 3..5", f, la, ok)
	}
}

// A flip is caught by the production decoder (package logentry) on Read and Peek; with the
// planted bug's switch, the flipped payload is served.
func TestFlipCaughtByProductionDecoder(t *testing.T) {
	d := New()
	l, err := d.OpenLog("log")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("0123456789abcdef")
	if _, err := l.Append(want); err != nil {
		t.Fatal(err)
	}
	l.Sync()
	if got, err := d.Peek("log", 1); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Peek before the flip = %q, %v", got, err)
	}
	if err := d.FlipByte("log", 1); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Read(1); !errors.Is(err, node.ErrCorrupt) || got != nil {
		t.Fatalf("Read of a flipped entry = %q, %v", got, err)
	}
	if _, err := d.Peek("log", 1); !errors.Is(err, node.ErrCorrupt) {
		t.Fatalf("Peek of a flipped entry: %v", err)
	}
	d.SetBugs(bugs.Of(bugs.SkipChecksum))
	got, err := l.Read(1)
	if err != nil || len(got) != len(want) || bytes.Equal(got, want) {
		t.Fatalf("unchecked Read of a flipped entry = %q, %v; want the flipped payload", got, err)
	}
}

// Segments stay put as the front is cut: an entry belongs to the segment its first byte falls
// in, counted from the log's creation.
func TestSegmentStarts(t *testing.T) {
	d := New()
	l, err := d.OpenLog("commitlog")
	if err != nil {
		t.Fatal(err)
	}
	sl := l.(*Log)
	if got := sl.SegmentStarts(); got != nil {
		t.Fatalf("without SetSegmentBytes: starts %v, want none", got)
	}
	for i := 0; i < 10; i++ {
		if _, err := l.Append(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	d.SetSegmentBytes(3 * entryBytes(t, d))
	want := []uint64{1, 4, 7, 10}
	if got := sl.SegmentStarts(); !slices.Equal(got, want) {
		t.Fatalf("starts %v, want %v", got, want)
	}
	if err := l.TruncateFront(5); err != nil {
		t.Fatal(err)
	}
	if got, want := sl.SegmentStarts(), []uint64{5, 7, 10}; !slices.Equal(got, want) {
		t.Fatalf("after cutting the front to 5: starts %v, want %v", got, want)
	}
}

// entryBytes is the stored size of one 100-byte entry of "commitlog".
func entryBytes(t *testing.T, d *Disk) uint64 {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	return uint64(len(d.logs["commitlog"].entries[0].data))
}
