package main

// The mutation record of 'sluice sim --mutants': every planted bug of the catalogue
// (cluster.Plants) runs through the swarm, seed after seed in its own default configuration,
// until a semantic check catches it or the seeds run out; a table says, per bug, which check
// caught it and at which seed. A run that panics (a node's broken invariant) is no catch: it
// is counted and the search goes on.

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/sim/cluster"
)

// mutantsOptions are the settings of a mutation run.
type mutantsOptions struct {
	first        uint64 // the first seed of each bug's search
	seeds        int    // seeds per bug at most
	parallel     int
	only         *cluster.Topology // nil: every topology
	vizDir       string
	checkTimeout time.Duration // 0: each topology's default
}

// mutantResult is one planted bug's search.
type mutantResult struct {
	plant cluster.Plant
	// caughtAt is the seed of the first violation (0: none within the seeds run); kinds are
	// that run's violation kinds, those the plant's class names first (classNames), and detail
	// the first violation of kinds[0].
	caughtAt uint64
	kinds    []string
	detail   string
	seedsRun int
	panics   []uint64 // seeds whose run panicked
	panicked string   // the first of those panics
	wall     time.Duration
	err      error // a run that could not be set up
}

// runMutants searches every planted bug of o's topologies in turn, writing a line to w as each
// search ends and the table at the end. It returns the exit code: 1 if a bug went uncaught (or
// a run could not be set up), else 0.
func runMutants(w io.Writer, o mutantsOptions, wallNow func() time.Time) int {
	var results []mutantResult
	for _, p := range cluster.Plants {
		if o.only != nil && p.Topology != *o.only {
			continue
		}
		res := searchMutant(p, o, wallNow)
		results = append(results, res)
		switch {
		case res.err != nil:
			fmt.Fprintf(w, "== %s (%s): %v\n", p.Name, p.Topology, res.err)
		case res.caughtAt > 0:
			fmt.Fprintf(w, "== %s (%s): caught at seed %d (%d seeds, %v): %s: %s\n", p.Name, p.Topology,
				res.caughtAt, res.seedsRun, res.wall.Round(time.Millisecond), res.kinds[0], res.detail)
		default:
			fmt.Fprintf(w, "== %s (%s): NOT caught within %d seeds (%v)\n", p.Name, p.Topology, res.seedsRun, res.wall.Round(time.Millisecond))
		}
		if len(res.panics) > 0 {
			fmt.Fprintf(w, "   panicked (no catch) at seeds %v; the first: %s\n", res.panics, res.panicked)
		}
	}
	fmt.Fprint(w, mutantsTable(results, o.first, o.seeds))
	for _, r := range results {
		if r.err != nil || r.caughtAt == 0 {
			return 1
		}
	}
	return 0
}

// searchMutant runs seeds o.first, o.first+1, ... of p until one has a violation.
func searchMutant(p cluster.Plant, o mutantsOptions, wallNow func() time.Time) mutantResult {
	res := mutantResult{plant: p}
	start := wallNow()
	config := func(i int) cluster.Config {
		cfg := p.Config(o.first + uint64(i))
		if o.checkTimeout > 0 {
			cfg.CheckTimeout = o.checkTimeout
		}
		// Porcupine's budget is wall time, shared by the worlds run at once (as in a sweep).
		cfg.CheckTimeout *= time.Duration(o.parallel)
		cfg.VizDir = o.vizDir
		cfg.Logger = slog.New(slog.DiscardHandler)
		return cfg
	}
	runSeeds(o.seeds, o.parallel, config, wallNow, func(seedRun) {}, res.take)
	res.wall = wallNow().Sub(start)
	return res
}

// take records one run of the search, in seed order, and reports whether the search goes on:
// a run with a violation is the catch; a run that panicked is no catch, and the search goes
// on past it.
func (res *mutantResult) take(r seedRun) bool {
	res.seedsRun = r.i + 1
	var rp *runPanic
	switch {
	case errors.As(r.err, &rp):
		if len(res.panics) == 0 {
			res.panicked = fmt.Sprint(rp.value)
		}
		res.panics = append(res.panics, r.cfg.Seed)
		return true
	case r.err != nil:
		res.err = fmt.Errorf("seed %d: %w", r.cfg.Seed, r.err)
		return false
	case len(r.rep.Violations) > 0:
		res.caughtAt = r.cfg.Seed
		for _, v := range r.rep.Violations {
			if !slices.Contains(res.kinds, v.Kind) {
				res.kinds = append(res.kinds, v.Kind)
			}
		}
		named := func(kind string) int { // 0 for a kind the class names, to sort first
			if classNames(res.plant.Class, kind) {
				return 0
			}
			return 1
		}
		slices.SortStableFunc(res.kinds, func(a, b string) int { return cmp.Compare(named(a), named(b)) })
		i := slices.IndexFunc(r.rep.Violations, func(v cluster.Violation) bool { return v.Kind == res.kinds[0] })
		res.detail = r.rep.Violations[i].Detail
		return false
	}
	return true
}

