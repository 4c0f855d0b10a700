package store

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// appendConfirmed appends bodies to topic queue q and confirms them.
func appendConfirmed(t *testing.T, s *Store, topic string, q int32, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		mustAppend(t, s, msg(topic, q, b, ""))
	}
	s.Confirm(s.CommitLog().LastIndex())
}

func syncAll(t *testing.T, s *Store) {
	t.Helper()
	if err := s.CommitLog().Sync(); err != nil {
		t.Fatal(err)
	}
}

// Deleting a topic removes its configuration, its consume queues and its consumer offsets;
// other topics are untouched; a topic created again under the name starts empty; and all of
// it holds after a clean restart and after a crash that replays the whole commit log.
func TestDeleteTopic(t *testing.T) {
	for _, restart := range []string{"close", "crash"} {
		t.Run(restart, func(t *testing.T) {
			d := simdisk.New()
			s := open(t, d, Options{})
			mustCreate(t, s, "A", 2)
			mustCreate(t, s, "B", 1)
			appendConfirmed(t, s, "A", 0, "a0", "a1")
			appendConfirmed(t, s, "B", 0, "b0")
			appendConfirmed(t, s, "A", 1, "a2")
			s.CommitOffset("g", "A", 0, 2)
			s.CommitOffset("g", "B", 0, 1)
			if err := s.FlushOffsets(); err != nil {
				t.Fatal(err)
			}

			removed, err := s.DeleteTopic("A")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"cq/A/0", "cq/A/1"}, removed); diff != "" {
				t.Errorf("removed logs (-want +got):\n%s", diff)
			}
			if logs, _ := d.ListLogs("cq/A/"); len(logs) != 0 {
				t.Errorf("consume-queue logs of the deleted topic remain: %v", logs)
			}
			check := func(when string) {
				t.Helper()
				if _, ok := s.Topic("A"); ok {
					t.Errorf("%s: topic A still configured", when)
				}
				if got := queueBodies(t, s, "A", 0); len(got) != 0 {
					t.Errorf("%s: deleted topic serves %v", when, got)
				}
				if _, ok := s.QueryOffset("g", "A", 0); ok {
					t.Errorf("%s: offset of the deleted topic remains", when)
				}
				if got := queueBodies(t, s, "B", 0); !cmp.Equal(got, []string{"b0"}) {
					t.Errorf("%s: B holds %v", when, got)
				}
				if off, ok := s.QueryOffset("g", "B", 0); !ok || off != 1 {
					t.Errorf("%s: offset of B = %d %v", when, off, ok)
				}
				if got := s.DeletedTopics()["A"]; got != 4 {
					t.Errorf("%s: tombstone of A covers up to %d, want 4", when, got)
				}
			}
			check("after delete")
			if _, err := s.Append(msg("A", 0, "late", "")); err == nil {
				t.Error("append to a deleted topic succeeded")
			}
			if _, err := s.DeleteTopic("A"); !errors.Is(err, ErrUnknownTopic) {
				t.Errorf("second delete: %v, want ErrUnknownTopic", err)
			}

			mustCreate(t, s, "A", 1)
			appendConfirmed(t, s, "A", 0, "new")
			if got := queueBodies(t, s, "A", 0); !cmp.Equal(got, []string{"new"}) {
				t.Errorf("re-created topic holds %v, want only the new message", got)
			}
			syncAll(t, s)
			if restart == "close" {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				d.Crash(rand.New(rand.NewPCG(1, 1))) // no checkpoint: recovery replays every message
			}
			s = open(t, d, Options{})
			defer s.Close()
			if _, ok := s.Topic("A"); !ok {
				t.Fatal("re-created topic lost")
			}
			if got := queueBodies(t, s, "A", 0); !cmp.Equal(got, []string{"new"}) {
				t.Errorf("after %s the re-created topic holds %v, want only the new message", restart, got)
			}
			if got := queueBodies(t, s, "A", 1); len(got) != 0 {
				t.Errorf("after %s queue A/1 of the old topic serves %v", restart, got)
			}
			if got := queueBodies(t, s, "B", 0); !cmp.Equal(got, []string{"b0"}) {
				t.Errorf("after %s B holds %v", restart, got)
			}
			if _, ok := s.QueryOffset("g", "A", 0); ok {
				t.Errorf("after %s the deleted topic's offset is back", restart)
			}
		})
	}
}

// A deleted topic stays deleted across a restart: recovery does not re-create it from the
// messages still in the commit log, whether or not a checkpoint covered them.
func TestDeletedTopicStaysDeleted(t *testing.T) {
	for _, checkpointed := range []bool{false, true} {
		d := simdisk.New()
		s := open(t, d, Options{})
		mustCreate(t, s, "A", 1)
		appendConfirmed(t, s, "A", 0, "a0", "a1")
		syncAll(t, s)
		if checkpointed {
			checkpoint(t, s)
		}
		if _, err := s.DeleteTopic("A"); err != nil {
			t.Fatal(err)
		}
		d.Crash(rand.New(rand.NewPCG(2, 2)))
		s = open(t, d, Options{})
		if _, ok := s.Topic("A"); ok {
			t.Errorf("checkpointed=%v: recovery re-created the deleted topic", checkpointed)
		}
		if logs, _ := d.ListLogs("cq/"); len(logs) != 0 {
			t.Errorf("checkpointed=%v: recovery re-created consume queues %v", checkpointed, logs)
		}
		s.Close()
	}
}

