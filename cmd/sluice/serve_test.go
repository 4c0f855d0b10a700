package main

import (
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Bad transaction settings stop 'sluice dev' and 'sluice broker' before they start anything,
// with the usage exit code.
func TestTxnFlagsAreValidated(t *testing.T) {
	defer signal.Stop(stopSignals) // runDev and runBroker trap SIGINT and SIGTERM first thing
	for _, tc := range []struct {
		run  func([]string) int
		args []string
	}{
		{runDev, []string{"--txn-check-interval", "0s"}},
		{runDev, []string{"--txn-timeout", "-1s"}},
		{runDev, []string{"--txn-check-max", "0"}},
		{runBroker, []string{"--txn-check-interval", "-5s"}},
		{runBroker, []string{"--txn-timeout", "soon"}},
	} {
		if code := tc.run(tc.args); code != 2 {
			t.Errorf("%v: exit code %d, want 2", tc.args, code)
		}
	}
}

// A signal shuts the nodes down and exits 0; a second signal while the shutdown is stuck
// exits 1 at once instead of waiting for it.
func TestWaitForStopSignals(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	kill := func() {
		time.Sleep(50 * time.Millisecond)
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Error(err)
		}
	}
	var shutdowns atomic.Int32
	go kill()
	code := waitForStop(quiet, time.Second, stoppable{shutdown: func(time.Duration) error { shutdowns.Add(1); return nil }})
	if code != 0 || shutdowns.Load() != 1 {
		t.Fatalf("clean stop: exit %d after %d shutdowns, want 0 after 1", code, shutdowns.Load())
	}

	stuck := make(chan struct{})
	defer close(stuck)
	entered := make(chan struct{})
	go func() {
		kill()
		<-entered
		kill()
	}()
	start := time.Now()
	code = waitForStop(quiet, time.Minute, stoppable{shutdown: func(time.Duration) error { close(entered); <-stuck; return nil }})
	if code != 1 {
		t.Fatalf("second signal: exit %d, want 1", code)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("second signal took %v to exit", el)
	}
}
