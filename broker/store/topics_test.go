package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// CreateTopics creates many topics with one write of topics.json; a refused name or a failed
// write creates none of them, and what it created is there after a reopen.
func TestCreateTopicsIsOneWriteAllOrNone(t *testing.T) {
	sd := simdisk.New()
	d := &countingDisk{Disk: sd}
	s := open(t, d, Options{})
	a := TopicConfig{Name: "A", ReadQueueNums: 1, WriteQueueNums: 1, Perm: PermReadWrite}
	b := TopicConfig{Name: "B", ReadQueueNums: 2, WriteQueueNums: 2, Perm: PermReadWrite}
	if err := s.CreateTopic(a); err != nil {
		t.Fatal(err)
	}
	a2 := a
	a2.ReadQueueNums = 4

	if err := s.CreateTopics(b, TopicConfig{Name: "bad name", ReadQueueNums: 1, WriteQueueNums: 1}); err == nil {
		t.Fatal("a batch with an invalid name was accepted")
	}
	sd.SetWriteError(node.ErrIO)
	if err := s.CreateTopics(a2, b); !errors.Is(err, node.ErrIO) {
		t.Fatalf("a batch whose write fails: %v, want ErrIO", err)
	}
	sd.SetWriteError(nil)
	if got, _ := s.Topic("A"); got != a {
		t.Errorf("after failed batches A is %+v, want it unchanged %+v", got, a)
	}
	if _, ok := s.Topic("B"); ok {
		t.Error("after failed batches B exists")
	}

	writes := d.writes
	if err := s.CreateTopics(a2, b, b); err != nil {
		t.Fatal(err)
	}
	if n := d.writes - writes; n != 1 {
		t.Errorf("a batch of topics wrote topics.json %d times, want once", n)
	}
	writes = d.writes
	if err := s.CreateTopics(a2, b); err != nil || d.writes != writes {
		t.Errorf("an unchanged batch: err %v, %d writes", err, d.writes-writes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	re := open(t, sd, Options{})
	for _, want := range []TopicConfig{a2, b} {
		if got, ok := re.Topic(want.Name); !ok || got != want {
			t.Errorf("after reopen %s is %+v (%v), want %+v", want.Name, got, ok, want)
		}
	}
}

// countingDisk counts metadata file writes.
type countingDisk struct {
	node.Disk
	writes int
}

func (d *countingDisk) WriteFile(name string, data []byte) error {
	d.writes++
	return d.Disk.WriteFile(name, data)
}

// A consumer-offset write the disk refuses (EIO, a full disk) is retried by the next flush,
// even if no offset changed meanwhile, so an offset answered after that flush survives a crash.
// The planted bug bugs.DropFailedOffsetWrites forgets the failed write: the next flush writes
// nothing and the crash takes the offset.
func TestFailedOffsetWriteIsRetried(t *testing.T) {
	for _, fault := range []error{node.ErrIO, node.ErrNoSpace} {
		for _, planted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/planted=%v", fault, planted), func(t *testing.T) {
				sd := simdisk.New()
				s := open(t, sd, Options{Bugs: plantIf(planted, bugs.DropFailedOffsetWrites)})
				mustCreate(t, s, "T", 1)
				s.CommitOffset("g", "T", 0, 7)
				sd.SetWriteError(fault)
				if err := s.FlushOffsets(); !errors.Is(err, fault) {
					t.Fatalf("flush on a failing disk: %v, want %v", err, fault)
				}
				sd.SetWriteError(nil)
				if err := s.FlushOffsets(); err != nil {
					t.Fatalf("flush after the disk healed: %v", err)
				}
				sd.CrashWith(func(string, uint64) (uint64, bool) { return 0, false })
				off, ok := open(t, sd, Options{}).QueryOffset("g", "T", 0)
				if survived := ok && off == 7; survived == planted {
					t.Fatalf("after the crash the offset is %d (found %v): survived %v with the planted bug %v",
						off, ok, survived, planted)
				}
			})
		}
	}
}

// plantIf is the set holding b when planted, else the empty set.
func plantIf(planted bool, b bugs.Bug) bugs.Set {
	if planted {
		return bugs.Of(b)
	}
	return bugs.Set{}
}
