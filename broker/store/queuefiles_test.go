package store

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// processFiles counts the descriptors this process holds (-1 where /proc cannot tell).
func processFiles() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// TestManyQueuesOnProductionDisk runs a store on real files with a budget of 4 open
// consume-queue logs and 300 queues: appends round-robin over all of them, a checkpoint (its
// logs are reopened and closed again one by one), a process crash (the store is dropped
// without closing: what it had not written is lost, as when the process dies) and recovery,
// and forced retention over queues that are mostly closed. The process's descriptors stay
// bounded throughout, and every queue keeps its messages at their offsets.
func TestManyQueuesOnProductionDisk(t *testing.T) {
	const queues, budget = 300, 4
	dir := t.TempDir()
	opts := diskfile.Options{SegmentBytes: 4096}
	d, err := diskfile.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	baseFiles := processFiles()
	s := open(t, d, Options{MaxOpenQueueFiles: budget})
	mustCreate(t, s, "T", queues)
	want := make([][]string, queues)
	appendRound := func(round int) {
		for q := range queues {
			body := fmt.Sprintf("r%d-q%d", round, q)
			mustAppend(t, s, msg("T", int32(q), body, ""))
			want[q] = append(want[q], body)
		}
		if err := s.CommitLog().Sync(); err != nil {
			t.Fatal(err)
		}
		s.Confirm(s.CommitLog().LastIndex())
	}
	maxFiles := 0
	noteFiles := func() {
		if n := processFiles(); n > maxFiles {
			maxFiles = n
		}
		if open, b, _, _ := s.OpenQueueFiles(); open > b {
			t.Fatalf("%d consume-queue logs open, budget %d", open, b)
		}
	}
	for round := range 3 {
		appendRound(round)
		noteFiles()
	}
	checkpoint(t, s)
	noteFiles()
	if s.Checkpoint() != s.Confirmed() {
		t.Fatalf("checkpoint %d, confirmed %d", s.Checkpoint(), s.Confirmed())
	}
	appendRound(3) // after the checkpoint: recovery replays these
	noteFiles()
	_, _, opens, closes := s.OpenQueueFiles()
	t.Logf("descriptors: %d at start, at most %d with %d queues (budget %d); %d opens, %d closes",
		baseFiles, maxFiles, queues, budget, opens, closes)
	if baseFiles >= 0 && maxFiles-baseFiles > 3*budget+16 {
		t.Errorf("the store held up to %d descriptors more than at start, with a budget of %d logs", maxFiles-baseFiles, budget)
	}
	if closes < queues {
		t.Errorf("only %d closes for %d queues and a budget of %d", closes, queues, budget)
	}

	// A process crash: the store is dropped unclosed; a new disk opens the same files.
	d2, err := diskfile.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s = open(t, d2, Options{MaxOpenQueueFiles: budget})
	defer s.Close()
	if open, _, _, _ := s.OpenQueueFiles(); open > budget {
		t.Fatalf("recovery left %d consume-queue logs open, budget %d", open, budget)
	}
	for q := range queues {
		if diff := cmp.Diff(want[q], queueBodies(t, s, "T", int32(q))); diff != "" {
			t.Fatalf("T/%d after the crash (-want +got):\n%s", q, diff)
		}
	}

	// Retention over mostly closed queues: the oldest segment goes, and the min offsets of the
	// queues whose first messages were in it move up.
	checkpoint(t, s)
	res, err := s.Retain(RetentionPolicy{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed() == 0 {
		t.Fatal("forced retention removed nothing")
	}
	moved := 0
	for q := range queues {
		min := s.MinOffset("T", int32(q))
		got := queueBodiesFrom(t, s, "T", int32(q))
		if diff := cmp.Diff(want[q][min:], got); diff != "" {
			t.Fatalf("T/%d after retention from offset %d (-want +got):\n%s", q, min, diff)
		}
		if min > 0 {
			moved++
		}
	}
	if moved == 0 {
		t.Errorf("retention removed commit-log entries %d..%d but no queue's min offset moved", res.From, res.To-1)
	}
	if open, b, _, _ := s.OpenQueueFiles(); open > b {
		t.Fatalf("%d consume-queue logs open, budget %d", open, b)
	}
}

// TestReopenRebuildsAFlippedTail: a queue's last entry is corrupted while the queue is closed;
// reopening finds it failing its checksum and the store rebuilds it from the commit log.
func TestReopenRebuildsAFlippedTail(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{MaxOpenQueueFiles: 1})
	mustCreate(t, s, "T", 2)
	mustAppend(t, s, msg("T", 0, "a", ""))
	mustAppend(t, s, msg("T", 0, "b", ""))
	mustAppend(t, s, msg("T", 1, "c", "")) // closes T/0
	if err := s.CommitLog().Sync(); err != nil {
		t.Fatal(err)
	}
	s.Confirm(3)
	checkpoint(t, s)
	if q := s.queues[queueKey{"T", 0}]; q.log != nil {
		t.Fatal("T/0 is open; the budget of 1 should have closed it")
	}
	if err := d.FlipByte(queueLogName("T", 0), 2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, queueBodies(t, s, "T", 0)); diff != "" {
		t.Fatalf("T/0 after reopening (-want +got):\n%s", diff)
	}
	if s.usable() != nil {
		t.Fatalf("store failed: %v", s.usable())
	}
	if !slices.Contains(s.dirtyQueues(), s.queues[queueKey{"T", 0}]) {
		t.Error("the rebuilt entry is not marked for the next checkpoint")
	}
}

// heapWith runs build, returns the live heap (after collections) while the store it built
// is reachable, then closes the store.
func heapWith(t *testing.T, build func() *Store) uint64 {
	s := build()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return ms.HeapAlloc
}

// TestIdleQueueMemory measures what an idle (closed) consume queue costs in memory: two
// stores on real files hold the same number of messages, one in a single queue and one with
// a message in each of n queues, all but the budget's worth closed; the difference in live
// heap, divided by n, is the cost of one idle queue (its record, its map entry, its cached
// bounds), measured with every queue closed. docs/architecture.md quotes it.
func TestIdleQueueMemory(t *testing.T) {
	const n, budget = 4000, 16
	build := func(queues int) func() *Store {
		return func() *Store {
			dir := t.TempDir()
			if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
				if d, err := os.MkdirTemp("/dev/shm", "sluice-store-test-"); err == nil {
					t.Cleanup(func() { os.RemoveAll(d) })
					dir = d
				}
			}
			d, err := diskfile.Open(dir, diskfile.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s := open(t, d, Options{MaxOpenQueueFiles: budget})
			for i := range n / MaxQueueNums {
				mustCreate(t, s, fmt.Sprintf("Idle%d", i), MaxQueueNums)
			}
			for i := range n {
				q := i % queues
				mustAppend(t, s, msg(fmt.Sprintf("Idle%d", q/MaxQueueNums), int32(q%MaxQueueNums), "m", ""))
			}
			if err := s.CommitLog().Sync(); err != nil {
				t.Fatal(err)
			}
			s.Confirm(s.CommitLog().LastIndex())
			checkpoint(t, s)
			for s.files.tail != nil { // idle: every queue closed
				if err := s.files.close(s.files.tail); err != nil {
					t.Fatal(err)
				}
			}
			return s
		}
	}
	heapWith(t, build(1)) // warm up: the first store's one-time allocations are not a queue's
	one := heapWith(t, build(1))
	many := heapWith(t, build(n-n%MaxQueueNums))
	queues := n - n%MaxQueueNums
	per := (int64(many) - int64(one)) / int64(queues-1)
	t.Logf("live heap: %d bytes with 1 queue, %d with %d queues, all closed: %d bytes per idle queue",
		one, many, queues, per)
	if per < 64 || per > 1024 {
		t.Errorf("an idle consume queue costs %d bytes of memory; expected a few hundred (a record and a map entry)", per)
	}
}
