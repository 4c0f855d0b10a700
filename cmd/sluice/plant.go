package main

// A planted bug on the real binary, for the real-process fault harness (package faults/real)
// only: SLUICE_PLANT names one of the simulator's planted bugs (sluice sim --plant list), read
// once when the process starts and said loudly on stderr; every name server, controller and
// broker the process runs then honours it. Unset, nothing is planted (production).

import (
	"fmt"
	"os"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/sim/cluster"
)

// plantEnv is the environment variable that plants a bug in this process's nodes.
const plantEnv = "SLUICE_PLANT"

// planted is the bug set readPlant found; empty unless SLUICE_PLANT is set.
var planted bugs.Set

// readPlant reads SLUICE_PLANT once, at start, into planted. A name of the groups topology is
// looked up first, then of the single-broker one.
func readPlant() error {
	name := os.Getenv(plantEnv)
	if name == "" {
		return nil
	}
	p, err := cluster.LookupPlant(name, cluster.BrokerGroups)
	if err != nil {
		if p, err = cluster.LookupPlant(name, cluster.SingleBroker); err != nil {
			return fmt.Errorf("%s: %w", plantEnv, err)
		}
	}
	planted = p.Bugs
	fmt.Fprintf(os.Stderr, "!!! %s=%s: this process is DELIBERATELY BROKEN for a fault-harness test (bugs planted: %v; %s). Never run it in production. !!!\n",
		plantEnv, name, planted, p.Class)
	return nil
}
