package cluster

import (
	"testing"
	"time"
)

// benchSeeds are the seeds the benchmarks cycle through: one seed's fault plan can make a run
// much lighter or heavier than the rest, so a figure is an average over several.
const benchSeeds = 8

// benchRun runs cfg for seeds 1, 2, ... benchSeeds, 1, ... (b.N runs in all) and reports the
// simulator's speed:
//
//   - events/s: simulated events delivered per wall second of the whole run;
//   - sim-events/s: the same per wall second of the simulation alone (without the checks);
//   - x-realtime: simulated time per wall time, the whole run (simulation and checks);
//   - check-%: the share of the wall time spent in the checks after the simulation.
func benchRun(b *testing.B, config func(seed uint64) Config) {
	b.Helper()
	var events uint64
	var simulated, wall, checkWall time.Duration
	dir := b.TempDir()
	for i := 0; b.Loop(); i++ {
		cfg := config(uint64(i%benchSeeds) + 1)
		cfg.VizDir = dir
		rep, err := Run(cfg, time.Now)
		if err != nil {
			b.Fatalf("seed %d: %v", cfg.Seed, err)
		}
		if len(rep.Violations) > 0 {
			b.Fatalf("seed %d: %v", cfg.Seed, rep.Violations)
		}
		events += rep.Events
		simulated += rep.Simulated
		wall += rep.Wall
		checkWall += rep.CheckWall
	}
	if wall <= 0 {
		return
	}
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
	if simWall := wall - checkWall; simWall > 0 {
		b.ReportMetric(float64(events)/simWall.Seconds(), "sim-events/s")
	}
	b.ReportMetric(simulated.Seconds()/wall.Seconds(), "x-realtime")
	b.ReportMetric(100*checkWall.Seconds()/wall.Seconds(), "check-%")
}

// BenchmarkGroups runs the standard groups cluster (GroupsConfig) at its default offered load:
//
//	go test ./sim/cluster/ -run '^$' -bench Groups -benchtime 16x -cpu 1
func BenchmarkGroups(b *testing.B) {
	benchRun(b, GroupsConfig)
}

// BenchmarkSingle runs the single-broker topology (DefaultConfig).
func BenchmarkSingle(b *testing.B) {
	benchRun(b, DefaultConfig)
}
