package runtime

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/metrics"
)

// Limits bound what one connection, or all of them together, can make a node hold or wait
// for: the defences against a broken or hostile client. A limit hit closes that one
// connection (or, for requests in flight, answers SYSTEM_BUSY), is counted
// (sluice_connection_limit_hits_total) and logged (a burst of logBurst lines per kind, then one per logEvery); the
// node and every other connection go on. Zero fields take the defaults below; a negative
// count or duration turns that limit off.
type Limits struct {
	// MaxConns bounds the inbound connections open at once; one more is closed at accept.
	MaxConns int
	// MaxConnsPerAddr bounds the inbound connections from one remote IP address.
	MaxConnsPerAddr int
	// MaxInflightPerConn bounds the requests a connection has delivered and the node has not
	// answered (parked long polls included); one more is answered SYSTEM_BUSY, not delivered.
	MaxInflightPerConn int
	// IdleTimeout closes an inbound connection that sent nothing for this long (Java's
	// serverChannelMaxIdleTimeSeconds, 120 s). Clients heartbeat every 30 s.
	IdleTimeout time.Duration
	// FrameReadTimeout bounds how long the rest of a frame may take once its length word has
	// arrived: a peer trickling a frame a byte at a time is cut off.
	FrameReadTimeout time.Duration
	// WriteStallTimeout bounds one write to a peer: a peer that stops reading its responses is
	// disconnected rather than left holding the node's buffers (also bounded by
	// Config.MaxOutboundBytes).
	WriteStallTimeout time.Duration
	// MaxPartialFrameBytes bounds the bytes held, over every connection together, in frames
	// that have begun to arrive and not finished; a connection whose frame would pass it is
	// closed. A frame's buffer grows with the bytes that arrived, never ahead of them.
	MaxPartialFrameBytes int64
	// MaxOutboundTotalBytes bounds the frames queued for peers over every connection together;
	// past it, the connection holding the most is closed. (Config.MaxOutboundBytes bounds one.)
	MaxOutboundTotalBytes int64
}

// The defaults of Limits.
const (
	DefaultMaxConns              = 10000
	DefaultMaxConnsPerAddr       = 1000
	DefaultMaxInflightPerConn    = 4096
	DefaultIdleTimeout           = 120 * time.Second
	DefaultFrameReadTimeout      = 30 * time.Second
	DefaultWriteStallTimeout     = 60 * time.Second
	DefaultMaxPartialFrameBytes  = 256 << 20
	DefaultMaxOutboundTotalBytes = 512 << 20
)

func (l Limits) withDefaults() Limits {
	intDef := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	durDef := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	intDef(&l.MaxConns, DefaultMaxConns)
	intDef(&l.MaxConnsPerAddr, DefaultMaxConnsPerAddr)
	intDef(&l.MaxInflightPerConn, DefaultMaxInflightPerConn)
	durDef(&l.IdleTimeout, DefaultIdleTimeout)
	durDef(&l.FrameReadTimeout, DefaultFrameReadTimeout)
	durDef(&l.WriteStallTimeout, DefaultWriteStallTimeout)
	if l.MaxPartialFrameBytes == 0 {
		l.MaxPartialFrameBytes = DefaultMaxPartialFrameBytes
	}
	if l.MaxOutboundTotalBytes == 0 {
		l.MaxOutboundTotalBytes = DefaultMaxOutboundTotalBytes
	}
	return l
}

// The kinds of limit hits, the label values of mLimitHits.
const (
	hitConns        = "connections"
	hitConnsPerAddr = "connections_per_address"
	hitInflight     = "requests_in_flight"
	hitIdle         = "idle"
	hitSlowFrame    = "slow_frame"
	hitWriteStall   = "write_stall"
	hitPartial      = "partial_frame_bytes"
	hitBadFrame     = "bad_frame"
	hitOutbound     = "outbound_bytes"
)

var hitKinds = []string{hitConns, hitConnsPerAddr, hitInflight, hitIdle, hitSlowFrame, hitWriteStall, hitPartial, hitBadFrame, hitOutbound}

