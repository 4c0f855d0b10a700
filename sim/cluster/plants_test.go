package cluster

import "testing"

// Every planted bug of the catalogue is caught at the seed the catalogue names, by a violation
// of a semantic check, and that seed passes without the bug: the violation is the bug's. (make
// mutants measures the first catching seed of each within PLANT_SEEDS seeds.)
func TestPlantedBugsAreCaught(t *testing.T) {
	for _, p := range Plants {
		t.Run(p.Topology.String()+"/"+p.Name, func(t *testing.T) {
			if p.CaughtAt == 0 {
				t.Fatalf("planted bug %s names no seed that catches it", p.Name)
			}
			planted := p.Config(p.CaughtAt)
			cfg := planted
			cfg.Plant = ""
			rep := runSeed(t, planted)
			if len(rep.Violations) == 0 {
				t.Fatalf("planted bug %s went unnoticed at seed %d: %s", p.Name, p.CaughtAt, rep.Summary())
			}
			t.Logf("caught at seed %d: %s: %s", p.CaughtAt, rep.Violations[0].Kind, rep.Violations[0].Detail)
			if clean := runSeed(t, cfg); len(clean.Violations) > 0 {
				t.Fatalf("seed %d fails without the planted bug too (%s: %s): the catch proves nothing",
					p.CaughtAt, clean.Violations[0].Kind, clean.Violations[0].Detail)
			}
		})
	}
}
