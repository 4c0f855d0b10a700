// Package disktest owns the conformance suite for node.Disk: the behaviour node.go documents,
// checked the same way against every implementation (the production diskfile disk on real
// files, the simulator's in-memory disk), so that the simulated disk cannot drift from the
// real one. It checks only what node.go promises; an implementation's extra rules (how it
// treats out-of-range truncations, crash repair) are tested in its own package.
//
// This package is imported by tests only; it must never be imported by node or runtime code.
package disktest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/node"
)

// Run runs the conformance suite. newDisk returns a new, empty disk for each subtest; the
// disk must outlive the subtest (use t.Cleanup for teardown).
func Run(t *testing.T, newDisk func(t *testing.T) node.Disk) {
	t.Run("EmptyLog", func(t *testing.T) { testEmptyLog(t, newDisk(t)) })
	t.Run("AppendRead", func(t *testing.T) { testAppendRead(t, newDisk(t)) })
	t.Run("AppendCopiesData", func(t *testing.T) { testAppendCopiesData(t, newDisk(t)) })
	t.Run("ReadMissing", func(t *testing.T) { testReadMissing(t, newDisk(t)) })
	t.Run("TruncateBack", func(t *testing.T) { testTruncateBack(t, newDisk(t)) })
	t.Run("TruncateBackEmpties", func(t *testing.T) { testTruncateBackEmpties(t, newDisk(t)) })
	t.Run("TruncateFront", func(t *testing.T) { testTruncateFront(t, newDisk(t)) })
	t.Run("TruncateFrontEmpties", func(t *testing.T) { testTruncateFrontEmpties(t, newDisk(t)) })
	t.Run("Rebase", func(t *testing.T) { testRebase(t, newDisk(t)) })
	t.Run("ReopenKeepsSynced", func(t *testing.T) { testReopen(t, newDisk(t)) })
	t.Run("ReopenAfterTruncations", func(t *testing.T) { testReopenAfterTruncations(t, newDisk(t)) })
	t.Run("IndependentLogs", func(t *testing.T) { testIndependentLogs(t, newDisk(t)) })
	t.Run("ListLogs", func(t *testing.T) { testListLogs(t, newDisk(t)) })
	t.Run("RemoveLog", func(t *testing.T) { testRemoveLog(t, newDisk(t)) })
	t.Run("Files", func(t *testing.T) { testFiles(t, newDisk(t)) })
	t.Run("Model", func(t *testing.T) { testModel(t, newDisk(t)) })
}

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// entry is the payload the suite stores at index i of a log: distinct per index and log,
// of varying length (including empty).
func entry(log string, i uint64) []byte {
	if i%17 == 0 {
		return []byte{}
	}
	b := fmt.Appendf(nil, "%s#%d:", log, i)
	for j := uint64(0); j < i%41; j++ {
		b = append(b, byte(i*7+j))
	}
	return b
}

func openLog(t tb, d node.Disk, name string) node.Log {
	t.Helper()
	l, err := d.OpenLog(name)
	if err != nil {
		t.Fatalf("OpenLog(%q): %v", name, err)
	}
	return l
}

func closeLog(t tb, l node.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close(%q): %v", l.Name(), err)
	}
}

func appendN(t tb, l node.Log, n int) {
	t.Helper()
	for range n {
		want := l.LastIndex() + 1
		got, err := l.Append(entry(l.Name(), want))
		if err != nil {
			t.Fatalf("Append to %q at %d: %v", l.Name(), want, err)
		}
		if got != want {
			t.Fatalf("Append to %q returned index %d, want %d", l.Name(), got, want)
		}
	}
}

func checkBounds(t tb, l node.Log, first, last uint64) {
	t.Helper()
	if f, ls := l.FirstIndex(), l.LastIndex(); f != first || ls != last {
		t.Fatalf("log %q: FirstIndex, LastIndex = %d, %d; want %d, %d", l.Name(), f, ls, first, last)
	}
}

// checkEntries reads every index in first..last and checks the content.
func checkEntries(t tb, l node.Log, first, last uint64) {
	t.Helper()
	checkBounds(t, l, first, last)
	for i := first; i <= last; i++ {
		got, err := l.Read(i)
		if err != nil {
			t.Fatalf("Read(%d) of %q: %v", i, l.Name(), err)
		}
		if want := entry(l.Name(), i); !bytes.Equal(got, want) {
			t.Fatalf("Read(%d) of %q = %q, want %q", i, l.Name(), got, want)
		}
	}
}

