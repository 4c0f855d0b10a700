package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/sim/cluster"
)

// A run that panicked is no catch: the search counts it and goes on; the first run with a
// violation ends it, with that run's kinds (those the plant's class names first); an error
// that is not a panic ends it as an error.
func TestMutantSearchTakesRuns(t *testing.T) {
	res := mutantResult{plant: cluster.Plant{Class: "a crash loses acknowledged messages (lost acknowledged)"}}
	run := func(i int, rep *cluster.Report, err error) bool {
		return res.take(seedRun{i: i, cfg: cluster.Config{Seed: uint64(i) + 1}, rep: rep, err: err})
	}
	if !run(0, &cluster.Report{}, nil) {
		t.Fatal("a clean run ended the search")
	}
	if !run(1, nil, &runPanic{value: "sim: node broke an invariant"}) {
		t.Fatal("a panic ended the search: a panic is no catch")
	}
	caught := &cluster.Report{Violations: []cluster.Violation{
		{Kind: "liveness", Detail: "no drain"},
		{Kind: "lost acknowledged message", Detail: "m1 is gone"},
		{Kind: "linearizability", Detail: "queue 1"},
		{Kind: "lost acknowledged message", Detail: "m2 is gone"},
	}}
	if run(2, caught, nil) {
		t.Fatal("a run with violations did not end the search")
	}
	if res.caughtAt != 3 || res.seedsRun != 3 || len(res.panics) != 1 || res.panics[0] != 2 ||
		strings.Join(res.kinds, ",") != "lost acknowledged message,liveness,linearizability" || res.detail != "m1 is gone" {
		t.Fatalf("search recorded %+v", res)
	}

	var bad mutantResult
	if bad.take(seedRun{cfg: cluster.Config{Seed: 7}, err: errors.New("no such plant")}) || bad.err == nil || bad.caughtAt != 0 {
		t.Fatalf("a setup error: %+v", bad)
	}
}

// The table has one aligned row per bug, says which went uncaught, and flags a first catch
// that is not the catalogue's CaughtAt.
func TestMutantsTable(t *testing.T) {
	p1 := cluster.Plant{Name: "a-bug", Topology: cluster.SingleBroker, CaughtAt: 3, Class: "class one (kind one)"}
	p2 := cluster.Plant{Name: "another-longer-bug", Topology: cluster.BrokerGroups, CaughtAt: 1, Class: "class two"}
	p3 := cluster.Plant{Name: "c", Topology: cluster.SingleBroker, CaughtAt: 5, Class: "class three"}
	out := mutantsTable([]mutantResult{
		{plant: p1, caughtAt: 3, kinds: []string{"kind one"}, seedsRun: 3},
		{plant: p2, caughtAt: 2, kinds: []string{"kind two", "liveness", "k3", "k4", "k5"}, seedsRun: 2, panics: []uint64{1}},
		{plant: p3, seedsRun: 200},
	}, 1, 200)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("want a headline, a header, 3 rows and a note, got:\n%s", out)
	}
	if !strings.HasPrefix(lines[0], "mutation record: 2 of 3 planted bugs caught") {
		t.Errorf("headline %q", lines[0])
	}
	col := strings.Index(lines[1], "topology")
	for _, l := range lines[2:5] {
		if f := strings.Fields(l[col:]); len(f) == 0 || (f[0] != "single" && f[0] != "groups") {
			t.Errorf("row not aligned under the topology column: %q", l)
		}
	}
	for _, want := range []string{"yes     3 ", "2 (catalogue 1)", "kind two, liveness, k3 +2 more", "NO ", "class three"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(lines[5], "1 first catches differ") {
		t.Errorf("no note on the stale CaughtAt: %q", lines[5])
	}
	// A search from above a bug's CaughtAt cannot find it there: no note.
	if out := mutantsTable([]mutantResult{{plant: p2, caughtAt: 4, kinds: []string{"k"}}}, 4, 10); strings.Contains(out, "catalogue") {
		t.Errorf("flagged a catch of a search from seed 4:\n%s", out)
	}
}

// A real search: a planted bug the catalogue says is caught at its first seed is caught there.
func TestMutantSearchCatchesAPlant(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator")
	}
	p, err := cluster.LookupPlant("rollback-as-commit", cluster.SingleBroker)
	if err != nil {
		t.Fatal(err)
	}
	res := searchMutant(p, mutantsOptions{first: p.CaughtAt, seeds: 1, parallel: 1, vizDir: t.TempDir()}, time.Now)
	if res.err != nil || res.caughtAt != p.CaughtAt || len(res.kinds) == 0 {
		t.Fatalf("search of %s from seed %d: %+v", p.Name, p.CaughtAt, res)
	}
	t.Logf("caught: %v: %s", res.kinds, res.detail)
}
