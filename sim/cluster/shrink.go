package cluster

// The shrinker: given a failing run, it searches for a smaller run that fails the same way, so
// that a person debugging it reads a few faults over a short workload rather than dozens over
// minutes. "The same way" is the failure's kind (FailureKind): the name of the check category
// that failed, never the message, which names offsets and times that any change moves.
//
// The search, each step keeping a candidate only if it still shows the kind:
//  1. the duration: the shortest prefix of the run (the plan cut to the faults that strike in
//     it): when the run showed the kind before its workload ended (Violation.At), first the
//     run up to a second past that instant (every later fault goes in one run); if that does
//     not fail, or the kind showed only later, by bisection on whole seconds;
//  2. the tail: the fewest of the latest faults that still fail alone, by bisection on how
//     many (the faults that make a failure mostly strike shortly before it, and the earlier
//     ones go in a few runs where ddmin would take many);
//  3. the fault plan, by delta debugging (ddmin): remove chunks (the plan less each chunk),
//     then complements (each chunk alone), at finer and finer granularity down to single
//     faults, so the result is 1-minimal (no single fault can go) within the budget;
//  4. the duration again (fewer faults usually fail sooner);
//  5. the start: the whole plan moved earlier, and the end with it, by bisection to within a
//     sixteenth of the run;
//  6. the workload: every optional flow off at once, else each on its own; one producer; one
//     consumer;
//  7. steps 3 and 4 again if the workload shrank.
//
// A candidate run is cut short once its kind shows (Config.StopAtKind): online checks stop the
// workload at that simulated second, and Porcupine is skipped unless the kind is its own and
// no cheaper check reported it. When the failing run recorded the kind before its drain
// (Report.RecordedBeforeDrain: a check that judges as the run goes), a candidate that has not
// by the end of its healing ends there, without the drain and the checks after it
// (Config.KindBeforeDrain); a candidate that fails so fails the full run too, which runs the
// same events up to there. Runs are
// deterministic, so a candidate is never run twice
// (outcomes are cached by configuration), the search is too (unless a wall-clock budget cuts
// it short), and the result replays exactly: Shrink ends with a full run of it, every check
// on, and fails if that run does not show the kind.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Checks whose violations say a check could not run, not that the system failed: a shrink never
// aims at them.
var harnessKinds = map[string]bool{"undecided": true, "checker": true}

// FailureKind is the kind a shrink of rep keeps: the Kind of its earliest violation (by
// Violation.At; of those at one instant, the first in the report) that is not a harness kind
// (Porcupine undecided or failing); ok is false when there is none. The earliest is the first
// thing that went wrong; what follows is often its consequence (a broker serving corrupt
// entries, say, then misses the liveness bound).
func FailureKind(rep *Report) (kind string, ok bool) {
	first := -1
	for i, v := range rep.Violations {
		if !harnessKinds[v.Kind] && (first < 0 || v.At < rep.Violations[first].At) {
			first = i
		}
	}
	if first < 0 {
		return "", false
	}
	return rep.Violations[first].Kind, true
}

// firstAt is when rep's run first showed a violation of kind (ok false when it has none).
func firstAt(rep *Report, kind string) (at time.Duration, ok bool) {
	for _, v := range rep.Violations {
		if v.Kind == kind && (!ok || v.At < at) {
			at, ok = v.At, true
		}
	}
	return at, ok
}

// DefaultShrinkRuns is the candidate runs a shrink may make unless told otherwise.
const DefaultShrinkRuns = 200

// ShrinkLimits bound a shrink and say what it keeps.
type ShrinkLimits struct {
	// Runs bounds the candidate runs (0: DefaultShrinkRuns).
	Runs int
	// Wall, if set, bounds the search's wall time: once it has passed no candidate starts
	// and the shrink returns the smallest failure found so far (its closing full run still
	// happens). The result then depends on the machine's speed; without it, a shrink's
	// result depends only on its input.
	Wall time.Duration
	// Kind, if set, is the violation kind to keep, one the failing run had ("": FailureKind's).
	Kind string
	// Parallel is how many candidate runs may go at once, each in a world of its own (0: one
	// a core, runtime.GOMAXPROCS). The result does not depend on it (see shrinker.first),
	// unless a budget runs out: every run started counts against Runs, so a batch's
	// speculative runs spend the budget sooner.
	Parallel int
}

