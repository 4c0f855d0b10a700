package cluster

// Slave progress. A slave of a broker group reports, in every fetch it sends its
// master, the index up to which its commit log is durable ("synced"); a master in sync
// replication acknowledges an entry once every member of the in-sync set has reported it. A
// report beyond what the slave's disk has made durable lets the master acknowledge an entry a
// power loss of the slave then takes away (the broker asserts the report against its own idea
// of what is durable, brokernode assertReportable; a bug in that idea itself only the
// simulator can see). The harness reads each fetch as the slave sends it and compares the
// report with the simulated disk's durable index of the slave's commit log at that moment:
// the disk keeps whatever is durable through any crash, so this is the check that what a
// slave reported synced before a crash is still in its log after recovery, made at the
// moment of the report rather than at the next crash (which may never come).

import (
	"github.com/sluicemq/sluice/broker/codec"
)

// checkSlaveReport checks the synced index of a fetch replica src (at address from) is
// sending against its disk.
func (r *run) checkSlaveReport(o *groupOffsets, from string, src replicaRef, cmd *codec.Command) {
	h, err := codec.DecodeHeader[codec.ReplicaFetchHeader](cmd)
	synced := h.Synced
	if err != nil || o.reportedAhead[from] {
		return
	}
	g := r.gr.groups[src.group]
	b := g.broker(src.id)
	if b == nil {
		return
	}
	name := b.Store().CommitLog().Name()
	durable, ok := g.nodes[src.id-1].Disk.Durable(name)
	if !ok || uint64(synced) <= durable {
		return
	}
	o.reportedAhead[from] = true // once per replica: the first says it
	r.violate("slave reported unsynced entries", "group %s: replica %d reported index %d synced to its master at %v, but its commit log %s is durable only up to %d",
		g.name, src.id, synced, r.w.Now(), name, durable)
}
