package main

// The sweep runner of 'sluice sim': seeds run in parallel worlds (each world single-threaded
// and deterministic, sharing nothing with the others, so a seed's trace is the same at any
// parallelism), results are handed on in seed order, a progress line is kept on stderr, and a
// summary table closes the sweep.

import (
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/sim/cluster"
)

// seedRun is one seed's run: its configuration and what cluster.Run returned.
type seedRun struct {
	i   int // index in the sweep: seed --seed + i
	cfg cluster.Config
	rep *cluster.Report
	err error
}

// runSeeds runs the configurations config(0) ... config(n-1) on parallel workers, each run a
// world of its own on one goroutine. Every finished run goes to done as it finishes (in any
// order), then to emit in index order; both are called on the calling goroutine, done first.
// When emit returns false no run after that one starts, the runs under way are waited for,
// and nothing more is handed on. config is called on the workers: it must only read.
func runSeeds(n, parallel int, config func(i int) cluster.Config, wallNow func() time.Time,
	done func(seedRun), emit func(seedRun) bool) {
	parallel = max(1, min(parallel, n))
	var next atomic.Int64
	var limit atomic.Int64 // runs at this index or after do not start
	limit.Store(int64(n))
	finished := make(chan seedRun, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= limit.Load() {
					return
				}
				cfg := config(int(i))
				rep, err := runRecovered(cfg, wallNow)
				finished <- seedRun{i: int(i), cfg: cfg, rep: rep, err: err}
			}
		}()
	}
	go func() { wg.Wait(); close(finished) }()

	pending := map[int]seedRun{}
	want, stopped := 0, false
	for r := range finished {
		if stopped {
			continue // a run that was under way when emit said stop
		}
		done(r)
		pending[r.i] = r
		for !stopped {
			r, ok := pending[want]
			if !ok {
				break
			}
			delete(pending, want)
			want++
			if !emit(r) {
				stopped = true
				limit.Store(int64(r.i + 1))
			}
		}
	}
}

// runPanic is a run that ended in a panic (a node's broken invariant, or a bug of the
// harness): no check judged it, so it is neither a pass nor a violation.
type runPanic struct {
	value any
	stack []byte
}

func (p *runPanic) Error() string { return fmt.Sprintf("panic: %v\n%s", p.value, p.stack) }

// runRecovered is cluster.Run, with a panic returned as a *runPanic error: one world's panic
// does not take the others of a parallel sweep down with it.
func runRecovered(cfg cluster.Config, wallNow func() time.Time) (rep *cluster.Report, err error) {
	defer func() {
		if v := recover(); v != nil {
			rep, err = nil, &runPanic{value: v, stack: debug.Stack()}
		}
	}()
	return cluster.Run(cfg, wallNow)
}

// sweepTally is what a sweep has seen so far: the progress line reads it while the sweep runs,
// and the summary table at the end.
type sweepTally struct {
	total   int
	started time.Time
	// done, failed and injected count the runs finished (in any order), the violating ones
	// among them and their faults: the progress line's figures.
	done, failed, injected int
	// The rest is of the runs reported (in seed order): the summary table's figures.
	reported  int
	faults    map[faults.Kind]int
	failovers int
	// failoverTimes are every failover's time to the new master's first acknowledgement.
	failoverTimes []time.Duration
	// violationSeeds lists, by violation kind, the seeds that had one, in seed order.
	violationSeeds map[string][]uint64
}

func newSweepTally(total int, started time.Time) *sweepTally {
	return &sweepTally{total: total, started: started, faults: map[faults.Kind]int{}, violationSeeds: map[string][]uint64{}}
}

// finished counts a run as it finishes (in any order).
func (t *sweepTally) finished(r seedRun) {
	t.done++
	if r.rep == nil {
		return
	}
	for _, n := range r.rep.Faults {
		t.injected += n
	}
	if len(r.rep.Violations) > 0 {
		t.failed++
	}
}

