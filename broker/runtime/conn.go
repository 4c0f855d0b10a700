package runtime

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

const (
	readBufferBytes = 64 << 10
	// maxIdleWriteBufferBytes: a writer keeps its spare buffer between batches unless a burst
	// grew it past this.
	maxIdleWriteBufferBytes = 1 << 20
	// closeFlushTimeout bounds how long Env.Close waits for queued frames to reach the peer.
	closeFlushTimeout = 5 * time.Second
	// frameEventOverheadBytes is what a queued frame costs beyond its bytes, for backpressure.
	frameEventOverheadBytes = 256
	// maxQueuedFramesPerConn bounds one connection's frames waiting for the loop.
	maxQueuedFramesPerConn = 256
)

// conn is one TCP connection. The loop owns its place in Runtime.live; mu guards what the
// loop shares with the connection's dial, reader and writer goroutines.
type conn struct {
	r      *Runtime
	id     node.ConnID
	remote string
	// inbound: the peer dialled the node (its requests pass Config.Gate); admitted: it counts
	// against the guard's connection limits until shutdown. Set before the connection starts.
	inbound, admitted bool

	mu      sync.Mutex
	nc      net.Conn // nil until a dial completes
	out     []byte   // encoded frames not yet handed to the writer
	up      bool     // out may be written: the node has had OnAccepted or OnDialed (see release)
	closing bool     // flush out, then close (Env.Close)
	closed  bool
	writing bool          // the writer is handing a batch to the socket
	wake    chan struct{} // cap 1: out became non-empty, up, closing or closed

	// queued counts the frames the reader posted that the loop has not dispatched; past
	// maxQueuedFramesPerConn the reader waits for room (signalled at half), so one
	// connection flooding requests cannot fill the loop's inbox ahead of every other.
	queued atomic.Int32
	room   chan struct{} // cap 1

	// Owned by the loop: the requests delivered to the node and not yet answered (drain.go),
	// and those the runtime answered for the node, whose answer from the node is dropped.
	pending         map[int32]pendingReq
	runtimeAnswered map[int32]struct{}
}

func (r *Runtime) newConn(remote string) *conn {
	return &conn{r: r, id: node.ConnID(r.nextID.Add(1)), remote: remote, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// enqueue encodes cmd onto the outbound buffer and returns how many bytes are queued.
func (c *conn) enqueue(cmd *codec.Command) (int, error) {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return 0, nil
	}
	first := len(c.out) == 0
	out, err := codec.AppendFrame(c.out, cmd)
	if err != nil {
		c.mu.Unlock()
		return 0, err
	}
	c.r.limits.outbound.Add(int64(len(out) - len(c.out)))
	c.out = out
	n := len(out)
	c.mu.Unlock()
	if first {
		c.signal()
	}
	return n, nil
}

// release lets the writer send what is queued: the loop is about to deliver OnDialed. A dialled
// connection holds its frames until then, so one the node closes first (or the runtime drops)
// delivered nothing, as node.Handler.OnDialed promises.
func (c *conn) release() {
	c.mu.Lock()
	c.up = true
	c.mu.Unlock()
	c.signal()
}

// close implements Env.Close. A connection the node knows is up is flushed, then closed. One
// still dialling (or connected, with OnDialed not yet delivered) has written nothing: it is
// closed at once and its queued frames are discarded, so the node's OnConnClosed without
// OnDialed means, as promised, that nothing sent on it arrived.
func (c *conn) close() {
	c.mu.Lock()
	if !c.up {
		c.mu.Unlock()
		c.shutdown()
		return
	}
	c.closing = true
	c.mu.Unlock()
	c.signal()
}

// shutdown closes the connection at once, discarding unsent frames. Idempotent.
func (c *conn) shutdown() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	nc := c.nc
	c.r.limits.outbound.Add(-int64(len(c.out)))
	c.out = nil
	c.mu.Unlock()
	if c.admitted {
		c.r.limits.release(c.remote)
	}
	if nc != nil {
		_ = nc.Close()
	}
	c.signal()
	c.signalRoom() // a reader waiting for room sees the connection closed
	c.r.conns.remove(c)
}

// start runs the connection's reader and writer on nc. It reports false (and closes nc) if
// the connection was closed meanwhile.
func (c *conn) start(nc net.Conn) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return false
	}
	c.nc = nc
	c.mu.Unlock()
	c.r.wg.Add(2)
	go c.writeLoop(nc)
	go c.readLoop(nc)
	return true
}

