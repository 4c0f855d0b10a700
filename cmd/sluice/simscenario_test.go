package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestSimScenarioReplays: a groups scenario runs its own topology without --topology, its
// failing run's replay command (which states --topology groups) replays the same run, and a
// --topology that contradicts the scenario is refused.
func TestSimScenarioReplays(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sluice binary and two simulations")
	}
	bin := sluiceBinary(t)
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"sim"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		code := 0
		var exit *exec.ExitError
		if err := cmd.Run(); errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String() + stderr.String(), code
	}
	firstLine := func(out, prefix string) string {
		for _, line := range strings.Split(out, "\n") {
			if r, ok := strings.CutPrefix(line, prefix); ok {
				return r
			}
		}
		return ""
	}

	dir := t.TempDir()
	out, code := run("--scenario", "split-brain", "--plant", "stale-master-acks", "--viz-dir", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the planted bug caught):\n%s", code, out)
	}
	replay, first := firstLine(out, "  replay: "), firstLine(out, "  violation: ")
	if !strings.HasPrefix(replay, "sluice sim --topology groups ") || !strings.Contains(replay, " --scenario split-brain") {
		t.Fatalf("replay command %q: want the groups topology and the scenario", replay)
	}
	again, code := run(append(strings.Fields(strings.TrimPrefix(replay, "sluice sim ")), "--viz-dir", dir)...)
	if code != 1 || firstLine(again, "  violation: ") != first {
		t.Fatalf("the replay (exit %d) did not show the first violation %q:\n%s", code, first, again)
	}

	if out, code := run("--scenario", "split-brain", "--topology", "single"); code != 2 || !strings.Contains(out, "runs the groups topology") {
		t.Errorf("--topology single with a groups scenario: exit %d, want 2 and a reason:\n%s", code, out)
	}
}
