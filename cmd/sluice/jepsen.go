package main

// sluice jepsen: the real-process fault harness (package faults/real) as a command. It is a
// subcommand of the one binary rather than a command of its own because the nodes it starts
// are this same binary: it runs its own executable in every namespace, so one build is all a
// run needs.

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/faults/real"
)

func runJepsen(args []string) int {
	fs := flag.NewFlagSet("jepsen", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "the first run's seed: it draws the fault schedule (the same seed replays the same schedule)")
	runs := fs.Int("runs", 1, "runs, of seeds seed, seed+1, ...")
	dur := fs.Duration("duration", 2*time.Minute, "each run's workload under faults (healing, the drain and the checks come after)")
	plant := fs.String("plant", "", "plant a bug of 'sluice sim --plant list' in every node (SLUICE_PLANT): the run should fail")
	dir := fs.String("dir", "", "where runs keep data, node logs and visualisations (default: a new temporary directory)")
	schedOnly := fs.Bool("schedule", false, "print the schedules of the seeds and exit")
	level := fs.String("log-level", "warn", "the harness's log level")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: sluice jepsen [flags]\n\nRuns real Sluice processes (3 name servers with controllers, 2 broker groups of 3, sync\nreplication), each in its own network namespace, under a fault schedule drawn from a seed,\nand checks the recorded history with the simulator's checks. Needs root.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *schedOnly {
		for i := range *runs {
			real.Draw(*seed+uint64(i), *dur).Print(os.Stdout)
		}
		return 0
	}
	logger, err := newLogger(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := real.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "sluice jepsen: cannot run here: %v\n", err)
		return 2
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice jepsen: %v\n", err)
		return 2
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "sluice-jepsen-"); err != nil {
			fmt.Fprintf(os.Stderr, "sluice jepsen: %v\n", err)
			return 2
		}
	}
	// A first SIGINT or SIGTERM ends the current run early (it still heals, checks and removes
	// its namespaces and processes) and runs no more; the signal's default comes back for a
	// second.
	interrupt := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		signal.Stop(sigs)
		close(interrupt)
	}()
	failed, violations, errored := 0, 0, 0
	applied, skipped, fail := map[faults.Kind]int{}, map[faults.Kind]int{}, map[string]int{}
	for i := range *runs {
		select {
		case <-interrupt:
			fmt.Println("interrupted")
			return 1
		default:
		}
		s := *seed + uint64(i)
		cfg := real.Config{Binary: bin, Dir: filepath.Join(*dir, fmt.Sprintf("seed-%d", s)), Seed: s, Duration: *dur, Plant: *plant,
			Logger: logger, Interrupt: interrupt}
		sched := real.Draw(s, *dur)
		sched.Print(os.Stdout)
		rep, err := real.Run(cfg)
		if err != nil {
			errored++
			fmt.Printf("ERROR seed=%d: %v (node logs in %s)\n", s, err, cfg.Dir)
			continue
		}
		rep.Print(os.Stdout)
		if rep.Failed() {
			failed++
			fmt.Printf("  node logs and visualisations in %s; replay the schedule with: sluice jepsen --seed %d --duration %v\n", cfg.Dir, s, *dur)
		}
		violations += len(rep.Violations)
		for k, n := range rep.Applied {
			applied[k] += n
		}
		for k, n := range rep.Skipped {
			skipped[k] += n
		}
		for g, n := range rep.Failovers {
			fail[g] += n
		}
	}
	fmt.Printf("\nsummary: %d runs of %v, %d failed, %d could not run, %d violations\n", *runs, *dur, failed, errored, violations)
	fmt.Printf("  faults applied: %s\n  faults skipped: %s\n  failovers: %s\n", kindList(applied), kindList(skipped), groupList(fail))
	if failed > 0 || errored > 0 {
		return 1
	}
	return 0
}

func kindList(m map[faults.Kind]int) string {
	out := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out += fmt.Sprintf("%s %d  ", k, m[k])
	}
	return out
}

func groupList(m map[string]int) string {
	out := ""
	for _, g := range slices.Sorted(maps.Keys(m)) {
		out += fmt.Sprintf("%s %d  ", g, m[g])
	}
	return out
}
