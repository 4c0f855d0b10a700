package controller

import (
	"maps"
	"slices"
)

// liveReplica is what the raft leader knows of one replica from its own heartbeats. None of it
// is replicated: liveness is judged by the leader alone, from its own view.
type liveReplica struct {
	// Epoch and MaxOffset are what the replica last reported: the last master epoch it knows
	// and the end of its log. Among eligible replicas the most advanced one is preferred.
	Epoch     int64
	MaxOffset int64
}

// decideElection says which election, if any, the leader should propose for g. masterAlive
// tells whether the master has heartbeated recently (or the leader is still in its grace
// period); live holds the replicas that have heartbeated to this leader recently.
//
// A group with a live master is left alone. Otherwise the new master is chosen only from the
// live members of the in-sync set (any live replica while the set is empty, which means the
// group never had a master). If none is eligible and the group still names a master, the
// group goes masterless under a new epoch. unsafe is the planted bug
// Config.Bugs.Has(bugs.ElectOutsideInSyncSet).
func decideElection(g *Group, masterAlive bool, live map[int64]liveReplica, unsafe bool) (Command, bool) {
	if g.MasterID != 0 && masterAlive {
		return Command{}, false
	}
	elect := Command{Op: OpElect, Cluster: g.Key.Cluster, Group: g.Key.Group, ExpectEpoch: g.MasterEpoch}
	if id, unclean := pickMaster(g, live, unsafe); id != 0 {
		elect.NewMaster, elect.Unclean = id, unclean
		return elect, true
	}
	if g.MasterID != 0 {
		return elect, true // masterless
	}
	return Command{}, false
}

// pickMaster chooses the next master of g among the live replicas (never the current master),
// or 0 if none is eligible. unclean reports a choice outside a non-empty in-sync set.
func pickMaster(g *Group, live map[int64]liveReplica, unsafe bool) (id int64, unclean bool) {
	var eligible, outside []int64
	for _, r := range slices.Sorted(maps.Keys(live)) {
		if _, registered := g.Replicas[r]; !registered || r == g.MasterID {
			continue
		}
		if len(g.InSync) == 0 || g.inSync(r) {
			eligible = append(eligible, r)
		} else {
			outside = append(outside, r)
		}
	}
	if unsafe && len(outside) > 0 {
		// The planted bug prefers a replica outside the in-sync set whenever there is one,
		// so that the simulator meets it quickly.
		return mostAdvanced(outside, live), true
	}
	if len(eligible) == 0 {
		return 0, false
	}
	return mostAdvanced(eligible, live), false
}

// mostAdvanced returns the candidate with the highest (epoch, max offset) it reported, the
// lowest id on a tie. candidates is sorted and not empty.
func mostAdvanced(candidates []int64, live map[int64]liveReplica) int64 {
	best := candidates[0]
	for _, id := range candidates[1:] {
		b, c := live[best], live[id]
		if c.Epoch > b.Epoch || (c.Epoch == b.Epoch && c.MaxOffset > b.MaxOffset) {
			best = id
		}
	}
	return best
}
