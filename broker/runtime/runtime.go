// Package runtime is Sluice's production runtime: it drives one node.Handler on real I/O.
//
// It owns everything a node must never touch: goroutines, sockets, wall-clock timers, fsync
// and crypto-seeded randomness. One event-loop goroutine per node calls the handler, strictly
// one event at a time; reader goroutines decode frames and post them to the loop, writer
// goroutines batch encoded frames into few write calls, timers and group-commit syncs post
// their completions back. The loop never blocks on the network or the disk, and no goroutine
// but the loop ever calls the handler. A panic in the handler stops the node: a node whose
// invariant broke must not keep serving.
package runtime

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/metrics"
	"github.com/sluicemq/sluice/broker/node"
)

// Defaults for zero Config fields.
const (
	DefaultMaxOutboundBytes = 64 << 20
	DefaultDialTimeout      = 15 * time.Second
	// DefaultInvariantCheckEvery: the handler's invariants are checked after one event in
	// this many (see Config.InvariantCheckEvery).
	DefaultInvariantCheckEvery = 1024
)

// invariantLogInterval rate-limits the log lines about a broken invariant: one at once, then
// at most one per interval while it stays broken (the counter counts every detection).
const invariantLogInterval = 10 * time.Second

// maxQueuedFrameBytes bounds the inbound frames waiting for the loop: past it, reader
// goroutines stop reading, so a slow node pushes back on its peers through TCP.
const maxQueuedFrameBytes = 64 << 20

var (
	// ErrStopped is returned by Do and Start once the node has stopped.
	ErrStopped = errors.New("runtime stopped")
	// ErrPanic wraps the value of a handler panic; Err reports it.
	ErrPanic = errors.New("node handler panicked")
	// ErrExtraListen is wrapped by Start's error when listening on one of
	// Config.ExtraListenAddrs failed (nothing was started).
	ErrExtraListen = errors.New("extra listen address")
	// ErrFailed wraps the error a handler reported through Failed (see failer); Err reports it.
	ErrFailed = errors.New("node handler failed")
)

// Config configures a Runtime. The zero value is a client-only node with defaults.
type Config struct {
	// ListenAddr is the TCP address to accept connections on ("127.0.0.1:0" picks a port);
	// "" for a node that only dials.
	ListenAddr string
	// ExtraListenAddrs are more addresses whose connections go to the same node, which cannot
	// tell them from ListenAddr's (a broker's VIP channel, listenPort-2, that Java clients
	// with vipChannelEnabled send to). Start fails if any cannot be listened on.
	ExtraListenAddrs []string
	// Logger receives the runtime's logs and is the node's Env.Logger; nil means slog.Default().
	Logger *slog.Logger
	// MaxFrameBytes bounds an inbound frame; 0 means codec.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// MaxOutboundBytes bounds one connection's encoded but unwritten frames; a connection
	// over it is closed. 0 means DefaultMaxOutboundBytes.
	MaxOutboundBytes int
	// DialTimeout bounds Env.Dial's connection attempt; 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// Drain says which requests Shutdown refuses and which may stay unanswered (DrainPolicy);
	// the zero value refuses none and waits for every answer.
	Drain DrainPolicy
	// Rand is the node's Env.Rand; nil means a PCG seeded from crypto/rand.
	Rand *rand.Rand
	// InvariantCheckEvery: if the handler is a node.InvariantChecker, its invariants are
	// checked after one event in this many; a broken one is logged at ERROR and counted
	// (InvariantViolations), and the node keeps running. 0 means DefaultInvariantCheckEvery,
	// 1 checks after every event, a negative value never checks.
	InvariantCheckEvery int
	// Metrics records the runtime's metrics and is handed to the node's ReportMetrics
	// (metrics.go); nil records nothing.
	Metrics metrics.Recorder
	// RequestKind names the kind of request a code is, for the request latency histogram
	// ("send", "pull"); "" (or a nil RequestKind) leaves it untimed.
	RequestKind func(code int16) string
	// Gate, if set, vets every request arriving on an accepted connection before the node sees
	// it, on the connection's reader goroutine: nil lets the request through; otherwise the
	// request is dropped and the command returned is sent as its answer (none for a oneway
	// request). An access check (package acl) goes here, at the edge, so that node code and
	// the simulator never see it; nil costs nothing.
	Gate func(remote string, req *codec.Command) *codec.Command
	// Sign, if set, replaces every request the node sends with what it returns (package acl
	// adds the node's signature); responses are sent as they are.
	Sign func(req *codec.Command) *codec.Command
	// WrapListener, if set, wraps each listener (ListenAddr's and ExtraListenAddrs') before it
	// accepts: TLS (broker/tlsconf). Its error fails Start.
	WrapListener func(net.Listener) (net.Listener, error)
	// WrapDial, if set, is applied to each connection the node dials, before the node hears
	// of it (a TLS handshake, bounded by ctx); its error fails the dial.
	WrapDial func(ctx context.Context, nc net.Conn, addr string) (net.Conn, error)
	// Limits bound what clients can make the node hold (limits.go); the zero value takes the
	// defaults.
	Limits Limits
	// Now is the node's Env.Now; nil means time.Now. Test-only: a harness shifts one process's
	// clock with it (cmd/sluice's SLUICE_TEST_CLOCK_OFFSET, docs/testing-flags.md). Timers
	// are durations and are not affected; only the wall time the node reads is.
	Now func() time.Time
}

