package faults

// Faults aimed at the roles of a replicated broker group rather than at addresses: the swarm
// alone rarely composes a failover that matters (it strikes whichever node it drew, when it
// drew it). A plan names the roles symbolically, and the harness's Injector.Resolve maps each
// name to the nodes that hold the role at the moment the fault strikes:
//
//   - MasterOf(g): the replica of broker group g that believes it is master (none if no
//     replica does);
//   - SlavesOf(g): the other replicas of g;
//   - SlaveOf(g): one of them, the lowest-numbered (one slave lagging while the other keeps up);
//   - GroupOf(g): every replica of g.

import (
	"math/rand/v2"
	"time"
)

// MasterOf, SlavesOf and GroupOf name the roles of broker group g (see above).
func MasterOf(g string) string { return "@master:" + g }

// SlavesOf names the replicas of g that are not its master.
func SlavesOf(g string) string { return "@slaves:" + g }

// SlaveOf names one slave of g: the lowest-numbered replica that is not its master.
func SlaveOf(g string) string { return "@slave:" + g }

// GroupOf names every replica of g.
func GroupOf(g string) string { return "@group:" + g }

// MasterCrashes and MasterPauses are the rates of crashes and pauses aimed at the masters of
// a plan's groups (Config.Targets: their MasterOf names): every run of a couple of minutes
// then has failovers.
var (
	MasterCrashes = Rate{MeanInterval: 25 * time.Second, MinDur: time.Second, MaxDur: 12 * time.Second}
	MasterPauses  = Rate{MeanInterval: 40 * time.Second, MinDur: time.Second, MaxDur: 8 * time.Second}
)

// PowerLosses draws, for each of groups, power losses (see PowerLoss) about every 40 s over d.
func PowerLosses(rng *rand.Rand, groups []string, d time.Duration) []Fault {
	var out []Fault
	for _, name := range groups {
		at := time.Duration(0)
		for {
			at += time.Duration(rng.ExpFloat64() * float64(40*time.Second))
			if at+2*time.Second >= d {
				break
			}
			slow := 30*time.Millisecond + time.Duration(rng.Int64N(int64(170*time.Millisecond)))
			late := 3*time.Second + time.Duration(rng.Int64N(int64(9*time.Second)))
			out = append(out, PowerLoss(name, at, slow, late)...)
			at += PowerLossBack + late + 2*time.Second
		}
	}
	return out
}

// PowerLossBack is how long after a power loss a group's slaves come back.
const PowerLossBack = time.Second

// PowerLoss is a power loss of group g: at at, the slaves' fsyncs start taking slow longer for
// 3 s, and 1.5 s later, amid acknowledgements, every replica loses power at once; the slaves
// come back PowerLossBack later, the master late after them, so the slaves may elect one of
// themselves meanwhile. What a slave reported synced but had not made durable is then gone.
func PowerLoss(g string, at, slow, late time.Duration) []Fault {
	return []Fault{
		{At: at, Kind: SlowFsync, Nodes: []string{SlavesOf(g)}, Duration: 3 * time.Second, Delta: slow},
		// Same moment: the master first (resolved while it is still up), then the rest.
		{At: at + 1500*time.Millisecond, Kind: Crash, Node: MasterOf(g), Duration: PowerLossBack + late},
		{At: at + 1500*time.Millisecond, Kind: Crash, Node: GroupOf(g), Duration: PowerLossBack}}
}

// MasterFailoverEvery is the mean interval of each kind of MasterFailovers per group: about
// one of either per two groups and run of two minutes. Every 50 s, they failed about twice as
// many seeds of the sweep (liveness after healing, truncation under disk faults, a failed
// send later observed), while make sim-swarm caught each planted bug within 4 seeds either
// way; the simulator's TestGroupsAimedFailovers shows each catches the planted bugs it aims at.
const MasterFailoverEvery = 300 * time.Second

// MasterFailovers draws, for each of groups over d, the two failovers the swarm alone rarely
// composes: a stale master (IsolateMaster, from controllers) and a double failover
// (DoubleFailover).
func MasterFailovers(rng *rand.Rand, groups, controllers []string, d time.Duration) []Fault {
	var out []Fault
	for _, name := range groups {
		for at := time.Duration(0); ; {
			at += time.Duration(rng.ExpFloat64() * float64(MasterFailoverEvery))
			if at >= d {
				break
			}
			hold := 6*time.Second + time.Duration(rng.Int64N(int64(14*time.Second)))
			out = append(out, IsolateMaster(name, controllers, at, hold))
			at += hold
		}
		for at := time.Duration(0); ; {
			at += time.Duration(rng.ExpFloat64() * float64(MasterFailoverEvery))
			if at >= d {
				break
			}
			first := 5500*time.Millisecond + time.Duration(rng.Int64N(int64(3500*time.Millisecond)))
			out = append(out, DoubleFailover(name, at, first)...)
			at += first + DoubleFailoverSecondDown
		}
	}
	return out
}

// IsolateMaster cuts group g's master off from its replicas and from the controllers, but not
// from the clients or the name servers, for hold: the stale master. It keeps its routes while
// the controllers elect another master; a master that acknowledges past its lease, or returns
// without truncating what it wrote alone, is caught.
func IsolateMaster(g string, controllers []string, at, hold time.Duration) Fault {
	return Fault{At: at, Kind: Partition, Node: MasterOf(g),
		Peers: append([]string{SlavesOf(g)}, controllers...), Duration: hold}
}

// DoubleFailoverSecondDown is how long the second master of a double failover stays down.
const DoubleFailoverSecondDown = 10 * time.Second

// DoubleFailover crashes group g's master at at; first later (once another replica took over
// and acknowledged with the third) the new master crashes at the moment the first one
// restarts, alive to the controllers but behind: only the third may be elected. Two faults:
// the second crash strikes before the first one's restart, both due then (it was scheduled
// earlier).
func DoubleFailover(g string, at, first time.Duration) []Fault {
	return []Fault{
		{At: at, Kind: Crash, Node: MasterOf(g), Duration: first},
		{At: at + first, Kind: Crash, Node: MasterOf(g), Duration: DoubleFailoverSecondDown}}
}
