// Package sim is Sluice's deterministic simulator: every node of a cluster runs in one
// goroutine on virtual time, driven by a priority queue of events ordered by time and then by
// sequence number, with one seeded PRNG for every random choice (latencies, fsync times, crash
// losses, workload). Nodes are the same node.Handler code the production runtime drives. The
// network is simulated TCP (in order per connection, latency, resets, partitions) carrying
// frames: the receiver gets the command the real codec would decode (codec.Transfer), and the
// frame the real codec encodes is what the trace hash mixes in; disks are sim/simdisk. A hash over every delivered event
// (the trace hash) proves a run replays byte for byte from its seed.
package sim

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// Epoch is the wall-clock instant virtual time 0 maps to.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NetConfig sets the simulated network's behaviour.
type NetConfig struct {
	MinLatency, MaxLatency time.Duration
	// RetransmitTimeout is how long frames may stay stalled on a lossy link (see Drop) before
	// the sender's TCP gives up and resets the connection; 0 means DefaultRetransmitTimeout.
	RetransmitTimeout time.Duration
}

// DefaultRetransmitTimeout is NetConfig.RetransmitTimeout's default.
const DefaultRetransmitTimeout = 10 * time.Second

// firstRetransmit is TCP's initial retransmission interval; it doubles on every retry.
const firstRetransmit = 200 * time.Millisecond

// DiskConfig sets the simulated disks' behaviour.
type DiskConfig struct {
	MinFsync, MaxFsync time.Duration
}

// World is one simulated cluster.
type World struct {
	seed   uint64
	now    int64
	seq    uint64
	events eventQueue
	rng    *rand.Rand
	trace  traceHash
	nodes  map[string]*Node
	net    NetConfig
	disk   DiskConfig
	logger *slog.Logger

	delivered uint64
	// frameBuf is scratch space a delivered frame's header is encoded into for the trace hash.
	frameBuf []byte
	// blocked counts, per directed link, the partitions that cut it. A link
	// carries frames again only when every partition that cut it has healed, so overlapping
	// partitions compose instead of healing each other.
	blocked map[link]int
	// dropped counts, per directed link, the one-way losses that cut it (see Drop).
	dropped map[link]int
	// delays lists, per directed link, the extra latencies of the delay spikes on it.
	delays map[link][]time.Duration
	// onSent and onDelivered observe frames for a harness (see Observe); nil: nobody looks.
	onSent, onDelivered func(from, to string, cmd *codec.Command)
}

// Observe has sent see every command a node sends, at the moment it sends it (whether or not
// the network then delivers it), and delivered see every command delivered to a node, just
// before its handler does. from and to are the sending and receiving nodes' addresses. They
// are for a harness's checks: they run inside the world and must change nothing in it (no
// random draws, no events, no calls into nodes but read-only ones).
func (w *World) Observe(sent, delivered func(from, to string, cmd *codec.Command)) {
	w.onSent, w.onDelivered = sent, delivered
}

// NewWorld creates an empty world seeded with seed. logger may be nil.
func NewWorld(seed uint64, netCfg NetConfig, diskCfg DiskConfig, logger *slog.Logger) *World {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler) // not even formatted
	}
	return &World{
		seed:    seed,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)),
		trace:   newTraceHash(),
		nodes:   map[string]*Node{},
		net:     netCfg,
		disk:    diskCfg,
		logger:  logger,
		blocked: map[link]int{},
		dropped: map[link]int{},
		delays:  map[link][]time.Duration{},
	}
}

// Now is the current virtual time since the start of the run.
func (w *World) Now() time.Duration { return time.Duration(w.now) }

// Seed is the seed the world was created with.
func (w *World) Seed() uint64 { return w.seed }

// Rand is the world's PRNG (for workloads and fault schedules).
func (w *World) Rand() *rand.Rand { return w.rng }

// TraceHash is the hash over every event delivered so far.
func (w *World) TraceHash() uint64 { return uint64(w.trace) }

// Delivered is the number of events delivered so far.
func (w *World) Delivered() uint64 { return w.delivered }

