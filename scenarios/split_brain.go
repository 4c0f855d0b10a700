package scenarios

import (
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/sim/cluster"
)

// Incident: apache/rocketmq#7017 (RocketMQ 5.1.1, controller mode). Three data centres, each
// with a name server, a controller and one replica of the broker group. The data centre of the
// master, with one controller, was cut off from the other two. The controllers on the majority
// side elected a new master, so two masters took writes at once, and clients in the isolated
// data centre kept sending to the old one. Once the network healed the old master became a
// slave, and every message it had acknowledged during the split was lost.
//
// The shape here: name-server host 1 (its name server and controller), both groups' masters,
// producer 0 and consumer 0 are cut off from the rest for 12 s. The other two controllers still
// make a quorum and elect new masters from the replicas on their side.
//
// What Sluice must do: a master that cannot reach a controller quorum stops acknowledging once
// its lease lapses, so its producer gets failures or timeouts, never a SEND_OK the new master
// lacks. It answers no pull as master once another replica is elected. One replica
// acknowledges per epoch. The old master comes back as a slave, truncates the tail the new
// master lacks, and its log then matches. Nothing acknowledged is lost, and sends and pulls
// work again after the heal.
func init() {
	register(Scenario{
		Name:   "split-brain",
		Covers: "apache/rocketmq#7017: the masters' data centre cut off from the controller majority but not from its clients while new masters are elected",
		Config: groupsIncident(func() []faults.Fault {
			dc := []string{"@host:1", cluster.ProducerAddr(0), cluster.ConsumerAddr(0)}
			for _, g := range cluster.GroupNames {
				dc = append(dc, faults.MasterOf(g))
			}
			return []faults.Fault{{At: incidentWarmup, Kind: faults.GroupPartition, Nodes: dc, Duration: 12 * time.Second}}
		}),
		Catches: []string{"stale-master-acks", "lease-free-master"},
	})
}
