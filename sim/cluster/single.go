package cluster

// The single topology: one name server and one broker, the producers and consumers, and the
// flows beyond plain sends and pulls (flows.go), drawn per seed. The fault plan strikes the
// broker only: the default kinds and SingleFaultKinds (singlefaults.go), a long pause in some
// seeds (nsliveness.go) and bit flips of its commit log in half of them (bitflips.go).

import (
	"fmt"
	"sort"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/namesrv"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
	"github.com/sluicemq/sluice/sim/checks"
)

// Node addresses of the single topology (literal loopback IPs, as clients need).
const (
	NameServerAddr = "127.0.0.1:9876"
	BrokerAddr     = "127.0.0.1:10911"
	BrokerName     = "broker-a"
)

// singleTopology is SingleBroker.
type singleTopology struct {
	broker *sim.Node
}

func (t *singleTopology) flows(r *run) Flows { return r.drawFlows() }

func (t *singleTopology) build(r *run) {
	ncfg := r.cfg.nameServerConfig()
	ncfg.Metrics = r.report.Metrics.With("node", NameServerAddr)
	r.w.AddNode(NameServerAddr, func(env node.Env) node.Handler { return namesrv.New(env, ncfg) })
	bcfg := brokernode.DefaultConfig()
	bcfg.BrokerName = BrokerName
	bcfg.Addr = BrokerAddr
	bcfg.NameServers = []string{NameServerAddr}
	bcfg.FlushMode = r.cfg.FlushMode
	bcfg.Bugs = r.cfg.plant().Bugs
	bcfg.RegisterInterval = 5 * time.Second
	bcfg.RecentHeadEntries = simRecentHeadEntries
	bcfg.MaxOpenQueueFiles = simMaxOpenQueueFiles
	bcfg.Metrics = r.report.Metrics.With("node", BrokerAddr)
	r.configureBroker(&bcfg)
	r.retentionConfig(&bcfg)
	if r.cfg.retentionOn() {
		bcfg.Observe = func(e brokernode.Event) { r.onRetentionEvent(BrokerName, t.broker, e) }
	}
	r.asyncFlushInterval = bcfg.AsyncFlushInterval
	t.broker = r.w.AddNode(BrokerAddr, newBroker(bcfg, "broker"))
	t.broker.Disk.SetBugs(r.cfg.plant().Bugs)
	r.retentionDisk(t.broker)
}

// plan: the fault plan has its own PRNGs, derived from the seed, so that replacing the plan
// (as the shrinker does) leaves every other random choice of the run where it was.
func (t *singleTopology) plan(r *run) []faults.Fault {
	cfg := r.cfg
	plan := singlePlan(cfg.Seed, cfg.Faults, cfg.Duration)
	if cfg.Faults == nil {
		plan = append(plan, longPause(cfg.Seed, []string{BrokerAddr}, plan, cfg.Duration,
			func(f faults.Fault, target string) bool { return f.Node == target })...)
		plan = append(plan, singleFlips(cfg.Seed, cfg.Duration)...)
		sort.SliceStable(plan, func(i, j int) bool { return plan[i].At < plan[j].At })
	}
	return plan
}

func (t *singleTopology) startClients(r *run) { r.startFlowClients() }

func (t *singleTopology) injector(r *run) *faults.Injector {
	return &faults.Injector{World: r.w, OnFlip: r.onFlip}
}

func (t *singleTopology) watch(r *run) { r.watchCrashes(t.broker) }

func (t *singleTopology) nameServers() []string { return []string{NameServerAddr} }

func (t *singleTopology) brokers(*run) []string { return []string{BrokerAddr} }

func (t *singleTopology) downState(*run) string { return fmt.Sprintf("broker up: %v", t.broker.Up()) }

func (t *singleTopology) afterDrain(*run) {}

func (t *singleTopology) crashes(*run) int { return t.broker.Crashes }

// check turns the flows and crashes into history, then runs the checkers: the drain
// invariants, locks and offset searches, consumer offsets, SQL92 filters, and the log model.
func (t *singleTopology) check(r *run, drain map[linearizability.QueueKey][]linearizability.PulledMsg) {
	r.crashHistory()
	r.flowHistory()
	r.finishWitnesses()
	vs, ok := r.drainViolations(drain)
	if !ok {
		return
	}
	r.report.LostUnflushed = len(linearizability.UnflushedLosses(r.h, drain))
	vs = append(vs, checks.Locks(r.h.Locks, r.lockLease(), r.brokerDownTimes())...)
	vs = append(vs, checks.Searches(&r.h, drain)...)
	vs = append(vs, r.checkConsumers(drain, nil)...)
	// Every violation gets a visualisation: of its queue, or of every queue when it names none.
	var show []linearizability.QueueKey
	for _, v := range vs {
		r.violateOn(v)
		show = append(show, v.Queue)
	}
	show = append(show, r.checkOffsets()...)
	show = append(show, r.checkProcessed(drain, nil)...)
	show = append(show, r.checkSQL(drain)...)
	if len(r.report.Violations) > 0 && len(show) == 0 {
		show = r.h.Queues()
	}
	r.checkLog(r.h, fmt.Sprintf("sluice-seed-%d", r.cfg.Seed), show)
}

// newBroker is the handler factory of a simulated broker (what names it in a panic): a
// recovery that fails on an injected disk fault makes the process exit, and its supervisor
// starts it again later (sim.StartRetry); any other failure to recover is a bug, since the
// simulated disk only loses what was never durable.
func newBroker(cfg brokernode.Config, what string) func(env node.Env) node.Handler {
	return func(env node.Env) node.Handler {
		b, err := brokernode.New(env, cfg)
		if err != nil {
			if diskFault(err) {
				return nil
			}
			panic(fmt.Sprintf("%s recovery failed: %v", what, err))
		}
		return b
	}
}
