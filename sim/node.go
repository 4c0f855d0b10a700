package sim

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
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

	Crashes  int
	Restarts int
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
}

func (e *endpoint) peer() *endpoint { return e.c.ends[1-e.side] }

// Handler returns the node's current handler (nil while down).
func (n *Node) Handler() node.Handler { return n.h }

// Up reports whether the node is running.
func (n *Node) Up() bool { return n.up }

func (n *Node) start() {
	n.up = true
	n.timers = map[node.TimerID]bool{}
	n.conns = map[node.ConnID]*endpoint{}
	env := &simEnv{n: n, inc: n.inc, logger: n.w.logger.With("node", n.Addr)}
	n.h = n.newHandler(env)
	inc := n.inc
	n.w.After(0, func() {
		if n.inc != inc {
			return
		}
		n.w.record("start", n.Addr, uint64(inc), 0, nil)
		n.h.Start()
	})
}

// Crash stops the node at once: connections reset (peers learn after a latency), timers and
// in-flight fsyncs are dropped, and the disk loses what was not durable.
func (n *Node) Crash() {
	if !n.up {
		return
	}
	n.w.record("crash", n.Addr, uint64(n.inc), 0, nil)
	n.Crashes++
	n.inc++
	n.up = false
	n.h = nil
	for _, id := range n.sortedConns() {
		n.resetEndpoint(n.conns[id], false)
	}
	n.conns = nil
	n.timers = nil
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
		n.w.deliverClose(p)
	}
	if notifySelf {
		n.w.deliverCloseAt(e, n.w.now)
	}
}

func (w *World) deliverClose(e *endpoint) {
	at := w.now + int64(w.latency())
	w.deliverCloseAt(e, at)
}

func (w *World) deliverCloseAt(e *endpoint, at int64) {
	if at < e.lastAt {
		at = e.lastAt
	}
	e.lastAt = at
	n, inc := e.n, e.n.inc
	w.At(time.Duration(at), func() {
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

func (e *simEnv) Now() time.Time { return Epoch.Add(time.Duration(e.n.w.now)) }

func (e *simEnv) SetTimer(d time.Duration, tag any) node.TimerID {
	n := e.n
	n.nextTimer++
	id := n.nextTimer
	if !e.live() {
		return id
	}
	n.timers[id] = true
	inc := e.inc
	n.w.After(d, func() {
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
	local := &endpoint{c: c, side: 0, n: n, id: id, open: true}
	c.ends[0] = local
	n.conns[id] = local
	target := w.nodes[addr]
	lat := int64(w.latency())
	if target == nil || !target.up || w.isBlocked(n.Addr, addr) || w.isBlocked(addr, n.Addr) {
		// Refused (or timed out across a partition): the dialer learns of it as a close.
		c.closed = true
		delay := lat
		if target != nil && target.up {
			delay = int64(3 * time.Second)
		}
		w.deliverCloseAt(local, w.now+delay)
		return id
	}
	remote := &endpoint{c: c, side: 1, n: target, lastAt: w.now + lat}
	c.ends[1] = remote
	local.lastAt = w.now + 2*lat
	tinc := target.inc
	w.At(time.Duration(w.now+lat), func() {
		if target.inc != tinc || !target.up || c.closed {
			if !c.closed {
				c.closed = true
				w.deliverClose(local)
			}
			return
		}
		target.nextConn++
		remote.id = target.nextConn
		remote.open = true
		target.conns[remote.id] = remote
		w.record("accept", target.Addr, uint64(remote.id), 0, nil)
		target.h.OnAccepted(remote.id, ephemeralAddr(n.Addr, id))
		// The dialer learns the connection is up one latency later (the SYN-ACK).
		dinc := n.inc
		w.At(time.Duration(local.lastAt), func() {
			if n.inc != dinc || !n.up || !local.open || n.conns[id] != local {
				return
			}
			w.record("dialed", n.Addr, uint64(id), 0, nil)
			n.h.OnDialed(id)
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
	frame, err := codec.Encode(cmd)
	if err != nil {
		panic(fmt.Sprintf("sim: node %s encodes an unencodable command: %v", n.Addr, err))
	}
	p := local.peer()
	if w.isBlocked(n.Addr, p.n.Addr) {
		// A partition breaks the connection rather than silently dropping one frame, which
		// TCP would never do.
		n.resetEndpoint(local, true)
		return
	}
	at := w.now + int64(w.latency())
	if at < p.lastAt {
		at = p.lastAt
	}
	p.lastAt = at
	pn, pinc := p.n, p.n.inc
	w.At(time.Duration(at), func() {
		// Frames sent before a close still arrive (the close is ordered after them), unless
		// the receiving side closed the connection itself.
		if pn.inc != pinc || !pn.up || !p.open || pn.conns[p.id] != p {
			return
		}
		got, err := codec.Decode(frame[4:])
		if err != nil {
			panic(fmt.Sprintf("sim: frame from %s does not decode: %v", n.Addr, err))
		}
		w.record("frame", pn.Addr, uint64(p.id), 0, frame)
		pn.h.OnFrame(p.id, got)
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
	w.After(w.between(w.disk.MinFsync, w.disk.MaxFsync), func() {
		if n.inc != inc || !n.up {
			return
		}
		err := n.Disk.SyncLog(name, upTo)
		w.record("synced", n.Addr, upTo, 0, []byte(name))
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
