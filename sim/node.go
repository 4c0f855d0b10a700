package sim

import (
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// Node is one simulated process: a handler, its disk, its connections and timers. A crash
// discards the handler and everything in memory; the disk keeps what it had made durable.
type Node struct {
	w          *World
	Addr       string
	Disk       *simdisk.Disk
	newHandler func(env node.Env) node.Handler
	rng        *rand.Rand

	h         node.Handler
	up        bool
	inc       int // incarnation: bumped by every crash, so stale events are dropped
	nextConn  node.ConnID
	nextTimer node.TimerID
	timers    map[node.TimerID]bool
	conns     map[node.ConnID]*endpoint

	Crashes int
	// CrashTimes are the virtual times of the crashes, in order.
	CrashTimes []time.Duration
	Restarts   int
	Pauses     int
	// StartFailures counts starts whose handler could not be built (see AddNode).
	StartFailures int
	// OnDurable, when set, hears what the disk makes durable as it happens: every entry log
	// held at virtual time through is durable now. It is told as an fsync of the log completes
	// (through: when the node asked for it), and as the node crashes, of each log with nothing
	// unsynced (through: now). It says what the disk did, not what the node claims, so a
	// checker may rely on it (async flush: what a crash cannot lose).
	OnDurable func(log string, through time.Duration)
	// OnUp, when set, hears the node come up (its handler built: up is true) and go down (a
	// crash: false), as each happens. A start that fails is not reported: the node stays down.
	// It only observes (failure reports draw it).
	OnUp func(up bool)

	// pausedUntil is the virtual time a pause ends; backlog holds, in arrival order, the
	// events that reached the node while it was paused (or queued behind those), to be
	// delivered when it resumes.
	pausedUntil int64
	backlog     []heldEvent
	// eventAt is when the event being delivered reached the node (-1: none is).
	eventAt int64
	// writeFaults and syncFaults are the active disk error faults, oldest first; the newest
	// is the one the disk reports.
	writeFaults, syncFaults []*diskFault
	// slowFsyncs are the extra latencies of the active slow-fsync faults (they add up).
	slowFsyncs []*slowFsync
	// clock lists the active clock offsets; Env.Now reads virtual time plus their sum.
	clock []*clockOffset
}

type diskFault struct{ err error }

type slowFsync struct{ extra time.Duration }

// clockOffset is one clock fault: delta from start, then, if slew > 0, shrinking linearly to
// nothing over slew (a clock stepped and then slewed back, as NTP corrects one).
type clockOffset struct {
	delta       time.Duration
	start, slew int64
}

type conn struct {
	ends   [2]*endpoint
	closed bool
}

type endpoint struct {
	c    *conn
	side int
	n    *Node
	id   node.ConnID
	// lastAt is the delivery time of the last frame or close sent towards this endpoint, so
	// that delivery stays in order per direction.
	lastAt int64
	open   bool
	// stalled holds the frames towards this endpoint that a lossy link (World.Drop) has held
	// back, in order, since stallSince; the sender's retransmissions deliver them.
	stalled    []wireFrame
	stallSince int64
	// connecting marks a dialer's end whose handshake has not completed: the SYN-ACK has not
	// come back. Frames its node sends meanwhile wait in pending and leave only when it does,
	// as a kernel holds writes on a socket that is still connecting; a connection that closes
	// first delivered none of them, which is what node.Handler.OnDialed promises.
	connecting bool
	pending    []wireFrame
}

func (e *endpoint) peer() *endpoint { return e.c.ends[1-e.side] }

// Handler returns the node's current handler (nil while down).
func (n *Node) Handler() node.Handler { return n.h }

// Up reports whether the node is running.
func (n *Node) Up() bool { return n.up }

// StartRetry is how long a node whose handler could not be built waits before it is started
// again, as a process supervisor would restart a process that exited at startup.
const StartRetry = time.Second

func (n *Node) start() {
	n.up = true
	n.timers = map[node.TimerID]bool{}
	n.conns = map[node.ConnID]*endpoint{}
	env := &simEnv{n: n, inc: n.inc, logger: n.w.logger.With("node", n.Addr)}
	n.h = n.newHandler(env)
	if n.h == nil {
		// The process exited while starting: it goes down as a crashed one does, and its
		// supervisor starts it again after StartRetry (unless something restarts it first).
		n.StartFailures++
		n.w.record("startfail", n.Addr, uint64(n.inc), 0, nil)
		n.stop()
		inc := n.inc
		n.w.After(StartRetry, func() {
			if n.inc == inc {
				n.Restart()
			}
		})
		return
	}
	if n.OnUp != nil {
		n.OnUp(true)
	}
	inc := n.inc
	n.w.deliverAfter(0, n, func() {
		if n.inc != inc {
			return
		}
		n.w.record("start", n.Addr, uint64(inc), 0, nil)
		n.h.Start()
	})
}

// Deliver runs fn, an event for the node's handler, now; while the node is paused (or still
// working through what a pause held back) it queues fn behind the held events instead, so a
// paused node sees nothing until it resumes and then sees everything in arrival order. Every
// handler event of the simulator goes through it; harness code that calls into a node's
// handler directly (a workload invoking a client) should too, so that a pause holds those
// calls as well.
func (n *Node) Deliver(fn func()) {
	if n.w.now < n.pausedUntil || len(n.backlog) > 0 {
		n.backlog = append(n.backlog, heldEvent{at: n.w.now, fn: fn})
		return
	}
	n.deliverAt(n.w.now, fn)
}

// heldEvent is an event a pause held back, with the time it reached the node.
type heldEvent struct {
	at int64
	fn func()
}

func (n *Node) deliverAt(at int64, fn func()) {
	prev := n.eventAt
	n.eventAt = at
	fn()
	n.eventAt = prev
	n.checkInvariants()
}

// checkInvariants asks the node's handler, if it is a node.InvariantChecker, to check its state
// after an event, and panics with the node, the seed and the time if it reports a broken
// invariant: a node whose state is wrong is a bug the run must stop at.
func (n *Node) checkInvariants() {
	ic, ok := n.h.(node.InvariantChecker)
	if !ok || !n.up {
		return
	}
	if err := ic.CheckInvariants(); err != nil {
		panic(fmt.Sprintf("sim: node %s broke an invariant (seed %d, virtual time %v, event %d): %v",
			n.Addr, n.w.seed, time.Duration(n.w.now), n.w.delivered, err))
	}
}

// EventTime is the virtual time at which the event the node is handling now reached it:
// earlier than the world's time when a pause held the event back (the node, whose clock may
// step, cannot tell how late it is; only its timers, held back in arrival order too, count
// elapsed time). Outside the delivery of an event it is the world's time.
func (n *Node) EventTime() time.Duration {
	if n.eventAt < 0 {
		return time.Duration(n.w.now)
	}
	return time.Duration(n.eventAt)
}

// Pause stops the node processing events for d, as a stopped process (SIGSTOP, a long GC or
// VM pause, a stalled disk) would: nothing is lost, but its timers, inbound frames, accepted
// and closed connections and fsync completions reach it only when the pause ends, all at
// once and in arrival order; its peers' connections stay open. Pauses that overlap end with
// the last. A crash ends a pause (and drops what it held); pausing a crashed node does nothing.
func (n *Node) Pause(d time.Duration) {
	if !n.up || d <= 0 {
		return
	}
	n.Pauses++
	n.w.record("pause", n.Addr, uint64(d), 0, nil)
	until := n.w.now + int64(d)
	if until <= n.pausedUntil {
		return
	}
	n.pausedUntil = until
	inc := n.inc
	n.w.At(time.Duration(until), func() {
		if n.inc == inc {
			n.resume()
		}
	})
}

// Paused reports whether the node is paused now.
func (n *Node) Paused() bool { return n.w.now < n.pausedUntil }

// resume delivers the events a pause held back, unless a later pause still holds the node.
func (n *Node) resume() {
	for len(n.backlog) > 0 && n.w.now >= n.pausedUntil {
		ev := n.backlog[0]
		n.backlog[0] = heldEvent{}
		n.backlog = n.backlog[1:]
		n.deliverAt(ev.at, ev.fn)
	}
	if len(n.backlog) == 0 {
		n.backlog = nil
	}
}

// FailDiskWrites makes the node's disk fail every write (appends, truncations, metadata
// files) with err, which should wrap node.ErrIO or node.ErrNoSpace, until heal is called.
// Overlapping faults compose: the disk reports the newest still active, and is healthy again
// when every one has healed. The fault stays across crashes (it is the disk's, not the
// process's).
func (n *Node) FailDiskWrites(err error) (heal func()) { return n.addDiskFault(&n.writeFaults, err) }

// FailDiskSyncs is FailDiskWrites for syncs: every fsync of the node's logs fails with err
// (nothing becomes durable) until heal is called.
func (n *Node) FailDiskSyncs(err error) (heal func()) { return n.addDiskFault(&n.syncFaults, err) }

// addDiskFault adds a fault failing with err to the list at faults (writes' or syncs') until
// the returned heal removes it.
func (n *Node) addDiskFault(faults *[]*diskFault, err error) (heal func()) {
	f := &diskFault{err: err}
	*faults = append(*faults, f)
	n.applyDiskFaults()
	return func() {
		*faults = slices.DeleteFunc(*faults, func(g *diskFault) bool { return g == f })
		n.applyDiskFaults()
	}
}

func (n *Node) applyDiskFaults() {
	var werr, serr error
	if k := len(n.writeFaults); k > 0 {
		werr = n.writeFaults[k-1].err
	}
	if k := len(n.syncFaults); k > 0 {
		serr = n.syncFaults[k-1].err
	}
	n.Disk.SetWriteError(werr)
	n.Disk.SetSyncError(serr)
}

// SlowFsync adds extra to the time every fsync the node asks for takes to complete (a disk
// whose flushes stall), until heal is called. Overlapping slowdowns add up. Completions
// already pending keep their time.
func (n *Node) SlowFsync(extra time.Duration) (heal func()) {
	if extra <= 0 {
		panic(fmt.Sprintf("sim: slow fsync of %v on %s", extra, n.Addr))
	}
	f := &slowFsync{extra: extra}
	n.slowFsyncs = append(n.slowFsyncs, f)
	return func() {
		n.slowFsyncs = slices.DeleteFunc(n.slowFsyncs, func(g *slowFsync) bool { return g == f })
	}
}

func (n *Node) fsyncExtra() int64 {
	var sum int64
	for _, f := range n.slowFsyncs {
		sum += int64(f.extra)
	}
	return sum
}

// SkewClock offsets the node's clock (what Env.Now returns) by delta, either sign, until heal
// is called, which steps it back. Virtual time and timers are untouched: timers are relative
// durations. Offsets of overlapping clock faults add up; they survive crashes (the clock is
// the machine's).
func (n *Node) SkewClock(delta time.Duration) (heal func()) {
	f := &clockOffset{delta: delta, start: n.w.now}
	n.clock = append(n.clock, f)
	return func() {
		n.clock = slices.DeleteFunc(n.clock, func(g *clockOffset) bool { return g == f })
	}
}

// JumpClock steps the node's clock by delta (either sign) now, then slews it back to where it
// would have been, linearly over slew, as NTP corrects a stepped clock. A step back makes the
// node read earlier times than it already has; a slew shorter than delta makes the clock run
// backwards until it ends.
func (n *Node) JumpClock(delta, slew time.Duration) {
	if slew <= 0 {
		panic(fmt.Sprintf("sim: clock jump on %s with slew %v", n.Addr, slew))
	}
	n.clock = append(n.clock, &clockOffset{delta: delta, start: n.w.now, slew: int64(slew)})
}

// ClockOffset is how far the node's clock is from virtual time now.
func (n *Node) ClockOffset() time.Duration {
	now := n.w.now
	n.clock = slices.DeleteFunc(n.clock, func(f *clockOffset) bool { return f.slew > 0 && now >= f.start+f.slew })
	var sum time.Duration
	for _, f := range n.clock {
		sum += f.at(now)
	}
	return sum
}

// at is the offset at virtual time now (start <= now < start+slew when slewing).
func (f *clockOffset) at(now int64) time.Duration {
	if f.slew == 0 {
		return f.delta
	}
	// delta * (slew-elapsed) / slew without overflow: |delta| and slew reach minutes.
	left := uint64(f.slew - (now - f.start))
	mag := uint64(f.delta)
	if f.delta < 0 {
		mag = uint64(-f.delta)
	}
	hi, lo := bits.Mul64(mag, left)
	q, _ := bits.Div64(hi, lo, uint64(f.slew))
	if f.delta < 0 {
		return -time.Duration(q)
	}
	return time.Duration(q)
}

// heal ends the node's pause, disk faults, slow fsyncs and clock offsets (World.HealAll).
func (n *Node) heal() {
	if n.pausedUntil > n.w.now {
		n.pausedUntil = n.w.now
		inc := n.inc
		n.w.After(0, func() {
			if n.inc == inc {
				n.resume()
			}
		})
	}
	if len(n.writeFaults)+len(n.syncFaults) > 0 {
		n.writeFaults, n.syncFaults = nil, nil
		n.applyDiskFaults()
	}
	n.slowFsyncs = nil
	n.clock = nil
}

// Crash stops the node at once: connections reset (peers learn after a latency), timers and
// in-flight fsyncs are dropped, and the disk loses what was not durable.
func (n *Node) Crash() {
	if !n.up {
		return
	}
	n.w.record("crash", n.Addr, uint64(n.inc), 0, nil)
	n.Crashes++
	n.CrashTimes = append(n.CrashTimes, n.w.Now())
	n.noteDurable()
	n.stop()
	if n.OnUp != nil {
		n.OnUp(false)
	}
}

// noteDurable tells OnDurable of each log of the node's disk that holds nothing unsynced.
func (n *Node) noteDurable() {
	if n.OnDurable == nil {
		return
	}
	names, err := n.Disk.ListLogs("")
	if err != nil {
		return
	}
	for _, name := range names {
		durable, _ := n.Disk.Durable(name)
		if _, last, ok := n.Disk.Span(name); ok && durable >= last {
			n.OnDurable(name, n.w.Now())
		}
	}
}

// stop takes the node down as a crash does.
func (n *Node) stop() {
	n.inc++
	n.up = false
	n.h = nil
	for _, id := range n.sortedConns() {
		n.resetEndpoint(n.conns[id], false)
	}
	n.conns = nil
	n.timers = nil
	n.pausedUntil = 0
	n.backlog = nil
	n.Disk.Crash(n.rng)
}

// Restart brings a crashed node back with a fresh handler on the same disk.
func (n *Node) Restart() {
	if n.up {
		return
	}
	n.Restarts++
	n.start()
}

func (n *Node) sortedConns() []node.ConnID {
	ids := make([]node.ConnID, 0, len(n.conns))
	for id := range n.conns {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// ResetConnections resets every connection of the node (as a flaky network would).
func (n *Node) ResetConnections() {
	for _, id := range n.sortedConns() {
		n.resetEndpoint(n.conns[id], true)
	}
}

// resetEndpoint closes a connection from e's side: the peer learns after a latency, e's own
// node (if notifySelf) at once.
func (n *Node) resetEndpoint(e *endpoint, notifySelf bool) {
	if e == nil || e.c.closed {
		return
	}
	e.c.closed = true
	delete(n.conns, e.id)
	if p := e.peer(); p != nil {
		n.w.deliverClose(n.Addr, p)
	}
	if notifySelf {
		n.w.deliverCloseAt(e, n.w.now)
	}
}

// deliverClose tells e that its connection closed, after the latency from node from.
func (w *World) deliverClose(from string, e *endpoint) {
	at := w.now + int64(w.latency()) + w.extraDelay(from, e.n.Addr)
	w.deliverCloseAt(e, at)
}

// inOrder is when something due at at arrives at e: not before what was sent towards it
// earlier (a connection delivers in order), which it then follows.
func (e *endpoint) inOrder(at int64) int64 {
	at = max(at, e.lastAt)
	e.lastAt = at
	return at
}

func (w *World) deliverCloseAt(e *endpoint, at int64) {
	at = e.inOrder(at)
	n, inc := e.n, e.n.inc
	w.schedule(at, n, func() {
		if n.inc != inc || !n.up || !e.open {
			return
		}
		e.open = false
		delete(n.conns, e.id)
		w.record("closed", n.Addr, uint64(e.id), 0, nil)
		n.h.OnConnClosed(e.id)
	})
}

// simEnv is node.Env for one incarnation of a node.
type simEnv struct {
	n      *Node
	inc    int
	logger *slog.Logger
}

func (e *simEnv) live() bool { return e.n.inc == e.inc && e.n.up }

// Now is virtual time plus the node's clock offset (clock faults); nothing else reads it.
func (e *simEnv) Now() time.Time {
	return Epoch.Add(time.Duration(e.n.w.now) + e.n.ClockOffset())
}

func (e *simEnv) SetTimer(d time.Duration, tag any) node.TimerID {
	n := e.n
	n.nextTimer++
	id := n.nextTimer
	if !e.live() {
		return id
	}
	n.timers[id] = true
	inc := e.inc
	n.w.deliverAfter(d, n, func() {
		if n.inc != inc || !n.timers[id] {
			return
		}
		delete(n.timers, id)
		n.w.record("timer", n.Addr, uint64(id), 0, nil)
		n.h.OnTimer(id, tag)
	})
	return id
}

func (e *simEnv) CancelTimer(id node.TimerID) {
	if e.live() {
		delete(e.n.timers, id)
	}
}

func (e *simEnv) Dial(addr string) node.ConnID {
	n, w := e.n, e.n.w
	n.nextConn++
	id := n.nextConn
	if !e.live() {
		return id
	}
	c := &conn{}
	local := &endpoint{c: c, side: 0, n: n, id: id, open: true, connecting: true}
	c.ends[0] = local
	n.conns[id] = local
	target := w.nodes[addr]
	lat := int64(w.latency())
	there, back := w.extraDelay(n.Addr, addr), w.extraDelay(addr, n.Addr)
	if target == nil || !target.up || w.isBlocked(n.Addr, addr) || w.isBlocked(addr, n.Addr) ||
		w.isDropped(n.Addr, addr) || w.isDropped(addr, n.Addr) {
		// Refused (or timed out across a partition or a lossy link): the dialer learns of it
		// as a close.
		c.closed = true
		delay := lat + there + back
		if target != nil && target.up {
			delay = int64(3 * time.Second)
		}
		w.deliverCloseAt(local, w.now+delay)
		return id
	}
	remote := &endpoint{c: c, side: 1, n: target, lastAt: w.now + lat + there}
	c.ends[1] = remote
	local.lastAt = w.now + 2*lat + there + back
	tinc := target.inc
	w.At(time.Duration(w.now+lat+there), func() {
		if target.inc != tinc || !target.up || c.closed {
			if !c.closed {
				c.closed = true
				w.deliverClose(addr, local)
			}
			return
		}
		// The kernel accepts the connection even while the process is paused; the process
		// learns of it when it runs.
		target.nextConn++
		remote.id = target.nextConn
		remote.open = true
		target.conns[remote.id] = remote
		// The dialer's kernel gets the SYN-ACK one latency later (scheduled before the
		// acceptor can answer, so OnDialed precedes every frame from the peer): the frames its
		// node sent while connecting leave now, and then the node learns the connection is up
		// (when it runs, if paused). From here on frames may reach the peer, so OnDialed is
		// delivered even if the connection is reset before the node hears of it (a fault, a
		// retransmission timeout while it is paused): it then precedes OnConnClosed.
		dinc := n.inc
		w.At(time.Duration(local.lastAt), func() {
			local.connecting = false
			frames := local.pending
			local.pending = nil
			if n.inc != dinc || !n.up || c.closed {
				return // closed while connecting: nothing it held left
			}
			for _, f := range frames {
				w.transmit(local, f)
			}
			if c.closed {
				return // the first frame met a partition and reset it: nothing left
			}
			n.Deliver(func() {
				if n.inc != dinc || !n.up || !local.open {
					return
				}
				w.record("dialed", n.Addr, uint64(id), 0, nil)
				n.h.OnDialed(id)
			})
		})
		target.Deliver(func() {
			if target.inc != tinc || !target.up {
				return
			}
			w.record("accept", target.Addr, uint64(remote.id), 0, nil)
			target.h.OnAccepted(remote.id, ephemeralAddr(n.Addr, id))
		})
	})
	return id
}

func (e *simEnv) Send(c node.ConnID, cmd *codec.Command) {
	if !e.live() {
		return
	}
	n, w := e.n, e.n.w
	local := n.conns[c]
	if local == nil || local.c.closed {
		return
	}
	frame := w.wire(n, cmd)
	if w.onSent != nil {
		w.onSent(n.Addr, local.peer().n.Addr, cmd)
	}
	if local.connecting {
		local.pending = append(local.pending, frame)
		return
	}
	w.transmit(local, frame)
}

// wireFrame is a frame on the wire: the command its receiver gets and, if the frame was
// encoded as it was sent, its bytes (length word included).
type wireFrame struct {
	cmd     *codec.Command
	encoded []byte
}

// wire is what goes on the wire when node n sends cmd: the command its peer will decode (see
// codec.Transfer), taken now, so that whatever the sender does with cmd afterwards changes
// nothing in flight. The frame's head is encoded only as it is delivered (sendFrame), into the
// world's scratch buffer, for the trace hash, and never decoded. When Transfer cannot vouch
// for a copy, the frame is encoded now and decoded, and those bytes are what the trace hash
// mixes in (encoding what they decode to need not give them back).
func (w *World) wire(n *Node, cmd *codec.Command) wireFrame {
	if got, ok := codec.Transfer(cmd); ok {
		return wireFrame{cmd: got}
	}
	encoded, err := codec.Encode(cmd)
	if err != nil {
		panic(fmt.Sprintf("sim: node %s encodes an unencodable command: %v", n.Addr, err))
	}
	got, err := codec.Decode(encoded[4:])
	if err != nil {
		panic(fmt.Sprintf("sim: frame from %s does not decode: %v", n.Addr, err))
	}
	return wireFrame{cmd: got, encoded: encoded}
}

// transmit sends one frame from local, an established end, towards its peer: reset by
// a partition, held by a lossy link, or put on the wire.
func (w *World) transmit(local *endpoint, frame wireFrame) {
	n := local.n
	p := local.peer()
	if w.isBlocked(n.Addr, p.n.Addr) {
		// A partition breaks the connection rather than silently dropping one frame, which
		// TCP would never do.
		n.resetEndpoint(local, true)
		return
	}
	if w.isDropped(n.Addr, p.n.Addr) || len(p.stalled) > 0 {
		// Lost on a lossy link, or queued behind frames that were: held for retransmission.
		p.stalled = append(p.stalled, frame)
		if len(p.stalled) == 1 {
			p.stallSince = w.now
			w.retransmitAfter(local, firstRetransmit)
		}
		return
	}
	w.sendFrame(local, frame)
}

// sendFrame puts one frame from local's node on the wire towards local's peer, to be delivered
// after a latency and after everything sent before it on the connection.
func (w *World) sendFrame(local *endpoint, frame wireFrame) {
	n, p := local.n, local.peer()
	at := w.now + int64(w.latency()) + w.extraDelay(n.Addr, p.n.Addr)
	at = p.inOrder(at)
	pn, pinc := p.n, p.n.inc
	w.schedule(at, pn, func() {
		// Frames sent before a close still arrive (the close is ordered after them),
		// unless the receiving side closed the connection itself.
		if pn.inc != pinc || !pn.up || !p.open || pn.conns[p.id] != p {
			return
		}
		if frame.encoded != nil {
			w.recordFrame(pn.Addr, uint64(p.id), frame.encoded, nil)
		} else {
			head, err := codec.AppendFrameHead(w.frameBuf[:0], frame.cmd)
			if err != nil {
				panic(fmt.Sprintf("sim: node %s sent an unencodable command: %v", n.Addr, err))
			}
			w.frameBuf = head[:0]
			w.recordFrame(pn.Addr, uint64(p.id), head, frame.cmd.Body)
		}
		if w.onDelivered != nil {
			w.onDelivered(n.Addr, pn.Addr, frame.cmd)
		}
		pn.h.OnFrame(p.id, frame.cmd)
	})
}

// retransmitAfter schedules the next retransmission of the frames stalled from local towards
// its peer: if the link is clear by then they go out in order; if it is still lossy and the
// retransmit timeout has passed, local's node gives up and resets the connection; otherwise
// the interval doubles (capped so the give-up happens on time).
func (w *World) retransmitAfter(local *endpoint, interval time.Duration) {
	p := local.peer()
	giveUp := p.stallSince + w.retransmitTimeout()
	at := min(w.now+int64(interval), giveUp)
	w.At(time.Duration(at), func() {
		if local.c.closed || len(p.stalled) == 0 {
			p.stalled = nil
			return
		}
		n := local.n
		if !w.isDropped(n.Addr, p.n.Addr) {
			frames := p.stalled
			p.stalled = nil
			for _, f := range frames {
				w.sendFrame(local, f)
			}
			return
		}
		if w.now >= giveUp {
			p.stalled = nil
			w.record("rto", n.Addr, uint64(local.id), 0, nil)
			n.resetEndpoint(local, true)
			return
		}
		w.retransmitAfter(local, 2*interval)
	})
}

func (e *simEnv) Close(c node.ConnID) {
	if !e.live() {
		return
	}
	e.n.resetEndpoint(e.n.conns[c], true)
}

func (e *simEnv) Disk() node.Disk { return e.n.Disk }

func (e *simEnv) Sync(l node.Log, upTo uint64) {
	if !e.live() {
		return
	}
	n, w := e.n, e.n.w
	inc := e.inc
	name := l.Name()
	requested := w.Now()
	_, held, _ := n.Disk.Span(name) // the last entry the log holds as the sync is asked for
	w.deliverAfter(w.between(w.disk.MinFsync, w.disk.MaxFsync)+time.Duration(n.fsyncExtra()), n, func() {
		if n.inc != inc || !n.up {
			return
		}
		err := n.Disk.SyncLog(name, upTo)
		if durable, ok := n.Disk.Durable(name); err == nil && ok && durable >= held && n.OnDurable != nil {
			n.OnDurable(name, requested)
		}
		w.recordText("synced", n.Addr, upTo, 0, name)
		n.h.OnSynced(name, upTo, err)
	})
}

func (e *simEnv) Rand() *rand.Rand { return e.n.rng }

func (e *simEnv) Logger() *slog.Logger { return e.logger }

// ephemeralAddr is the remote address an acceptor sees for a dialer's connection: the dialer's
// host and an ephemeral port derived from the connection id, as a real socket would show.
func ephemeralAddr(dialer string, id node.ConnID) string {
	host, _, err := net.SplitHostPort(dialer)
	if err != nil {
		host = dialer
	}
	return net.JoinHostPort(host, strconv.Itoa(32768+int(id%28000)))
}
