package simdisk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/disktest"
)

// faultDisk is disktest.FaultDisk over the in-memory disk: the faults are the ones the
// simulator injects (Crash, here through CrashWith to pick the outcome; FlipByte).
type faultDisk struct{ d *Disk }

func (f *faultDisk) Disk() node.Disk { return f.d }

func (f *faultDisk) Crash(t *testing.T, loss map[string]disktest.Loss) {
	t.Helper()
	seen := map[string]bool{}
	var bad []string
	f.d.CrashWith(func(name string, unsynced uint64) (uint64, bool) {
		l, ok := loss[name]
		if !ok {
			return unsynced, false // a log not named keeps everything
		}
		seen[name] = true
		if l.Keep < 0 || uint64(l.Keep) > unsynced || (l.Tear && l.Keep == 0) {
			bad = append(bad, fmt.Sprintf("%s: %+v with %d unsynced", name, l, unsynced))
		}
		return uint64(l.Keep), l.Tear
	})
	for name, l := range loss {
		if !seen[name] && (l.Keep > 0 || l.Tear) {
			bad = append(bad, fmt.Sprintf("%s: %+v with nothing unsynced", name, l))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("impossible losses asked of the crash: %q", bad)
	}
}

func (f *faultDisk) Flip(t *testing.T, log string, index uint64) {
	t.Helper()
	f.d.mu.Lock()
	open := f.d.logs[log] != nil && f.d.logs[log].handle != nil
	f.d.mu.Unlock()
	if open {
		t.Fatalf("Flip(%q): the log is open", log)
	}
	if err := f.d.FlipByte(log, index); err != nil {
		t.Fatalf("FlipByte(%q, %d): %v", log, index, err)
	}
}

// InterruptWriteFile leaves nothing: WriteFile replaces the file in one step.
func (f *faultDisk) InterruptWriteFile(*testing.T, string, []byte) {}

func TestFaults(t *testing.T) {
	disktest.RunFaults(t, func(t *testing.T) disktest.FaultDisk { return &faultDisk{d: New()} })
}

// cloneDisk deep-copies a disk's logs and files (not its handles).
func cloneDisk(d *Disk) *Disk {
	c := New()
	for name, ld := range d.logs {
		nl := *ld
		nl.handle = nil
		nl.entries = slices.Clone(ld.entries)
		c.logs[name] = &nl
	}
	for name, b := range d.files {
		c.files[name] = slices.Clone(b)
	}
	c.stats = d.stats
	return c
}

// TestCrashWithMatchesCrash: for many seeds, the outcome Crash draws is reproduced by
// CrashWith given the same choices (up to where a torn entry is cut), so the fault catalogue's
// crashes are crashes the simulator really injects.
func TestCrashWithMatchesCrash(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		a := New()
		for k, name := range []string{"commitlog", "cq/T/0", "cq/T/1", "idle"} {
			l, _ := a.OpenLog(name)
			for i := range 3 + k*5 {
				l.Append(fmt.Appendf(nil, "%s-%d", name, i))
			}
			a.SyncLog(name, uint64(k*2))
			if name != "idle" {
				for i := range 6 - k {
					l.Append(fmt.Appendf(nil, "%s-late-%d", name, i))
				}
			} else {
				l.Sync()
			}
		}
		b := cloneDisk(a)
		before := cloneDisk(a)
		a.Crash(rand.New(rand.NewPCG(seed, 11)))
		b.CrashWith(func(name string, unsynced uint64) (uint64, bool) {
			ld, pre := a.logs[name], before.logs[name]
			keep := ld.last() - pre.durable
			n := len(ld.entries)
			return keep, n > 0 && ld.entries[n-1].torn && ld.last() > pre.durable
		})
		if a.stats != b.stats {
			t.Fatalf("seed %d: stats %+v after Crash, %+v after CrashWith", seed, a.stats, b.stats)
		}
		for name, la := range a.logs {
			lb := b.logs[name]
			if la.first != lb.first || la.durable != lb.durable || len(la.entries) != len(lb.entries) || la.handle != nil || lb.handle != nil {
				t.Fatalf("seed %d: log %s differs: first %d/%d durable %d/%d entries %d/%d",
					seed, name, la.first, lb.first, la.durable, lb.durable, len(la.entries), len(lb.entries))
			}
			for i, ea := range la.entries {
				eb := lb.entries[i]
				orig := before.logs[name].entries[i].data
				if ea.torn != eb.torn || !bytes.HasPrefix(orig, ea.data) || !bytes.HasPrefix(orig, eb.data) ||
					(!ea.torn && (!bytes.Equal(ea.data, orig) || !bytes.Equal(eb.data, orig))) {
					t.Fatalf("seed %d: log %s entry %d: %q/%v after Crash, %q/%v after CrashWith (was %q)",
						seed, name, i, ea.data, ea.torn, eb.data, eb.torn, orig)
				}
			}
		}
	}
}
