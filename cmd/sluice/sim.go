package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/scenarios"
	"github.com/sluicemq/sluice/sim/cluster"
)

func runSim(args []string) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "seed of the (first) run")
	seeds := fs.Int("seeds", 1, "number of consecutive seeds to run, starting at --seed")
	duration := fs.Duration("duration", 60*time.Second, "simulated duration of the workload")
	flush := fs.String("flush", "sync", "broker flush mode: sync or async")
	plant := fs.String("plant", "", "planted bug to switch on (test only): ack-before-sync")
	vizDir := fs.String("viz-dir", os.TempDir(), "where Porcupine's visualisation of a violation is written")
	verbose := fs.Bool("v", false, "log node events to stderr")
	scenario := fs.String("scenario", "", "run a named scenario instead of a swarm-drawn fault mix ('list' lists them)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	if fs.Parse(args) != nil {
		return 2
	}
	mode, err := brokernode.ParseFlushMode(*flush)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice sim:", err)
		return 2
	}
	if *plant != "" && *plant != "ack-before-sync" {
		fmt.Fprintf(os.Stderr, "sluice sim: unknown planted bug %q (known: ack-before-sync)\n", *plant)
		return 2
	}
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
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
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
	failed := 0
	start := time.Now()
	for i := 0; i < *seeds; i++ {
		cfg := cluster.DefaultConfig(*seed + uint64(i))
		if sc != nil {
			cfg = sc.Config(*seed + uint64(i))
		}
		cfg.Duration = *duration
		cfg.FlushMode = mode
		cfg.PlantAckBeforeSync = *plant == "ack-before-sync"
		cfg.VizDir = *vizDir
		cfg.Logger = logger
		rep, err := cluster.Run(cfg, time.Now)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice sim: seed %d: %v\n", cfg.Seed, err)
			return 1
		}
		fmt.Println(rep.Summary())
		if len(rep.Violations) > 0 {
			failed++
			for _, v := range rep.Violations {
				fmt.Printf("  violation: %s: %s\n", v.Kind, v.Detail)
			}
			if rep.VizPath != "" {
				fmt.Printf("  visualisation: %s\n", rep.VizPath)
			}
			replay := fmt.Sprintf("sluice sim --seed %d --duration %v --flush %s", cfg.Seed, cfg.Duration, mode)
			if *plant != "" {
				replay += " --plant " + *plant
			}
			if sc != nil {
				replay += " --scenario " + sc.Name
			}
			fmt.Println("  replay:", replay)
		}
	}
	if *seeds > 1 {
		el := time.Since(start)
		fmt.Printf("seeds=%d failed=%d wall=%v seeds/min=%.1f\n", *seeds, failed, el.Round(time.Millisecond),
			float64(*seeds)/el.Minutes())
	}
	if failed > 0 {
		return 1
	}
	return 0
}
