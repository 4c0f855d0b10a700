package cluster

import (
	"fmt"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
)

// Topology is the shape of the simulated cluster, as a run's configuration names it.
type Topology int

const (
	// SingleBroker is one name server and one broker (single.go).
	SingleBroker Topology = iota
	// BrokerGroups is three name servers with embedded controllers and two broker groups of
	// three replicas (groups.go).
	BrokerGroups
)

// ParseTopology parses "single" or "groups".
func ParseTopology(s string) (Topology, error) {
	switch s {
	case "single", "":
		return SingleBroker, nil
	case "groups":
		return BrokerGroups, nil
	}
	return 0, fmt.Errorf("topology %q: want single or groups", s)
}

func (t Topology) String() string {
	if t == BrokerGroups {
		return "groups"
	}
	return "single"
}

// topology is what Run needs of a cluster shape; Run does the rest (the world, the workload,
// the fault injection, healing, the final drain, the report) the same way for every shape.
// Its methods are called in the order listed, each once.
type topology interface {
	// flows is the run's flow mix (flows.go).
	flows(r *run) Flows
	// build adds the shape's name servers, controllers and brokers to r.w and installs the
	// observers of their events.
	build(r *run)
	// plan draws the run's fault plan from its seed (cfg.Faults, if set, replaces the swarm).
	plan(r *run) []faults.Fault
	// startClients starts the shape's clients besides the producers and consumers.
	startClients(r *run)
	// injector is the fault injector for the shape: it resolves the symbolic names its plans
	// use, and notes bit flips.
	injector(r *run) *faults.Injector
	// watch starts the harness's watchers of the shape's nodes, right after the plan is
	// scheduled (a watcher scheduled for a fault's instant then runs after the fault).
	watch(r *run)
	// nameServers and brokers are the addresses the route check probes and watches.
	nameServers() []string
	brokers(r *run) []string
	// downState describes the shape's nodes for a liveness violation of the final drain.
	downState(r *run) string
	// afterDrain runs once the final drain is over, before the trace is taken: what the shape
	// checks of its nodes' state.
	afterDrain(r *run)
	// crashes counts the crashes of the shape's brokers.
	crashes(r *run) int
	// check judges the history and the final drain.
	check(r *run, drain map[linearizability.QueueKey][]linearizability.PulledMsg)
}

// newTopology is the implementation of t.
func newTopology(t Topology) topology {
	if t == BrokerGroups {
		return &groupsTopology{}
	}
	return &singleTopology{}
}
