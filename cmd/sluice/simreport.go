package main

import (
	"github.com/sluicemq/sluice/sim/cluster"
	"github.com/sluicemq/sluice/sim/report"
)

// writeSimReport writes the HTML failure report (package sim/report) of a failing run into
// dir and returns its path; shrunkFrom > 0 (the plan's faults before shrinking) says cfg is
// the shrinker's configuration, whose run the report replays.
func writeSimReport(dir string, cfg cluster.Config, rep *cluster.Report, replay, planFile string, shrunkFrom int) (string, error) {
	in := report.Input{Config: cfg, Report: rep, Replay: replay, PlanFile: planFile, OriginalFaults: shrunkFrom}
	if shrunkFrom > 0 {
		return report.WriteShrunk(dir, in)
	}
	return report.Write(dir, in)
}
