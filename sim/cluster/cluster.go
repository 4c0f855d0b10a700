// Package cluster builds a simulated Sluice cluster (name server, broker, producer and consumer
// clients), runs a seeded workload against it under a seeded fault plan, drains every queue once
// the faults have healed, and checks the recorded history: Porcupine's per-queue log model and
// the direct invariants of package linearizability. One seed is one reproducible run.
package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/namesrv"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
)

// Node addresses of the simulated cluster (literal loopback IPs, as clients need).
const (
	NameServerAddr = "127.0.0.1:9876"
	BrokerAddr     = "127.0.0.1:10911"
	BrokerName     = "broker-a"
)

// Config describes one run.
type Config struct {
	Seed      uint64
	Duration  time.Duration
	Producers int
	Consumers int
	Topic     string
	FlushMode brokernode.FlushMode
	// Plant names a planted bug of the catalogue (plants.go) to switch on ("" for none).
	Plant string
	// Faults, if nil, is drawn from the seed (swarm testing).
	Faults *faults.Config
	// Flows, if nil, is drawn from the seed (swarm testing): which of the flows besides plain
	// sends and pulls the run exercises, and how.
	Flows *Flows
	// Plan, with ExplicitPlan, replaces the plan drawn from Faults (replaying a shrunk run).
	Plan         []faults.Fault
	ExplicitPlan bool
	// VizDir receives Porcupine's visualisation of a violation ("" for the temp directory).
	VizDir string
	// CheckTimeout bounds Porcupine per run.
	CheckTimeout time.Duration
	Logger       *slog.Logger

	// Topology: SingleBroker (the default, everything above) or BrokerGroups (groups.go),
	// which takes the settings below and runs plain sends and pulls (Flows are ignored).
	Topology    Topology
	Replication brokernode.ReplicationMode
	// MetaSyncInterval is the brokers' (0: their default; negative: slaves copy no metadata).
	MetaSyncInterval time.Duration
	MinInSync        int // 0: 2
}

// GroupsConfig is issue 4's cluster: three name servers with embedded controllers, two broker
// groups of three replicas in sync replication with at least two in sync, two producers and
// two consumers, two simulated minutes.
func GroupsConfig(seed uint64) Config {
	cfg := DefaultConfig(seed)
	cfg.Topology = BrokerGroups
	cfg.Duration = 120 * time.Second
	cfg.Replication = brokernode.SyncReplication
	cfg.MinInSync = 2
	cfg.CheckTimeout = 30 * time.Second
	return cfg
}

// DefaultConfig is issue 2's cluster: one name server, one broker, two producers, two consumers.
func DefaultConfig(seed uint64) Config {
	return Config{Seed: seed, Duration: 60 * time.Second, Producers: 2, Consumers: 2, Topic: "SimTopic",
		FlushMode: brokernode.SyncFlush, CheckTimeout: 60 * time.Second}
}

// Violation is one failed check.
type Violation struct {
	Kind   string
	Detail string
}

