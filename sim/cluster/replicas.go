package cluster

// The replicas checker of the groups topology, run after the final drain once lagging
// replicas have caught up. It verifies that every acknowledged entry is still in every replica
// that holds its index, with the bytes that were acknowledged, and in one at least (sync
// replication; async replication counts the lost ones instead), and that the replicas' logs
// agree on every index they share. Entries a recorded bit flip destroyed are left out. It does
// not verify who acknowledged (acks.go, mastership.go) nor what consumers saw (the drain and
// log checks).

import (
	"github.com/sluicemq/sluice/broker/brokernode"
)

// checkReplicas runs after the final drain: per group, every acknowledged entry is still in
// every replica's log with the bytes that were acknowledged (sync replication; async counts
// the lost ones), and the replicas' logs agree on every index they share. It returns the
// number of acknowledged entries lost.
func (r *run) checkReplicas() (lost int) {
	async := r.cfg.Replication == brokernode.AsyncReplication
	for _, g := range r.gr.groups {
		logs := map[int]map[uint64]uint64{}
		var ref map[uint64]uint64
		refID := 0
		for id := 1; id <= groupReplicas; id++ {
			b := g.broker(id)
			if b == nil {
				r.violate("liveness", "group %s replica %d is down after healing", g.name, id)
				continue
			}
			cl := b.Store().CommitLog()
			m, err := r.replicaLog(g, id, b)
			if err != nil {
				r.violate("replica unreadable", "group %s replica %d: %v", g.name, id, err)
				continue
			}
			logs[id] = m
			if refID == 0 {
				ref, refID = m, id
				continue
			}
			for idx := cl.FirstIndex(); idx <= cl.LastIndex(); idx++ {
				if h, ok := ref[idx]; ok && h != m[idx] && h != unreadableEntry && m[idx] != unreadableEntry {
					if async {
						break // async: a replica may hold what a failover lost; counted below
					}
					r.violate("replicas differ", "group %s: replicas %d and %d differ at index %d", g.name, refID, id, idx)
					break
				}
			}
		}
		// Every acknowledged entry, in every replica that holds that index, and in at least one.
		for _, a := range g.acks {
			found, bad := false, false
			// A flip that struck the acknowledging replica's copy before the acknowledgement
			// left its bytes unknown (recordHash read nothing): it must still be somewhere.
			unknown := a.hash == 0 && r.flipped(g.nodes[a.replica-1].Addr, a.index)
			for id := 1; id <= groupReplicas; id++ {
				h, ok := logs[id][a.index]
				if !ok || h == unreadableEntry {
					continue // a flipped copy: the acknowledged entry must be on another replica
				}
				found = true
				if h != a.hash && !unknown {
					bad = true
				}
			}
			if !found && a.index < r.retention.removedTo[g.name] {
				continue // retention removed it from every replica (judged by retention.go)
			}
			if (!found && len(logs) == groupReplicas) || bad {
				lost++
				if !async {
					r.violate("acknowledged entry truncated", "group %s: index %d acknowledged by replica %d at epoch %d (%v) is gone or replaced",
						g.name, a.index, a.replica, a.epoch, a.at)
				}
			}
		}
	}
	return lost
}
