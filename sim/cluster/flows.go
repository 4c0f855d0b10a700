package cluster

// The workload's flows beyond plain sends and pulls, run through the project's own client:
// batch, delayed and transactional sends, consumers that fail messages and send them back
// (retries, dead letters), orderly consumers that take queue locks, and a consumer that starts
// from a timestamp. Which of them a run exercises, and how hard, is drawn from its seed (swarm
// testing, like the fault mix). What they do is recorded and turned into history entries after
// the run (flowHistory): broker writes the log model and the invariants check, withheld
// messages, lock and search operations.

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
)

// Flows says which flows besides plain sends and pulls a run exercises.
type Flows struct {
	// Batch: producers send some messages in batches (SEND_BATCH_MESSAGE).
	Batch bool
	// Delay: some sends carry a delay level (1 to 3: 1 s, 5 s, 10 s).
	Delay bool
	// Transactions: some sends are transactional: committed, rolled back, or left to the
	// broker's check-back.
	Transactions bool
	// Retry: consumers fail some messages (PoisonPercent of them always) and send them back,
	// through %RETRY%<group> to %DLQ%<group> after MaxReconsumeTimes.
	Retry             bool
	PoisonPercent     int
	MaxReconsumeTimes int
	// Orderly: an orderly consumer group takes queue locks with the broker's lease LockLease,
	// and rotates its queues every RotateEvery.
	Orderly     bool
	LockLease   time.Duration
	RotateEvery time.Duration
	// FromTime: a consumer starts from a timestamp (SEARCH_OFFSET_BY_TIMESTAMP).
	FromTime bool
	// TxnCheckInterval and TxnTimeout are the broker's transaction check-back settings.
	TxnCheckInterval time.Duration
	TxnTimeout       time.Duration
	// SQL92: producers put user properties on every message, and a consumer group
	// subscribed with the SQL92 selector sqlSelectors[SQLSelector] consumes the topic
	// (sqlflow.go); with SQLViaHeartbeat the selector reaches the broker only in the group's
	// heartbeats, not in the pulls.
	SQL92           bool
	SQLSelector     int
	SQLViaHeartbeat bool
	// Broadcast: consumers of a broadcasting group each read every queue (broadcast.go). The
	// swarm never draws it (the seeds keep their traces); plan files and the property tests
	// of props_test.go turn it on, in either topology.
	Broadcast bool `json:",omitempty"`
}

// SwarmFlows draws a flow mix from r: each flow is on or off, with its own parameters.
func SwarmFlows(r *rand.Rand) Flows {
	on := func() bool { return r.IntN(3) != 0 }
	f := Flows{Batch: on(), Delay: on(), Transactions: on(), Retry: on(), Orderly: on(), FromTime: on()}
	f.PoisonPercent = 1 + r.IntN(8)
	f.MaxReconsumeTimes = 1 + r.IntN(3)
	f.LockLease = time.Duration(4+r.IntN(12)) * time.Second
	f.RotateEvery = time.Duration(3+r.IntN(10)) * time.Second
	f.TxnCheckInterval = time.Duration(1+r.IntN(4)) * time.Second
	f.TxnTimeout = time.Duration(1+r.IntN(3)) * time.Second
	return f
}

// drawFlows is the run's flow mix: the configured one, or one drawn from the seed with a PRNG
// of its own, so that the mix does not move the workload's or the fault plan's draws.
func (r *run) drawFlows() Flows {
	if r.cfg.Flows != nil {
		return *r.cfg.Flows
	}
	f := SwarmFlows(rand.New(rand.NewPCG(r.cfg.Seed, 0xf10a5)))
	// Flows added later draw from PRNGs of their own, so the earlier ones' draws stay put.
	drawSQL92(&f, rand.New(rand.NewPCG(r.cfg.Seed, 0x5e1ec792)))
	return f
}

// configureBroker applies the flow mix to the broker's configuration.
func (r *run) configureBroker(b *brokernode.Config) {
	if r.flows.Orderly {
		b.LockLease = r.flows.LockLease
	}
	if r.flows.Transactions {
		b.TxnCheckInterval, b.TxnTimeout = r.flows.TxnCheckInterval, r.flows.TxnTimeout
	}
	r.delayTable = b.DelayLevels
	if r.delayTable == nil {
		r.delayTable = brokernode.DefaultConfig().DelayLevels
	}
}