// Report is a run's outcome.
type Report struct {
	Seed      uint64
	Simulated time.Duration
	Wall      time.Duration
	Events    uint64
	TraceHash uint64
	Sends     map[linearizability.Outcome]int
	Pulls     int
	Consumed  int
	Drained   int
	Faults    map[faults.Kind]int
	Flows     Flows
	// FlowCounts counts what each flow did (see Flows), by name.
	FlowCounts map[string]int
	Plan       []faults.Fault
	Crashes    int
	Violations []Violation
	VizPath    string

	// The groups topology only. Failovers counts elections that showed (a group's
	// acknowledgements moving to a new master epoch); FailoverTimes are, for each, the time
	// from the group losing its writable master to the first acknowledgement of the new one.
	// LostAcked counts acknowledged messages missing from the final drain (a violation in sync
	// replication, a measurement in async); LostObserved counts messages a consumer pulled
	// that are missing from the final drain (likewise: in async replication a consumer may
	// read from a master what a failover then loses); TruncatedAcked counts acknowledged log
	// entries later gone or replaced.
	Topology       Topology
	Failovers      int
	GroupFailovers map[string]int // Failovers by group
	FailoverTimes  []time.Duration
	LostAcked      int
	LostObserved   int
	TruncatedAcked int
	// Redelivered counts messages the plain consumers pulled again: below the highest queue
	// offset their group had already pulled from that queue (after a failover, those consumed
	// since the offset the new master holds). ResumeBehindWorst is the largest distance, in
	// messages, from that highest pulled offset back to where a consumer resumed from the
	// offset a broker answered (0 when not found counts the whole way).
	Redelivered       int
	ResumeBehindWorst int64
	// SlavePulls counts the pulls a slave answered (consumers read from slaves while a group
	// has no master); SlavePullMsgs the messages those answers carried.
	SlavePulls    int
	SlavePullMsgs int

	// RouteProbes counts the name servers' route answers the route check judged
	// (nsliveness.go); RouteExpiries the silent stretches in which an answer showed a broker
	// that could not reach the name server gone from its routes.
	RouteProbes   int
	RouteExpiries int
	// BitFlips counts the bit flips that struck a stored entry (bitflips.go); LostUnreadable
	// the acknowledged or observed messages missing from the final drain because a flip
	// destroyed them (not violations: the broker cannot read them, and never serves them).
	BitFlips       int
	LostUnreadable int
	// LostUnflushed counts, in async-flush mode (single topology), the messages missing from
	// the final drain that a crash may have lost: acknowledged or pulled within the flush
	// interval (and its slack) before the crash, or owed by the broker for such a write
	// (asyncflush.go). Any other loss is a violation.
	LostUnflushed int
}

// Summary is the one-line report the sim command prints; it ends with trace=<hex>.
func (r *Report) Summary() string {
	var fk []string
	for _, k := range faults.Kinds {
		fk = append(fk, fmt.Sprintf("%s:%d", k, r.Faults[k]))
	}
	status := "ok"
	if len(r.Violations) > 0 {
		status = "VIOLATION"
	}
	var fl []string
	for _, name := range slices.Sorted(maps.Keys(r.FlowCounts)) {
		fl = append(fl, fmt.Sprintf("%s:%d", name, r.FlowCounts[name]))
	}
	flows := strings.Join(fl, ",")
	if flows == "" {
		flows = "none"
	}
	groups := ""
	if r.Topology == BrokerGroups {
		groups = fmt.Sprintf(" failovers=%d failover-median=%v failover-worst=%v lost-acked=%d lost-observed=%d truncated-acked=%d redelivered=%d resume-behind-worst=%d slave-pulls=%d slave-pull-msgs=%d",
			r.Failovers, Median(r.FailoverTimes), Worst(r.FailoverTimes), r.LostAcked, r.LostObserved, r.TruncatedAcked, r.Redelivered, r.ResumeBehindWorst, r.SlavePulls, r.SlavePullMsgs)
	}
	if r.Topology != BrokerGroups {
		groups = fmt.Sprintf(" lost-unflushed=%d", r.LostUnflushed)
	}
	return fmt.Sprintf("seed=%d sim=%v wall=%v events=%d sends=ok:%d,failed:%d,unknown:%d pulls=%d consumed=%d drained=%d faults=%s flows=%s%s routes=probes:%d,expired:%d bit-flips=%d lost-unreadable=%d violations=%d %s trace=%016x",
		r.Seed, r.Simulated, r.Wall.Round(time.Millisecond), r.Events,
		r.Sends[linearizability.OK], r.Sends[linearizability.Failed], r.Sends[linearizability.Unknown],
		r.Pulls, r.Consumed, r.Drained, strings.Join(fk, ","), flows, groups, r.RouteProbes, r.RouteExpiries, r.BitFlips, r.LostUnreadable, len(r.Violations), status, r.TraceHash)
}

// simRecentHeadEntries is the brokers' RecentHeadEntries in the simulator: small enough that a
// run's queues age out of the "young" window (a run writes thousands of messages), so offset
// queries for groups without an offset see both of Java's answers, 0 and 22 (checkOffsets).
const simRecentHeadEntries = 1000

