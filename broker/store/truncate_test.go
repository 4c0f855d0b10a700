package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// keyMsg is a message on topic/q with body and KEYS body (so the key index holds it).
func keyMsg(topic string, q int32, body string) *codec.Message {
	m := msg(topic, q, body, "")
	m.Properties = codec.EncodeProperties(map[string]string{codec.PropKeys: body})
	return m
}

// truncateFixture: topics A (2 queues) and B (1); ten messages at indexes 1..10:
//
//	index 1  2  3  4  5  6  7  8  9  10
//	      A0 A1 B0 A0 A0 B0 A1 A0 B0 A1
//
// a checkpoint at 4, confirmed up to 8, everything synced.
var fixtureQueues = []queueKey{{"A", 0}, {"A", 1}, {"B", 0}}

func truncateFixture(t *testing.T, d node.Disk) *Store {
	t.Helper()
	s := open(t, d, Options{})
	mustCreate(t, s, "A", 2)
	mustCreate(t, s, "B", 1)
	layout := []queueKey{{"A", 0}, {"A", 1}, {"B", 0}, {"A", 0}, {"A", 0}, {"B", 0}, {"A", 1}, {"A", 0}, {"B", 0}, {"A", 1}}
	for i, k := range layout {
		mustAppend(t, s, keyMsg(k.topic, k.queueID, fmt.Sprintf("m%d", i+1)))
		if i+1 == 4 {
			s.Confirm(4)
			checkpoint(t, s)
		}
	}
	s.Confirm(8)
	syncAll(t, s)
	s.CommitOffset("g", "A", 0, 5) // beyond what A/0 keeps after a deep truncation
	return s
}

// fixtureBodies is what each queue holds when the commit log ends at last, all visible.
func fixtureBodies(last uint64) map[queueKey][]string {
	layout := []queueKey{{"A", 0}, {"A", 1}, {"B", 0}, {"A", 0}, {"A", 0}, {"B", 0}, {"A", 1}, {"A", 0}, {"B", 0}, {"A", 1}}
	out := map[queueKey][]string{}
	for i, k := range layout[:last] {
		out[k] = append(out[k], fmt.Sprintf("m%d", i+1))
	}
	return out
}

func checkQueues(t *testing.T, s *Store, want map[queueKey][]string) {
	t.Helper()
	for _, k := range fixtureQueues {
		if diff := cmp.Diff(want[k], queueBodies(t, s, k.topic, k.queueID)); diff != "" {
			t.Fatalf("queue %v (-want +got):\n%s", k, diff)
		}
	}
}