// At schedules fn at virtual time at (never earlier than now).
func (w *World) At(at time.Duration, fn func()) { w.schedule(int64(at), nil, fn) }

// After schedules fn d after now.
func (w *World) After(d time.Duration, fn func()) { w.schedule(w.now+int64(d), nil, fn) }

// deliverAfter schedules fn, an event for n's handler, d after now: it then goes through
// n.Deliver (so a pause holds it back).
func (w *World) deliverAfter(d time.Duration, n *Node, fn func()) { w.schedule(w.now+int64(d), n, fn) }

// schedule queues fn at virtual time at (never earlier than now), to run through n.Deliver if
// n is not nil. Events run in the order of their time and then of their scheduling.
func (w *World) schedule(at int64, n *Node, fn func()) {
	w.seq++
	w.events.push(event{at: max(at, w.now), seq: w.seq, n: n, fn: fn})
}

// RunUntil delivers events up to and including virtual time t, then sets the clock to t.
func (w *World) RunUntil(t time.Duration) {
	for len(w.events) > 0 && w.events[0].at <= int64(t) {
		e := w.events.pop()
		w.now = e.at
		if e.n != nil {
			e.n.Deliver(e.fn)
		} else {
			e.fn()
		}
	}
	if int64(t) > w.now {
		w.now = int64(t)
	}
}

// RunFor runs the world for d of virtual time.
func (w *World) RunFor(d time.Duration) { w.RunUntil(time.Duration(w.now) + d) }

// record mixes one delivered event into the trace hash.
func (w *World) record(kind string, addr string, a, b uint64, data []byte) {
	w.recordHead(kind, addr, a, b, len(data))
	w.trace.add(data)
}

// recordFrame is record for a delivered frame, whose data is head (its length words and
// header) followed by body: the same hash as of the frame in one piece, without copying it.
func (w *World) recordFrame(addr string, connID uint64, head, body []byte) {
	w.recordHead("frame", addr, connID, 0, len(head)+len(body))
	w.trace.add(head)
	w.trace.add(body)
}

// recordText is record for an event whose data is a string.
func (w *World) recordText(kind string, addr string, a, b uint64, text string) {
	w.recordHead(kind, addr, a, b, len(text))
	w.trace.addString(text)
}

func (w *World) recordHead(kind string, addr string, a, b uint64, dataLen int) {
	w.delivered++
	var buf [32]byte
	binary.LittleEndian.PutUint64(buf[0:], uint64(w.now))
	binary.LittleEndian.PutUint64(buf[8:], a)
	binary.LittleEndian.PutUint64(buf[16:], b)
	binary.LittleEndian.PutUint64(buf[24:], uint64(dataLen))
	w.trace.addString(kind)
	w.trace.addString(addr)
	w.trace.add(buf[:])
}

func (w *World) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)))
}

func (w *World) latency() time.Duration { return w.between(w.net.MinLatency, w.net.MaxLatency) }

// AddNode adds a node at addr whose handler newHandler builds (again after every restart). The
// node starts at once. newHandler returns nil when the process would exit while starting (its
// store cannot open because of an injected disk fault, say): the node then goes down as in a
// crash (losing what its disk had not made durable) and is started again after StartRetry, and
// again, until a start succeeds. Recovery failures that are bugs should still panic.
func (w *World) AddNode(addr string, newHandler func(env node.Env) node.Handler) *Node {
	if _, dup := w.nodes[addr]; dup {
		panic(fmt.Sprintf("sim: node %s added twice", addr))
	}
	n := &Node{
		w:          w,
		Addr:       addr,
		Disk:       simdisk.New(),
		newHandler: newHandler,
		rng:        rand.New(rand.NewPCG(w.rng.Uint64(), w.rng.Uint64())),
		eventAt:    -1,
	}
	w.nodes[addr] = n
	n.start()
	return n
}

// Node returns the node at addr, or nil.
func (w *World) Node(addr string) *Node { return w.nodes[addr] }

// Addrs lists node addresses, sorted.
func (w *World) Addrs() []string {
	return slices.Sorted(maps.Keys(w.nodes))
}

// link is a directed link between two nodes, by address.
type link struct{ from, to string }

