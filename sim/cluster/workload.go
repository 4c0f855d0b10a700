package cluster

// The workload every topology runs: producers that send uniquely identified messages,
// consumers that pull every queue from their group's committed offset, and after the faults
// have healed a liveness probe and the final drain of every queue. Every call is recorded in
// the run's history with its invocation and return in virtual time.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/linearizability"
)

func (r *run) addClient(addr string, id string) *client.Client {
	return r.addClientWith(addr, id, nil)
}

// addClientWith adds a client whose configuration tune adjusts (nil for the defaults).
func (r *run) addClientWith(addr string, id string, tune func(*client.Config)) *client.Client {
	ccfg := client.DefaultConfig(NameServerAddr)
	if r.gr != nil {
		// Every name server; routes refreshed often enough to follow a failover within
		// seconds (the client also drops a route after a definite failure).
		ccfg = client.DefaultConfig(nameServers()...)
		ccfg.RouteTTL = 2 * time.Second
	}
	ccfg.ClientID = id
	ccfg.Bugs = r.cfg.plant().Bugs
	if tune != nil {
		tune(&ccfg)
	}
	n := r.w.AddNode(addr, func(env node.Env) node.Handler { return client.New(env, ccfg) })
	return n.Handler().(*client.Client)
}

func queueKey(q client.MessageQueue) linearizability.QueueKey {
	return linearizability.QueueKey{Broker: q.BrokerName, Topic: q.Topic, QueueID: q.QueueID}
}

// body is the payload of message id: the id, a separator, n bytes of deterministic filler,
// then the producer's checksum of all that (withPayloadSum), which consumers verify.
func body(id string, n int) []byte {
	b := make([]byte, 0, len(id)+1+n+payloadSumLen)
	b = append(b, id...)
	b = append(b, '|')
	for i := 0; i < n; i++ {
		b = append(b, byte('a'+(i+len(id))%26))
	}
	return withPayloadSum(b)
}

// sendRecorded sends one uniquely identified message and records the call in the history.
func (r *run) sendRecorded(cli *client.Client, clientIdx int, id string, done func(error)) {
	call := int64(r.w.Now())
	b := body(id, 32+r.w.Rand().IntN(480))
	cli.Send(client.Message{Topic: r.cfg.Topic, Body: b, Properties: r.withSQLProps(id, map[string]string{codec.PropUniqKey: id})},
		func(res client.SendResult, err error) {
			op := linearizability.SendOp{Client: clientIdx, Queue: queueKey(res.Queue), MsgID: id, Call: call,
				Return: int64(r.w.Now()), Offset: res.QueueOffset, Outcome: linearizability.OK}
			if err != nil {
				op.Outcome = linearizability.Unknown
				if client.Definite(err) {
					op.Outcome = linearizability.Failed
				}
			}
			r.report.Sends[op.Outcome]++
			r.h.AddSend(op)
			done(err)
		})
}

func (r *run) startProducer(i int) {
	cli := r.addClientWith(ProducerAddr(i), fmt.Sprintf("producer-%d", i), r.tuneProducer)
	const maxInflight = 8
	inflight, seq := 0, 0
	var tick func()
	tick = func() {
		if r.w.Now() >= r.stopAt {
			return
		}
		if inflight < maxInflight {
			inflight++
			r.produce(cli, i, fmt.Sprintf("p%d-%d", i, seq), func() { inflight-- })
			seq++
		}
		r.w.After(r.sendGap(), tick)
	}
	r.w.After(100*time.Millisecond, tick)
}

// sendGap draws the time from one producer's send to its next: with Config.Rate unset, 2 to
// 21 ms (the pacing of every recorded seed; one draw either way, so traces stay as they were);
// with it set, uniform between half and one and a half times the mean gap that offers Rate
// messages per second across all producers.
func (r *run) sendGap() time.Duration {
	if r.cfg.Rate <= 0 {
		return time.Duration(2+r.w.Rand().IntN(20)) * time.Millisecond
	}
	mean := float64(time.Second) * float64(max(r.cfg.Producers, 1)) / r.cfg.Rate
	return max(time.Duration(mean*(0.5+r.w.Rand().Float64())), time.Microsecond)
}

