package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// The broker hangs for 32 s with its connection to the name server open: only the expiry
// can take it out of routes. The name server drops it, the probes see it gone, and once it
// resumes it is routed again; with the expiry scan's planted bug the probes catch the name
// server routing the hung broker.
func TestHungBrokerLeavesRoutes(t *testing.T) {
	cfg := DefaultConfig(3)
	cfg.Duration = 50 * time.Second
	cfg.ExplicitPlan = true
	cfg.Plan = []faults.Fault{{At: 8 * time.Second, Kind: faults.Pause, Node: BrokerAddr, Duration: 32 * time.Second}}
	rep := runSeed(t, cfg)
	if len(rep.Violations) > 0 {
		t.Fatalf("%s\n%v", rep.Summary(), rep.Violations)
	}
	if rep.RouteExpiries == 0 || rep.RouteProbes < 40 {
		t.Fatalf("the probes did not see the hung broker leave the routes: %s", rep.Summary())
	}

	cfg.Plant = "never-expire-brokers"
	rep = runSeed(t, cfg)
	if len(rep.Violations) == 0 || rep.Violations[0].Kind != "dead broker still routed" {
		t.Fatalf("a name server that never expires brokers went unnoticed: %s %v", rep.Summary(), rep.Violations)
	}
	t.Log(rep.Violations[0].Detail)
}

// The long pause never meets a crash or a reset of its target, and ends 5 s before the run.
func TestLongPauseAvoidsCrashesAndResets(t *testing.T) {
	const d = 120 * time.Second
	strikes := func(f faults.Fault, target string) bool { return f.Node == target }
	drawn := 0
	for seed := uint64(1); seed <= 200; seed++ {
		plan := []faults.Fault{
			{At: 12 * time.Second, Kind: faults.Crash, Node: BrokerAddr, Duration: 2 * time.Second},
			{At: 60 * time.Second, Kind: faults.Reset, Node: BrokerAddr},
			{At: 14 * time.Second, Kind: faults.Crash, Node: "elsewhere", Duration: 40 * time.Second},
		}
		for _, p := range longPause(seed, []string{BrokerAddr}, plan, d, strikes) {
			drawn++
			if p.Kind != faults.Pause || p.Duration <= simBrokerExpiry+simScanInterval || p.At < 3*time.Second || p.At+p.Duration > d-5*time.Second {
				t.Fatalf("seed %d: %v", seed, p)
			}
			for _, f := range plan[:2] {
				if f.At+f.Duration >= p.At && f.At <= p.At+p.Duration {
					t.Fatalf("seed %d: %v meets %v", seed, p, f)
				}
			}
			if !strings.Contains(p.String(), BrokerAddr) {
				t.Fatalf("seed %d: %v", seed, p)
			}
		}
	}
	if drawn < 60 {
		t.Fatalf("only %d long pauses in 200 seeds", drawn)
	}
}
