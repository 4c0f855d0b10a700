package scenarios

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/sim/cluster"
)

// Regression is a seed that once failed on main, replayed by make test (TestRegressionsPass)
// with the flags it failed with, and its failing run's fault plan replayed too, so that a fixed
// bug stays fixed even once the seed draws another run.
type Regression struct {
	Topology    cluster.Topology
	Flush       brokernode.FlushMode
	Replication brokernode.ReplicationMode
	Seed        uint64
	// Duration is the simulated workload's length it failed with; 0 means the default.
	Duration time.Duration
	// Rate, DiskCapacity and Retention are sluice sim's --rate, --disk-capacity and
	// --retention it failed with (0: not given).
	Rate         float64
	DiskCapacity uint64
	Retention    time.Duration
	// Bug is what the seed caught and where it was fixed.
	Bug string
	// FixedBy is the commit on main that fixed it: the seed failed on its parent.
	FixedBy string
	// Plan names the failing run's plan file (cluster.EncodePlanFile's format) in
	// testdata/regressions: the plan sluice sim --shrink left on FixedBy's parent or, when
	// PlanShrunk is false, the whole plan that run drew.
	Plan       string
	PlanShrunk bool
}

// PlanDir is where the regressions' plan files live, relative to this package.
const PlanDir = "testdata/regressions"

