package runtime

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/metrics"
)

// DrainPolicy says what becomes of requests while a node shuts down (Shutdown). Requests are
// frames that are neither responses nor oneway; the runtime tracks each one delivered to the
// node until the node sends the response with its opaque on the same connection.
type DrainPolicy struct {
	// Refuse reports whether a request with this code that arrives while the node drains is
	// answered by the runtime (Code, Remark) instead of delivered: new writes, which a client
	// should take to another broker. Nil refuses none.
	Refuse func(code int16) bool
	// Parks reports whether a request with this code may wait for something that need not
	// happen (a long-polling pull, a replica's fetch): it does not hold the drain up, and is
	// answered by the runtime (Code, Remark) when the node stops if the node has not answered
	// it by then. Nil: every request holds the drain up until answered.
	Parks func(code int16) bool
	// Code and Remark are the runtime's answer to refused and parked requests.
	Code   int16
	Remark string
}

// ErrDrainTimeout is wrapped by Shutdown's error when requests were still unanswered at its
// deadline (the node was stopped anyway).
var ErrDrainTimeout = errors.New("requests still unanswered at the shutdown deadline")

// ErrFlush is wrapped by Shutdown's error when making the node's logs durable failed: what
// was appended since the node's last sync may be lost.
var ErrFlush = errors.New("flush at shutdown failed")

// drainState is the loop's view of in-flight requests. Owned by the loop.
type drainState struct {
	inflight int           // requests delivered, unanswered, holding the drain up
	draining bool          // Shutdown has begun
	drained  chan struct{} // closed once draining and inflight == 0
	closed   bool          // drained is closed
}

// pendingReq is a request delivered to the node and not yet answered.
type pendingReq struct {
	code  int16
	parks bool // does not count in inflight
	// hist, if the request is timed, is its latency histogram, and at its arrival.
	hist metrics.Histogram
	at   time.Time
}

// track records a request delivered on c; it reports false if the request is refused instead
// (answered by the runtime while draining).
func (r *Runtime) track(c *conn, cmd *codec.Command) bool {
	if cmd.IsResponse() || cmd.Flag&codec.FlagOneway != 0 {
		return true
	}
	p := r.cfg.Drain
	if r.drain.draining && p.Refuse != nil && p.Refuse(cmd.Code) {
		r.answerForNode(c, cmd.Opaque)
		return false
	}
	if c.pending == nil {
		c.pending = make(map[int32]pendingReq)
	}
	if _, dup := c.pending[cmd.Opaque]; dup {
		return true // a client reusing an opaque: the first answer settles both
	}
	if max := r.limits.cfg.MaxInflightPerConn; max > 0 && len(c.pending) >= max {
		r.limits.hit(hitInflight, "request refused: too many requests in flight on the connection", "conn", uint64(c.id), "remote", c.remote, "code", cmd.Code, "max", max)
		_, _ = c.enqueue(&codec.Command{Code: codec.SystemBusy, Opaque: cmd.Opaque, Flag: codec.FlagResponse, Language: "GO", Version: 317,
			Remark: fmt.Sprintf("[TOO_MANY_REQUESTS] %d requests in flight on this connection; wait for their answers", max)})
		return false
	}
	parks := p.Parks != nil && p.Parks(cmd.Code)
	pr := pendingReq{code: cmd.Code, parks: parks}
	if r.metrics.on {
		if pr.hist = r.requestHist(cmd.Code); pr.hist != nil {
			pr.at = r.metrics.batchAt
		}
	}
	c.pending[cmd.Opaque] = pr
	if !parks {
		r.drain.inflight++
	}
	return true
}

// answered settles the request a response sent on c answers. It reports false if the runtime
// answered that request already (the node's answer must then be dropped).
func (r *Runtime) answered(c *conn, cmd *codec.Command) bool {
	if c.runtimeAnswered != nil {
		if _, ok := c.runtimeAnswered[cmd.Opaque]; ok {
			delete(c.runtimeAnswered, cmd.Opaque)
			return false
		}
	}
	p, ok := c.pending[cmd.Opaque]
	if !ok {
		return true
	}
	delete(c.pending, cmd.Opaque)
	if p.hist != nil {
		p.hist.Observe(r.metrics.answerNow().Sub(p.at).Seconds())
	}
	if !p.parks {
		r.drain.inflight--
	}
	return true
}

