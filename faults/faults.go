// Package faults plans and injects faults into a simulated world. A plan is drawn from a seeded
// PRNG, so a seed names a failure scenario exactly; Schedule puts a plan onto a sim.World.
// Swarm testing draws the fault kinds and rates themselves from the seed, so different seeds
// stress different mixes. Every fault heals by itself after its Duration (a bit flip, which is
// damage rather than a condition, is instantaneous), so a run that outlasts its plan ends with a
// healed cluster; sim.World.HealAll ends whatever is left at once.
//
// The kinds, what each models, and the real incident it stands for:
//
// Network (Node/Nodes is one side, Peers the other; a side left empty is every other node):
//   - crash: a process dies (kill -9, OOM killer, power loss) losing what its disk had not made
//     durable, and restarts after Duration. The baseline: apache/rocketmq#1155 and #3015 lost
//     acknowledged messages across exactly this.
//   - reset: every connection of a node is reset at once, as a load balancer or NAT dropping
//     its connection table, or a firewall's idle timeout, does.
//   - partition: the links between the two sides are cut both ways (by default one node from
//     everyone else: a failed NIC or switch port). Connections across break; dials time out.
//   - partition-group: a chosen group of nodes (e.g. a master together with its clients) is
//     cut off from the rest: the data-centre isolation behind RocketMQ's controller-mode split
//     brain, apache/rocketmq#7017, where an isolated master kept acknowledging its local
//     clients while the controllers elected another.
//   - split: the targets split into a minority and the rest (every other node): GitHub's
//     2018-10-21 outage, where a 43-second split between data centres let a failover elect a
//     new primary while the old one still took writes.
//   - bridge: a non-transitive partition: two sides cannot reach each other, while the nodes on
//     neither side (at least one target, the "bridge") reach both, as in Cloudflare's
//     2020-11-02 incident, where a partially failed switch left etcd members seeing different
//     subsets of each other and leadership flapping.
//   - one-way: frames from one side to the other are lost, the other direction flows (a gray
//     failure: a node that hears but is not heard, or the reverse). Under TCP loss is a stall:
//     frames are retransmitted and arrive late and in order when the loss ends, or the
//     connection resets if it lasts past the retransmit timeout (sim.World.Drop).
//   - delay: every frame between the two sides takes Delta longer, both ways, for Duration:
//     congestion such as AWS us-east-1 on 2021-12-07, where an overloaded internal network
//     turned calls slow rather than failed, and timeouts fired on live peers.
//
// Process:
//   - pause: the process stops for Duration and then carries on, its timers and inbound frames
//     delivered late and nothing lost (a stop-the-world GC, a VM migration, SIGSTOP): the
//     HBase "Juliet pause", where a region server woke from a long GC still believing it held
//     a lease that had expired. For a broker: a deposed master that resumes after a new one
//     was elected must not acknowledge with its stale epoch.
//
// Disk (the node's simulated disk; faults persist across the node's crashes):
//   - disk-eio-write: writes (appends, truncations, metadata files) fail with EIO for Duration:
//     a failing disk or controller.
//   - disk-eio-sync: fsyncs fail with EIO for Duration and make nothing durable: PostgreSQL's
//     2018 "fsyncgate", where a failed fsync was retried, reported success, and the data was
//     gone; a node must not treat a failed sync as done.
//   - disk-full: writes fail with ENOSPC for Duration: a full disk, which RocketMQ answers by
//     refusing sends (SERVICE_NOT_AVAILABLE) rather than by crashing.
//   - slow-fsync: fsync completions take Delta longer for Duration (a degraded disk, a noisy
//     neighbour): etcd's "slow fdatasync" leader losses and RocketMQ's "broker busy"
//     (TIMEOUT_CLEAN_QUEUE) rejections when flushes stall.
//   - bit-flip: one stored (durable) log entry (chosen by Pick, optionally among logs named
//     with the prefix Log) gets a flipped bit; its CRC catches it on every read and it is
//     never served. Silent media corruption, as studied in "Redundancy Does Not Imply Fault Tolerance"
//     (FAST 2017), where one corrupted block took down or silently damaged whole clusters.
//
// Clock (only what the node reads from Env.Now changes; virtual time and timers do not):
//   - clock-skew: the node's clock is off by Delta (either sign) for Duration: an unsynced or
//     misconfigured NTP, a VM restored from a snapshot. Timestamps it stores (born and store
//     times, consume-from-timestamp lookups, delay levels) are off by as much.
//   - clock-jump: the clock steps by Delta (either sign) and is slewed back to true time over
//     Duration: leap seconds (2012's took down Reddit, Mozilla and many Cassandra clusters) and
//     Cloudflare's 2017-01-01 outage, where time went backwards and a negative duration crashed
//     their DNS servers.
//
// Old plans (crash, reset and single-node partitions written before the other kinds existed)
// decode and replay unchanged, and Swarm draws exactly what it drew before: the kinds beyond
// those three are opt-in through SwarmWith or a hand-written Config.
package faults

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim"
)