func checkNotFound(t tb, l node.Log, i uint64) {
	t.Helper()
	got, err := l.Read(i)
	if !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("Read(%d) of %q (entries %d..%d) = %q, %v; want an error wrapping ErrNotFound",
			i, l.Name(), l.FirstIndex(), l.LastIndex(), got, err)
	}
}

func syncLog(t tb, l node.Log) {
	t.Helper()
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync(%q): %v", l.Name(), err)
	}
}

func testEmptyLog(t *testing.T, d node.Disk) {
	l := openLog(t, d, "empty")
	defer closeLog(t, l)
	if l.Name() != "empty" {
		t.Errorf("Name() = %q, want %q", l.Name(), "empty")
	}
	checkBounds(t, l, 1, 0)
	checkNotFound(t, l, 0)
	checkNotFound(t, l, 1)
	syncLog(t, l) // syncing an empty log is fine
}

func testAppendRead(t *testing.T, d node.Disk) {
	l := openLog(t, d, "commitlog")
	defer closeLog(t, l)
	appendN(t, l, 500)
	checkEntries(t, l, 1, 500)
	// Reads in any order, repeatedly.
	for _, i := range []uint64{500, 1, 250, 17, 34, 499, 1} {
		got, err := l.Read(i)
		if err != nil || !bytes.Equal(got, entry(l.Name(), i)) {
			t.Fatalf("Read(%d) = %q, %v; want %q", i, got, err, entry(l.Name(), i))
		}
	}
	// A large entry.
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	i, err := l.Append(big)
	if err != nil || i != 501 {
		t.Fatalf("Append(1 MiB) = %d, %v; want 501", i, err)
	}
	got, err := l.Read(501)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Read(501) of a 1 MiB entry: %d bytes, %v", len(got), err)
	}
}

func testAppendCopiesData(t *testing.T, d node.Disk) {
	l := openLog(t, d, "copies")
	defer closeLog(t, l)
	buf := []byte("first")
	if _, err := l.Append(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX") // the caller reuses its buffer
	got, err := l.Read(1)
	if err != nil || string(got) != "first" {
		t.Fatalf("after the caller reused its buffer, Read(1) = %q, %v; want %q", got, err, "first")
	}
	// A slice returned by Read stays valid across later appends.
	if _, err := l.Append([]byte("second")); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 100)
	if string(got) != "first" {
		t.Fatalf("a slice returned by Read changed to %q after later appends", got)
	}
}

func testReadMissing(t *testing.T, d node.Disk) {
	l := openLog(t, d, "missing")
	defer closeLog(t, l)
	appendN(t, l, 10)
	checkNotFound(t, l, 0)
	checkNotFound(t, l, 11)
	checkNotFound(t, l, 1<<40)
	if err := l.TruncateFront(4); err != nil {
		t.Fatal(err)
	}
	checkNotFound(t, l, 3)
	checkNotFound(t, l, 1)
	if err := l.TruncateBack(8); err != nil {
		t.Fatal(err)
	}
	checkNotFound(t, l, 9)
	checkNotFound(t, l, 10)
	checkEntries(t, l, 4, 8)
}

func testTruncateBack(t *testing.T, d node.Disk) {
	l := openLog(t, d, "back")
	defer closeLog(t, l)
	appendN(t, l, 300)
	if err := l.TruncateBack(300); err != nil { // keeps everything
		t.Fatalf("TruncateBack(LastIndex): %v", err)
	}
	checkEntries(t, l, 1, 300)
	if err := l.TruncateBack(120); err != nil {
		t.Fatalf("TruncateBack(120): %v", err)
	}
	checkEntries(t, l, 1, 120)
	checkNotFound(t, l, 121)
	// The next append reuses the freed index, with new content.
	i, err := l.Append([]byte("replacement"))
	if err != nil || i != 121 {
		t.Fatalf("Append after TruncateBack(120) = %d, %v; want 121", i, err)
	}
	got, err := l.Read(121)
	if err != nil || string(got) != "replacement" {
		t.Fatalf("Read(121) = %q, %v; want %q", got, err, "replacement")
	}
	if err := l.TruncateBack(1); err != nil {
		t.Fatalf("TruncateBack(1): %v", err)
	}
	checkEntries(t, l, 1, 1)
}