// writeLoop hands everything queued since its last write to the socket in one Write call,
// so a busy connection sends many frames per syscall. It writes nothing before the connection
// is up for the node (release wakes it then).
func (c *conn) writeLoop(nc net.Conn) {
	defer c.r.wg.Done()
	var spare []byte
	for range c.wake {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		if !c.up {
			c.mu.Unlock()
			continue
		}
		buf := c.out
		c.out = spare[:0]
		closing := c.closing
		c.writing = len(buf) > 0
		c.mu.Unlock()
		if closing {
			_ = nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		} else if stall := c.r.limits.cfg.WriteStallTimeout; stall > 0 && len(buf) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(stall))
		}
		if len(buf) > 0 {
			_, err := nc.Write(buf)
			c.r.limits.outbound.Add(-int64(len(buf)))
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			if err != nil {
				if isTimeout(err) && !closing {
					c.r.limits.hit(hitWriteStall, "closing connection: the peer does not read", "conn", uint64(c.id), "remote", c.remote, "queuedBytes", len(buf))
					c.r.q.post(event{kind: evClosed, c: c})
					c.shutdown()
					return
				}
				c.lost(err)
				return
			}
		}
		if closing {
			c.shutdown()
			return
		}
		if cap(buf) > maxIdleWriteBufferBytes {
			buf = nil
		}
		spare = buf[:0]
	}
}

// readLoop decodes frames and posts them to the loop in order. A malformed or oversized frame
// closes the connection (the stream cannot be resynchronised) and is logged.
func (c *conn) readLoop(nc net.Conn) {
	defer c.r.wg.Done()
	fr := frameReader{g: c.r.limits, nc: nc, maxBytes: c.r.cfg.MaxFrameBytes, inbound: c.inbound}
	if c.inbound {
		fr.br = bufio.NewReaderSize(nc, smallReadBufferBytes)
	} else {
		fr.br, fr.grown = bufio.NewReaderSize(nc, readBufferBytes), true
	}
	for {
		frame, err := fr.next()
		if err != nil {
			c.lost(err)
			return
		}
		cmd, err := codec.Decode(frame)
		if err != nil {
			c.lost(err)
			return
		}
		if gate := c.r.cfg.Gate; gate != nil && c.inbound && !cmd.IsResponse() {
			if refusal := gate(c.remote, cmd); refusal != nil {
				if !c.refuse(cmd, refusal) {
					return
				}
				continue
			}
		}
		if !c.waitRoom() {
			return
		}
		c.queued.Add(1)
		if !c.r.q.postFrame(event{kind: evFrame, c: c, cmd: cmd}, len(frame)+frameEventOverheadBytes) {
			c.shutdown()
			return
		}
	}
}

// refuse answers a request Config.Gate refused, from the reader goroutine (the node never
// sees the request). It reports false if the connection was closed because its outbound
// queue is over the limit (a client that sends refused requests and reads no answers).
func (c *conn) refuse(req, answer *codec.Command) bool {
	if req.Flag&codec.FlagOneway != 0 {
		return true
	}
	n, err := c.enqueue(answer)
	if err != nil {
		c.r.log.Error("dropping a refusal that cannot be encoded", "conn", uint64(c.id), "remote", c.remote, "err", err)
		return true
	}
	if n > c.r.cfg.MaxOutboundBytes {
		c.lost(errOutboundOverLimit)
		return false
	}
	return true
}

var errOutboundOverLimit = errors.New("outbound queue over limit")

