package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/scenarios"
	"github.com/sluicemq/sluice/sim/cluster"
	"github.com/sluicemq/sluice/sim/report"
)

func runSim(args []string) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "seed of the (first) run")
	seeds := fs.Int("seeds", 1, "number of consecutive seeds to run, starting at --seed")
	duration := fs.Duration("duration", 60*time.Second, "simulated duration of the workload")
	flush := fs.String("flush", "sync", "broker flush mode: sync or async")
	plant := fs.String("plant", "", "planted bug to switch on (test only; 'list' lists them)")
	topology := fs.String("topology", "single", "cluster shape: single (one name server, one broker) or groups (3 name servers with controllers, 2 broker groups of 3 replicas)")
	replication := fs.String("replication", "sync", "with --topology groups: sync or async replication")
	vizDir := fs.String("viz-dir", os.TempDir(), "where Porcupine's visualisation of a violation is written")
	verbose := fs.Bool("v", false, "log node events to stderr")
	scenario := fs.String("scenario", "", "run a named scenario instead of a swarm-drawn fault mix ('list' lists them)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	shrink := fs.Bool("shrink", false, "on a violation, search for a smaller fault plan, duration and workload that fail with the same violation kind")
	shrinkRuns := fs.Int("shrink-runs", cluster.DefaultShrinkRuns, "with --shrink: the most candidate runs the search may make")
	shrinkWall := fs.Duration("shrink-wall", 0, "with --shrink: the most wall time the search may take (0: no limit); when it runs out the smallest failure found so far is kept, and the result then depends on the machine's speed")
	shrinkKind := fs.String("shrink-kind", "", "with --shrink: the violation kind to keep (default: the kind of the run's earliest violation)")
	stopFirst := fs.Bool("stop-on-violation", false, "stop at the first seed with a violation (for measuring how soon a planted bug is caught)")
	parallel := fs.Int("parallel", runtime.NumCPU(), "run this many seeds at once, each in a world of its own, and with --shrink this many candidate runs of the search at once (a seed's run, and a shrink's result, is the same at any value; output stays in seed order; Porcupine's time budget per run is multiplied by it, the worlds sharing the machine)")
	showProgress := fs.Bool("progress", false, "write a progress line to stderr every 10 s (on a terminal it is always shown, and kept up to date in place)")
	checkTimeout := fs.Duration("check-timeout", 0, "how long Porcupine may take per run before a queue is reported undecided (0: the topology's default)")
	planFile := fs.String("plan", "", "replay the fault plan in this JSON file (as written by --shrink) instead of drawing one, with the duration, producers, consumers and flows it fixes")
	rate := fs.Float64("rate", 0, "offered send load of the producers, in messages per second of simulated time (0: the default pacing, a send every 2 to 21 ms per producer with at most 8 in flight)")
	diskCapacity := fs.String("disk-capacity", "", "give each broker a simulated disk of this size (bytes, or e.g. 64MiB) and turn retention on: sends are refused above 90% full, the oldest segments go above 75%")
	retention := fs.Duration("retention", 0, "the brokers' fileReservedTime (turns retention on; default with --disk-capacity: 72h): segments older than this are deleted at the --delete-when hours")
	deleteWhen := fs.String("delete-when", "", "with retention on, the hours (0-23, ';' or ',' separated) at which expired segments are deleted (default: every hour)")
	mutants := fs.Bool("mutants", false, "run every planted bug of the catalogue ('--plant list') through --seeds seeds (default 200) from --seed, each until a check catches it, and print the mutation record: per bug, whether a check caught it, at which seed, and the violation kind (--topology, if given, picks one topology's bugs)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *rate < 0 || *rate != *rate {
		fmt.Fprintf(os.Stderr, "sluice sim: --rate %v: want a number of messages per second, at least 0 (0: the default pacing)\n", *rate)
		return 2
	}
	var capacity uint64
	var err error
	if *diskCapacity != "" {
		if capacity, err = parseByteSize(*diskCapacity); err != nil || capacity == 0 {
			fmt.Fprintf(os.Stderr, "sluice sim: --disk-capacity: %v\n", cmp.Or(err, errors.New("want more than 0 bytes")))
			return 2
		}
	}
	if *retention < 0 {
		fmt.Fprintf(os.Stderr, "sluice sim: --retention %v: want a positive duration\n", *retention)
		return 2
	}
	var hours []int
	if *deleteWhen != "" {
		if hours, err = parseHours(*deleteWhen); err != nil {
			fmt.Fprintln(os.Stderr, "sluice sim: --delete-when", err)
			return 2
		}
		if capacity == 0 && *retention == 0 {
			fmt.Fprintln(os.Stderr, "sluice sim: --delete-when needs --retention or --disk-capacity (retention is off without them)")
			return 2
		}
	}
	if *seeds < 1 {
		fmt.Fprintf(os.Stderr, "sluice sim: --seeds %d: want at least 1 (the number of seeds to run)\n", *seeds)
		return 2
	}
	if *shrinkRuns < 1 || *shrinkWall < 0 {
		fmt.Fprintf(os.Stderr, "sluice sim: --shrink-runs %d, --shrink-wall %v: want at least 1 run and a duration of at least 0 (0: no limit)\n", *shrinkRuns, *shrinkWall)
		return 2
	}
	if *parallel < 1 {
		fmt.Fprintf(os.Stderr, "sluice sim: --parallel %d: want at least 1 (the number of seeds run at once)\n", *parallel)
		return 2
	}
	mode, err := brokernode.ParseFlushMode(*flush)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice sim:", err)
		return 2
	}
	topo, err := cluster.ParseTopology(*topology)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice sim:", err)
		return 2
	}
	repl, err := brokernode.ParseReplicationMode(*replication)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice sim:", err)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	durationSet := set["duration"]
	var sc *scenarios.Scenario
	if *scenario == "list" {
		for _, s := range scenarios.All() {
			fmt.Printf("%-20s %s\n", s.Name, s.Covers)
		}
		return 0
	}
	if *scenario != "" {
		s, ok := scenarios.Lookup(*scenario)
		if !ok {
			fmt.Fprintf(os.Stderr, "sluice sim: unknown scenario %q ('--scenario list' lists them)\n", *scenario)
			return 2
		}
		sc = &s
		// The scenario fixes its topology (its plan names that topology's nodes); --topology,
		// which a replay command states, must agree with it.
		if own := s.Config(*seed).Topology; own != topo {
			if set["topology"] {
				fmt.Fprintf(os.Stderr, "sluice sim: scenario %s runs the %s topology, not %s\n", s.Name, own, topo)
				return 2
			}
			topo = own
		}
	}
	if *plant == "list" {
		width := 0
		for _, p := range cluster.Plants {
			width = max(width, len(p.Name))
		}
		for _, p := range cluster.Plants {
			fmt.Printf("%-*s %-7s %s\n", width, p.Name, p.Topology, p.Class)
		}
		return 0
	}
	if *plant != "" {
		p, err := cluster.LookupPlant(*plant, topo)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice sim:", err)
			return 2
		}
		if p.AsyncFlush {
			mode = brokernode.AsyncFlush // the bug lives there (cluster.Run does the same)
		}
	}
	var plan cluster.PlanFile
	if *planFile != "" {
		b, err := os.ReadFile(*planFile)
		if err == nil {
			plan, err = cluster.DecodePlanFile(b)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice sim:", err)
			return 2
		}
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice sim:", err)
			return 1
		}
		defer stop()
	}
	failed, failovers, lostAcked, lostObserved, redelivered, slavePulls, lostUnflushed := 0, 0, 0, 0, 0, 0, 0
	var resumeBehind int64
	var failoverTimes []time.Duration
	bitFlips, lostUnreadable := 0, 0
	var segmentsDeleted, refusedForSpace, consumersMoved int
	totals := map[faults.Kind]int{}
	start := time.Now()
	explicitPlan := *planFile != ""
	if os.Getenv("GOGC") == "" {
		// A world allocates fast and keeps little alive: collecting a fifth as often costs
		// memory (a few hundred MB a world), not time (GOGC set in the environment wins).
		debug.SetGCPercent(400)
		if total := totalMemory(); total > 0 && os.Getenv("GOMEMLIMIT") == "" {
			// A long run keeps its history alive (a 48 h run: gigabytes), where GOGC 400 would
			// let the heap grow to five times that: above half the machine's memory the
			// collector runs as often as it must instead.
			debug.SetMemoryLimit(int64(total / 2))
		}
	}
	if *verbose {
		*parallel = 1 // the logs of worlds run at once would interleave
	}
	if *mutants {
		return runSimMutants(fs, *seed, *seeds, *parallel, *topology, *vizDir, *checkTimeout)
	}
	// configFor is seed --seed + i's configuration; the sweep's workers call it at once, so it
	// only reads.
	configFor := func(i int) cluster.Config {
		cfg := cluster.DefaultConfig(*seed + uint64(i))
		switch {
		case sc != nil:
			cfg = sc.Config(*seed + uint64(i))
			if topo == cluster.BrokerGroups && set["replication"] {
				cfg.Replication = repl
			}
		case topo == cluster.BrokerGroups:
			cfg = cluster.GroupsConfig(*seed + uint64(i))
			cfg.Replication = repl
		}
		if topo == cluster.SingleBroker || durationSet {
			cfg.Duration = *duration
		}
		cfg.FlushMode = mode
		cfg.Rate = *rate
		cfg.DiskCapacity, cfg.Retention, cfg.DeleteWhen = capacity, *retention, hours
		cfg.Plant = *plant
		if *checkTimeout > 0 {
			cfg.CheckTimeout = *checkTimeout
		}
		cfg.VizDir = *vizDir
		cfg.Logger = logger
		if explicitPlan {
			plan.Apply(&cfg)
		}
		// Porcupine's budget is wall time: with P worlds sharing the machine each check gets
		// about 1/P of it, so a run that decides alone must not come out undecided here.
		cfg.CheckTimeout *= time.Duration(*parallel)
		return cfg
	}
	tally := newSweepTally(*seeds, start)
	var prog *progress
	if isTerminal(os.Stderr) {
		prog = &progress{w: os.Stderr, terminal: true, interval: 250 * time.Millisecond}
	} else if *showProgress {
		prog = &progress{w: os.Stderr, interval: 10 * time.Second}
	}
	finished := func(r seedRun) {
		tally.finished(r)
		prog.update(tally, time.Now(), false)
	}
	code := 0
	// emit reports one run, in seed order; false stops the sweep.
	emit := func(r seedRun) bool {
		i, cfg, rep, err := r.i, r.cfg, r.rep, r.err
		prog.clear()
		defer prog.update(tally, time.Now(), true)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice sim: seed %d: %v\n", cfg.Seed, err)
			code = 1
			return false
		}
		tally.emitted(r)
		replayPlan := *planFile
		fmt.Println(rep.Summary())
		for k, n := range rep.Faults {
			totals[k] += n
		}
		failovers += rep.Failovers
		failoverTimes = append(failoverTimes, rep.FailoverTimes...)
		lostAcked += rep.LostAcked
		lostObserved += rep.LostObserved
		lostUnflushed += rep.LostUnflushed
		redelivered += rep.Redelivered
		resumeBehind = max(resumeBehind, rep.ResumeBehindWorst)
		slavePulls += rep.SlavePulls
		bitFlips += rep.BitFlips
		lostUnreadable += rep.LostUnreadable
		segmentsDeleted += rep.SegmentsDeleted
		refusedForSpace += rep.SendsRefusedSpace
		consumersMoved += rep.OffsetsMoved
		if len(rep.Violations) > 0 {
			failed++
			for i, v := range rep.Violations {
				if i == 20 {
					fmt.Printf("  ... and %d more violations\n", len(rep.Violations)-i)
					break
				}
				fmt.Printf("  violation: %s: %s\n", v.Kind, v.Detail)
			}
			if rep.VizPath != "" {
				fmt.Printf("  visualisation: %s\n", rep.VizPath)
			}
			reportCfg, reportRep, shrunkFrom := cfg, rep, 0
			if *shrink {
				sh, err := cluster.ShrinkWithin(cfg, rep, time.Now, cluster.ShrinkLimits{Runs: *shrinkRuns, Wall: *shrinkWall, Kind: *shrinkKind, Parallel: *parallel})
				if err != nil {
					fmt.Fprintln(os.Stderr, "sluice sim:", err) // the error names the shrink
					code = 1
					return false
				}
				small := sh.Config
				path := filepath.Join(*vizDir, fmt.Sprintf("sluice-plan-seed%d.json", cfg.Seed))
				b, err := cluster.EncodePlanFile(small)
				if err == nil {
					err = os.WriteFile(path, b, 0o644)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "sluice sim: write shrunk plan:", err)
					code = 1
					return false
				}
				fmt.Printf("  shrunk: %d of %d faults, %v of workload, %d producers, %d consumers, still failing with %q (%d runs, %d simulated events, %v)\n",
					len(small.Plan), len(rep.Plan), small.Duration, small.Producers, small.Consumers, sh.Kind, sh.Runs, sh.Events, sh.Wall.Round(time.Millisecond))
				for _, st := range sh.Steps {
					fmt.Printf("    step: %s\n", st)
				}
				if sh.Exhausted != "" {
					fmt.Printf("  shrink stopped early: %s; the result may not be minimal (raise --shrink-runs or --shrink-wall)\n", sh.Exhausted)
				}
				for _, f := range small.Plan {
					fmt.Printf("    fault: %v\n", f)
				}
				cfg.Duration = small.Duration
				replayPlan = path
				reportCfg, reportRep, shrunkFrom = small, sh.Report, len(rep.Plan)
			}
			scenarioName := ""
			if sc != nil {
				scenarioName = sc.Name
			}
			replay := report.Replay(cfg, replayPlan, scenarioName)
			fmt.Println("  replay:", replay)
			if path, err := writeSimReport(*vizDir, reportCfg, reportRep, replay, replayPlan, shrunkFrom); err != nil {
				fmt.Fprintln(os.Stderr, "sluice sim: report:", err)
			} else {
				fmt.Println("  report:", path)
			}
			if *stopFirst {
				fmt.Printf("first violation at seed %d (%d seeds run)\n", cfg.Seed, i+1)
				*seeds = i + 1
				return false
			}
		}
		return true
	}
	runSeeds(*seeds, *parallel, configFor, time.Now, finished, emit)
	prog.clear()
	if code != 0 {
		return code
	}
	if *seeds > 1 {
		el := time.Since(start)
		var fk []string
		for _, k := range faults.Kinds {
			fk = append(fk, fmt.Sprintf("%s:%d", k, totals[k]))
		}
		groups := ""
		if topo == cluster.BrokerGroups {
			groups = fmt.Sprintf(" replication=%s failovers=%d failover-median=%v failover-worst=%v lost-acked=%d lost-observed=%d redelivered=%d resume-behind-worst=%d slave-pulls=%d",
				repl, failovers, cluster.Median(failoverTimes), cluster.Worst(failoverTimes), lostAcked, lostObserved, redelivered, resumeBehind, slavePulls)
		} else {
			groups = fmt.Sprintf(" flush=%s lost-unflushed=%d", mode, lostUnflushed)
		}
		if capacity > 0 || *retention > 0 {
			groups += fmt.Sprintf(" segments-deleted=%d sends-refused-for-space=%d consumers-moved=%d", segmentsDeleted, refusedForSpace, consumersMoved)
		}
		fmt.Printf("seeds=%d failed=%d faults=%s%s bit-flips=%d lost-unreadable=%d wall=%v seeds/min=%.1f\n", *seeds, failed, strings.Join(fk, ","), groups,
			bitFlips, lostUnreadable, el.Round(time.Millisecond), float64(*seeds)/el.Minutes())
		fmt.Print(tally.summaryTable(topo == cluster.BrokerGroups))
	}
	if failed > 0 {
		return 1
	}
	return 0
}
