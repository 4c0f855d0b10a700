package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/node"
)

// Many clients pipeline requests at an echo node; each gets every response, in order.
func TestEchoManyClientsInOrder(t *testing.T) {
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0"}, &testNode{})
	const clients, requests = 32, 500
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dialRaw(t, r.Addr().String())
			go func() {
				for j := range requests {
					req := codec.NewRequest(1, map[string]string{"client": fmt.Sprint(i)}, fmt.Appendf(nil, "c%d-r%d", i, j))
					req.Opaque = int32(j)
					c.write(req)
					if j%50 == 49 {
						if err := c.flush(); err != nil {
							t.Errorf("client %d: write: %v", i, err)
							return
						}
					}
				}
				c.flush()
			}()
			for j := range requests {
				resp, err := c.read()
				if err != nil {
					t.Errorf("client %d: read response %d: %v", i, j, err)
					return
				}
				if want := fmt.Sprintf("c%d-r%d", i, j); resp.Opaque != int32(j) || string(resp.Body) != want {
					t.Errorf("client %d: response %d = opaque %d body %q, want opaque %d body %q", i, j, resp.Opaque, resp.Body, j, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// handler.Start runs first on the loop, before any event, even one posted before Start.
func TestStartRunsBeforeEvents(t *testing.T) {
	var order []string
	n := &testNode{onStart: func() { order = append(order, "start") }}
	r := New(Config{Logger: slog.New(slog.DiscardHandler)}, nil, func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	r.Post(func() { order = append(order, "post") })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if r.Addr() != nil {
		t.Errorf("client-only node has address %v", r.Addr())
	}
	if err := r.Do(func() { order = append(order, "do") }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "start,post,do" {
		t.Errorf("order = %s, want start,post,do", got)
	}
}

// Timers fire in deadline order with their tags; cancelled ones never fire, even when
// time.AfterFunc had already fired by the time CancelTimer ran.
func TestTimersFireAndCancelledNeverFire(t *testing.T) {
	var mu sync.Mutex
	var fired []string
	n := &testNode{onTimer: func(id node.TimerID, tag any) {
		mu.Lock()
		defer mu.Unlock()
		fired = append(fired, fmt.Sprint(tag))
	}}
	r := startNode(t, Config{}, n)
	err := r.Do(func() {
		n.env.SetTimer(30*time.Millisecond, "b")
		n.env.SetTimer(10*time.Millisecond, "a")
		n.env.CancelTimer(n.env.SetTimer(20*time.Millisecond, "cancelled"))
		for range 1000 {
			id := n.env.SetTimer(0, "cancelled-at-once")
			time.Sleep(time.Microsecond) // let some AfterFuncs fire before the cancel
			n.env.CancelTimer(id)
		}
		n.env.CancelTimer(12345) // unknown: a no-op
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "timers a and b", func() bool { mu.Lock(); defer mu.Unlock(); return len(fired) >= 2 })
	time.Sleep(50 * time.Millisecond)
	r.Do(func() {}) // flush queued timer events through the loop
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(fired, ","); got != "a,b" {
		t.Errorf("fired = %s, want a,b", got)
	}
}

// A garbage frame closes only the connection that sent it, with a logged reason; the node
// hears OnConnClosed for it and keeps serving everyone else.
func TestBadFrameClosesOnlyThatConnection(t *testing.T) {
	lengthWord := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	frame := func(typ byte, hdr, body string) []byte {
		b := lengthWord(uint32(4 + len(hdr) + len(body)))
		b = binary.BigEndian.AppendUint32(b, uint32(typ)<<24|uint32(len(hdr)))
		return append(append(b, hdr...), body...)
	}
	cases := []struct {
		name  string
		bytes []byte
	}{
		{"length 0xFFFFFFFF", lengthWord(0xFFFFFFFF)},
		{"length over the limit", lengthWord(1<<20 + 1)},
		{"length shorter than the header word", lengthWord(2)},
		{"bad json header", frame(codec.SerializeJSON, `{"code":`, "")},
		{"header longer than frame", append(lengthWord(8), 0, 0, 0, 100, 'x', 'x', 'x', 'x')},
		{"unknown serialize type", frame(7, `{}`, "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			var mu sync.Mutex
			remotes := map[node.ConnID]string{}
			var closed []string
			n := &testNode{
				onAccepted: func(c node.ConnID, remote string) { mu.Lock(); remotes[c] = remote; mu.Unlock() },
				onClosed:   func(c node.ConnID) { mu.Lock(); closed = append(closed, remotes[c]); mu.Unlock() },
			}
			n.onFrame = nil
			r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Logger: logs.logger(), MaxFrameBytes: 1 << 20}, n)
			good := dialRaw(t, r.Addr().String())
			good.roundTrip(1, "before")
			bad := dialRaw(t, r.Addr().String())
			badAddr := bad.nc.LocalAddr().String()
			if err := bad.writeRaw(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if _, err := bad.read(); !errors.Is(err, io.EOF) && !isConnReset(err) {
				t.Fatalf("bad client read: err = %v, want the connection closed", err)
			}
			good.roundTrip(2, "after")
			waitFor(t, "OnConnClosed for the bad connection", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(closed) == 1
			})
			mu.Lock()
			if closed[0] != badAddr {
				t.Errorf("closed %v, want only %s", closed, badAddr)
			}
			mu.Unlock()
			if l := logs.String(); !containsAll(l, "level=WARN", "bad frame", badAddr) {
				t.Errorf("log lacks a warning naming %s:\n%s", badAddr, l)
			}
			dialRaw(t, r.Addr().String()).roundTrip(3, "new client")
		})
	}
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// A peer closing its connection is reported exactly once.
func TestPeerCloseReportedOnce(t *testing.T) {
	var mu sync.Mutex
	closes := map[node.ConnID]int{}
	n := &testNode{onClosed: func(c node.ConnID) { mu.Lock(); closes[c]++; mu.Unlock() }}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0"}, n)
	for i := range 20 {
		c := dialRaw(t, r.Addr().String())
		c.roundTrip(int32(i), "x")
		c.nc.Close()
	}
	waitFor(t, "20 closes", func() bool { mu.Lock(); defer mu.Unlock(); return len(closes) == 20 })
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for c, k := range closes {
		if k != 1 {
			t.Errorf("conn %d: OnConnClosed %d times", c, k)
		}
	}
}

// Dialling a port nobody listens on ends in OnConnClosed for the dialled connection, and
// frames sent to it meanwhile are dropped quietly.
func TestDialClosedPortDeliversConnClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	closed := make(chan node.ConnID, 1)
	dialed := make(chan node.ConnID, 1)
	n := &testNode{onClosed: func(c node.ConnID) { closed <- c }, onDialed: func(c node.ConnID) { dialed <- c }}
	r := startNode(t, Config{}, n)
	var id node.ConnID
	r.Do(func() {
		id = n.env.Dial(addr)
		n.env.Send(id, codec.NewRequest(1, nil, nil))
	})
	select {
	case got := <-closed:
		if got != id {
			t.Errorf("OnConnClosed(%d), want %d", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnConnClosed after a failed dial")
	}
	select {
	case c := <-dialed:
		t.Fatalf("OnDialed(%d) for a connection that never came up", c)
	default:
	}
	r.Do(func() { n.env.Send(id, codec.NewRequest(1, nil, nil)) }) // closed: dropped
}

// A dial that connects delivers OnDialed before any frame from the peer.
func TestDialedComesBeforeFrames(t *testing.T) {
	events := make(chan string, 4)
	n := &testNode{
		onDialed: func(node.ConnID) { events <- "dialed" },
		onFrame:  func(node.ConnID, *codec.Command) { events <- "frame" },
	}
	client := startNode(t, Config{}, n)
	echo := &testNode{}
	echo.onAccepted = func(c node.ConnID, _ string) { echo.env.Send(c, codec.NewRequest(2, nil, nil)) }
	greeter := startNode(t, Config{ListenAddr: "127.0.0.1:0"}, echo)
	client.Do(func() { n.env.Dial(greeter.Addr().String()) })
	for _, want := range []string{"dialed", "frame"} {
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("got %s, want %s first", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want)
		}
	}
}

// A client node dials a server node; frames sent before the connection is up are queued and
// delivered in order; closing the connection reaches both nodes.
func TestDialQueuesFramesUntilConnected(t *testing.T) {
	serverClosed := make(chan struct{}, 1)
	server := startNode(t, Config{ListenAddr: "127.0.0.1:0"}, &testNode{onClosed: func(node.ConnID) { serverClosed <- struct{}{} }})

	var mu sync.Mutex
	var got []int32
	clientClosed := make(chan node.ConnID, 1)
	cn := &testNode{
		onFrame:  func(c node.ConnID, cmd *codec.Command) { mu.Lock(); got = append(got, cmd.Opaque); mu.Unlock() },
		onClosed: func(c node.ConnID) { clientClosed <- c },
	}
	client := startNode(t, Config{}, cn)
	const requests = 200
	var id node.ConnID
	client.Do(func() {
		id = cn.env.Dial(server.Addr().String())
		for i := range requests {
			req := codec.NewRequest(1, nil, []byte("hello"))
			req.Opaque = int32(i)
			cn.env.Send(id, req)
		}
	})
	waitFor(t, "every response", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == requests })
	mu.Lock()
	for i, o := range got {
		if o != int32(i) {
			t.Fatalf("response %d has opaque %d", i, o)
		}
	}
	mu.Unlock()
	client.Do(func() { cn.env.Close(id); cn.env.Close(id) })
	select {
	case c := <-clientClosed:
		if c != id {
			t.Errorf("client OnConnClosed(%d), want %d", c, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client never got OnConnClosed")
	}
	select {
	case <-serverClosed:
	case <-time.After(5 * time.Second):
		t.Fatal("server never got OnConnClosed")
	}
}

// Env.Close sends what was queued before closing: a node can answer and hang up.
func TestCloseFlushesQueuedFrames(t *testing.T) {
	n := &testNode{}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		for i := range 100 {
			resp := codec.NewResponse(cmd, codec.SystemError, "go away")
			resp.Opaque = int32(i)
			n.env.Send(c, resp)
		}
		n.env.Close(c)
		n.env.Send(c, codec.NewResponse(cmd, codec.Success, "after close: dropped"))
	}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0"}, n)
	c := dialRaw(t, r.Addr().String())
	c.write(codec.NewRequest(1, nil, nil))
	c.flush()
	for i := range 100 {
		resp, err := c.read()
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if resp.Opaque != int32(i) || resp.Remark != "go away" {
			t.Fatalf("response %d = %+v", i, resp)
		}
	}
	if _, err := c.read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last response: err = %v, want EOF", err)
	}
}

// A connection whose peer does not read is closed once its outbound queue passes the bound.
func TestOutboundLimitClosesConnection(t *testing.T) {
	logs := &logBuffer{}
	closed := make(chan node.ConnID, 1)
	n := &testNode{onClosed: func(c node.ConnID) { closed <- c }}
	body := make([]byte, 64<<10)
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		if cmd.Code != 7 {
			resp := codec.NewResponse(cmd, codec.Success, "")
			resp.Body = cmd.Body
			n.env.Send(c, resp)
			return
		}
		for range 1000 { // 64 MiB at a peer that reads nothing
			resp := codec.NewResponse(cmd, codec.Success, "")
			resp.Body = body
			n.env.Send(c, resp)
		}
	}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Logger: logs.logger(), MaxOutboundBytes: 1 << 20}, n)
	c := dialRaw(t, r.Addr().String())
	c.write(codec.NewRequest(7, nil, nil))
	c.flush()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("connection over its outbound limit was not closed")
	}
	if l := logs.String(); !containsAll(l, "level=WARN", "outbound queue over limit") {
		t.Errorf("log lacks the reason:\n%s", l)
	}
	dialRaw(t, r.Addr().String()).roundTrip(1, "still serving")
}

// A panic in the handler is logged with its stack and stops the node; Stop still returns.
func TestHandlerPanicStopsNode(t *testing.T) {
	logs := &logBuffer{}
	n := &testNode{}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		if cmd.Code == 99 {
			panic("invariant broken: index went backwards")
		}
		n.env.Send(c, codec.NewResponse(cmd, codec.Success, ""))
	}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Logger: logs.logger()}, n)
	addr := r.Addr().String()
	c := dialRaw(t, addr)
	c.roundTrip(1, "")
	c.write(codec.NewRequest(99, nil, nil))
	c.flush()
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("node still running after a handler panic")
	}
	if err := r.Err(); !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "index went backwards") {
		t.Errorf("Err() = %v, want ErrPanic with the value", err)
	}
	if l := logs.String(); !containsAll(l, "level=ERROR", "index went backwards", "runtime_test.go") {
		t.Errorf("log lacks the panic and its stack:\n%s", l)
	}
	if err := r.Do(func() { t.Error("ran on a stopped node") }); !errors.Is(err, ErrStopped) {
		t.Errorf("Do after the panic = %v, want ErrStopped", err)
	}
	if _, err := c.read(); err == nil {
		t.Error("connection still open after the node stopped")
	}
	r.Stop()
	r.Stop()
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Error("listener still accepting after the node stopped")
	}
}

