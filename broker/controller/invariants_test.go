package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
)

// A member that has elected a master passes its checks; each way of corrupting the state
// machine or the member's bookkeeping around raft is reported.
func TestCheckInvariantsReportsCorruptedState(t *testing.T) {
	key := GroupKey{cluster, group}
	corrupt := map[string]struct {
		breakIt func(m *member)
		want    string
	}{
		"master outside the in-sync set": {func(m *member) { m.c.state.groups[key].InSync = []int64{2} }, "is not in the in-sync set"},
		"in-sync set unsorted":           {func(m *member) { m.c.state.groups[key].InSync = []int64{2, 1} }, "not a sorted set"},
		"group under another key":        {func(m *member) { m.c.state.groups[key].Key.Group = "other" }, "not filed under its own key"},
		"replica without an address":     {func(m *member) { m.c.state.groups[key].Replicas[3] = "" }, `replica 3 has address ""`},
		"applied beyond the commit":      {func(m *member) { m.c.appliedIndex += 100 }, "beyond the committed index"},
		"failed yet leading":             {func(m *member) { m.c.failed = errors.New("disk gone") }, "failed (disk gone) yet leading"},
		"waiting for a sync of nothing":  {func(m *member) { m.c.unsynced = &raft.Ready{} }, "waiting for a sync"},
		"disk log ahead of raft's log": {func(m *member) {
			if _, err := m.c.wal.Append([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}, "no sync is pending, yet the disk log ends at"},
		"peers that include itself":      {func(m *member) { m.c.peerIDs = []uint64{1} }, "are not the other members"},
		"proposal waiting under id zero": {func(m *member) { m.c.proposals[0] = &proposal{} }, "under id 0"},
	}
	for name, tc := range corrupt {
		t.Run(name, func(t *testing.T) {
			m := startMember(t, oneMember(), nil)
			m.heartbeat(101, 1)
			m.heartbeat(102, 2)
			m.run(time.Second)
			if g := m.c.State().Group(key); g == nil || g.MasterID == 0 || !m.c.IsLeader() {
				t.Fatalf("no master elected by a leading member: %+v", g)
			}
			if err := m.c.CheckInvariants(); err != nil {
				t.Fatalf("a healthy member breaks an invariant: %v", err)
			}
			tc.breakIt(m)
			err := m.c.CheckInvariants()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckInvariants() = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
