package nodetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// recorder is a testing.TB that records Fatalf instead of stopping the test.
type recorder struct {
	testing.TB
	fatals []string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

// counter counts the events it gets and claims never to have had more than limit.
type counter struct {
	env    node.Env
	events int
	limit  int
}

func (c *counter) Start()                              { c.events++; c.env.SetTimer(time.Second, nil) }
func (c *counter) OnAccepted(node.ConnID, string)      { c.events++ }
func (c *counter) OnDialed(node.ConnID)                { c.events++ }
func (c *counter) OnConnClosed(node.ConnID)            { c.events++ }
func (c *counter) OnFrame(node.ConnID, *codec.Command) { c.events++ }
func (c *counter) OnTimer(node.TimerID, any)           { c.events++ }
func (c *counter) OnSynced(string, uint64, error)      { c.events++ }
func (c *counter) CheckInvariants() error {
	if c.events > c.limit {
		return fmt.Errorf("%d events, more than %d", c.events, c.limit)
	}
	return nil
}

// Every event the Env delivers, or a test delivers through it, is followed by an invariant
// check: the first event past the limit fails the test, whichever kind it is.
func TestEnvChecksInvariantsAfterEachEvent(t *testing.T) {
	deliver := map[string]func(e *Env, h *counter){
		"Start":      func(e *Env, h *counter) { e.Start(h) },
		"Accept":     func(e *Env, h *counter) { e.Accept(h, "127.0.0.1:1") },
		"Frame":      func(e *Env, h *counter) { e.Frame(h, 1, codec.NewRequest(10, nil, nil)) },
		"Dialed":     func(e *Env, h *counter) { e.Dialed(h, e.Dial("127.0.0.1:2")) },
		"ConnClosed": func(e *Env, h *counter) { e.ConnClosed(h, 1) },
		"Advance": func(e *Env, h *counter) {
			e.SetTimer(time.Millisecond, nil)
			e.Advance(h, time.Millisecond)
		},
	}
	for name, fn := range deliver {
		t.Run(name, func(t *testing.T) {
			r := &recorder{TB: t}
			e := New(r, nil)
			h := &counter{env: e, limit: 1}
			fn(e, h)
			if len(r.fatals) != 0 {
				t.Fatalf("one event broke nothing, yet: %v", r.fatals)
			}
			fn(e, h)
			if len(r.fatals) != 1 || !strings.Contains(r.fatals[0], "2 events, more than 1") {
				t.Fatalf("the second event broke the invariant; the test was told %q", r.fatals)
			}
		})
	}
}
