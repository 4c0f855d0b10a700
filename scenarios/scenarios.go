// Package scenarios holds named, seeded simulator scenarios: each is a cluster configuration
// with a fixed fault plan that reproduces a class of real incident or pins down one guarantee.
// One file per scenario; each says what it covers. `sluice sim --scenario NAME` runs one.
package scenarios

import (
	"maps"
	"sort"
	"time"

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
	// Catches lists planted bugs (sim/cluster/plants.go) that the scenario's run at seed 1
	// must catch: the proof that its fault plan reproduces the incident's shape, not merely a
	// run that passes (TestScenariosCatchTheirPlants).
	Catches []string
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

// incidentWarmup is when an incident's faults strike in the groups topology: the controllers
// have elected every group's master and the clients are sending and consuming.
const incidentWarmup = 8 * time.Second

// incidentDuration is an incident scenario's simulated workload: the plan heals within it.
const incidentDuration = 30 * time.Second

// groupsIncident is a Config of the groups topology (sync replication, two in sync) that runs
// the fixed fault plan plan, for every seed: the seed draws the workload, never the faults.
func groupsIncident(plan func() []faults.Fault) func(seed uint64) cluster.Config {
	return func(seed uint64) cluster.Config {
		cfg := cluster.GroupsConfig(seed)
		cfg.Duration = incidentDuration
		cfg.Plan, cfg.ExplicitPlan = plan(), true
		return cfg
	}
}

// eachGroup concatenates what fault draws for every broker group of the groups topology (the
// test topic may live on either).
func eachGroup(fault func(group string) []faults.Fault) []faults.Fault {
	var out []faults.Fault
	for _, g := range cluster.GroupNames {
		out = append(out, fault(g)...)
	}
	return out
}

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, bool) {
	s, ok := registry[name]
	return s, ok
}
