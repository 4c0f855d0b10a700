package diskfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/node"
)

func TestParseFaultSpec(t *testing.T) {
	const text = "seed=7,slow-fsync=50ms@0.1,fail-fsync=0.01,fail-write=0.001,nospace-write=0.002,while=/tmp/x"
	spec, err := ParseFaultSpec(text)
	if err != nil {
		t.Fatal(err)
	}
	want := FaultSpec{Seed: 7, SlowFsync: 50 * time.Millisecond, SlowFsyncP: 0.1, FailFsyncP: 0.01,
		FailWriteP: 0.001, NoSpaceWriteP: 0.002, While: "/tmp/x"}
	if spec != want {
		t.Fatalf("ParseFaultSpec = %+v, want %+v", spec, want)
	}
	if spec.String() != text {
		t.Errorf("String = %q, want %q", spec.String(), text)
	}
	if spec, err := ParseFaultSpec(" fail-fsync=1 "); err != nil || spec != (FaultSpec{Seed: 1, FailFsyncP: 1}) {
		t.Errorf("the seed defaults to 1: %+v %v", spec, err)
	}
	for _, bad := range []string{"fail-fsync", "fail-fsync=2", "fail-write=-0.1", "slow-fsync=50ms",
		"slow-fsync=soon@0.5", "seed=x", "while=", "explode=1"} {
		if _, err := ParseFaultSpec(bad); err == nil {
			t.Errorf("ParseFaultSpec(%q) succeeded", bad)
		}
	}
}

// The same seed draws the same faults in the same order; another seed draws others.
func TestFaultsRepeatableFromTheSeed(t *testing.T) {
	draws := func(seed uint64) []bool {
		f := NewFaults(FaultSpec{Seed: seed, FailFsyncP: 0.3})
		var out []bool
		for range 200 {
			out = append(out, f.beforeFsync("f", quietLogger) != nil)
		}
		if got := f.Counts().FailedFsyncs; got < 30 || got > 90 {
			t.Errorf("seed %d: %d of 200 fsyncs failed at probability 0.3", seed, got)
		}
		return out
	}
	if a, b := draws(7), draws(7); !reflect.DeepEqual(a, b) {
		t.Error("seed 7 drew different faults twice")
	}
	if reflect.DeepEqual(draws(7), draws(8)) {
		t.Error("seeds 7 and 8 drew the same faults")
	}
}

// openFaultyLog opens log "cl" on a new disk with faults spec, and appends and syncs entries
// 1..n (with no fault armed: spec.While names a file that does not exist yet).
func openFaultyLog(t *testing.T, spec FaultSpec, n uint64) (dir string, l node.Log, f *Faults) {
	t.Helper()
	dir = t.TempDir()
	f = NewFaults(spec)
	d, err := Open(dir, Options{Logger: quietLogger, Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	if l, err = d.OpenLog("cl"); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ {
		if _, err := l.Append(faultPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync with faults disarmed: %v", err)
	}
	return dir, l, f
}

func arm(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A failed fsync is what a real one is to the log: the Sync fails with EIO and ErrSyncLost,
// and the log never syncs again; what was synced before survives a reopen.
func TestInjectedFsyncFailure(t *testing.T) {
	while := filepath.Join(t.TempDir(), "armed")
	dir, l, f := openFaultyLog(t, FaultSpec{Seed: 1, FailFsyncP: 1, While: while}, 20)
	arm(t, while)
	l.Append(faultPayload(21))
	err := l.Sync()
	if !errors.Is(err, syscall.EIO) || !errors.Is(err, node.ErrSyncLost) || !errors.Is(err, node.ErrIO) {
		t.Fatalf("Sync with a failing fsync: %v, want EIO, ErrIO and ErrSyncLost", err)
	}
	os.Remove(while)
	if err := l.Sync(); !errors.Is(err, node.ErrSyncLost) {
		t.Fatalf("Sync after a failed fsync: %v, want it to stay lost", err)
	}
	if got := f.Counts(); got.FailedFsyncs != 1 {
		t.Errorf("counts %+v, want one failed fsync", got)
	}
	l.Close()
	l2, err := openDisk(t, dir, 0).OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.LastIndex() < 20 {
		t.Fatalf("after reopening: last %d, want the 20 synced entries", l2.LastIndex())
	}
	checkIntact(t, l2, 1, l2.LastIndex())
}

// A failed write fails the log (ErrIO, as a real EIO from write does); a short write for lack
// of space is recovered in place once the fault stops, as on a full disk.
func TestInjectedWriteFailures(t *testing.T) {
	while := filepath.Join(t.TempDir(), "armed")
	_, l, f := openFaultyLog(t, FaultSpec{Seed: 1, FailWriteP: 1, While: while}, 10)
	arm(t, while)
	l.Append(faultPayload(11))
	if err := l.Sync(); !errors.Is(err, syscall.EIO) || !errors.Is(err, node.ErrIO) {
		t.Fatalf("Sync after a failing write: %v, want EIO", err)
	}
	os.Remove(while)
	if err := l.Sync(); err == nil {
		t.Fatal("a log whose write failed synced again")
	}
	if f.Counts().FailedWrites != 1 {
		t.Errorf("counts %+v", f.Counts())
	}
	l.Close()

	while = filepath.Join(t.TempDir(), "armed")
	dir, l, f := openFaultyLog(t, FaultSpec{Seed: 1, NoSpaceWriteP: 1, While: while}, 10)
	arm(t, while)
	l.Append(faultPayload(11))
	if err := l.Sync(); !errors.Is(err, node.ErrNoSpace) {
		t.Fatalf("Sync after a short write: %v, want ErrNoSpace", err)
	}
	checkIntact(t, l, 1, 11)
	os.Remove(while)
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync once the fault stopped: %v", err)
	}
	if f.Counts().NoSpaceWrites == 0 {
		t.Errorf("counts %+v", f.Counts())
	}
	l.Close()
	l2, err := openDisk(t, dir, 0).OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	checkIntact(t, l2, 1, 11)
}

// A slow fsync stalls the Sync by its delay and succeeds.
func TestInjectedSlowFsync(t *testing.T) {
	while := filepath.Join(t.TempDir(), "armed")
	_, l, f := openFaultyLog(t, FaultSpec{Seed: 1, SlowFsync: 100 * time.Millisecond, SlowFsyncP: 1, While: while}, 5)
	defer l.Close()
	arm(t, while)
	l.Append(faultPayload(6))
	start := time.Now()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("a slow fsync took %v, want at least 100ms", took)
	}
	if f.Counts().SlowFsyncs != 1 {
		t.Errorf("counts %+v", f.Counts())
	}
	checkIntact(t, l, 1, 6)
}