// Regressions is the list; append every seed that fails on main once its cause is fixed.
var Regressions = []Regression{
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 24, FixedBy: "fdffef0", Plan: "single-seed24.plan", PlanShrunk: true,
		Bug: "message at two offsets, message never sent, not linearizable (p0-286 in SimTopic/3); sim/node.go delivered a request sent on a connecting socket that was then reset, so the client took a stored send for a definite failure"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 45, FixedBy: "c4f8e6d", Plan: "groups-seed45.plan", PlanShrunk: true,
		Bug: "new master's offset behind its copy: the groups offset check took the new-group answer 0 for a committed offset (sim/cluster/groupoffsets.go)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 206, FixedBy: "b26e0bb", Plan: "groups-seed206.plan", PlanShrunk: true,
		Bug: "liveness: a name server left a replica out of its route for 20 s while it could register: resets of its connections every few seconds each dropped it until its next registration, and the check did not restart its bound at a reset (sim/cluster/nsliveness.go onStrike)"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 159, FixedBy: "da8ac5a", Plan: "single-seed159.plan", PlanShrunk: true,
		Bug: "broker write too late (a send-back's dead letter stored 6 s after its deadline): after an append failed for lack of space the broker refused writes until its next checkpoint tick, up to 10 s after the disk had room; it now tries appends again after a second (brokernode's noSpaceTimer)"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 100073, Duration: 30 * time.Second, FixedBy: "4483420", Plan: "single-seed100073.plan", PlanShrunk: true,
		Bug: "broker write too late (a level-1 send-back first stored 27 s after its deadline): the broker's clock, stepped back 7.3 s at 4 s, stamped the re-put before virtual time 0, and the checks took a negative store time for none and counted a later duplicate (linearizability's PulledMsg.Stamped)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.AsyncReplication, Seed: 69, FixedBy: "6442c76", Plan: "groups-async-seed69.plan",
		Bug: "lost observed message, two messages at one offset, not linearizable: an async master serves what is on its own disk, and a failover to a slave that had not fetched it loses what consumers pulled; the checks now count such a message as lost-observed, like a lost acknowledged one, and leave its queue out of the other checks (sim/cluster)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.AsyncReplication, Seed: 20, FixedBy: "b41069b", Plan: "groups-async-seed20.plan", PlanShrunk: true,
		Bug: "panic (a slave's invariant: durable index 53 beyond the commit log's last index 0) while its store was failed: a reopen that failed had closed its log; the invariants that compare with the commit log are now skipped while the store is failed (brokernode invariants)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 135, FixedBy: "58b8a38", Plan: "groups-seed135.plan",
		Bug: "not linearizable (a stale read): a replaced master kept a valid lease for tens of seconds after its clock was skewed back 1m38s, and answered a long-polled pull with nothing after the new master had acknowledged at that offset; a master's lease now ends on an elapsed-time timer (brokernode, 58b8a38), and the controller times master silence on its ticks (61b811e)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 161, FixedBy: "58b8a38", Plan: "groups-seed161.plan",
		Bug: "not linearizable (a stale read): a replaced master kept a valid lease for tens of seconds after its clock returned from a forward skew, and answered a long-polled pull with nothing after the new master had acknowledged at that offset; a master's lease now ends on an elapsed-time timer (brokernode, 58b8a38), and the controller times master silence on its ticks (61b811e)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 320, FixedBy: "58b8a38", Plan: "groups-seed320.plan",
		Bug: "not linearizable (a stale read): a replaced master kept a valid lease for tens of seconds after its clock was skewed back 1m25s, and answered a long-polled pull with nothing after the new master had acknowledged at that offset; a master's lease now ends on an elapsed-time timer (brokernode, 58b8a38), and the controller times master silence on its ticks (61b811e)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 386, FixedBy: "58b8a38", Plan: "groups-seed386.plan",
		Bug: "not linearizable (a stale read, and a replica unreadable): a replaced master kept a valid lease for tens of seconds after its clock returned from a forward skew, and answered a long-polled pull with nothing after the new master had acknowledged at that offset; a master's lease now ends on an elapsed-time timer (brokernode, 58b8a38), and the controller times master silence on its ticks (61b811e)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 420, FixedBy: "58b8a38", Plan: "groups-seed420.plan",
		Bug: "not linearizable (a stale read): a replaced master kept a valid lease for tens of seconds after its clock was skewed back 52s, and answered a long-polled pull with nothing after the new master had acknowledged at that offset; a master's lease now ends on an elapsed-time timer (brokernode, 58b8a38), and the controller times master silence on its ticks (61b811e)"},
	{Topology: cluster.BrokerGroups, Flush: brokernode.SyncFlush, Replication: brokernode.SyncReplication, Seed: 8,
		Duration: 20 * time.Minute, Rate: 5, DiskCapacity: 512 << 10, Retention: 10 * time.Minute, FixedBy: "0c07eab", Plan: "groups-seed8-retention.plan",
		Bug: "lost acknowledged message, though retention had legally removed it: the groups retention check kept one record per index, and a deposed master's stale write there hid the record of the removal; it now keeps every record written at an index (sim/cluster retention check)"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 162, Duration: 10 * time.Minute,
		Rate: 2, DiskCapacity: 256 << 10, Retention: 5 * time.Minute, FixedBy: "cf1b419", Plan: "single-seed162-retention.plan", PlanShrunk: true,
		Bug: "two messages at one offset (SimTopic/1 offset 31, SimTopic/2 offset 102): a bit flipped in the commit log's last entry while the broker was down, and the disk's tail repair dropped it as a torn write, so the next message took its queue offset; whole entries are now kept (broker/diskfile's repairTail, simdisk's OpenLog). The 48 h seed 1 (--rate 2 --disk-capacity 1MiB --retention 30m) failed the same way in %RETRY%SimConsumers/0"},
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 305, Duration: 10 * time.Minute,
		Rate: 2, DiskCapacity: 256 << 10, Retention: 5 * time.Minute, FixedBy: "cf1b419", Plan: "single-seed305-retention.plan",
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

// PlanConfig is the run of the regression's plan file (b, its contents): Config with the
// file's faults and the workload settings it fixes.
func (g Regression) PlanConfig(b []byte) (cluster.Config, error) {
	pf, err := cluster.DecodePlanFile(b)
	if err != nil {
		return cluster.Config{}, fmt.Errorf("regression seed %d: plan %s: %w", g.Seed, g.Plan, err)
	}
	cfg := g.Config()
	pf.Apply(&cfg)
	return cfg, nil
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

// PlanCommand is the sluice sim command line that replays its plan file, run from the
// repository's root.
func (g Regression) PlanCommand() string {
	return g.Command() + " --plan scenarios/" + PlanDir + "/" + g.Plan
}
