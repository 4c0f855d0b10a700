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
	{Topology: cluster.SingleBroker, Flush: brokernode.SyncFlush, Seed: 100073, Duration: 30 * time.Second,
		Bug: "broker write too late (a level-1 send-back first stored 27 s after its deadline): the broker's clock, stepped back 7.3 s at 4 s, stamped the re-put before virtual time 0, and the checks took a negative store time for none and counted a later duplicate (linearizability's PulledMsg.Stamped)"},
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
	return cmd
}
