package cluster

// The broker-group topology (docs/simulator.md): three name-server hosts, each running a name server and
// an embedded controller member (one raft group of three), two broker groups of three
// replicas each (sync or async replication), and the usual producers and consumers on the
// project's client core, which follow a new master through the name servers' routes. The
// fault plan is the full catalogue (bit flips drawn apart, aimed at the commit logs: see
// bitflips.go), drawn per seed, plus faults aimed at roles, resolved when they strike: the current
// master of a group crashed or paused; a stale master, cut off from its replicas and the
// controllers but not from its clients and the name servers; a double failover, where the
// new master crashes as the old one (behind) comes back; and a power loss of a whole group
// amid acknowledgements, the slaves' fsyncs slowed. Besides the checks of the single-broker
// topology it checks, per group: at most one replica acknowledges in any master epoch, and
// nothing acknowledged is later overwritten or truncated; the replicas' logs never diverge
// once settled; only the replica the controllers named master of an epoch writes,
// acknowledges or answers pulls as that epoch's master, and never once they elected another
// (mastership.go, against the controllers' own record of their elections). Sync replication loses no acknowledged message; in async replication the
// acknowledged messages lost at failovers are counted instead. It measures failovers and
// failover times.

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
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
)

// Topology is the shape of the simulated cluster.
type Topology int

