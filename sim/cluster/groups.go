package cluster

// The broker-group topology (docs/simulator.md): three name-server hosts, each running a name
// server and an embedded controller member (one raft group of three), two broker groups of
// three replicas each (sync or async replication), and the usual producers and consumers on
// the project's client core, which follow a new master through the name servers' routes. It
// runs plain sends and pulls (the flows of flows.go assume one broker: its locks, delays and
// check-backs).
//
// The fault plan is the full catalogue, drawn per seed (bit flips drawn apart, aimed at the
// commit logs: see bitflips.go), plus the faults package's faults aimed at roles, resolved when
// they strike (resolveRole): the current master of a group crashed or paused, a stale master,
// a double failover and a power loss of a whole group.
//
// Besides the checks every topology runs, its checkers are: one replica acknowledges per
// master epoch (acks.go); nothing acknowledged is later overwritten or truncated, and the
// replicas' logs never diverge once settled (replicas.go); only the replica the controllers
// named master of an epoch writes, acknowledges or answers pulls as that epoch's master, and
// never once they elected another (mastership.go); consumer offsets across failovers
// (groupoffsets.go); slaves report as synced only what their disk holds (slaveprogress.go).
// Sync replication loses no acknowledged message; in async replication the acknowledged
// messages lost at failovers are counted instead. It measures failovers and failover times.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/controller"
	"github.com/sluicemq/sluice/broker/namesrv"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
	"github.com/sluicemq/sluice/sim/checks"
)

// Shape of the groups topology.
const (
	nameServerHosts = 3
	groupReplicas   = 3
)

// GroupNames are the broker groups of the groups topology.
var GroupNames = []string{"broker-a", "broker-b"}

// HostNameServerAddr and HostControllerAddr are the name server and the controller member of
// name-server host h (1..3): two listeners of one process, crashed and cut off together.
func HostNameServerAddr(h int) string { return fmt.Sprintf("127.0.1.%d:9876", h) }

// HostControllerAddr: see HostNameServerAddr.
func HostControllerAddr(h int) string { return fmt.Sprintf("127.0.1.%d:9878", h) }

// ReplicaAddr is the address of replica id (1..3) of group g (an index of GroupNames).
func ReplicaAddr(g, id int) string { return fmt.Sprintf("127.0.%d.%d:10911", 10+g, id) }

// nameServers lists the name servers' addresses.
func nameServers() []string {
	var out []string
	for h := 1; h <= nameServerHosts; h++ {
		out = append(out, HostNameServerAddr(h))
	}
	return out
}

// controllerAddrs lists the controller members' addresses.
func controllerAddrs() []string {
	var out []string
	for h := 1; h <= nameServerHosts; h++ {
		out = append(out, HostControllerAddr(h))
	}
	return out
}

// ProducerAddr and ConsumerAddr are the addresses of plain producer and consumer i (from 0),
// for fault plans that name clients (a master cut off together with its clients).
func ProducerAddr(i int) string { return fmt.Sprintf("127.0.2.%d:1", i+1) }

// ConsumerAddr: see ProducerAddr.
func ConsumerAddr(i int) string { return fmt.Sprintf("127.0.3.%d:1", i+1) }

// diskFault reports whether err comes from an injected disk fault (the process exits at
// startup; the simulator starts it again later).
func diskFault(err error) bool {
	return errors.Is(err, node.ErrIO) || errors.Is(err, node.ErrNoSpace)
}

// groupState is what the harness tracks of one broker group.
type groupState struct {
	name  string
	nodes []*sim.Node // nodes[i] is replica i+1
	acks  []ackRecord
	// epochAcker is which replica acknowledged in each epoch.
	epochAcker map[int64]int
	// ackEpoch is the epoch of the latest acknowledgement; lossAt is when the group last lost
	// its writable master (-1: it has one, or has not had one yet).
	ackEpoch int64
	lossAt   time.Duration
	// judged: the violations of the mastership checks already reported (mastership.go).
	judged map[string]bool
}

