// Package cluster builds a simulated Sluice cluster of one topology (single.go: a name server
// and a broker; groups.go: name servers with controllers and replicated broker groups), runs a
// seeded workload against it under a seeded fault plan, drains every queue once the faults
// have healed, and checks the run. One runner (Run) serves every topology; one seed is one
// reproducible run.
//
// The checkers, one per file, each saying what it verifies and what it does not: the log
// model (checklog.go, package linearizability), the drain invariants (checkdrain.go, package
// sim/checks), consumer offsets (checkoffsets.go; groupoffsets.go for groups), acknowledgements
// per epoch (acks.go), replicas (replicas.go), mastership (mastership.go), slave progress
// (slaveprogress.go), name-server routes (nsliveness.go), bit flips and corrupt answers
// (bitflips.go), SQL92 filters (sqlflow.go), consumer commits and broadcasting consumers
// (checkcommits.go, broadcast.go), and liveness after healing (workload.go: the probe
// and the final drain must finish within their bounds).
package cluster

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
	"github.com/sluicemq/sluice/sim/checks"
	"github.com/sluicemq/sluice/sim/simmetrics"
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
	// which takes the settings below and runs plain sends and pulls (of Flows, only Broadcast
	// is honoured).
	Topology    Topology
	Replication brokernode.ReplicationMode
	// MetaSyncInterval is the brokers' (0: their default; negative: slaves copy no metadata).
	MetaSyncInterval time.Duration
	MinInSync        int // 0: 2

	// DiskCapacity, when set, is the size in bytes of each broker's simulated disk, and
	// Retention, when set, the brokers' FileReservedTime; either turns retention on
	// (retention.go): the brokers delete at the hours of DeleteWhen (nil: every hour) and
	// under disk pressure, the disks have segments, and the checks judge every deletion.
	DiskCapacity uint64
	Retention    time.Duration
	DeleteWhen   []int

	// Rate is the offered send load of the plain producers, in messages per second of
	// simulated time, shared evenly between them (0: each producer sends every 2 to 21 ms
	// with at most 8 sends in flight, the pacing every recorded seed was drawn with).
	Rate float64

	// StopAtKind, if set, ends the run as soon as a violation of this kind (a Violation.Kind)
	// is recorded: the workload and healing stop at the next simulated second, and the drain
	// and the checks after it are skipped; Porcupine's log check, the dearest, is skipped
	// whenever a cheaper check has reported the kind, and whenever the kind is not its own
	// (KindNotLinearizable). Shrink's candidate runs set it: such a run answers only "does
	// the kind occur", and its report is partial.
	StopAtKind string
	// KindBeforeDrain, with StopAtKind, narrows the question to "did a check record the kind
	// before the drain": a run that has not by the end of its healing ends there, without the
	// drain and the checks after it. Shrink sets it for a kind its failing run recorded so
	// (Report.RecordedBeforeDrain), sparing the candidates that do not fail the drain and its
	// checks, about a sixth of a groups run's CPU.
	KindBeforeDrain bool
}

// GroupsConfig is the groups topology's default run: three name servers with embedded
// controllers, two broker groups of three replicas in sync replication with at least two in
// sync, two producers and two consumers, two simulated minutes.
func GroupsConfig(seed uint64) Config {
	cfg := DefaultConfig(seed)
	cfg.Topology = BrokerGroups
	cfg.Duration = 120 * time.Second
	cfg.Replication = brokernode.SyncReplication
	cfg.MinInSync = 2
	cfg.CheckTimeout = 30 * time.Second
	return cfg
}

// DefaultConfig is the single topology's default run: one name server, one broker, two
// producers, two consumers, one simulated minute.
func DefaultConfig(seed uint64) Config {
	return Config{Seed: seed, Duration: 60 * time.Second, Producers: 2, Consumers: 2, Topic: "SimTopic",
		FlushMode: brokernode.SyncFlush, CheckTimeout: 60 * time.Second}
}

