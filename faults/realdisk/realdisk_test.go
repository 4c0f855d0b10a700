package realdisk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == dir && f[2] == "tmpfs" {
			return true
		}
	}
	return false
}

// A small file system is its own mount of the asked size; Fill makes writes fail with ENOSPC,
// Release gives the space back, Fill can leave some room, Unmount removes it all.
func TestSmallFSFillsReleasesAndUnmounts(t *testing.T) {
	fs := MountT(t, 4)
	if !mounted(t, fs.Dir) {
		t.Fatalf("%s is not a tmpfs mount", fs.Dir)
	}
	free, err := fs.Free()
	if err != nil {
		t.Fatal(err)
	}
	if free <= 3<<20 || free > 4<<20 {
		t.Fatalf("a 4 MiB file system has %d bytes free", free)
	}
	data := filepath.Join(fs.Dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func() error { return os.WriteFile(filepath.Join(data, "f"), make([]byte, 256<<10), 0o600) }

	if err := fs.Fill(0); err != nil {
		t.Fatal(err)
	}
	if err := write(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a write on the filled file system: %v, want ENOSPC", err)
	}
	if err := fs.Release(); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("a write after Release: %v", err)
	}
	if err := fs.Fill(1 << 20); err != nil {
		t.Fatal(err)
	}
	if free, _ := fs.Free(); free > 1<<20 || free < 1<<20-64<<10 {
		t.Errorf("Fill(1 MiB) left %d bytes", free)
	}
	if err := fs.Release(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Release(); err != nil {
		t.Errorf("a second Release: %v", err)
	}

	if err := fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	if mounted(t, fs.Dir) {
		t.Errorf("%s still mounted", fs.Dir)
	}
	if _, err := os.Stat(fs.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the mount point is still there: %v", err)
	}
	if err := fs.Unmount(); err != nil {
		t.Errorf("a second Unmount: %v", err)
	}
}

// A file system held open by a process (a broker that has not exited) still unmounts, lazily.
func TestUnmountWhileInUse(t *testing.T) {
	fs := MountT(t, 1)
	f, err := os.Create(filepath.Join(fs.Dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	if mounted(t, fs.Dir) {
		t.Errorf("%s still mounted", fs.Dir)
	}
}

func TestMountRejectsBadSize(t *testing.T) {
	if _, err := Mount(t.TempDir(), 0); err == nil {
		t.Error("Mount with size 0 succeeded")
	}
}
