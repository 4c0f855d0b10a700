package real

// The fault schedule: drawn from a seed with the simulator's own planners (faults.Plan,
// faults.IsolateMaster, faults.MasterFailovers), so a real run strikes the shapes a simulated
// run does; the run itself is not deterministic, but its schedule is, and --seed N replays it.

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Schedule is a run's faults, in time order from the workload's start.
type Schedule struct {
	Seed     uint64
	Duration time.Duration
	Faults   []faults.Fault
}

// isolateMasterEvery is the mean interval of the stale-master partition per group.
const isolateMasterEvery = 45 * time.Second

// Draw draws the schedule of a run of length d from seed. Faults start in the first d minus
// 5 s; every fault still on at d is healed then.
func Draw(seed uint64, d time.Duration) Schedule {
	rng := rand.New(rand.NewPCG(seed, seed^0x6a657073656e)) // "jepsen"
	span := max(d-5*time.Second, time.Second)
	// Every node: crashes, partitions of one node from all, one-way losses, pauses, and
	// splits and bridges of the whole cluster.
	swarm := faults.Config{Targets: Nodes(), Rates: map[faults.Kind]faults.Rate{
		faults.Crash:     {MeanInterval: 150 * time.Second, MinDur: time.Second, MaxDur: 8 * time.Second},
		faults.Partition: {MeanInterval: 150 * time.Second, MinDur: time.Second, MaxDur: 10 * time.Second},
		faults.OneWay:    {MeanInterval: 300 * time.Second, MinDur: time.Second, MaxDur: 8 * time.Second},
		faults.Pause:     {MeanInterval: 200 * time.Second, MinDur: 500 * time.Millisecond, MaxDur: 6 * time.Second},
		faults.Split:     {MeanInterval: 50 * time.Second, MinDur: 2 * time.Second, MaxDur: 10 * time.Second},
		faults.Bridge:    {MeanInterval: 90 * time.Second, MinDur: 2 * time.Second, MaxDur: 10 * time.Second},
	}}
	plan := faults.Plan(rng, swarm, span)
	// Aimed at the masters: crashes and pauses (failovers in every run), the stale master cut
	// off from its replicas and the controllers but not from clients, and double failovers.
	var masters []string
	for _, g := range Groups {
		masters = append(masters, faults.MasterOf(g))
	}
	aimed := faults.Config{Targets: masters, Rates: map[faults.Kind]faults.Rate{
		faults.Crash: faults.MasterCrashes, faults.Pause: faults.MasterPauses}}
	plan = append(plan, faults.Plan(rng, aimed, span)...)
	for _, g := range Groups {
		for at := time.Duration(0); ; {
			at += time.Duration(rng.ExpFloat64() * float64(isolateMasterEvery))
			if at >= span {
				break
			}
			hold := 6*time.Second + time.Duration(rng.Int64N(int64(14*time.Second)))
			plan = append(plan, faults.IsolateMaster(g, NameServers, at, hold))
			at += hold
		}
	}
	plan = append(plan, faults.MasterFailovers(rng, Groups, NameServers, span)...)
	// Disk faults last, so the schedules drawn before they were added stay as they were (a
	// binary without -tags faultinject skips them).
	disks := faults.Config{Targets: Nodes(), Rates: map[faults.Kind]faults.Rate{
		faults.DiskSyncEIO: {MeanInterval: 400 * time.Second, MinDur: 200 * time.Millisecond, MaxDur: 3 * time.Second},
		faults.DiskFull:    {MeanInterval: 300 * time.Second, MinDur: 500 * time.Millisecond, MaxDur: 5 * time.Second},
	}}
	plan = append(plan, faults.Plan(rng, disks, span)...)
	slices.SortStableFunc(plan, func(a, b faults.Fault) int { return cmp.Compare(a.At, b.At) })
	return Schedule{Seed: seed, Duration: d, Faults: plan}
}

// Print writes the schedule, one fault a line.
func (s Schedule) Print(w io.Writer) {
	fmt.Fprintf(w, "schedule of seed %d (%v, %d faults; replay with --seed %d):\n", s.Seed, s.Duration, len(s.Faults), s.Seed)
	for _, f := range s.Faults {
		fmt.Fprintf(w, "  %v\n", f)
	}
}