// Violation is one failed check.
type Violation struct {
	Kind   string
	Detail string
	// Queue and MsgID, when the check named them (Queue.Broker "" and MsgID "" when not):
	// the queue, and the message, the violation is about (failure reports focus on them).
	Queue linearizability.QueueKey
	MsgID string
	// At is when, in simulated time, the run showed it: when the check recorded it, for the
	// checks that judge the run as it goes; for those that judge it afterwards, the instant of
	// the observation that showed it where the check can tell (an offset read back lower than
	// before), else the end of the run.
	At time.Duration
}

// Report is a run's outcome.
type Report struct {
	Seed      uint64
	Simulated time.Duration
	Wall      time.Duration
	// CheckWall is the part of Wall spent judging the run once the simulation ended (the
	// history checks, Porcupine among them).
	CheckWall time.Duration
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
	// VizPaths are the visualisations written, by queue (VizPath is the first of them).
	VizPaths map[linearizability.QueueKey]string
	// Timeline is what the run recorded for its failure report (record.go).
	Timeline *Timeline

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

	// With retention on (Config.DiskCapacity or Config.Retention; retention.go), from the
	// brokers' events: RetentionRuns deletions, ForcedRuns of them by disk pressure,
	// SegmentsDeleted commit-log segments and RetainedMsgs messages they removed;
	// SendsRefusedSpace sends refused for lack of space; OffsetsMoved pulls below a queue's
	// min offset moved forward (PULL_OFFSET_MOVED).
	Retention         bool
	RetentionRuns     int
	ForcedRuns        int
	SegmentsDeleted   int
	RetainedMsgs      int
	SendsRefusedSpace int
	OffsetsMoved      int
	// PullsCompacted counts the empty pulls a later one of the same client replaced in the
	// history (retention.go's addPull).
	PullsCompacted int

	// Metrics holds what the nodes recorded through their metrics recorders, each node's
	// series labelled node=<its address> (the summary prints a few: metricsSummary).
	Metrics *simmetrics.Memory

	// beforeDrain holds the kinds of the violations recorded before the final drain
	// (RecordedBeforeDrain).
	beforeDrain map[string]bool
}

// metricsSummary is the summary line's part drawn from the nodes' metrics: the messages the
// brokers stored from sends and served to pulls, and how often a replica became master.
func (r *Report) metricsSummary() string {
	if r.Metrics == nil {
		return ""
	}
	m := r.Metrics
	return fmt.Sprintf(" metrics=msgs-in:%.0f,msgs-out:%.0f,became-master:%.0f",
		m.Sum("sluice_broker_messages_in_total"), m.Sum("sluice_broker_messages_out_total"),
		m.Sum("sluice_broker_role_changes_total", "role=master"))
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
	return fmt.Sprintf("seed=%d sim=%v wall=%v events=%d sends=ok:%d,failed:%d,unknown:%d pulls=%d consumed=%d drained=%d faults=%s flows=%s%s routes=probes:%d,expired:%d bit-flips=%d lost-unreadable=%d%s%s violations=%d %s trace=%016x",
		r.Seed, r.Simulated, r.Wall.Round(time.Millisecond), r.Events,
		r.Sends[linearizability.OK], r.Sends[linearizability.Failed], r.Sends[linearizability.Unknown],
		r.Pulls, r.Consumed, r.Drained, strings.Join(fk, ","), flows, groups, r.RouteProbes, r.RouteExpiries, r.BitFlips, r.LostUnreadable, r.retentionSummary(), r.metricsSummary(), len(r.Violations), status, r.TraceHash)
}

// simRecentHeadEntries is the brokers' RecentHeadEntries in the simulator: small enough that a
// run's queues age out of the "young" window (a run writes thousands of messages), so offset
// queries for groups without an offset see both of Java's answers, 0 and 22 (checkOffsets).
const simRecentHeadEntries = 1000

// simMaxOpenQueueFiles is the simulated brokers' budget of open consume-queue logs: small, so
// that every run closes and reopens queues (the store's queuefiles.go) as a broker with more
// queues than its budget does.
const simMaxOpenQueueFiles = 8

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

// compare orders by consumer group, then queue.
func (k groupQueue) compare(o groupQueue) int {
	return cmp.Or(strings.Compare(k.group, o.group), k.queue.Compare(o.queue))
}

