package runtime

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/node"
)

const (
	codeSlow  int16 = 100 // answered by the node only when told
	codeWrite int16 = 101 // refused while draining
	codePark  int16 = 102 // parked: answered by the node only when told, does not hold the drain
)

var testDrain = DrainPolicy{
	Refuse: func(c int16) bool { return c == codeWrite },
	Parks:  func(c int16) bool { return c == codePark },
	Code:   codec.ServiceNotAvailable,
	Remark: "shutting down",
}

// heldNode answers codeSlow and codePark requests only when release is posted, others at once.
type heldNode struct {
	testNode
	held []held
	got  atomic.Int32 // requests delivered
}

type held struct {
	c   node.ConnID
	req *codec.Command
}

func newHeldNode() *heldNode {
	n := &heldNode{}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		n.got.Add(1)
		if cmd.Code == codeSlow || cmd.Code == codePark {
			n.held = append(n.held, held{c, cmd})
			return
		}
		n.env.Send(c, codec.NewResponse(cmd, codec.Success, ""))
	}
	return n
}

// release answers the held requests of the given code (on the loop).
func (n *heldNode) release(code int16) {
	keep := n.held[:0]
	for _, h := range n.held {
		if h.req.Code == code {
			n.env.Send(h.c, codec.NewResponse(h.req, codec.Success, "node"))
		} else {
			keep = append(keep, h)
		}
	}
	n.held = keep
}

func send(t *testing.T, c *rawClient, code int16, opaque int32) {
	t.Helper()
	req := codec.NewRequest(code, nil, nil)
	req.Opaque = opaque
	c.write(req)
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
}

// Shutdown waits for an in-flight request, refuses new writes with the policy's answer while
// it waits, answers a parked request itself (and drops the node's later answer to it), stops
// accepting, and returns once the slow request was answered.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	n := newHeldNode()
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Drain: testDrain}, &n.testNode)
	c := dialRaw(t, r.Addr().String())
	send(t, c, codeSlow, 1)
	send(t, c, codePark, 2)
	waitFor(t, "both requests delivered", func() bool { return n.got.Load() == 2 })

	shut := make(chan error, 1)
	go func() { shut <- r.Shutdown(5 * time.Second) }()
	waitFor(t, "listener closed", func() bool {
		nc, err := net.DialTimeout("tcp", r.Addr().String(), 100*time.Millisecond)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	send(t, c, codeWrite, 3)
	resp, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Opaque != 3 || resp.Code != codec.ServiceNotAvailable || resp.Remark != "shutting down" {
		t.Fatalf("write while draining answered %+v, want SERVICE_NOT_AVAILABLE", resp)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := r.Do(func() { n.release(codeSlow) }); err != nil {
		t.Fatal(err)
	}
	got := map[int32]*codec.Command{}
	for len(got) < 2 {
		resp, err := c.read()
		if err != nil {
			t.Fatalf("read: %v (have %v)", err, got)
		}
		if _, dup := got[resp.Opaque]; dup {
			t.Fatalf("two answers to request %d", resp.Opaque)
		}
		got[resp.Opaque] = resp
	}
	if got[1].Code != codec.Success || got[1].Remark != "node" {
		t.Errorf("slow request answered %+v, want the node's answer", got[1])
	}
	if got[2].Code != codec.ServiceNotAvailable {
		t.Errorf("parked request answered %+v, want the runtime's SERVICE_NOT_AVAILABLE", got[2])
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := c.read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after Shutdown the connection should be closed, read: %v", err)
	}
}

// A request never answered stops the node at the deadline, reported as ErrDrainTimeout.
func TestShutdownTimesOut(t *testing.T) {
	n := newHeldNode()
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Drain: testDrain}, &n.testNode)
	c := dialRaw(t, r.Addr().String())
	send(t, c, codeSlow, 1)
	waitFor(t, "request delivered", func() bool { return n.got.Load() == 1 })
	start := time.Now()
	err := r.Shutdown(200 * time.Millisecond)
	if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), ": 1") {
		t.Fatalf("Shutdown = %v, want ErrDrainTimeout with 1 request", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Shutdown took %v with a 200ms timeout", el)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("node still running after Shutdown")
	}
}

// A connection closed by the client takes its unanswered requests with it: nothing holds the
// drain up.
func TestShutdownForgetsClosedConnections(t *testing.T) {
	n := newHeldNode()
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Drain: testDrain}, &n.testNode)
	c := dialRaw(t, r.Addr().String())
	send(t, c, codeSlow, 1)
	waitFor(t, "request delivered", func() bool { return n.got.Load() == 1 })
	c.nc.Close()
	var inflight int
	waitFor(t, "request forgotten", func() bool {
		_ = r.Do(func() { inflight = r.drain.inflight })
		return inflight == 0
	})
	if err := r.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// Shutdown makes what the node appended durable even when the node never asked for a sync:
// the production disk holds appends in memory until one.
func TestShutdownFlushesTheDisk(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	disk, err := diskfile.Open(dir, diskfile.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{}
	n.onStart = func() {
		l, err := n.env.Disk().OpenLog("q")
		if err != nil {
			panic(err)
		}
		for i := 0; i < 10; i++ {
			if _, err := l.Append([]byte{byte(i)}); err != nil {
				panic(err)
			}
		}
	}
	r := New(Config{Logger: quiet}, disk, func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(time.Second); err != nil {
		t.Fatal(err)
	}
	// A second disk over the same directory sees what the first wrote (the first's log is
	// still open in it: nothing closed it, as nothing closes a broker's store at exit).
	again, err := diskfile.Open(dir, diskfile.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l, err := again.OpenLog("q")
	if err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 10 {
		t.Fatalf("after Shutdown the log holds %d entries, want 10", l.LastIndex())
	}
}

// Dial failures to one address are logged once at WARN, then only at doublings of the count;
// a success after failures is logged once.
func TestDialFailuresAreLoggedSparingly(t *testing.T) {
	var logs logBuffer
	var d dialFailures
	for i := 0; i < 20; i++ {
		d.failed(logs.logger(), "10.0.0.1:9878", errors.New("connection refused"))
	}
	d.succeeded(logs.logger(), "10.0.0.1:9878")
	d.succeeded(logs.logger(), "10.0.0.1:9878")
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 5 { // 1, 2, 4, 8, 16
		t.Errorf("%d WARN lines for 20 failures, want 5:\n%s", n, out)
	}
	if n := strings.Count(out, "connected after failures"); n != 1 || !strings.Contains(out, "failures=20") {
		t.Errorf("recovery logged %d times, want once with failures=20:\n%s", n, out)
	}
}