// Kind is a kind of fault.
type Kind string

const (
	// Crash kills a node (losing what its disk had not made durable) and restarts it after Fault.Duration.
	Crash Kind = "crash"
	// Reset resets every connection of a node.
	Reset Kind = "reset"
	// Partition cuts the links between two sides both ways for Fault.Duration (by default one
	// node from every other).
	Partition Kind = "partition"
	// GroupPartition cuts a configured group of nodes (Config.Groups) off from the rest.
	GroupPartition Kind = "partition-group"
	// Split cuts a minority of the targets off from every other node.
	Split Kind = "split"
	// Bridge cuts two sides of the targets apart while the nodes on neither side reach both.
	Bridge Kind = "bridge"
	// OneWay loses the frames from one side to the other (the reverse direction flows).
	OneWay Kind = "one-way"
	// Delay adds Fault.Delta of latency between the two sides, both ways.
	Delay Kind = "delay"
	// Pause stops a node processing events for Fault.Duration; nothing is lost.
	Pause Kind = "pause"
	// DiskWriteEIO fails a node's disk writes with EIO.
	DiskWriteEIO Kind = "disk-eio-write"
	// DiskSyncEIO fails a node's fsyncs with EIO.
	DiskSyncEIO Kind = "disk-eio-sync"
	// DiskFull fails a node's disk writes with ENOSPC.
	DiskFull Kind = "disk-full"
	// SlowFsync delays a node's fsync completions by Fault.Delta.
	SlowFsync Kind = "slow-fsync"
	// BitFlip corrupts one stored log entry of a node (instantaneous).
	BitFlip Kind = "bit-flip"
	// ClockSkew offsets a node's clock by Fault.Delta for Fault.Duration.
	ClockSkew Kind = "clock-skew"
	// ClockJump steps a node's clock by Fault.Delta and slews it back over Fault.Duration.
	ClockJump Kind = "clock-jump"
)

// Kinds lists every kind in a stable order (Plan draws them in this order).
var Kinds = []Kind{Crash, Reset, Partition, GroupPartition, Split, Bridge, OneWay, Delay, Pause,
	DiskWriteEIO, DiskSyncEIO, DiskFull, SlowFsync, BitFlip, ClockSkew, ClockJump}

// Families of kinds, for SwarmOptions.Extra. Swarm draws the default ones only.
var (
	DefaultKinds = []Kind{Crash, Reset, Partition}
	NetworkKinds = []Kind{GroupPartition, Split, Bridge, OneWay, Delay}
	ProcessKinds = []Kind{Pause}
	DiskKinds    = []Kind{DiskWriteEIO, DiskSyncEIO, DiskFull, SlowFsync, BitFlip}
	ClockKinds   = []Kind{ClockSkew, ClockJump}
	// ExtraKinds is every kind beyond the default ones.
	ExtraKinds = slices.Concat(NetworkKinds, ProcessKinds, DiskKinds, ClockKinds)
)

// network reports whether k acts on links between two sides (rather than on nodes).
func (k Kind) network() bool {
	switch k {
	case Partition, GroupPartition, Split, Bridge, OneWay, Delay:
		return true
	}
	return false
}

func (k Kind) known() bool { return slices.Contains(Kinds, k) }