// classNames reports whether a plant's class names violation kind (a class ends with the
// kinds that catch it, in words: "lost acknowledged" for "lost acknowledged message").
func classNames(class, kind string) bool {
	return strings.Contains(class, strings.TrimSuffix(kind, " message"))
}

// mutantsTable is the closing table: per bug its topology, whether a check caught it, at
// which seed (and the catalogue's CaughtAt, if that differs), the seeds run, the runs that
// panicked, the kinds of violation of the catching run (the first three, those its class names
// first), and the class of bug it stands for.
func mutantsTable(results []mutantResult, first uint64, seeds int) string {
	rows := [][]string{{"planted bug", "topology", "caught", "seed", "seeds run", "panics", "violation kinds", "class"}}
	caught, stale := 0, 0
	for _, r := range results {
		verdict, seed, kind := "NO", "-", "-"
		switch {
		case r.err != nil:
			verdict, kind = "ERROR", r.err.Error()
		case r.caughtAt > 0:
			caught++
			verdict, seed, kind = "yes", fmt.Sprint(r.caughtAt), strings.Join(r.kinds[:min(3, len(r.kinds))], ", ")
			if len(r.kinds) > 3 {
				kind += fmt.Sprintf(" +%d more", len(r.kinds)-3)
			}
			// CaughtAt is the first catch from seed 1, so a search from at or below it must
			// find it.
			if first <= r.plant.CaughtAt && r.caughtAt != r.plant.CaughtAt {
				stale++
				seed += fmt.Sprintf(" (catalogue %d)", r.plant.CaughtAt)
			}
		}
		rows = append(rows, []string{r.plant.Name, r.plant.Topology.String(), verdict, seed,
			fmt.Sprint(r.seedsRun), fmt.Sprint(len(r.panics)), kind, r.plant.Class})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mutation record: %d of %d planted bugs caught by a check within %d seeds\n", caught, len(results), seeds)
	for _, row := range rows {
		for i, cell := range row {
			if i == len(row)-1 {
				b.WriteString(cell) // the last column is not padded
				break
			}
			fmt.Fprintf(&b, "%-*s  ", widths[i], cell)
		}
		b.WriteString("\n")
	}
	if stale > 0 {
		fmt.Fprintf(&b, "%d first catches differ from the catalogue's CaughtAt (sim/cluster/plants.go): update it\n", stale)
	}
	return b.String()
}

// runSimMutants is 'sluice sim --mutants': it checks that no flag of a single run's
// configuration is set (each bug runs in its own default configuration) and runs the record.
func runSimMutants(fs *flag.FlagSet, seed uint64, seeds, parallel int, topology, vizDir string, checkTimeout time.Duration) int {
	o := mutantsOptions{first: seed, seeds: 200, parallel: parallel, vizDir: vizDir, checkTimeout: checkTimeout}
	allowed := map[string]bool{"mutants": true, "seed": true, "seeds": true, "parallel": true, "topology": true,
		"viz-dir": true, "check-timeout": true, "stop-on-violation": true, "cpuprofile": true}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		switch {
		case !allowed[f.Name]:
			bad = append(bad, "--"+f.Name)
		case f.Name == "seeds":
			o.seeds = seeds
		case f.Name == "topology":
			t, err := cluster.ParseTopology(topology)
			if err != nil {
				bad = append(bad, err.Error())
			}
			o.only = &t
		}
	})
	switch {
	case len(bad) > 0:
		fmt.Fprintf(os.Stderr, "sluice sim: --mutants runs each planted bug in its own default configuration; it takes --seed, --seeds, --parallel, --topology, --viz-dir, --check-timeout and --cpuprofile only (got %s)\n",
			strings.Join(bad, ", "))
		return 2
	case o.seeds < 1 || o.parallel < 1:
		fmt.Fprintf(os.Stderr, "sluice sim: --mutants: --seeds %d and --parallel %d must be at least 1\n", o.seeds, o.parallel)
		return 2
	}
	return runMutants(os.Stdout, o, time.Now)
}