// probe checks liveness after healing: a send must succeed within a bound.
func (r *run) probe(cli *client.Client) {
	const bound = 30 * time.Second
	deadline := r.w.Now() + bound
	ok, inflight, n := false, false, 0
	var last error
	for !ok && r.w.Now() < deadline {
		if !inflight {
			inflight = true
			r.sendRecorded(cli, 998, fmt.Sprintf("probe-%d", n), func(err error) { ok, inflight, last = err == nil, false, err })
			n++
		}
		r.w.RunFor(100 * time.Millisecond)
	}
	if !ok {
		r.violate("liveness", "no send succeeded within %v of healing (%d attempts; last: %v)", bound, n, last)
	}
}

// verify checks a pulled message against what its producer sent: first its payload against the
// producer's checksum in it and its UNIQ_KEY against the id in the payload, independently of
// anything the broker checked (a failure is "served corrupt"), then the whole payload.
func (r *run) verify(m *codec.Message) (string, bool) {
	id := codec.Property(m.Properties, codec.PropUniqKey)
	if !payloadSumOK(m.Body) {
		r.violate(KindServedCorrupt, "message %q at %s/%d offset %d: its payload fails the producer's checksum (crc %08x)",
			id, m.Topic, m.QueueID, m.QueueOffset, crc32.ChecksumIEEE(m.Body))
		return id, false
	}
	if id == "" || !bytes.HasPrefix(m.Body, []byte(id+"|")) {
		r.violate(KindServedCorrupt, "message at %s/%d offset %d: UNIQ_KEY %q is not the id its payload carries",
			m.Topic, m.QueueID, m.QueueOffset, id)
		return id, false
	}
	n := len(m.Body) - len(id) - 1 - payloadSumLen
	if n < 0 || !bytes.Equal(m.Body, body(id, n)) {
		r.violate("corrupt message", "message %s at %s/%d offset %d: body does not match what was sent (crc %08x)",
			id, m.Topic, m.QueueID, m.QueueOffset, crc32.ChecksumIEEE(m.Body))
		return id, false
	}
	return id, true
}

// pullRecorded pulls once and records the call in the history. In the groups topology a pull
// a slave answered (see servedByMaster) is recorded like any other when it returned messages:
// a slave serves only what the master confirmed, entries no replica ever rewrites, so they were
// in the log at those offsets before the answer. An answer without messages from a slave says
// nothing about the log (its confirmed index trails the master's acknowledgements: RocketMQ's
// reads from slaves are not linearizable for absence) and is recorded Unknown.
func (r *run) pullRecorded(cli *client.Client, clientIdx int, req client.PullRequest, done func(client.PullResult, error)) {
	call := int64(r.w.Now())
	masters := r.masterEpochs()
	cli.Pull(req, func(res client.PullResult, err error) {
		op := linearizability.PullOp{Client: clientIdx, Queue: queueKey(req.Queue), Offset: req.Offset, Call: call,
			Return: int64(r.w.Now()), Outcome: linearizability.OK}
		if err != nil {
			op.Outcome = linearizability.Unknown
			if client.Definite(err) {
				op.Outcome = linearizability.Failed
			}
		}
		if errors.Is(err, client.ErrCorruptMessage) {
			r.servedCorrupt(req, err)
		}
		if err == nil && res.Status == codec.Success {
			for _, m := range res.Msgs {
				if id, ok := r.verify(m); ok {
					op.Msgs = append(op.Msgs, pulledMsg(m, id))
				}
			}
		}
		if err == nil && res.Status == codec.PullRetryImmediately {
			op.Outcome = linearizability.Unknown // filtered pulls say nothing about the log
		}
		if err == nil && res.Status == codec.PullOffsetMoved && r.cfg.retentionOn() {
			// Below the queue's min offset: retention removed what was there (retention.go
			// judges that); the answer says nothing about the log's end.
			op.Outcome = linearizability.Unknown
		}
		if err == nil && r.gr != nil {
			r.checkMasterPull(res.Addr, masters, time.Duration(call), op.Queue, op.Offset, res.Status, len(res.Msgs))
		}
		if err == nil && r.gr != nil && !r.servedByMaster(res.Addr, masters) {
			r.report.SlavePulls++
			r.report.SlavePullMsgs += len(res.Msgs)
			if len(op.Msgs) == 0 {
				op.Outcome = linearizability.Unknown
			}
		}
		r.report.Pulls++
		r.addPull(op)
		done(res, err)
	})
}