// TestTruncateAfter: truncation at, above and below the checkpoint and the confirmed index
// leaves exactly the messages up to the cut, visible up to min(confirmed, cut), findable by
// key only up to the cut; consumer offsets are untouched; appends continue at the next index
// with dense queue offsets; and a restart (clean or crash) finds the same.
func TestTruncateAfter(t *testing.T) {
	for _, cut := range []uint64{9, 8, 6, 4, 2, 0} {
		for _, restart := range []string{"close", "crash"} {
			t.Run(fmt.Sprintf("after%d/%s", cut, restart), func(t *testing.T) {
				d := simdisk.New()
				s := truncateFixture(t, d)
				if err := s.TruncateAfter(cut); err != nil {
					t.Fatal(err)
				}
				if got := s.CommitLog().LastIndex(); got != cut {
					t.Fatalf("commit log last %d, want %d", got, cut)
				}
				if got, want := s.Confirmed(), min(cut, 8); got != want {
					t.Fatalf("confirmed %d, want %d", got, want)
				}
				if s.Checkpoint() > cut {
					t.Fatalf("checkpoint %d above the cut %d", s.Checkpoint(), cut)
				}
				if off, _ := s.QueryOffset("g", "A", 0); off != 5 {
					t.Fatalf("consumer offset moved to %d", off)
				}
				s.Confirm(cut)
				checkQueues(t, s, fixtureBodies(cut))
				for i := uint64(1); i <= 10; i++ {
					got := queryBodies(t, s, "A", fmt.Sprintf("m%d", i), 10, 0, 100)
					got = append(got, queryBodies(t, s, "B", fmt.Sprintf("m%d", i), 10, 0, 100)...)
					if want := i <= cut; (len(got) == 1) != want {
						t.Fatalf("key m%d found %v, want found=%v", i, got, want)
					}
				}
				// Appending goes on from the cut, with each queue's next offset.
				want := fixtureBodies(cut)
				for i, k := range []queueKey{{"A", 0}, {"B", 0}, {"A", 1}} {
					body := fmt.Sprintf("n%d", i)
					r := mustAppend(t, s, keyMsg(k.topic, k.queueID, body))
					if r.Index != cut+uint64(i)+1 || r.QueueOffset != int64(len(want[k])) {
						t.Fatalf("append after the cut went to index %d offset %d", r.Index, r.QueueOffset)
					}
					want[k] = append(want[k], body)
				}
				s.Confirm(cut + 3)
				syncAll(t, s)
				checkQueues(t, s, want)

				if restart == "close" {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
				} else {
					d.Crash(rand.New(rand.NewPCG(cut, 1)))
				}
				s = open(t, d, Options{})
				defer s.Close()
				checkQueues(t, s, want)
				if got := queryBodies(t, s, "A", "n0", 10, 0, 100); len(got) != 1 {
					t.Fatalf("key n0 after restart: %v", got)
				}
			})
		}
	}
}

// TestTruncateAfterBounds: at or above the last index nothing happens; below the first index
// minus one is an error that changes nothing.
func TestTruncateAfterBounds(t *testing.T) {
	d := simdisk.New()
	s := truncateFixture(t, d)
	for _, cut := range []uint64{10, 11, 1 << 40} {
		if err := s.TruncateAfter(cut); err != nil || s.CommitLog().LastIndex() != 10 || s.Confirmed() != 8 {
			t.Fatalf("TruncateAfter(%d) = %v; last %d confirmed %d", cut, err, s.CommitLog().LastIndex(), s.Confirmed())
		}
	}
	if err := s.CommitLog().TruncateFront(4); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateAfter(1); err == nil {
		t.Fatal("truncating below the commit log's first index succeeded")
	}
	if err := s.TruncateAfter(3); err != nil || s.CommitLog().LastIndex() != 3 {
		t.Fatalf("emptying the log: %v, last %d", err, s.CommitLog().LastIndex())
	}
}

// TestTruncateAfterUnconfirmed: unconfirmed messages at or below the cut stay unconfirmed and
// become visible with Confirm, in order, per queue.
func TestTruncateAfterUnconfirmed(t *testing.T) {
	s3 := open(t, simdisk.New(), Options{})
	mustCreate(t, s3, "A", 2)
	mustCreate(t, s3, "B", 1)
	for i := 1; i <= 6; i++ {
		mustAppend(t, s3, keyMsg("A", 0, fmt.Sprintf("m%d", i)))
	}
	s3.Confirm(2)
	if err := s3.TruncateAfter(4); err != nil {
		t.Fatal(err)
	}
	if got := queueBodies(t, s3, "A", 0); !cmp.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("visible before Confirm: %v", got)
	}
	s3.Confirm(4)
	if got := queueBodies(t, s3, "A", 0); !cmp.Equal(got, []string{"m1", "m2", "m3", "m4"}) {
		t.Fatalf("visible after Confirm(4): %v", got)
	}
}

// budgetDisk lets through a fixed number of mutations (metadata writes, log appends and
// truncations, log removals), then fails every further one with ErrIO: the process "dies"
// at that point and the test crashes the disk underneath.
type budgetDisk struct {
	*simdisk.Disk
	left int
}

func (d *budgetDisk) spend() error {
	if d.left <= 0 {
		return node.ErrIO
	}
	d.left--
	return nil
}

