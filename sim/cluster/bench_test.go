package cluster

import (
	"fmt"
	"os"
	"runtime/debug"
	"testing"
	"time"
)

// benchSeeds are the seeds the benchmarks cycle through: one seed's fault plan can make a run
// much lighter or heavier than the rest, so a figure is an average over several.
const benchSeeds = 8

// simGCPercent is the GOGC `sluice sim` runs worlds with unless GOGC is set in the
// environment (cmd/sluice's sim command): the benchmarks measure the simulator as that command
// runs it.
const simGCPercent = 400

// benchRun runs cfg for seeds 1, 2, ... benchSeeds, 1, ... (b.N runs in all) and reports the
// simulator's speed:
//
//   - events/s: simulated events delivered per wall second of the whole run;
//   - sim-events/s: the same per wall second of the simulation alone (without the checks);
//   - x-realtime: simulated time per wall time, the whole run (simulation and checks);
//   - check-%: the share of the wall time spent in the checks after the simulation;
//   - cpu-events/s and cpu-x-realtime: events/s and x-realtime per second of the process's CPU
//     time instead of wall time: on a machine other work keeps busy, these move far less
//     between runs than the wall-time figures (with -cpu 1 they are what one core achieves).
//
// It collects garbage as `sluice sim` does (simGCPercent, unless GOGC is set).
func benchRun(b *testing.B, config func(seed uint64) Config) {
	b.Helper()
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(simGCPercent))
	}
	var events uint64
	var simulated, wall, checkWall time.Duration
	dir := b.TempDir()
	cpu0 := processCPU()
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
	if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "cpu-events/s")
		b.ReportMetric(simulated.Seconds()/cpu.Seconds(), "cpu-x-realtime")
	}
}

// BenchmarkGroups runs the standard groups cluster (GroupsConfig) at an offered load of 10 and
// of 100 messages per second (Config.Rate), and at the default pacing (about 115 sends a second
// acknowledged, the producers' 8 in flight permitting):
//
//	go test ./sim/cluster/ -run '^$' -bench Groups -benchtime 16x -cpu 1
func BenchmarkGroups(b *testing.B) {
	for _, rate := range []float64{10, 100, 0} {
		name := fmt.Sprintf("rate=%g", rate)
		if rate == 0 {
			name = "rate=default"
		}
		b.Run(name, func(b *testing.B) {
			benchRun(b, func(seed uint64) Config {
				cfg := GroupsConfig(seed)
				cfg.Rate = rate
				return cfg
			})
		})
	}
}

// BenchmarkSingle runs the single-broker topology (DefaultConfig).
func BenchmarkSingle(b *testing.B) {
	benchRun(b, DefaultConfig)
}