// consumerGroup is the group of the plain consumers (and, with the retry flow, of the retries).
const consumerGroup = "SimConsumers"

func (r *run) startConsumer(i int) {
	idx := 100 + i
	cli := r.addClientWith(ConsumerAddr(i), fmt.Sprintf("consumer-%d", i), r.tuneConsumer)
	if r.flows.Retry {
		cli.RegisterConsumer(client.ConsumerGroup{Name: consumerGroup, Subscriptions: map[string]string{r.cfg.Topic: "*"}})
	}
	always := func() bool { return true }
	topics := []string{r.cfg.Topic}
	if r.flows.Retry {
		topics = append(topics, client.RetryTopic(consumerGroup))
	}
	for _, topic := range topics {
		r.discoverQueues(cli, topic, 200*time.Millisecond, func(qs []client.MessageQueue) {
			for j, q := range qs {
				if j%r.cfg.Consumers == i {
					r.consumeQueue(cli, idx, consumerGroup, q, always, r.onConsumed)
				}
			}
		})
	}
}

// discoverQueues looks up topic's queues after a first delay, and again every half second
// until it finds some (or the workload stops), then hands them to found.
func (r *run) discoverQueues(cli *client.Client, topic string, first time.Duration, found func([]client.MessageQueue)) {
	var discover func()
	discover = func() {
		if r.stopped {
			return
		}
		cli.Queues(topic, func(qs []client.MessageQueue, err error) {
			if err != nil || len(qs) == 0 {
				cli.InvalidateRoute(topic)
				r.w.After(500*time.Millisecond, discover)
				return
			}
			found(qs)
		})
	}
	r.w.After(first, discover)
}

// consumeQueue consumes q for group from its committed offset while active says so (and the
// run goes on), committing now and then; consumed, if not nil, sees every pulled message.
func (r *run) consumeQueue(cli *client.Client, idx int, group string, q client.MessageQueue, active func() bool,
	consumed func(cli *client.Client, q client.MessageQueue, m *codec.Message)) {
	var offset int64
	var lastCommit time.Duration
	var pull, begin func()
	r.judgeCommits(group)
	backoff := func(f func()) { r.w.After(time.Duration(100+r.w.Rand().IntN(900))*time.Millisecond, f) }
	begin = func() {
		if r.stopped || !active() {
			return
		}
		cli.QueryOffset(group, q, func(off int64, found bool, err error) {
			if err != nil {
				backoff(begin)
				return
			}
			k := groupQueue{group, queueKey(q)}
			r.offsetReads[k] = append(r.offsetReads[k], offsetRead{at: r.w.Now(), offset: off, found: found})
			offset = 0
			if found {
				offset = off
			}
			r.report.ResumeBehindWorst = max(r.report.ResumeBehindWorst, r.pulledUpTo[k]-offset)
			pull()
		})
	}
	pull = func() {
		if r.stopped {
			return
		}
		if !active() {
			cli.CommitOffset(group, q, offset)
			return
		}
		req := client.PullRequest{Queue: q, Group: group, Offset: offset, MaxMsgs: 32, SuspendMillis: 1000}
		r.pullRecorded(cli, idx, req, func(res client.PullResult, err error) {
			if err != nil {
				// As after a rebalance, resume from the offset the broker has committed.
				backoff(begin)
				return
			}
			if res.Status == codec.Success {
				r.consumed += len(res.Msgs)
				r.noteDelivered(group, queueKey(q), res.Msgs)
				k := groupQueue{group, queueKey(q)}
				for _, m := range res.Msgs {
					if m.QueueOffset < r.pulledUpTo[k] {
						r.report.Redelivered++
					}
					r.pulledUpTo[k] = max(r.pulledUpTo[k], m.QueueOffset+1)
					r.noteProcessed(k, m.QueueOffset)
				}
				if consumed != nil {
					for _, m := range res.Msgs {
						consumed(cli, q, m)
					}
				}
			}
			offset = res.NextBeginOffset
			r.commitNowAndThen(cli, group, q, offset, &lastCommit)
			r.w.After(0, pull)
		})
	}
	begin()
}

// commitNowAndThen commits offset for group on q when the last commit (at *last) is more than
// a second old, as a consumer's periodic offset persistence does.
func (r *run) commitNowAndThen(cli *client.Client, group string, q client.MessageQueue, offset int64, last *time.Duration) {
	if r.w.Now()-*last > time.Second {
		*last = r.w.Now()
		cli.CommitOffset(group, q, offset)
	}
}