// Fault is one planned fault.
//
// Node or Nodes (never both) names the nodes a node fault strikes, or one side of a network
// fault; Peers names the other side. For a network fault a side left empty is every node not
// on the other side (at the moment it strikes). A name starting with '@' is symbolic ("@master:
// broker-a"): an Injector's Resolve maps it to nodes when the fault strikes, so a plan can aim
// at a role (the current master) rather than at an address.
type Fault struct {
	At       time.Duration
	Kind     Kind
	Node     string
	Duration time.Duration
	Nodes    []string      `json:",omitempty"`
	Peers    []string      `json:",omitempty"`
	Delta    time.Duration `json:",omitempty"` // Delay, SlowFsync: extra latency; ClockSkew, ClockJump: offset
	Pick     uint64        `json:",omitempty"` // BitFlip: which stored entry
	Log      string        `json:",omitempty"` // BitFlip: only logs whose names start with this
}

// group is the first side: Nodes, or Node alone, or nothing.
func (f Fault) group() []string {
	if len(f.Nodes) > 0 {
		return f.Nodes
	}
	if f.Node != "" {
		return []string{f.Node}
	}
	return nil
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %s", f.At, f.Kind)
	side := func(s []string) string {
		if len(s) == 0 {
			return "rest"
		}
		return strings.Join(s, ",")
	}
	switch {
	case f.Kind.network() && (len(f.Nodes) > 0 || len(f.Peers) > 0 || f.Node == ""):
		sep := "|"
		if f.Kind == OneWay {
			sep = ">"
		}
		fmt.Fprintf(&b, " %s%s%s", side(f.group()), sep, side(f.Peers))
	case f.Kind == OneWay:
		fmt.Fprintf(&b, " %s>rest", f.Node)
	default:
		fmt.Fprintf(&b, " %s", side(f.group()))
	}
	if f.Kind == BitFlip {
		fmt.Fprintf(&b, " pick %d", f.Pick)
		if f.Log != "" {
			fmt.Fprintf(&b, " in %s*", f.Log)
		}
		return b.String()
	}
	if f.Delta != 0 {
		fmt.Fprintf(&b, " by %v", f.Delta)
	}
	fmt.Fprintf(&b, " for %v", f.Duration)
	return b.String()
}

// Rate is how often a kind of fault strikes each target: a mean interval (0 disables it), how
// long it lasts, and for kinds with a size (Delay, SlowFsync, ClockSkew, ClockJump) its bounds
// (clock offsets get a random sign).
type Rate struct {
	MeanInterval       time.Duration
	MinDur, MaxDur     time.Duration
	MinDelta, MaxDelta time.Duration
}

// Config says which nodes are targets and how often each kind strikes.
type Config struct {
	// Targets are the nodes node faults strike, one timeline per target and kind; network
	// faults take them as one side (partition, one-way, delay) or split them (split, bridge).
	// Symbolic names are allowed (see Fault), except for split and bridge.
	Targets []string
	Rates   map[Kind]Rate
	// Groups are the node sets GroupPartition isolates, one timeline per group (e.g. a master
	// with its clients: {"@master:broker-a", "producer-1", "consumer-1"}).
	Groups [][]string
	// FlipLog restricts BitFlip to logs whose names start with it ("" for every log).
	FlipLog string
}

// Swarm draws a configuration from r: each kind is on or off and gets its own rate, so a sweep
// over seeds covers many mixes (swarm testing). Crashes are always on: they are the fault
// every scenario must survive. It draws the default kinds only (crash, reset, partition);
// SwarmWith adds others.
func Swarm(r *rand.Rand, targets []string) Config {
	cfg := Config{Targets: targets, Rates: map[Kind]Rate{}}
	cfg.Rates[Crash] = Rate{MeanInterval: time.Duration(3+r.IntN(15)) * time.Second,
		MinDur: 100 * time.Millisecond, MaxDur: time.Duration(1+r.IntN(5)) * time.Second}
	if r.IntN(2) == 0 {
		cfg.Rates[Reset] = Rate{MeanInterval: time.Duration(2+r.IntN(10)) * time.Second}
	}
	if r.IntN(2) == 0 {
		cfg.Rates[Partition] = Rate{MeanInterval: time.Duration(5+r.IntN(20)) * time.Second,
			MinDur: 200 * time.Millisecond, MaxDur: time.Duration(1+r.IntN(8)) * time.Second}
	}
	return cfg
}

// SwarmOptions opts a swarm into more kinds.
type SwarmOptions struct {
	// Extra lists kinds beyond the default ones to consider (e.g. ExtraKinds); each is then on
	// or off per seed, with a rate drawn from the seed.
	Extra   []Kind
	Groups  [][]string // Config.Groups
	FlipLog string     // Config.FlipLog
}

