package store

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicemq/sluice/broker/diskfile"
)

// TestOnProductionDisk runs a store on real files: append, checkpoint, restart, and the
// messages and offsets come back, including those replayed past the checkpoint.
func TestOnProductionDisk(t *testing.T) {
	dir := t.TempDir()
	d, err := diskfile.Open(dir, diskfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, d, Options{})
	mustCreate(t, s, "T", 2)
	var want [2][]string
	for i := 0; i < 50; i++ {
		q := int32(i % 2)
		body := fmt.Sprintf("m%d", i)
		mustAppend(t, s, msg("T", q, body, ""))
		want[q] = append(want[q], body)
		if i == 30 {
			if err := s.CommitLog().Sync(); err != nil {
				t.Fatal(err)
			}
			s.Confirm(s.CommitLog().LastIndex())
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
	}
	if err := s.CommitLog().Sync(); err != nil {
		t.Fatal(err)
	}
	s.Confirm(50)
	s.CommitOffset("g", "T", 1, 12)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, d, Options{})
	defer s.Close()
	for q := int32(0); q < 2; q++ {
		if diff := cmp.Diff(want[q], queueBodies(t, s, "T", q)); diff != "" {
			t.Errorf("T/%d after restart (-want +got):\n%s", q, diff)
		}
	}
	if off, ok := s.QueryOffset("g", "T", 1); !ok || off != 12 {
		t.Errorf("offset after restart: %d %v", off, ok)
	}
}