// lockLease is the broker's lock lease, in virtual time: shortened by what clock faults may
// have added to the broker's clock (0 when they may have eaten it all: nothing can be checked).
func (r *run) lockLease() time.Duration {
	lease := brokernode.DefaultConfig().LockLease
	if r.flows.Orderly {
		lease = r.flows.LockLease
	}
	return max(0, lease-2*r.clockSlack())
}

// delayOf is the delay of a level, as the broker's table says (clamped to its last level).
func (r *run) delayOf(level int) time.Duration {
	if level < 1 {
		return 0
	}
	return r.delayTable[min(level, len(r.delayTable))-1]
}

// brokerDownTimes lists when the broker may have gone down: every planned crash (whether or
// not it struck: a crash of a node already down is skipped) and every restart of the harness.
func (r *run) brokerDownTimes() []int64 {
	var out []int64
	for _, f := range r.plan {
		if f.Kind == faults.Crash && f.Node == BrokerAddr {
			out = append(out, int64(f.At))
		}
	}
	return append(out, r.restarts...)
}

// stallsBroker reports whether f strikes the broker process, its disk or its clock (faults
// that can hold up what the broker does by itself, or move its idea of time), as opposed to
// its links.
func stallsBroker(f faults.Fault) bool {
	if f.Node != BrokerAddr && !slices.Contains(f.Nodes, BrokerAddr) {
		return false
	}
	return f.Kind == faults.Crash || slices.Contains(faults.ProcessKinds, f.Kind) ||
		slices.Contains(faults.DiskKinds, f.Kind) || slices.Contains(faults.ClockKinds, f.Kind)
}

// stallFaults are the plan's faults that stall the broker (stallsBroker), and of them its
// clock faults, in plan order: the bounds below walk them for every flow operation, so they
// are filtered once (the plan does not change once the run starts).
type stallFaults struct {
	planLen    int
	all, clock []faults.Fault
}

// brokerStalls returns the plan's stallFaults, filtering the plan on first use.
func (r *run) brokerStalls() *stallFaults {
	if r.stalls == nil || r.stalls.planLen != len(r.plan) {
		st := &stallFaults{planLen: len(r.plan)}
		for _, f := range r.plan {
			if stallsBroker(f) {
				st.all = append(st.all, f)
				if slices.Contains(faults.ClockKinds, f.Kind) {
					st.clock = append(st.clock, f)
				}
			}
		}
		r.stalls = st
	}
	return r.stalls
}

// lateness is how late a broker write due at t may be: a little for timers and fsyncs, plus
// every stall of the broker that ends after t (down, paused, its disk failing or slow, its
// clock moved: it may be held up more than once before it gets to it), plus every clock fault
// that started before t. The broker measures a delay from the store timestamp it took on its
// own clock, so a clock that was ahead when a delayed message was stored makes it due that
// much later, and every later message of its level (a FIFO) waits behind it, even if the
// clock is right again by the time they are due.
func (r *run) lateness(t time.Duration) time.Duration {
	d := 3 * time.Second
	for _, f := range r.brokerStalls().all {
		switch {
		case f.At+f.Duration >= t:
			d += f.Duration + f.Delta.Abs()
		case slices.Contains(faults.ClockKinds, f.Kind):
			d += f.Delta.Abs()
		}
	}
	return d
}

// storeDeadline turns t, a virtual-time deadline for a write the broker made after from, into
// one for its store timestamp, which the broker takes from its own clock: clock faults in
// effect meanwhile may have put that clock ahead.
func (r *run) storeDeadline(from, t time.Duration) int64 {
	return int64(t + r.clockOffsetOver(from, t))
}

// clockOffsetOver is the most the broker's clock may be off (either way) at some moment of
// [a, b]: every clock fault in effect then may have moved it by its Delta.
func (r *run) clockOffsetOver(a, b time.Duration) time.Duration {
	var d time.Duration
	for _, f := range r.brokerStalls().clock {
		if f.At <= b && f.At+f.Duration >= a {
			d += f.Delta.Abs()
		}
	}
	return d
}

