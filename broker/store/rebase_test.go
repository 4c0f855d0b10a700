package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// rebaseMaster is a master on real files holding messages 1..n of fillTimed, whose retention
// removed the segments before the one holding message 101; it returns the master and its
// first index.
func rebaseMaster(t *testing.T, n int) (*Store, uint64) {
	t.Helper()
	_, m := timedOnFiles(t, n)
	t.Cleanup(func() { m.Close() })
	res, err := m.Retain(RetentionPolicy{ExpireBeforeMs: 100_500})
	if err != nil || res.To < 20 || res.To > 101 {
		t.Fatalf("master's retention: %+v %v", res, err)
	}
	return m, m.CommitLog().FirstIndex()
}

// TestRebaseReplicaBelowMastersFirstIndex: a replica that holds less than its master's first
// index (offline while the master's retention ran, or new) cannot fetch what it lacks; it
// rebases to the master's first index and replicates from there: it then holds exactly the
// master's messages, every queue's min offset is the master's, pulls below it are moved up,
// key lookups find only what it holds, and all of that survives a restart, on real files.
func TestRebaseReplicaBelowMastersFirstIndex(t *testing.T) {
	const n = 200
	for _, held := range []uint64{0, 15} {
		t.Run(fmt.Sprintf("held%d", held), func(t *testing.T) {
			master, first := rebaseMaster(t, n)
			dir := t.TempDir()
			d, err := diskfile.Open(dir, diskfile.Options{SegmentBytes: 1 << 10})
			if err != nil {
				t.Fatal(err)
			}
			r := open(t, d, Options{KeyIndexBucketBits: 4, ConfirmCheckpointedOnly: true})
			if held > 0 {
				// What the replica fetched before it went offline, from a copy of the master
				// made then.
				_, old := timedOnFiles(t, int(held))
				replicate(t, old, r, 1)
				old.Close()
				settle(t, r)
			}
			if _, err := master.ReadRecords(held+1, n, 1<<20); !errors.Is(err, node.ErrNotFound) {
				t.Fatalf("master serves from %d below its first index %d: %v", held+1, first, err)
			}
			if err := r.Rebase(first); err != nil {
				t.Fatal(err)
			}
			if got, last := r.CommitLog().FirstIndex(), r.CommitLog().LastIndex(); got != first || last != first-1 || r.Confirmed() != first-1 {
				t.Fatalf("after Rebase(%d): log %d..%d confirmed %d", first, got, last, r.Confirmed())
			}
			replicate(t, master, r, first)
			settle(t, r)
			checkKept(t, r, int(first), n)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			d, err = diskfile.Open(dir, diskfile.Options{SegmentBytes: 1 << 10})
			if err != nil {
				t.Fatal(err)
			}
			r = open(t, d, Options{KeyIndexBucketBits: 4, ConfirmCheckpointedOnly: true})
			defer r.Close()
			if r.Rebased() != first {
				t.Fatalf("Rebased() = %d after a restart, want %d", r.Rebased(), first)
			}
			checkKept(t, r, int(first), n)
		})
	}
}

// TestRebaseCrashAnywhere: a crash at any point after a replica started to rebase and
// replicate leaves a store whose log is the old one, an empty one, or a prefix of the
// master's from its first index, with queue offsets equal to the master's; replicating again
// (after a second Rebase where the log is not the master's) ends with the master's messages.
func TestRebaseCrashAnywhere(t *testing.T) {
	const n = 120
	master := open(t, simdisk.New(), Options{KeyIndexBucketBits: 4})
	mustCreate(t, master, "T", 2)
	fillTimed(t, master, 1, n)
	settle(t, master)
	if _, err := master.Retain(RetentionPolicy{ExpireBeforeMs: 60_500}); err != nil {
		t.Fatal(err)
	}
	first := master.CommitLog().FirstIndex()
	if first != 61 {
		t.Fatalf("master's first index %d, want 61", first)
	}
	for seed := range uint64(40) {
		d := simdisk.New()
		r := open(t, d, Options{KeyIndexBucketBits: 4, ConfirmCheckpointedOnly: true})
		old := open(t, simdisk.New(), Options{KeyIndexBucketBits: 4}) // the master as it was
		mustCreate(t, old, "T", 2)
		fillTimed(t, old, 1, 10)
		settle(t, old)
		replicate(t, old, r, 1)
		settle(t, r)
		if err := r.Rebase(first); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 3))
		upTo := first + rng.Uint64N(uint64(n)+1-first)
		replicateUpTo(t, master, r, first, upTo)
		if rng.IntN(2) == 0 {
			settle(t, r)
		}
		d.Crash(rng)
		r = open(t, d, Options{KeyIndexBucketBits: 4, ConfirmCheckpointedOnly: true})
		if r.CommitLog().LastIndex()+1 < first {
			if err := r.Rebase(first); err != nil {
				t.Fatal(err)
			}
		}
		replicate(t, master, r, r.CommitLog().LastIndex()+1)
		settle(t, r)
		checkKept(t, r, int(first), n)
		r.Close()
	}
}

