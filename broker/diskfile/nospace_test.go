package diskfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sluicemq/sluice/broker/node"
)

// fillUp makes every wal write fail with ENOSPC while full is set, after cutting the tail
// segment file in the middle of the last entry written, as a short write leaves it.
func fillUp(t *testing.T, full *bool) {
	testWriteFault = func(l *Log, first, last uint64) error {
		if !*full {
			return nil
		}
		starts, err := listSegments(l.dir) // the mirror is updated after the write
		if err != nil {
			t.Fatal(err)
		}
		path := l.segmentPath(starts[len(starts)-1])
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 3 {
			if err := os.Truncate(path, st.Size()-3); err != nil {
				t.Fatal(err)
			}
		}
		return syscall.ENOSPC
	}
	t.Cleanup(func() { testWriteFault = nil })
}

// TestNoSpaceRecoversInPlace: a write that runs out of space (with a short write left in the
// file) fails its Sync with node.ErrNoSpace, every entry stays readable, later Syncs fail the
// same way while the disk is full, and once space is back the next Sync writes everything:
// the log never needs reopening, and what it holds survives a restart.
func TestNoSpaceRecoversInPlace(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, 0)
	l, err := d.OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	appendN := func(from, to uint64) {
		for i := from; i <= to; i++ {
			if got, err := l.Append(faultPayload(i)); err != nil || got != i {
				t.Fatalf("Append %d: %d %v", i, got, err)
			}
		}
	}
	appendN(1, 50)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	full := true
	fillUp(t, &full)
	// A reader, as the event loop reads while the disk worker syncs: entries already written
	// stay readable while the log reopens its wal.
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for i := uint64(1); ; i = i%50 + 1 {
			select {
			case <-stop:
				return
			default:
			}
			if b, err := l.Read(i); err != nil || !bytes.Equal(b, faultPayload(i)) {
				readErr <- fmt.Errorf("concurrent Read(%d): %q %v", i, b, err)
				return
			}
		}
	}()
	appendN(51, 60)
	for range 3 {
		if err := l.Sync(); !errors.Is(err, node.ErrNoSpace) {
			t.Fatalf("Sync on a full disk: %v, want ErrNoSpace", err)
		}
		checkIntact(t, l, 1, 60)
		checkMirror(t, l.(*Log))
	}
	appendN(61, 65)
	if err := l.Sync(); !errors.Is(err, node.ErrNoSpace) {
		t.Fatalf("Sync on a full disk: %v", err)
	}
	close(stop)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	// A crash now keeps the synced entries whole; a restart from here is tested below.
	crashDir := filepath.Join(t.TempDir(), "crash")
	if err := os.CopyFS(crashDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	full = false
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync once space is back: %v", err)
	}
	checkIntact(t, l, 1, 65)
	checkMirror(t, l.(*Log))
	appendN(66, 70)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := openDisk(t, dir, 0).OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	checkIntact(t, l2, 1, 70)
	l2.Close()

	l3, err := openDisk(t, crashDir, 0).OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	if l3.LastIndex() < 50 || l3.LastIndex() > 65 {
		t.Fatalf("after a crash while full: last %d, want 50..65", l3.LastIndex())
	}
	checkIntact(t, l3, 1, l3.LastIndex())
}

// EMFILE and ENFILE are reported as node.ErrNoFiles (handled like a lack of space by nodes),
// ENOSPC as node.ErrNoSpace, anything else as node.ErrIO; the cause stays in the chain.
func TestIOErrorKinds(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  error
	}{{syscall.EMFILE, node.ErrNoFiles}, {syscall.ENFILE, node.ErrNoFiles}, {syscall.ENOSPC, node.ErrNoSpace}, {syscall.EIO, node.ErrIO}} {
		err := ioError(&os.PathError{Op: "open", Path: "x", Err: c.errno}, "open log %s", "x")
		if !errors.Is(err, c.want) || !errors.Is(err, c.errno) {
			t.Errorf("%v: got %v, want it to wrap %v and the errno", c.errno, err, c.want)
		}
	}
}
