package sim

import (
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// eagerDialer dials at start and sends a request at once, before its connection is up, as
// the client does; it logs the order in which its connection events arrive.
type eagerDialer struct {
	env    node.Env
	conn   node.ConnID
	events []string
}

func (d *eagerDialer) Start() {
	d.conn = d.env.Dial("b:1")
	req := codec.NewRequest(10, nil, nil)
	req.Opaque = 1
	d.env.Send(d.conn, req)
}
func (d *eagerDialer) OnAccepted(node.ConnID, string)      {}
func (d *eagerDialer) OnDialed(node.ConnID)                { d.events = append(d.events, "dialed") }
func (d *eagerDialer) OnConnClosed(node.ConnID)            { d.events = append(d.events, "closed") }
func (d *eagerDialer) OnFrame(node.ConnID, *codec.Command) {}
func (d *eagerDialer) OnTimer(node.TimerID, any)           {}
func (d *eagerDialer) OnSynced(string, uint64, error)      {}

// eagerPair is a world with a fixed 1 ms latency where a ("a:1", an eagerDialer) dials b
// ("b:1", a probe that logs what it receives): b accepts at 1 ms, a's SYN-ACK is at 2 ms.
func eagerPair() (*World, *eagerDialer, *probe) {
	w := NewWorld(1, NetConfig{MinLatency: time.Millisecond, MaxLatency: time.Millisecond}, DiskConfig{}, nil)
	a, b := &eagerDialer{}, &probe{}
	w.AddNode("b:1", func(env node.Env) node.Handler { b.env = env; return b })
	w.AddNode("a:1", func(env node.Env) node.Handler { a.env = env; return a })
	return w, a, b
}

// node.Handler.OnDialed promises that a connection that closes without it delivered nothing,
// so the client reports the calls lost with it as definite failures (ErrConnRefused) and
// retries them. Here a, still connecting, sends again across a partition that has just cut
// it from b (the send resets the connection before the SYN-ACK). Seed 24 of `sluice sim` hit
// this: a delayed send was delivered by the first frame, the producer was told it failed
// definitely, and the message surfaced as never sent (and, delivered when due, at two offsets).
func TestConnectionResetWhileConnectingDeliveredNothing(t *testing.T) {
	w, a, b := eagerPair()
	w.At(1500*time.Microsecond, func() {
		w.Block("a:1", "b:1")
		w.Block("b:1", "a:1")
		w.Node("a:1").Deliver(func() {
			req := codec.NewRequest(10, nil, nil)
			req.Opaque = 2
			a.env.Send(a.conn, req)
		})
	})
	w.RunUntil(time.Second)
	closedBeforeDialed := len(a.events) > 0 && a.events[0] == "closed"
	if len(b.got) > 0 && closedBeforeDialed {
		t.Fatalf("b received %v, yet a saw %v: a connection that closed without OnDialed delivered frames", opaques(b.got), a.events)
	}
	if len(a.events) == 0 || a.events[len(a.events)-1] != "closed" {
		t.Fatalf("a saw %v; want its connection closed", a.events)
	}
}

// Once the handshake completes the frames a queued while connecting leave, so a must hear
// OnDialed before OnConnClosed even if the connection is reset while a is paused, before it
// could run its OnDialed.
func TestResetWhilePausedAfterHandshakeStillDeliversOnDialed(t *testing.T) {
	w, a, b := eagerPair()
	w.At(1500*time.Microsecond, func() { w.Node("a:1").Pause(20 * time.Millisecond) })
	w.At(10*time.Millisecond, func() { w.Node("a:1").ResetConnections() })
	w.RunUntil(time.Second)
	if len(b.got) == 0 {
		t.Fatalf("b received nothing; want frame 1, sent when the handshake completed")
	}
	if len(a.events) != 2 || a.events[0] != "dialed" || a.events[1] != "closed" {
		t.Fatalf("b received %v, a saw %v; want dialed then closed", opaques(b.got), a.events)
	}
}

// Frames sent while connecting leave with the SYN-ACK, in order before later ones, and reach
// the peer only after it accepted.
func TestFramesSentWhileConnectingLeaveAtTheHandshake(t *testing.T) {
	w, a, b := eagerPair()
	w.At(2*time.Millisecond, func() {
		w.Node("a:1").Deliver(func() {
			req := codec.NewRequest(10, nil, nil)
			req.Opaque = 2
			a.env.Send(a.conn, req)
		})
	})
	w.RunUntil(time.Second)
	if len(a.events) != 1 || a.events[0] != "dialed" {
		t.Fatalf("a saw %v; want dialed", a.events)
	}
	if len(b.got) != 2 || b.got[0].v != 1 || b.got[1].v != 2 || b.got[0].at != 3*time.Millisecond {
		t.Fatalf("b got %v; want frames 1 then 2, the first at 3ms (sent at the 2ms SYN-ACK)", b.got)
	}
}
