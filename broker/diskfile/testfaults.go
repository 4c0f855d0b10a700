package diskfile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FaultSpec says which disk faults a Faults injects, for tests of a real process on a
// misbehaving disk without FUSE (docs/testing-flags.md). Each probability is drawn afresh for
// each operation, from a generator seeded with Seed, so that a run is repeatable in kind (the
// real interleaving of operations still varies). Production runs never set one.
//
// Its text form (ParseFaultSpec, String) is comma-separated key=value pairs:
//
//	seed=7                 the generator's seed (default 1)
//	slow-fsync=50ms@0.1    one log fsync in ten first sleeps 50ms (a stalling device)
//	fail-fsync=0.01        one log fsync in a hundred fails with EIO
//	fail-write=0.001       one log write in a thousand fails with EIO (after writing)
//	nospace-write=0.001    one log write in a thousand fails with ENOSPC as a short write:
//	                       the last 3 bytes of the tail segment are cut off, as a file system
//	                       that ran out of space mid-write leaves it
//	while=/path/to/file    faults are drawn only while this file exists (toggled at run time)
type FaultSpec struct {
	Seed          uint64
	SlowFsync     time.Duration // the stall of a slow fsync
	SlowFsyncP    float64       // probability that a fsync is slow
	FailFsyncP    float64
	FailWriteP    float64
	NoSpaceWriteP float64
	While         string // "": always
}

// ParseFaultSpec parses FaultSpec's text form.
func ParseFaultSpec(s string) (FaultSpec, error) {
	spec := FaultSpec{Seed: 1}
	prob := func(key, v string) (float64, error) {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 1 {
			return 0, fmt.Errorf("disk faults %q: %s=%s: want a probability in [0, 1]", s, key, v)
		}
		return p, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, v, ok := strings.Cut(part, "=")
		if !ok {
			return FaultSpec{}, fmt.Errorf("disk faults %q: %q is not key=value", s, part)
		}
		var err error
		switch key {
		case "seed":
			spec.Seed, err = strconv.ParseUint(v, 10, 64)
			if err != nil {
				return FaultSpec{}, fmt.Errorf("disk faults %q: seed: %w", s, err)
			}
		case "slow-fsync":
			d, p, ok := strings.Cut(v, "@")
			if !ok {
				return FaultSpec{}, fmt.Errorf("disk faults %q: slow-fsync=%s: want DURATION@PROBABILITY", s, v)
			}
			if spec.SlowFsync, err = time.ParseDuration(d); err != nil || spec.SlowFsync < 0 {
				return FaultSpec{}, fmt.Errorf("disk faults %q: slow-fsync=%s: bad duration", s, v)
			}
			spec.SlowFsyncP, err = prob(key, p)
		case "fail-fsync":
			spec.FailFsyncP, err = prob(key, v)
		case "fail-write":
			spec.FailWriteP, err = prob(key, v)
		case "nospace-write":
			spec.NoSpaceWriteP, err = prob(key, v)
		case "while":
			if v == "" {
				return FaultSpec{}, fmt.Errorf("disk faults %q: while= needs a path", s)
			}
			spec.While = v
		default:
			return FaultSpec{}, fmt.Errorf("disk faults %q: unknown key %q (seed, slow-fsync, fail-fsync, fail-write, nospace-write, while)", s, key)
		}
		if err != nil {
			return FaultSpec{}, err
		}
	}
	return spec, nil
}

// String is the text form ParseFaultSpec reads.
func (s FaultSpec) String() string {
	parts := []string{"seed=" + strconv.FormatUint(s.Seed, 10)}
	f := func(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }
	if s.SlowFsyncP > 0 {
		parts = append(parts, fmt.Sprintf("slow-fsync=%v@%s", s.SlowFsync, f(s.SlowFsyncP)))
	}
	if s.FailFsyncP > 0 {
		parts = append(parts, "fail-fsync="+f(s.FailFsyncP))
	}
	if s.FailWriteP > 0 {
		parts = append(parts, "fail-write="+f(s.FailWriteP))
	}
	if s.NoSpaceWriteP > 0 {
		parts = append(parts, "nospace-write="+f(s.NoSpaceWriteP))
	}
	if s.While != "" {
		parts = append(parts, "while="+s.While)
	}
	return strings.Join(parts, ",")
}