// Shrunk is a shrink's outcome.
type Shrunk struct {
	// Config replays the smallest failure found (its ExplicitPlan is set; EncodePlanFile
	// writes what a replay needs besides the seed and the mode flags).
	Config Config
	// Report is Config's full run, every check on.
	Report *Report
	// Kind is the violation kind kept (FailureKind of the failing run).
	Kind string
	// Runs counts the candidate runs (cached repeats excluded, the final replay included).
	Runs int
	// Events counts the simulated events of those runs: the search's cost, which unlike Wall
	// does not depend on the machine's speed or load.
	Events uint64
	// Wall is the shrink's wall time.
	Wall time.Duration
	// Steps says, a line per step, what each step left and what it had cost so far (runs,
	// batches of runs that went at once, wall time).
	Steps []string
	// Exhausted, when not "", says which budget ran out before the search ended (so the
	// result may not be minimal).
	Exhausted string
}

// Shrink looks for a smaller run than cfg (whose run gave failing) that fails with a violation of
// the same kind (FailureKind), running at most budget candidate simulations, and returns the
// smallest it found with its full report. When failing has no violation of a kind to keep,
// it returns cfg and failing unchanged.
func Shrink(cfg Config, failing *Report, wallNow func() time.Time, budget int) (Shrunk, error) {
	return ShrinkWithin(cfg, failing, wallNow, ShrinkLimits{Runs: budget})
}

// ShrinkWithin is Shrink with the limits and the kind to keep spelled out. The candidates of a
// ddmin round run up to lim.Parallel at a time; wallNow is then read from several goroutines
// (the shrinker serialises its calls).
func ShrinkWithin(cfg Config, failing *Report, wallNow func() time.Time, lim ShrinkLimits) (Shrunk, error) {
	if lim.Parallel < 0 {
		return Shrunk{}, fmt.Errorf("shrink: %d candidate runs at a time: want at least 1 (0: one a core)", lim.Parallel)
	}
	wallNow = lockedClock(wallNow)
	start := wallNow()
	kind, ok := lim.Kind, lim.Kind != ""
	if !ok {
		kind, ok = FailureKind(failing)
	} else if !failing.hasKind(kind) || harnessKinds[kind] {
		return Shrunk{}, fmt.Errorf("shrink: the failing run (seed %d) has no violation of kind %q to keep", cfg.Seed, kind)
	}
	if !ok {
		return Shrunk{Config: cfg, Report: failing}, nil
	}
	at, _ := firstAt(failing, kind)
	s := &shrinker{kind: kind, budget: cmp.Or(lim.Runs, DefaultShrinkRuns), parallel: cmp.Or(lim.Parallel, runtime.GOMAXPROCS(0)),
		wallNow: wallNow, seen: map[string]outcome{}, logger: cfg.Logger, bestAt: at, beforeDrain: failing.RecordedBeforeDrain(kind)}
	if lim.Wall > 0 {
		s.deadline = start.Add(lim.Wall)
	}
	s.wallBudget = lim.Wall
	s.best = cfg
	s.best.Plan = within(failing.Plan, cfg.Duration)
	s.best.ExplicitPlan = true
	s.best.StopAtKind = ""
	if cfg.Topology == SingleBroker && s.best.Flows == nil {
		f := failing.Flows // what the seed drew, fixed so that it can be shrunk and replayed
		s.best.Flows = &f
	}
	s.seen[s.key(s.best)] = outcome{shows: true, at: at}

	shorten := func() error { return s.duration(lastStrike(s.best.Plan)) }
	steps := []shrinkStep{{"duration", func() error { return s.duration(0) }}, {"tail", s.tail}, {"plan", s.plan},
		{"duration", shorten}, {"shift", s.shift}, {"workload", s.workload}}
	for i := 0; i < len(steps); i++ {
		before := s.key(s.best)
		if err := steps[i].do(); err != nil {
			return Shrunk{}, err
		}
		s.steps = append(s.steps, fmt.Sprintf("%-8s -> %d faults over %v, %d producers, %d consumers (%d runs in %d batches so far, %v)",
			steps[i].name, len(s.best.Plan), s.best.Duration, s.best.Producers, s.best.Consumers, s.runs, s.batches, wallNow().Sub(start).Round(time.Millisecond)))
		if steps[i].name == "workload" && s.key(s.best) != before {
			// A smaller workload may let more faults go, and fail sooner.
			steps = append(steps, shrinkStep{"plan", s.plan}, shrinkStep{"duration", shorten})
		}
	}

	rep, err := Run(s.best, wallNow)
	s.runs++
	if rep != nil {
		s.events += rep.Events
	}
	if err != nil {
		return Shrunk{}, fmt.Errorf("shrink: replay the shrunk run: %w", err)
	}
	if !rep.hasKind(kind) {
		return Shrunk{}, fmt.Errorf("shrink: the shrunk run (seed %d, %d faults over %v) did not replay its %q violation in full", s.best.Seed, len(s.best.Plan), s.best.Duration, kind)
	}
	return Shrunk{Config: s.best, Report: rep, Kind: kind, Runs: s.runs, Events: s.events, Wall: wallNow().Sub(start), Steps: s.steps, Exhausted: s.exhausted}, nil
}