// drain reads every queue of every topic the run wrote (its topic, and the retry and
// dead-letter topics of the retry flow) from offset 0 to its end with a fresh client once
// faults have healed and everything delayed is due. Liveness: it must finish within a bound of
// virtual time.
func (r *run) drain(state func() string) map[linearizability.QueueKey][]linearizability.PulledMsg {
	cli := r.addClient("127.0.4.1:1", "drainer")
	r.probe(cli)
	r.settle()
	out := map[linearizability.QueueKey][]linearizability.PulledMsg{}
	const bound = 60 * time.Second
	deadline := r.w.Now() + bound
	topics := []string{r.cfg.Topic}
	if r.flows.Retry {
		topics = append(topics, client.RetryTopic(consumerGroup), client.DLQTopic(consumerGroup))
	}
	pending := 0
	for i, topic := range topics {
		pending++
		// The run's own topic must have a route; the others exist only if something was written.
		required := i == 0
		tries := 0
		var discover func()
		discover = func() {
			cli.Queues(topic, func(qs []client.MessageQueue, err error) {
				if err != nil {
					cli.InvalidateRoute(topic)
					if tries++; required || tries < 10 {
						r.w.After(500*time.Millisecond, discover)
						return
					}
					qs = nil
				}
				pending += len(qs) - 1
				for _, q := range qs {
					r.drainQueue(cli, q, out, func() { pending-- })
				}
			})
		}
		discover()
	}
	for pending != 0 && r.w.Now() < deadline {
		r.w.RunFor(100 * time.Millisecond)
	}
	if pending != 0 {
		r.violate("liveness", "the final drain did not finish within %v of healing (%s)", bound, state())
	}
	for _, msgs := range out {
		r.report.Drained += len(msgs)
	}
	return out
}

func (r *run) drainQueue(cli *client.Client, q client.MessageQueue, out map[linearizability.QueueKey][]linearizability.PulledMsg, done func()) {
	key := queueKey(q)
	out[key] = []linearizability.PulledMsg{}
	var offset int64
	var pull func()
	pull = func() {
		req := client.PullRequest{Queue: q, Group: "SimDrain", Offset: offset, MaxMsgs: 256}
		var masters map[string]int64
		if r.gr != nil {
			masters = r.masterEpochs()
		}
		r.pullRecorded(cli, 999, req, func(res client.PullResult, err error) {
			if err != nil {
				r.w.After(200*time.Millisecond, pull)
				return
			}
			r.drainAnswered(key, res.Addr)
			if res.Status != codec.Success && r.gr != nil && !r.servedByMaster(res.Addr, masters) {
				// Only the master knows where the log ends: a slave may not have heard
				// yet that the last acknowledged messages are confirmed.
				r.w.After(200*time.Millisecond, pull)
				return
			}
			switch res.Status {
			case codec.Success:
				for _, m := range res.Msgs {
					for m.QueueOffset > offset && r.h.Unreadable[key][offset] {
						offset++ // a destroyed message the broker skips
					}
					if m.QueueOffset != offset {
						r.violate("order", "drain of %s expected offset %d, got %d", key, offset, m.QueueOffset)
					}
					if id, ok := r.verify(m); ok {
						out[key] = append(out[key], pulledMsg(m, id))
					}
					offset = m.QueueOffset + 1
				}
				r.w.After(0, pull)
			case codec.PullRetryImmediately:
				// Nothing readable in what the broker scanned: destroyed messages only. Move
				// past them; skipping anything else is a violation.
				next := res.NextBeginOffset
				if next <= offset {
					done()
					return
				}
				for ; offset < next; offset++ {
					if !r.h.Unreadable[key][offset] {
						r.violate("order", "drain of %s at offset %d: the broker moved on to %d past messages no fault destroyed", key, offset, next)
						offset = next
						break
					}
				}
				r.w.After(0, pull)
			case codec.PullOffsetMoved:
				// Retention removed the queue's oldest messages: the drain starts at its min
				// offset (retention.go judges what went; the drain check what is left).
				if next := res.NextBeginOffset; r.cfg.retentionOn() && next > offset {
					offset = next
					r.w.After(0, pull)
					return
				}
				done()
			default:
				done()
			}
		})
	}
	pull()
}