// emitted records a run's failovers and violations as it is reported (in seed order, so the
// seeds of each violation kind come out sorted).
func (t *sweepTally) emitted(r seedRun) {
	if r.rep == nil {
		return
	}
	t.reported++
	for k, n := range r.rep.Faults {
		t.faults[k] += n
	}
	t.failovers += r.rep.Failovers
	t.failoverTimes = append(t.failoverTimes, r.rep.FailoverTimes...)
	seen := map[string]bool{}
	for _, v := range r.rep.Violations {
		if !seen[v.Kind] {
			seen[v.Kind] = true
			t.violationSeeds[v.Kind] = append(t.violationSeeds[v.Kind], r.rep.Seed)
		}
	}
}

// progressLine is the live progress line: seeds done, seeds per minute, violations so far,
// faults exercised, and the time left at the pace so far.
func (t *sweepTally) progressLine(now time.Time) string {
	el := now.Sub(t.started)
	perMin := 0.0
	if el > 0 {
		perMin = float64(t.done) / el.Minutes()
	}
	eta := "?"
	if t.done > 0 {
		left := time.Duration(float64(el) / float64(t.done) * float64(t.total-t.done))
		eta = left.Round(time.Second).String()
	}
	return fmt.Sprintf("seeds %d/%d  %.1f seeds/min  violations %d  faults %d  ETA %s",
		t.done, t.total, perMin, t.failed, t.injected, eta)
}

// progress keeps the progress line on w: redrawn in place on a terminal, or a line at most
// every interval otherwise (for logs, with --progress).
type progress struct {
	w        io.Writer
	terminal bool
	interval time.Duration
	last     time.Time
	drawn    bool
}

// update redraws the line if interval has passed since the last time, or, on a terminal, if
// force is set (after other output took the line away).
func (p *progress) update(t *sweepTally, now time.Time, force bool) {
	if p == nil || !(force && p.terminal) && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s\x1b[K", t.progressLine(now))
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, t.progressLine(now))
}

// clear removes the line from a terminal before other output goes there.
func (p *progress) clear() {
	if p != nil && p.terminal && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// summaryTable is the table that closes a sweep: faults by kind, failovers and the
// percentiles of their times, violations by kind with their seeds.
func (t *sweepTally) summaryTable(groups bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "summary of %d seeds:\n", t.reported)
	fmt.Fprintf(&b, "  %-16s %8s\n", "fault kind", "injected")
	for _, k := range faults.Kinds {
		if t.faults[k] > 0 {
			fmt.Fprintf(&b, "  %-16s %8d\n", k, t.faults[k])
		}
	}
	if groups {
		fmt.Fprintf(&b, "  failovers %d", t.failovers)
		if len(t.failoverTimes) > 0 {
			s := slices.Sorted(slices.Values(t.failoverTimes))
			fmt.Fprintf(&b, ", time to the new master's first acknowledgement: p50 %v  p90 %v  p99 %v  max %v",
				roundMs(percentile(s, 50)), roundMs(percentile(s, 90)), roundMs(percentile(s, 99)), roundMs(s[len(s)-1]))
		}
		b.WriteString("\n")
	}
	// (Not "  violation...": scripts grep the runs' own "  violation:" lines.)
	if len(t.violationSeeds) == 0 {
		b.WriteString("  checks violated: none\n")
	} else {
		b.WriteString("  checks violated (kind, seeds):\n")
	}
	for _, k := range slices.Sorted(maps.Keys(t.violationSeeds)) {
		seeds := t.violationSeeds[k]
		var list []string
		for i, s := range seeds {
			if i == 20 {
				list = append(list, fmt.Sprintf("... %d more", len(seeds)-i))
				break
			}
			list = append(list, fmt.Sprint(s))
		}
		fmt.Fprintf(&b, "    %-34s %4d: %s\n", k, len(seeds), strings.Join(list, " "))
	}
	return b.String()
}

// roundMs rounds d to whole milliseconds, for the summary table.
func roundMs(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// percentile is the p-th percentile (nearest rank) of sorted, which must not be empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted) + 99) / 100 // ceil(p/100 * n), a rank from 1
	return sorted[max(i, 1)-1]
}
