package real

// One run: network and cluster up, the topic created, the workload started, the schedule
// played, everything healed, a liveness probe and the final drain, then the simulator's checks
// over the history, and everything the run made removed.

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim/checks"
)

// Config is one run's.
type Config struct {
	// Binary is the sluice binary the nodes run.
	Binary string
	// Dir holds the nodes' data and logs (one file per node) and the visualisations of
	// queues that fail the log check.
	Dir      string
	Seed     uint64
	Duration time.Duration
	// Plant, when set, names a planted bug (sluice sim --plant list) every node runs with
	// (SLUICE_PLANT).
	Plant string
	// CheckTimeout bounds Porcupine's check (0: 2 minutes).
	CheckTimeout time.Duration
	Logger       *slog.Logger
	// Interrupt, when it closes, cuts the workload short: the run heals, drains, checks and
	// removes what it made as usual (nil: never).
	Interrupt <-chan struct{}
}

// Report is what a run found.
type Report struct {
	Seed      uint64
	Plant     string
	Schedule  Schedule
	Applied   map[faults.Kind]int
	Skipped   map[faults.Kind]int
	Failovers map[string]int
	Sends     map[linearizability.Outcome]int
	// OfficialSends are the official Go client's sends (counted in Sends too).
	OfficialSends map[linearizability.Outcome]int
	Pulls         int
	Drained       int
	Verdict       linearizability.Verdict
	Violations    []checks.Violation
	// InjectErrors are faults that could not be applied or undone.
	InjectErrors []string
	Elapsed      time.Duration
}

// Failed reports whether the run found a violation.
func (r Report) Failed() bool { return len(r.Violations) > 0 }

