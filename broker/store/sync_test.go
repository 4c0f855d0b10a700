package store

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// SyncTopics makes the master's topics the store's: new and changed ones taken, local ones the
// master lacks dropped unless the store holds messages of them, tombstones adopted once the
// log reaches them (with the deleted topic's queues and offsets); one write, on disk after a
// reopen.
func TestSyncTopicsMergeRules(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	for _, name := range []string{"A", "B", "C", "F"} {
		mustCreate(t, s, name, 2)
	}
	mustAppend(t, s, msg("A", 0, "a0", ""))
	mustAppend(t, s, msg("C", 0, "c0", ""))
	mustAppend(t, s, msg("F", 1, "f0", ""))
	s.Confirm(3)
	s.CommitOffset("G", "C", 0, 1)

	a8 := TopicConfig{Name: "A", ReadQueueNums: 8, WriteQueueNums: 8, Perm: PermRead}
	dd := TopicConfig{Name: "D", ReadQueueNums: 1, WriteQueueNums: 1, Perm: PermReadWrite}
	res, err := s.SyncTopics([]TopicConfig{a8, dd}, map[string]uint64{"C": 2, "E": 10})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !slices.Equal(res.Deleted, []string{"C"}) || !slices.Equal(res.Deferred, []string{"E"}) ||
		!slices.Equal(res.Kept, []string{"F"}) || !slices.Equal(res.Removed, []string{"cq/C/0"}) {
		t.Fatalf("sync result %+v", res)
	}
	want := func(s *Store) {
		t.Helper()
		var names []string
		for _, tc := range s.Topics() {
			names = append(names, tc.Name)
		}
		if !slices.Equal(names, []string{"A", "D", "F"}) {
			t.Fatalf("topics %v, want A D F", names)
		}
		if got, _ := s.Topic("A"); got != a8 {
			t.Fatalf("A is %+v, want the master's %+v", got, a8)
		}
		if diff := cmp.Diff(map[string]uint64{"C": 2}, s.DeletedTopics()); diff != "" {
			t.Fatalf("tombstones (-want +got):\n%s", diff)
		}
		if _, ok := s.QueryOffset("G", "C", 0); ok {
			t.Fatal("the deleted topic's offset survived")
		}
		if got := queueBodies(t, s, "A", 0); !slices.Equal(got, []string{"a0"}) {
			t.Fatalf("A/0 holds %v", got)
		}
		if got := queueBodies(t, s, "C", 0); len(got) != 0 {
			t.Fatalf("deleted C/0 still serves %v", got)
		}
	}
	want(s)
	if err := s.FlushOffsets(); err != nil {
		t.Fatal(err)
	}
	if res, err := s.SyncTopics([]TopicConfig{a8, dd}, map[string]uint64{"C": 2, "E": 10}); err != nil || res.Changed {
		t.Fatalf("the same sync again: %+v %v, want no change", res, err)
	}
	if _, err := s.SyncTopics([]TopicConfig{a8, {Name: "bad name", ReadQueueNums: 1, WriteQueueNums: 1}}, nil); err == nil {
		t.Fatal("an invalid topic was accepted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want(open(t, d, Options{}))
}

// SyncOffsets takes the master's values, lower ones too, clamped to the local queue's
// confirmed end; offsets the master does not list stay.
func TestSyncOffsetsClampsToTheLocalQueue(t *testing.T) {
	s := open(t, simdisk.New(), Options{})
	mustCreate(t, s, "A", 2)
	mustAppend(t, s, msg("A", 0, "a0", ""))
	mustAppend(t, s, msg("A", 0, "a1", ""))
	mustAppend(t, s, msg("A", 0, "a2", ""))
	s.Confirm(2) // A/0's confirmed end is 2
	s.CommitOffset("G", "A", 1, 9)
	s.CommitOffset("H", "A", 0, 1)
	res := s.SyncOffsets([]Offset{
		{"G", "A", 0, 2}, {"G", "A", 1, 0}, {"K", "A", 0, 3}, {"K", "Z", 0, 4},
		{"", "A", 0, 1}, {"G", "bad name", 0, 1}, {"G", "A", -1, 1}, {"G", "A", 0, -1},
	})
	if res != (OffsetsSync{Changed: 4, Clamped: 2, Skipped: 4}) {
		t.Fatalf("sync result %+v", res)
	}
	want := []Offset{{"G", "A", 0, 2}, {"G", "A", 1, 0}, {"H", "A", 0, 1}, {"K", "A", 0, 2}, {"K", "Z", 0, 0}}
	if diff := cmp.Diff(want, s.Offsets()); diff != "" {
		t.Fatalf("offsets (-want +got):\n%s", diff)
	}

	// A clamp does not lower a local offset the master has passed (a restarted replica
	// confirms only up to its checkpoint at first); the master's clamped values are raised to
	// once the queue has grown.
	s.CommitOffset("L", "A", 0, 3)
	s.SyncOffsets([]Offset{{"L", "A", 0, 9}, {"K", "A", 0, 9}})
	if off, _ := s.QueryOffset("L", "A", 0); off != 3 {
		t.Fatalf("L/A/0 = %d after the master's 9 was clamped to 2, want its own 3 kept", off)
	}
	if off, _ := s.QueryOffset("K", "A", 0); off != 2 {
		t.Fatalf("K/A/0 = %d, want 2 (clamped)", off)
	}
	if n := s.RaiseClampedOffsets(); n != 0 {
		t.Fatalf("raised %d offsets with nothing newly confirmed", n)
	}
	s.Confirm(3)
	if n := s.RaiseClampedOffsets(); n != 1 {
		t.Fatalf("raised %d offsets, want K's", n)
	}
	if off, _ := s.QueryOffset("K", "A", 0); off != 3 {
		t.Fatalf("K/A/0 = %d once A/0 is confirmed to 3, want 3", off)
	}
	s.SyncOffsets([]Offset{{"K", "A", 0, 1}}) // the master moved it back: it is the authority
	if n := s.RaiseClampedOffsets(); n != 0 {
		t.Fatal("an offset the master set below the queue end was raised again")
	}
	if off, _ := s.QueryOffset("K", "A", 0); off != 1 {
		t.Fatalf("K/A/0 = %d, want the master's 1", off)
	}
}

// The master's offsets SyncOffsets clamped survive a restart: a replica that restarts between
// the round and its election still raises them when it becomes master, rather than answer
// consumers below what it copied.
func TestClampedOffsetsSurviveARestart(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	mustCreate(t, s, "A", 1)
	for _, id := range []string{"a0", "a1", "a2"} {
		mustAppend(t, s, msg("A", 0, id, ""))
	}
	s.Confirm(2) // A/0's confirmed end is 2; the master's consumers are at 3
	s.SyncOffsets([]Offset{{"G", "A", 0, 3}})
	if err := s.FlushOffsets(); err != nil {
		t.Fatal(err)
	}
	if off, _ := s.QueryOffset("G", "A", 0); off != 2 {
		t.Fatalf("G/A/0 = %d, want the master's 3 clamped to 2", off)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, d, Options{})
	s.Confirm(3) // elected: the log is confirmed whole
	if n := s.RaiseClampedOffsets(); n != 1 {
		t.Fatalf("raised %d offsets after the restart, want the clamped one", n)
	}
	if off, _ := s.QueryOffset("G", "A", 0); off != 3 {
		t.Fatalf("G/A/0 = %d after the restart and the raise, want the master's 3", off)
	}
	if err := s.FlushOffsets(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, d, Options{})
	s.Confirm(3)
	if n := s.RaiseClampedOffsets(); n != 0 {
		t.Fatalf("raised %d offsets again after a second restart: the first raise was forgotten", n)
	}
}