// earliestDue is the earliest virtual time the broker may find due a message delayed by delay
// and stored between from and to. It measures the delay from the store timestamp it took on
// its clock, and compares with its clock again when it delivers: a clock behind at the store
// or ahead at the delivery makes it due early, by as much as the clock faults in effect then;
// and a message whose store timestamp is later than the clock reads (the clock stepped back
// since) is delivered at once (brokernode's deliverDue). A clock fault that ends before the
// store or starts after the due time moves nothing, so the bound stays tight where the clock
// was right (a bound loosened by every clock fault of the run opens the log model's window of
// every broker write at the start of the run, and Porcupine's search blows up).
func (r *run) earliestDue(from, to, delay time.Duration) time.Duration {
	// The stored timestamp plus the delay, in virtual time, at the earliest.
	target := from + delay - r.clockOffsetOver(from, to)
	if target <= from {
		return from
	}
	// The clock steps back when a fault sets it behind, or heals one that set it ahead (a
	// jump slews back at most at half speed, so it never runs backwards).
	for _, f := range r.brokerStalls().all {
		var back time.Duration
		switch {
		case (f.Kind == faults.ClockSkew || f.Kind == faults.ClockJump) && f.Delta < 0:
			back = f.At
		case f.Kind == faults.ClockSkew && f.Delta > 0:
			back = min(f.At+f.Duration, r.cfg.Duration+healWait) // or when Run heals everything
		default:
			continue
		}
		if back >= from && back < target {
			target = back
		}
	}
	// Delivered at t once t plus the clock's offset at t reaches target: split [from, target)
	// at the clock faults' edges, and on each piece the offset is at most the faults in
	// effect there.
	cuts := []time.Duration{from, target}
	for _, f := range r.brokerStalls().clock {
		for _, c := range []time.Duration{f.At, f.At + f.Duration} {
			if c > from && c < target {
				cuts = append(cuts, c)
			}
		}
	}
	slices.Sort(cuts)
	best := target
	for i := 0; i+1 < len(cuts); i++ {
		lo, hi := cuts[i], cuts[i+1]
		if c := max(lo, target-r.clockOffsetOver(lo, hi)); c < best && c <= hi {
			best = c
		}
	}
	return best
}

// clockSlack is how far the broker's clock may have moved against virtual time over the run
// (clock faults): its due times and lock leases are measured on that clock.
func (r *run) clockSlack() time.Duration {
	var d time.Duration
	for _, f := range r.brokerStalls().clock {
		d += f.Delta.Abs()
	}
	return d
}

func (r *run) tuneProducer(c *client.Config) {
	c.ProducerGroup = producerGroup
	if r.flows.Transactions {
		// The broker checks back on a producer connection it knows from a heartbeat.
		c.HeartbeatInterval = 2 * time.Second
		c.CheckTransaction = r.checkTransaction
	}
}

func (r *run) tuneConsumer(c *client.Config) {
	if r.flows.Retry {
		c.HeartbeatInterval = 3 * time.Second
	}
}

// startFlowClients starts the clients of the flows that have their own.
func (r *run) startFlowClients() {
	if r.flows.Orderly {
		for i := 0; i < 2; i++ {
			r.startOrderly(i)
		}
	}
	if r.flows.FromTime {
		r.startFromTime()
	}
	if r.flows.SQL92 {
		r.startSQLConsumer()
	}
	r.startBroadcasts()
}

// producerGroup is the producers' group (the transactions' check-backs go to any member).
const producerGroup = "SimProducers"

// produce sends one message (or batch) with ids derived from id, of a kind drawn from the
// flow mix, and calls done when it has finished.
func (r *run) produce(cli *client.Client, i int, id string, done func()) {
	kind := r.w.Rand().IntN(100)
	switch {
	case r.flows.Batch && kind < 12:
		r.sendBatch(cli, i, id, done)
	case r.flows.Delay && kind >= 12 && kind < 24:
		r.sendDelayed(cli, i, id, done)
	case r.flows.Transactions && kind >= 24 && kind < 36:
		r.sendTransactional(cli, i, id, done)
	default:
		r.sendRecorded(cli, i, id, func(error) { done() })
	}
}

