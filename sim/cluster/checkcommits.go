package cluster

// The check that a consumer group's committed offsets never pass a message it did not process
// (checks.Commits), and the broadcasting consumers' check (broadcast.go; checks.Broadcast).
// What a group processed is what the harness's consumers were delivered (consumeQueue notes
// every message a pull handed them); what it committed is read off the wire: every
// UPDATE_CONSUMER_OFFSET a client sends, whatever the client core put in it, so a client that
// commits the wrong offset is caught as well as a broker that answers a consumer with an
// offset it never committed (the consumer resumes from there and commits past what it skipped).
// The groups of the plain and orderly consumers are judged; the SQL92 flow's group, whose
// filter keeps messages from it, is not.

import (
	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim/checks"
)

// consumerRecord is what the consumer checks need of a run: the commits clients sent, the
// deliveries of the judged groups' consumers, and the broadcasting consumers' reads.
type consumerRecord struct {
	commits   []checks.CommitOp
	delivered []checks.Delivery
	// judged lists the groups whose commits are checked (those consumeQueue consumed for).
	judged []string
	// broadcast is every broadcasting consumer's read of every queue (broadcast.go).
	broadcast []*checks.BroadcastRead
}

// tap adds a read-only observer of the frames nodes send and receive (sim.World.Observe; nil:
// none); Run installs them all once the topology is built.
func (r *run) tap(sent, delivered func(from, to string, cmd *codec.Command)) {
	if sent != nil {
		r.sentTaps = append(r.sentTaps, sent)
	}
	if delivered != nil {
		r.deliveredTaps = append(r.deliveredTaps, delivered)
	}
}

// installTaps hands the world one observer that calls every tap.
func (r *run) installTaps() {
	sent, delivered := r.sentTaps, r.deliveredTaps
	r.w.Observe(func(from, to string, cmd *codec.Command) {
		for _, f := range sent {
			f(from, to, cmd)
		}
	}, func(from, to string, cmd *codec.Command) {
		for _, f := range delivered {
			f(from, to, cmd)
		}
	})
}

// onCommitSent records an offset commit a client sent.
func (r *run) onCommitSent(from, _ string, cmd *codec.Command) {
	if cmd.Code != codec.ReqUpdateConsumerOffset || cmd.IsResponse() {
		return
	}
	h, err := codec.DecodeHeader[codec.UpdateConsumerOffsetHeader](cmd)
	if err != nil || h.ConsumerGroup == "" {
		return
	}
	r.consumers.commits = append(r.consumers.commits, checks.CommitOp{Client: from, Group: h.ConsumerGroup,
		Queue:  linearizability.QueueKey{Broker: h.BrokerName, Topic: h.Topic, QueueID: int32(h.QueueID)},
		Offset: h.CommitOffset, At: int64(r.w.Now())})
}

// judgeCommits makes group's commits judged by checkConsumers.
func (r *run) judgeCommits(group string) {
	for _, g := range r.consumers.judged {
		if g == group {
			return
		}
	}
	r.consumers.judged = append(r.consumers.judged, group)
}

// noteDelivered records that a consumer of group was delivered the messages at offsets of q.
func (r *run) noteDelivered(group string, q linearizability.QueueKey, msgs []*codec.Message) {
	for _, m := range msgs {
		r.consumers.delivered = append(r.consumers.delivered, checks.Delivery{Group: group, Queue: q, Offset: m.QueueOffset, At: int64(r.w.Now())})
	}
}

// checkConsumers runs the consumer checks against the final drain, leaving out the queues in
// skip (those async replication lost messages of: their offsets were reused, which the drain
// cannot tell apart).
func (r *run) checkConsumers(drain map[linearizability.QueueKey][]linearizability.PulledMsg, skip map[linearizability.QueueKey]bool) []checks.Violation {
	if len(skip) > 0 {
		kept := map[linearizability.QueueKey][]linearizability.PulledMsg{}
		for q, msgs := range drain {
			if !skip[q] {
				kept[q] = msgs
			}
		}
		drain = kept
	}
	destroyed := func(q linearizability.QueueKey, offset int64) bool { return r.h.Unreadable[q][offset] }
	vs := checks.Commits(r.consumers.commits, r.consumers.delivered, drain, r.consumers.judged, destroyed)
	var reads []checks.BroadcastRead
	for _, rd := range r.consumers.broadcast {
		reads = append(reads, *rd)
	}
	// A crash of an async-flush broker, or a failover in async replication, may cut a queue
	// back and reuse its offsets.
	reused := r.cfg.FlushMode == brokernode.AsyncFlush || r.cfg.Replication == brokernode.AsyncReplication
	return append(vs, checks.Broadcast(reads, drain, func(linearizability.QueueKey) bool { return reused }, destroyed)...)
}
