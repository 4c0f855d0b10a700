package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// What a steady-rate benchmark samples outside its own process: a broker process's resident
// memory (Linux /proc) and its data directory's disk use.

// readRSS returns the resident set size (VmRSS) of process pid, in bytes.
func readRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of process %d: %w", pid, err)
	}
	defer f.Close()
	rss, err := parseVmRSS(f)
	if err != nil {
		return 0, fmt.Errorf("read RSS of process %d: %w", pid, err)
	}
	return rss, nil
}

// parseVmRSS finds the VmRSS line of a /proc/PID/status file ("VmRSS:	  123456 kB").
func parseVmRSS(f *os.File) (uint64, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("malformed VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or not Linux)")
}

// dirUsage is one look at a data directory.
type dirUsage struct {
	bytes uint64              // bytes allocated to the regular files under it (st_blocks)
	files map[string]struct{} // their paths, relative to the directory
	// fsUsed and fsSize are the file system's used and total bytes (statfs), as the broker's
	// disk guard sees them.
	fsUsed, fsSize uint64
}

// measureDir walks dir. A file removed during the walk is skipped, not an error: the broker
// deletes segments while it is measured.
func measureDir(dir string) (dirUsage, error) {
	u := dirUsage{files: map[string]struct{}{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			u.bytes += uint64(st.Blocks) * 512
		} else {
			u.bytes += uint64(info.Size())
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		u.files[rel] = struct{}{}
		return nil
	})
	if err != nil {
		return dirUsage{}, fmt.Errorf("measure data directory %s: %w", dir, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return dirUsage{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	u.fsSize = st.Blocks * uint64(st.Bsize)
	u.fsUsed = (st.Blocks - st.Bfree) * uint64(st.Bsize)
	return u, nil
}

// vanished counts the files of before that are not in after, by fileKind: what the broker
// deleted between two looks.
func vanished(before, after map[string]struct{}) map[string]int {
	out := map[string]int{}
	for path := range before {
		if _, ok := after[path]; ok {
			continue
		}
		out[fileKind(path)]++
	}
	return out
}

// fileKind names the store part a data-directory file belongs to: the directory under "logs"
// that holds it ("commitlog" for "broker-a/logs/commitlog/00000000000000000001", "cq" for a
// consume-queue file), or, outside a "logs" directory, the file's first path element.
func fileKind(rel string) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i, p := range parts[:len(parts)-1] {
		if p == "logs" && i+2 < len(parts) {
			return parts[i+1]
		}
	}
	return parts[0]
}
