package scenarios

import (
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Incident: apache/rocketmq#2705, messages lost across a master/slave switch. The same
// reporter's #2706 (still present in 4.9.1 as #3349) named the mechanism: after a switch, a
// master whose log lags its slave's cannot replicate to it, yet its sends are still answered
// SEND_OK. Whatever the slave had not copied when the switch came is gone with the old master.
//
// The shape here: from 8 s, one slave of each group lags. Every frame between it and the
// master takes 1.5 s longer and its fsyncs 200 ms longer, for 10 s, so it lags past the
// master's 2 s bound and drops out of the in-sync set, while the other slave keeps up. At 15 s,
// mid-lag, the master crashes and stays down for 8 s. The controllers must pick between a
// slave that is in sync and one that is behind. The old master returns as a slave holding a
// tail that neither has.
//
// What Sluice must do: under sync replication a SEND_OK means the in-sync set holds the entry
// durably, and the controllers elect only from that set, so the new master has every
// acknowledged message, however far behind the other slave is. The returning master and the
// lagging slave truncate to the new master's log (the epoch table) before they copy anything,
// and the replicas end identical. Nothing acknowledged is lost. In async replication the loss
// is counted and reported, not hidden.
func init() {
	register(Scenario{
		Name:   "switch-while-lagging",
		Covers: "apache/rocketmq#2705: a master/slave switch while one slave lags out of the in-sync set, the old master returning with a tail the new one lacks",
		Config: groupsIncident(func() []faults.Fault {
			lag := 10 * time.Second
			return eachGroup(func(g string) []faults.Fault {
				return []faults.Fault{
					{At: incidentWarmup, Kind: faults.Delay, Nodes: []string{faults.MasterOf(g)}, Peers: []string{faults.SlaveOf(g)},
						Delta: 1500 * time.Millisecond, Duration: lag},
					{At: incidentWarmup, Kind: faults.SlowFsync, Node: faults.SlaveOf(g), Delta: 200 * time.Millisecond, Duration: lag},
					{At: incidentWarmup + 7*time.Second, Kind: faults.Crash, Node: faults.MasterOf(g), Duration: 8 * time.Second},
				}
			})
		}),
		Catches: []string{"elect-outside-in-sync"},
	})
}
