package scenarios

import (
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Incident: apache/rocketmq#1094 (4.x master/slave). The master was down for five minutes
// while its slave served the consumers. When the master restarted, the slave's periodic copy
// of metadata fetched the master's five-minute-old consumer offsets and overwrote its own
// newer ones, so consumers went back and processed those five minutes of messages again.
// apache/rocketmq#3210 (DLedger) reports the same duplicate consumption after leadership
// moved away from a node and back.
//
// The shape here: at 8 s each group's master crashes for 10 s, and a slave is elected while
// consumers commit offsets on it. The old master returns at 18 s as a slave with its stale
// offsets. At 22 s the new master crashes for 6 s, so leadership moves again, possibly back to
// the replica with the old offsets.
//
// What Sluice must do: consumer offsets flow from master to slaves only. A slave's copy never
// goes backwards, and a returning replica takes the current master's offsets before it can be
// elected with its own. After every switch a consumer resumes at or after the offset its group
// committed, never before it. Redeliveries are bounded by what was in flight, and none of
// them is lost.
func init() {
	register(Scenario{
		Name:   "offset-rollback",
		Covers: "apache/rocketmq#1094: a master down long returns with stale consumer offsets, then leadership moves again; offsets must not go back",
		Config: groupsIncident(func() []faults.Fault {
			return eachGroup(func(g string) []faults.Fault {
				return []faults.Fault{
					{At: incidentWarmup, Kind: faults.Crash, Node: faults.MasterOf(g), Duration: 10 * time.Second},
					{At: incidentWarmup + 14*time.Second, Kind: faults.Crash, Node: faults.MasterOf(g), Duration: 6 * time.Second},
				}
			})
		}),
	})
}
