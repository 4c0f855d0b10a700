// Package seedflag defines the test flags that replay one simulator run under go test
// (TestSeed, in sim/cluster), so that a seed that failed in CI opens in a debugger:
//
//	go test ./sim/... -run TestSeed -seed N -topology groups
//
// go test hands such flags to the test binary of every package the pattern matches, and a
// binary stops at a flag it does not define ("flag provided but not defined"). So the tests of
// every package under sim/ import this one, whether or not they read the flags. It registers
// flags on the command line's flag set and must be imported from tests only.
package seedflag

import "flag"

// The flags, named and meant as sluice sim's flags of the same names.
var (
	Seed        = flag.Uint64("seed", 0, "TestSeed: replay this simulator seed (0: TestSeed skips)")
	Topology    = flag.String("topology", "single", "TestSeed: cluster shape, single or groups")
	Flush       = flag.String("flush", "sync", "TestSeed: broker flush mode, sync or async")
	Replication = flag.String("replication", "sync", "TestSeed: with -topology groups, sync or async replication")
	Duration    = flag.Duration("duration", 0, "TestSeed: simulated duration of the workload (0: the topology's default)")
	Plan        = flag.String("plan", "", "TestSeed: replay the plan file (as sluice sim --shrink writes it) instead of the seed's drawn faults")
	Plant       = flag.String("plant", "", "TestSeed: planted bug to switch on (sluice sim --plant list)")
)
