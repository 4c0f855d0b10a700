package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/node"
)

// checkedProbe is a probe that checks its own state: it claims never to receive more than
// limit frames.
type checkedProbe struct {
	probe
	limit  int
	checks int
}

func (p *checkedProbe) CheckInvariants() error {
	p.checks++
	if len(p.got) > p.limit {
		return fmt.Errorf("received %d frames, more than %d", len(p.got), p.limit)
	}
	return nil
}

// checkedPair is a world of seed 7 in which a sends 5 frames to b, which claims never to
// receive more than limit.
func checkedPair(limit int) (*World, *checkedProbe) {
	w := NewWorld(7, NetConfig{MinLatency: time.Millisecond, MaxLatency: time.Millisecond},
		DiskConfig{MinFsync: time.Millisecond, MaxFsync: time.Millisecond}, nil)
	a := &probe{dial: "b:1", frames: 5, interval: 100 * time.Millisecond}
	b := &checkedProbe{limit: limit}
	w.AddNode("b:1", func(env node.Env) node.Handler { b.env = env; return b })
	w.AddNode("a:1", func(env node.Env) node.Handler { a.env = env; return a })
	return w, b
}

// The world checks a node's invariants after every event delivered to it, and a broken one
// stops the run with the node's address, the seed and the virtual time.
func TestWorldPanicsOnABrokenInvariant(t *testing.T) {
	w, b := checkedPair(3)

	var msg string
	func() {
		defer func() {
			if v := recover(); v != nil {
				msg = fmt.Sprint(v)
			}
		}()
		w.RunUntil(time.Second)
	}()
	if msg == "" {
		t.Fatalf("no panic after b received %d frames (limit %d, %d checks)", len(b.got), b.limit, b.checks)
	}
	for _, want := range []string{"b:1", "seed 7", "received 4 frames, more than 3"} {
		if !strings.Contains(msg, want) {
			t.Errorf("panic %q does not say %q", msg, want)
		}
	}
	// start, accept and three frames were each checked; the fourth frame broke the invariant.
	if b.checks != 6 {
		t.Errorf("b was checked %d times, want 6 (after start, accept and each of 4 frames)", b.checks)
	}
}

// A handler that is not an InvariantChecker runs unchecked, and one whose invariants hold is
// never stopped.
func TestWorldRunsNodesWhoseInvariantsHold(t *testing.T) {
	w, b := checkedPair(5)
	w.RunUntil(time.Second)
	if len(b.got) != 5 || b.checks < 7 {
		t.Fatalf("b got %d frames with %d checks, want 5 frames and a check after each of 7 events", len(b.got), b.checks)
	}
}