// SwarmWith draws what Swarm draws, with the same draws first, then for each kind of
// opts.Extra, in the order of Kinds, whether it is on and its rate.
func SwarmWith(r *rand.Rand, targets []string, opts SwarmOptions) Config {
	cfg := Swarm(r, targets)
	cfg.Groups, cfg.FlipLog = opts.Groups, opts.FlipLog
	sec := func(lo, n int) time.Duration { return time.Duration(lo+r.IntN(n)) * time.Second }
	ms := func(lo, n int) time.Duration { return time.Duration(lo+r.IntN(n)) * time.Millisecond }
	for _, k := range Kinds {
		if !slices.Contains(opts.Extra, k) || slices.Contains(DefaultKinds, k) || r.IntN(2) != 0 {
			continue
		}
		var rate Rate
		switch k {
		case GroupPartition, OneWay:
			rate = Rate{MeanInterval: sec(5, 20), MinDur: 200 * time.Millisecond, MaxDur: sec(1, 8)}
		case Split, Bridge:
			rate = Rate{MeanInterval: sec(10, 30), MinDur: 500 * time.Millisecond, MaxDur: sec(1, 10)}
		case Delay:
			rate = Rate{MeanInterval: sec(3, 12), MinDur: 100 * time.Millisecond, MaxDur: sec(1, 5),
				MinDelta: 10 * time.Millisecond, MaxDelta: ms(50, 2000)}
		case Pause:
			rate = Rate{MeanInterval: sec(5, 15), MinDur: 50 * time.Millisecond, MaxDur: ms(500, 6000)}
		case DiskWriteEIO, DiskSyncEIO:
			rate = Rate{MeanInterval: sec(10, 30), MinDur: 50 * time.Millisecond, MaxDur: ms(200, 3000)}
		case DiskFull:
			rate = Rate{MeanInterval: sec(15, 45), MinDur: 100 * time.Millisecond, MaxDur: ms(500, 5000)}
		case SlowFsync:
			rate = Rate{MeanInterval: sec(5, 15), MinDur: 200 * time.Millisecond, MaxDur: sec(1, 6),
				MinDelta: 5 * time.Millisecond, MaxDelta: ms(20, 1000)}
		case BitFlip:
			rate = Rate{MeanInterval: sec(15, 45)}
		case ClockSkew:
			rate = Rate{MeanInterval: sec(10, 30), MinDur: time.Second, MaxDur: sec(5, 30),
				MinDelta: time.Millisecond, MaxDelta: sec(1, 120)}
		case ClockJump:
			rate = Rate{MeanInterval: sec(10, 30), MinDur: time.Second, MaxDur: sec(2, 30),
				MinDelta: 100 * time.Millisecond, MaxDelta: sec(1, 60)}
		default:
			panic(fmt.Sprintf("faults: no swarm rate for kind %q", k))
		}
		cfg.Rates[k] = rate
	}
	return cfg
}