var mLimitHits = metrics.New("sluice_connection_limit_hits_total",
	"Connections closed or requests refused by a limit on what a client may make the node hold (runtime.Limits), and connections closed for a malformed or oversized frame, by limit.",
	metrics.KindCounter, "limit")

// guard enforces Limits. Its fields are safe for concurrent use: the accept loop, readers and
// writers use them.
type guard struct {
	cfg  Limits
	log  *slog.Logger
	hits map[string]metrics.Counter // by kind; filled at construction, then read-only

	mu      sync.Mutex
	conns   int
	perAddr map[string]int

	partial  atomic.Int64 // bytes held in partly read frames
	outbound atomic.Int64 // bytes queued for peers, not yet handed to the socket

	logMu sync.Mutex
	logs  map[string]*logBucket // by kind
}

// Log lines about one kind of limit hit: up to logBurst at once, refilled one per logEvery.
const (
	logBurst = 20
	logEvery = time.Second
)

// logBucket is a token bucket of log lines.
type logBucket struct {
	tokens  float64
	at      time.Time // when tokens was last refilled
	dropped int       // hits not logged since the last line
}

func newGuard(l Limits, log *slog.Logger, rec metrics.Recorder) *guard {
	g := &guard{cfg: l.withDefaults(), log: log, hits: map[string]metrics.Counter{}, perAddr: map[string]int{},
		logs: map[string]*logBucket{}}
	rec = metrics.Or(rec)
	for _, k := range hitKinds {
		g.hits[k] = rec.Counter(mLimitHits, k)
		g.logs[k] = &logBucket{tokens: logBurst}
	}
	return g
}

// hit counts a limit hit of kind and logs it if the kind's bucket has a line left (saying how
// many hits were not logged since the last line).
func (g *guard) hit(kind, msg string, args ...any) {
	g.hits[kind].Add(1)
	g.logMu.Lock()
	b, now := g.logs[kind], time.Now()
	if !b.at.IsZero() {
		b.tokens = min(logBurst, b.tokens+float64(now.Sub(b.at))/float64(logEvery))
	}
	b.at = now
	if b.tokens < 1 {
		b.dropped++
		g.logMu.Unlock()
		return
	}
	b.tokens--
	if b.dropped > 0 {
		args = append(args, "notLoggedSinceLast", b.dropped)
	}
	b.dropped = 0
	g.logMu.Unlock()
	g.log.Warn(msg, append(args, "limit", kind)...)
}

// admit counts an inbound connection from remote, or reports false (and counts the hit) if a
// connection limit forbids it; release undoes an admit.
func (g *guard) admit(remote string) bool {
	host := remoteHost(remote)
	g.mu.Lock()
	switch {
	case g.cfg.MaxConns > 0 && g.conns >= g.cfg.MaxConns:
		g.mu.Unlock()
		g.hit(hitConns, "connection refused: too many connections", "remote", remote, "max", g.cfg.MaxConns)
		return false
	case g.cfg.MaxConnsPerAddr > 0 && g.perAddr[host] >= g.cfg.MaxConnsPerAddr:
		g.mu.Unlock()
		g.hit(hitConnsPerAddr, "connection refused: too many connections from one address", "remote", remote, "max", g.cfg.MaxConnsPerAddr)
		return false
	}
	g.conns++
	g.perAddr[host]++
	g.mu.Unlock()
	return true
}

func (g *guard) release(remote string) {
	host := remoteHost(remote)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns--
	if g.perAddr[host]--; g.perAddr[host] <= 0 {
		delete(g.perAddr, host)
	}
	if g.conns < 0 {
		panic(fmt.Sprintf("runtime: %d inbound connections counted", g.conns))
	}
}

func remoteHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// Errors of frameReader, each closing the connection.
var (
	errIdle        = errors.New("idle for too long")
	errSlowFrame   = errors.New("frame arrived too slowly")
	errPartialFull = errors.New("too many bytes in partly read frames across connections")
)

