package runtime

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// closedByPeer reports whether the node closed c, reading until EOF or an error within 5 s.
func closedByPeer(c *rawClient) bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c.nc)
	var ne net.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

// lengthWord is a frame's length word declaring n bytes after it.
func lengthWord(n uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return b[:]
}

// An inbound connection that sends nothing for IdleTimeout is closed; one that keeps sending
// is not; the closing is logged with its reason.
func TestIdleConnectionClosed(t *testing.T) {
	logs := &logBuffer{}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Logger: logs.logger(), Limits: Limits{IdleTimeout: 300 * time.Millisecond}}, &testNode{})
	idle := dialRaw(t, r.Addr().String())
	busy := dialRaw(t, r.Addr().String())
	for i := range 8 {
		busy.roundTrip(int32(i), "keep-alive")
		time.Sleep(100 * time.Millisecond)
	}
	if !closedByPeer(idle) {
		t.Fatal("an idle connection stayed open")
	}
	busy.roundTrip(99, "still open")
	if l := logs.String(); !containsAll(l, "closing connection: idle", "limit=idle") {
		t.Errorf("log lacks the reason:\n%s", l)
	}
}

// A frame trickled in more slowly than FrameReadTimeout allows is cut off.
func TestSlowFrameCutOff(t *testing.T) {
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Limits: Limits{FrameReadTimeout: 300 * time.Millisecond}}, &testNode{})
	c := dialRaw(t, r.Addr().String())
	if err := c.writeRaw(append(lengthWord(1000), 0, 0)); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() { done <- closedByPeer(c) }()
	for range 5 { // one byte every 100 ms: never enough
		time.Sleep(100 * time.Millisecond)
		_ = c.writeRaw([]byte{0})
	}
	if !<-done {
		t.Fatal("a trickling sender was not cut off")
	}
	dialRaw(t, r.Addr().String()).roundTrip(1, "still serving")
}

// A declared frame's buffer follows the bytes that arrived, and the bytes of partly read
// frames over every connection stay within MaxPartialFrameBytes: the connection that would pass
// it is closed, the others go on.
func TestPartialFramesBounded(t *testing.T) {
	const budget = 1 << 20
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Limits: Limits{MaxPartialFrameBytes: budget}}, &testNode{})
	sendPart := func(n int) *rawClient {
		c := dialRaw(t, r.Addr().String())
		if err := c.writeRaw(append(lengthWord(16<<20), make([]byte, n)...)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := sendPart(200 << 10) // 200 KiB of a declared 16 MiB
	waitFor(t, "the first partial frame held", func() bool { return r.limits.partial.Load() >= 200<<10 })
	if got := r.limits.partial.Load(); got > 200<<10+frameChunkBytes {
		t.Fatalf("200 KiB of a 16 MiB frame holds %d bytes", got)
	}
	b := sendPart(900 << 10) // together past the budget
	if !closedByPeer(b) {
		t.Fatal("a connection whose frame passed the budget stayed open")
	}
	if got := r.limits.partial.Load(); got > budget {
		t.Errorf("%d bytes in partial frames, budget %d", got, budget)
	}
	a.nc.Close()
	waitFor(t, "the closed connection's bytes released", func() bool { return r.limits.partial.Load() == 0 })
	dialRaw(t, r.Addr().String()).roundTrip(1, "still serving")
}

// Connections past MaxConnsPerAddr (or MaxConns) are closed at accept; a closed one frees its
// place.
func TestConnectionLimits(t *testing.T) {
	for _, lim := range []Limits{{MaxConnsPerAddr: 2}, {MaxConns: 2}} {
		r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Limits: lim}, &testNode{})
		a, b := dialRaw(t, r.Addr().String()), dialRaw(t, r.Addr().String())
		a.roundTrip(1, "a")
		b.roundTrip(1, "b")
		if !closedByPeer(dialRaw(t, r.Addr().String())) {
			t.Fatalf("%+v: a third connection was accepted", lim)
		}
		a.nc.Close()
		waitFor(t, "the closed connection's place freed", func() bool {
			r.limits.mu.Lock()
			defer r.limits.mu.Unlock()
			return r.limits.conns == 1
		})
		dialRaw(t, r.Addr().String()).roundTrip(2, "in its place")
	}
}

