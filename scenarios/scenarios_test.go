package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// Each scenario's fixed plan reproduces its incident's shape: the run at seed 1 catches the
// planted bugs the scenario names (each one the mistake behind the incident), and passes
// without them (TestScenariosPass).
func TestScenariosCatchTheirPlants(t *testing.T) {
	for _, s := range All() {
		for _, name := range s.Catches {
			t.Run(s.Name+"/"+name, func(t *testing.T) {
				cfg := s.Config(1)
				if _, err := cluster.LookupPlant(name, cfg.Topology); err != nil {
					t.Fatal(err)
				}
				cfg.Plant = name
				cfg.VizDir = t.TempDir()
				rep, err := cluster.Run(cfg, time.Now)
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Violations) == 0 {
					t.Fatalf("planted bug %s went unnoticed: %s", name, rep.Summary())
				}
				t.Logf("caught: %s: %s", rep.Violations[0].Kind, rep.Violations[0].Detail)
			})
		}
	}
}

// Every seed that once failed on main passes now, and so does its failing run's fault plan.
func TestRegressionsPass(t *testing.T) {
	for _, g := range Regressions {
		t.Run(fmt.Sprintf("%s-seed-%d", g.Topology, g.Seed), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(PlanDir, g.Plan))
			if err != nil {
				t.Fatal(err)
			}
			planned, err := g.PlanConfig(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, run := range []struct {
				name, replay string
				cfg          cluster.Config
			}{{"seed", g.Command(), g.Config()}, {"plan", g.PlanCommand(), planned}} {
				cfg := run.cfg
				cfg.VizDir = t.TempDir()
				rep, err := cluster.Run(cfg, time.Now)
				if err != nil {
					t.Fatalf("%s: %v", run.name, err)
				}
				for _, v := range rep.Violations {
					t.Errorf("%s: %s: %s", run.name, v.Kind, v.Detail)
				}
				if t.Failed() {
					t.Logf("replay: %s (once: %s; fixed by %s)", run.replay, g.Bug, g.FixedBy)
					return
				}
			}
		})
	}
}

// Every regression names its fixing commit and a plan file, and every plan file belongs to a
// regression.
func TestRegressionsAreRecorded(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(PlanDir, "*.plan"))
	if err != nil {
		t.Fatal(err)
	}
	unused := map[string]bool{}
	for _, f := range files {
		unused[filepath.Base(f)] = true
	}
	for _, g := range Regressions {
		if len(g.FixedBy) < 7 || strings.Trim(g.FixedBy, "0123456789abcdef") != "" {
			t.Errorf("seed %d: FixedBy %q is not a commit hash", g.Seed, g.FixedBy)
		}
		if !unused[g.Plan] {
			t.Errorf("seed %d: plan %q is not a file of %s (or two regressions share it)", g.Seed, g.Plan, PlanDir)
		}
		delete(unused, g.Plan)
	}
	for f := range unused {
		t.Errorf("%s/%s belongs to no regression", PlanDir, f)
	}
}