func outcomeOf(err error) linearizability.Outcome {
	switch {
	case err == nil:
		return linearizability.OK
	case client.Definite(err):
		return linearizability.Failed
	}
	return linearizability.Unknown
}

func (r *run) newBody(id string) []byte { return body(id, 32+r.w.Rand().IntN(480)) }

// sendBatch sends 2 to 6 messages in one batch. Each is recorded as its own send, acknowledged
// (if the batch is) at consecutive offsets of the batch's queue: the log model then checks the
// batch landed there, whole and uninterrupted.
func (r *run) sendBatch(cli *client.Client, i int, id string, done func()) {
	n := 2 + r.w.Rand().IntN(5)
	msgs := make([]client.Message, n)
	for j := range msgs {
		mid := fmt.Sprintf("%s.%d", id, j)
		msgs[j] = client.Message{Topic: r.cfg.Topic, Body: r.newBody(mid), Properties: r.withSQLProps(mid, map[string]string{codec.PropUniqKey: mid})}
	}
	call := int64(r.w.Now())
	cli.SendBatch(msgs, func(res client.SendResult, err error) {
		out := outcomeOf(err)
		for j := range msgs {
			r.h.AddSend(linearizability.SendOp{Client: i, Queue: queueKey(res.Queue), MsgID: msgs[j].Properties[codec.PropUniqKey],
				Call: call, Return: int64(r.w.Now()), Offset: res.QueueOffset + int64(j), Outcome: out})
			r.report.Sends[out]++
		}
		if out == linearizability.OK {
			r.report.FlowCounts["batch"]++
		}
		done()
	})
}

// delayedSend is one send with a delay level. Its acknowledgement is for the broker's schedule
// queue; its message is a broker write to the real queue, due delay after the send.
type delayedSend struct {
	id           string
	queue        linearizability.QueueKey
	level        int
	call, ret    time.Duration
	outcome      linearizability.Outcome
	sendClientID int
}

func (r *run) sendDelayed(cli *client.Client, i int, id string, done func()) {
	level := 1 + r.w.Rand().IntN(3)
	call := r.w.Now()
	m := client.Message{Topic: r.cfg.Topic, Body: r.newBody(id), Properties: r.withSQLProps(id, map[string]string{codec.PropUniqKey: id}), DelayLevel: level}
	cli.Send(m, func(res client.SendResult, err error) {
		out := outcomeOf(err)
		r.delayed = append(r.delayed, delayedSend{id: id, queue: queueKey(res.Queue), level: level, call: call,
			ret: r.w.Now(), outcome: out, sendClientID: i})
		if out == linearizability.OK {
			r.report.FlowCounts["delay"]++
		}
		done()
	})
}

// historyID is the id a pulled message is recorded under: its UNIQ_KEY, or for a retry its
// key and reconsume count (each retry is a message of its own), or for a dead letter its key
// marked as such.
func historyID(topic, uniq string, reconsumeTimes int32) string {
	switch {
	case strings.HasPrefix(topic, "%RETRY%"):
		return fmt.Sprintf("%s#r%d", uniq, reconsumeTimes)
	case strings.HasPrefix(topic, "%DLQ%"):
		return uniq + "#dlq"
	}
	return uniq
}

// pulledMsg records a pulled message with its store time in virtual time.
func pulledMsg(m *codec.Message, uniq string) linearizability.PulledMsg {
	return linearizability.PulledMsg{Offset: m.QueueOffset, MsgID: historyID(m.Topic, uniq, m.ReconsumeTimes),
		StoreTime: (m.StoreTimestamp - sim.Epoch.UnixMilli()) * int64(time.Millisecond), Stamped: true}
}

// sendBackOp is one CONSUMER_SEND_MSG_BACK: message uniq, reconsumed gen times, sent back with
// a delay level (0: the broker's choice) and a reconsume limit.
type sendBackOp struct {
	uniq       string
	gen        int32
	level, max int
	broker     string
	call, ret  time.Duration
	outcome    linearizability.Outcome
}