// failingNode is a testNode that reports a lasting failure through Failed, as a controller
// member does after a disk error.
type failingNode struct {
	testNode
	err error
}

func (n *failingNode) Failed() error { return n.err }

// A handler whose Failed reports an error stops the node (so the process can exit and be
// restarted), with the error in Err and an ERROR log line; it answers nothing more.
func TestHandlerFailureStopsNode(t *testing.T) {
	logs := &logBuffer{}
	n := &failingNode{}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		if cmd.Code == 99 {
			n.err = errors.New("append raft log: injected i/o error")
			return
		}
		n.env.Send(c, codec.NewResponse(cmd, codec.Success, ""))
	}
	r := New(Config{ListenAddr: "127.0.0.1:0", Logger: logs.logger()}, nil,
		func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(r.Stop)
	c := dialRaw(t, r.Addr().String())
	c.roundTrip(1, "")
	select {
	case <-r.Done():
		t.Fatal("node stopped while Failed was nil")
	default:
	}
	c.write(codec.NewRequest(99, nil, nil))
	c.flush()
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("node still running after its handler failed")
	}
	if err := r.Err(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "injected i/o error") {
		t.Errorf("Err() = %v, want ErrFailed with the handler's error", err)
	}
	if l := logs.String(); !containsAll(l, "level=ERROR", "injected i/o error") {
		t.Errorf("log lacks the failure:\n%s", l)
	}
	r.Stop()
}

