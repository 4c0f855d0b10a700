package simdisk

import "sort"

// CrashWith is test support: Crash with its random choices made by choose instead, so that a
// test (the disktest fault catalogue) can ask for one specific outcome of the faults Crash
// draws at random. For each log with unsynced entries, in sorted name order, choose(name,
// unsynced) returns how many of them survive (the first keep; at most unsynced) and whether
// the last survivor is torn (cut to half its length; only when keep > 0). Everything else is
// as in Crash: every handle becomes invalid, and what survives is durable. Simulator code
// uses Crash; this must stay in step with it (TestCrashWithMatchesCrash checks that every
// outcome Crash draws is one CrashWith produces).
func (d *Disk) CrashWith(choose func(name string, unsynced uint64) (keep uint64, tear bool)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Crashes++
	names := make([]string, 0, len(d.logs))
	for name := range d.logs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ld := d.logs[name]
		if ld.handle != nil {
			ld.handle.ld = nil
			ld.handle = nil
		}
		unsynced := ld.last() - ld.durable
		if unsynced == 0 {
			continue
		}
		d.stats.UnsyncedAtCrash += unsynced
		keep, tear := choose(name, unsynced)
		keep = min(keep, unsynced)
		newLast := ld.durable + keep
		d.stats.EntriesLost += unsynced - keep
		ld.entries = ld.entries[:newLast+1-ld.first]
		if keep > 0 && tear {
			torn := &ld.entries[len(ld.entries)-1]
			torn.data = append([]byte(nil), torn.data[:len(torn.data)/2]...)
			torn.bad = true
			d.stats.TornEntries++
			d.stats.EntriesLost++
		}
		ld.durable = ld.last()
	}
}
