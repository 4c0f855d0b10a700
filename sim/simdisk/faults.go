package simdisk

// CrashWith is test support: Crash with its random choices made by choose instead, so that a
// test (the disktest fault catalogue) can ask for one specific outcome of the faults Crash
// draws at random. For each log with unsynced entries, in sorted name order, choose(name,
// unsynced) returns how many of them survive (the first keep; at most unsynced) and whether
// the last survivor is torn (cut to half its length; only when keep > 0). Everything else is
// as in Crash: every handle becomes invalid, and what survives is durable. Simulator code
// uses Crash; both share one implementation (TestCrashWithMatchesCrash checks that every
// outcome Crash draws is one CrashWith produces).
func (d *Disk) CrashWith(choose func(name string, unsynced uint64) (keep uint64, tear bool)) {
	d.crash(choose, func(n int) int { return n / 2 })
}
