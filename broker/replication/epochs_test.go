package replication

import (
	"errors"
	"flag"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

func table(t testing.TB, pairs ...uint64) *Table {
	t.Helper()
	var entries []Epoch
	for i := 0; i < len(pairs); i += 2 {
		entries = append(entries, Epoch{Epoch: int64(pairs[i]), Start: pairs[i+1]})
	}
	tb, err := NewTable(entries)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestDivergence(t *testing.T) {
	for _, c := range []struct {
		name         string
		a            *Table
		lastA        uint64
		b            *Table
		lastB        uint64
		want         uint64
		wantReversed uint64
	}{
		{"both empty", table(t), 0, table(t), 0, 0, 0},
		{"fresh replica", table(t), 0, table(t, 1, 1), 40, 0, 0},
		{"same epoch, a behind", table(t, 1, 1), 10, table(t, 1, 1), 40, 10, 10},
		{"same epoch, a ahead (a's tail unsynced on b)", table(t, 1, 1), 40, table(t, 1, 1), 10, 10, 10},
		{"a wrote on in an epoch b left", table(t, 1, 1, 2, 20), 30, table(t, 1, 1, 3, 25), 50, 19, 19},
		{"a's epoch 2 is not b's", table(t, 1, 1, 2, 20), 30, table(t, 1, 1, 3, 20), 50, 19, 19},
		{"a has b's newer epoch", table(t, 1, 1, 3, 25), 60, table(t, 1, 1, 3, 25, 4, 55), 70, 54, 54},
		{"a new master that has not written", table(t, 1, 1, 2, 11), 10, table(t, 1, 1), 14, 10, 10},
		{"no shared epoch", table(t, 2, 1), 5, table(t, 3, 1), 9, 0, 0},
		{"pre-group entries are not shared", table(t, 2, 6), 8, table(t, 2, 6), 8, 8, 8},
		{"same epoch, other start: look further back", table(t, 1, 1, 2, 5), 9, table(t, 1, 1, 2, 7), 9, 4, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Divergence(c.a, c.lastA, c.b, c.lastB); got != c.want {
				t.Errorf("Divergence(a, b) = %d, want %d", got, c.want)
			}
			if got := Divergence(c.b, c.lastB, c.a, c.lastA); got != c.wantReversed {
				t.Errorf("Divergence(b, a) = %d, want %d", got, c.wantReversed)
			}
		})
	}
}

func TestTableEdits(t *testing.T) {
	tb := table(t)
	if _, ok := tb.Last(); ok || tb.LastEpoch() != 0 {
		t.Fatal("empty table has a last entry")
	}
	tb.Append(1, 1)
	tb.Append(3, 10)
	tb.Append(4, 10) // epoch 3 wrote nothing: replaced
	tb.Append(6, 25)
	if diff := cmp.Diff([]Epoch{{1, 1}, {4, 10}, {6, 25}}, tb.Entries()); diff != "" {
		t.Fatalf("entries (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		index uint64
		epoch int64
		ok    bool
	}{{0, 0, false}, {1, 1, true}, {9, 1, true}, {10, 4, true}, {24, 4, true}, {25, 6, true}, {1000, 6, true}} {
		e, ok := tb.EpochOf(c.index)
		if ok != c.ok || e.Epoch != c.epoch {
			t.Errorf("EpochOf(%d) = %v %v, want epoch %d %v", c.index, e, ok, c.epoch, c.ok)
		}
	}
	if end, ok := tb.EndOf(4, 100); !ok || end != 25 {
		t.Errorf("EndOf(4) = %d %v", end, ok)
	}
	if end, ok := tb.EndOf(6, 30); !ok || end != 31 {
		t.Errorf("EndOf(6) = %d %v", end, ok)
	}
	if end, ok := tb.EndOf(4, 12); !ok || end != 13 {
		t.Errorf("EndOf(4) in a log ending at 12 = %d %v", end, ok)
	}
	if _, ok := tb.EndOf(5, 100); ok {
		t.Error("EndOf an absent epoch")
	}
	if tb.TruncateAfter(25) || tb.Len() != 3 {
		t.Fatal("TruncateAfter(25) dropped the entry starting at 25")
	}
	if !tb.TruncateAfter(24) || tb.LastEpoch() != 4 {
		t.Fatalf("TruncateAfter(24): %v", tb.Entries())
	}
	if !tb.TruncateAfter(0) || tb.Len() != 0 {
		t.Fatalf("TruncateAfter(0): %v", tb.Entries())
	}
	for _, bad := range []func(){
		func() { table(t, 5, 5).Append(5, 6) },
		func() { table(t, 5, 5).Append(6, 4) },
		func() { table(t).Append(0, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a bad Append did not panic")
				}
			}()
			bad()
		}()
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range [][]Epoch{
		{{0, 1}}, {{1, 0}}, {{2, 1}, {2, 5}}, {{2, 5}, {3, 4}}, {{3, 1}, {2, 5}},
		slices.Repeat([]Epoch{{1, 1}}, MaxEpochs+1),
	} {
		if err := Validate(bad); err == nil {
			t.Errorf("Validate(%v) accepted it", bad[:min(len(bad), 3)])
		}
	}
	if err := Validate([]Epoch{{1, 1}, {2, 1}, {5, 9}}); err != nil {
		t.Error(err)
	}
}

func TestLoadSave(t *testing.T) {
	d := simdisk.New()
	tb, err := Load(d, 0)
	if err != nil || tb.Len() != 0 {
		t.Fatalf("Load of no file: %v %v", tb, err)
	}
	tb.Append(1, 1)
	tb.Append(2, 30)
	tb.Append(5, 41)
	if err := tb.Save(d); err != nil {
		t.Fatal(err)
	}
	got, err := Load(d, 41)
	if err != nil || !cmp.Equal(got.Entries(), tb.Entries()) {
		t.Fatalf("Load = %v, %v", got.Entries(), err)
	}
	// The log lost its tail in a crash: the epochs it began are gone, also from the file.
	got, err = Load(d, 35)
	if err != nil || !cmp.Equal(got.Entries(), []Epoch{{1, 1}, {2, 30}}) {
		t.Fatalf("Load(35) = %v, %v", got.Entries(), err)
	}
	again, err := Load(d, 1000)
	if err != nil || !cmp.Equal(again.Entries(), []Epoch{{1, 1}, {2, 30}}) {
		t.Fatalf("the trimmed table was not saved: %v %v", again.Entries(), err)
	}
	for _, content := range []string{"{", `{"epochs":[{"epoch":2,"startIndex":5},{"epoch":1,"startIndex":9}]}`} {
		if err := d.WriteFile(EpochsFile, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(d, 10); err == nil {
			t.Errorf("Load accepted %q", content)
		}
	}
	d.SetWriteError(node.ErrIO)
	if err := tb.Save(d); !errors.Is(err, node.ErrIO) {
		t.Errorf("Save on a failing disk: %v", err)
	}
}

// ent is one commit-log entry in the model: the epoch of the master that wrote it and a
// number unique to it.
type ent struct {
	epoch int64
	id    int
}

// modelReplica is one replica of the model group.
type modelReplica struct {
	log    []ent
	synced int // the durable prefix of log
	table  *Table
	master int64 // the epoch it is master of, 0 if none (a stale master keeps it)
}

func (r *modelReplica) last() uint64 { return uint64(len(r.log)) }

// lcp is the length of the longest common prefix of two logs.
func lcp(a, b []ent) uint64 {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return uint64(n)
}

// TestDivergenceModel (rapid): a group of replicas lives through random elections (of any
// replica, stale masters writing on), writes, syncs, crashes that lose unsynced tails,
// restarts of masters within their epoch, and slaves following any master at least as new as
// their own last epoch, with each replica's table kept as Table says. For every pair of
// replicas at every step, Divergence is exactly the length of the longest common prefix of
// their logs: every entry both share is kept and nothing else. Each table also stays true to
// its log (EpochOf gives the epoch of the master that wrote each entry).
func TestDivergenceModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "replicas")
		rs := make([]*modelReplica, n)
		for i := range rs {
			rs[i] = &modelReplica{table: &Table{}}
		}
		epoch, nextID := int64(0), 0
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for step := 0; step < steps; step++ {
			r := rs[rapid.IntRange(0, n-1).Draw(t, "replica")]
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0: // r is elected master at a new epoch
				epoch++
				r.master = epoch
				r.table.Append(epoch, r.last()+1)
			case 1: // r writes, if it is a master (maybe a stale one)
				if r.master == 0 {
					continue
				}
				if r.table.LastEpoch() != r.master {
					r.table.Append(r.master, r.last()+1) // restarted: its entry was dropped at load
				}
				for k := rapid.IntRange(1, 4).Draw(t, "writes"); k > 0; k-- {
					nextID++
					r.log = append(r.log, ent{r.master, nextID})
				}
			case 2: // r syncs some of its log
				r.synced = rapid.IntRange(r.synced, len(r.log)).Draw(t, "synced")
			case 3: // r crashes and restarts: part of its unsynced tail is lost
				keep := rapid.IntRange(r.synced, len(r.log)).Draw(t, "keep")
				r.log = r.log[:keep]
				r.table.TruncateAfter(r.last())
				if rapid.Bool().Draw(t, "losesMastership") {
					r.master = 0
				}
			case 4, 5: // r follows master m: handshake, truncate, fetch durable entries
				m := rs[rapid.IntRange(0, n-1).Draw(t, "master")]
				if m == r || m.master == 0 || m.master < r.table.LastEpoch() {
					continue
				}
				r.master = 0
				p := Divergence(r.table, r.last(), m.table, m.last())
				if q := Divergence(m.table, m.last(), r.table, r.last()); q != p {
					t.Fatalf("Divergence is not symmetric: %d and %d", p, q)
				}
				r.log = r.log[:p]
				r.synced = min(r.synced, int(p))
				r.table.TruncateAfter(p)
				upTo := min(uint64(m.synced), p+uint64(rapid.IntRange(0, 6).Draw(t, "fetch")))
				for i := p + 1; i <= upTo; i++ {
					e, _ := m.table.EpochOf(i)
					switch {
					case e.Epoch > r.table.LastEpoch():
						if e.Start != i {
							t.Fatalf("first entry of epoch %d at %d, but it starts at %d on the master", e.Epoch, i, e.Start)
						}
						r.table.Append(e.Epoch, i)
					case e.Epoch < r.table.LastEpoch():
						t.Fatalf("master's entry %d is of epoch %d, below the follower's last epoch %d", i, e.Epoch, r.table.LastEpoch())
					}
					r.log = append(r.log, m.log[i-1])
				}
			}
			for i, a := range rs {
				checkTrue(t, i, a)
				for j, b := range rs {
					if i == j {
						continue
					}
					if got, want := Divergence(a.table, a.last(), b.table, b.last()), lcp(a.log, b.log); got != want {
						t.Fatalf("step %d: Divergence(%d, %d) = %d, longest common prefix %d\n%d: %v %v\n%d: %v %v",
							step, i, j, got, want, i, a.table.Entries(), a.log, j, b.table.Entries(), b.log)
					}
				}
			}
		}
	})
}

// checkTrue checks that replica r's table gives the epoch of every entry of its log, and that
// only its newest entry may be empty.
func checkTrue(t *rapid.T, i int, r *modelReplica) {
	for idx, e := range r.log {
		got, _ := r.table.EpochOf(uint64(idx + 1))
		if got.Epoch != e.epoch {
			t.Fatalf("replica %d: entry %d is of epoch %d, its table says %d (%v)", i, idx+1, e.epoch, got.Epoch, r.table.Entries())
		}
	}
	entries := r.table.Entries()
	for k := 0; k+1 < len(entries); k++ {
		if entries[k].Start == entries[k+1].Start {
			t.Fatalf("replica %d: empty epoch inside the table: %v", i, entries)
		}
	}
	if last, ok := r.table.Last(); ok && last.Start > r.last()+1 {
		t.Fatalf("replica %d: table %v runs past its log's end %d", i, entries, r.last())
	}
}

// TestMain runs this package's rapid properties 3000 times unless -rapid.checks says
// otherwise: the model's interesting histories (a master restarted within its epoch after a
// slave copied its tail) need a few hundred tries to come up, and a try takes microseconds.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		if err := flag.Set("rapid.checks", "3000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
