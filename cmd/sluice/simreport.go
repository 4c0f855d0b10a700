package main

import (
	"fmt"
	"os"
	"time"

	"github.com/sluicemq/sluice/sim/cluster"
	"github.com/sluicemq/sluice/sim/report"
)

// writeSimReport writes the HTML failure report (package sim/report) of a failing run into
// dir (the temp directory when dir is empty) and returns its path. After shrinking
// (shrunkFrom > 0: the plan's faults before), it runs the shrunk configuration once more, so
// that the report and the Porcupine pages it embeds are that run's, whatever the shrinker's
// later tries wrote over them, and says so if the replay no longer fails.
func writeSimReport(dir string, cfg cluster.Config, rep *cluster.Report, replay, planFile string, shrunkFrom int) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	if shrunkFrom > 0 {
		again, err := cluster.Run(cfg, time.Now)
		if err != nil {
			return "", fmt.Errorf("replay the shrunk run: %w", err)
		}
		if len(again.Violations) == 0 {
			return "", fmt.Errorf("the shrunk run of seed %d did not fail again on replay (trace %016x, the shrinker's %016x)", cfg.Seed, again.TraceHash, rep.TraceHash)
		}
		rep = again
	}
	return report.Write(dir, report.Input{Config: cfg, Report: rep, Replay: replay, PlanFile: planFile, OriginalFaults: shrunkFrom})
}