// Block drops every frame from one node to another (one direction) until each Block of that
// link has been matched by an Unblock.
func (w *World) Block(from, to string) { w.blocked[link{from, to}]++ }

// Unblock lifts one Block of a link; the link heals when none is left.
func (w *World) Unblock(from, to string) { release(w.blocked, link{from, to}) }

// release lifts one hold of link k in holds (Block's, Drop's): the link is clear when none is
// left.
func release(holds map[link]int, k link) {
	if holds[k] <= 1 {
		delete(holds, k)
		return
	}
	holds[k]--
}

// Drop makes a link lossy in one direction (from to to) until each Drop of it has been matched
// by an Undrop; the other direction is untouched. It models packet loss under TCP, which the
// application never sees as a gap: frames sent from->to on an open connection stall (they,
// and every later frame in that direction, are held back), the sender retransmits with
// exponential backoff from 200 ms, and once the link is clear again the next retransmission
// delivers them in order. If the link is still lossy RetransmitTimeout after the first stalled
// frame, the sender gives up and resets the connection (its peer learns of the close after a
// latency: closes themselves are not lost). A dial either way across a lossy link fails after
// a connect timeout, since a handshake needs both directions.
func (w *World) Drop(from, to string) { w.dropped[link{from, to}]++ }

// Undrop lifts one Drop of a link; the link stops losing frames when none is left.
func (w *World) Undrop(from, to string) { release(w.dropped, link{from, to}) }

func (w *World) isDropped(from, to string) bool {
	return len(w.dropped) > 0 && w.dropped[link{from, to}] > 0
}

// AddDelay adds d (> 0) to the latency of every frame, close and handshake later sent from one
// node to another (one direction), until RemoveDelay(from, to, d). Spikes on one link add up.
// Frames already in flight keep their delivery time; order per connection is kept.
func (w *World) AddDelay(from, to string, d time.Duration) {
	if d <= 0 {
		panic(fmt.Sprintf("sim: delay spike of %v on %s>%s", d, from, to))
	}
	k := link{from, to}
	w.delays[k] = append(w.delays[k], d)
}

// RemoveDelay ends one AddDelay(from, to, d); one that is not (or no longer) active is a no-op.
func (w *World) RemoveDelay(from, to string, d time.Duration) {
	k := link{from, to}
	ds := w.delays[k]
	if i := slices.Index(ds, d); i >= 0 {
		ds = slices.Delete(ds, i, i+1)
	}
	if len(ds) == 0 {
		delete(w.delays, k)
		return
	}
	w.delays[k] = ds
}

// extraDelay is the sum of the delay spikes on a link.
func (w *World) extraDelay(from, to string) int64 {
	var sum int64
	if len(w.delays) == 0 {
		return 0
	}
	for _, d := range w.delays[link{from, to}] {
		sum += int64(d)
	}
	return sum
}

func (w *World) retransmitTimeout() int64 {
	if w.net.RetransmitTimeout > 0 {
		return int64(w.net.RetransmitTimeout)
	}
	return int64(DefaultRetransmitTimeout)
}

// HealAll ends every fault the world and its nodes carry: partitions, one-way losses and delay
// spikes on the network; on each node (in address order) a pause (its held events are then
// delivered), disk errors, slow fsyncs and clock offsets. Heals that were scheduled for these
// faults later find nothing to undo. Crashed nodes stay down (restart them explicitly).
func (w *World) HealAll() {
	w.blocked = map[link]int{}
	w.dropped = map[link]int{}
	w.delays = map[link][]time.Duration{}
	for _, a := range w.Addrs() {
		w.nodes[a].heal()
	}
}
func (w *World) isBlocked(from, to string) bool {
	return len(w.blocked) > 0 && w.blocked[link{from, to}] > 0
}

// LinkState reports, for harness checks, what the faults do to the link from one node to
// another now: cut by a partition, lossy (one-way loss), and the extra latency of its delay
// spikes.
func (w *World) LinkState(from, to string) (blocked, dropped bool, delay time.Duration) {
	return w.isBlocked(from, to), w.isDropped(from, to), time.Duration(w.extraDelay(from, to))
}