type run struct {
	cfg Config
	// routes is the name-server route check (nsliveness.go), once started.
	routes *routeCheck
	flows  Flows
	// offsetReads lists the offsets consumers read back, by group and queue, in the order answered.
	offsetReads map[groupQueue][]offsetRead
	// pulledUpTo is one past the highest queue offset pulled, by group and queue (redeliveries).
	pulledUpTo map[groupQueue]int64
	// processed holds the queue offsets the group's consumers processed, by group and queue
	// (checkprocessed.go).
	processed map[groupQueue]map[int64]bool
	w         *sim.World
	h         linearizability.History
	stopAt    time.Duration
	stopped   bool
	// draining: the faults have healed and the final drain, and the checks after it, run.
	draining bool
	consumed int
	report   *Report
	// plan is the run's fault plan; crash times bound what the broker may forget (locks) and
	// how late it may be (delays).
	plan []faults.Fault
	// stalls caches the plan's faults that stall the broker (flows.go).
	stalls *stallFaults
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
	flips []flipRecord
	// retention judges the brokers' deletions (retention.go).
	retention      retentionCheck
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
	// timeline is the run's record for its failure report (record.go).
	timeline *Timeline
	// consumers is what the consumer checks judge (checkcommits.go).
	consumers consumerRecord
	// sentTaps and deliveredTaps observe the frames nodes send and receive (checkcommits.go).
	sentTaps, deliveredTaps []func(from, to string, cmd *codec.Command)
}

func (r *run) violate(kind, format string, args ...any) {
	r.violateAt(r.w.Now(), kind, format, args...)
}

// violateAt is violate for a check that judges the run after it ended but knows when the
// observation that shows the violation happened (Violation.At).
func (r *run) violateAt(at time.Duration, kind, format string, args ...any) {
	r.report.Violations = append(r.report.Violations, Violation{Kind: kind, Detail: fmt.Sprintf(format, args...), At: at})
	r.noteBeforeDrain(kind)
}

// noteBeforeDrain records that a violation of kind was recorded before the drain
// (Report.RecordedBeforeDrain).
func (r *run) noteBeforeDrain(kind string) {
	if r.draining {
		return
	}
	if r.report.beforeDrain == nil {
		r.report.beforeDrain = map[string]bool{}
	}
	r.report.beforeDrain[kind] = true
}

// RecordedBeforeDrain reports whether a check recorded a violation of kind before the run's
// final drain (one that judges as the run goes, while the workload ran or the faults healed),
// rather than in the drain or the checks after it.
func (rep *Report) RecordedBeforeDrain(kind string) bool {
	return rep.beforeDrain[kind]
}

// violateOn reports a violation found by a checker of package sim/checks, with its queue and
// message.
func (r *run) violateOn(v checks.Violation) {
	r.report.Violations = append(r.report.Violations, Violation{Kind: v.Kind, Detail: v.Message, Queue: v.Queue, MsgID: v.MsgID, At: r.w.Now()})
	r.noteBeforeDrain(v.Kind)
}

// healWait is how long after the workload Run lets the planned faults run their course before
// it heals whatever is left.
const healWait = 10 * time.Second