// offsetRead is one QUERY_CONSUMER_OFFSET answer.
type offsetRead struct {
	at     time.Duration
	offset int64
	found  bool
}

// groupQueue is one consumer group's position on one queue.
type groupQueue struct {
	group string
	queue linearizability.QueueKey
}

type run struct {
	cfg   Config
	flows Flows
	// offsetReads lists the offsets consumers read back, by group and queue, in the order answered.
	offsetReads map[groupQueue][]offsetRead
	// pulledUpTo is one past the highest queue offset pulled, by group and queue (redeliveries).
	pulledUpTo map[groupQueue]int64
	w          *sim.World
	h          linearizability.History
	stopAt     time.Duration
	stopped    bool
	consumed   int
	report     *Report
	// plan is the run's fault plan; crash times bound what the broker may forget (locks) and
	// how late it may be (delays).
	plan []faults.Fault
	// flow records: what the new flows did, turned into history entries by flowHistory.
	// restarts lists when the broker was restarted outside the plan.
	restarts   []int64
	delayTable []time.Duration
	delayed    []delayedSend
	sendBacks  []sendBackOp
	txs        []*txRecord
	txByID     map[string]*txRecord
	// gr is the groups topology's state (nil in the single-broker one).
	gr *groupsRun
	// flips are the bit flips that struck, in order (bitflips.go); lostUnreadable the
	// messages counted in Report.LostUnreadable.
	flips          []flipRecord
	lostUnreadable map[string]bool
	corruptSeen    map[corruptAt]bool // pulls whose answer was corrupt (reported once each)
	witnesses      []int              // indexes in h.Pulls of the flips' witnesses
	// drainedBy lists, by queue, the brokers that answered its final drain.
	drainedBy map[linearizability.QueueKey]map[string]bool
	// crashes lists when the broker crashed; asyncFlushInterval is its configured flush
	// interval (asyncflush.go).
	crashes            []brokerCrash
	asyncFlushInterval time.Duration
	// syncedThrough is the latest instant everything the broker's commit log held then is
	// known durable (asyncflush.go); healedAt is when the harness healed every fault.
	syncedThrough time.Duration
	healedAt      time.Duration
	// sqlPulls are the SQL92 flow's filtered pulls (sqlflow.go).
	sqlPulls []sqlPull
}