// lockedClock is now with its calls serialised: a shrink's candidates run at once and each
// reads the wall clock (Porcupine's budget), and a test's clock may be a plain closure.
func lockedClock(now func() time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now()
	}
}

// shrinkStep is one step of a shrink.
type shrinkStep struct {
	name string
	do   func() error
}

// shrinker is one shrink's state. Only the goroutine that called ShrinkWithin writes it: the
// candidate runs of a batch (shrinker.first) read only kind, wallNow and logger, set before the
// first, and hand their outcomes back through slices of their own, which that goroutine copies
// into the cache (seen) once the batch is done; so seen and runs need no lock.
type shrinker struct {
	kind string
	// beforeDrain: the failing run recorded the kind before its drain, so a candidate that
	// has not by then stops there (Config.KindBeforeDrain).
	beforeDrain bool
	budget      int
	parallel    int // candidate runs at a time (at least 1)
	runs        int // candidate runs started
	// events counts the simulated events of the candidate runs (what the search cost,
	// independent of the machine's speed and load).
	events uint64
	// batches counts the batches of candidate runs that went at once: the runs one after
	// another, which with idle cores is what the wall time follows (runs at parallel 1).
	batches int
	wallNow func() time.Time
	// deadline, if set, is when the wall-clock budget (wallBudget) runs out.
	deadline   time.Time
	wallBudget time.Duration
	// exhausted says which budget ran out ("" while neither has).
	exhausted string
	logger    *slog.Logger
	best      Config
	// bestAt is when best's run first recorded the kind.
	bestAt time.Duration
	steps  []string
	// seen records, by key, the outcome of a configuration's run.
	seen map[string]outcome
}

// outcome is what a candidate's run showed: whether it had the kind, and when it first
// recorded it.
type outcome struct {
	shows bool
	at    time.Duration
	// events is how many simulated events the run took (its cost, whatever the machine's load).
	events uint64
}

// out reports whether a budget has run out (and notes which): no candidate starts then.
func (s *shrinker) out() bool {
	switch {
	case s.exhausted != "":
	case s.runs >= s.budget:
		s.exhausted = fmt.Sprintf("the budget of %d runs ran out", s.budget)
	case !s.deadline.IsZero() && !s.wallNow().Before(s.deadline):
		s.exhausted = fmt.Sprintf("the wall-clock budget of %v ran out after %d runs", s.wallBudget, s.runs)
	}
	return s.exhausted != ""
}

// choose makes candidate c, whose run showed the kind, the best.
func (s *shrinker) choose(c Config) {
	s.best = c
	s.bestAt = s.seen[s.key(c)].at
}