// Stop closes everything (listener, inbound and outbound connections, pending dials, timers)
// and leaves no goroutine behind; it is safe to call twice.
func TestStopIsCleanAndIdempotent(t *testing.T) {
	before := goruntime.NumGoroutine()
	func() {
		server := New(Config{ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}, nil,
			func(env node.Env) (node.Handler, error) { return &testNode{env: env}, nil })
		if err := server.Start(); err != nil {
			t.Fatal(err)
		}
		n := &testNode{}
		client := New(Config{Logger: slog.New(slog.DiscardHandler)}, nil, func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
		if err := client.Start(); err != nil {
			t.Fatal(err)
		}
		var raws []net.Conn
		for i := range 10 {
			c := dialRaw(t, server.Addr().String())
			c.roundTrip(int32(i), "x")
			raws = append(raws, c.nc)
		}
		client.Do(func() {
			for range 5 {
				n.env.Send(n.env.Dial(server.Addr().String()), codec.NewRequest(1, nil, nil))
			}
			n.env.Dial("10.255.255.1:9876") // unroutable: a dial that hangs until cancelled
			n.env.SetTimer(time.Hour, "never")
		})
		server.Stop()
		client.Stop()
		server.Stop()
		client.Stop()
		for _, nc := range raws {
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Read(make([]byte, 1)); err == nil {
				t.Error("inbound connection still open after Stop")
			}
			nc.Close()
		}
		if err := server.Err(); err != nil {
			t.Errorf("Err() after a clean Stop = %v", err)
		}
		if err := server.Start(); !errors.Is(err, ErrStopped) {
			t.Errorf("Start after Stop = %v, want ErrStopped", err)
		}
	}()
	checkNoGoroutineLeak(t, before)
}

// Stop before Start, and Stop of a node that never started, return at once.
func TestStopWithoutStart(t *testing.T) {
	r := New(Config{}, nil, func(env node.Env) (node.Handler, error) { return &testNode{env: env}, nil })
	waiting := make(chan error)
	go func() { waiting <- r.Do(func() { t.Error("ran on a node that never started") }) }()
	time.Sleep(10 * time.Millisecond)
	r.Stop()
	if err := <-waiting; !errors.Is(err, ErrStopped) {
		t.Errorf("Do on a node stopped before starting = %v, want ErrStopped", err)
	}
	r.Stop()
	if err := r.Start(); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop = %v, want ErrStopped", err)
	}
}