func (r *run) violate(kind, format string, args ...any) {
	r.report.Violations = append(r.report.Violations, Violation{Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

// healWait is how long after the workload Run lets the planned faults run their course before
// it heals whatever is left.
const healWait = 10 * time.Second

// Run executes one seeded run and checks it. The error is for harness failures only;
// violations are in the report.
func Run(cfg Config, wallNow func() time.Time) (*Report, error) {
	if err := cfg.checkPlant(); err != nil {
		return nil, err
	}
	if cfg.Topology == BrokerGroups {
		return runGroups(cfg, wallNow)
	}
	if cfg.plant().AsyncFlush {
		cfg.FlushMode = brokernode.AsyncFlush
	}
	start := wallNow()
	w := sim.NewWorld(cfg.Seed,
		sim.NetConfig{MinLatency: 50 * time.Microsecond, MaxLatency: 2 * time.Millisecond},
		sim.DiskConfig{MinFsync: 100 * time.Microsecond, MaxFsync: maxFsync},
		cfg.Logger)
	r := &run{cfg: cfg, w: w, stopAt: cfg.Duration,
		report:      &Report{Seed: cfg.Seed, Sends: map[linearizability.Outcome]int{}, FlowCounts: map[string]int{}},
		offsetReads: map[groupQueue][]offsetRead{}, pulledUpTo: map[groupQueue]int64{}, txByID: map[string]*txRecord{}}
	r.flows = r.drawFlows()
	r.report.Flows = r.flows

	ncfg := cfg.nameServerConfig()
	w.AddNode(NameServerAddr, func(env node.Env) node.Handler { return namesrv.New(env, ncfg) })
	bcfg := brokernode.DefaultConfig()
	bcfg.BrokerName = BrokerName
	bcfg.Addr = BrokerAddr
	bcfg.NameServers = []string{NameServerAddr}
	bcfg.FlushMode = cfg.FlushMode
	cfg.plant().applyBroker(&bcfg)
	bcfg.RegisterInterval = 5 * time.Second
	bcfg.RecentHeadEntries = simRecentHeadEntries
	r.configureBroker(&bcfg)
	r.asyncFlushInterval = bcfg.AsyncFlushInterval
	broker := w.AddNode(BrokerAddr, func(env node.Env) node.Handler {
		b, err := brokernode.New(env, bcfg)
		if err != nil {
			if diskFault(err) {
				// Recovery needs to write (repairs, the checkpoint) and the disk refused:
				// the process exits and its supervisor starts it again (sim.StartRetry).
				return nil
			}
			// The simulated disk only loses what was never durable; a store that cannot
			// recover from that is a bug.
			panic(fmt.Sprintf("broker recovery failed: %v", err))
		}
		return b
	})
	cfg.plant().applyDisk(broker.Disk)

	// The fault plan has its own PRNG, derived from the seed, so that replacing the plan (as
	// the shrinker does) leaves every other random choice of the run where it was.
	plan := cfg.Plan
	if !cfg.ExplicitPlan {
		plan = singlePlan(cfg.Seed, cfg.Faults, cfg.Duration)
		if cfg.Faults == nil {
			plan = append(plan, longPause(cfg.Seed, []string{BrokerAddr}, plan, cfg.Duration,
				func(f faults.Fault, target string) bool { return f.Node == target })...)
			plan = append(plan, singleFlips(cfg.Seed, cfg.Duration)...)
			sort.SliceStable(plan, func(i, j int) bool { return plan[i].At < plan[j].At })
		}
	}
	if err := (&faults.Injector{World: w, OnFlip: r.onFlip}).Schedule(plan); err != nil {
		return nil, err
	}
	r.plan = plan
	r.watchCrashes(broker)
	r.report.Plan = plan
	r.report.Faults = faults.Count(plan)

	for i := 0; i < cfg.Producers; i++ {
		r.startProducer(i)
	}
	for i := 0; i < cfg.Consumers; i++ {
		r.startConsumer(i)
	}
	r.startFlowClients()
	r.startRouteCheck([]string{NameServerAddr}, []string{BrokerAddr})
	w.RunUntil(cfg.Duration)
	r.stopped = true

	// Heal: let every planned fault run its course, then make sure of it.
	w.RunFor(healWait)
	r.healedAt = w.Now()
	w.HealAll()
	broker.Restart()
	r.restarts = append(r.restarts, int64(w.Now()))
	drain := r.drain(func() string { return fmt.Sprintf("broker up: %v", broker.Up()) })
	r.report.Crashes = broker.Crashes
	r.report.Simulated = w.Now()
	r.report.Events = w.Delivered()
	r.report.TraceHash = w.TraceHash()
	r.report.Consumed = r.consumed

	r.check(drain)
	r.report.Wall = wallNow().Sub(start)
	return r.report, nil
}

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
	cli := r.addClientWith(fmt.Sprintf("127.0.2.%d:1", i+1), fmt.Sprintf("producer-%d", i), r.tuneProducer)
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
		r.w.After(time.Duration(2+r.w.Rand().IntN(20))*time.Millisecond, tick)
	}
	r.w.After(100*time.Millisecond, tick)
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
		if err == nil && r.gr != nil {
			r.checkMasterPull(res.Addr, masters, time.Duration(call), op.Queue, op.Offset, pullStatus(res.Status, len(res.Msgs)))
		}
		if err == nil && r.gr != nil && !r.servedByMaster(res.Addr, masters) {
			r.report.SlavePulls++
			r.report.SlavePullMsgs += len(res.Msgs)
			if len(op.Msgs) == 0 {
				op.Outcome = linearizability.Unknown
			}
		}
		r.report.Pulls++
		r.h.AddPull(op)
		done(res, err)
	})
}

