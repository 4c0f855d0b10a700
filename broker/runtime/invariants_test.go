package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// checkedNode is a testNode that checks its invariants: broken once it has seen a frame of
// code 99. Its fields are the loop's.
type checkedNode struct {
	testNode
	broken bool
	checks int
}

func (n *checkedNode) CheckInvariants() error {
	n.checks++
	if n.broken {
		return errors.New("offset table points past the log")
	}
	return nil
}

// startChecked starts a runtime around n on a loopback port and dials it.
func startChecked(t *testing.T, cfg Config, n *checkedNode) (*Runtime, *rawClient) {
	t.Helper()
	cfg.ListenAddr = "127.0.0.1:0"
	r := New(cfg, nil, func(env node.Env) (node.Handler, error) { n.env = env; return n, nil })
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(r.Stop)
	return r, dialRaw(t, r.Addr().String())
}

// The runtime checks a handler's invariants on one event in InvariantCheckEvery; a broken one
// is logged at ERROR and counted, and the node keeps serving.
func TestSampledInvariantChecksReportWithoutStopping(t *testing.T) {
	logs := &logBuffer{}
	n := &checkedNode{}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		if cmd.Code == 99 {
			n.broken = true
		}
		n.env.Send(c, codec.NewResponse(cmd, codec.Success, ""))
	}
	r, c := startChecked(t, Config{Logger: logs.logger(), InvariantCheckEvery: 4}, n)
	for i := int32(1); i <= 7; i++ {
		c.roundTrip(i, "")
	}
	var checks int
	var events uint64
	if err := r.Do(func() { checks, events = n.checks, r.events }); err != nil {
		t.Fatal(err)
	}
	// accept and 7 frames; this Do is counted once it has run.
	if events != 8 || checks != 2 || r.InvariantViolations() != 0 {
		t.Fatalf("after %d events: %d checks, %d violations; want 8 events, 2 checks (one in 4), 0 violations",
			events, checks, r.InvariantViolations())
	}
	req := codec.NewRequest(99, nil, nil)
	req.Opaque = 8
	c.write(req)
	c.flush()
	if _, err := c.read(); err != nil {
		t.Fatal(err)
	}
	for i := int32(9); i <= 16; i++ {
		c.roundTrip(i, "") // still served
	}
	waitFor(t, "a violation counted", func() bool { return r.InvariantViolations() >= 2 })
	select {
	case <-r.Done():
		t.Fatalf("a broken invariant stopped the node: %v", r.Err())
	default:
	}
	l := logs.String()
	if !containsAll(l, "level=ERROR", "node invariant broken", "offset table points past the log") {
		t.Errorf("log lacks the broken invariant:\n%s", l)
	}
	if k := strings.Count(l, "node invariant broken"); k != 1 {
		t.Errorf("logged the broken invariant %d times within the rate limit, want 1:\n%s", k, l)
	}
}

// A negative InvariantCheckEvery turns the checks off.
func TestInvariantChecksCanBeTurnedOff(t *testing.T) {
	n := &checkedNode{broken: true}
	r, c := startChecked(t, Config{InvariantCheckEvery: -1, Logger: (&logBuffer{}).logger()}, n)
	for i := int32(1); i <= 10; i++ {
		c.roundTrip(i, "")
	}
	var checks int
	if err := r.Do(func() { checks = n.checks }); err != nil {
		t.Fatal(err)
	}
	if checks != 0 || r.InvariantViolations() != 0 {
		t.Fatalf("checks off, yet %d checks and %d violations", checks, r.InvariantViolations())
	}
}