// Run runs one schedule and checks it. An error means the run could not be made (the
// cluster did not start); what it found is in the Report.
func Run(cfg Config) (Report, error) {
	began := time.Now()
	log := cmp.Or(cfg.Logger, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg.CheckTimeout = cmp.Or(cfg.CheckTimeout, 2*time.Minute)
	rep := Report{Seed: cfg.Seed, Plant: cfg.Plant, Schedule: Draw(cfg.Seed, cfg.Duration)}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return rep, fmt.Errorf("run directory: %w", err)
	}
	CleanStale(log)
	n, err := NewNet(Nodes(), log)
	if err != nil {
		return rep, err
	}
	defer n.Close()
	c, err := startCluster(n, cfg.Binary, cfg.Dir, cfg.Plant, log)
	if err != nil {
		return rep, fmt.Errorf("start the cluster: %w", err)
	}
	defer c.stop()
	if err := c.waitMasters(60 * time.Second); err != nil {
		return rep, err
	}
	if err := createTopic(c, 60*time.Second); err != nil {
		return rep, err
	}
	log.Info("cluster up", "took", time.Since(began).Round(time.Millisecond))

	rec := &recorder{start: time.Now(), sends: map[linearizability.Outcome]int{}, official: map[linearizability.Outcome]int{}}
	stopWatch := make(chan struct{})
	go c.watch(300*time.Millisecond, stopWatch)
	defer close(stopWatch)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var clients []interface{ Close() }
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for i := range 3 {
		cli, err := newClient(c.NameServerAddrs(), fmt.Sprintf("producer-%d", i), log)
		if err != nil {
			return rep, err
		}
		clients = append(clients, cli)
		rec.produce(cli, i, 2, stop, &wg)
	}
	shutdown, err := rec.produceOfficial(c.NameServerAddrs(), stop, &wg)
	if err != nil {
		return rep, err
	}
	defer shutdown()
	for i := range 2 {
		cli, err := newClient(c.NameServerAddrs(), fmt.Sprintf("consumer-%d", i), log)
		if err != nil {
			return rep, err
		}
		clients = append(clients, cli)
		rec.consume(cli, 100+i, stop, &wg)
	}
	in := newInjector(c, log)
	stopPlay := make(chan struct{})
	played := make(chan struct{})
	go func() { in.play(rep.Schedule, rec.start, stopPlay); close(played) }()
	select {
	case <-time.After(cfg.Duration):
	case <-cfg.Interrupt:
		log.Warn("interrupted: healing, draining and checking what ran")
	}
	close(stopPlay)
	<-played
	close(stop)
	wg.Wait()
	log.Info("workload stopped; healing")
	for _, node := range in.heal() {
		rec.vs = append(rec.vs, checks.Violation{Kind: "process died", Message: fmt.Sprintf("%s exited though no fault killed it (see %s)", node, c.procs[node].logPth)})
	}
	if err := c.waitMasters(60 * time.Second); err != nil {
		rec.vs = append(rec.vs, checks.Violation{Kind: "liveness", Message: "after healing: " + err.Error()})
	}
	drainer, err := newClient(c.NameServerAddrs(), "drainer", log)
	if err != nil {
		return rep, err
	}
	clients = append(clients, drainer)
	if err := rec.probe(drainer, 60*time.Second); err != nil {
		rec.vs = append(rec.vs, checks.Violation{Kind: "liveness", Message: err.Error()})
	}
	drain, err := rec.drain(c, drainer, 90*time.Second)
	if err != nil {
		rec.vs = append(rec.vs, checks.Violation{Kind: "liveness", Message: err.Error()})
	}
	for _, msgs := range drain {
		rep.Drained += len(msgs)
	}
	rep.Applied, rep.Skipped, rep.InjectErrors = in.Applied, in.Skipped, in.Errors
	rep.Failovers = c.Failovers()
	rep.Sends, rep.OfficialSends, rep.Pulls = rec.sends, rec.official, rec.pulls
	rep.Violations = append(rep.Violations, rec.vs...)
	rep.Violations = append(rep.Violations, raceReports(c)...)
	rep.Violations = append(rep.Violations, check(rec.h, drain, cfg, &rep)...)
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// check runs the simulator's checks on the history and the drain: Porcupine's append-only
// log per queue, and the direct invariants of package sim/checks.
func check(h linearizability.History, drain map[linearizability.QueueKey][]linearizability.PulledMsg, cfg Config, rep *Report) []checks.Violation {
	if err := h.Validate(); err != nil {
		return []checks.Violation{{Kind: "history", Message: "malformed history: " + err.Error()}}
	}
	vs := checks.Drain(h, drain)
	res, err := linearizability.Check(h, cfg.CheckTimeout, filepath.Join(cfg.Dir, "viz"))
	rep.Verdict = res.Verdict
	if err != nil {
		vs = append(vs, checks.Violation{Kind: "checker", Message: err.Error()})
	}
	for _, q := range res.Failed() {
		vs = append(vs, checks.Violation{Kind: "linearizability", Queue: q, Message: "history is not linearizable as an append-only log"})
	}
	for _, q := range res.Undecided() {
		vs = append(vs, checks.Violation{Kind: "undecided", Queue: q, Message: fmt.Sprintf("Porcupine did not decide within %v; the queue is unchecked", cfg.CheckTimeout)})
	}
	return vs
}

// raceReports reports every node log that holds a data race report (a binary built with
// -race writes them and goes on).
func raceReports(c *Cluster) []checks.Violation {
	var vs []checks.Violation
	for _, node := range Nodes() {
		b, err := os.ReadFile(c.procs[node].logPth)
		if err != nil {
			continue
		}
		if n := strings.Count(string(b), "WARNING: DATA RACE"); n > 0 {
			vs = append(vs, checks.Violation{Kind: "data race", Message: fmt.Sprintf("%s: %d race reports (see %s)", node, n, c.procs[node].logPth)})
		}
	}
	return vs
}

// createTopic creates the workload's topic on every group's master and waits until its
// queues are routed.
func createTopic(c *Cluster, bound time.Duration) error {
	ac := adminclient.New(c.NameServerAddrs(), 3*time.Second)
	defer ac.Close()
	deadline := time.Now().Add(bound)
	for _, g := range Groups {
		for {
			_, _ = c.syncState(g)
			addr := c.masterAddr(g)
			err := ac.CreateTopic(addr, adminclient.TopicSpec{Name: Topic, ReadQueueNums: QueuesPerGroup, WriteQueueNums: QueuesPerGroup})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("create %s on %s: %w", Topic, g, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	for {
		r, err := ac.Route(Topic)
		if err == nil && len(r.QueueDatas) == len(Groups) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s not routed on every group within %v: %v", Topic, bound, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Print writes the report for people.
func (r Report) Print(w io.Writer) {
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	plant := ""
	if r.Plant != "" {
		plant = " plant=" + r.Plant
	}
	fmt.Fprintf(w, "%s seed=%d%s took %v: sends %s, pulls %d, drained %d, log check %s\n", verdict, r.Seed, plant,
		r.Elapsed.Round(time.Second), outcomes(r.Sends), r.Pulls, r.Drained, cmp.Or(string(r.Verdict), "not run"))
	fmt.Fprintf(w, "  of the sends, the official Go client's: %s\n", outcomes(r.OfficialSends))
	fmt.Fprintf(w, "  faults applied: %s; skipped: %s; failovers: %s\n", kinds(r.Applied), kinds(r.Skipped), failovers(r.Failovers))
	for _, e := range r.InjectErrors {
		fmt.Fprintf(w, "  injection error: %s\n", e)
	}
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(w, "  ... %d more violations\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(w, "  VIOLATION %v\n", v)
	}
}

func outcomes(m map[linearizability.Outcome]int) string {
	return fmt.Sprintf("%d ok, %d failed, %d unknown", m[linearizability.OK], m[linearizability.Failed], m[linearizability.Unknown])
}

func kinds(m map[faults.Kind]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func failovers(m map[string]int) string {
	var parts []string
	for _, g := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", g, m[g]))
	}
	return strings.Join(parts, ", ")
}
