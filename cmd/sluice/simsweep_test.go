package main

import (
	"testing"
	"time"

	"github.com/sluicemq/sluice/sim/cluster"
)

// sweepTraces runs seeds 1..n of the groups topology (short runs) at the given parallelism and
// returns each seed's trace hash and event count, in the order the sweep reported them.
func sweepTraces(t *testing.T, n, parallel int, stopAfter int) (order []int, traces []uint64, events []uint64) {
	t.Helper()
	dir := t.TempDir()
	config := func(i int) cluster.Config {
		cfg := cluster.GroupsConfig(uint64(i) + 1)
		cfg.Duration = 15 * time.Second
		cfg.VizDir = dir
		return cfg
	}
	runSeeds(n, parallel, config, time.Now, func(seedRun) {}, func(r seedRun) bool {
		if r.err != nil {
			t.Fatalf("seed %d: %v", r.cfg.Seed, r.err)
		}
		order = append(order, r.i)
		traces = append(traces, r.rep.TraceHash)
		events = append(events, r.rep.Events)
		return r.i+1 != stopAfter
	})
	return order, traces, events
}

// A seed's run is the same whether it runs alone or beside others: the same trace hash (a hash
// over every event delivered) and event count at --parallel 1 and 2, reported in seed order.
func TestParallelSweepKeepsEachSeedsTrace(t *testing.T) {
	const n = 4
	order1, traces1, events1 := sweepTraces(t, n, 1, 0)
	order2, traces2, events2 := sweepTraces(t, n, 2, 0)
	for i := range n {
		if order1[i] != i || order2[i] != i {
			t.Fatalf("runs reported in the order %v at --parallel 1 and %v at 2, want seed order", order1, order2)
		}
		if traces1[i] != traces2[i] || events1[i] != events2[i] {
			t.Errorf("seed %d: trace %016x (%d events) at --parallel 1, %016x (%d events) at 2",
				i+1, traces1[i], events1[i], traces2[i], events2[i])
		}
	}
}

// A sweep told to stop after a run reports nothing after it, though later seeds were already
// running beside it.
func TestParallelSweepStops(t *testing.T) {
	order, _, _ := sweepTraces(t, 6, 3, 2)
	if len(order) != 2 || order[0] != 0 || order[1] != 1 {
		t.Fatalf("reported %v after stopping at the second run, want [0 1]", order)
	}
}

func TestPercentile(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[int]time.Duration{50: 5, 90: 9, 99: 10, 100: 10, 1: 1} {
		if got := percentile(s, p); got != want {
			t.Errorf("p%d of 1..10: %d, want %d", p, got, want)
		}
	}
}