const (
	// SingleBroker is the single-broker cluster: one name server and one broker.
	SingleBroker Topology = iota
	// BrokerGroups is the broker-group cluster: three name servers with embedded controllers and two broker
	// groups of three replicas.
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

// ackRecord is one acknowledged send as its master saw it.
type ackRecord struct {
	at      time.Duration
	replica int // 1..3
	epoch   int64
	index   uint64
	hash    uint64 // of the acknowledged record's bytes
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

// nameServers lists the name servers' addresses.
func nameServers() []string {
	var out []string
	for h := 1; h <= nameServerHosts; h++ {
		out = append(out, HostNameServerAddr(h))
	}
	return out
}

// diskFault reports whether err comes from an injected disk fault (the process exits at
// startup; the simulator starts it again later).
func diskFault(err error) bool {
	return errors.Is(err, node.ErrIO) || errors.Is(err, node.ErrNoSpace)
}

// buildGroups adds the name-server hosts and the broker groups to the world.
func (r *run) buildGroups() {
	peers := map[uint64]string{}
	var ctls []string
	for h := 1; h <= nameServerHosts; h++ {
		peers[uint64(h)] = HostControllerAddr(h)
		ctls = append(ctls, HostControllerAddr(h))
	}
	plant := r.cfg.plant()
	ncfg := r.cfg.nameServerConfig()
	for h := 1; h <= nameServerHosts; h++ {
		r.w.AddNode(HostNameServerAddr(h), func(env node.Env) node.Handler { return namesrv.New(env, ncfg) })
		ccfg := controller.DefaultConfig(uint64(h), peers)
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
			bcfg.NameServers = nameServers()
			bcfg.Controllers = ctls
			bcfg.ReplicationMode = r.cfg.Replication
			bcfg.MinInSync = r.cfg.MinInSync
			bcfg.FlushMode = r.cfg.FlushMode
			bcfg.RegisterInterval = 5 * time.Second
			bcfg.RecentHeadEntries = simRecentHeadEntries
			bcfg.MetaSyncInterval = r.cfg.MetaSyncInterval
			bcfg.Bugs = plant.Bugs
			replica := id
			bcfg.Observe = func(e brokernode.Event) {
				switch e := e.(type) {
				case brokernode.Acknowledged:
					r.onAcknowledge(g, replica, e.Epoch, e.Index)
				case brokernode.Wrote:
					r.checkMasterWrite(g, replica, e.Epoch, e.Index, "wrote")
				}
			}
			g.nodes = append(g.nodes, r.w.AddNode(bcfg.Addr, func(env node.Env) node.Handler {
				b, err := brokernode.New(env, bcfg)
				if err != nil {
					if diskFault(err) {
						return nil
					}
					// The simulated disk only loses what was never durable; a replica that
					// cannot recover from that is a bug.
					panic(fmt.Sprintf("%s replica %d recovery failed: %v", name, replica, err))
				}
				return b
			}))
			g.nodes[len(g.nodes)-1].Disk.SetBugs(plant.Bugs)
		}
	}
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

// resolveRole maps the plan's symbolic names: "@master:G" (the replica of group G that
// believes it is master), "@slaves:G" (the others), "@group:G" (every replica of G), "@host:N" (name-server host N: its
// name server and its controller member).
func (r *run) resolveRole(name string) []string {
	kind, arg, _ := strings.Cut(strings.TrimPrefix(name, "@"), ":")
	switch kind {
	case "host":
		var h int
		if _, err := fmt.Sscanf(arg, "%d", &h); err != nil || h < 1 || h > nameServerHosts {
			panic(fmt.Sprintf("cluster: unknown host %q", name))
		}
		return []string{HostNameServerAddr(h), HostControllerAddr(h)}
	case "master", "group", "slaves":
		for _, g := range r.gr.groups {
			if g.name != arg {
				continue
			}
			if kind == "slaves" {
				var out []string
				m := g.master()
				for id, n := range g.nodes {
					if id+1 != m {
						out = append(out, n.Addr)
					}
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

// GroupsFaultKinds are the kinds the groups topology's swarm draws from (every kind but bit
// flips, which groupsFlips draws from a PRNG of their own, so that adding them left the rest
// of every plan as it was).
var GroupsFaultKinds = slices.DeleteFunc(slices.Clone(faults.ExtraKinds), func(k faults.Kind) bool { return k == faults.BitFlip })

// groupsRateDivisor thins the swarm's per-target fault timelines in the groups topology.
const groupsRateDivisor = 5

// groupsPlan draws the groups topology's plan: the swarm over every node (name-server hosts
// as one target each), plus crashes and pauses of the current masters and power losses of
// whole groups, so that every run has failovers.
func (r *run) groupsPlan() []faults.Fault {
	frng := rand.New(rand.NewPCG(r.cfg.Seed, 0x5eedfa17))
	var targets []string
	for h := 1; h <= nameServerHosts; h++ {
		targets = append(targets, fmt.Sprintf("@host:%d", h))
	}
	for _, g := range r.gr.groups {
		for _, n := range g.nodes {
			targets = append(targets, n.Addr)
		}
	}
	var isolated [][]string
	for i, name := range GroupNames {
		// A master cut off together with a producer and a consumer (apache/rocketmq#7017).
		grp := []string{"@master:" + name}
		if i < r.cfg.Producers {
			grp = append(grp, producerAddr(i))
		}
		if i < r.cfg.Consumers {
			grp = append(grp, consumerAddr(i))
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
	var roles []string
	for _, name := range GroupNames {
		roles = append(roles, "@master:"+name)
	}
	aimed := faults.Config{Targets: roles, Rates: map[faults.Kind]faults.Rate{
		faults.Crash: {MeanInterval: 25 * time.Second, MinDur: time.Second, MaxDur: 12 * time.Second},
		faults.Pause: {MeanInterval: 40 * time.Second, MinDur: time.Second, MaxDur: 8 * time.Second},
	}}
	plan = append(plan, faults.Plan(frng, aimed, r.cfg.Duration)...)
	plan = append(plan, powerLosses(frng, r.cfg.Duration)...)
	// Drawn from a PRNG of their own, so the faults above stay what they were before these
	// were added.
	plan = append(plan, masterFailovers(rand.New(rand.NewPCG(r.cfg.Seed, 0xdb1f0e5)), r.cfg.Duration)...)
	if r.cfg.Faults == nil {
		plan = append(plan, longPause(r.cfg.Seed, r.gr.replicaAddrs(), plan, r.cfg.Duration, r.mayStrike)...)
		plan = append(plan, groupsFlips(r.cfg.Seed, r.gr.replicaAddrs(), r.cfg.Duration)...)
	}
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].At < plan[j].At })
	return plan
}

// controllerAddrs lists the controller members' addresses.
func controllerAddrs() []string {
	var out []string
	for h := 1; h <= nameServerHosts; h++ {
		out = append(out, HostControllerAddr(h))
	}
	return out
}

// powerLosses draws, per group, power losses (see powerLoss) about every 40 s.
func powerLosses(rng *rand.Rand, d time.Duration) []faults.Fault {
	var out []faults.Fault
	for _, name := range GroupNames {
		at := time.Duration(0)
		for {
			at += time.Duration(rng.ExpFloat64() * float64(40*time.Second))
			if at+2*time.Second >= d {
				break
			}
			slow := 30*time.Millisecond + time.Duration(rng.Int64N(int64(170*time.Millisecond)))
			late := 3*time.Second + time.Duration(rng.Int64N(int64(9*time.Second)))
			out = append(out, powerLoss(name, at, slow, late)...)
			at += powerLossBack + late + 2*time.Second
		}
	}
	return out
}

// powerLossBack is how long after a power loss a group's slaves come back.
const powerLossBack = time.Second

// powerLoss is a power loss of group name: at at, the slaves' fsyncs start taking slow
// longer for 3 s, and 1.5 s later, amid acknowledgements, every replica loses power at once;
// the slaves come back a second later, the master late after them, so the slaves may elect
// one of themselves meanwhile. What a slave reported synced but had not made durable is then
// gone.
func powerLoss(name string, at, slow, late time.Duration) []faults.Fault {
	return []faults.Fault{
		{At: at, Kind: faults.SlowFsync, Nodes: []string{"@slaves:" + name}, Duration: 3 * time.Second, Delta: slow},
		// Same moment: the master first (resolved while it is still up), then the rest.
		{At: at + 1500*time.Millisecond, Kind: faults.Crash, Node: "@master:" + name, Duration: powerLossBack + late},
		{At: at + 1500*time.Millisecond, Kind: faults.Crash, Node: "@group:" + name, Duration: powerLossBack}}
}

// masterFailoverEvery is the mean interval of each kind of masterFailovers per group: about
// one of either per two groups and run of two minutes. Every 50 s, they failed about twice as
// many seeds of the sweep (liveness after healing, truncation under disk faults, a failed
// send later observed), while make sim-swarm caught each planted bug within 4 seeds either
// way; TestGroupsAimedFailovers shows each catches the planted bugs it aims at.
const masterFailoverEvery = 300 * time.Second

// masterFailovers draws, per group, the two failovers the swarm alone rarely composes: a
// stale master (isolateMaster) and a double failover (doubleFailover).
func masterFailovers(rng *rand.Rand, d time.Duration) []faults.Fault {
	var out []faults.Fault
	for _, name := range GroupNames {
		for at := time.Duration(0); ; {
			at += time.Duration(rng.ExpFloat64() * float64(masterFailoverEvery))
			if at >= d {
				break
			}
			hold := 6*time.Second + time.Duration(rng.Int64N(int64(14*time.Second)))
			out = append(out, isolateMaster(name, at, hold))
			at += hold
		}
		for at := time.Duration(0); ; {
			at += time.Duration(rng.ExpFloat64() * float64(masterFailoverEvery))
			if at >= d {
				break
			}
			first := 5500*time.Millisecond + time.Duration(rng.Int64N(int64(3500*time.Millisecond)))
			out = append(out, doubleFailover(name, at, first)...)
			at += first + doubleFailoverSecondDown
		}
	}
	return out
}

// isolateMaster cuts group name's master off from its replicas and from the controllers,
// but not from the clients or the name servers, for hold: the stale master. It keeps its
// routes while the controllers elect another master; a master that acknowledges past its
// lease, or returns without truncating what it wrote alone, is caught.
func isolateMaster(name string, at, hold time.Duration) faults.Fault {
	return faults.Fault{At: at, Kind: faults.Partition, Node: "@master:" + name,
		Peers: append([]string{"@slaves:" + name}, controllerAddrs()...), Duration: hold}
}

// doubleFailoverSecondDown is how long the second master of a double failover stays down.
const doubleFailoverSecondDown = 10 * time.Second

// doubleFailover crashes group name's master at at; first later (once another replica took
// over and acknowledged with the third) the new master crashes at the moment the first one
// restarts, alive to the controllers but behind: only the third may be elected. Two faults:
// the second crash strikes before the first one's restart, both due then (it was scheduled
// earlier).
func doubleFailover(name string, at, first time.Duration) []faults.Fault {
	return []faults.Fault{
		{At: at, Kind: faults.Crash, Node: "@master:" + name, Duration: first},
		{At: at + first, Kind: faults.Crash, Node: "@master:" + name, Duration: doubleFailoverSecondDown}}
}

func producerAddr(i int) string { return fmt.Sprintf("127.0.2.%d:1", i+1) }
func consumerAddr(i int) string { return fmt.Sprintf("127.0.3.%d:1", i+1) }

// seedCryptoRand points crypto/rand.Reader (raft's election timeouts) at a reader seeded from
// the run's seed, for the simulator only; the returned function restores it.
func seedCryptoRand(seed uint64) (restore func()) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], 0xc0ffee)
	old := crand.Reader
	crand.Reader = rand.NewChaCha8(key)
	return func() { crand.Reader = old }
}

// groupsDownState describes the nodes that are down, for a liveness violation.
func (r *run) groupsDownState() string {
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

// checkGroups runs after the final drain: per group, every acknowledged entry is still in
// every replica's log with the bytes that were acknowledged (sync replication; async counts
// the lost ones), and the replicas' logs agree on every index they share. It returns the
// number of acknowledged entries lost.
func (r *run) checkGroups() (lost int) {
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

// groupsCheck judges the history for the groups topology: in sync replication as the single
// topology does; in async replication queues that lost acknowledged or pulled messages are
// counted (LostAcked, LostObserved) and left out of the other checks, which hold for every
// other queue. (An async master makes a message readable once it is on its own disk; a
// failover to a slave that had not fetched it loses it, and its offset is reused.)
func (r *run) groupsCheck(drain map[linearizability.QueueKey][]linearizability.PulledMsg) {
	if err := r.h.Validate(); err != nil {
		r.violate("history", "malformed history: %v", err)
		return
	}
	async := r.cfg.Replication == brokernode.AsyncReplication
	vs := r.excuseUnreadable(linearizability.CheckDrainInvariants(r.h, drain))
	lossy := map[linearizability.QueueKey]bool{}
	for _, v := range vs {
		switch v.Kind {
		case linearizability.KindLostAcked:
			r.report.LostAcked++
		case linearizability.KindLostObserved:
			r.report.LostObserved++
		default:
			continue
		}
		if async {
			lossy[v.Queue] = true
		}
	}
	var show []linearizability.QueueKey
	for _, v := range vs {
		if lossy[v.Queue] {
			continue
		}
		r.violate(v.Kind, "%s", v.Message)
		show = append(show, v.Queue)
	}
	r.checkGroupOffsets(lossy)
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

// runGroups is Run for the groups topology.
func runGroups(cfg Config, wallNow func() time.Time) (*Report, error) {
	start := wallNow()
	defer seedCryptoRand(cfg.Seed)()
	if cfg.MinInSync == 0 {
		cfg.MinInSync = 2
	}
	w := sim.NewWorld(cfg.Seed,
		sim.NetConfig{MinLatency: 50 * time.Microsecond, MaxLatency: 2 * time.Millisecond},
		sim.DiskConfig{MinFsync: 100 * time.Microsecond, MaxFsync: 3 * time.Millisecond},
		cfg.Logger)
	r := &run{cfg: cfg, w: w, stopAt: cfg.Duration,
		report: &Report{Seed: cfg.Seed, Topology: BrokerGroups, Sends: map[linearizability.Outcome]int{}, FlowCounts: map[string]int{},
			GroupFailovers: map[string]int{}},
		offsetReads: map[groupQueue][]offsetRead{}, pulledUpTo: map[groupQueue]int64{}, txByID: map[string]*txRecord{}}
	// The flows of flows.go assume one broker (its locks, delays and check-backs); this
	// topology runs plain sends and pulls.
	r.flows = Flows{}
	r.report.Flows = r.flows
	r.delayTable = brokernode.DefaultConfig().DelayLevels
	r.buildGroups()
	r.observeGroups()

	plan := cfg.Plan
	if !cfg.ExplicitPlan {
		plan = r.groupsPlan()
	}
	for i := 0; i < cfg.Producers; i++ {
		r.startProducer(i)
	}
	for i := 0; i < cfg.Consumers; i++ {
		r.startConsumer(i)
	}
	r.startOffsetAuditor()
	in := &faults.Injector{World: w, Resolve: r.resolveRole, OnFlip: r.onFlip, FlipUpTo: r.groupFlipUpTo}
	if err := in.Schedule(plan); err != nil {
		return nil, err
	}
	r.plan = plan
	r.report.Plan = plan
	r.report.Faults = faults.Count(plan)
	r.watchGroups()
	r.superviseControllers()
	r.startRouteCheck(nameServers(), r.gr.replicaAddrs())
	w.RunUntil(cfg.Duration)
	r.stopped = true

	// Heal: let the planned faults run their course, then end whatever is left and start
	// every node that is down.
	w.RunFor(10 * time.Second)
	w.HealAll()
	for _, addr := range w.Addrs() {
		if n := w.Node(addr); !n.Up() {
			n.Restart()
		}
	}
	drain := r.drain(r.groupsDownState)
	// Replicas that were behind catch up before their logs are compared.
	w.RunFor(10 * time.Second)
	r.report.TruncatedAcked = r.checkGroups()
	for _, g := range r.gr.groups {
		for _, n := range g.nodes {
			r.report.Crashes += n.Crashes
		}
	}
	r.report.Simulated = w.Now()
	r.report.Events = w.Delivered()
	r.report.TraceHash = w.TraceHash()
	r.report.Consumed = r.consumed
	r.groupsCheck(drain)
	r.report.Wall = wallNow().Sub(start)
	return r.report, nil
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
