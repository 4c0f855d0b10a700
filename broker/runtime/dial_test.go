package runtime

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// The tests here hold the runtime to node.Handler.OnDialed's promise, which the client relies
// on to report a send as a definite failure: a dialled connection that closes without OnDialed
// delivered nothing sent on it.

// recordingPeer is a plain TCP listener, independent of the runtime under test, that accepts
// connections and records every byte each one received until it closed.
type recordingPeer struct {
	ln       net.Listener
	received chan []byte // one entry per accepted connection, once the dialer closed it
}

func listenRecording(t *testing.T) *recordingPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingPeer{ln: ln, received: make(chan []byte, 4)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(nc) // to EOF, or a reset: what arrived is what counts
				p.received <- b
			}()
		}
	}()
	return p
}

// next returns what the peer received on its next connection, once that connection closed.
func (p *recordingPeer) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-p.received:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("the peer never saw the connection close")
		return nil
	}
}

// connLog records the connection events a node sees, in order.
type connLog struct {
	mu     sync.Mutex
	events []string
}

func (l *connLog) add(ev string) { l.mu.Lock(); l.events = append(l.events, ev); l.mu.Unlock() }

func (l *connLog) list() []string { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.events) }

// startDialer starts a client-only runtime around n whose dials call control between creating
// the socket and connecting it, so a test can hold a dial in progress.
func startDialer(t *testing.T, n *testNode, control func(network, address string, c syscall.RawConn) error) *Runtime {
	t.Helper()
	r := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil,
		func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	r.dialer.Control = control // set before Start: read only by dial goroutines
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// closeDialing dials peer, sends three requests and closes the connection before the node
// has had OnDialed: while the connect is still in progress, or (afterConnect) once the socket
// is connected but while the dial's event still waits behind the loop. It returns what the peer
// received and the events the node saw.
func closeDialing(t *testing.T, afterConnect bool) (received []byte, events []string) {
	peer := listenRecording(t)
	log := &connLog{}
	n := &testNode{onDialed: func(node.ConnID) { log.add("dialed") }, onClosed: func(node.ConnID) { log.add("closed") }}
	connecting := make(chan struct{}, 1)
	release := make(chan struct{})
	r := startDialer(t, n, func(string, string, syscall.RawConn) error {
		connecting <- struct{}{}
		<-release
		return nil
	})
	var id node.ConnID
	var c *conn
	r.Do(func() {
		id = n.env.Dial(peer.ln.Addr().String())
		for i := range 3 {
			req := codec.NewRequest(1, nil, []byte("must not arrive"))
			req.Opaque = int32(i)
			n.env.Send(id, req)
		}
		c = r.live[id]
	})
	<-connecting // the dial holds in control: the connect has not been attempted
	if !afterConnect {
		r.Do(func() { n.env.Close(id) })
		close(release)
	} else {
		// Queued ahead of the dial's event, so the node runs it first; it holds the loop until
		// the socket is connected and the connection's writer runs, then closes.
		hold, done := make(chan struct{}), make(chan struct{})
		r.Post(func() { <-hold; n.env.Close(id); close(done) })
		close(release)
		waitFor(t, "the connect", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.nc != nil })
		close(hold)
		<-done
	}
	received = peer.next(t)
	// The dial's event was posted before the socket could close: flush the loop past it.
	r.Do(func() {})
	return received, log.list()
}

// Closing a connection while it is still being dialed discards what was sent on it: the peer
// receives nothing, and the node sees OnConnClosed without OnDialed.
func TestCloseWhileDialingSendsNothing(t *testing.T) {
	received, events := closeDialing(t, false)
	if len(received) != 0 {
		t.Errorf("the peer received %d bytes of a connection closed while dialing", len(received))
	}
	if !slices.Equal(events, []string{"closed"}) {
		t.Errorf("node saw %v, want [closed]", events)
	}
}

// Closing a connection after its connect succeeded but before the node handled OnDialed either
// sends nothing or tells the node it was dialed before it closed: never closed without dialed
// after frames left.
func TestCloseBeforeDialedEventKeepsPromise(t *testing.T) {
	received, events := closeDialing(t, true)
	if len(received) > 0 && !slices.Equal(events, []string{"dialed", "closed"}) {
		t.Errorf("the peer received %d bytes, but the node saw %v (closed without dialed promises nothing arrived)", len(received), events)
	}
	if len(events) == 0 || events[len(events)-1] != "closed" || slices.Index(events, "closed") != len(events)-1 {
		t.Errorf("node saw %v, want exactly one closed, last", events)
	}
}

// A node that closes a connection once it has had OnDialed still gets what it sent, in order,
// to the peer: frames held while dialing leave once the node is told the connection is up.
func TestCloseOnDialedFlushesQueuedFrames(t *testing.T) {
	peer := listenRecording(t)
	log := &connLog{}
	n := &testNode{}
	n.onDialed = func(c node.ConnID) { log.add("dialed"); n.env.Close(c) }
	n.onClosed = func(node.ConnID) { log.add("closed") }
	r := startNode(t, Config{}, n)
	const requests = 50
	r.Do(func() {
		id := n.env.Dial(peer.ln.Addr().String())
		for i := range requests {
			req := codec.NewRequest(1, nil, []byte("hello"))
			req.Opaque = int32(i)
			n.env.Send(id, req)
		}
	})
	br := bufio.NewReader(bytes.NewReader(peer.next(t)))
	for i := range requests {
		frame, err := codec.ReadFrame(br, codec.DefaultMaxFrameBytes)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		cmd, err := codec.Decode(frame)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if cmd.Opaque != int32(i) {
			t.Fatalf("frame %d has opaque %d", i, cmd.Opaque)
		}
	}
	if _, err := codec.ReadFrame(br, codec.DefaultMaxFrameBytes); err != io.EOF {
		t.Errorf("after the last frame: err = %v, want EOF", err)
	}
	waitFor(t, "OnConnClosed", func() bool { return len(log.list()) == 2 })
	if events := log.list(); !slices.Equal(events, []string{"dialed", "closed"}) {
		t.Errorf("node saw %v, want [dialed closed]", events)
	}
}