func TestListenErrorIsReturned(t *testing.T) {
	r := New(Config{ListenAddr: "256.0.0.1:1"}, nil, func(env node.Env) (node.Handler, error) { return &testNode{env: env}, nil })
	if err := r.Start(); err == nil {
		r.Stop()
		t.Fatal("Start on a bad address succeeded")
	}
	r.Stop()
}

// fakeLog is a node.Log that counts syncs; only Name and Sync are used by the runtime.
type fakeLog struct {
	node.Log
	name    string
	mu      sync.Mutex
	syncs   int
	syncErr error
}

func (l *fakeLog) Name() string { return l.name }

func (l *fakeLog) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.syncs++
	return l.syncErr
}

// Sync completes through OnSynced with the log's name, the index asked for and any error.
func TestSyncDeliversOnSynced(t *testing.T) {
	type synced struct {
		name string
		upTo uint64
		err  error
	}
	got := make(chan synced, 100)
	n := &testNode{onSynced: func(name string, upTo uint64, err error) { got <- synced{name, upTo, err} }}
	r := startNode(t, Config{}, n)
	ok := &fakeLog{name: "commitlog"}
	bad := &fakeLog{name: "cq/0", syncErr: node.ErrIO}
	r.Do(func() {
		for i := uint64(1); i <= 10; i++ {
			n.env.Sync(ok, i)
		}
		n.env.Sync(bad, 7)
	})
	var last uint64
	for range 10 {
		s := <-got
		if s.name == "cq/0" {
			if !errors.Is(s.err, node.ErrIO) || s.upTo != 7 {
				t.Errorf("failed sync reported as %+v", s)
			}
			s = <-got
		}
		if s.name != "commitlog" || s.err != nil || s.upTo <= last {
			t.Errorf("OnSynced(%q, %d, %v) after %d", s.name, s.upTo, s.err, last)
		}
		last = s.upTo
	}
	if last != 10 {
		t.Errorf("last synced index %d, want 10", last)
	}
	ok.mu.Lock()
	defer ok.mu.Unlock()
	if ok.syncs < 1 || ok.syncs > 10 {
		t.Errorf("%d fsyncs for 10 requests", ok.syncs)
	}
}