// replicateUpTo copies master's records from..upTo to replica.
func replicateUpTo(t *testing.T, master, replica *Store, from, upTo uint64) {
	t.Helper()
	for from <= upTo {
		recs, err := master.ReadRecords(from, upTo, 300)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if _, err := replica.AppendReplica(from, rec); err != nil {
				t.Fatalf("AppendReplica(%d): %v", from, err)
			}
			from++
		}
	}
}

// TestQueueGapOutsideRebaseDiverges: in a store never rebased, a replicated record that skips
// queue offsets is a divergence, even on a queue retention emptied.
func TestQueueGapOutsideRebaseDiverges(t *testing.T) {
	master := open(t, simdisk.New(), Options{KeyIndexBucketBits: 4})
	mustCreate(t, master, "T", 2)
	fillTimed(t, master, 1, 4)
	settle(t, master)
	r := open(t, simdisk.New(), Options{KeyIndexBucketBits: 4})
	replicate(t, master, r, 1)
	settle(t, r)
	if res, err := r.Retain(RetentionPolicy{ExpireBeforeMs: 10_000}); err != nil || res.To != 5 {
		t.Fatalf("replica's retention: %+v %v", res, err)
	}
	if r.MinOffset("T", 1) != 2 || r.MaxOffset("T", 1) != 2 {
		t.Fatalf("T/1 holds %d..%d, want empty at 2", r.MinOffset("T", 1), r.MaxOffset("T", 1))
	}
	gap := mustRecord(t, msg("T", 1, "m5", ""), 5, 3)
	if _, err := r.AppendReplica(5, gap); !errors.Is(err, ErrDiverged) {
		t.Fatalf("a record skipping offset 2 of an emptied queue: %v, want ErrDiverged", err)
	}
	if err := r.Rebase(5); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendReplica(5, gap); err != nil {
		t.Fatalf("the same record after a rebase: %v", err)
	}
	if r.MinOffset("T", 1) != 3 {
		t.Fatalf("T/1 min offset %d after the rebased append, want 3", r.MinOffset("T", 1))
	}
}

// TestStartQueuesAt: after a rebase, a queue none of whose records lies past the restart index
// still starts where the master's does (not at its old end, nor at 0 for a new replica), its
// topic created; a queue holding entries is left alone.
func TestStartQueuesAt(t *testing.T) {
	master := open(t, simdisk.New(), Options{KeyIndexBucketBits: 4})
	mustCreate(t, master, "Idle", 1)
	mustCreate(t, master, "T", 1)
	for i := 1; i <= 10; i++ {
		topic := "Idle"
		if i > 5 {
			topic = "T"
		}
		m := msg(topic, 0, fmt.Sprintf("m%d", i), "")
		m.StoreTimestamp = int64(i) * 1000
		mustAppend(t, master, m)
	}
	settle(t, master)
	if res, err := master.Retain(RetentionPolicy{ExpireBeforeMs: 7500}); err != nil || res.To != 8 {
		t.Fatalf("master's retention: %+v %v", res, err)
	}
	r := open(t, simdisk.New(), Options{KeyIndexBucketBits: 4, ConfirmCheckpointedOnly: true})
	if err := r.StartQueuesAt(master.QueueStarts()); err == nil {
		t.Fatal("StartQueuesAt on a store never rebased succeeded")
	}
	if err := r.Rebase(8); err != nil {
		t.Fatal(err)
	}
	if err := r.StartQueuesAt(master.QueueStarts()); err != nil {
		t.Fatal(err)
	}
	replicate(t, master, r, 8)
	settle(t, r)
	for _, c := range []struct {
		topic    string
		min, max int64
	}{{"Idle", 5, 5}, {"T", 2, 5}} {
		if min, max := r.MinOffset(c.topic, 0), r.MaxOffset(c.topic, 0); min != c.min || max != c.max {
			t.Errorf("%s/0 holds %d..%d, want %d..%d (the master's)", c.topic, min, max, c.min, c.max)
		}
	}
	if _, ok := r.Topic("Idle"); !ok {
		t.Error("topic Idle not created")
	}
	if err := r.StartQueuesAt([]QueueStart{{Topic: "T", QueueID: 0, Offset: 0}}); err != nil || r.MinOffset("T", 0) != 2 {
		t.Errorf("a queue holding entries moved: min %d, %v", r.MinOffset("T", 0), err)
	}
}