// target is where the broker writes the message back, and under which history id.
func (b sendBackOp) target() (linearizability.QueueKey, string, int) {
	if int(b.gen) >= b.max || b.level < 0 {
		return linearizability.QueueKey{Broker: b.broker, Topic: client.DLQTopic(consumerGroup)}, b.uniq + "#dlq", 0
	}
	level := b.level
	if level == 0 {
		level = 3 + int(b.gen)
	}
	return linearizability.QueueKey{Broker: b.broker, Topic: client.RetryTopic(consumerGroup)}, historyID("%RETRY%", b.uniq, b.gen+1), level
}

// poison reports whether a message always fails (until it is a dead letter).
func (r *run) poison(uniq string) bool {
	h := fnv.New32a()
	h.Write([]byte(uniq))
	return int(h.Sum32()%100) < r.flows.PoisonPercent
}

// onConsumed is the plain consumers' handling of a message: with the retry flow, poison
// messages and a few others fail and are sent back.
func (r *run) onConsumed(cli *client.Client, q client.MessageQueue, m *codec.Message) {
	if !r.flows.Retry || r.stopped {
		return
	}
	uniq := codec.Property(m.Properties, codec.PropUniqKey)
	if uniq == "" || !r.poison(uniq) && r.w.Rand().IntN(100) >= 2 {
		return
	}
	r.sendBack(cli, q, m, 0)
}

func (r *run) sendBack(cli *client.Client, q client.MessageQueue, m *codec.Message, attempt int) {
	level := 1
	switch x := r.w.Rand().IntN(100); {
	case x < 5:
		level = -1
	case x < 50:
		level = 1
	case x < 85:
		level = 2
	default:
		level = 0
	}
	op := sendBackOp{uniq: codec.Property(m.Properties, codec.PropUniqKey), gen: m.ReconsumeTimes, level: level,
		max: r.flows.MaxReconsumeTimes, broker: q.BrokerName, call: r.w.Now()}
	cli.SendBack(client.SendBack{Queue: q, Msg: m, Group: consumerGroup, DelayLevel: level, MaxReconsumeTimes: op.max},
		func(err error) {
			op.ret, op.outcome = r.w.Now(), outcomeOf(err)
			r.sendBacks = append(r.sendBacks, op)
			if err == nil {
				if tq, _, _ := op.target(); strings.HasPrefix(tq.Topic, "%DLQ%") {
					r.report.FlowCounts["dlq"]++
				} else {
					r.report.FlowCounts["retry"]++
				}
				return
			}
			if !r.stopped && attempt < 3 {
				r.w.After(300*time.Millisecond, func() { r.sendBack(cli, q, m, attempt+1) })
			}
		})
}

// orderlyGroup is the orderly consumers' group.
const orderlyGroup = "SimOrderly"

// startOrderly runs orderly consumer i of two: every second it locks the queues it wants (the
// two consumers swap halves every RotateEvery), unlocks the ones it gave up (or, now and then,
// forgets to, leaving them to the lease), and consumes a queue only while its lock, renewed
// within half the broker's lease, is held. Now and then it stalls for a while, renewing
// nothing, as a consumer stuck in a long pause would.
func (r *run) startOrderly(i int) {
	idx := 200 + i
	cli := r.addClient(fmt.Sprintf("127.0.5.%d:1", i+1), fmt.Sprintf("orderly-%d", i))
	held := map[client.MessageQueue]time.Duration{} // until when the lock is surely held
	consuming := map[client.MessageQueue]bool{}
	var queues []client.MessageQueue
	var stalledUntil time.Duration
	localLease := r.flows.LockLease / 2
	var round func()
	round = func() {
		if r.stopped {
			return
		}
		r.w.After(time.Second, round)
		now := r.w.Now()
		if now < stalledUntil {
			return
		}
		if r.w.Rand().IntN(100) < 3 {
			stalledUntil = now + time.Duration(2+r.w.Rand().IntN(12))*time.Second
			return
		}
		if queues == nil {
			cli.Queues(r.cfg.Topic, func(qs []client.MessageQueue, err error) {
				if err == nil {
					queues = qs
				} else {
					cli.InvalidateRoute(r.cfg.Topic)
				}
			})
			return
		}
		epoch := int(now / r.flows.RotateEvery)
		var want, drop []client.MessageQueue
		for j, q := range queues {
			switch {
			case (j+epoch)%2 == i:
				want = append(want, q)
			case held[q] > now:
				drop = append(drop, q)
				delete(held, q)
			}
		}
		if len(drop) > 0 && r.w.Rand().IntN(100) < 80 {
			r.lockRecorded(cli, idx, drop, true, nil)
		}
		if len(want) == 0 {
			return
		}
		call := now
		r.lockRecorded(cli, idx, want, false, func(locked []client.MessageQueue) {
			for _, q := range locked {
				q := q
				if (int(r.w.Now()/r.flows.RotateEvery)+indexOf(queues, q))%2 != i {
					continue // rotated away while the lock was in flight
				}
				held[q] = call + localLease
				if consuming[q] {
					continue
				}
				consuming[q] = true
				active := func() bool {
					if t := r.w.Now(); t < held[q] && t >= stalledUntil {
						return true
					}
					consuming[q] = false
					return false
				}
				r.consumeQueue(cli, idx, orderlyGroup, q, active, nil)
			}
		})
	}
	r.w.After(300*time.Millisecond, round)
}

