package cluster

// Properties driven by rapid: instead of drawing the workload and the fault plan from a seed's
// PRNG, rapid's generators draw them (the run's settings, its flow mix, and an explicit fault
// plan of kinds, targets and times, with the groups topology's aimed failovers), the simulator
// runs them, and the run's checks judge it. A failure is then shrunk by rapid's own shrinker,
// over the drawn values: fewer and shorter faults, fewer clients, fewer flows, a shorter run.
//
// The properties, and the checks that stand for them:
//   - per-queue order under any interleaving of sends, pulls, rebalances, restarts and
//     failovers: the log model (checklog.go) and the drain invariants (checks.Drain);
//   - an orderly consumer never has a queue processed by two consumers at once: the lock check
//     (checks.Locks) over the orderly flow's lock history;
//   - a broadcasting consumer sees every message: checks.Broadcast (broadcast.go);
//   - a consumer group's committed offsets never pass a message it did not process:
//     checks.Commits (checkcommits.go), and committed offsets never go back (checkoffsets.go,
//     groupoffsets.go).
// Every other check of the run holds too; a violation of any is a failure.
//
// The budget: a few checks per topology in make test; -rapid.checks=N or RAPID_CHECKS=N for
// more (make sim-props).

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/sim/checks"
)

// Default number of rapid checks per topology when neither -rapid.checks nor RAPID_CHECKS
// says otherwise (rapid runs a fifth of it under -short).
const (
	propChecksSingle = 10
	propChecksGroups = 5
)

// properties names what each violation kind stands for; kinds not listed are "another
// invariant".
var properties = map[string]string{
	checks.KindDrainOrder:             "per-queue order",
	checks.KindTwoOffsets:             "per-queue order",
	checks.KindOffsetConflict:         "per-queue order",
	checks.KindLostAcked:              "per-queue order",
	checks.KindLostObserved:           "per-queue order",
	checks.KindFailedObserved:         "per-queue order",
	checks.KindPhantom:                "per-queue order",
	checks.KindWrongQueue:             "per-queue order",
	"order":                           "per-queue order",
	"linearizability":                 "per-queue order",
	checks.KindLockOverlap:            "an orderly queue processed by one consumer at a time",
	checks.KindBroadcastMissed:        "a broadcasting consumer sees every message",
	checks.KindCommitPastUnprocessed:  "committed offsets never pass an unprocessed message",
	"offset went backwards":           "committed offsets never pass an unprocessed message",
	"offset past unprocessed message": "committed offsets never pass an unprocessed message", // the processed-offsets check (checkprocessed.go)
}

// propertyOf is the property a violation kind stands for.
func propertyOf(kind string) string {
	if p, ok := properties[kind]; ok {
		return p
	}
	return "another invariant (" + kind + ")"
}

// TestPropsSingle: the properties hold for any workload and fault plan rapid draws for the
// single topology.
func TestPropsSingle(t *testing.T) {
	rapidDefaults(t, map[string]string{"rapid.checks": fmt.Sprint(propChecksSingle)})
	rapid.Check(t, func(rt *rapid.T) { checkProperties(rt, drawSingle(rt)) })
}

// TestPropsGroups: likewise for the groups topology, with failovers aimed at the masters.
func TestPropsGroups(t *testing.T) {
	rapidDefaults(t, map[string]string{"rapid.checks": fmt.Sprint(propChecksGroups)})
	rapid.Check(t, func(rt *rapid.T) { checkProperties(rt, drawGroups(rt)) })
}

