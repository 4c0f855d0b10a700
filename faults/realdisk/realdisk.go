// Package realdisk gives a real Sluice process a small file system of its own, so that a test
// or a fault harness can fill its disk for real: a size-limited tmpfs mounted on a directory
// (the process's data directory goes inside it), filled to ENOSPC on demand and freed again,
// and unmounted at the end. Mounting needs root (CAP_SYS_ADMIN); Mount's error says so, and
// MountT skips the test with the reason. It never touches any mount but its own.
package realdisk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// ErrUnavailable is wrapped by Mount's error when this process cannot mount a tmpfs (not root,
// or no permission): a test skips on it.
var ErrUnavailable = errors.New("cannot mount a size-limited tmpfs")

// fillerName is the file Fill grows inside the file system.
const fillerName = ".realdisk-filler"

// SmallFS is a mounted size-limited tmpfs.
type SmallFS struct {
	// Dir is the mount point; put the data directory inside it.
	Dir string
	// SizeBytes is the file system's size.
	SizeBytes int64

	mu      sync.Mutex
	mounted bool
}

// Mount mounts a tmpfs of sizeMiB MiB on dir, creating dir if needed. The caller must
// Unmount it.
func Mount(dir string, sizeMiB int) (*SmallFS, error) {
	if sizeMiB <= 0 {
		return nil, fmt.Errorf("mount small fs on %s: size %d MiB", dir, sizeMiB)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("mount small fs on %s: %w: needs root", dir, ErrUnavailable)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mount small fs: %w", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%dm,mode=0755", sizeMiB)); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("mount small fs on %s: %w", dir, err)
	}
	return &SmallFS{Dir: dir, SizeBytes: int64(sizeMiB) << 20, mounted: true}, nil
}

// MountT mounts a tmpfs of sizeMiB MiB in a new directory under t.TempDir and unmounts it when
// the test ends; it skips the test, with the reason, where that cannot be done.
func MountT(t testing.TB, sizeMiB int) *SmallFS {
	t.Helper()
	fs, err := Mount(filepath.Join(t.TempDir(), "small"), sizeMiB)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir's cleanup, so it runs before it: the directory is removed
	// once unmounted.
	t.Cleanup(func() {
		if err := fs.Unmount(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return fs
}

// Free is how many bytes the file system has left (for an unprivileged writer).
func (s *SmallFS) Free() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.Dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", s.Dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Fill grows a filler file until at most leaveBytes are free (0: until a write fails with
// ENOSPC), making the file system full for whoever writes next. Release undoes it.
func (s *SmallFS) Fill(leaveBytes int64) error {
	f, err := os.OpenFile(filepath.Join(s.Dir, fillerName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("fill %s: %w", s.Dir, err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		free, err := s.Free()
		if err != nil {
			return err
		}
		n := free - leaveBytes
		if n <= 0 {
			return nil
		}
		if _, err := f.Write(chunk[:min(n, int64(len(chunk)))]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return fmt.Errorf("fill %s: %w", s.Dir, err)
		}
	}
}

// Release removes what Fill wrote: the space is back.
func (s *SmallFS) Release() error {
	err := os.Remove(filepath.Join(s.Dir, fillerName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release %s: %w", s.Dir, err)
	}
	return nil
}

// Unmount unmounts the file system (lazily if a process still holds files in it: it goes
// when they close) and removes the mount point. A second call does nothing.
func (s *SmallFS) Unmount() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mounted {
		return nil
	}
	if err := syscall.Unmount(s.Dir, 0); err != nil {
		if err2 := syscall.Unmount(s.Dir, syscall.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmount %s: %w (lazily: %w)", s.Dir, err, err2)
		}
	}
	s.mounted = false
	if err := os.Remove(s.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unmount %s: remove the mount point: %w", s.Dir, err)
	}
	return nil
}
