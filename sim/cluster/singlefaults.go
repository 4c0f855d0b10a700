package cluster

import (
	"math/rand/v2"
	"sort"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// SingleFaultKinds are the kinds the single topology draws on top of the default ones (crash,
// reset, partition): every kind that makes sense with one broker as the only target. Split and
// bridge need several targets and partition-group needs groups, so they are left out; bit
// flips are damage rather than a condition and are drawn elsewhere.
//
// The disk kinds are the point: without them a broker whose metadata write (consumer offsets,
// topic config, delay progress) fails with EIO or ENOSPC and is never retried, or that
// acknowledges a send its disk refused, goes unseen in the single topology.
var SingleFaultKinds = []faults.Kind{
	faults.OneWay, faults.Delay, faults.Pause,
	faults.DiskWriteEIO, faults.DiskSyncEIO, faults.DiskFull, faults.SlowFsync,
	faults.ClockSkew, faults.ClockJump,
}

// singlePlan draws the single topology's fault plan for seed: the swarm of the default kinds
// (the draws it made before the other kinds were added, so those faults stay what they were),
// plus the swarm of SingleFaultKinds drawn from a PRNG of its own. A configured fcfg replaces
// both.
func singlePlan(seed uint64, fcfg *faults.Config, d time.Duration) []faults.Fault {
	frng := rand.New(rand.NewPCG(seed, 0x5eedfa17))
	if fcfg != nil {
		return faults.Plan(frng, *fcfg, d)
	}
	base := faults.Swarm(frng, []string{BrokerAddr})
	plan := faults.Plan(frng, base, d)

	xrng := rand.New(rand.NewPCG(seed, 0xd15cfa17))
	extra := faults.SwarmWith(xrng, []string{BrokerAddr}, faults.SwarmOptions{Extra: SingleFaultKinds})
	for _, k := range faults.DefaultKinds {
		delete(extra.Rates, k) // drawn above
	}
	plan = append(plan, faults.Plan(xrng, extra, d)...)
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].At < plan[j].At })
	return plan
}