// Past MaxInflightPerConn unanswered requests, one more is answered SYSTEM_BUSY by the
// runtime and never reaches the node.
func TestInflightLimit(t *testing.T) {
	delivered := make(chan int32, 10)
	n := &testNode{onFrame: func(c node.ConnID, cmd *codec.Command) { delivered <- cmd.Opaque }} // never answers
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Limits: Limits{MaxInflightPerConn: 2}}, n)
	c := dialRaw(t, r.Addr().String())
	for i := int32(1); i <= 3; i++ {
		req := codec.NewRequest(1, nil, nil)
		req.Opaque = i
		c.write(req)
	}
	c.flush()
	resp, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Opaque != 3 || resp.Code != codec.SystemBusy {
		t.Errorf("answer: opaque %d code %d %q, want opaque 3 SYSTEM_BUSY", resp.Opaque, resp.Code, resp.Remark)
	}
	if len(delivered) != 2 {
		t.Errorf("%d requests delivered, want 2", len(delivered))
	}
}

// A peer that stops reading is disconnected once a write makes no progress for
// WriteStallTimeout, before the outbound limit is reached.
func TestWriteStallDisconnects(t *testing.T) {
	closed := make(chan node.ConnID, 1)
	n := &testNode{onClosed: func(c node.ConnID) { closed <- c }}
	body := make([]byte, 1<<20)
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		for range 32 { // 32 MiB at a peer that reads nothing
			resp := codec.NewResponse(cmd, codec.Success, "")
			resp.Body = body
			n.env.Send(c, resp)
		}
	}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", MaxOutboundBytes: 1 << 30, Limits: Limits{WriteStallTimeout: 300 * time.Millisecond}}, n)
	c := dialRaw(t, r.Addr().String())
	c.write(codec.NewRequest(7, nil, nil))
	c.flush()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a peer that reads nothing was not disconnected")
	}
}

// The log about one kind of limit hit is rate limited, and says how many it left out.
func TestLimitLogsRateLimited(t *testing.T) {
	logs := &logBuffer{}
	g := newGuard(Limits{}, logs.logger(), nil)
	for range 100 {
		g.hit(hitBadFrame, "closing connection: bad frame")
	}
	g.logs[hitBadFrame].at = time.Now().Add(-logEvery) // as if a line's worth of time had passed
	g.hit(hitBadFrame, "closing connection: bad frame")
	l := logs.String()
	if got := countLines(l); got != logBurst+1 || !containsAll(l, "notLoggedSinceLast=80") {
		t.Errorf("%d lines, want %d, the last counting 80 left out:\n%s", got, logBurst+1, l)
	}
}

func countLines(s string) int {
	n := 0
	for _, c := range s {
		if c == '\n' {
			n++
		}
	}
	return n
}

// Past MaxOutboundTotalBytes queued for peers, the connection holding the most (a peer that
// reads nothing) is closed; a connection whose peer reads goes on, and the bytes it held are
// released.
func TestOutboundBudgetShedsTheWorstReader(t *testing.T) {
	body := make([]byte, 256<<10)
	n := &testNode{}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		count := 1
		if cmd.Code == 7 {
			count = 256 // 64 MiB for a peer that reads nothing: more than loopback's socket buffers take
		}
		for range count {
			resp := codec.NewResponse(cmd, codec.Success, "")
			resp.Body = body
			n.env.Send(c, resp)
		}
	}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", MaxOutboundBytes: 1 << 30,
		Limits: Limits{MaxOutboundTotalBytes: 4 << 20, WriteStallTimeout: -1}}, n)
	greedy := dialRaw(t, r.Addr().String())
	greedy.write(codec.NewRequest(7, nil, nil))
	greedy.flush()
	if !closedByPeer(greedy) {
		t.Fatal("the connection holding the most outbound bytes was not closed")
	}
	good := dialRaw(t, r.Addr().String())
	for i := range 4 {
		req := codec.NewRequest(1, nil, nil)
		req.Opaque = int32(i)
		good.write(req)
		good.flush()
		if resp, err := good.read(); err != nil || len(resp.Body) != len(body) {
			t.Fatalf("a reading peer's answer %d: %v", i, err)
		}
	}
	waitFor(t, "the outbound bytes released", func() bool { return r.limits.outbound.Load() == 0 })
}