// Runtime drives one node.Handler on real sockets, timers and disk.
type Runtime struct {
	cfg        Config
	log        *slog.Logger
	disk       node.Disk
	newHandler func(env node.Env) (node.Handler, error)
	built      chan error // receives newHandler's result
	q          queue
	wg         sync.WaitGroup // every goroutine the runtime started
	quit       chan struct{}  // closed by Stop or by a handler panic
	quitOnce   sync.Once
	done       chan struct{} // closed when the loop has exited and torn down

	lifeMu  sync.Mutex
	started bool
	stopped bool
	ln      net.Listener
	addr    net.Addr
	extra   []net.Listener // on ExtraListenAddrs

	errMu sync.Mutex
	err   error

	dialer net.Dialer
	ctx    context.Context // cancelled at teardown: aborts pending dials
	cancel context.CancelFunc

	conns  connRegistry // every connection whose socket may still be open
	nextID atomic.Uint64

	dialLog dialFailures // dial failures, logged once per address and then sparingly
	limits  *guard       // enforces Config.Limits

	// Owned by the loop goroutine.
	drain   drainState
	handler node.Handler
	live    map[node.ConnID]*conn // connections the node knows about
	timers  map[node.TimerID]liveTimer
	timerID node.TimerID
	rng     *rand.Rand
	syncer  syncer
	// events counts the events delivered, for sampling invariant checks; invariantLoggedAt is
	// when a broken invariant was last logged.
	events            uint64
	invariantLoggedAt time.Time
	metrics           runtimeMetrics

	invariantViolations atomic.Uint64
}