// TestPropsCatchPlantedBug: the properties can fail. With a planted bug that acknowledges
// before the fsync, rapid finds a plan whose crash or failed fsync breaks a queue's log (an
// acknowledged message lost), and shrinks it: the counterexample it settles on is smaller
// than the first it found, and small. rapid's seed is fixed, so the search is the same every
// time; its shrinking is bounded by rapid.shrinktime.
func TestPropsCatchPlantedBug(t *testing.T) {
	forceRapid(t, map[string]string{"rapid.checks": "40", "rapid.seed": "1", "rapid.nofailfile": "true", "rapid.shrinktime": "10s"})
	var first, last *Config
	runs, firstAt, start := 0, 0, time.Now()
	var found time.Duration
	rec := &recordingTB{name: t.Name()}
	rapid.Check(rec, func(rt *rapid.T) {
		cfg := drawSingle(rt)
		cfg.Plant = "ack-before-sync"
		// Once the drain check reports the planted loss, Porcupine's log check is skipped.
		cfg.StopAtKind = checks.KindLostAcked
		runs++
		rep := runProperty(rt, cfg)
		if vs := failures(rep); len(vs) > 0 {
			c := cfg
			if first == nil {
				first, firstAt, found = &c, runs, time.Since(start)
			}
			last = &c
			rt.Fatalf("%s", describe(cfg, vs))
		}
	})
	if !rec.failed || first == nil {
		t.Fatalf("rapid found no counterexample to the properties with ack-before-sync planted; its output:\n%s", strings.Join(rec.logs, "\n"))
	}
	out := strings.Join(rec.logs, "\n")
	if !strings.Contains(out, "broken: per-queue order") {
		t.Errorf("the counterexample does not break per-queue order (a lost acknowledged message, or a log no order explains):\n%s", out)
	}
	size := func(c *Config) int { return len(c.Plan)*1000 + int(c.Duration/time.Second) + c.Producers + c.Consumers }
	t.Logf("%d runs in %v: the first counterexample at run %d (%v)", runs, time.Since(start).Round(time.Millisecond), firstAt, found.Round(time.Millisecond))
	t.Logf("first counterexample: %d faults, %v, %d producers, %d consumers; shrunk: %d faults, %v, %d producers, %d consumers: %v",
		len(first.Plan), first.Duration, first.Producers, first.Consumers, len(last.Plan), last.Duration, last.Producers, last.Consumers, last.Plan)
	if size(last) >= size(first) {
		t.Errorf("rapid did not shrink the counterexample: %d faults, %v, first %d faults, %v", len(last.Plan), last.Duration, len(first.Plan), first.Duration)
	}
	// One fault that keeps the broker's disk from syncing (a crash, a failed fsync) is all it
	// takes (10 s of shrinking on an idle machine gets there); the bound leaves room for a
	// loaded one, where shrinking runs out of time sooner.
	if len(last.Plan) > 3 {
		t.Errorf("shrunk counterexample: want at most 3 faults; got %v", last.Plan)
	}
}

// checkProperties runs cfg and fails rt with the violations, the properties they break, and
// what replays the run.
func checkProperties(rt *rapid.T, cfg Config) {
	if vs := failures(runProperty(rt, cfg)); len(vs) > 0 {
		rt.Fatalf("%s", describe(cfg, vs))
	}
}

// runProperty runs cfg, after checking it replays from its plan file.
func runProperty(rt *rapid.T, cfg Config) *Report {
	b, err := EncodePlanFile(cfg)
	if err != nil {
		rt.Fatalf("drawn run has no plan file: %v", err)
	}
	if _, err := DecodePlanFile(b); err != nil {
		rt.Fatalf("drawn run's plan file does not decode: %v\n%s", err, b)
	}
	cfg.VizDir = os.TempDir()
	rep, err := Run(cfg, time.Now)
	if err != nil {
		rt.Fatalf("run: %v\n%s", err, b)
	}
	return rep
}

// failures are the report's violations but Porcupine running out of time (a budget, not a
// bug: the queue is unchecked, and the run is reported as such in the log).
func failures(rep *Report) []Violation {
	var out []Violation
	for _, v := range rep.Violations {
		if v.Kind != "undecided" {
			out = append(out, v)
		}
	}
	return out
}

// describe says which properties vs break, and how to replay the run.
func describe(cfg Config, vs []Violation) string {
	var b strings.Builder
	var props []string
	for _, v := range vs {
		if p := propertyOf(v.Kind); !slices.Contains(props, p) {
			props = append(props, p)
		}
	}
	fmt.Fprintf(&b, "broken: %s\n", strings.Join(props, "; "))
	for i, v := range vs {
		if i == 5 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(vs)-i)
			break
		}
		fmt.Fprintf(&b, "  %s: %s\n", v.Kind, v.Detail)
	}
	plan, _ := EncodePlanFile(cfg)
	mode := "--flush " + flushName(cfg.FlushMode)
	if cfg.Topology == BrokerGroups {
		mode = "--replication " + replicationName(cfg.Replication)
	}
	plant := ""
	if cfg.Plant != "" {
		plant = " --plant " + cfg.Plant
	}
	fmt.Fprintf(&b, "replay: write the plan below to plan.json, then\n  sluice sim --topology %s %s --seed %d --rate %g%s --plan plan.json\n%s",
		cfg.Topology, mode, cfg.Seed, cfg.Rate, plant, plan)
	return b.String()
}