func (d *budgetDisk) OpenLog(name string) (node.Log, error) {
	l, err := d.Disk.OpenLog(name)
	if err != nil {
		return nil, err
	}
	return &budgetLog{Log: l, d: d}, nil
}

func (d *budgetDisk) WriteFile(name string, data []byte) error {
	if err := d.spend(); err != nil {
		return err
	}
	return d.Disk.WriteFile(name, data)
}

func (d *budgetDisk) RemoveLog(name string) error {
	if err := d.spend(); err != nil {
		return err
	}
	return d.Disk.RemoveLog(name)
}

type budgetLog struct {
	node.Log
	d *budgetDisk
}

func (l *budgetLog) Append(data []byte) (uint64, error) {
	if err := l.d.spend(); err != nil {
		return 0, err
	}
	return l.Log.Append(data)
}

func (l *budgetLog) TruncateBack(index uint64) error {
	if err := l.d.spend(); err != nil {
		return err
	}
	return l.Log.TruncateBack(index)
}

// TestTruncateAfterCrashAtEveryStep: a crash after any number of the truncation's disk
// mutations leaves a store that recovers to a consistent state (the queues are the
// projection of the commit log that survived, which is the whole log or the cut one), and
// truncating again then gives the same result as an uninterrupted truncation.
func TestTruncateAfterCrashAtEveryStep(t *testing.T) {
	for _, c := range []struct {
		name         string
		cut          uint64
		checkpointAt uint64
	}{
		{"below the checkpoint", 3, 8}, // the checkpoint is lowered
		{"above the checkpoint", 7, 4}, // entries 5..7 are rebuilt
	} {
		t.Run(c.name, func(t *testing.T) { testTruncateCrashes(t, c.cut, c.checkpointAt) })
	}
}

