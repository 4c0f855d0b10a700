package runtime

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// testNode is a handler whose behaviour each test plugs in. By default it answers every
// request with a response carrying the same opaque and body (an echo server).
type testNode struct {
	env        node.Env
	onStart    func()
	onAccepted func(c node.ConnID, remote string)
	onDialed   func(c node.ConnID)
	onFrame    func(c node.ConnID, cmd *codec.Command)
	onClosed   func(c node.ConnID)
	onTimer    func(id node.TimerID, tag any)
	onSynced   func(name string, upTo uint64, err error)
}

func (n *testNode) Start() {
	if n.onStart != nil {
		n.onStart()
	}
}

func (n *testNode) OnAccepted(c node.ConnID, remote string) {
	if n.onAccepted != nil {
		n.onAccepted(c, remote)
	}
}

func (n *testNode) OnDialed(c node.ConnID) {
	if n.onDialed != nil {
		n.onDialed(c)
	}
}

func (n *testNode) OnConnClosed(c node.ConnID) {
	if n.onClosed != nil {
		n.onClosed(c)
	}
}

func (n *testNode) OnFrame(c node.ConnID, cmd *codec.Command) {
	if n.onFrame != nil {
		n.onFrame(c, cmd)
		return
	}
	if !cmd.IsResponse() {
		resp := codec.NewResponse(cmd, codec.Success, "")
		resp.Body = cmd.Body
		n.env.Send(c, resp)
	}
}

func (n *testNode) OnTimer(id node.TimerID, tag any) {
	if n.onTimer != nil {
		n.onTimer(id, tag)
	}
}

func (n *testNode) OnSynced(name string, upTo uint64, err error) {
	if n.onSynced != nil {
		n.onSynced(name, upTo, err)
	}
}

// startNode starts a runtime listening on loopback around n and stops it when the test ends.
func startNode(t testing.TB, cfg Config, n *testNode) *Runtime {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := New(cfg, nil, func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// logBuffer collects a runtime's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rawClient is a plain TCP remoting client, independent of the runtime under test.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
}

// write buffers one request; flush sends everything buffered.
func (c *rawClient) write(cmd *codec.Command) {
	frame, err := codec.Encode(cmd)
	if err != nil {
		c.t.Errorf("encode: %v", err)
		return
	}
	c.bw.Write(frame)
}

func (c *rawClient) flush() error { return c.bw.Flush() }

func (c *rawClient) writeRaw(b []byte) error {
	_, err := c.nc.Write(b)
	return err
}

func (c *rawClient) read() (*codec.Command, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := codec.ReadFrame(c.br, codec.DefaultMaxFrameBytes)
	if err != nil {
		return nil, err
	}
	return codec.Decode(frame)
}

// roundTrip sends one request and expects its echo.
func (c *rawClient) roundTrip(opaque int32, body string) {
	c.t.Helper()
	req := codec.NewRequest(1, nil, []byte(body))
	req.Opaque = opaque
	c.write(req)
	if err := c.flush(); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	resp, err := c.read()
	if err != nil {
		c.t.Fatalf("read response to %d: %v", opaque, err)
	}
	if resp.Opaque != opaque || string(resp.Body) != body || !resp.IsResponse() {
		c.t.Fatalf("response = opaque %d body %.40q (%d bytes) flag %d, want opaque %d body %q", resp.Opaque, resp.Body, len(resp.Body), resp.Flag, opaque, body)
	}
}

// checkNoGoroutineLeak fails if, after a grace period, more goroutines run than before.
func checkNoGoroutineLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := goruntime.NumGoroutine()
		if now <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:goruntime.Stack(buf, true)]
			t.Fatalf("%d goroutines before, %d after Stop:\n%s", before, now, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