func indexOf(qs []client.MessageQueue, q client.MessageQueue) int {
	for i, x := range qs {
		if x == q {
			return i
		}
	}
	return -1
}

// lockRecorded locks (or unlocks) qs and records one operation per queue; locked, if not nil,
// gets the queues a successful lock granted.
func (r *run) lockRecorded(cli *client.Client, idx int, qs []client.MessageQueue, unlock bool, locked func([]client.MessageQueue)) {
	call := int64(r.w.Now())
	record := func(granted []client.MessageQueue, err error) {
		ok := map[client.MessageQueue]bool{}
		for _, q := range granted {
			ok[q] = true
		}
		for _, q := range qs {
			r.h.Locks = append(r.h.Locks, linearizability.LockOp{Client: idx, Group: orderlyGroup, Queue: queueKey(q),
				Call: call, Return: int64(r.w.Now()), Outcome: outcomeOf(err), Unlock: unlock, Granted: ok[q]})
		}
	}
	if unlock {
		cli.Unlock(orderlyGroup, qs, func(err error) {
			record(nil, err)
			if err == nil {
				r.report.FlowCounts["unlocks"] += len(qs)
			}
		})
		return
	}
	cli.Lock(orderlyGroup, qs, func(granted []client.MessageQueue, err error) {
		record(granted, err)
		r.report.FlowCounts["locks"] += len(granted)
		if err == nil && locked != nil {
			locked(granted)
		}
	})
}

// startFromTime runs a consumer that joins mid-run and starts from a timestamp: twice, it
// asks every queue for the offset of a moment in the past and reads from there to the end.
func (r *run) startFromTime() {
	const idx = 300
	cli := r.addClient("127.0.5.9:1", "from-time")
	var search func(round int)
	search = func(round int) {
		if r.stopped || round >= 2 {
			return
		}
		now := r.w.Now()
		ts := time.Duration(r.w.Rand().Int64N(int64(now) + 1)).Truncate(time.Millisecond)
		cli.Queues(r.cfg.Topic, func(qs []client.MessageQueue, err error) {
			if err != nil {
				cli.InvalidateRoute(r.cfg.Topic)
				r.w.After(500*time.Millisecond, func() { search(round) })
				return
			}
			for _, q := range qs {
				call := int64(r.w.Now())
				cli.SearchOffset(q, sim.Epoch.Add(ts), func(off int64, err error) {
					r.h.Searches = append(r.h.Searches, linearizability.SearchOp{Client: idx, Queue: queueKey(q), Time: int64(ts),
						Call: call, Return: int64(r.w.Now()), Outcome: outcomeOf(err), Offset: off})
					if err != nil {
						return
					}
					r.report.FlowCounts["searches"]++
					r.readFrom(cli, idx, q, off)
				})
			}
			r.w.After(time.Duration(3+r.w.Rand().IntN(8))*time.Second, func() { search(round + 1) })
		})
	}
	r.w.After(r.stopAt*time.Duration(30+r.w.Rand().IntN(40))/100, func() { search(0) })
}