func testTruncateCrashes(t *testing.T, cut, checkpointAt uint64) {
	for budget := 0; ; budget++ {
		sd := simdisk.New()
		fd := &budgetDisk{Disk: sd, left: 1 << 30}
		s := truncateFixture(t, fd)
		if checkpointAt == 8 {
			checkpoint(t, s)
		}
		if s.Checkpoint() != checkpointAt {
			t.Fatalf("checkpoint at %d", s.Checkpoint())
		}
		for _, k := range fixtureQueues {
			if err := queueLog(t, s, k.topic, k.queueID).Sync(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.keys.Log().Sync(); err != nil {
			t.Fatal(err)
		}
		fd.left = budget
		err := s.TruncateAfter(cut)
		sd.Crash(rand.New(rand.NewPCG(uint64(budget), 7)))

		s = open(t, sd, Options{})
		last := s.CommitLog().LastIndex()
		if last != 10 && last != cut {
			t.Fatalf("budget %d: commit log ends at %d after the crash, want 10 or %d", budget, last, cut)
		}
		checkQueues(t, s, fixtureBodies(last))
		if err := s.TruncateAfter(cut); err != nil {
			t.Fatalf("budget %d: truncating again: %v", budget, err)
		}
		s.Confirm(cut)
		checkQueues(t, s, fixtureBodies(cut))
		for i := uint64(1); i <= 10; i++ {
			got := len(queryBodies(t, s, "A", fmt.Sprintf("m%d", i), 10, 0, 100)) +
				len(queryBodies(t, s, "B", fmt.Sprintf("m%d", i), 10, 0, 100))
			if want := i <= cut; (got == 1) != want {
				t.Fatalf("budget %d: key m%d found %d times", budget, i, got)
			}
		}
		if err == nil {
			if budget == 0 {
				t.Fatal("a truncation that writes nothing succeeded")
			}
			t.Logf("%d crash points", budget)
			return // every step had its budget: all crash points covered
		}
	}
}

// replicate copies every record of master from index from on to replica with AppendReplica.
func replicate(t tb, master, replica *Store, from uint64) {
	t.Helper()
	for {
		recs, err := master.ReadRecords(from, master.CommitLog().LastIndex(), 300)
		if err != nil {
			t.Fatalf("ReadRecords(%d): %v", from, err)
		}
		if len(recs) == 0 {
			return
		}
		for _, rec := range recs {
			if _, err := replica.AppendReplica(from, rec); err != nil {
				t.Fatalf("AppendReplica(%d): %v", from, err)
			}
			from++
		}
	}
}

// TestAppendReplica: a replica fed the master's records holds the same messages at the same
// indexes and queue offsets, creates the topics it meets, shows them only once confirmed,
// finds them by key, and keeps them across a restart. Records that do not continue its log
// are refused with ErrDiverged, garbage with an error, and neither changes anything.
func TestAppendReplica(t *testing.T) {
	master := truncateFixture(t, simdisk.New())
	if err := master.CreateTopic(TopicConfig{Name: "C", ReadQueueNums: 8, WriteQueueNums: 8, Perm: PermReadWrite}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, master, keyMsg("C", 5, "c0")) // index 11
	d := simdisk.New()
	replica := open(t, d, Options{})
	replicate(t, replica, replica, 1) // nothing to copy from an empty log
	replicate(t, master, replica, 1)
	if got := replica.CommitLog().LastIndex(); got != 11 {
		t.Fatalf("replica ends at %d", got)
	}
	if replica.MaxOffset("A", 0) != 0 {
		t.Fatal("replicated messages visible before Confirm")
	}
	replica.Confirm(11)
	want := fixtureBodies(10)
	checkQueues(t, replica, want)
	if got := queueBodies(t, replica, "C", 5); !cmp.Equal(got, []string{"c0"}) {
		t.Fatalf("C/5 holds %v", got)
	}
	if tc, ok := replica.Topic("C"); !ok || tc.WriteQueueNums != 6 || tc.ReadQueueNums != 6 {
		t.Fatalf("topic C on the replica: %+v %v", tc, ok)
	}
	if got := queryBodies(t, replica, "B", "m9", 10, 0, 100); !cmp.Equal(got, []string{"m9"}) {
		t.Fatalf("key m9 on the replica: %v", got)
	}

	rec, err := master.ReadRecords(11, 11, 1)
	if err != nil || len(rec) != 1 {
		t.Fatal(err)
	}
	mustAppend(t, master, keyMsg("A", 1, "x")) // index 12, A/1 offset 3
	next, _ := master.ReadRecords(12, 12, 1)
	wrongOffset := mustRecord(t, keyMsg("A", 1, "y"), 12, 2)
	for name, c := range map[string]struct {
		index uint64
		rec   []byte
		want  error
	}{
		"index already held":    {11, rec[0], ErrDiverged},
		"index beyond the next": {13, next[0], ErrDiverged},
		"record for another":    {12, rec[0], nil},
		"queue offset mismatch": {12, wrongOffset, ErrDiverged},
		"garbage":               {12, []byte("not a record"), nil},
		"trailing bytes":        {12, append(append([]byte{}, next[0]...), 0), nil},
		"bad topic":             {12, mustRecord(t, keyMsg("A/../x", 0, "z"), 12, 0), nil},
	} {
		_, err := replica.AppendReplica(c.index, c.rec)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: AppendReplica = %v, want an error (%v)", name, err, c.want)
		}
		if replica.CommitLog().LastIndex() != 11 {
			t.Fatalf("%s: the refused record was appended", name)
		}
	}
	if _, err := replica.AppendReplica(12, next[0]); err != nil {
		t.Fatal(err)
	}
	replica.Confirm(12)
	want[queueKey{"A", 1}] = append(want[queueKey{"A", 1}], "x")
	checkQueues(t, replica, want)
	syncAll(t, replica)
	if err := replica.Close(); err != nil {
		t.Fatal(err)
	}
	replica = open(t, d, Options{})
	defer replica.Close()
	checkQueues(t, replica, want)
}

// mustRecord encodes m as stored at index with queue offset off.
func mustRecord(t *testing.T, m *codec.Message, index uint64, off int64) []byte {
	t.Helper()
	m.PhysicalOffset, m.QueueOffset = int64(index), off
	rec, err := codec.AppendRecord(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestReplicaFollowsTruncations (rapid): a replica follows a master through random appends,
// master-side truncations (a failover that discarded the master's tail) and replica crashes.
// Whenever it has caught up, after truncating to the longest prefix it shares with the master,
// the replica's commit log and queues equal the master's.
func TestReplicaFollowsTruncations(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		md := simdisk.New()
		master := open(t, md, Options{})
		rd := simdisk.New()
		replica := open(t, rd, Options{})
		mustCreate(t, master, "A", 2)
		mustCreate(t, master, "B", 1)
		seq := 0
		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for step := 0; step < steps; step++ {
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0, 1: // the master appends
				for n := rapid.IntRange(1, 5).Draw(t, "n"); n > 0; n-- {
					k := rapid.SampledFrom(fixtureQueues).Draw(t, "queue")
					seq++
					mustAppend(t, master, keyMsg(k.topic, k.queueID, fmt.Sprintf("m%d", seq)))
				}
				master.Confirm(master.CommitLog().LastIndex())
				if err := master.CommitLog().Sync(); err != nil {
					t.Fatal(err)
				}
			case 2: // the master loses its tail (another replica took over with less)
				last := master.CommitLog().LastIndex()
				cut := rapid.Uint64Range(0, last).Draw(t, "cut")
				if err := master.TruncateAfter(cut); err != nil {
					t.Fatal(err)
				}
				master.Confirm(cut)
			case 3: // the replica crashes
				rd.Crash(rand.New(rand.NewPCG(uint64(step), 3)))
				replica = open(t, rd, Options{})
			case 4: // the replica catches up: truncate to the shared prefix, then fetch
				shared := uint64(0)
				for i := uint64(1); i <= min(replica.CommitLog().LastIndex(), master.CommitLog().LastIndex()); i++ {
					a, _ := replica.CommitLog().Read(i)
					b, _ := master.CommitLog().Read(i)
					if string(a) != string(b) {
						break
					}
					shared = i
				}
				if err := replica.TruncateAfter(shared); err != nil {
					t.Fatal(err)
				}
				replicate(t, master, replica, shared+1)
				replica.Confirm(replica.CommitLog().LastIndex())
				if err := replica.CommitLog().Sync(); err != nil {
					t.Fatal(err)
				}
				if rapid.Bool().Draw(t, "checkpoint") {
					logs, upTo := replica.BeginCheckpoint()
					for _, l := range logs {
						l.Sync()
					}
					if err := replica.FinishCheckpoint(upTo); err != nil {
						t.Fatal(err)
					}
				}
				if replica.CommitLog().LastIndex() != master.CommitLog().LastIndex() {
					t.Fatalf("replica ends at %d, master at %d", replica.CommitLog().LastIndex(), master.CommitLog().LastIndex())
				}
				for _, k := range fixtureQueues {
					if diff := cmp.Diff(queueBodies(t, master, k.topic, k.queueID), queueBodies(t, replica, k.topic, k.queueID)); diff != "" {
						t.Fatalf("queue %v differs (-master +replica):\n%s", k, diff)
					}
				}
			}
		}
	})
}

