package store

import (
	"errors"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// A configured group survives a reopen; a failed write changes nothing; a delete and a sync
// are persisted too; dropping a group's offsets leaves the other groups'.
func TestSubscriptionGroupsPersist(t *testing.T) {
	sd := simdisk.New()
	s := open(t, sd, Options{})
	g := codec.DefaultSubscriptionGroup("G")
	g.RetryMaxTimes = 3
	if err := s.PutSubscriptionGroup(g); err != nil {
		t.Fatal(err)
	}
	sd.SetWriteError(node.ErrIO)
	h := codec.DefaultSubscriptionGroup("H")
	if err := s.PutSubscriptionGroup(h); !errors.Is(err, node.ErrIO) {
		t.Fatalf("put with a failing write: %v", err)
	}
	if _, ok := s.SubscriptionGroup("H"); ok {
		t.Fatal("a group whose write failed is configured")
	}
	sd.SetWriteError(nil)
	if err := s.PutSubscriptionGroup(h); err != nil {
		t.Fatal(err)
	}
	s.CommitOffset("G", "T", 0, 5)
	s.CommitOffset("H", "T", 0, 7)
	if n := s.DropGroupOffsets("G"); n != 1 {
		t.Fatalf("dropped %d offsets of G, want 1", n)
	}
	if _, ok := s.QueryOffset("H", "T", 0); !ok {
		t.Fatal("H's offset went with G's")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, sd, Options{})
	if got, ok := s.SubscriptionGroup("G"); !ok || got != g {
		t.Fatalf("after reopen G is %+v (%v), want %+v", got, ok, g)
	}
	if _, ok := s.QueryOffset("G", "T", 0); ok {
		t.Fatal("G's dropped offset is back after a reopen")
	}
	if existed, err := s.DeleteSubscriptionGroup("G"); !existed || err != nil {
		t.Fatalf("delete G: %v %v", existed, err)
	}
	if existed, _ := s.DeleteSubscriptionGroup("G"); existed {
		t.Fatal("G deleted twice")
	}
	changed, err := s.SyncSubscriptionGroups([]codec.SubscriptionGroupConfig{g})
	if !changed || err != nil {
		t.Fatalf("sync: %v %v", changed, err)
	}
	if changed, _ := s.SyncSubscriptionGroups([]codec.SubscriptionGroupConfig{g}); changed {
		t.Fatal("the same sync changed something")
	}
	s.Close()
	s = open(t, sd, Options{})
	if got := s.SubscriptionGroups(); len(got) != 1 || got[0] != g {
		t.Fatalf("after sync and reopen: %+v", got)
	}
}