func flushName(m brokernode.FlushMode) string {
	if m == brokernode.AsyncFlush {
		return "async"
	}
	return "sync"
}

func replicationName(m brokernode.ReplicationMode) string {
	if m == brokernode.AsyncReplication {
		return "async"
	}
	return "sync"
}

// drawWorkload draws what every topology's run takes: the seed (which still drives the
// network's latencies and the clients' small choices), the duration, the clients and the
// offered load.
func drawWorkload(rt *rapid.T, cfg Config, minSeconds, maxSeconds int) Config {
	cfg.Seed = rapid.Uint64Range(1, 1000).Draw(rt, "seed")
	cfg.Duration = time.Duration(rapid.IntRange(minSeconds, maxSeconds).Draw(rt, "seconds")) * time.Second
	cfg.Producers = rapid.IntRange(1, 3).Draw(rt, "producers")
	cfg.Consumers = rapid.IntRange(1, 3).Draw(rt, "consumers")
	cfg.Rate = float64(rapid.SampledFrom([]int{0, 20, 100, 300}).Draw(rt, "rate"))
	cfg.CheckTimeout = 30 * time.Second
	return cfg
}

// drawSingle draws a run of the single topology: its flush mode, its flows (orderly,
// concurrent and broadcasting consumers, and the other flows), and a plan of faults on its
// broker and name server.
func drawSingle(rt *rapid.T) Config {
	cfg := drawWorkload(rt, DefaultConfig(0), 5, 20)
	if rapid.Bool().Draw(rt, "async flush") {
		cfg.FlushMode = brokernode.AsyncFlush
	}
	f := Flows{
		Orderly:      rapid.Bool().Draw(rt, "orderly"),
		Broadcast:    rapid.Bool().Draw(rt, "broadcast"),
		Retry:        rapid.Bool().Draw(rt, "retry"),
		Batch:        rapid.Bool().Draw(rt, "batch"),
		Delay:        rapid.Bool().Draw(rt, "delay"),
		Transactions: rapid.Bool().Draw(rt, "transactions"),
		FromTime:     rapid.Bool().Draw(rt, "from time"),
		SQL92:        rapid.Bool().Draw(rt, "sql92"),
	}
	if f.Orderly {
		f.LockLease = time.Duration(rapid.IntRange(4, 15).Draw(rt, "lock lease s")) * time.Second
		f.RotateEvery = time.Duration(rapid.IntRange(3, 12).Draw(rt, "rotate every s")) * time.Second
	}
	if f.Retry {
		f.PoisonPercent = rapid.IntRange(0, 8).Draw(rt, "poison %")
		f.MaxReconsumeTimes = rapid.IntRange(1, 3).Draw(rt, "max reconsume")
	}
	if f.Transactions {
		f.TxnCheckInterval = time.Duration(rapid.IntRange(1, 4).Draw(rt, "txn check s")) * time.Second
		f.TxnTimeout = time.Duration(rapid.IntRange(1, 3).Draw(rt, "txn timeout s")) * time.Second
	}
	if f.SQL92 {
		f.SQLSelector = rapid.IntRange(0, len(sqlSelectors)-1).Draw(rt, "sql selector")
		f.SQLViaHeartbeat = rapid.Bool().Draw(rt, "sql via heartbeat")
	}
	cfg.Flows = &f
	targets := []string{BrokerAddr, BrokerAddr, BrokerAddr, NameServerAddr} // mostly the broker
	kinds := []faults.Kind{faults.Crash, faults.Reset, faults.Partition, faults.OneWay, faults.Delay, faults.Pause,
		faults.DiskWriteEIO, faults.DiskSyncEIO, faults.DiskFull, faults.SlowFsync, faults.ClockSkew, faults.ClockJump}
	cfg.Plan = drawPlan(rt, cfg.Duration, rapid.Custom(func(rt *rapid.T) []faults.Fault {
		return []faults.Fault{drawFault(rt, cfg.Duration, kinds, targets)}
	}))
	cfg.ExplicitPlan = true
	return cfg
}

