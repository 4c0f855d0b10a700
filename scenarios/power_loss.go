package scenarios

import (
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Incident: apache/rocketmq#1155 and #3015 (SYNC_MASTER). The master took a slave's reported
// offset as proof of replication, and the offset could run ahead of what the slave held. It
// then answered SEND_OK for messages that only its own page cache had. When the master went
// down they were gone, although every send had been acknowledged.
//
// The shape here (faults.PowerLoss): at 8 s the slaves' fsyncs slow down by 100 ms. Amid
// acknowledgements 1.5 s later, every replica of the group loses power at once. The slaves
// come back after a second and may elect one of themselves. The old master returns 8 s after
// them.
//
// What Sluice must do: a slave reports as synced only what its disk has made durable, and the
// master acknowledges only what the in-sync set reported. Whatever survives the power loss on
// the elected slave then holds every acknowledged message, and nothing acknowledged is lost
// however the power loss cut the unsynced tails.
func init() {
	register(Scenario{
		Name:   "power-loss",
		Covers: "apache/rocketmq#1155, #3015: a whole broker group loses power while its slaves' fsyncs lag; acknowledged means durable on the in-sync set",
		Config: groupsIncident(func() []faults.Fault {
			return eachGroup(func(g string) []faults.Fault {
				return faults.PowerLoss(g, incidentWarmup, 100*time.Millisecond, 8*time.Second)
			})
		}),
		Catches: []string{"slave-ack-before-fsync"},
	})
}