// frameChunkBytes is the step in which a frame's buffer grows as its bytes arrive.
const frameChunkBytes = 64 << 10

// frameReader reads frames off one connection within the guard's limits.
type frameReader struct {
	g        *guard
	nc       net.Conn
	br       *bufio.Reader
	maxBytes int
	inbound  bool // idle timeout applies (the peer dialled us)
	deadline bool // a read deadline is set on nc
}

// next reads one frame (without its length word). Between frames it waits at most IdleTimeout
// (inbound connections); a frame once begun must arrive within FrameReadTimeout; the bytes it
// holds meanwhile count against MaxPartialFrameBytes.
func (f *frameReader) next() ([]byte, error) {
	l := f.g.cfg
	if f.br.Buffered() < 4 { // the length word may have to be waited for
		switch {
		case f.inbound && l.IdleTimeout > 0:
			f.setDeadline(time.Now().Add(l.IdleTimeout))
		case f.deadline:
			f.setDeadline(time.Time{})
		}
	}
	var lw [4]byte
	if _, err := io.ReadFull(f.br, lw[:]); err != nil {
		if isTimeout(err) {
			return nil, errIdle
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(lw[:])
	if n < 4 {
		return nil, fmt.Errorf("%w: frame length %d is shorter than its header-length word", codec.ErrBadFrame, n)
	}
	if uint64(n) > uint64(f.maxBytes) {
		return nil, fmt.Errorf("%w: frame length %d exceeds limit %d", codec.ErrFrameTooLarge, n, f.maxBytes)
	}
	size := int(n)
	if f.br.Buffered() >= size { // all here already: no deadline, no accounting
		buf := make([]byte, size)
		_, err := io.ReadFull(f.br, buf)
		return buf, err
	}
	if l.FrameReadTimeout > 0 {
		f.setDeadline(time.Now().Add(l.FrameReadTimeout))
	} else if f.deadline {
		f.setDeadline(time.Time{})
	}
	// Read in chunks, reserving each against the budget before it is allocated, so memory
	// follows the bytes that arrived; join them once the frame is whole.
	var chunks [][]byte
	held := int64(0)
	defer func() { f.g.partial.Add(-held) }()
	for got := 0; got < size; {
		step := min(size-got, frameChunkBytes)
		if budget := l.MaxPartialFrameBytes; budget > 0 && f.g.partial.Add(int64(step)) > budget {
			f.g.partial.Add(-int64(step))
			return nil, errPartialFull
		}
		held += int64(step)
		chunk := make([]byte, step)
		if _, err := io.ReadFull(f.br, chunk); err != nil {
			if isTimeout(err) {
				return nil, errSlowFrame
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the stream ended inside a frame: not a clean close
			}
			return nil, fmt.Errorf("read frame body of %d bytes: %w", size, err)
		}
		chunks = append(chunks, chunk)
		got += step
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	buf := make([]byte, 0, size)
	for _, c := range chunks {
		buf = append(buf, c...)
	}
	return buf, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (f *frameReader) setDeadline(t time.Time) {
	_ = f.nc.SetReadDeadline(t)
	f.deadline = !t.IsZero()
}

// shedOutbound closes the connection with the most bytes queued for its peer: the frames
// queued for every connection together passed MaxOutboundTotalBytes, and the connection whose
// peer reads least holds the most of them. Called on the loop.
func (r *Runtime) shedOutbound() {
	var worst *conn
	most := 0
	for _, c := range r.live {
		c.mu.Lock()
		n := len(c.out)
		c.mu.Unlock()
		if n > most || (n == most && worst != nil && c.id < worst.id) {
			worst, most = c, n
		}
	}
	if worst == nil {
		return
	}
	r.limits.hit(hitOutbound, "closing connection: it holds the most of the frames queued for peers, which passed their budget",
		"conn", uint64(worst.id), "remote", worst.remote, "queuedBytes", most, "budget", r.limits.cfg.MaxOutboundTotalBytes)
	r.forget(worst)
	worst.shutdown()
}
