package cluster

import (
	"testing"
	"time"
)

// The record keeps the first application of each election: a member replaying its log after
// a restart applies old elections again, which change nothing; each term ends when the next
// one is first applied.
func TestMastershipRecordsFirstApplications(t *testing.T) {
	m := mastership{}
	m.record("g", 1, 1, 1*time.Second)
	m.record("g", 1, 1, 2*time.Second) // another member applies it later
	m.record("g", 0, 2, 5*time.Second) // masterless
	m.record("g", 3, 3, 6*time.Second)
	m.record("g", 1, 1, 9*time.Second) // a restarted member replays its log
	m.record("g", 0, 2, 9*time.Second)
	for _, want := range []masterTerm{
		{epoch: 1, master: 1, from: 1 * time.Second, until: 5 * time.Second},
		{epoch: 2, master: 0, from: 5 * time.Second, until: 6 * time.Second},
		{epoch: 3, master: 3, from: 6 * time.Second, until: -1},
	} {
		if got, ok := m.term("g", want.epoch); !ok || got != want {
			t.Errorf("epoch %d: got %+v (found %v), want %+v", want.epoch, got, ok, want)
		}
	}
	if _, ok := m.term("g", 4); ok {
		t.Error("an epoch never elected has a term")
	}
	if first, ok := m.record("g", 2, 3, 10*time.Second); ok || first != 3 {
		t.Errorf("a second master of epoch 3 recorded: got (%d, %v), want (3, false)", first, ok)
	}
	if got, _ := m.term("g", 3); got.master != 3 {
		t.Errorf("epoch 3's master became %d", got.master)
	}
}