// drawGroups draws a run of the groups topology: its replication mode, whether broadcasting
// consumers run, and a plan of faults on any node or role, mixed with the failovers aimed at a
// group's master (a crash or isolation of the master, a double failover, a power loss).
func drawGroups(rt *rapid.T) Config {
	cfg := drawWorkload(rt, GroupsConfig(0), 10, 30)
	if rapid.Bool().Draw(rt, "async replication") {
		cfg.Replication = brokernode.AsyncReplication
	}
	cfg.Flows = &Flows{Broadcast: rapid.Bool().Draw(rt, "broadcast")}
	var targets []string
	for h := 1; h <= nameServerHosts; h++ {
		targets = append(targets, fmt.Sprintf("@host:%d", h))
	}
	for gi, name := range GroupNames {
		targets = append(targets, faults.MasterOf(name), faults.MasterOf(name))
		for id := 1; id <= groupReplicas; id++ {
			targets = append(targets, ReplicaAddr(gi, id))
		}
	}
	kinds := []faults.Kind{faults.Crash, faults.Reset, faults.Partition, faults.OneWay, faults.Delay, faults.Pause,
		faults.DiskWriteEIO, faults.DiskSyncEIO, faults.DiskFull, faults.SlowFsync, faults.ClockSkew, faults.ClockJump}
	d := cfg.Duration
	item := rapid.Custom(func(rt *rapid.T) []faults.Fault {
		at := drawAt(rt, d)
		g := rapid.SampledFrom(GroupNames).Draw(rt, "group")
		switch rapid.IntRange(0, 9).Draw(rt, "aimed") {
		case 0:
			return []faults.Fault{faults.IsolateMaster(g, controllerAddrs(), at, drawSpan(rt, "hold", 6*time.Second, 20*time.Second))}
		case 1:
			return faults.DoubleFailover(g, at, drawSpan(rt, "first", 5500*time.Millisecond, 9*time.Second))
		case 2:
			return faults.PowerLoss(g, at, drawSpan(rt, "slow", 30*time.Millisecond, 200*time.Millisecond), drawSpan(rt, "late", 3*time.Second, 12*time.Second))
		case 3:
			// A master cut off together with a producer and a consumer (apache/rocketmq#7017).
			return []faults.Fault{{At: at, Kind: faults.GroupPartition, Nodes: []string{faults.MasterOf(g), ProducerAddr(0), ConsumerAddr(0)},
				Duration: drawSpan(rt, "cut", 200*time.Millisecond, 8*time.Second)}}
		}
		return []faults.Fault{drawFault(rt, d, kinds, targets)}
	})
	cfg.Plan = drawPlan(rt, d, item)
	cfg.ExplicitPlan = true
	return cfg
}

// drawPlan draws up to six items of faults and orders them in time.
func drawPlan(rt *rapid.T, d time.Duration, item *rapid.Generator[[]faults.Fault]) []faults.Fault {
	var plan []faults.Fault
	for _, fs := range rapid.SliceOfN(item, 0, 6).Draw(rt, "faults") {
		plan = append(plan, fs...)
	}
	slices.SortStableFunc(plan, func(a, b faults.Fault) int { return int(a.At - b.At) })
	return plan
}

// drawAt draws when a fault strikes: within the workload, to a tenth of a second.
func drawAt(rt *rapid.T, d time.Duration) time.Duration {
	return drawSpan(rt, "at", 0, d-1)
}

// drawSpan draws a duration between lo and hi, shrinking towards lo: to a tenth of a second
// (the shrinker minimises each drawn number by a search, a full run per step, so a coarse
// grain keeps it short), or to the millisecond for spans under a second.
func drawSpan(rt *rapid.T, label string, lo, hi time.Duration) time.Duration {
	step := 100 * time.Millisecond
	if hi < time.Second {
		step = time.Millisecond
	}
	return lo + time.Duration(rapid.Int64Range(0, int64((hi-lo)/step)).Draw(rt, label))*step
}