func testTruncateBackEmpties(t *testing.T, d node.Disk) {
	l := openLog(t, d, "back-empty")
	defer closeLog(t, l)
	appendN(t, l, 50)
	if err := l.TruncateBack(0); err != nil {
		t.Fatalf("TruncateBack(FirstIndex()-1 = 0): %v", err)
	}
	checkBounds(t, l, 1, 0)
	checkNotFound(t, l, 1)
	appendN(t, l, 5)
	checkEntries(t, l, 1, 5)

	// The same after the front has moved: the log empties and keeps its FirstIndex.
	appendN(t, l, 45)
	if err := l.TruncateFront(21); err != nil {
		t.Fatalf("TruncateFront(21): %v", err)
	}
	if err := l.TruncateBack(20); err != nil {
		t.Fatalf("TruncateBack(FirstIndex()-1 = 20): %v", err)
	}
	checkBounds(t, l, 21, 20)
	checkNotFound(t, l, 21)
	appendN(t, l, 3)
	checkEntries(t, l, 21, 23)
}

func testTruncateFront(t *testing.T, d node.Disk) {
	l := openLog(t, d, "front")
	defer closeLog(t, l)
	appendN(t, l, 300)
	if err := l.TruncateFront(1); err != nil { // keeps everything
		t.Fatalf("TruncateFront(FirstIndex): %v", err)
	}
	checkEntries(t, l, 1, 300)
	if err := l.TruncateFront(101); err != nil {
		t.Fatalf("TruncateFront(101): %v", err)
	}
	checkEntries(t, l, 101, 300)
	checkNotFound(t, l, 100)
	if err := l.TruncateFront(300); err != nil {
		t.Fatalf("TruncateFront(300): %v", err)
	}
	checkEntries(t, l, 300, 300)
	appendN(t, l, 10)
	checkEntries(t, l, 300, 310)
}

func testTruncateFrontEmpties(t *testing.T, d node.Disk) {
	l := openLog(t, d, "front-empty")
	defer closeLog(t, l)
	appendN(t, l, 40)
	if err := l.TruncateFront(41); err != nil {
		t.Fatalf("TruncateFront(LastIndex()+1 = 41): %v", err)
	}
	checkBounds(t, l, 41, 40)
	checkNotFound(t, l, 40)
	checkNotFound(t, l, 41)
	appendN(t, l, 4) // indexes continue
	checkEntries(t, l, 41, 44)
}

// testRebase: node.Rebaser empties a log and restarts it at any index, forwards or backwards,
// durably: a reopen without a sync finds it so.
func testRebase(t *testing.T, d node.Disk) {
	l := openLog(t, d, "rebase")
	r, ok := l.(node.Rebaser)
	if !ok {
		t.Fatalf("%T is no node.Rebaser", l)
	}
	appendN(t, l, 40)
	syncLog(t, l)
	for _, to := range []uint64{1000, 7} {
		if err := r.Rebase(to); err != nil {
			t.Fatalf("Rebase(%d): %v", to, err)
		}
		checkBounds(t, l, to, to-1)
		checkNotFound(t, l, to)
		checkNotFound(t, l, to-1)
		closeLog(t, l)
		l = openLog(t, d, "rebase")
		r = l.(node.Rebaser)
		checkBounds(t, l, to, to-1)
		if got, err := l.Append(entry("rebase", to)); err != nil || got != to {
			t.Fatalf("append after Rebase(%d): %d %v", to, got, err)
		}
		checkEntries(t, l, to, to)
	}
	closeLog(t, l)
}

func testReopen(t *testing.T, d node.Disk) {
	l := openLog(t, d, "reopen")
	appendN(t, l, 700)
	syncLog(t, l)
	closeLog(t, l)
	l = openLog(t, d, "reopen")
	checkEntries(t, l, 1, 700)
	appendN(t, l, 10) // appends continue after a reopen
	syncLog(t, l)
	closeLog(t, l)
	l = openLog(t, d, "reopen")
	defer closeLog(t, l)
	checkEntries(t, l, 1, 710)

	// A reopened empty log is still empty.
	e := openLog(t, d, "reopen-empty")
	closeLog(t, e)
	e = openLog(t, d, "reopen-empty")
	defer closeLog(t, e)
	checkBounds(t, e, 1, 0)
}