// TestConfirmCheckpointedOnly: a replica's store recovers with only the checkpointed messages
// visible; the rest (confirmed or not before the restart) wait for Confirm, in order.
func TestConfirmCheckpointedOnly(t *testing.T) {
	d := simdisk.New()
	s := truncateFixture(t, d) // checkpoint 4, confirmed 8, last 10
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, d, Options{ConfirmCheckpointedOnly: true})
	if s.Confirmed() != 4 || s.CommitLog().LastIndex() != 10 {
		t.Fatalf("confirmed %d, last %d", s.Confirmed(), s.CommitLog().LastIndex())
	}
	checkQueues(t, s, fixtureBodies(4))
	s.Confirm(7)
	checkQueues(t, s, fixtureBodies(7))
	mustAppend(t, s, keyMsg("B", 0, "m11"))
	s.Confirm(11)
	want := fixtureBodies(10)
	want[queueKey{"B", 0}] = append(want[queueKey{"B", 0}], "m11")
	checkQueues(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, d, Options{})
	defer s.Close()
	if s.Confirmed() != 11 {
		t.Fatalf("without the option every recovered message is confirmed; confirmed %d", s.Confirmed())
	}
}

// TestTruncateAfterTransientFault: a disk error after any number of the truncation's disk
// mutations, which then clears (no crash: the process lives on), leaves a store that Reopen
// recovers in place; truncating again then gives exactly what an uninterrupted truncation
// gives, and the store serves reads and appends again. Without Reopen the failed store would
// refuse everything for good.
func TestTruncateAfterTransientFault(t *testing.T) {
	for _, c := range []struct {
		name         string
		cut          uint64
		checkpointAt uint64
	}{
		{"below the checkpoint", 3, 8},
		{"above the checkpoint", 7, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			for budget := 0; ; budget++ {
				sd := simdisk.New()
				fd := &budgetDisk{Disk: sd, left: 1 << 30}
				s := truncateFixture(t, fd)
				if c.checkpointAt == 8 {
					checkpoint(t, s)
				}
				fd.left = budget
				err := s.TruncateAfter(c.cut)
				fd.left = 1 << 30 // the fault clears
				if err != nil && s.Failed() {
					if _, rerr := s.ReadRecords(1, 10, 1<<20); rerr == nil {
						t.Fatalf("budget %d: a failed store serves reads", budget)
					}
					if rerr := s.Reopen(); rerr != nil {
						t.Fatalf("budget %d: reopen after the fault cleared: %v", budget, rerr)
					}
					if s.Failed() {
						t.Fatalf("budget %d: still failed after Reopen", budget)
					}
					if last := s.CommitLog().LastIndex(); last != 10 && last != c.cut {
						t.Fatalf("budget %d: commit log ends at %d after reopen", budget, last)
					}
				}
				if err := s.TruncateAfter(c.cut); err != nil {
					t.Fatalf("budget %d: truncating again: %v", budget, err)
				}
				s.Confirm(c.cut)
				checkQueues(t, s, fixtureBodies(c.cut))
				recs, rerr := s.ReadRecords(1, 10, 1<<20)
				if rerr != nil || uint64(len(recs)) != c.cut {
					t.Fatalf("budget %d: read %d records (%v), want %d", budget, len(recs), rerr, c.cut)
				}
				for i := uint64(1); i <= 10; i++ {
					got := len(queryBodies(t, s, "A", fmt.Sprintf("m%d", i), 10, 0, 100)) +
						len(queryBodies(t, s, "B", fmt.Sprintf("m%d", i), 10, 0, 100))
					if want := i <= c.cut; (got == 1) != want {
						t.Fatalf("budget %d: key m%d found %d times", budget, i, got)
					}
				}
				r := mustAppend(t, s, keyMsg("A", 0, "after"))
				if r.Index != c.cut+1 {
					t.Fatalf("budget %d: append after the retry went to index %d", budget, r.Index)
				}
				s.Close()
				if err == nil {
					t.Logf("%d fault points", budget)
					return
				}
			}
		})
	}
}