// key identifies a candidate: everything a shrink changes.
func (s *shrinker) key(c Config) string {
	b, err := json.Marshal(struct {
		D    time.Duration
		P, C int
		F    *Flows
		Plan []faults.Fault
	}{c.Duration, c.Producers, c.Consumers, c.Flows, c.Plan})
	if err != nil {
		panic(fmt.Sprintf("cluster: shrink key: %v", err)) // plain data always encodes
	}
	return string(b)
}

// try runs c (unless it ran before) and makes it the best if it shows the kind.
func (s *shrinker) try(c Config) (bool, error) {
	i, err := s.first([]Config{c})
	return i == 0, err
}

// first runs the candidates (those that ran before are not run again), up to s.parallel at
// a time, and makes the first in order that shows the kind the best; it returns its index, or
// -1. The outcome is the same at any parallelism: a batch's later candidates run only
// speculatively. Beyond the budget nothing runs and nothing shows.
func (s *shrinker) first(cands []Config) (int, error) {
	for lo := 0; lo < len(cands); {
		// The batch: the next candidates up to s.parallel that need a run (cached ones decide
		// at once, in order).
		var batch []int
		hi := lo
		for ; hi < len(cands) && len(batch) < s.parallel; hi++ {
			k := s.key(cands[hi])
			if o, ok := s.seen[k]; ok {
				if !o.shows {
					continue
				}
				if len(batch) == 0 {
					s.choose(cands[hi])
					return hi, nil
				}
				hi++ // the batch's runs decide whether an earlier candidate wins
				break
			}
			if s.runs+len(batch) >= s.budget || len(batch) == 0 && s.out() {
				break
			}
			batch = append(batch, hi)
		}
		if len(batch) == 0 && hi == lo {
			return -1, nil // out of budget
		}
		outs := make([]outcome, len(batch))
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for j, i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[j], errs[j] = s.run(cands[i])
			}()
		}
		wg.Wait()
		s.runs += len(batch)
		if len(batch) > 0 {
			s.batches++
		}
		if err := errors.Join(errs...); err != nil {
			return -1, err
		}
		for j, i := range batch {
			s.seen[s.key(cands[i])] = outs[j]
			s.events += outs[j].events
		}
		// The first in order that shows, cached ones included.
		for i := lo; i < hi; i++ {
			if s.seen[s.key(cands[i])].shows {
				s.choose(cands[i])
				return i, nil
			}
		}
		lo = hi
	}
	return -1, nil
}

// run runs candidate c, cut short once its kind shows. A candidate whose node panics (an
// assertion of the node code) does not show the kind: it is logged and passed over. An error is
// the harness's (Run could not set the run up) and ends the shrink.
func (s *shrinker) run(c Config) (o outcome, err error) {
	c.StopAtKind, c.KindBeforeDrain = s.kind, s.beforeDrain
	defer func() {
		if v := recover(); v != nil {
			s.log("shrink candidate panicked", c, "panic", fmt.Sprint(v))
			o, err = outcome{}, nil
		}
	}()
	rep, err := Run(c, s.wallNow)
	if err != nil {
		return outcome{}, fmt.Errorf("shrink: candidate with %d faults over %v: %w", len(c.Plan), c.Duration, err)
	}
	o.at, o.shows = firstAt(rep, s.kind)
	o.events = rep.Events
	return o, nil
}

func (s *shrinker) log(msg string, c Config, args ...any) {
	if s.logger != nil {
		s.logger.Warn(msg, append([]any{"seed", c.Seed, "faults", len(c.Plan), "duration", c.Duration}, args...)...)
	}
}

// duration shortens the run, down to whole seconds above floor, while it still shows the kind
// (the plan cut to the faults that strike by then). When the best run showed the kind before
// its workload ended (Violation.At), it first tries the run up to a second past that instant:
// the run needs little more, and that one run drops every later fault at once. Otherwise, or
// if that does not fail, it bisects.
func (s *shrinker) duration(floor time.Duration) error {
	lo := floor.Truncate(time.Second) // not known to fail
	if cut := s.bestAt.Truncate(time.Second) + time.Second; cut > lo && cut < s.best.Duration && !s.out() {
		if shows, err := s.try(s.cut(cut)); err != nil || shows {
			return err
		}
	}
	for s.best.Duration-lo > time.Second && !s.out() {
		mid := (lo + (s.best.Duration-lo)/2).Truncate(time.Second)
		if mid <= lo {
			mid = lo + time.Second
		}
		shows, err := s.try(s.cut(mid))
		if err != nil {
			return err
		}
		if !shows {
			lo = mid
		}
	}
	return nil
}