// groupsRun is the groups topology's part of a run.
type groupsRun struct {
	groups []*groupState
	// terms is the controllers' record of who was master when (mastership.go).
	terms mastership
	// offsets is what the harness observed of consumer offsets and slave progress
	// (groupoffsets.go, slaveprogress.go).
	offsets *groupOffsets
}

func (g *groupState) broker(id int) *brokernode.Broker {
	if h := g.nodes[id-1].Handler(); h != nil && g.nodes[id-1].Up() {
		return h.(*brokernode.Broker)
	}
	return nil
}

// master is the up replica that believes it is master at the highest epoch (0: none).
func (g *groupState) master() int {
	best, bestEpoch := 0, int64(-1)
	for id := 1; id <= groupReplicas; id++ {
		if b := g.broker(id); b != nil {
			if role, epoch, _ := b.Role(); role == "master" && epoch > bestEpoch {
				best, bestEpoch = id, epoch
			}
		}
	}
	return best
}

// writable reports whether some replica of the group may write now.
func (g *groupState) writable() bool {
	for id := 1; id <= groupReplicas; id++ {
		if b := g.broker(id); b != nil && !g.nodes[id-1].Paused() {
			if _, _, ok := b.Role(); ok {
				return true
			}
		}
	}
	return false
}

// masterEpochs maps the address of each up replica that holds the master role now to its
// epoch (nil outside the groups topology), whatever its lease: whether such a replica may
// still answer is judged against the controllers' record (mastership.go), never against the
// broker's own lease.
func (r *run) masterEpochs() map[string]int64 {
	if r.gr == nil {
		return nil
	}
	out := map[string]int64{}
	for _, g := range r.gr.groups {
		for id := 1; id <= groupReplicas; id++ {
			if b := g.broker(id); b != nil {
				if role, epoch, _ := b.Role(); role == "master" {
					out[g.nodes[id-1].Addr] = epoch
				}
			}
		}
	}
	return out
}

// servedByMaster reports whether the replica at addr held the master role at one epoch both
// when the call was made (atCall, from masterEpochs) and when its answer arrived: then it held
// it throughout (an epoch is never taken again once left) and answered from the master's log,
// not from a slave's confirmed log (which trails the master's acknowledgements). Checking only
// on arrival would count the answer of a slave promoted while its answer was in flight. A
// correct master answers only while its lease holds and its log is confirmed, so such an
// answer is binding; checkMasterPull judges whether it should have answered at all.
func (r *run) servedByMaster(addr string, atCall map[string]int64) bool {
	_, ok := r.masterAnswer(addr, atCall)
	return ok
}

// masterAnswer is servedByMaster, with the epoch.
func (r *run) masterAnswer(addr string, atCall map[string]int64) (int64, bool) {
	epoch, ok := atCall[addr]
	if !ok {
		return 0, false
	}
	n := r.w.Node(addr)
	if n == nil || !n.Up() || n.Handler() == nil {
		return 0, false
	}
	b, ok := n.Handler().(*brokernode.Broker)
	if !ok {
		return 0, false
	}
	role, now, _ := b.Role()
	return epoch, role == "master" && now == epoch
}

// groupsTopology is BrokerGroups; its state is the run's gr.
type groupsTopology struct{}

// flows: plain sends and pulls, and the broadcasting consumers when the run asks for them.
func (groupsTopology) flows(r *run) Flows {
	if f := r.cfg.Flows; f != nil {
		return Flows{Broadcast: f.Broadcast}
	}
	return Flows{}
}

func (groupsTopology) build(r *run) {
	if r.cfg.MinInSync == 0 {
		r.cfg.MinInSync = 2
	}
	r.report.GroupFailovers = map[string]int{}
	r.delayTable = brokernode.DefaultConfig().DelayLevels
	r.buildGroups()
	r.observeGroups()
}

// GroupsFaultKinds are the kinds the groups topology's swarm draws from (every kind but bit
// flips, which groupsFlips draws from a PRNG of their own, so that adding them left the rest
// of every plan as it was).
var GroupsFaultKinds = slices.DeleteFunc(slices.Clone(faults.ExtraKinds), func(k faults.Kind) bool { return k == faults.BitFlip })

