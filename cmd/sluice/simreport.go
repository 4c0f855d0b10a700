package main

import (
	"github.com/sluicemq/sluice/sim/cluster"
	"github.com/sluicemq/sluice/sim/report"
)

// writeSimReport writes the HTML failure report (package sim/report) of a failing run into
// dir and returns its path; shrunkFrom > 0 (the plan's faults before shrinking) says cfg and
// rep are the shrinker's (its final full run of the smallest failure, whose Porcupine pages
// the report embeds).
func writeSimReport(dir string, cfg cluster.Config, rep *cluster.Report, replay, planFile string, shrunkFrom int) (string, error) {
	return report.Write(dir, report.Input{Config: cfg, Report: rep, Replay: replay, PlanFile: planFile, OriginalFaults: shrunkFrom})
}