// readFrom pulls q from offset to its end, recording the pulls.
func (r *run) readFrom(cli *client.Client, idx int, q client.MessageQueue, offset int64) {
	if r.stopped {
		return
	}
	req := client.PullRequest{Queue: q, Group: "SimFromTime", Offset: offset, MaxMsgs: 64}
	r.pullRecorded(cli, idx, req, func(res client.PullResult, err error) {
		if err == nil && res.Status == codec.Success {
			r.w.After(0, func() { r.readFrom(cli, idx, q, res.NextBeginOffset) })
		}
	})
}

// settle runs the world until every delayed message and retry is due, with room for its
// lateness, so the final drain can expect them.
func (r *run) settle() {
	var last time.Duration
	for _, d := range r.delayed {
		if d.outcome != linearizability.Failed {
			due := max(d.ret, d.call) + r.delayOf(d.level)
			last = max(last, due+r.lateness(due))
		}
	}
	for _, b := range r.sendBacks {
		if b.outcome != linearizability.Failed {
			_, _, level := b.target()
			due := b.ret + r.delayOf(level)
			last = max(last, due+r.lateness(due))
		}
	}
	r.w.RunUntil(max(r.w.Now(), last, r.txSettleTime()))
}

// flowHistory turns what the flows did into history entries: the messages the broker owes or
// may write (delayed, sent back, committed), the ones it must never deliver (rolled back), and
// the lock and search operations (recorded as they happened).
func (r *run) flowHistory() {
	for i, d := range r.delayed {
		if d.outcome == linearizability.Failed {
			continue
		}
		delay := r.delayOf(d.level)
		w := linearizability.BrokerWrite{Queue: d.queue, MsgID: d.id,
			Cause: fmt.Sprintf("send #%d of producer %d with delay level %d", i, d.sendClientID, d.level),
			// Due at its schedule-queue store time (at or after the call, in whole milliseconds) plus its delay.
			After: int64(r.earliestDue(d.call, d.ret, delay) - time.Millisecond), Owed: d.outcome == linearizability.OK}
		if w.Owed {
			due := d.ret + delay
			w.Deadline = r.storeDeadline(d.call, due+r.lateness(due))
			// Owed while its entry in the schedule queue survives (async flush: see asyncflush.go).
			w.Records = []linearizability.Window{{Call: int64(d.call), Return: int64(d.ret)}}
		}
		r.h.Writes = append(r.h.Writes, w)
	}

	// Send-backs: one write per target, the union of the send-backs aimed at it.
	type agg struct {
		w      linearizability.BrokerWrite
		anyOK  bool
		anyMay bool
	}
	byID := map[string]*agg{}
	var order []string
	for i, b := range r.sendBacks {
		q, id, level := b.target()
		a := byID[id]
		if a == nil {
			a = &agg{w: linearizability.BrokerWrite{Queue: q, MsgID: id, After: -1}}
			byID[id] = a
			order = append(order, id)
		}
		if b.outcome == linearizability.Failed {
			continue
		}
		delay := r.delayOf(level)
		after := int64(r.earliestDue(b.call, b.ret, delay) - time.Millisecond)
		if delay == 0 {
			after = int64(b.call)
		}
		if !a.anyMay || after < a.w.After {
			a.w.After = after
			a.w.Cause = fmt.Sprintf("send-back #%d of %s (reconsumed %d times, delay level %d, max %d)", i, b.uniq, b.gen, b.level, b.max)
		}
		a.anyMay = true
		if b.outcome == linearizability.OK {
			// Due in time unless a crash may have lost the send-back's record (async flush:
			// asyncflush.go); the message then comes, if at all, from a later send-back.
			due := b.ret + delay
			if dl := r.storeDeadline(b.call, due+r.lateness(due)); !r.mayLose(b.call, b.ret) && (a.w.Deadline == 0 || dl < a.w.Deadline) {
				a.w.Deadline = dl
			}
			a.anyOK = true
			a.w.Records = append(a.w.Records, linearizability.Window{Call: int64(b.call), Return: int64(b.ret)})
		}
	}
	for _, id := range order {
		a := byID[id]
		if !a.anyMay {
			r.h.Withheld = append(r.h.Withheld, linearizability.Withheld{MsgID: id, Why: "every send-back of it failed"})
			continue
		}
		a.w.Owed = a.anyOK
		r.h.Writes = append(r.h.Writes, a.w)
	}
	r.txHistory()
}