// groupsRateDivisor thins the swarm's per-target fault timelines in the groups topology.
const groupsRateDivisor = 5

// plan draws the swarm over every node (name-server hosts as one target each), plus crashes
// and pauses of the current masters and power losses of whole groups, so that every run has
// failovers, and the failovers the swarm rarely composes (faults.MasterFailovers).
func (groupsTopology) plan(r *run) []faults.Fault {
	frng := rand.New(rand.NewPCG(r.cfg.Seed, 0x5eedfa17))
	var targets []string
	for h := 1; h <= nameServerHosts; h++ {
		targets = append(targets, fmt.Sprintf("@host:%d", h))
	}
	targets = append(targets, r.gr.replicaAddrs()...)
	var isolated [][]string
	for i, name := range GroupNames {
		// A master cut off together with a producer and a consumer (apache/rocketmq#7017).
		grp := []string{faults.MasterOf(name)}
		if i < r.cfg.Producers {
			grp = append(grp, ProducerAddr(i))
		}
		if i < r.cfg.Consumers {
			grp = append(grp, ConsumerAddr(i))
		}
		isolated = append(isolated, grp)
	}
	fcfg := r.cfg.Faults
	if fcfg == nil {
		c := faults.SwarmWith(frng, targets, faults.SwarmOptions{Extra: GroupsFaultKinds, Groups: isolated})
		// The swarm's rates are per target; with nine targets (rather than the single
		// topology's one) the cluster would hardly ever have a controller quorum and a master
		// at once. Kinds with a timeline per target strike each one less often.
		for k, rate := range c.Rates {
			if k != faults.GroupPartition && k != faults.Split && k != faults.Bridge {
				rate.MeanInterval *= groupsRateDivisor
				c.Rates[k] = rate
			}
		}
		fcfg = &c
	}
	plan := faults.Plan(frng, *fcfg, r.cfg.Duration)
	var masters []string
	for _, name := range GroupNames {
		masters = append(masters, faults.MasterOf(name))
	}
	aimed := faults.Config{Targets: masters, Rates: map[faults.Kind]faults.Rate{
		faults.Crash: faults.MasterCrashes, faults.Pause: faults.MasterPauses}}
	plan = append(plan, faults.Plan(frng, aimed, r.cfg.Duration)...)
	plan = append(plan, faults.PowerLosses(frng, GroupNames, r.cfg.Duration)...)
	// Drawn from a PRNG of their own, so the faults above stay what they were before these
	// were added.
	plan = append(plan, faults.MasterFailovers(rand.New(rand.NewPCG(r.cfg.Seed, 0xdb1f0e5)), GroupNames, controllerAddrs(), r.cfg.Duration)...)
	if r.cfg.Faults == nil {
		plan = append(plan, longPause(r.cfg.Seed, r.gr.replicaAddrs(), plan, r.cfg.Duration, r.mayStrike)...)
		plan = append(plan, groupsFlips(r.cfg.Seed, r.gr.replicaAddrs(), r.cfg.Duration)...)
	}
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].At < plan[j].At })
	return plan
}

func (groupsTopology) startClients(r *run) {
	r.startOffsetAuditor()
	r.startBroadcasts()
}

func (groupsTopology) injector(r *run) *faults.Injector {
	return &faults.Injector{World: r.w, Resolve: r.resolveRole, OnFlip: r.onFlip, FlipUpTo: r.groupFlipUpTo}
}

func (groupsTopology) watch(r *run) {
	r.watchGroups()
	r.superviseControllers()
}

func (groupsTopology) nameServers() []string { return nameServers() }

func (groupsTopology) brokers(r *run) []string { return r.gr.replicaAddrs() }

// afterDrain lets replicas that were behind catch up, then compares their logs.
func (groupsTopology) afterDrain(r *run) {
	r.w.RunFor(10 * time.Second)
	r.report.TruncatedAcked = r.checkReplicas()
}

