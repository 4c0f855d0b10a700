package keyindex

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

const logName = "keyindex"

type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

func openIndex(t tb, d *simdisk.Disk, bits int) *Index {
	t.Helper()
	l, err := d.OpenLog(logName)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	x, err := Open(l, bits)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return x
}

// walk collects every entry with hash h, newest first.
func walk(t tb, x *Index, h uint64) []Entry {
	t.Helper()
	var out []Entry
	if err := x.Walk(h, 1<<20, func(e Entry) bool { out = append(out, e); return true }); err != nil {
		t.Fatalf("Walk(%x): %v", h, err)
	}
	return out
}

// Keys of one topic find their messages newest first, across a reopen; a key of another topic
// with the same name is a different key; hashes sharing a bucket do not see each other.
func TestWalkFindsEveryEntryOfAHash(t *testing.T) {
	d := simdisk.New()
	x := openIndex(t, d, 1) // two buckets: every chain mixes hashes
	a, b, other := Hash("T", "order-1"), Hash("T", "order-2"), Hash("U", "order-1")
	if a == other || a == b {
		t.Fatal("distinct keys hash alike")
	}
	adds := []Entry{{a, 1, 10}, {b, 2, 11}, {other, 3, 12}, {a, 4, 13}, {b, 4, 13}, {a, 9, 20}}
	for _, e := range adds {
		if err := x.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	check := func(x *Index) {
		t.Helper()
		if diff := cmp.Diff([]Entry{{a, 9, 20}, {a, 4, 13}, {a, 1, 10}}, walk(t, x, a)); diff != "" {
			t.Errorf("walk of a (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]Entry{{b, 4, 13}, {b, 2, 11}}, walk(t, x, b)); diff != "" {
			t.Errorf("walk of b (-want +got):\n%s", diff)
		}
		if got := walk(t, x, Hash("T", "nope")); len(got) != 0 {
			t.Errorf("walk of an absent key: %v", got)
		}
		if x.Last() != (Entry{a, 9, 20}) || x.Len() != 6 {
			t.Errorf("last %+v len %d", x.Last(), x.Len())
		}
	}
	check(x)
	if err := x.Log().Close(); err != nil {
		t.Fatal(err)
	}
	check(openIndex(t, d, 1))

	// Walk stops when visit says so, and after maxScan entries of the bucket.
	x = openIndex(t, simdisk.New(), 1)
	for i := range uint64(10) {
		x.Add(Entry{a, i + 1, 0})
	}
	n := 0
	x.Walk(a, 100, func(Entry) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("visit returning false after 3 saw %d entries", n)
	}
	n = 0
	x.Walk(a, 4, func(Entry) bool { n++; return true })
	if n != 4 {
		t.Errorf("maxScan 4 visited %d entries", n)
	}
}

// TruncateFrom removes the newest messages' entries and restores the chains beneath them.
func TestTruncateFrom(t *testing.T) {
	x := openIndex(t, simdisk.New(), 2)
	a, b := Hash("T", "a"), Hash("T", "b")
	for _, e := range []Entry{{a, 1, 0}, {b, 2, 0}, {a, 3, 0}, {b, 3, 0}, {a, 5, 0}} {
		x.Add(e)
	}
	if err := x.TruncateFrom(3); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Entry{{a, 1, 0}}, walk(t, x, a)); diff != "" {
		t.Errorf("a after truncating from 3 (-want +got):\n%s", diff)
	}
	if x.Len() != 2 || x.Last() != (Entry{b, 2, 0}) {
		t.Errorf("len %d last %+v", x.Len(), x.Last())
	}
	x.Add(Entry{a, 3, 0})
	if diff := cmp.Diff([]Entry{{a, 3, 0}, {a, 1, 0}}, walk(t, x, a)); diff != "" {
		t.Errorf("a after adding again (-want +got):\n%s", diff)
	}
	if err := x.TruncateFrom(1); err != nil || x.Len() != 0 || x.Last() != (Entry{}) || len(walk(t, x, b)) != 0 {
		t.Errorf("truncate everything: err %v len %d", err, x.Len())
	}
}

// TruncateBefore removes the oldest entries (retention): chains end at the first kept entry,
// across a reopen, and removing everything leaves an index that takes new entries.
func TestTruncateBefore(t *testing.T) {
	d := simdisk.New()
	x := openIndex(t, d, 2)
	a, b := Hash("T", "a"), Hash("T", "b")
	for _, e := range []Entry{{a, 1, 0}, {b, 2, 0}, {a, 3, 0}, {b, 3, 0}, {a, 5, 0}} {
		x.Add(e)
	}
	if err := x.TruncateBefore(3); err != nil {
		t.Fatal(err)
	}
	check := func(x *Index) {
		t.Helper()
		if diff := cmp.Diff([]Entry{{a, 5, 0}, {a, 3, 0}}, walk(t, x, a)); diff != "" {
			t.Errorf("a after truncating before 3 (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]Entry{{b, 3, 0}}, walk(t, x, b)); diff != "" {
			t.Errorf("b after truncating before 3 (-want +got):\n%s", diff)
		}
		if x.Len() != 3 {
			t.Errorf("len %d, want 3", x.Len())
		}
	}
	check(x)
	if err := x.Log().Close(); err != nil {
		t.Fatal(err)
	}
	x = openIndex(t, d, 2)
	check(x)
	if err := x.TruncateBefore(6); err != nil || x.Len() != 0 || len(walk(t, x, a)) != 0 {
		t.Fatalf("truncate everything: err %v len %d", err, x.Len())
	}
	x.Add(Entry{a, 7, 0})
	if diff := cmp.Diff([]Entry{{a, 7, 0}}, walk(t, x, a)); diff != "" {
		t.Errorf("a after adding to an emptied index (-want +got):\n%s", diff)
	}
}

// A corrupt entry is never returned: Open counts it, and a walk reaching it ends with an
// error wrapping node.ErrCorrupt after the entries newer than it.
func TestCorruptEntry(t *testing.T) {
	d := simdisk.New()
	x := openIndex(t, d, 1)
	a := Hash("T", "a")
	for i := range uint64(4) {
		x.Add(Entry{a, i + 1, 0})
	}
	x.Log().Sync()
	x.Log().Close()
	if err := d.FlipByte(logName, 2); err != nil {
		t.Fatal(err)
	}
	x = openIndex(t, d, 1)
	if x.Broken() != 1 {
		t.Errorf("Broken() = %d, want 1", x.Broken())
	}
	var got []uint64
	err := x.Walk(a, 100, func(e Entry) bool { got = append(got, e.CommitIndex); return true })
	if !errors.Is(err, node.ErrCorrupt) || !slices.Equal(got, []uint64{4, 3}) {
		t.Errorf("walk over a corrupt entry: %v, %v; want [4 3] and ErrCorrupt", got, err)
	}
}

func TestOpenRejectsBadBucketBits(t *testing.T) {
	for _, bits := range []int{0, MaxBucketBits + 1} {
		l, _ := simdisk.New().OpenLog(logName)
		if _, err := Open(l, bits); err == nil {
			t.Errorf("Open with %d bucket bits succeeded", bits)
		}
	}
}

// indexMachine checks the index against a model (the list of entries in log order) through
// adds, truncations, partial syncs, crashes and reopens, with few buckets and few hashes so
// that chains mix hashes.
type indexMachine struct {
	d       *simdisk.Disk
	x       *Index
	bits    int
	entries []Entry
	synced  int
	hashes  []uint64
}

func (m *indexMachine) Add(t *rapid.T) {
	next := uint64(1)
	if n := len(m.entries); n > 0 {
		next = m.entries[n-1].CommitIndex + uint64(rapid.IntRange(0, 2).Draw(t, "step"))
	}
	e := Entry{rapid.SampledFrom(m.hashes).Draw(t, "hash"), next, rapid.Int64Range(0, 100).Draw(t, "ms")}
	if err := m.x.Add(e); err != nil {
		t.Fatal(err)
	}
	m.entries = append(m.entries, e)
}

func (m *indexMachine) TruncateFrom(t *rapid.T) {
	from := rapid.Uint64Range(0, uint64(len(m.entries))+2).Draw(t, "from")
	if err := m.x.TruncateFrom(from); err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < len(m.entries) && m.entries[n].CommitIndex < from {
		n++
	}
	m.entries = m.entries[:n]
	m.synced = min(m.synced, n)
}

func (m *indexMachine) Sync(t *rapid.T) {
	upTo := rapid.IntRange(m.synced, len(m.entries)).Draw(t, "upTo")
	if err := m.x.Log().(*simdisk.Log).SyncTo(uint64(upTo)); err != nil {
		t.Fatal(err)
	}
	m.synced = upTo
}

func (m *indexMachine) Crash(t *rapid.T) {
	seed := rapid.Uint64().Draw(t, "seed")
	m.d.Crash(rand.New(rand.NewPCG(seed, 1)))
	m.x = openIndex(t, m.d, m.bits)
	n := int(m.x.Len())
	if n < m.synced || n > len(m.entries) {
		t.Fatalf("after a crash the index holds %d entries; synced %d, added %d", n, m.synced, len(m.entries))
	}
	m.entries = m.entries[:n]
	m.synced = n
}

func (m *indexMachine) Reopen(t *rapid.T) {
	if err := m.x.Log().Close(); err != nil {
		t.Fatal(err)
	}
	m.x = openIndex(t, m.d, m.bits)
}

func (m *indexMachine) Check(t *rapid.T) {
	if got := m.x.Len(); got != uint64(len(m.entries)) {
		t.Fatalf("Len() = %d, model %d", got, len(m.entries))
	}
	var last Entry
	if n := len(m.entries); n > 0 {
		last = m.entries[n-1]
	}
	if m.x.Last() != last {
		t.Fatalf("Last() = %+v, model %+v", m.x.Last(), last)
	}
	for _, h := range m.hashes {
		var want []Entry
		for i := len(m.entries) - 1; i >= 0; i-- {
			if m.entries[i].Hash == h {
				want = append(want, m.entries[i])
			}
		}
		if diff := cmp.Diff(want, walk(t, m.x, h)); diff != "" {
			t.Fatalf("walk of %x (-model +index):\n%s", h, diff)
		}
	}
}

func TestIndexModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &indexMachine{d: simdisk.New(), bits: rapid.IntRange(1, 3).Draw(t, "bits")}
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			m.hashes = append(m.hashes, Hash("T", k))
		}
		m.x = openIndex(t, m.d, m.bits)
		t.Repeat(map[string]func(*rapid.T){
			"add":          m.Add,
			"addMore":      m.Add,
			"truncateFrom": m.TruncateFrom,
			"sync":         m.Sync,
			"crash":        m.Crash,
			"reopen":       m.Reopen,
			"":             m.Check,
		})
	})
}