// TestFailedReopenLeavesAFailedStore: when Reopen fails because the disk still fails, the
// store stays failed and every call that the broker makes on a failed store refuses or does
// nothing, rather than reaching the logs Reopen closed: the broker's checkpoint timer keeps
// calling BeginCheckpoint (which dereferenced the key index Reopen had dropped: a nil-pointer
// panic in the simulator's groups topology), a slave keeps calling Reopen, and the commit log
// is asked for its end, until the disk heals.
func TestFailedReopenLeavesAFailedStore(t *testing.T) {
	var s *Store
	var fd *budgetDisk
	for cut := 0; s == nil || !s.Failed(); cut++ {
		if cut > 100 {
			t.Fatal("no disk fault during the truncation fails the store")
		}
		fd = &budgetDisk{Disk: simdisk.New(), left: 1 << 30}
		s = truncateFixture(t, fd) // key index entries added since the checkpoint at 4
		fd.left = cut
		if err := s.TruncateAfter(3); err == nil {
			t.Fatal("the truncation never failed")
		}
	}
	reopened := false
	for budget := 0; budget < 1000 && !reopened; budget++ {
		fd.left = budget
		if err := s.Reopen(); err != nil {
			if !s.Failed() {
				t.Fatalf("budget %d: Reopen failed (%v) but the store does not say it failed", budget, err)
			}
			if cl := s.CommitLog(); cl == nil {
				t.Fatalf("budget %d: a failed store has no commit log handle (want a closed one)", budget)
			} else if _, err := cl.Read(cl.LastIndex()); err == nil {
				t.Fatalf("budget %d: a failed store's commit log serves reads (want a closed handle)", budget)
			}
			if logs, _ := s.BeginCheckpoint(); len(logs) != 0 {
				t.Fatalf("budget %d: a failed store hands out %d logs to checkpoint", budget, len(logs))
			}
			if err := s.FinishCheckpoint(0); err == nil {
				t.Fatalf("budget %d: a failed store finished a checkpoint", budget)
			}
			if _, err := s.ReadRecords(1, 10, 1<<20); err == nil {
				t.Fatalf("budget %d: a failed store serves reads", budget)
			}
			continue
		}
		reopened = true
	}
	if !reopened {
		t.Fatal("Reopen never succeeded")
	}
	fd.left = 1 << 30
	if err := s.TruncateAfter(3); err != nil {
		t.Fatalf("truncating after the reopen: %v", err)
	}
	checkpoint(t, s)
}