// consumerGroup is the group of the plain consumers (and, with the retry flow, of the retries).
const consumerGroup = "SimConsumers"

func (r *run) startConsumer(i int) {
	idx := 100 + i
	cli := r.addClientWith(fmt.Sprintf("127.0.3.%d:1", i+1), fmt.Sprintf("consumer-%d", i), r.tuneConsumer)
	if r.flows.Retry {
		cli.RegisterConsumer(client.ConsumerGroup{Name: consumerGroup, Subscriptions: map[string]string{r.cfg.Topic: "*"}})
	}
	always := func() bool { return true }
	topics := []string{r.cfg.Topic}
	if r.flows.Retry {
		topics = append(topics, client.RetryTopic(consumerGroup))
	}
	for _, topic := range topics {
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
				for j, q := range qs {
					if j%r.cfg.Consumers == i {
						r.consumeQueue(cli, idx, consumerGroup, q, always, r.onConsumed)
					}
				}
			})
		}
		r.w.After(200*time.Millisecond, discover)
	}
}

// consumeQueue consumes q for group from its committed offset while active says so (and the
// run goes on), committing now and then; consumed, if not nil, sees every pulled message.
func (r *run) consumeQueue(cli *client.Client, idx int, group string, q client.MessageQueue, active func() bool,
	consumed func(cli *client.Client, q client.MessageQueue, m *codec.Message)) {
	var offset int64
	var lastCommit time.Duration
	var pull, begin func()
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
				k := groupQueue{group, queueKey(q)}
				for _, m := range res.Msgs {
					if m.QueueOffset < r.pulledUpTo[k] {
						r.report.Redelivered++
					}
					r.pulledUpTo[k] = max(r.pulledUpTo[k], m.QueueOffset+1)
				}
				if consumed != nil {
					for _, m := range res.Msgs {
						consumed(cli, q, m)
					}
				}
			}
			offset = res.NextBeginOffset
			if r.w.Now()-lastCommit > time.Second {
				lastCommit = r.w.Now()
				cli.CommitOffset(group, q, offset)
			}
			r.w.After(0, pull)
		})
	}
	begin()
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
			default:
				done()
			}
		})
	}
	pull()
}

func (r *run) check(drain map[linearizability.QueueKey][]linearizability.PulledMsg) {
	r.crashHistory()
	r.flowHistory()
	r.finishWitnesses()
	if err := r.h.Validate(); err != nil {
		r.violate("history", "malformed history: %v", err)
		return
	}
	// Every violation gets a visualisation: of its queue, or of every queue when it names none.
	var show []linearizability.QueueKey
	vs := r.excuseUnreadable(linearizability.CheckDrainInvariants(r.h, drain))
	r.report.LostUnflushed = len(linearizability.UnflushedLosses(r.h, drain))
	vs = append(vs, linearizability.CheckLocks(r.h.Locks, r.lockLease(), r.brokerDownTimes())...)
	vs = append(vs, linearizability.CheckSearches(&r.h, drain)...)
	for _, v := range vs {
		r.violate(v.Kind, "%s", v.Message)
		show = append(show, v.Queue)
	}
	show = append(show, r.checkOffsets()...)
	show = append(show, r.checkSQL(drain)...)
	if len(r.report.Violations) > 0 && len(show) == 0 {
		show = r.h.Queues()
	}
	r.checkLog(r.h, fmt.Sprintf("sluice-seed-%d", r.cfg.Seed), show)
}

