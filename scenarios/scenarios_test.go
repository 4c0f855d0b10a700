package scenarios

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicemq/sluice/sim/cluster"
)

func TestScenariosPass(t *testing.T) {
	if len(All()) == 0 {
		t.Fatal("no scenarios registered")
	}
	for _, s := range All() {
		t.Run(s.Name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				cfg := s.Config(seed)
				cfg.Duration = 30 * time.Second
				cfg.VizDir = t.TempDir()
				rep, err := cluster.Run(cfg, time.Now)
				if err != nil {
					t.Fatal(err)
				}
				total := 0
				for _, n := range rep.Faults {
					total += n
				}
				if total == 0 {
					t.Errorf("seed %d injected no fault: %s", seed, rep.Summary())
				}
				if len(rep.Violations) > 0 {
					t.Errorf("%s\n%v", rep.Summary(), rep.Violations)
				}
			}
		})
	}
}

// Every seed that once failed on main passes now.
func TestRegressionsPass(t *testing.T) {
	for _, g := range Regressions {
		t.Run(fmt.Sprintf("%s-seed-%d", g.Topology, g.Seed), func(t *testing.T) {
			cfg := g.Config()
			cfg.VizDir = t.TempDir()
			rep, err := cluster.Run(cfg, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range rep.Violations {
				t.Errorf("%s: %s", v.Kind, v.Detail)
			}
			if t.Failed() {
				t.Logf("replay: %s (once: %s)", g.Command(), g.Bug)
			}
		})
	}
}
