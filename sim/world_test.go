package sim

import "testing"

// Two partitions that overlap in time cut the same links; the first to heal must not heal the
// link for the second (an isolated node stays isolated until every partition has lifted).
func TestOverlappingPartitionsCompose(t *testing.T) {
	w := &World{blocked: map[link]int{}}
	w.Block("a", "b") // partition 1
	w.Block("a", "b") // partition 2, overlapping
	w.Unblock("a", "b")
	if !w.isBlocked("a", "b") {
		t.Fatal("healing the first partition healed the second too")
	}
	if w.isBlocked("b", "a") {
		t.Fatal("a block is one direction only")
	}
	w.Unblock("a", "b")
	if w.isBlocked("a", "b") {
		t.Fatal("link still cut after every partition healed")
	}
	w.Unblock("a", "b") // a stray heal must not make the next Block a no-op
	w.Block("a", "b")
	if !w.isBlocked("a", "b") {
		t.Fatal("a stray Unblock left a credit behind")
	}
	w.HealAll()
	if w.isBlocked("a", "b") {
		t.Fatal("HealAll left a link cut")
	}
}
