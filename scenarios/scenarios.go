// Package scenarios holds named, seeded simulator scenarios: each is a cluster configuration
// with a fixed fault plan that reproduces a class of real incident or pins down one guarantee.
// One file per scenario; each says what it covers. `sluice sim --scenario NAME` runs one.
package scenarios

import (
	"maps"
	"sort"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/sim/cluster"
)

// Scenario is one named run.
type Scenario struct {
	Name string
	// Covers says which incident or guarantee the scenario is about.
	Covers string
	// Config builds the run for a seed.
	Config func(seed uint64) cluster.Config
}

var registry = map[string]Scenario{}

func register(s Scenario) {
	if _, dup := registry[s.Name]; dup {
		panic("scenarios: duplicate name " + s.Name)
	}
	registry[s.Name] = s
}

// All lists the scenarios sorted by name.
func All() []Scenario {
	out := make([]Scenario, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// brokerFaults is a Config of the single topology whose fault plan strikes the broker only,
// at rates.
func brokerFaults(rates map[faults.Kind]faults.Rate) func(seed uint64) cluster.Config {
	return func(seed uint64) cluster.Config {
		cfg := cluster.DefaultConfig(seed)
		cfg.Faults = &faults.Config{Targets: []string{cluster.BrokerAddr}, Rates: maps.Clone(rates)}
		return cfg
	}
}

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, bool) {
	s, ok := registry[name]
	return s, ok
}