func (groupsTopology) crashes(r *run) int {
	n := 0
	for _, g := range r.gr.groups {
		for _, node := range g.nodes {
			n += node.Crashes
		}
	}
	return n
}

// buildGroups adds the name-server hosts and the broker groups to the world.
func (r *run) buildGroups() {
	peers := map[uint64]string{}
	for h := 1; h <= nameServerHosts; h++ {
		peers[uint64(h)] = HostControllerAddr(h)
	}
	plant := r.cfg.plant()
	ncfg := r.cfg.nameServerConfig()
	for h := 1; h <= nameServerHosts; h++ {
		ncfg := ncfg
		ncfg.Metrics = r.report.Metrics.With("node", HostNameServerAddr(h))
		r.w.AddNode(HostNameServerAddr(h), func(env node.Env) node.Handler { return namesrv.New(env, ncfg) })
		ccfg := controller.DefaultConfig(uint64(h), peers)
		ccfg.Metrics = r.report.Metrics.With("node", HostControllerAddr(h))
		ccfg.Bugs = plant.Bugs
		ccfg.OnElection = r.onElection
		r.w.AddNode(HostControllerAddr(h), func(env node.Env) node.Handler {
			c, err := controller.New(env, ccfg)
			if err != nil {
				if diskFault(err) {
					return nil
				}
				panic(fmt.Sprintf("controller %d recovery failed: %v", ccfg.ID, err))
			}
			return c
		})
	}
	r.gr = &groupsRun{terms: mastership{}}
	for gi, name := range GroupNames {
		g := &groupState{name: name, epochAcker: map[int64]int{}, lossAt: -1}
		r.gr.groups = append(r.gr.groups, g)
		for id := 1; id <= groupReplicas; id++ {
			bcfg := brokernode.DefaultConfig()
			bcfg.BrokerName = name
			bcfg.BrokerID = int64(id)
			bcfg.Addr = ReplicaAddr(gi, id)
			bcfg.Metrics = r.report.Metrics.With("node", bcfg.Addr)
			bcfg.NameServers = nameServers()
			bcfg.Controllers = controllerAddrs()
			bcfg.ReplicationMode = r.cfg.Replication
			bcfg.MinInSync = r.cfg.MinInSync
			bcfg.FlushMode = r.cfg.FlushMode
			bcfg.RegisterInterval = 5 * time.Second
			bcfg.RecentHeadEntries = simRecentHeadEntries
			bcfg.MaxOpenQueueFiles = simMaxOpenQueueFiles
			bcfg.MetaSyncInterval = r.cfg.MetaSyncInterval
			bcfg.Bugs = plant.Bugs
			r.retentionConfig(&bcfg)
			replica := id
			bcfg.Observe = func(e brokernode.Event) {
				r.onRetentionEvent(name, g.nodes[replica-1], e)
				switch e := e.(type) {
				case brokernode.Acknowledged:
					r.onAcknowledge(g, replica, e.Epoch, e.Index)
				case brokernode.Wrote:
					r.checkMasterWrite(g, replica, e.Epoch, e.Index, "wrote")
				case brokernode.RoleChanged:
					r.noteRole(bcfg.Addr, name, e.Role, e.Epoch, e.MasterID)
				}
			}
			n := r.w.AddNode(bcfg.Addr, newBroker(bcfg, fmt.Sprintf("%s replica %d", name, replica)))
			n.Disk.SetBugs(plant.Bugs)
			r.retentionDisk(n)
			g.nodes = append(g.nodes, n)
		}
	}
}

// superviseControllers restarts a controller member that stopped on a disk error, a second
// after it did, as a process supervisor restarts a process that exited.
func (r *run) superviseControllers() {
	var tick func()
	tick = func() {
		for h := 1; h <= nameServerHosts; h++ {
			n := r.w.Node(HostControllerAddr(h))
			if !n.Up() || n.Handler() == nil {
				continue
			}
			if c, ok := n.Handler().(*controller.Controller); ok && c.Failed() != nil {
				n.Crash()
				r.w.After(time.Second, n.Restart)
			}
		}
		r.w.After(time.Second, tick)
	}
	r.w.After(time.Second, tick)
}

