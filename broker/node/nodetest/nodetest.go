// Package nodetest is test support: a hand-driven node.Env for story tests of one node. The
// test plays the rest of the world. Time moves only when the test advances it, fsyncs complete
// only when the test completes them, and every command the node sends is recorded after a
// round trip through the real codec (so an unencodable command fails the test here, as it
// would on the wire). After every event it delivers (timers, accepts, sync completions, and
// the frames, dials and closes a test delivers through it) it checks the node's invariants if
// the node is a node.InvariantChecker, and fails the test on a broken one.
//
// This package is imported by tests only; it must never be imported by node or runtime code.
// Like node code it starts no goroutines and never reads the wall clock.
package nodetest

import (
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// Start is the time on an Env's clock when it is created.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Env is a node.Env driven by hand. The zero value is not usable; call New.
type Env struct {
	t         testing.TB
	now       time.Time
	disk      node.Disk
	rng       *rand.Rand
	log       *slog.Logger
	nextConn  node.ConnID
	nextTimer node.TimerID
	dials     map[node.ConnID]string
	closed    map[node.ConnID]bool
	timers    []*Timer
	sent      []*Sent
	syncs     []SyncReq
	syncsDone int // how many of syncs have been completed
}

// Timer is one timer the node set.
type Timer struct {
	ID  node.TimerID
	D   time.Duration // as the node asked
	At  time.Time     // when it is due
	Tag any

	fired, cancelled bool
}

// Sent is one command the node sent, as the peer would decode it.
type Sent struct {
	Conn node.ConnID
	Addr string // the address dialled, "" on an inbound connection
	Cmd  *codec.Command
}

// SyncReq is one call of Env.Sync.
type SyncReq struct {
	Log  node.Log
	UpTo uint64
}

// New returns an Env at time Start with a fixed seed. disk may be nil for a node that keeps
// nothing on disk: then Disk and Sync fail the test.
func New(t testing.TB, disk node.Disk) *Env {
	return &Env{
		t:      t,
		now:    Start,
		disk:   disk,
		rng:    rand.New(rand.NewPCG(1, 2)),
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		dials:  map[node.ConnID]string{},
		closed: map[node.ConnID]bool{},
	}
}

// Now is the Env's clock.
func (e *Env) Now() time.Time { return e.now }

// SetTimer records a timer; Advance fires it.
func (e *Env) SetTimer(d time.Duration, tag any) node.TimerID {
	e.nextTimer++
	e.timers = append(e.timers, &Timer{ID: e.nextTimer, D: d, At: e.now.Add(d), Tag: tag})
	return e.nextTimer
}

// CancelTimer cancels a timer that has not fired.
func (e *Env) CancelTimer(id node.TimerID) {
	for _, t := range e.timers {
		if t.ID == id && !t.fired {
			t.cancelled = true
		}
	}
}

// Advance moves the clock forward by d, delivering every timer due by then to h in time
// order, then in the order set. A timer set by h meanwhile fires too if it is due.
func (e *Env) Advance(h node.Handler, d time.Duration) {
	end := e.now.Add(d)
	for {
		var next *Timer
		for _, t := range e.timers {
			if t.fired || t.cancelled || t.At.After(end) {
				continue
			}
			if next == nil || t.At.Before(next.At) {
				next = t
			}
		}
		if next == nil {
			break
		}
		next.fired = true
		e.now = next.At
		h.OnTimer(next.ID, next.Tag)
		e.Check(h)
	}
	e.now = end
}

// StepClock steps what Now reads by d, either sign, as a wall clock is stepped (a VM restored
// from a snapshot, NTP correcting a large offset). Timers are not moved: each still fires once
// the time it was set for has elapsed, as timers driven by a monotonic clock do.
func (e *Env) StepClock(d time.Duration) {
	e.now = e.now.Add(d)
	for _, t := range e.timers {
		if !t.fired && !t.cancelled {
			t.At = t.At.Add(d)
		}
	}
}

// LiveTimers lists the timers neither fired nor cancelled, in the order set.
func (e *Env) LiveTimers() []*Timer {
	var out []*Timer
	for _, t := range e.timers {
		if !t.fired && !t.cancelled {
			out = append(out, t)
		}
	}
	return out
}

// Dial records addr and returns a new connection; nothing more happens until the test calls
// the node's OnDialed or OnConnClosed.
func (e *Env) Dial(addr string) node.ConnID {
	e.nextConn++
	e.dials[e.nextConn] = addr
	return e.nextConn
}

// Dials maps every connection the node dialled to its address.
func (e *Env) Dials() map[node.ConnID]string {
	return maps.Clone(e.dials)
}

// Accept opens an inbound connection from remote: it delivers OnAccepted to h with a new
// connection id, which it returns.
func (e *Env) Accept(h node.Handler, remote string) node.ConnID {
	e.nextConn++
	h.OnAccepted(e.nextConn, remote)
	e.Check(h)
	return e.nextConn
}

// Start calls h's Start, then checks its invariants.
func (e *Env) Start(h node.Handler) {
	e.t.Helper()
	h.Start()
	e.Check(h)
}

// Frame delivers cmd to h on c, as the peer's frame arriving, then checks h's invariants.
func (e *Env) Frame(h node.Handler, c node.ConnID, cmd *codec.Command) {
	e.t.Helper()
	h.OnFrame(c, cmd)
	e.Check(h)
}

// Dialed tells h that c, a connection it dialled, is up, then checks h's invariants.
func (e *Env) Dialed(h node.Handler, c node.ConnID) {
	e.t.Helper()
	h.OnDialed(c)
	e.Check(h)
}

// ConnClosed tells h that c closed, then checks h's invariants.
func (e *Env) ConnClosed(h node.Handler, c node.ConnID) {
	e.t.Helper()
	h.OnConnClosed(c)
	e.Check(h)
}

// Check fails the test if h is a node.InvariantChecker that reports a broken invariant. Tests
// that call a handler's methods directly call it after each; the Env's own deliveries do.
func (e *Env) Check(h any) {
	e.t.Helper()
	if ic, ok := h.(node.InvariantChecker); ok {
		if err := ic.CheckInvariants(); err != nil {
			e.t.Fatalf("broken invariant at %v: %v", e.now.Sub(Start), err)
		}
	}
}

// Send encodes cmd, decodes the frame and records the result.
func (e *Env) Send(c node.ConnID, cmd *codec.Command) {
	frame, err := codec.Encode(cmd)
	if err != nil {
		e.t.Fatalf("node sent an unencodable command %+v: %v", cmd, err)
	}
	got, err := codec.Decode(frame[4:])
	if err != nil {
		e.t.Fatalf("node sent a frame that does not decode: %v", err)
	}
	e.sent = append(e.sent, &Sent{Conn: c, Addr: e.dials[c], Cmd: got})
}

// Sent lists every command sent so far, in order.
func (e *Env) Sent() []*Sent { return e.sent }

// Close records that the node closed c. No OnConnClosed follows unless the test delivers it.
func (e *Env) Close(c node.ConnID) { e.closed[c] = true }

// Closed reports whether the node closed c itself.
func (e *Env) Closed(c node.ConnID) bool { return e.closed[c] }

// Disk is the disk given to New; without one it fails the test.
func (e *Env) Disk() node.Disk {
	if e.disk == nil {
		e.t.Fatal("this node has no disk")
	}
	return e.disk
}

// Sync records the request; CompleteSyncs completes it.
func (e *Env) Sync(l node.Log, upTo uint64) {
	if e.disk == nil {
		e.t.Fatal("this node has no disk to sync")
	}
	e.syncs = append(e.syncs, SyncReq{l, upTo})
}

// Syncs lists every sync requested so far, completed or not, in order.
func (e *Env) Syncs() []SyncReq { return e.syncs }

// prefixSyncer is a disk that can make exactly a prefix of a log durable (the simulator's
// disk can). Other disks sync the whole log.
type prefixSyncer interface {
	SyncLog(name string, upTo uint64) error
}

// CompleteSyncs completes, in order, every sync requested and not yet completed, delivering
// OnSynced to h; syncs h requests meanwhile stay pending. With err nil each log is first made
// durable up to the index asked (a disk error fails the test); otherwise the disk is left alone
// and every sync reports err. It returns how many syncs it completed.
func (e *Env) CompleteSyncs(h node.Handler, err error) int {
	e.t.Helper()
	pending := e.syncs[e.syncsDone:]
	e.syncsDone = len(e.syncs)
	for _, s := range pending {
		if err == nil {
			var serr error
			if d, ok := e.disk.(prefixSyncer); ok {
				serr = d.SyncLog(s.Log.Name(), s.UpTo)
			} else {
				serr = s.Log.Sync()
			}
			if serr != nil {
				e.t.Fatalf("sync %s: %v", s.Log.Name(), serr)
			}
		}
		h.OnSynced(s.Log.Name(), s.UpTo, err)
		e.Check(h)
	}
	return len(pending)
}

// Rand is a generator with a fixed seed.
func (e *Env) Rand() *rand.Rand { return e.rng }

// Logger discards everything.
func (e *Env) Logger() *slog.Logger { return e.log }

var _ node.Env = (*Env)(nil)
