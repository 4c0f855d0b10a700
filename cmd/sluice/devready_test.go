package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countdown is a node that is not ready for its first n answers.
func countdown(name string, n int64) (readyCheck, *atomic.Int64) {
	var asked atomic.Int64
	return readyCheck{name: name, ready: func() error {
		if asked.Add(1) <= n {
			return fmt.Errorf("%s still starting", name)
		}
		return nil
	}}, &asked
}

// waitReady returns once every node answers ready, having asked again the nodes that were not.
func TestDevWaitReadyWaitsForEveryNode(t *testing.T) {
	a, askedA := countdown("namesrv", 0)
	b, askedB := countdown("broker-a-2", 5)
	if err := waitReady([]readyCheck{a, b}, time.Minute, time.Millisecond, make(chan os.Signal, 1)); err != nil {
		t.Fatal(err)
	}
	if askedB.Load() != 6 || askedA.Load() != 6 {
		t.Errorf("asked namesrv %d times and broker-a-2 %d times, want 6 and 6 (every node each round, until one round finds all ready)",
			askedA.Load(), askedB.Load())
	}
}

// Past the timeout it names each node that is not ready and why, including one whose loop
// never answers, and not the ones that are.
func TestDevWaitReadyNamesTheNodesNotReady(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	checks := []readyCheck{
		{name: "namesrv", ready: func() error { return nil }},
		{name: "broker-a-1", ready: func() error { return errors.New("replica without a role yet") }},
		{name: "broker-a-2", ready: func() error { <-stuck; return nil }},
		{name: "broker-a-3", ready: func() error { return nil }},
	}
	err := waitReady(checks, 50*time.Millisecond, time.Millisecond, make(chan os.Signal, 1))
	want := "not ready after 50ms: broker-a-1: replica without a role yet; broker-a-2: did not answer (its event loop may be stuck); broker-a-3: not asked yet"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// A stop signal ends the wait and is left for waitForStop to act on.
func TestDevWaitReadyLeavesTheSignal(t *testing.T) {
	never := readyCheck{name: "broker-a", ready: func() error { return errors.New("recovering its store") }}
	signals := make(chan os.Signal, 2)
	signals <- syscall.SIGTERM
	if err := waitReady([]readyCheck{never}, time.Minute, time.Millisecond, signals); !errors.Is(err, errReadyInterrupted) {
		t.Fatalf("got %v, want errReadyInterrupted", err)
	}
	select {
	case sig := <-signals:
		if sig != syscall.SIGTERM {
			t.Errorf("got %v back, want SIGTERM", sig)
		}
	default:
		t.Error("the signal was consumed")
	}
}

// 'sluice dev --replicas 3' says it is ready, before "press Ctrl-C", only when its /readyz
// answers 200 (and 'sluice probe' of it exits 0): the controller has named a master and both
// slaves have caught up.
func TestDevSaysReadyWhenReadyzIs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	ns, br, metrics := freePortBlock(t, 2, devControllerPort), freePortBlock(t, 3, devReplicaPortStep), freePort(t)
	cmd := exec.Command(sluiceBinary(t), "dev", "--replicas", "3", "--data", t.TempDir(), "--namesrv-addr", ns,
		"--broker-addr", br, "--metrics-addr", metrics, "--log-level", "warn")
	lines := startLines(t, cmd)
	var before []string
	for {
		l := waitLine(t, lines, `^(.*)$`, 60*time.Second)
		before = append(before, l)
		if strings.HasPrefix(l, "sluice dev: ready") {
			break
		}
		if strings.Contains(l, "press Ctrl-C") || strings.Contains(l, "not ready after") {
			t.Fatalf("sluice dev did not say it is ready before %q:\n%s", l, strings.Join(before, "\n"))
		}
	}
	if code, body := getStatus("http://" + metrics + "/readyz"); code != http.StatusOK {
		t.Errorf("sluice dev said it is ready, but /readyz answers %d:\n%s", code, body)
	}
	// What the compose healthchecks run, against a real node.
	if out, err := exec.Command(sluiceBinary(t), "probe", "http://"+metrics+"/readyz").CombinedOutput(); err != nil {
		t.Errorf("sluice probe of a ready node: %v: %s", err, out)
	}
	waitLine(t, lines, `press Ctrl-C`, 5*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