func testReopenAfterTruncations(t *testing.T, d node.Disk) {
	l := openLog(t, d, "trunc-reopen")
	appendN(t, l, 400)
	if err := l.TruncateFront(150); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateBack(350); err != nil {
		t.Fatal(err)
	}
	syncLog(t, l)
	closeLog(t, l)
	l = openLog(t, d, "trunc-reopen")
	checkEntries(t, l, 150, 350)

	// Emptied by TruncateFront: the next index survives the reopen.
	if err := l.TruncateFront(351); err != nil {
		t.Fatal(err)
	}
	syncLog(t, l)
	closeLog(t, l)
	l = openLog(t, d, "trunc-reopen")
	defer closeLog(t, l)
	checkBounds(t, l, 351, 350)
	appendN(t, l, 2)
	checkEntries(t, l, 351, 352)
}

func testIndependentLogs(t *testing.T, d node.Disk) {
	a := openLog(t, d, "cq/TopicA/0")
	defer closeLog(t, a)
	b := openLog(t, d, "cq/TopicA/1")
	defer closeLog(t, b)
	for range 100 {
		appendN(t, a, 2)
		appendN(t, b, 1)
	}
	if err := a.TruncateBack(50); err != nil {
		t.Fatal(err)
	}
	if err := b.TruncateFront(60); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, a, 1, 50)
	checkEntries(t, b, 60, 100)
}

