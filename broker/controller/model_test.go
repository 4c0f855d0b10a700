package controller

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/codec"
)

// electionModel drives the replicated state machine and the leader's election decisions with
// random registrations, heartbeats and silences, in-sync set changes (current and stale),
// acknowledged writes and arbitrary (stale, wrong) election commands, and checks what the
// controller promises:
//   - a master is only ever elected from the in-sync set (or first, into an empty group), so
//     it holds every acknowledged write;
//   - the master epoch strictly increases, and each epoch has at most one master;
//   - every member of the in-sync set holds every acknowledged write.
//
// holdsAll models the replication the controller never sees: a write acknowledged in sync
// mode is on every in-sync replica; a replica joins the set only once caught up.
type electionModel struct {
	s        *State
	key      GroupKey
	live     map[int64]liveReplica
	holdsAll map[int64]bool
	masters  map[int64]int64 // epoch -> master elected under it
	epoch    int64
}

const modelReplicas = 4

func (m *electionModel) group() *Group { return m.s.Group(m.key) }

func (m *electionModel) apply(t *rapid.T, c Command) Result {
	before := m.group()
	var prevInSync []int64
	if before != nil {
		prevInSync = append(prevInSync, before.InSync...)
	}
	r := m.s.Apply(c)
	if c.Op == OpElect && r.Code == codec.Success {
		g := m.group()
		if g.MasterEpoch != m.epoch+1 {
			t.Fatalf("election moved the epoch from %d to %d", m.epoch, g.MasterEpoch)
		}
		m.epoch = g.MasterEpoch
		if prev, dup := m.masters[g.MasterEpoch]; dup {
			t.Fatalf("epoch %d has two masters: %d and %d", g.MasterEpoch, prev, g.MasterID)
		}
		m.masters[g.MasterEpoch] = g.MasterID
		if g.MasterID != 0 {
			inPrev := len(prevInSync) == 0
			for _, id := range prevInSync {
				inPrev = inPrev || id == g.MasterID
			}
			if !inPrev {
				t.Fatalf("broker %d elected from outside the in-sync set %v", g.MasterID, prevInSync)
			}
			if !m.holdsAll[g.MasterID] {
				t.Fatalf("broker %d elected without every acknowledged write", g.MasterID)
			}
		}
	}
	if g := m.group(); g != nil && g.MasterEpoch != m.epoch {
		t.Fatalf("%s changed the master epoch from %d to %d", c.Op, m.epoch, g.MasterEpoch)
	}
	return r
}

func (m *electionModel) check(t *rapid.T) {
	g := m.group()
	if g == nil {
		return
	}
	for _, id := range g.InSync {
		if !m.holdsAll[id] {
			t.Fatalf("in-sync replica %d lacks acknowledged writes (in-sync set %v)", id, g.InSync)
		}
	}
}