func checkpoint(t tb, s *Store) {
	t.Helper()
	logs, upTo := s.BeginCheckpoint()
	for _, l := range logs {
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishCheckpoint(upTo); err != nil {
		t.Fatal(err)
	}
}

// faultyDisk fails log removals and writes of chosen metadata files.
type faultyDisk struct {
	node.Disk
	failRemove bool
	failWrite  map[string]bool
}

func (d *faultyDisk) RemoveLog(name string) error {
	if d.failRemove {
		return node.ErrIO
	}
	return d.Disk.RemoveLog(name)
}

func (d *faultyDisk) WriteFile(name string, data []byte) error {
	if d.failWrite[name] {
		return node.ErrIO
	}
	return d.Disk.WriteFile(name, data)
}

// A delete whose clean-up fails after its commit (the consume-queue logs cannot be removed,
// offsets.json cannot be rewritten: as after a crash right after topics.json was written) is
// finished by the next recovery. A delete whose commit fails changes nothing.
func TestInterruptedDeleteIsFinishedByRecovery(t *testing.T) {
	sd := simdisk.New()
	fd := &faultyDisk{Disk: sd}
	s := open(t, fd, Options{})
	mustCreate(t, s, "A", 2)
	mustCreate(t, s, "B", 1)
	appendConfirmed(t, s, "A", 0, "a0")
	appendConfirmed(t, s, "A", 1, "a1")
	appendConfirmed(t, s, "B", 0, "b0")
	s.CommitOffset("g", "A", 1, 1)
	if err := s.FlushOffsets(); err != nil {
		t.Fatal(err)
	}
	syncAll(t, s)
	checkpoint(t, s)

	fd.failWrite = map[string]bool{topicsFile: true}
	if _, err := s.DeleteTopic("A"); err == nil {
		t.Fatal("delete succeeded though topics.json could not be written")
	}
	if got := queueBodies(t, s, "A", 1); !cmp.Equal(got, []string{"a1"}) {
		t.Fatalf("a failed delete changed the topic: %v", got)
	}
	if len(s.DeletedTopics()) != 0 {
		t.Fatalf("a failed delete left a tombstone: %v", s.DeletedTopics())
	}

	fd.failWrite = map[string]bool{offsetsFile: true}
	fd.failRemove = true
	if _, err := s.DeleteTopic("A"); err != nil {
		t.Fatalf("delete whose clean-up fails after the commit: %v", err)
	}
	if logs, _ := sd.ListLogs("cq/A/"); len(logs) != 2 {
		t.Fatalf("the failing disk removed logs anyway: %v", logs)
	}
	sd.Crash(rand.New(rand.NewPCG(3, 3)))

	s = open(t, sd, Options{})
	defer s.Close()
	if logs, _ := sd.ListLogs("cq/A/"); len(logs) != 0 {
		t.Errorf("recovery left the deleted topic's consume queues: %v", logs)
	}
	if _, ok := s.QueryOffset("g", "A", 1); ok {
		t.Error("recovery kept the deleted topic's offset")
	}
	if err := s.FlushOffsets(); err != nil {
		t.Fatal(err)
	}
	if b, _ := sd.ReadFile(offsetsFile); strings.Contains(string(b), `"A"`) {
		t.Errorf("offsets.json still names the deleted topic:\n%s", b)
	}
	if got := queueBodies(t, s, "B", 0); !cmp.Equal(got, []string{"b0"}) {
		t.Errorf("B holds %v", got)
	}
}

// Messages of a topic appended but not yet confirmed when it is deleted are confirmed later
// into no queue; the other topics' pending messages become visible as usual.
func TestDeleteWithUnconfirmedMessages(t *testing.T) {
	s := open(t, simdisk.New(), Options{})
	defer s.Close()
	mustCreate(t, s, "A", 1)
	mustCreate(t, s, "B", 1)
	mustAppend(t, s, msg("A", 0, "a0", ""))
	mustAppend(t, s, msg("B", 0, "b0", ""))
	mustAppend(t, s, msg("A", 0, "a1", ""))
	if _, err := s.DeleteTopic("A"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, msg("B", 0, "b1", ""))
	s.Confirm(s.CommitLog().LastIndex())
	if got := queueBodies(t, s, "B", 0); !cmp.Equal(got, []string{"b0", "b1"}) {
		t.Errorf("B holds %v", got)
	}
	if got := queueBodies(t, s, "A", 0); len(got) != 0 {
		t.Errorf("deleted topic serves %v", got)
	}
}

// A crash that cuts the commit log below a tombstone lowers the tombstone, so that the
// messages reusing those indexes (of the topic created again) are not taken for deleted ones.
func TestTombstoneLoweredWhenCommitLogLosesItsTail(t *testing.T) {
	const synced = 3
	d := crashUntil(t, func() *simdisk.Disk {
		d := simdisk.New()
		s := open(t, d, Options{})
		mustCreate(t, s, "A", 1)
		appendConfirmed(t, s, "A", 0, "a0", "a1", "a2")
		syncAll(t, s)
		appendConfirmed(t, s, "A", 0, "a3", "a4", "a5")
		if _, err := s.DeleteTopic("A"); err != nil {
			t.Fatal(err)
		}
		return d
	}, func(d *simdisk.Disk) bool { return clLast(d) == synced })
	s := open(t, d, Options{})
	defer s.Close()
	if got := s.DeletedTopics()["A"]; got != synced {
		t.Fatalf("tombstone covers up to %d after the commit log was cut to %d", got, synced)
	}
	mustCreate(t, s, "A", 1)
	appendConfirmed(t, s, "A", 0, "fresh")
	if got := queueBodies(t, s, "A", 0); !cmp.Equal(got, []string{"fresh"}) {
		t.Fatalf("re-created topic holds %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, d, Options{})
	if got := queueBodies(t, s, "A", 0); !cmp.Equal(got, []string{"fresh"}) {
		t.Fatalf("after reopen the re-created topic holds %v", got)
	}
}