// untrack forgets the requests of a connection that closed.
func (r *Runtime) untrack(c *conn) {
	for _, p := range c.pending {
		if !p.parks {
			r.drain.inflight--
		}
	}
	c.pending = nil
	c.runtimeAnswered = nil
}

// answerForNode answers request opaque on c with the drain policy's answer.
func (r *Runtime) answerForNode(c *conn, opaque int32) {
	p := r.cfg.Drain
	_, _ = c.enqueue(&codec.Command{Code: p.Code, Opaque: opaque, Flag: codec.FlagResponse, Language: "GO", Version: 317, Remark: p.Remark})
}

// checkDrained closes drained once the node drains with nothing in flight.
func (r *Runtime) checkDrained() {
	if r.drain.draining && r.drain.inflight == 0 && !r.drain.closed {
		r.drain.closed = true
		close(r.drain.drained)
	}
	if r.drain.inflight < 0 {
		panic(fmt.Sprintf("runtime: %d requests in flight", r.drain.inflight))
	}
}

// answerParked answers, on the node's behalf, every parked request it has not answered.
func (r *Runtime) answerParked() {
	for _, c := range r.live {
		for op, p := range c.pending {
			if p.parks {
				r.answerForNode(c, op)
				delete(c.pending, op)
				if c.runtimeAnswered == nil {
					c.runtimeAnswered = make(map[int32]struct{})
				}
				c.runtimeAnswered[op] = struct{}{}
			}
		}
	}
}

// Shutdown stops the node gracefully within timeout: it stops accepting connections, refuses
// the requests Config.Drain says to refuse, waits until every request the node was given has
// been answered (parked ones excepted, see DrainPolicy), answers the parked ones, lets the
// answers reach the network, stops the node (its OnStop runs: Stopper), then makes durable
// every log of the node's disk that is still open (a disk with SyncAll, as diskfile's). It
// returns an error wrapping ErrDrainTimeout if requests were still unanswered at the deadline
// (the node is stopped anyway), and the flush's error if the flush failed.
func (r *Runtime) Shutdown(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	drained := make(chan struct{})
	err := r.Do(func() {
		r.drain.draining = true
		r.drain.drained = drained
		r.checkDrained()
	})
	r.closeListeners()
	if err != nil { // stopped already
		r.Stop()
		return r.flushDisk()
	}
	var errs []error
	t := time.NewTimer(time.Until(deadline))
	select {
	case <-drained:
	case <-r.done:
	case <-t.C:
		var n int
		_ = r.Do(func() { n = r.drain.inflight })
		errs = append(errs, fmt.Errorf("%w: %d", ErrDrainTimeout, n))
	}
	t.Stop()
	_ = r.Do(r.answerParked)
	r.waitWritten(deadline)
	r.Stop()
	if err := r.flushDisk(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// closeListeners stops accepting connections; the accept loops end.
func (r *Runtime) closeListeners() {
	r.lifeMu.Lock()
	lns := append([]net.Listener{r.ln}, r.extra...)
	r.lifeMu.Unlock()
	for _, ln := range lns {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// waitWritten waits until every connection's queued frames have been handed to the socket,
// or the deadline (at least a short grace) passes.
func (r *Runtime) waitWritten(deadline time.Time) {
	if grace := time.Now().Add(100 * time.Millisecond); deadline.Before(grace) {
		deadline = grace
	}
	for time.Now().Before(deadline) {
		if r.conns.allWritten() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// allWritten reports whether no connection has frames queued.
func (g *connRegistry) allWritten() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		c.mu.Lock()
		busy := c.up && !c.closed && (len(c.out) > 0 || c.writing)
		c.mu.Unlock()
		if busy {
			return false
		}
	}
	return true
}

// allSyncer is a disk that can make every open log durable (diskfile.Disk).
type allSyncer interface{ SyncAll() error }

// flushDisk makes the node's open logs durable after the node stopped.
func (r *Runtime) flushDisk() error {
	s, ok := r.disk.(allSyncer)
	if !ok {
		return nil
	}
	if err := s.SyncAll(); err != nil {
		return fmt.Errorf("%w: %w", ErrFlush, err)
	}
	return nil
}
