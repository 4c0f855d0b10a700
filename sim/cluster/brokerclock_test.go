package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/sim"
)

// idle is a node that does nothing: the clock test needs a node, not a broker.
type idle struct{}

func (idle) Start()                              {}
func (idle) OnAccepted(node.ConnID, string)      {}
func (idle) OnDialed(node.ConnID)                {}
func (idle) OnConnClosed(node.ConnID)            {}
func (idle) OnFrame(node.ConnID, *codec.Command) {}
func (idle) OnTimer(node.TimerID, any)           {}
func (idle) OnSynced(string, uint64, error)      {}

// The pieces the history reads store times back with are the clock the simulator gives the
// broker: for the single topology's own plans (skews and jumps, overlapping ones too, and
// whatever HealAll cut short), sampled every few milliseconds, the offset a piece gives is the
// node's, and outside every piece the clock reads virtual time.
func TestBrokerClockIsTheSimulatorsClock(t *testing.T) {
	const d = time.Minute
	tested := 0
	for seed := uint64(1); seed <= 40; seed++ {
		var plan []faults.Fault
		for _, f := range singlePlan(seed, nil, d) {
			if slices.Contains(faults.ClockKinds, f.Kind) {
				plan = append(plan, f)
			}
		}
		if len(plan) == 0 {
			continue
		}
		tested++
		w := sim.NewWorld(seed, sim.NetConfig{MinLatency: time.Millisecond, MaxLatency: time.Millisecond},
			sim.DiskConfig{MinFsync: time.Millisecond, MaxFsync: time.Millisecond}, nil)
		n := w.AddNode(BrokerAddr, func(node.Env) node.Handler { return idle{} })
		if err := (&faults.Injector{World: w}).Schedule(plan); err != nil {
			t.Fatal(err)
		}
		healedAt := d / 2 // cuts some faults short
		pieces := brokerClock(plan, healedAt)
		for at := time.Duration(0); at < d; at += 7*time.Millisecond + 3*time.Microsecond {
			if at >= healedAt && at-7*time.Millisecond < healedAt {
				w.RunUntil(healedAt)
				w.HealAll()
			}
			w.RunUntil(at)
			want := n.ClockOffset()
			got, in := time.Duration(0), false
			for _, p := range pieces {
				if int64(at) > p.From && int64(at) < p.To { // boundaries belong to both sides
					in = true
					got = time.Duration(p.OffsetFrom + int64(float64(p.OffsetTo-p.OffsetFrom)*float64(int64(at)-p.From)/float64(p.To-p.From)))
				}
			}
			if diff := (got - want).Abs(); diff > time.Microsecond {
				t.Fatalf("seed %d at %v: the pieces (in one: %v) give offset %v, the node's clock is off by %v; plan %+v, pieces %+v",
					seed, at, in, got, want, plan, pieces)
			}
		}
	}
	if tested < 5 {
		t.Fatalf("only %d of 40 plans had clock faults", tested)
	}
}
