package cluster

// Acknowledgements in broker groups, as each master reports them (brokernode's Acknowledged events):
// the checker that at most one replica acknowledges in any master epoch, and the failover
// measurements (a group's acknowledgements moving to a new epoch). It does not check that
// the acknowledging replica was the controllers' master then (mastership.go), nor that what
// was acknowledged survives (replicas.go and the drain check).

import (
	"hash/fnv"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
)

// ackRecord is one acknowledged send as its master saw it.
type ackRecord struct {
	at      time.Duration
	replica int // 1..3
	epoch   int64
	index   uint64
	hash    uint64 // of the acknowledged record's bytes
}

// recordHash hashes the record at index of replica id's log (0 if it cannot be read, which a
// record that can be never hashes to).
func recordHash(b *brokernode.Broker, index uint64) uint64 {
	recs, err := b.Store().ReadRecords(index, index, 1<<30)
	if err != nil || len(recs) != 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write(recs[0])
	return h.Sum64() | 1 // as replicaLog hashes
}

// onAcknowledge records an acknowledgement: one replica per epoch may acknowledge.
func (r *run) onAcknowledge(g *groupState, replica int, epoch int64, index uint64) {
	now := r.w.Now()
	var hash uint64
	if b := g.broker(replica); b != nil {
		hash = recordHash(b, index)
	}
	g.acks = append(g.acks, ackRecord{at: now, replica: replica, epoch: epoch, index: index, hash: hash})
	r.checkMasterWrite(g, replica, epoch, index, "acknowledged")
	if prev, ok := g.epochAcker[epoch]; ok && prev != replica {
		r.violate("two masters in one epoch", "group %s: replicas %d and %d both acknowledged at epoch %d (index %d at %v)",
			g.name, prev, replica, epoch, index, now)
	}
	g.epochAcker[epoch] = replica
	if epoch > g.ackEpoch {
		if g.ackEpoch > 0 {
			r.report.Failovers++
			r.report.GroupFailovers[g.name]++
			if g.lossAt >= 0 && !r.stopped {
				r.report.FailoverTimes = append(r.report.FailoverTimes, now-g.lossAt)
			}
		}
		g.ackEpoch = epoch
		g.lossAt = -1
	}
}

// watchGroups samples every group each 20 ms for the moment it loses its writable master.
func (r *run) watchGroups() {
	var tick func()
	tick = func() {
		for _, g := range r.gr.groups {
			if g.ackEpoch > 0 && g.lossAt < 0 && !g.writable() {
				g.lossAt = r.w.Now()
			}
		}
		r.w.After(20*time.Millisecond, tick)
	}
	r.w.After(0, tick)
}

// Median and Worst of failover times (0 for none).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Worst is the largest of ds (0 for none).
func Worst(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}
