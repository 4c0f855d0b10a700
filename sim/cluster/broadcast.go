package cluster

// The broadcasting flow (Flows.Broadcast): consumers of a group in BROADCASTING mode, each of
// which reads every queue of the run's topic by itself from offset 0, keeping its offsets
// locally as RocketMQ's broadcasting consumers do (nothing is committed to the broker). Each
// must be delivered every message below the offset it reached (checks.Broadcast, run by
// checkConsumers). Their pulls go into the history like every other, so the log model judges
// them too.

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/checks"
)

// broadcastGroup is the broadcasting consumers' group; broadcastConsumers how many there are.
const (
	broadcastGroup     = "SimBroadcast"
	broadcastConsumers = 2
)

// startBroadcasts starts the broadcasting consumers when the flow is on.
func (r *run) startBroadcasts() {
	if !r.flows.Broadcast {
		return
	}
	for i := 0; i < broadcastConsumers; i++ {
		r.startBroadcast(i)
	}
}

// startBroadcast runs broadcasting consumer i: it finds the topic's queues, then pulls each
// from offset 0 to its end, over and over, until the workload stops.
func (r *run) startBroadcast(i int) {
	idx := 400 + i
	name := fmt.Sprintf("broadcast-%d", i)
	cli := r.addClient(fmt.Sprintf("127.0.8.%d:1", i+1), name)
	cli.RegisterConsumer(client.ConsumerGroup{Name: broadcastGroup, Model: client.Broadcasting,
		Subscriptions: map[string]string{r.cfg.Topic: "*"}})
	r.discoverQueues(cli, r.cfg.Topic, 200*time.Millisecond, func(qs []client.MessageQueue) {
		for _, q := range qs {
			rd := &checks.BroadcastRead{Client: name, Queue: queueKey(q)}
			r.consumers.broadcast = append(r.consumers.broadcast, rd)
			r.broadcastQueue(cli, idx, q, rd)
		}
	})
}

// broadcastQueue pulls q from the offset rd reached, recording what it is delivered in rd.
func (r *run) broadcastQueue(cli *client.Client, idx int, q client.MessageQueue, rd *checks.BroadcastRead) {
	var pull func()
	pull = func() {
		if r.stopped {
			return
		}
		req := client.PullRequest{Queue: q, Group: broadcastGroup, Offset: rd.Reached, MaxMsgs: 32, SuspendMillis: 1000}
		r.pullRecorded(cli, idx, req, func(res client.PullResult, err error) {
			if err != nil {
				r.w.After(time.Duration(100+r.w.Rand().IntN(900))*time.Millisecond, pull)
				return
			}
			if res.Status == codec.Success {
				for _, m := range res.Msgs {
					rd.Msgs = append(rd.Msgs, pulledMsg(m, codec.Property(m.Properties, codec.PropUniqKey)))
				}
				r.report.FlowCounts["broadcast"] += len(res.Msgs)
			}
			rd.Reached = res.NextBeginOffset
			r.w.After(0, pull)
		})
	}
	pull()
}
