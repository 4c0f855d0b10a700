// Package faults plans and injects faults: which node crashes when and for how long, which
// connections reset, which links partition. A plan is drawn from a seeded PRNG, so a seed names
// a failure scenario exactly; Schedule puts a plan onto a simulated world. Swarm testing draws
// the fault kinds and rates themselves from the seed, so different seeds stress different mixes.
package faults

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/sluicemq/sluice/sim"
)

// Kind is a kind of fault.
type Kind string

const (
	// Crash kills a node (losing what its disk had not made durable) and restarts it after Fault.Duration.
	Crash Kind = "crash"
	// Reset resets every connection of a node.
	Reset Kind = "reset"
	// Partition isolates a node from every other node for Fault.Duration.
	Partition Kind = "partition"
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{Crash, Reset, Partition}

// Fault is one planned fault.
type Fault struct {
	At       time.Duration
	Kind     Kind
	Node     string
	Duration time.Duration
}

func (f Fault) String() string {
	return fmt.Sprintf("%v %s %s for %v", f.At, f.Kind, f.Node, f.Duration)
}

// Rate is how often a kind of fault strikes each target: a mean interval (0 disables it) and
// how long it lasts.
type Rate struct {
	MeanInterval   time.Duration
	MinDur, MaxDur time.Duration
}

// Config says which nodes are targets and how often each kind strikes.
type Config struct {
	Targets []string
	Rates   map[Kind]Rate
}

// Swarm draws a configuration from r: each kind is on or off and gets its own rate, so a sweep
// over seeds covers many mixes (swarm testing). Crashes are always on: they are the fault
// every scenario must survive.
func Swarm(r *rand.Rand, targets []string) Config {
	cfg := Config{Targets: targets, Rates: map[Kind]Rate{}}
	cfg.Rates[Crash] = Rate{MeanInterval: time.Duration(3+r.IntN(15)) * time.Second,
		MinDur: 100 * time.Millisecond, MaxDur: time.Duration(1+r.IntN(5)) * time.Second}
	if r.IntN(2) == 0 {
		cfg.Rates[Reset] = Rate{MeanInterval: time.Duration(2+r.IntN(10)) * time.Second}
	}
	if r.IntN(2) == 0 {
		cfg.Rates[Partition] = Rate{MeanInterval: time.Duration(5+r.IntN(20)) * time.Second,
			MinDur: 200 * time.Millisecond, MaxDur: time.Duration(1+r.IntN(8)) * time.Second}
	}
	return cfg
}

// Plan draws the faults of a run of length d from r. Faults of one kind on one node never
// overlap. The plan is sorted by time.
func Plan(r *rand.Rand, cfg Config, d time.Duration) []Fault {
	var out []Fault
	targets := append([]string(nil), cfg.Targets...)
	sort.Strings(targets)
	for _, k := range Kinds {
		rate, ok := cfg.Rates[k]
		if !ok || rate.MeanInterval <= 0 {
			continue
		}
		for _, t := range targets {
			at := time.Duration(0)
			for {
				at += time.Duration(r.ExpFloat64() * float64(rate.MeanInterval))
				if at >= d {
					break
				}
				dur := rate.MinDur
				if rate.MaxDur > rate.MinDur {
					dur += time.Duration(r.Int64N(int64(rate.MaxDur - rate.MinDur)))
				}
				out = append(out, Fault{At: at, Kind: k, Node: t, Duration: dur})
				at += dur
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// Schedule puts a plan onto w. Every fault heals by itself (crashed nodes restart, partitions
// lift), so a run that outlasts its plan ends with a healed cluster.
func Schedule(w *sim.World, plan []Fault) {
	for _, f := range plan {
		f := f
		w.At(f.At, func() { Inject(w, f) })
	}
}

// Inject applies one fault now.
func Inject(w *sim.World, f Fault) {
	n := w.Node(f.Node)
	if n == nil {
		panic(fmt.Sprintf("faults: no node %s", f.Node))
	}
	switch f.Kind {
	case Crash:
		if !n.Up() {
			return
		}
		n.Crash()
		w.After(f.Duration, n.Restart)
	case Reset:
		n.ResetConnections()
	case Partition:
		others := w.Addrs()
		for _, o := range others {
			if o != f.Node {
				w.Block(f.Node, o)
				w.Block(o, f.Node)
			}
		}
		w.After(f.Duration, func() {
			for _, o := range others {
				if o != f.Node {
					w.Unblock(f.Node, o)
					w.Unblock(o, f.Node)
				}
			}
		})
	default:
		panic(fmt.Sprintf("faults: unknown kind %q", f.Kind))
	}
}

// Count tallies a plan by kind.
func Count(plan []Fault) map[Kind]int {
	out := map[Kind]int{}
	for _, f := range plan {
		out[f.Kind]++
	}
	return out
}

// EncodePlan renders a plan as JSON (times in nanoseconds), for replaying it later.
func EncodePlan(plan []Fault) ([]byte, error) {
	if plan == nil {
		plan = []Fault{}
	}
	return json.MarshalIndent(plan, "", "  ")
}

// DecodePlan parses EncodePlan's output and checks every fault names a known kind.
func DecodePlan(b []byte) ([]Fault, error) {
	var plan []Fault
	if err := json.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("decode fault plan: %w", err)
	}
	for i, f := range plan {
		known := false
		for _, k := range Kinds {
			known = known || f.Kind == k
		}
		if !known || f.At < 0 || f.Duration < 0 {
			return nil, fmt.Errorf("decode fault plan: fault %d (%v) is not valid", i, f)
		}
	}
	return plan, nil
}
