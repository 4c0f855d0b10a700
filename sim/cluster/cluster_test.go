package cluster

import (
	"maps"
	"testing"
	"time"

	"github.com/sluicemq/sluice/linearizability"
)

func runSeed(t *testing.T, cfg Config) *Report {
	t.Helper()
	cfg.VizDir = t.TempDir()
	rep, err := Run(cfg, time.Now)
	if err != nil {
		t.Fatalf("seed %d: %v", cfg.Seed, err)
	}
	return rep
}

// The same seed must replay byte for byte; a different seed must give a different run.
func TestSameSeedSameTrace(t *testing.T) {
	cfg := DefaultConfig(7)
	cfg.Duration = 15 * time.Second
	a, b := runSeed(t, cfg), runSeed(t, cfg)
	if a.TraceHash != b.TraceHash || a.Events != b.Events {
		t.Fatalf("seed 7 twice: trace %016x (%d events) then %016x (%d events)", a.TraceHash, a.Events, b.TraceHash, b.Events)
	}
	cfg.Seed = 8
	c := runSeed(t, cfg)
	if c.TraceHash == a.TraceHash {
		t.Fatalf("seeds 7 and 8 gave the same trace %016x", a.TraceHash)
	}
	if a.Sends[linearizability.OK] == 0 || a.Pulls == 0 {
		t.Fatalf("seed 7 did no work: %s", a.Summary())
	}
}

// A correct broker passes every check across a spread of seeds with crashes, resets and
// partitions.
func TestSeedsHaveNoViolations(t *testing.T) {
	skipWhileReplaying(t)
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	crashes := 0
	for s := uint64(1); s <= uint64(seeds); s++ {
		cfg := DefaultConfig(s)
		cfg.Duration = 30 * time.Second
		rep := runSeed(t, cfg)
		crashes += rep.Crashes
		if len(rep.Violations) > 0 {
			t.Errorf("%s\n%v", rep.Summary(), rep.Violations)
		}
		if rep.Sends[linearizability.OK] == 0 || rep.Drained+rep.LostUnreadable < rep.Sends[linearizability.OK] {
			t.Errorf("seed %d: %d acknowledged, %d drained: %s", s, rep.Sends[linearizability.OK], rep.Drained, rep.Summary())
		}
	}
	if crashes == 0 {
		t.Fatalf("no broker crash in %d seeds: the fault plan is not exercising recovery", seeds)
	}
}

// A planted single-broker failure shrinks to at most three faults that fail the same way (the
// same violation kind), and the plan file written for it replays that failure exactly: same
// trace, same kind, from the seed, the plant and the file alone.
func TestShrinkKeepsTheFailure(t *testing.T) {
	var cfg Config
	var rep *Report
	for s := uint64(1); s <= 50; s++ {
		cfg = DefaultConfig(s)
		cfg.Duration = 30 * time.Second
		cfg.Plant = "ack-before-sync"
		cfg.VizDir = t.TempDir()
		if rep = runSeed(t, cfg); len(rep.Violations) > 0 && len(rep.Plan) > 3 {
			break
		}
	}
	kind, ok := FailureKind(rep)
	if !ok {
		t.Fatal("no failing seed to shrink")
	}
	sh, err := Shrink(cfg, rep, time.Now, 100)
	if err != nil {
		t.Fatal(err)
	}
	small := sh.Config
	t.Logf("shrunk seed %d from %d faults over %v to %d over %v (%d producers, %d consumers) in %d runs, %v: %q",
		cfg.Seed, len(rep.Plan), cfg.Duration, len(small.Plan), small.Duration, small.Producers, small.Consumers, sh.Runs, sh.Wall, sh.Kind)
	for _, step := range sh.Steps {
		t.Log(step)
	}
	if sh.Kind != kind || !sh.Report.hasKind(kind) {
		t.Fatalf("shrunk run lost the failure %q (kept %q): %s", kind, sh.Kind, sh.Report.Summary())
	}
	if len(small.Plan) > 3 {
		t.Fatalf("shrunk to %d faults, want at most 3: %v", len(small.Plan), small.Plan)
	}
	if small.Duration > cfg.Duration || small.Producers > cfg.Producers || small.Consumers > cfg.Consumers {
		t.Fatalf("shrinking grew the run: %v, %d producers, %d consumers", small.Duration, small.Producers, small.Consumers)
	}

	// Replay as 'sluice sim --seed N --plant P --plan FILE' does: a fresh configuration of
	// the seed, the plan file applied.
	b, err := EncodePlanFile(small)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := DecodePlanFile(b)
	if err != nil {
		t.Fatalf("decode the written plan file: %v\n%s", err, b)
	}
	replay := DefaultConfig(cfg.Seed)
	replay.Plant = cfg.Plant
	pf.Apply(&replay)
	again := runSeed(t, replay)
	if again.TraceHash != sh.Report.TraceHash || !again.hasKind(kind) {
		t.Fatalf("the plan file does not replay: trace %016x then %016x, violations %v", sh.Report.TraceHash, again.TraceHash, again.Violations)
	}
}

// allFlows switches every flow of flows.go on, with parameters that exercise them within a
// short run.
func allFlows() *Flows {
	return &Flows{Batch: true, Delay: true, Transactions: true, Retry: true, PoisonPercent: 8, MaxReconsumeTimes: 2,
		Orderly: true, LockLease: 6 * time.Second, RotateEvery: 4 * time.Second, FromTime: true,
		TxnCheckInterval: 2 * time.Second, TxnTimeout: time.Second}
}

// With every flow on (batch, delayed and transactional sends, retries and dead letters, queue
// locks, a consumer from a timestamp), a correct broker passes every check, and each flow did
// its work: the checks had something to check.
func TestAllFlowsHaveNoViolations(t *testing.T) {
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for s := uint64(1); s <= uint64(seeds); s++ {
		cfg := DefaultConfig(s)
		cfg.Duration = 30 * time.Second
		cfg.Flows = allFlows()
		rep := runSeed(t, cfg)
		if len(rep.Violations) > 0 {
			t.Errorf("%s\n%v", rep.Summary(), rep.Violations)
		}
		for _, flow := range []string{"batch", "delay", "tx-half", "tx-commit", "tx-checks", "retry", "dlq", "locks", "searches"} {
			if rep.FlowCounts[flow] == 0 {
				t.Errorf("seed %d: flow %s did nothing: %s", s, flow, rep.Summary())
			}
		}
	}
}

// The flows replay byte for byte too.
func TestAllFlowsSameSeedSameTrace(t *testing.T) {
	cfg := DefaultConfig(11)
	cfg.Duration = 15 * time.Second
	cfg.Flows = allFlows()
	a, b := runSeed(t, cfg), runSeed(t, cfg)
	if a.TraceHash != b.TraceHash || a.Events != b.Events || !maps.Equal(a.FlowCounts, b.FlowCounts) {
		t.Fatalf("seed 11 with every flow, twice:\n%s\n%s", a.Summary(), b.Summary())
	}
}

// A queue Porcupine cannot decide in time is reported, never passed silently.
func TestUndecidedQueuesAreReported(t *testing.T) {
	cfg := DefaultConfig(3)
	cfg.Duration = 10 * time.Second
	cfg.CheckTimeout = time.Nanosecond
	rep, err := Run(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rep.Violations {
		if v.Kind == "undecided" {
			return
		}
	}
	t.Fatalf("no undecided queue reported with a 1ns check budget; violations: %v", rep.Violations)
}