// cut is the best configuration ended at d, its plan cut to the faults that strike by then.
func (s *shrinker) cut(d time.Duration) Config {
	c := s.best
	c.Duration = d
	c.Plan = within(s.best.Plan, d)
	return c
}

// shift moves the whole plan earlier, and the end of the run with it, bisecting on whole
// seconds for the largest move that still fails: a fault late in a long run often needs only
// a cluster that has warmed up, not the minutes before it. The bisection stops once what is
// left to gain is at most a sixteenth of the run (shiftPrecision): the last few runs of a
// bisection buy a few seconds, and a failure that needs its whole run wastes them.
func (s *shrinker) shift() error {
	if len(s.best.Plan) == 0 {
		return nil
	}
	base := s.best
	first := base.Plan[0].At
	for _, f := range base.Plan {
		first = min(first, f.At)
	}
	lo, hi := time.Duration(0), first.Truncate(time.Second)+time.Second // lo fails; hi is not known to
	for hi-lo > max(time.Second, base.Duration/shiftPrecision) && !s.out() {
		mid := (lo + (hi-lo)/2).Truncate(time.Second)
		if mid <= lo {
			mid = lo + time.Second
		}
		c := base
		c.Duration = base.Duration - mid
		c.Plan = make([]faults.Fault, len(base.Plan))
		for i, f := range base.Plan {
			f.At -= mid
			c.Plan[i] = f
		}
		shows, err := s.try(c)
		if err != nil {
			return err
		}
		if shows {
			lo = mid
		} else {
			hi = mid
		}
	}
	return nil
}

// shiftPrecision is the fraction of the run (its reciprocal) below which shift stops bisecting.
const shiftPrecision = 16

// tail bisects for the fewest of the best plan's latest faults (by strike time) that still
// fail alone, the earlier faults dropped: k faults fail, and fewer than lo are not known to.
// Failing is often not monotone in the faults kept (a failure may need two late faults, and
// an earlier one whose absence changes the run), so this finds a short tail, not always the
// shortest; ddmin goes on from there.
func (s *shrinker) tail() error {
	times := make([]time.Duration, len(s.best.Plan))
	for i, f := range s.best.Plan {
		times[i] = f.At
	}
	slices.Sort(times)
	lo, k := 0, len(times)
	for k-lo > 1 && !s.out() {
		mid := lo + (k-lo)/2
		from := times[len(times)-mid] // keep the faults striking from here on: mid, or more on a tie
		c := s.with(slices.DeleteFunc(slices.Clone(s.best.Plan), func(f faults.Fault) bool { return f.At < from }))
		if len(c.Plan) >= k {
			lo = mid // a tie keeps them all: nothing to learn
			continue
		}
		shows, err := s.try(c)
		if err != nil {
			return err
		}
		if shows {
			k = len(c.Plan)
		} else {
			lo = mid
		}
	}
	return nil
}

// plan shrinks the best plan by ddmin.
func (s *shrinker) plan() error {
	if len(s.best.Plan) == 0 {
		return nil
	}
	if shows, err := s.try(s.with([]faults.Fault{})); err != nil || shows {
		return err
	}
	n := 2
	for len(s.best.Plan) >= 2 && !s.out() {
		plan := s.best.Plan
		chunks := split(plan, n)
		// Remove a chunk: a failure that needs few faults survives most removals.
		cands := make([]Config, 0, n)
		for i := range chunks {
			cands = append(cands, s.with(without(chunks, i)))
		}
		i, err := s.first(cands)
		if err != nil {
			return err
		}
		if i >= 0 {
			n = max(n-1, 2)
			continue
		}
		// Keep a chunk alone (with two chunks, that was a removal). Single faults too: a lone
		// fault may fail where the plan less any one fault does not (recovery-drops-last's
		// crash), though 1-minimality needs only the removals.
		if n > 2 {
			cands = cands[:0]
			for _, ch := range chunks {
				cands = append(cands, s.with(ch))
			}
			if i, err = s.first(cands); err != nil {
				return err
			}
			if i >= 0 {
				n = 2
				continue
			}
		}
		if n >= len(plan) {
			break // 1-minimal: no single fault can go
		}
		n = min(2*n, len(plan))
	}
	return nil
}