// A replica whose replay met a record it cannot read, of a queue with no later record in the
// replay, keeps it unplaced; the master's next record of that queue fills the gap with it (so
// replication goes on), and checkpoints stay below it until then.
func TestAppendReplicaFillsUnreadableGap(t *testing.T) {
	master := open(t, simdisk.New(), Options{})
	mustCreate(t, master, "T", 2)
	mustAppend(t, master, msg("T", 0, "a0", "")) // 1
	mustAppend(t, master, msg("T", 0, "a1", "")) // 2: flipped on the replica
	mustAppend(t, master, msg("T", 1, "b0", "")) // 3
	mustAppend(t, master, msg("T", 0, "a2", "")) // 4: replicated after the flip
	mustAppend(t, master, msg("T", 1, "b1", "")) // 5
	master.Confirm(5)
	d := simdisk.New()
	replica := open(t, d, Options{ConfirmCheckpointedOnly: true})
	copyRecords := func(from, to uint64) {
		recs, err := master.ReadRecords(from, to, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range recs {
			if _, err := replica.AppendReplica(from+uint64(i), rec); err != nil {
				t.Fatalf("AppendReplica(%d): %v", from+uint64(i), err)
			}
		}
	}
	copyRecords(1, 3)
	if err := d.SyncLog(commitLogName, 3); err != nil {
		t.Fatal(err)
	}
	if err := d.FlipByte(commitLogName, 2); err != nil {
		t.Fatal(err)
	}
	d.CrashWith(func(string, uint64) (uint64, bool) { return 0, false })
	replica = open(t, d, Options{ConfirmCheckpointedOnly: true})
	if _, upTo := replica.BeginCheckpoint(); upTo != 0 {
		t.Fatalf("checkpoint up to %d over an unplaced unreadable record", upTo)
	}
	copyRecords(4, 5)
	replica.Confirm(5)
	if got := queueWithHoles(t, replica, "T", 0); !cmp.Equal(got, []string{"a0", "", "a2"}) {
		t.Fatalf("T/0 holds %q, want a0, a hole, a2", got)
	}
	if _, upTo := replica.BeginCheckpoint(); upTo != 5 {
		t.Fatalf("checkpoint up to %d once the hole is placed", upTo)
	}
}