// FaultCounts counts the faults a Faults injected.
type FaultCounts struct {
	SlowFsyncs, FailedFsyncs, FailedWrites, NoSpaceWrites int
}

// Faults injects the faults of a FaultSpec into the logs of the disks whose Options name it
// (one Faults may serve several disks of a process). Safe for concurrent use.
type Faults struct {
	spec FaultSpec

	mu     sync.Mutex
	rng    *rand.Rand
	counts FaultCounts
}

// NewFaults returns the injector of spec.
func NewFaults(spec FaultSpec) *Faults {
	return &Faults{spec: spec, rng: rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x5eed_d15c))}
}

// Spec is the spec f injects.
func (f *Faults) Spec() FaultSpec { return f.spec }

// Counts is how many faults of each kind f has injected so far.
func (f *Faults) Counts() FaultCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// armed reports whether faults are to be drawn now (the While file, if any, exists).
func (f *Faults) armed() bool {
	if f.spec.While == "" {
		return true
	}
	_, err := os.Stat(f.spec.While)
	return err == nil
}

// draw reports whether an event of probability p happens; f.mu must be held. A zero p takes
// nothing from the generator, so a kind of fault absent from a spec leaves the draws of the
// others as they are.
func (f *Faults) draw(p float64) bool {
	return p > 0 && f.rng.Float64() < p
}

// beforeFsync runs before a log's fsync of file path: it may stall, and may return the EIO the
// fsync is to fail with.
func (f *Faults) beforeFsync(path string, log *slog.Logger) error {
	if !f.armed() {
		return nil
	}
	f.mu.Lock()
	slow, fail := f.draw(f.spec.SlowFsyncP), f.draw(f.spec.FailFsyncP)
	if slow {
		f.counts.SlowFsyncs++
	}
	if fail {
		f.counts.FailedFsyncs++
	}
	f.mu.Unlock()
	if slow {
		time.Sleep(f.spec.SlowFsync)
	}
	if fail {
		log.Warn("TEST DISK FAULT: failing a fsync with EIO", "file", path)
		return &fs.PathError{Op: "sync", Path: path, Err: syscall.EIO}
	}
	return nil
}

// afterWrite runs after a successful wal write to l; an error it returns is taken as the
// write's failure (for ENOSPC it first cuts the tail segment short).
func (f *Faults) afterWrite(l *Log) error {
	if !f.armed() {
		return nil
	}
	f.mu.Lock()
	fail, full := f.draw(f.spec.FailWriteP), f.draw(f.spec.NoSpaceWriteP)
	if fail {
		f.counts.FailedWrites++
	} else if full {
		f.counts.NoSpaceWrites++
	}
	f.mu.Unlock()
	switch {
	case fail:
		path := l.dir
		if starts, err := listSegments(l.dir); err == nil && len(starts) > 0 {
			path = l.segmentPath(starts[len(starts)-1])
		}
		l.disk.logger.Warn("TEST DISK FAULT: failing a write with EIO", "file", path)
		return &fs.PathError{Op: "write", Path: path, Err: syscall.EIO}
	case full:
		l.disk.logger.Warn("TEST DISK FAULT: failing a write with ENOSPC (short write)", "log", l.name)
		return shortWrite(l)
	}
	return nil
}

// shortWrite cuts the last 3 bytes off l's tail segment file and returns the ENOSPC a write
// that ran out of space mid-way returns: what a full file system leaves behind.
func shortWrite(l *Log) error {
	starts, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	if len(starts) == 0 {
		return errors.New("short write: the log has no segment file")
	}
	path := l.segmentPath(starts[len(starts)-1])
	if st, err := os.Stat(path); err == nil && st.Size() > 3 {
		if err := os.Truncate(path, st.Size()-3); err != nil {
			return err
		}
	}
	return &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
}