// with is the best configuration with plan as its fault plan.
func (s *shrinker) with(plan []faults.Fault) Config {
	c := s.best
	c.Plan = plan
	return c
}

// workload switches the optional flows off and lowers the producers and consumers to one.
func (s *shrinker) workload() error {
	if f := s.best.Flows; f != nil && *f != flowsOff(*f) {
		c := s.best
		off := flowsOff(*f)
		c.Flows = &off
		shows, err := s.try(c)
		if err != nil {
			return err
		}
		if !shows {
			for _, off := range flowSwitches {
				cur := *s.best.Flows
				next := cur
				off(&next)
				if next == cur {
					continue
				}
				c := s.best
				c.Flows = &next
				if _, err := s.try(c); err != nil {
					return err
				}
			}
		}
	}
	for _, set := range []func(*Config){
		func(c *Config) { c.Producers = 1 },
		func(c *Config) { c.Consumers = 1 },
	} {
		c := s.best
		set(&c)
		if s.key(c) == s.key(s.best) || namesDroppedClient(c.Plan, s.best, c) {
			continue // nothing to try, or a fault aims at a client the smaller run lacks
		}
		if _, err := s.try(c); err != nil {
			return err
		}
	}
	return nil
}

// namesDroppedClient reports whether plan names a producer or consumer that from has and to
// does not (a run whose plan names a node it lacks is not a run: Run refuses it).
func namesDroppedClient(plan []faults.Fault, from, to Config) bool {
	gone := map[string]bool{}
	for i := to.Producers; i < from.Producers; i++ {
		gone[ProducerAddr(i)] = true
	}
	for i := to.Consumers; i < from.Consumers; i++ {
		gone[ConsumerAddr(i)] = true
	}
	for _, f := range plan {
		for _, n := range slices.Concat([]string{f.Node}, f.Nodes, f.Peers) {
			if gone[n] {
				return true
			}
		}
	}
	return false
}

// flowSwitches each switch one optional flow off.
var flowSwitches = []func(*Flows){
	func(f *Flows) { f.Batch = false },
	func(f *Flows) { f.Delay = false },
	func(f *Flows) { f.Transactions = false },
	func(f *Flows) { f.Retry = false },
	func(f *Flows) { f.Orderly = false },
	func(f *Flows) { f.FromTime = false },
	func(f *Flows) { f.SQL92 = false },
}

// flowsOff is f with every optional flow off (their parameters kept).
func flowsOff(f Flows) Flows {
	for _, off := range flowSwitches {
		off(&f)
	}
	return f
}

// within is the part of plan that strikes before d.
func within(plan []faults.Fault, d time.Duration) []faults.Fault {
	out := []faults.Fault{}
	for _, f := range plan {
		if f.At < d {
			out = append(out, f)
		}
	}
	return out
}

// lastStrike is when the last fault of plan strikes (0 for none).
func lastStrike(plan []faults.Fault) time.Duration {
	var last time.Duration
	for _, f := range plan {
		last = max(last, f.At)
	}
	return last
}

// split cuts plan into n chunks of nearly equal length, in order (n <= len(plan)).
func split(plan []faults.Fault, n int) [][]faults.Fault {
	var out [][]faults.Fault
	for i := 0; i < n; i++ {
		out = append(out, plan[i*len(plan)/n:(i+1)*len(plan)/n])
	}
	return out
}

// without is every chunk but chunks[i], concatenated in order.
func without(chunks [][]faults.Fault, i int) []faults.Fault {
	out := []faults.Fault{}
	for j, ch := range chunks {
		if j != i {
			out = append(out, ch...)
		}
	}
	return out
}