// New returns a Runtime for the handler newHandler builds. newHandler is called on the loop
// goroutine when the runtime starts, with the Env the handler must use; if it fails, Start
// returns its error. disk may be nil for a node without storage.
func New(cfg Config, disk node.Disk, newHandler func(env node.Env) (node.Handler, error)) *Runtime {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = codec.DefaultMaxFrameBytes
	}
	if cfg.MaxOutboundBytes <= 0 {
		cfg.MaxOutboundBytes = DefaultMaxOutboundBytes
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.InvariantCheckEvery == 0 {
		cfg.InvariantCheckEvery = DefaultInvariantCheckEvery
	}
	rng := cfg.Rand
	if rng == nil {
		var seed [16]byte
		_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails on supported platforms
		rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	r := &Runtime{
		cfg:        cfg,
		log:        cfg.Logger,
		disk:       disk,
		newHandler: newHandler,
		built:      make(chan error, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		live:       make(map[node.ConnID]*conn),
		timers:     make(map[node.TimerID]liveTimer),
		rng:        rng,
		metrics:    newRuntimeMetrics(cfg.Metrics),
	}
	r.limits = newGuard(cfg.Limits, cfg.Logger, cfg.Metrics)
	r.q.init(maxQueuedFrameBytes)
	r.conns.init()
	r.dialer.Timeout = cfg.DialTimeout
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Start listens on Config.ListenAddr (if set) and starts the event loop, whose first act is to
// build the handler and call its Start. Start returns an error if listening fails, if building
// the handler fails (the runtime is then stopped), if the runtime was already started, or
// (ErrStopped) if it was stopped.
func (r *Runtime) Start() error {
	if err := r.start(); err != nil {
		return err
	}
	if err := <-r.built; err != nil {
		r.Stop()
		return err
	}
	return nil
}

func (r *Runtime) start() error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.stopped {
		return ErrStopped
	}
	if r.started {
		return errors.New("runtime already started")
	}
	if r.cfg.ListenAddr != "" {
		ln, err := r.listen(r.cfg.ListenAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", r.cfg.ListenAddr, err)
		}
		r.ln, r.addr = ln, ln.Addr()
	}
	for _, addr := range r.cfg.ExtraListenAddrs {
		ln, err := r.listen(addr)
		if err != nil {
			if r.ln != nil {
				_ = r.ln.Close()
			}
			for _, l := range r.extra {
				_ = l.Close()
			}
			r.ln, r.addr, r.extra = nil, nil, nil
			return fmt.Errorf("listen on %s: %w: %w", addr, ErrExtraListen, err)
		}
		r.extra = append(r.extra, ln)
	}
	r.syncer = newSyncer()
	r.started = true
	r.wg.Add(1)
	go r.loop()
	for _, ln := range append([]net.Listener{r.ln}, r.extra...) {
		if ln != nil {
			r.wg.Add(1)
			go r.acceptLoop(ln)
		}
	}
	return nil
}

// ExtraAddrs are the addresses the runtime listens on for Config.ExtraListenAddrs, in order.
func (r *Runtime) ExtraAddrs() []net.Addr {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	out := make([]net.Addr, len(r.extra))
	for i, ln := range r.extra {
		out[i] = ln.Addr()
	}
	return out
}

// Addr is the address the runtime listens on, nil for a client-only or unstarted node.
func (r *Runtime) Addr() net.Addr {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	return r.addr
}

// Stop closes the listener and every connection, stops the loop and waits for every goroutine
// the runtime started. The handler is not called again once Stop returns. Safe to call more
// than once and from any goroutine but the loop.
func (r *Runtime) Stop() {
	r.lifeMu.Lock()
	first := !r.stopped
	r.stopped = true
	started := r.started
	r.lifeMu.Unlock()
	r.quitOnce.Do(func() { close(r.quit) })
	if started {
		r.wg.Wait()
		return
	}
	if first { // never started: release anyone waiting in Do
		r.q.close()
		close(r.done)
	}
}

// Done is closed once the node has stopped: by Stop, or because the handler panicked or failed.
func (r *Runtime) Done() <-chan struct{} { return r.done }

// Err reports why the node stopped abnormally (an error wrapping ErrPanic or ErrFailed), or nil.
func (r *Runtime) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Post queues fn to run on the loop, in order with other events, and returns at once. fn runs
// node code: it may call the handler and use the node's Env. fn is dropped if the node stops
// first.
func (r *Runtime) Post(fn func()) { r.q.post(event{kind: evFunc, fn: fn}) }

// Do runs fn on the loop and returns once it has run, or ErrStopped if the node stopped before
// it could. Do must not be called from the loop itself (it would wait for itself). Before
// Start, Do waits for Start.
func (r *Runtime) Do(fn func()) error {
	ran := make(chan struct{})
	r.q.post(event{kind: evFunc, fn: func() { fn(); close(ran) }})
	select {
	case <-ran:
		return nil
	case <-r.done:
		select {
		case <-ran:
			return nil
		default:
			return ErrStopped
		}
	}
}

// loop is the event loop: the only goroutine that calls the handler.
func (r *Runtime) loop() {
	defer r.wg.Done()
	defer r.teardown()
	var buildErr error
	ok := r.guard(func() {
		r.handler, buildErr = r.newHandler(envOf(r))
		if buildErr == nil {
			r.handler.Start()
		}
	})
	switch {
	case !ok:
		r.built <- r.Err()
		return
	case buildErr != nil:
		r.built <- fmt.Errorf("build node: %w", buildErr)
		return
	}
	r.built <- nil
	var spare []event
	for {
		select {
		case <-r.quit:
			r.stopHandler()
			return
		case <-r.q.wake:
		}
		batch := r.q.take(spare)
		if !r.runBatch(batch) {
			return
		}
		r.checkDrained()
		clear(batch) // drop references to frames and closures
		spare = batch[:0]
	}
}

// stopHandler gives a handler that implements node.Stopper its last call on a clean stop.
func (r *Runtime) stopHandler() {
	if s, ok := r.handler.(node.Stopper); ok && r.Err() == nil {
		r.guard(s.OnStop)
	}
}

// failer is a handler that can fail for good (a controller member that could not persist raft
// state): it takes part in nothing more, and only a restart of the process recovers it.
type failer interface{ Failed() error }

// runBatch delivers a batch of events; it returns false if the handler panicked or reported
// through Failed that it failed, which stops the node (Done, Err) so the process can exit and a
// supervisor restart it.
func (r *Runtime) runBatch(batch []event) bool {
	r.metrics.startBatch()
	ok := r.guard(func() {
		for i := range batch {
			r.metrics.answerAtSet = false
			r.dispatch(&batch[i])
			r.sampleInvariants()
		}
	})
	if f, is := r.handler.(failer); ok && is {
		if err := f.Failed(); err != nil {
			r.log.Error("node handler failed; stopping the node", "err", err)
			r.errMu.Lock()
			r.err = fmt.Errorf("%w: %w", ErrFailed, err)
			r.errMu.Unlock()
			r.quitOnce.Do(func() { close(r.quit) })
			return false
		}
	}
	return ok
}

// sampleInvariants counts one event and, on every Config.InvariantCheckEvery-th, checks the
// handler's invariants. In production a broken invariant is reported, not fatal: the node may
// still serve correctly what the invariant does not cover, and an operator decides.
func (r *Runtime) sampleInvariants() {
	r.events++
	every := r.cfg.InvariantCheckEvery
	if every < 0 || r.events%uint64(every) != 0 {
		return
	}
	ic, ok := r.handler.(node.InvariantChecker)
	if !ok {
		return
	}
	err := ic.CheckInvariants()
	if err == nil {
		return
	}
	n := r.invariantViolations.Add(1)
	if now := time.Now(); r.invariantLoggedAt.IsZero() || now.Sub(r.invariantLoggedAt) >= invariantLogInterval {
		r.invariantLoggedAt = now
		r.log.Error("node invariant broken", "err", err, "event", r.events, "violations", n)
	}
}

// InvariantViolations counts the sampled invariant checks that found the handler's state
// broken (see Config.InvariantCheckEvery). Safe to call from any goroutine.
func (r *Runtime) InvariantViolations() uint64 { return r.invariantViolations.Load() }

// guard runs fn and reports whether it returned normally. A panic is logged with its stack,
// recorded for Err and stops the node.
func (r *Runtime) guard(fn func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			err := fmt.Errorf("%w: %v", ErrPanic, v)
			r.log.Error("node handler panicked; stopping the node", "panic", fmt.Sprint(v), "stack", string(stack))
			r.errMu.Lock()
			r.err = err
			r.errMu.Unlock()
			r.quitOnce.Do(func() { close(r.quit) })
			ok = false
		}
	}()
	fn()
	return true
}