func testListLogs(t *testing.T, d node.Disk) {
	names := []string{"commitlog", "cq/TopicB/0", "cq/TopicA/1", "cq/TopicA/0", "cq/TopicA/10", "cqx"}
	for _, n := range names {
		l := openLog(t, d, n)
		appendN(t, l, 3)
		closeLog(t, l)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"commitlog", "cq/TopicA/0", "cq/TopicA/1", "cq/TopicA/10", "cq/TopicB/0", "cqx"}},
		{"cq/", []string{"cq/TopicA/0", "cq/TopicA/1", "cq/TopicA/10", "cq/TopicB/0"}},
		{"cq", []string{"cq/TopicA/0", "cq/TopicA/1", "cq/TopicA/10", "cq/TopicB/0", "cqx"}},
		{"cq/TopicA/", []string{"cq/TopicA/0", "cq/TopicA/1", "cq/TopicA/10"}},
		{"cq/TopicA/1", []string{"cq/TopicA/1", "cq/TopicA/10"}},
		{"cq/Topic", []string{"cq/TopicA/0", "cq/TopicA/1", "cq/TopicA/10", "cq/TopicB/0"}},
		{"commitlog", []string{"commitlog"}},
		{"nope", nil},
		{"cq/TopicC/", nil},
	} {
		got, err := d.ListLogs(tc.prefix)
		if err != nil {
			t.Fatalf("ListLogs(%q): %v", tc.prefix, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ListLogs(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	// An open log is listed too.
	l := openLog(t, d, "open/one")
	defer closeLog(t, l)
	if got, err := d.ListLogs("open/"); err != nil || !slices.Equal(got, []string{"open/one"}) {
		t.Errorf("ListLogs(%q) with the log open = %q, %v; want [open/one]", "open/", got, err)
	}
}

func testRemoveLog(t *testing.T, d node.Disk) {
	for _, n := range []string{"cq/T/0", "cq/T/1"} {
		l := openLog(t, d, n)
		appendN(t, l, 20)
		syncLog(t, l)
		closeLog(t, l)
	}
	if err := d.RemoveLog("cq/T/0"); err != nil {
		t.Fatalf("RemoveLog: %v", err)
	}
	got, err := d.ListLogs("")
	if err != nil || !slices.Equal(got, []string{"cq/T/1"}) {
		t.Fatalf("ListLogs after RemoveLog = %q, %v; want [cq/T/1]", got, err)
	}
	// The other log is untouched; the removed one comes back empty.
	l := openLog(t, d, "cq/T/1")
	checkEntries(t, l, 1, 20)
	closeLog(t, l)
	l = openLog(t, d, "cq/T/0")
	defer closeLog(t, l)
	checkBounds(t, l, 1, 0)
	appendN(t, l, 2)
	checkEntries(t, l, 1, 2)
}

func testFiles(t *testing.T, d node.Disk) {
	for _, name := range []string{"topics.json", "offsets/group-1"} {
		if b, err := d.ReadFile(name); !errors.Is(err, node.ErrNotFound) {
			t.Fatalf("ReadFile(%q) of a missing file = %q, %v; want an error wrapping ErrNotFound", name, b, err)
		}
		for _, content := range [][]byte{
			[]byte(`{"version":1,"topics":["a","b","c"]}`),
			[]byte(`{"v":2}`), // shorter: nothing of the old content may remain
			{},
			bytes.Repeat([]byte{0xAB}, 100_000),
		} {
			if err := d.WriteFile(name, content); err != nil {
				t.Fatalf("WriteFile(%q, %d bytes): %v", name, len(content), err)
			}
			got, err := d.ReadFile(name)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("ReadFile(%q) = %d bytes, %v; want the %d bytes just written", name, len(got), err, len(content))
			}
		}
	}
	if b, err := d.ReadFile("offsets/group-2"); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("ReadFile of a missing file next to an existing one = %q, %v; want ErrNotFound", b, err)
	}
}

// testModel runs random sequences of appends, truncations, reads and reopens against a
// slice model of the log.
func testModel(t *testing.T, d node.Disk) {
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		name := fmt.Sprintf("model/%d", run)
		l := openLog(rt, d, name)
		defer func() { l.Close() }()
		first := uint64(1)
		var model [][]byte // model[i] is the entry at index first+i
		last := func() uint64 { return first + uint64(len(model)) - 1 }
		check := func() {
			checkBounds(rt, l, first, last())
		}
		rt.Repeat(map[string]func(*rapid.T){
			"append": func(rt *rapid.T) {
				data := rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(rt, "data")
				i, err := l.Append(data)
				if err != nil {
					rt.Fatalf("Append: %v", err)
				}
				if i != last()+1 {
					rt.Fatalf("Append returned %d, want %d", i, last()+1)
				}
				model = append(model, data)
				check()
			},
			"appendMany": func(rt *rapid.T) {
				n := rapid.IntRange(1, 200).Draw(rt, "n")
				for range n {
					data := fmt.Appendf(nil, "bulk-%d", last()+1)
					if _, err := l.Append(data); err != nil {
						rt.Fatalf("Append: %v", err)
					}
					model = append(model, data)
				}
				check()
			},
			"truncateBack": func(rt *rapid.T) {
				i := rapid.Uint64Range(first-1, last()).Draw(rt, "index")
				if err := l.TruncateBack(i); err != nil {
					rt.Fatalf("TruncateBack(%d) of %d..%d: %v", i, first, last(), err)
				}
				model = model[:i-first+1]
				check()
			},
			"truncateFront": func(rt *rapid.T) {
				i := rapid.Uint64Range(first, last()+1).Draw(rt, "index")
				if err := l.TruncateFront(i); err != nil {
					rt.Fatalf("TruncateFront(%d) of %d..%d: %v", i, first, last(), err)
				}
				model = model[i-first:]
				first = i
				check()
			},
			"read": func(rt *rapid.T) {
				lo := first
				if lo > 1 {
					lo--
				}
				i := rapid.Uint64Range(lo, last()+2).Draw(rt, "index")
				got, err := l.Read(i)
				if i < first || i > last() {
					if !errors.Is(err, node.ErrNotFound) {
						rt.Fatalf("Read(%d) outside %d..%d = %q, %v; want ErrNotFound", i, first, last(), got, err)
					}
					return
				}
				if err != nil || !bytes.Equal(got, model[i-first]) {
					rt.Fatalf("Read(%d) = %q, %v; want %q", i, got, err, model[i-first])
				}
			},
			"syncReopen": func(rt *rapid.T) {
				syncLog(rt, l)
				closeLog(rt, l)
				l = openLog(rt, d, name)
				check()
			},
			"": func(rt *rapid.T) {
				check()
			},
		})
		for i, want := range model {
			got, err := l.Read(first + uint64(i))
			if err != nil || !bytes.Equal(got, want) {
				rt.Fatalf("final Read(%d) = %q, %v; want %q", first+uint64(i), got, err, want)
			}
		}
	})
}