func TestElectionsKeepTheirPromises(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &electionModel{s: NewState(), key: GroupKey{cluster, group}, live: map[int64]liveReplica{},
			holdsAll: map[int64]bool{}, masters: map[int64]int64{}}
		replica := rapid.Int64Range(1, modelReplicas)
		t.Repeat(map[string]func(*rapid.T){
			"register": func(t *rapid.T) {
				id := replica.Draw(t, "id")
				if m.group() == nil || m.group().Replicas[id] == "" {
					m.holdsAll[id] = len(m.masters) == 0 // nothing was written before the first master
				}
				m.apply(t, Command{Op: OpRegister, Cluster: cluster, Group: group, BrokerID: id, Addr: brokerAddr(id)})
			},
			"heartbeat": func(t *rapid.T) {
				id := replica.Draw(t, "id")
				m.live[id] = liveReplica{Epoch: rapid.Int64Range(0, m.epoch).Draw(t, "epoch"), MaxOffset: rapid.Int64Range(0, 100).Draw(t, "offset")}
			},
			"silence": func(t *rapid.T) {
				delete(m.live, replica.Draw(t, "id"))
			},
			"ackWrite": func(t *rapid.T) {
				g := m.group()
				if g == nil || g.MasterID == 0 {
					t.Skip("no master to write to")
				}
				for id := range m.holdsAll {
					if !g.inSync(id) {
						m.holdsAll[id] = false
					}
				}
			},
			"alterInSync": func(t *rapid.T) {
				g := m.group()
				if g == nil || g.MasterID == 0 {
					t.Skip("no master")
				}
				set := []int64{g.MasterID}
				for id := range int64(modelReplicas) {
					if rapid.Bool().Draw(t, "member") && g.Replicas[id+1] != "" && id+1 != g.MasterID {
						set = append(set, id+1)
					}
				}
				curMaster, curEpoch, curISREpoch := g.MasterID, g.MasterEpoch, g.InSyncEpoch // g changes on apply
				master, epoch, isrEpoch := curMaster, curEpoch, curISREpoch
				stale := rapid.IntRange(0, 3).Draw(t, "stale")
				switch stale {
				case 1:
					epoch = rapid.Int64Range(0, g.MasterEpoch+1).Draw(t, "epoch")
				case 2:
					isrEpoch = rapid.Int64Range(0, g.InSyncEpoch+1).Draw(t, "isrEpoch")
				case 3:
					master = replica.Draw(t, "master")
				}
				r := m.apply(t, Command{Op: OpAlterInSync, Cluster: cluster, Group: group, MasterID: master,
					MasterEpoch: epoch, InSyncEpoch: isrEpoch, InSync: set})
				current := master == curMaster && epoch == curEpoch && isrEpoch == curISREpoch
				if (r.Code == codec.Success) != current {
					t.Fatalf("alter by %d at epochs %d/%d: code %d (%s)", master, epoch, isrEpoch, r.Code, r.Remark)
				}
				if r.Code == codec.Success {
					for _, id := range set {
						m.holdsAll[id] = true // the master adds only caught-up replicas
					}
				}
			},
			"leaderElects": func(t *rapid.T) {
				g := m.group()
				if g == nil {
					t.Skip("no group")
				}
				_, masterAlive := m.live[g.MasterID]
				if c, ok := decideElection(g, masterAlive, m.live, false); ok {
					m.apply(t, c)
				}
			},
			"anyElection": func(t *rapid.T) {
				// Stale or wrong proposals reach the log too (a deposed leader's, a slow one's).
				g := m.group()
				if g == nil {
					t.Skip("no group")
				}
				m.apply(t, Command{Op: OpElect, Cluster: cluster, Group: group,
					NewMaster:   rapid.Int64Range(0, modelReplicas).Draw(t, "newMaster"),
					ExpectEpoch: rapid.Int64Range(max(0, g.MasterEpoch-1), g.MasterEpoch).Draw(t, "expect")})
			},
			"": m.check,
		})
	})
}

// The leader's choice: only live in-sync replicas, never the old master, most advanced first;
// the planted bug prefers a replica outside the set.
func TestPickMaster(t *testing.T) {
	g := &Group{Key: GroupKey{cluster, group}, Replicas: map[int64]string{1: "a", 2: "b", 3: "c", 4: "d"},
		MasterID: 1, MasterEpoch: 3, InSync: []int64{1, 2, 3}}
	for _, tc := range []struct {
		name        string
		live        map[int64]liveReplica
		unsafe      bool
		want        int64
		wantUnclean bool
	}{
		{"nobody live", nil, false, 0, false},
		{"only the old master and an outsider", map[int64]liveReplica{1: {}, 4: {}}, false, 0, false},
		{"lowest id on a tie", map[int64]liveReplica{2: {}, 3: {}, 4: {}}, false, 2, false},
		{"highest offset", map[int64]liveReplica{2: {Epoch: 3, MaxOffset: 5}, 3: {Epoch: 3, MaxOffset: 9}}, false, 3, false},
		{"epoch before offset", map[int64]liveReplica{2: {Epoch: 3, MaxOffset: 5}, 3: {Epoch: 2, MaxOffset: 9}}, false, 2, false},
		{"unsafe prefers the outsider", map[int64]liveReplica{2: {}, 4: {}}, true, 4, true},
		{"unsafe without an outsider", map[int64]liveReplica{2: {}}, true, 2, false},
	} {
		id, unclean := pickMaster(g, tc.live, tc.unsafe)
		if id != tc.want || unclean != tc.wantUnclean {
			t.Errorf("%s: picked %d (unclean %v), want %d (%v)", tc.name, id, unclean, tc.want, tc.wantUnclean)
		}
	}
	empty := &Group{Key: g.Key, Replicas: g.Replicas}
	if id, _ := pickMaster(empty, map[int64]liveReplica{3: {}, 4: {}}, false); id != 3 {
		t.Errorf("a group that never had a master takes any live replica: picked %d, want 3", id)
	}
}