func (r *Runtime) dispatch(e *event) {
	h := r.handler
	switch e.kind {
	case evFunc:
		e.fn()
	case evAccepted:
		r.live[e.c.id] = e.c
		h.OnAccepted(e.c.id, e.c.remote)
	case evDialed:
		// A connection the node closed (or the runtime dropped) meanwhile wrote nothing: the
		// node has had OnConnClosed without OnDialed. Otherwise its frames may leave from now.
		if r.live[e.c.id] == e.c {
			e.c.release()
			h.OnDialed(e.c.id)
		}
	case evFrame:
		e.c.dequeued()
		if r.live[e.c.id] == e.c && r.track(e.c, e.cmd) {
			h.OnFrame(e.c.id, e.cmd)
		}
	case evClosed:
		// A reader, writer or dial reported the end of a connection; the node hears of it
		// only if it still thinks the connection is open.
		if r.live[e.c.id] == e.c {
			delete(r.live, e.c.id)
			r.untrack(e.c)
			e.c.shutdown()
			h.OnConnClosed(e.c.id)
		}
	case evDeliverClosed:
		// The runtime already removed the connection while the node was running (Env.Close,
		// an outbound overflow); this is the OnConnClosed that follows.
		h.OnConnClosed(e.c.id)
	case evTimer:
		t, ok := r.timers[e.timer]
		if !ok {
			return // cancelled after time.AfterFunc had already fired
		}
		delete(r.timers, e.timer)
		h.OnTimer(e.timer, t.tag)
	case evSynced:
		r.noteSynced(e.logName, e.upTo, e.err)
		h.OnSynced(e.logName, e.upTo, e.err)
	default:
		panic(fmt.Sprintf("runtime: unknown event kind %d", e.kind))
	}
}

// teardown runs on the loop goroutine after the loop exits: nothing calls the handler again.
func (r *Runtime) teardown() {
	r.quitOnce.Do(func() { close(r.quit) })
	r.q.close()
	r.closeListeners()
	r.cancel()
	for id, t := range r.timers {
		t.t.Stop()
		delete(r.timers, id)
	}
	for _, c := range r.conns.stop() {
		c.shutdown()
	}
	clear(r.live)
	if r.syncer != nil {
		r.syncer.Close()
	}
	close(r.done)
}

// listen listens on addr, through Config.WrapListener if set.
func (r *Runtime) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || r.cfg.WrapListener == nil {
		return ln, err
	}
	wrapped, err := r.cfg.WrapListener(ln)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return wrapped, nil
}