// Run executes one seeded run of cfg.Topology and checks it. The error is for harness
// failures only; violations are in the report.
func Run(cfg Config, wallNow func() time.Time) (*Report, error) {
	if err := cfg.checkPlant(); err != nil {
		return nil, err
	}
	if cfg.plant().AsyncFlush {
		cfg.FlushMode = brokernode.AsyncFlush
	}
	if cfg.plant().Retention && !cfg.retentionOn() {
		cfg.Retention = plantRetention
	}
	topo := newTopology(cfg.Topology)
	start := wallNow()
	w := sim.NewWorld(cfg.Seed,
		sim.NetConfig{MinLatency: 50 * time.Microsecond, MaxLatency: maxNetLatency},
		sim.DiskConfig{MinFsync: 100 * time.Microsecond, MaxFsync: maxFsync},
		cfg.Logger)
	r := &run{cfg: cfg, w: w, stopAt: cfg.Duration,
		report: &Report{Seed: cfg.Seed, Topology: cfg.Topology, Sends: map[linearizability.Outcome]int{}, FlowCounts: map[string]int{},
			Retention: cfg.retentionOn(), Metrics: simmetrics.New()},
		offsetReads: map[groupQueue][]offsetRead{}, pulledUpTo: map[groupQueue]int64{},
		processed: map[groupQueue]map[int64]bool{}, txByID: map[string]*txRecord{}}
	r.flows = topo.flows(r)
	r.report.Flows = r.flows
	r.timeline = &Timeline{Brokers: map[string]string{}, History: &r.h}
	r.report.Timeline = r.timeline
	topo.build(r)
	r.tap(r.onCommitSent, nil)
	r.installTaps()
	r.timeline.Nodes = w.Addrs()
	r.watchUps()
	for _, addr := range topo.brokers(r) {
		r.timeline.Brokers[addr] = r.groupOf(addr)
	}

	plan := cfg.Plan
	if !cfg.ExplicitPlan {
		plan = topo.plan(r)
	}
	for i := 0; i < cfg.Producers; i++ {
		r.startProducer(i)
	}
	for i := 0; i < cfg.Consumers; i++ {
		r.startConsumer(i)
	}
	topo.startClients(r)
	in := topo.injector(r)
	in.OnStrike = func(addr string, f faults.Fault) {
		r.noteStrike(addr, f)
		r.onStrike(addr, f)
	}
	if err := in.Schedule(plan); err != nil {
		return nil, err
	}
	r.plan = plan
	r.report.Plan = plan
	r.report.Faults = faults.Count(plan)
	topo.watch(r)
	r.startRouteCheck(topo.nameServers(), topo.brokers(r))
	if r.runUntil(cfg.Duration) {
		return r.stoppedEarly(start, wallNow), nil
	}
	r.stopped = true
	r.timeline.Workload = w.Now()

	// Heal: let every planned fault run its course, then end whatever is left and start every
	// node that is down.
	if r.runUntil(w.Now()+healWait) || cfg.StopAtKind != "" && cfg.KindBeforeDrain {
		return r.stoppedEarly(start, wallNow), nil
	}
	r.draining = true
	r.healedAt = w.Now()
	r.timeline.Healed = w.Now()
	w.HealAll()
	for _, addr := range w.Addrs() {
		if n := w.Node(addr); !n.Up() {
			n.Restart()
		}
	}
	r.restarts = append(r.restarts, int64(w.Now()))
	drain := r.drain(func() string { return topo.downState(r) })
	topo.afterDrain(r)
	if r.reached() {
		return r.stoppedEarly(start, wallNow), nil
	}
	r.report.Crashes = topo.crashes(r)
	r.report.Simulated = w.Now()
	r.timeline.End = w.Now()
	r.report.Events = w.Delivered()
	r.report.TraceHash = w.TraceHash()
	r.report.Consumed = r.consumed
	checkStart := wallNow()
	topo.check(r, drain)
	end := wallNow()
	r.report.Wall, r.report.CheckWall = end.Sub(start), end.Sub(checkStart)
	return r.report, nil
}

// runUntil runs the world until t; with cfg.StopAtKind set it runs a simulated second at a time
// and reports true, stopping there, once a violation of that kind is recorded.
func (r *run) runUntil(t time.Duration) bool {
	if r.cfg.StopAtKind == "" {
		r.w.RunUntil(t)
		return false
	}
	for r.w.Now() < t {
		r.w.RunUntil(min(r.w.Now()+time.Second, t))
		if r.reached() {
			return true
		}
	}
	return false
}

// reached reports whether the run has recorded a violation of cfg.StopAtKind.
func (r *run) reached() bool {
	return r.cfg.StopAtKind != "" && r.report.hasKind(r.cfg.StopAtKind)
}

// stoppedEarly completes the report of a run that StopAtKind ended before its checks.
func (r *run) stoppedEarly(start time.Time, wallNow func() time.Time) *Report {
	r.stopped = true
	r.report.Simulated = r.w.Now()
	r.report.Events = r.w.Delivered()
	r.report.TraceHash = r.w.TraceHash()
	r.report.Consumed = r.consumed
	r.report.Wall = wallNow().Sub(start)
	return r.report
}

// hasKind reports whether the report holds a violation of kind.
func (rep *Report) hasKind(kind string) bool {
	for _, v := range rep.Violations {
		if v.Kind == kind {
			return true
		}
	}
	return false
}