// resolveRole maps the plan's symbolic names: the roles of faults.MasterOf, SlavesOf, SlaveOf and
// GroupOf, and "@host:N" (name-server host N: its name server and its controller member).
func (r *run) resolveRole(name string) []string {
	kind, arg, _ := strings.Cut(strings.TrimPrefix(name, "@"), ":")
	switch kind {
	case "host":
		var h int
		if _, err := fmt.Sscanf(arg, "%d", &h); err != nil || h < 1 || h > nameServerHosts {
			panic(fmt.Sprintf("cluster: unknown host %q", name))
		}
		return []string{HostNameServerAddr(h), HostControllerAddr(h)}
	case "master", "group", "slaves", "slave":
		for _, g := range r.gr.groups {
			if g.name != arg {
				continue
			}
			if kind == "slaves" || kind == "slave" {
				var out []string
				m := g.master()
				for id, n := range g.nodes {
					if id+1 != m {
						out = append(out, n.Addr)
					}
				}
				if kind == "slave" {
					return out[:min(1, len(out))]
				}
				return out
			}
			if kind == "group" {
				var out []string
				for _, n := range g.nodes {
					out = append(out, n.Addr)
				}
				return out
			}
			if m := g.master(); m != 0 {
				return []string{g.nodes[m-1].Addr}
			}
			return nil
		}
	}
	panic(fmt.Sprintf("cluster: unknown symbolic node %q", name))
}

// downState describes the nodes that are down and the replicas' roles.
func (groupsTopology) downState(r *run) string {
	var down []string
	for _, addr := range r.w.Addrs() {
		if n := r.w.Node(addr); !n.Up() {
			down = append(down, addr)
		}
	}
	var roles []string
	for _, g := range r.gr.groups {
		for id := 1; id <= groupReplicas; id++ {
			role := "down"
			if b := g.broker(id); b != nil {
				rl, epoch, ok := b.Role()
				role = fmt.Sprintf("%s@%d(writable=%v)", rl, epoch, ok)
			}
			roles = append(roles, fmt.Sprintf("%s/%d=%s", g.name, id, role))
		}
	}
	return fmt.Sprintf("down: %v; roles: %s", down, strings.Join(roles, " "))
}

// check judges the history for the groups topology: in sync replication as the single
// topology does; in async replication queues that lost acknowledged or pulled messages are
// counted (LostAcked, LostObserved) and left out of the other checks, which hold for every
// other queue. (An async master makes a message readable once it is on its own disk; a
// failover to a slave that had not fetched it loses it, and its offset is reused.)
func (groupsTopology) check(r *run, drain map[linearizability.QueueKey][]linearizability.PulledMsg) {
	vs, ok := r.drainViolations(drain)
	if !ok {
		return
	}
	async := r.cfg.Replication == brokernode.AsyncReplication
	lossy := map[linearizability.QueueKey]bool{}
	for _, v := range vs {
		switch v.Kind {
		case checks.KindLostAcked:
			r.report.LostAcked++
		case checks.KindLostObserved:
			r.report.LostObserved++
		default:
			continue
		}
		if async {
			lossy[v.Queue] = true
		}
	}
	vs = append(vs, r.checkConsumers(drain, lossy)...)
	var show []linearizability.QueueKey
	for _, v := range vs {
		if lossy[v.Queue] {
			continue
		}
		r.violateOn(v)
		show = append(show, v.Queue)
	}
	r.checkGroupOffsets(lossy)
	show = append(show, r.checkProcessed(drain, lossy)...)
	h := r.h
	if len(lossy) > 0 {
		h = linearizability.History{}
		for _, s := range r.h.Sends {
			if !lossy[s.Queue] {
				h.Sends = append(h.Sends, s)
			}
		}
		for _, p := range r.h.Pulls {
			if !lossy[p.Queue] {
				h.Pulls = append(h.Pulls, p)
			}
		}
	}
	r.checkLog(h, fmt.Sprintf("sluice-groups-seed-%d", r.cfg.Seed), show)
}
