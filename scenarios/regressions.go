package scenarios

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/sim/cluster"
)

// Regression is a seed that once failed on main, replayed by make test (TestRegressionsPass)
// with the flags it failed with, so that a fixed bug stays fixed.
type Regression struct {
	Topology    cluster.Topology
	Flush       brokernode.FlushMode
	Replication brokernode.ReplicationMode
	Seed        uint64
	// Duration is the simulated workload's length it failed with; 0 means the default.
	Duration time.Duration
	// Rate, DiskCapacity and Retention are the --rate, --disk-capacity and --retention it
	// failed with (0: not given).
	Rate         float64
	DiskCapacity uint64
	Retention    time.Duration
	// Bug is what the seed caught and where it was fixed.
	Bug string
}

// Regressions is the list; append every seed that fails on main once its cause is fixed.
var Regressions = []Regression{
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 24,
		Bug: "message at two offsets, message never sent, not linearizable (p0-286 in SimTopic/3); sim/node.go delivered a request sent on a connecting socket that was then reset, so the client took a stored send for a definite failure"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 45,
		Bug: "new master's offset behind its copy: the groups offset check took the new-group answer 0 for a committed offset (sim/cluster/groupoffsets.go)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 206,
		Bug: "liveness: a name server left a replica out of its route for 20 s while it could register: resets of its connections every few seconds each dropped it until its next registration, and the check did not restart its bound at a reset (sim/cluster/nsliveness.go onStrike)"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 159,
		Bug: "broker write too late (a send-back's dead letter stored 6 s after its deadline): after an append failed for lack of space the broker refused writes until its next checkpoint tick, up to 10 s after the disk had room; it now tries appends again after a second (brokernode's noSpaceTimer)"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 100073, Duration: 30 * time.Second,
		Bug: "broker write too late (a level-1 send-back first stored 27 s after its deadline): the broker's clock, stepped back 7.3 s at 4 s, stamped the re-put before virtual time 0, and the checks took a negative store time for none and counted a later duplicate (linearizability's PulledMsg.Stamped)"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 162, Duration: 10 * time.Minute,
		Rate: 2, DiskCapacity: 256 << 10, Retention: 5 * time.Minute,
		Bug: "two messages at one offset (SimTopic/1 offset 31, SimTopic/2 offset 102): a bit flipped in the commit log's last entry while the broker was down, and the disk's tail repair dropped it as a torn write, so the next message took its queue offset; whole entries are now kept (broker/diskfile's repairTail, simdisk's OpenLog). The 48 h seed 1 (--rate 2 --disk-capacity 1MiB --retention 30m) failed the same way in %RETRY%SimConsumers/0"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 305, Duration: 10 * time.Minute,
		Rate: 2, DiskCapacity: 256 << 10, Retention: 5 * time.Minute,
		Bug: "two messages at one offset (%DLQ%SimConsumers/0 offset 8): a bit flipped in a dead letter's topic name, its consume-queue entry lost in a crash, and recovery could not place it (its header named no queue), so the next dead letter took its offset; recovery now corrects one flipped bit of the header (broker/store/holes.go oneBitPlacement, framingBitPlacement)"},
}

// Config is the regression's run, as `sluice sim` would build it from Command's flags.
func (g Regression) Config() cluster.Config {
	cfg := cluster.DefaultConfig(g.Seed)
	if g.Topology == cluster.BrokerGroups {
		cfg = cluster.GroupsConfig(g.Seed)
		cfg.Replication = g.Replication
	}
	cfg.FlushMode = g.Flush
	if g.Duration > 0 {
		cfg.Duration = g.Duration
	}
	cfg.Rate, cfg.DiskCapacity, cfg.Retention = g.Rate, g.DiskCapacity, g.Retention
	return cfg
}

// Command is the sluice sim command line that replays it.
func (g Regression) Command() string {
	cmd := fmt.Sprintf("sluice sim --seed %d --topology %s --flush %s", g.Seed, g.Topology, g.Flush)
	if g.Topology == cluster.BrokerGroups {
		cmd += fmt.Sprintf(" --replication %s", g.Replication)
	}
	if g.Duration > 0 {
		cmd += fmt.Sprintf(" --duration %v", g.Duration)
	}
	if g.Rate > 0 {
		cmd += fmt.Sprintf(" --rate %v", g.Rate)
	}
	if g.DiskCapacity > 0 {
		cmd += fmt.Sprintf(" --disk-capacity %d", g.DiskCapacity)
	}
	if g.Retention > 0 {
		cmd += fmt.Sprintf(" --retention %v", g.Retention)
	}
	return cmd
}