// checkLog checks h with Porcupine's append-only log model per queue (pictures of the queues
// in show go to VizDir/dir: one directory per seed, so a sweep keeps every failing seed's),
// then sorts the run's violations by kind.
func (r *run) checkLog(h linearizability.History, dir string, show []linearizability.QueueKey) {
	defer sort.SliceStable(r.report.Violations, func(i, j int) bool { return r.report.Violations[i].Kind < r.report.Violations[j].Kind })
	vizDir := r.cfg.VizDir
	if vizDir != "" {
		vizDir = filepath.Join(vizDir, dir)
	}
	res, err := linearizability.Check(h, r.cfg.CheckTimeout, vizDir, show...)
	if err != nil {
		r.violate("checker", "porcupine: %v", err)
		return
	}
	for _, q := range res.Failed() {
		r.violate("linearizability", "queue %s: history is not linearizable as an append-only log", q)
	}
	// A queue Porcupine could not decide in time is unchecked, not fine: say so, so a run
	// never passes on a check that did not happen.
	for _, q := range res.Undecided() {
		r.violate("undecided", "queue %s: Porcupine did not decide within %v; the queue is unchecked (raise CheckTimeout or shorten the run)", q, r.cfg.CheckTimeout)
	}
	if paths := res.VizPaths(); len(paths) > 0 {
		r.report.VizPath = paths[0]
	}
}

// checkOffsets: a committed offset a consumer has read back never moves backwards, crashes
// included (nothing here resets offsets), and once found it is never lost. Under async flush
// a crash may cut a queue back (its unflushed tail), and a consumer whose offset lay past the
// new end is moved back to it: that is allowed down to what the crash may cut (cutBack).
//
// Which reads show a committed offset: those found with an offset above 0. A broker answers a
// group with no stored offset on a young queue SUCCESS with offset 0, as Java 4.x does
// (brokernode youngQueue), and the client cannot tell that answer from a committed 0. It is
// given whenever the broker holds no offset for the group and queue: before the group's first
// commit, but also after commits that never arrived (commits are not acknowledged) or that a
// crash lost before anyone read them (which is allowed), and it turns into 22 QUERY_NOT_FOUND
// once the queue's head ages. So a read of 0 proves nothing was committed and is not taken as
// one (it is still checked against the committed offsets read before it: a 0 read after a
// committed 5 went backwards). Offsets above 0 come from commits only, so every found read
// above 0 is a committed offset and must never be lost or move back. What this gives up is
// catching the loss of a committed 0, which is a consumer that has consumed nothing; the
// broker persists and answers every offset by the same path, so the reads above 0 exercise it.
func (r *run) checkOffsets() (bad []linearizability.QueueKey) {
	keys := make([]groupQueue, 0, len(r.offsetReads))
	for k := range r.offsetReads {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].group != keys[j].group {
			return keys[i].group < keys[j].group
		}
		return keys[i].queue.Compare(keys[j].queue) < 0
	})
	for _, k := range keys {
		var prev *offsetRead
		for i := range r.offsetReads[k] {
			cur := &r.offsetReads[k][i]
			if prev != nil && prev.found && cur.found && cur.offset < prev.offset && r.cutBack(k, i) {
				prev = cur // a crash cut the queue back below the offset (async flush)
				continue
			}
			if prev != nil && prev.found && (!cur.found || cur.offset < prev.offset) {
				r.violate("offset went backwards", "group %s, queue %s: consumer offset read as %d at %v, then as %d (found=%v) at %v",
					k.group, k.queue, prev.offset, prev.at, cur.offset, cur.found, cur.at)
				bad = append(bad, k.queue)
			}
			if cur.found && cur.offset > 0 {
				prev = cur
			}
		}
	}
	return bad
}

// cutBack reports whether the i-th offset read of k may be lower than the one before it
// because a crash cut the queue back below it: a crash since the consumer was last read at or
// below that offset (before that, the entries above it were not even consumed) that may have
// cut the entry at that offset (linearizability.History.MayCutBelow).
func (r *run) cutBack(k groupQueue, i int) bool {
	reads := r.offsetReads[k]
	cur := reads[i]
	since := int64(math.MinInt64)
	for j := i - 1; j >= 0; j-- {
		if reads[j].found && reads[j].offset <= cur.offset {
			since = int64(reads[j].at)
			break
		}
	}
	return r.h.MayCutBelow(k.queue, cur.offset, since, int64(cur.at))
}