// drawFault draws one fault of one of kinds on one of targets, shaped as the swarm shapes
// that kind (faults.Plan).
func drawFault(rt *rapid.T, d time.Duration, kinds []faults.Kind, targets []string) faults.Fault {
	f := faults.Fault{At: drawAt(rt, d), Kind: rapid.SampledFrom(kinds).Draw(rt, "kind"),
		Node: rapid.SampledFrom(targets).Draw(rt, "target"), Duration: drawSpan(rt, "duration", 100*time.Millisecond, 8*time.Second)}
	switch f.Kind {
	case faults.OneWay:
		if rapid.Bool().Draw(rt, "not heard") {
			f.Node, f.Peers = "", []string{f.Node}
		}
	case faults.Delay:
		f.Delta = drawSpan(rt, "delta", 10*time.Millisecond, 2*time.Second)
	case faults.SlowFsync:
		f.Delta = drawSpan(rt, "delta", 5*time.Millisecond, time.Second)
	case faults.ClockSkew, faults.ClockJump:
		f.Delta = drawSpan(rt, "delta", time.Millisecond, 30*time.Second)
		if rapid.Bool().Draw(rt, "behind") {
			f.Delta = -f.Delta
		}
		if f.Kind == faults.ClockJump {
			f.Duration = max(f.Duration, 2*f.Delta.Abs()) // slewed back at most at half speed
		}
	}
	return f
}

// recordingTB is a rapid.TB that records a property's failure instead of failing the test, so
// a test can assert that rapid finds (and shrinks) a counterexample.
type recordingTB struct {
	name   string
	failed bool
	logs   []string
}

func (r *recordingTB) Helper()      {}
func (r *recordingTB) Name() string { return r.name }
func (r *recordingTB) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Log(args ...any) { r.logs = append(r.logs, fmt.Sprint(args...)) }
func (r *recordingTB) Skipf(format string, args ...any) {
	panic("recordingTB: skip: " + fmt.Sprintf(format, args...))
}
func (r *recordingTB) Skip(args ...any) { panic("recordingTB: skip: " + fmt.Sprint(args...)) }
func (r *recordingTB) SkipNow()         { panic("recordingTB: skip") }
func (r *recordingTB) Errorf(format string, args ...any) {
	r.failed = true
	r.Logf(format, args...)
}
func (r *recordingTB) Error(args ...any) { r.failed = true; r.Log(args...) }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = true
	r.Logf(format, args...)
}
func (r *recordingTB) Fatal(args ...any) { r.failed = true; r.Log(args...) }
func (r *recordingTB) FailNow()          { r.failed = true }
func (r *recordingTB) Fail()             { r.failed = true }
func (r *recordingTB) Failed() bool      { return r.failed }

// rapidDefaults sets rapid's flags (by flag name) that neither the command line nor the
// environment (RAPID_CHECKS for rapid.checks, and so on) set, for the length of the test.
func rapidDefaults(t *testing.T, values map[string]string) {
	t.Helper()
	given := commandLineFlags()
	for name, v := range values {
		env := "RAPID_" + strings.ToUpper(strings.TrimPrefix(name, "rapid."))
		if _, ok := os.LookupEnv(env); ok || given[name] {
			continue
		}
		setFlag(t, name, v)
	}
}

// commandLineFlags are the flags the command line set, noted before any test set one (a flag
// set by flag.Set counts as set from then on).
var commandLineFlags = sync.OnceValue(func() map[string]bool {
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
})

// forceRapid sets rapid's flags for the length of the test, whatever was given.
func forceRapid(t *testing.T, values map[string]string) {
	t.Helper()
	commandLineFlags()
	for name, v := range values {
		setFlag(t, name, v)
	}
}

func setFlag(t *testing.T, name, v string) {
	t.Helper()
	f := flag.Lookup(name)
	if f == nil {
		t.Fatalf("no flag %s (rapid's flags moved?)", name)
	}
	old := f.Value.String()
	if err := flag.Set(name, v); err != nil {
		t.Fatalf("set %s=%s: %v", name, v, err)
	}
	t.Cleanup(func() { _ = flag.Set(name, old) })
}
