package cluster

// The run's record for people: what struck which node when, the roles and epochs the
// replicas took, and the controllers' elections, kept as they happen so a failure report
// (package sim/report) can draw them against the history. Recording only appends to slices
// from observers the run already has; it schedules nothing and reads no randomness, so a
// seed's trace is the same with it.

import (
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
)

// Strike is a node fault as it struck one node, its symbolic target resolved.
type Strike struct {
	At    time.Duration
	Addr  string
	Fault faults.Fault
	// WasUp: the node was up when it struck (a crash of a node already down does nothing).
	WasUp bool
}

// RoleChange is a replica taking a role ("master", "slave" or "none") at an epoch, as the
// broker reported it (brokernode.RoleChanged).
type RoleChange struct {
	At       time.Duration
	Addr     string
	Group    string
	Role     string
	Epoch    int64
	MasterID int64
}

// UpChange is a node coming up (its handler built) or going down (a crash), as the simulator
// reported it (sim.Node.OnUp). Every node is up from time 0 until its first UpChange.
type UpChange struct {
	At   time.Duration
	Addr string
	Up   bool
}

// Election is the controllers naming Master (a replica id; 0: none) of Group at Epoch, as
// the first controller member applied it.
type Election struct {
	At     time.Duration
	Group  string
	Master int64
	Epoch  int64
	// Addr is the named master's address ("" when none was named).
	Addr string
}

// Timeline is what a run recorded for its failure report.
type Timeline struct {
	// Nodes are every node of the world, sorted; Brokers those that are brokers, with their
	// group ("" in the single topology).
	Nodes   []string
	Brokers map[string]string
	// Workload is when the workload stopped; Healed when the harness healed every fault;
	// End when the run ended (after the final drain).
	Workload, Healed, End time.Duration
	Strikes               []Strike
	Ups                   []UpChange
	Roles                 []RoleChange
	Elections             []Election
	// History is the run's history of client operations (what the checkers judged).
	History *linearizability.History
}

// watchUps records every node's comings up and goings down.
func (r *run) watchUps() {
	for _, addr := range r.w.Addrs() {
		r.w.Node(addr).OnUp = func(up bool) {
			r.timeline.Ups = append(r.timeline.Ups, UpChange{At: r.w.Now(), Addr: addr, Up: up})
		}
	}
}

// noteStrike records a node fault striking addr (called before it is applied).
func (r *run) noteStrike(addr string, f faults.Fault) {
	n := r.w.Node(addr)
	r.timeline.Strikes = append(r.timeline.Strikes, Strike{At: r.w.Now(), Addr: addr, Fault: f, WasUp: n != nil && n.Up()})
}

// noteRole records a replica's role change.
func (r *run) noteRole(addr, group, role string, epoch, masterID int64) {
	r.timeline.Roles = append(r.timeline.Roles, RoleChange{At: r.w.Now(), Addr: addr, Group: group, Role: role, Epoch: epoch, MasterID: masterID})
}

// noteElection records an election the first time any controller member applies it (members
// replaying their logs apply old ones again).
func (r *run) noteElection(group string, master, epoch int64) {
	for _, e := range r.timeline.Elections {
		if e.Group == group && e.Epoch == epoch {
			return
		}
	}
	addr := ""
	for gi, name := range GroupNames {
		if name == group && master >= 1 && master <= groupReplicas {
			addr = ReplicaAddr(gi, int(master))
		}
	}
	r.timeline.Elections = append(r.timeline.Elections, Election{At: r.w.Now(), Group: group, Master: master, Epoch: epoch, Addr: addr})
}

// groupOf is the broker group of the replica at addr ("" outside the groups topology).
func (r *run) groupOf(addr string) string {
	if r.gr == nil {
		return ""
	}
	for _, g := range r.gr.groups {
		for _, n := range g.nodes {
			if n.Addr == addr {
				return g.name
			}
		}
	}
	return ""
}