// lost reports that the connection ended on its own (peer close, I/O or protocol error).
func (c *conn) lost(err error) {
	c.mu.Lock()
	closedByUs := c.closed
	c.mu.Unlock()
	if closedByUs {
		return
	}
	log := c.r.log
	switch {
	case errors.Is(err, codec.ErrBadFrame) || errors.Is(err, codec.ErrFrameTooLarge):
		c.r.limits.hit(hitBadFrame, "closing connection: bad frame", "conn", uint64(c.id), "remote", c.remote, "err", err)
	case errors.Is(err, errIdle):
		c.r.limits.hit(hitIdle, "closing connection: idle", "conn", uint64(c.id), "remote", c.remote, "after", c.r.limits.cfg.IdleTimeout)
	case errors.Is(err, errSlowFrame):
		c.r.limits.hit(hitSlowFrame, "closing connection: a frame arrives too slowly", "conn", uint64(c.id), "remote", c.remote, "within", c.r.limits.cfg.FrameReadTimeout)
	case errors.Is(err, errPartialFull):
		c.r.limits.hit(hitPartial, "closing connection: partly read frames hold too many bytes", "conn", uint64(c.id), "remote", c.remote, "budget", c.r.limits.cfg.MaxPartialFrameBytes)
	case errors.Is(err, io.EOF):
		log.Debug("connection closed by peer", "conn", uint64(c.id), "remote", c.remote)
	default:
		log.Info("connection lost", "conn", uint64(c.id), "remote", c.remote, "err", err)
	}
	c.r.q.post(event{kind: evClosed, c: c})
	c.shutdown()
}

// acceptLoop accepts inbound connections until the listener closes.
func (r *Runtime) acceptLoop(ln net.Listener) {
	defer r.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then try again.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.log.Warn("accept failed; retrying", "addr", ln.Addr().String(), "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-r.quit:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		remote := nc.RemoteAddr().String()
		if !r.limits.admit(remote) {
			_ = nc.Close()
			continue
		}
		c := r.newConn(remote)
		c.up = true // the node can send on it only after OnAccepted
		c.inbound, c.admitted = true, true
		r.log.Debug("accepted connection", "conn", uint64(c.id), "remote", c.remote)
		if !r.conns.add(c) {
			_ = nc.Close() // stopping
			return
		}
		if !r.q.post(event{kind: evAccepted, c: c}) {
			_ = nc.Close()
			c.shutdown()
			return
		}
		c.start(nc)
	}
}

// dial implements Env.Dial: the ConnID is returned at once, frames sent meanwhile queue in
// c.out and are written only once the loop delivers OnDialed (dispatch releases them), and a
// failed dial ends in OnConnClosed.
func (r *Runtime) dial(addr string) node.ConnID {
	c := r.newConn(addr)
	r.live[c.id] = c
	if !r.conns.add(c) {
		// Cannot happen while the loop runs (only teardown stops the registry); be safe.
		r.forget(c)
		return c.id
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		nc, err := r.dialer.DialContext(r.ctx, "tcp", addr)
		if err == nil && r.cfg.WrapDial != nil {
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.DialTimeout)
			nc, err = r.cfg.WrapDial(ctx, nc, addr)
			cancel()
		}
		if err != nil {
			r.log.Debug("dial failed", "conn", uint64(c.id), "addr", addr, "err", err)
			if r.ctx.Err() == nil {
				r.dialLog.failed(r.log, addr, err)
			}
			r.q.post(event{kind: evClosed, c: c})
			c.shutdown()
			return
		}
		r.dialLog.succeeded(r.log, addr)
		// Posted before the reader starts, so OnDialed precedes every frame from the peer. The
		// writer starts too, but holds the queued frames until dispatch releases them.
		r.q.post(event{kind: evDialed, c: c})
		c.start(nc)
	}()
	return c.id
}

// connRegistry holds every connection whose socket may still be open, so teardown can close
// them all, including ones the node no longer knows about (flushing after Env.Close).
type connRegistry struct {
	mu      sync.Mutex
	conns   map[*conn]struct{}
	stopped bool
}

func (g *connRegistry) init() { g.conns = make(map[*conn]struct{}) }

func (g *connRegistry) add(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *connRegistry) remove(c *conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

// stop refuses later additions and returns every registered connection.
func (g *connRegistry) stop() []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	all := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		all = append(all, c)
	}
	return all
}

// waitRoom waits while the connection has maxQueuedFramesPerConn frames waiting for the loop.
// It reports false if the connection closed meanwhile.
func (c *conn) waitRoom() bool {
	for c.queued.Load() >= maxQueuedFramesPerConn {
		<-c.room
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return false
		}
	}
	return true
}

// dequeued is the loop's note that it took one of the connection's frames; at half the bound
// a waiting reader may go on.
func (c *conn) dequeued() {
	if c.queued.Add(-1) == maxQueuedFramesPerConn/2 {
		c.signalRoom()
	}
}

func (c *conn) signalRoom() {
	select {
	case c.room <- struct{}{}:
	default:
	}
}
