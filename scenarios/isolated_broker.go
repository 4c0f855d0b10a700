package scenarios

import (
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Incident class: a broker cut off from its name server and clients (a switch failure) while
// sends are in flight. Clients see timeouts (unknown outcomes), the name server drops the
// broker from routes, and once the link heals every acknowledged message is still there and
// sends succeed again.
func init() {
	register(Scenario{
		Name:   "isolated-broker",
		Covers: "network isolation of the broker with sends in flight; unknown outcomes resolved, liveness after healing",
		Config: brokerFaults(map[faults.Kind]faults.Rate{
			faults.Partition: {MeanInterval: 6 * time.Second, MinDur: 500 * time.Millisecond, MaxDur: 5 * time.Second},
			faults.Reset:     {MeanInterval: 3 * time.Second},
		}),
	})
}