// between draws a duration in [lo, hi) (lo when hi <= lo).
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// Plan draws the faults of a run of length d from r, kind by kind in the order of Kinds. Faults
// of one kind on one target (one group, for GroupPartition; the whole cluster, for Split and
// Bridge) never overlap. The plan is sorted by time.
func Plan(r *rand.Rand, cfg Config, d time.Duration) []Fault {
	var out []Fault
	targets := append([]string(nil), cfg.Targets...)
	sort.Strings(targets)
	for _, k := range Kinds {
		rate, ok := cfg.Rates[k]
		if !ok || rate.MeanInterval <= 0 {
			continue
		}
		// Each timeline yields a template per fault; sides drawn per fault are filled in below.
		var timelines []Fault
		switch k {
		case GroupPartition:
			for _, g := range cfg.Groups {
				timelines = append(timelines, Fault{Nodes: slices.Clone(g)})
			}
		case Split:
			if len(targets) >= 2 {
				timelines = append(timelines, Fault{})
			}
		case Bridge:
			if len(targets) >= 3 {
				timelines = append(timelines, Fault{})
			}
		default:
			for _, t := range targets {
				timelines = append(timelines, Fault{Node: t})
			}
		}
		for _, tl := range timelines {
			at := time.Duration(0)
			for {
				at += time.Duration(r.ExpFloat64() * float64(rate.MeanInterval))
				if at >= d {
					break
				}
				dur := rate.MinDur
				if rate.MaxDur > rate.MinDur {
					dur += time.Duration(r.Int64N(int64(rate.MaxDur - rate.MinDur)))
				}
				f := tl
				f.At, f.Kind, f.Duration = at, k, dur
				drawShape(r, &f, rate, cfg, targets)
				out = append(out, f)
				at += f.Duration
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// drawShape draws what is particular to f's kind: its sides, size or target entry.
func drawShape(r *rand.Rand, f *Fault, rate Rate, cfg Config, targets []string) {
	switch f.Kind {
	case OneWay:
		if r.IntN(2) == 0 { // the node is not heard (its frames are lost) or does not hear
			f.Node, f.Peers = "", []string{f.Node}
		}
	case Split:
		perm := r.Perm(len(targets))
		minority := 1 + r.IntN(len(targets)/2)
		f.Nodes = pickSorted(targets, perm[:minority])
	case Bridge:
		perm := r.Perm(len(targets)) // perm[0] is the bridge
		left := 1 + r.IntN(len(targets)-2)
		f.Nodes = pickSorted(targets, perm[1:1+left])
		f.Peers = pickSorted(targets, perm[1+left:])
	case Delay, SlowFsync:
		f.Delta = between(r, rate.MinDelta, rate.MaxDelta)
	case ClockSkew, ClockJump:
		f.Delta = between(r, rate.MinDelta, rate.MaxDelta)
		if r.IntN(2) == 0 {
			f.Delta = -f.Delta
		}
		if f.Kind == ClockJump && f.Duration < 2*f.Delta.Abs() {
			// Slew at most at half speed, so a clock stepped forward never runs backwards.
			f.Duration = 2 * f.Delta.Abs()
		}
	case BitFlip:
		f.Duration = 0
		f.Pick = r.Uint64()
		f.Log = cfg.FlipLog
	}
}

func pickSorted(names []string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = names[j]
	}
	sort.Strings(out)
	return out
}

// Injector puts faults onto a world.
type Injector struct {
	World *sim.World
	// Resolve maps a symbolic node name (one starting with '@') to the nodes it stands for at
	// the moment a fault strikes (e.g. "@master:broker-a" to the group's current master); it
	// may return none, and the fault then strikes nobody through that name. Nil when plans
	// use addresses only.
	Resolve func(name string) []string
	// OnFlip, if set, is called just before a bit flip strikes entry index of log on node
	// addr, so that a harness can note what the flip destroys (it may read the entry then).
	OnFlip func(addr, log string, index uint64)
	// OnStrike, if set, is called as a node fault strikes node addr, its symbolic name
	// resolved, so that a harness can note faults whose effect is momentary (a reset).
	OnStrike func(addr string, f Fault)
	// FlipUpTo, if set, bounds the entries a bit flip may strike on node addr's log: at or
	// below what it returns (and, as always, durable).
	FlipUpTo func(addr, log string) uint64
}

// Schedule puts a plan onto w (addresses only; see Injector for symbolic names). It panics if
// the plan names a node w does not have (Injector.Schedule returns that as an error).
func Schedule(w *sim.World, plan []Fault) {
	if err := (&Injector{World: w}).Schedule(plan); err != nil {
		panic(err)
	}
}

// Inject applies one fault now (addresses only).
func Inject(w *sim.World, f Fault) { (&Injector{World: w}).Inject(f) }

// Check reports whether every name in plan is a node of the world or, with a resolver, symbolic.
func (in *Injector) Check(plan []Fault) error {
	for i, f := range plan {
		for _, name := range slices.Concat(f.group(), f.Peers) {
			if isSymbolic(name) {
				if in.Resolve == nil {
					return fmt.Errorf("fault %d (%v): symbolic node %q and no resolver", i, f, name)
				}
			} else if in.World.Node(name) == nil {
				return fmt.Errorf("fault %d (%v): no node %q in this world", i, f, name)
			}
		}
	}
	return nil
}

// Schedule checks plan and puts it onto the world.
func (in *Injector) Schedule(plan []Fault) error {
	if err := in.Check(plan); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	for _, f := range plan {
		in.World.At(f.At, func() { in.Inject(f) })
	}
	return nil
}

func isSymbolic(name string) bool { return strings.HasPrefix(name, "@") }

// resolve maps names to sorted, distinct node addresses.
func (in *Injector) resolve(names []string) []string {
	var out []string
	for _, name := range names {
		if !isSymbolic(name) {
			out = append(out, name)
			continue
		}
		if in.Resolve == nil {
			panic(fmt.Sprintf("faults: symbolic node %q and no resolver", name))
		}
		out = append(out, in.Resolve(name)...)
	}
	sort.Strings(out)
	out = slices.Compact(out)
	for _, a := range out {
		if in.World.Node(a) == nil {
			panic(fmt.Sprintf("faults: no node %s", a))
		}
	}
	return out
}

// sides resolves a network fault's two sides (an empty side is every node not on the other);
// ok is false when a named side resolves to nobody.
func (in *Injector) sides(f Fault) (a, b []string, ok bool) {
	named, peers := f.group(), f.Peers
	a, b = in.resolve(named), in.resolve(peers)
	if (len(named) > 0 && len(a) == 0) || (len(peers) > 0 && len(b) == 0) {
		return nil, nil, false
	}
	complement := func(of []string) []string {
		return slices.DeleteFunc(in.World.Addrs(), func(x string) bool { return slices.Contains(of, x) })
	}
	switch {
	case len(named) == 0:
		a = complement(b)
	case len(peers) == 0:
		b = complement(a)
	default:
		b = slices.DeleteFunc(b, func(x string) bool { return slices.Contains(a, x) })
	}
	return a, b, len(a) > 0 && len(b) > 0
}

// Inject applies one fault now and schedules its healing.
func (in *Injector) Inject(f Fault) {
	w := in.World
	if f.Kind.network() {
		a, b, ok := in.sides(f)
		if !ok {
			return
		}
		forLinks := func(fn func(from, to string)) {
			for _, x := range a {
				for _, y := range b {
					fn(x, y)
					if f.Kind != OneWay {
						fn(y, x)
					}
				}
			}
		}
		switch f.Kind {
		case OneWay:
			forLinks(w.Drop)
			w.After(f.Duration, func() { forLinks(w.Undrop) })
		case Delay:
			add := func(from, to string) { w.AddDelay(from, to, f.Delta) }
			remove := func(from, to string) { w.RemoveDelay(from, to, f.Delta) }
			forLinks(add)
			w.After(f.Duration, func() { forLinks(remove) })
		default: // Partition, GroupPartition, Split, Bridge
			forLinks(w.Block)
			w.After(f.Duration, func() { forLinks(w.Unblock) })
		}
		return
	}
	for _, addr := range in.resolve(f.group()) {
		if in.OnStrike != nil {
			in.OnStrike(addr, f)
		}
		in.injectNode(w.Node(addr), f)
	}
}

// injectNode applies a node fault to n.
func (in *Injector) injectNode(n *sim.Node, f Fault) {
	w := in.World
	healAfter := func(heal func()) { w.After(f.Duration, heal) }
	switch f.Kind {
	case Crash:
		if !n.Up() {
			return
		}
		n.Crash()
		w.After(f.Duration, n.Restart)
	case Reset:
		n.ResetConnections()
	case Pause:
		n.Pause(f.Duration)
	case DiskWriteEIO:
		healAfter(n.FailDiskWrites(fmt.Errorf("injected disk fault: %w", node.ErrIO)))
	case DiskSyncEIO:
		healAfter(n.FailDiskSyncs(fmt.Errorf("injected disk fault: %w", node.ErrIO)))
	case DiskFull:
		healAfter(n.FailDiskWrites(fmt.Errorf("injected disk fault: %w", node.ErrNoSpace)))
	case SlowFsync:
		healAfter(n.SlowFsync(f.Delta))
	case BitFlip:
		flip(n, f, in.OnFlip, in.FlipUpTo)
	case ClockSkew:
		healAfter(n.SkewClock(f.Delta))
	case ClockJump:
		n.JumpClock(f.Delta, f.Duration)
	default:
		panic(fmt.Sprintf("faults: unknown kind %q", f.Kind))
	}
}

// flip corrupts entry f.Pick (modulo the durable entries there are) of the node's logs named
// with prefix f.Log, counted across them in name order; a disk with no durable entries is left
// alone.
// onFlip (may be nil) hears of the entry first; upTo (may be nil) bounds the entries.
func flip(n *sim.Node, f Fault, onFlip func(addr, log string, index uint64), upTo func(addr, log string) uint64) {
	names, err := n.Disk.ListLogs(f.Log)
	if err != nil {
		panic(fmt.Sprintf("faults: list logs of %s: %v", n.Addr, err))
	}
	// Only what is on the medium: entries not yet synced are still in memory (the production
	// disk serves them from there, unchecked), where media corruption does not reach.
	span := func(name string) (first, last uint64) {
		first, _, _ = n.Disk.Span(name)
		last, _ = n.Disk.Durable(name)
		if upTo != nil {
			last = max(min(last, upTo(n.Addr, name)), first-1)
		}
		return first, last
	}
	var total uint64
	for _, name := range names {
		first, last := span(name)
		total += last + 1 - first
	}
	if total == 0 {
		return
	}
	k := f.Pick % total
	for _, name := range names {
		first, last := span(name)
		if c := last + 1 - first; k >= c {
			k -= c
			continue
		}
		if onFlip != nil {
			onFlip(n.Addr, name, first+k)
		}
		if err := n.Disk.FlipByte(name, first+k); err != nil {
			panic(fmt.Sprintf("faults: flip %s entry %d on %s: %v", name, first+k, n.Addr, err))
		}
		return
	}
	panic("faults: flip: entry count changed while picking")
}

// Count tallies a plan by kind.
func Count(plan []Fault) map[Kind]int {
	out := map[Kind]int{}
	for _, f := range plan {
		out[f.Kind]++
	}
	return out
}

// EncodePlan renders a plan as JSON (times in nanoseconds), for replaying it later.
func EncodePlan(plan []Fault) ([]byte, error) {
	if plan == nil {
		plan = []Fault{}
	}
	return json.MarshalIndent(plan, "", "  ")
}

// maxSpan bounds every time in a decoded plan, so sums of them cannot overflow.
const maxSpan = 1000 * time.Hour

// DecodePlan parses EncodePlan's output and checks every fault is well formed for its kind.
func DecodePlan(b []byte) ([]Fault, error) {
	var plan []Fault
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("decode fault plan: %w", err)
	}
	for i := range plan {
		f := &plan[i]
		if len(f.Nodes) == 0 {
			f.Nodes = nil
		}
		if len(f.Peers) == 0 {
			f.Peers = nil
		}
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("decode fault plan: fault %d (%v): %w", i, *f, err)
		}
	}
	return plan, nil
}

func (f Fault) validate() error {
	if !f.Kind.known() {
		return fmt.Errorf("unknown kind %q", f.Kind)
	}
	if f.At < 0 || f.Duration < 0 || f.At > maxSpan || f.Duration > maxSpan || f.Delta.Abs() > maxSpan {
		return fmt.Errorf("a time is negative or beyond %v", maxSpan)
	}
	if f.Node != "" && len(f.Nodes) > 0 {
		return fmt.Errorf("both Node and Nodes")
	}
	for _, name := range slices.Concat(f.Nodes, f.Peers) {
		if name == "" {
			return fmt.Errorf("an empty node name")
		}
	}
	if f.Kind.network() {
		if len(f.group()) == 0 && len(f.Peers) == 0 {
			return fmt.Errorf("no side named")
		}
	} else if len(f.group()) == 0 || len(f.Peers) > 0 {
		return fmt.Errorf("a node fault names its nodes in Node or Nodes, and no Peers")
	}
	switch f.Kind {
	case Delay, SlowFsync:
		if f.Delta <= 0 {
			return fmt.Errorf("needs a positive Delta")
		}
	case ClockSkew:
		if f.Delta == 0 {
			return fmt.Errorf("needs a Delta")
		}
	case ClockJump:
		if f.Delta == 0 || f.Duration <= 0 {
			return fmt.Errorf("needs a Delta and a Duration to slew back over")
		}
	default:
		if f.Delta != 0 {
			return fmt.Errorf("has a Delta")
		}
	}
	if f.Kind != BitFlip && (f.Pick != 0 || f.Log != "") {
		return fmt.Errorf("Pick and Log are for %s only", BitFlip)
	}
	return nil
}
