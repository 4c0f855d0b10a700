package diskfile

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/sluicemq/sluice/broker/node"
)

// TestRebase: a rebased log is empty at its new first index, appends continue from there, and
// a reopen finds the same, forwards (over several segments) and backwards alike.
func TestRebase(t *testing.T) {
	for _, to := range []uint64{500, 3} {
		dir := t.TempDir()
		d := openDisk(t, dir, 1<<10)
		l, err := d.OpenLog("cl")
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(1); i <= 40; i++ {
			if _, err := l.Append(faultPayload(i)); err != nil {
				t.Fatal(err)
			}
			if i == 30 {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := l.TruncateFront(10); err != nil {
			t.Fatal(err)
		}
		if err := l.(node.Rebaser).Rebase(to); err != nil {
			t.Fatalf("Rebase(%d): %v", to, err)
		}
		check := func(l node.Log, last uint64) {
			t.Helper()
			if l.FirstIndex() != to || l.LastIndex() != last {
				t.Fatalf("rebased to %d: log holds %d..%d, want %d..%d", to, l.FirstIndex(), l.LastIndex(), to, last)
			}
			for i := to; i <= last; i++ {
				if b, err := l.Read(i); err != nil || string(b) != string(faultPayload(i)) {
					t.Fatalf("read %d: %q %v", i, b, err)
				}
			}
			if _, err := l.Read(to - 1); to > 1 && !errors.Is(err, node.ErrNotFound) {
				t.Fatalf("read %d below the rebased log: %v", to-1, err)
			}
		}
		check(l, to-1)
		for i := to; i < to+30; i++ {
			if got, err := l.Append(faultPayload(i)); err != nil || got != i {
				t.Fatalf("append after the rebase: %d %v, want %d", got, err, i)
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		check(l, to+29)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = openDisk(t, dir, 1<<10).OpenLog("cl")
		if err != nil {
			t.Fatal(err)
		}
		check(l, to+29)
		l.Close()
	}
}

// TestFailedFsyncIsLost: a failed fsync is reported with node.ErrSyncLost and every later sync
// fails the same way, even once the disk would sync again (the kernel may have dropped the
// pages); reopening the log recovers what the files hold.
func TestFailedFsyncIsLost(t *testing.T) {
	fail := true
	testSyncFault = func(_ *Log, f *os.File) error {
		if fail {
			return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
		}
		return nil
	}
	t.Cleanup(func() { testSyncFault = nil })
	dir := t.TempDir()
	d := openDisk(t, dir, 0)
	l, err := d.OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(faultPayload(1)); err != nil {
		t.Fatal(err)
	}
	err = l.Sync()
	if !errors.Is(err, node.ErrSyncLost) || !errors.Is(err, syscall.EIO) || !errors.Is(err, node.ErrIO) {
		t.Fatalf("failed fsync: %v, want EIO and node.ErrSyncLost", err)
	}
	fail = false
	if err := l.Sync(); !errors.Is(err, node.ErrSyncLost) {
		t.Fatalf("sync after a failed fsync: %v, want node.ErrSyncLost again", err)
	}
	l.Close()
	if l, err = openDisk(t, dir, 0).OpenLog("cl"); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Sync(); err != nil {
		t.Fatalf("sync after a reopen: %v", err)
	}
}