// A node appends to a real diskfile log and asks for a sync: OnSynced covers every append and
// Env.Disk is the disk passed to New.
func TestSyncOnRealDisk(t *testing.T) {
	disk, err := diskfile.Open(t.TempDir(), diskfile.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	synced := make(chan uint64, 100)
	n := &testNode{onSynced: func(name string, upTo uint64, err error) {
		if name != "commitlog" || err != nil {
			t.Errorf("OnSynced(%q, %d, %v)", name, upTo, err)
		}
		synced <- upTo
	}}
	r := New(Config{Logger: slog.New(slog.DiscardHandler)}, disk, func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	var l node.Log
	r.Do(func() {
		if n.env.Disk() != node.Disk(disk) {
			t.Error("Env.Disk is not the disk passed to New")
		}
		if l, err = n.env.Disk().OpenLog("commitlog"); err != nil {
			return
		}
		for i := range 100 {
			idx, err := l.Append(fmt.Appendf(nil, "entry %d", i))
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			n.env.Sync(l, idx)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for want := uint64(1); want <= 100; want++ {
		select {
		case got := <-synced:
			if got != want {
				t.Fatalf("OnSynced up to %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no OnSynced for %d", want)
		}
	}
}

// Env.Rand is the configured source; Env.Disk the disk passed to New.
func TestEnvRandAndDisk(t *testing.T) {
	n := &testNode{}
	r := startNode(t, Config{}, n)
	var a, b uint64
	r.Do(func() { a, b = n.env.Rand().Uint64(), n.env.Rand().Uint64() })
	if a == b {
		t.Errorf("two draws from Env.Rand were equal: %d", a)
	}
	r.Do(func() {
		if n.env.Disk() != nil {
			t.Errorf("Disk() = %v, want the nil disk passed to New", n.env.Disk())
		}
		if n.env.Now().IsZero() || n.env.Logger() == nil {
			t.Error("Now or Logger unset")
		}
	})
}

// Java clients may send the binary ROCKETMQ header; the runtime decodes it like JSON.
func TestBinaryHeaderRequest(t *testing.T) {
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0"}, &testNode{})
	c := dialRaw(t, r.Addr().String())
	req := &codec.Command{Code: 10, Language: "JAVA", Version: 317, Opaque: 5, ExtFields: map[string]string{"topic": "t"}, Body: []byte("java")}
	if err := c.writeRaw(codec.AppendBinaryFrame(nil, req)); err != nil {
		t.Fatal(err)
	}
	resp, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Opaque != 5 || string(resp.Body) != "java" {
		t.Errorf("response opaque %d body %q", resp.Opaque, resp.Body)
	}
}

// A handler that cannot be built (a broker whose store does not open) makes Start fail with
// its error, and the runtime is stopped.
func TestStartReturnsBuildError(t *testing.T) {
	r := New(Config{ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}, nil,
		func(node.Env) (node.Handler, error) { return nil, errors.New("store is corrupt") })
	err := r.Start()
	if err == nil || !strings.Contains(err.Error(), "store is corrupt") {
		t.Fatalf("Start: %v, want the build error", err)
	}
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("runtime still running after a failed build")
	}
}

// stoppingNode is a testNode that implements node.Stopper.
type stoppingNode struct {
	testNode
	stops atomic.Int32
}

func (n *stoppingNode) OnStop() { n.stops.Add(1) }

// A clean Stop calls OnStop once, as the handler's last call; a node stopped by a handler
// panic gets no OnStop (its state is suspect).
func TestStopCallsOnStop(t *testing.T) {
	n := &stoppingNode{}
	r := New(Config{ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}, nil,
		func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	r.Do(func() {})
	if got := n.stops.Load(); got != 0 {
		t.Fatalf("OnStop called %d times while running", got)
	}
	r.Stop()
	r.Stop()
	if got := n.stops.Load(); got != 1 {
		t.Fatalf("OnStop called %d times by Stop, want 1", got)
	}

	p := &stoppingNode{}
	p.onFrame = func(node.ConnID, *codec.Command) { panic("broken") }
	r = New(Config{ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}, nil,
		func(env node.Env) (node.Handler, error) { p.env = env; return p, nil })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, r.Addr().String())
	c.write(codec.NewRequest(1, nil, nil))
	c.flush()
	<-r.Done()
	r.Stop()
	if got := p.stops.Load(); got != 0 {
		t.Fatalf("OnStop called %d times after a panic", got)
	}
}

// Connections to an extra listen address (a broker's VIP channel) reach the same node, which
// sees them as any other; Stop closes every listener. A taken extra address fails Start with
// ErrExtraListen and leaves nothing listening.
func TestExtraListenAddrs(t *testing.T) {
	var accepted atomic.Int32
	n := &testNode{}
	n.onAccepted = func(node.ConnID, string) { accepted.Add(1) }
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", ExtraListenAddrs: []string{"127.0.0.1:0"}}, n)
	extra := r.ExtraAddrs()
	if len(extra) != 1 || extra[0].String() == r.Addr().String() {
		t.Fatalf("extra addresses %v (main %v)", extra, r.Addr())
	}
	for i, addr := range []string{r.Addr().String(), extra[0].String()} {
		c := dialRaw(t, addr)
		req := codec.NewRequest(1, nil, fmt.Appendf(nil, "via %d", i))
		req.Opaque = int32(i)
		c.write(req)
		c.flush()
		if resp, err := c.read(); err != nil || string(resp.Body) != fmt.Sprintf("via %d", i) {
			t.Fatalf("echo via %s: %v %v", addr, resp, err)
		}
	}
	if got := accepted.Load(); got != 2 {
		t.Errorf("the node accepted %d connections, want 2", got)
	}
	r.Stop()
	if nc, err := net.Dial("tcp", extra[0].String()); err == nil {
		nc.Close()
		t.Error("the extra listener still accepts after Stop")
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	r2 := New(Config{ListenAddr: "127.0.0.1:0", ExtraListenAddrs: []string{taken.Addr().String()}}, nil,
		func(env node.Env) (node.Handler, error) { return &testNode{env: env}, nil })
	if err := r2.Start(); !errors.Is(err, ErrExtraListen) {
		t.Fatalf("Start with a taken extra address: %v, want ErrExtraListen", err)
	}
	if r2.Addr() != nil {
		t.Errorf("after a failed Start the runtime still has address %v", r2.Addr())
	}
	r2.Stop()
}
