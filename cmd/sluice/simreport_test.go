package main

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/sim/cluster"
	"github.com/sluicemq/sluice/sim/report"
)

// TestSimPrintsReport: a failing seed's output keeps its text (violations, visualisation,
// replay) and adds the path of its HTML report, which exists in --viz-dir and shows the same
// replay command.
func TestSimPrintsReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sluice binary and a simulation")
	}
	plant, err := cluster.LookupPlant("ack-before-sync", cluster.SingleBroker)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(sluiceBinary(t), "sim", "--topology", "single", "--plant", plant.Name,
		"--seed", fmt.Sprint(plant.CaughtAt), "--viz-dir", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("sluice sim exited with %v, want 1 (a violation); stderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	want := filepath.Join(dir, report.FileName(cluster.SingleBroker, plant.CaughtAt))
	var replay string
	for _, line := range strings.Split(out, "\n") {
		if r, ok := strings.CutPrefix(line, "  replay: "); ok {
			replay = r
		}
	}
	for _, part := range []string{"  violation: lost acknowledged message: ", "  visualisation: ", "  report: " + want + "\n"} {
		if !strings.Contains(out, part) {
			t.Errorf("output lacks %q:\n%s", part, out)
		}
	}
	page, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if replay == "" || !strings.Contains(string(page), ">"+html.EscapeString(replay)+"</pre>") {
		t.Errorf("the report does not show the replay command %q", replay)
	}
}
