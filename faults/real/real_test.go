package real

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// needCluster skips the test, with the reason logged, where the harness cannot run (not root,
// no namespaces, -short); under CI as root it must run, so there it fails instead.
func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: starts a real cluster for about 90 s")
	}
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("CI runs as root, so the real-process fault run must run: %v", err)
		}
		t.Skipf("skipped: the real-process fault harness cannot run here: %v", err)
	}
}

// buildSluice builds the sluice binary the nodes run, with disk faults on (-tags faultinject).
func buildSluice(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-tags", "faultinject", "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sluice: %v\n%s", err, out)
	}
	return bin
}

// TestRealClusterUnderFaults is make test's short real-process run: one schedule of about
// 60 s against real processes in namespaces, sync replication, checked by the simulator's
// checks, which must find nothing; and the run must have struck faults and failed over.
func TestRealClusterUnderFaults(t *testing.T) {
	needCluster(t)
	bin := buildSluice(t)
	dir := t.TempDir()
	rep, err := Run(Config{Binary: bin, Dir: dir, Seed: 1, Duration: 60 * time.Second, Logger: testLogger(t)})
	var out bytes.Buffer
	rep.Schedule.Print(&out)
	rep.Print(&out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("the run could not be made: %v", err)
	}
	if rep.Failed() {
		keepLogs(t, dir)
		t.Fatalf("violations under real faults (seed %d; replay: sluice jepsen --seed %d --duration 60s)", rep.Seed, rep.Seed)
	}
	if rep.Sends[1] == 0 || rep.Drained == 0 {
		t.Fatalf("no acknowledged sends or nothing drained: the run checked nothing")
	}
	if rep.Applied[faults.Crash] == 0 || rep.Applied[faults.Partition] == 0 {
		t.Fatalf("faults applied %v: the schedule struck no crash or no partition", rep.Applied)
	}
	if f := rep.Failovers; f["broker-a"]+f["broker-b"] == 0 {
		t.Fatalf("no failover in a run with master crashes")
	}
}

// keepLogs copies the node logs of a failed run next to the test's output.
func keepLogs(t *testing.T, dir string) {
	dst, err := os.MkdirTemp("", "sluice-jepsen-failed-")
	if err != nil {
		return
	}
	if err := exec.Command("cp", "-r", dir+"/.", dst).Run(); err == nil {
		t.Logf("node logs and visualisations kept in %s", dst)
	}
}
