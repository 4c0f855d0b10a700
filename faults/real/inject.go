package real

// The injector: plays a schedule on the real cluster. Symbolic targets (faults.MasterOf and
// the rest) are resolved when a fault strikes, from what the controllers say then. Partitions
// are blackhole routes inside the namespaces, counted per directed link so overlapping faults
// heal independently; a crash is kill -9 and a restart on the same data after the fault's
// duration; a pause is SIGSTOP then SIGCONT. Kinds with no real counterpart here are skipped
// with a logged reason (see unsupported). Disk faults (fsync EIO, a full disk) switch on the
// trigger files of a binary built with -tags faultinject for the fault's duration.

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// unsupported says why kind k is not injected on real processes ("" when it is). Disk faults
// need a binary built with -tags faultinject (package diskfile's trigger files).
func (in *injector) unsupported(k faults.Kind) string {
	switch k {
	case faults.Crash, faults.Partition, faults.Split, faults.Bridge, faults.OneWay, faults.Pause:
		return ""
	case faults.DiskSyncEIO, faults.DiskFull:
		if in.c.diskFaults {
			return ""
		}
		return "the sluice binary was not built with -tags faultinject (package diskfile's trigger files)"
	case faults.Delay:
		return "no netem in this kernel: latency cannot be added to a link"
	case faults.Reset, faults.GroupPartition:
		return "not built for real processes yet"
	case faults.ClockSkew, faults.ClockJump, faults.DiskWriteEIO, faults.SlowFsync, faults.BitFlip:
		// Hook: these need test-only flags of the sluice binary (a clock offset, a slow or
		// corrupting disk); when the binary has them, strike them here.
		return "needs a test-only clock or disk flag of the sluice binary, not used by this harness yet"
	}
	return "unknown kind"
}

// link is a directed link: from's frames to "to" are dropped (a blackhole route in from's
// namespace).
type link struct{ from, to string }

// injector applies faults to a cluster.
type injector struct {
	c   *Cluster
	log *slog.Logger

	mu      sync.Mutex
	cuts    map[link]int    // holds on each route
	down    map[string]bool // crashed by a fault, restart pending
	Applied map[faults.Kind]int
	Skipped map[faults.Kind]int
	Errors  []string
	wg      sync.WaitGroup
	timers  []*time.Timer
	healed  bool
}

func newInjector(c *Cluster, log *slog.Logger) *injector {
	return &injector{c: c, log: log, cuts: map[link]int{}, down: map[string]bool{}, Applied: map[faults.Kind]int{}, Skipped: map[faults.Kind]int{}}
}

// resolve maps names (symbolic or node names) to nodes.
func (in *injector) resolve(names []string) []string {
	var out []string
	for _, name := range names {
		kind, g, ok := strings.Cut(strings.TrimPrefix(name, "@"), ":")
		if !strings.HasPrefix(name, "@") || !ok {
			out = append(out, name)
			continue
		}
		if _, err := in.c.syncState(g); err != nil {
			in.log.Warn("controllers unreachable; aiming at the master last seen", "group", g, "err", err)
		}
		m := in.c.master(g)
		var all, slaves []string
		for id := 1; id <= groupReplicas; id++ {
			all = append(all, ReplicaNode(g, id))
			if n := ReplicaNode(g, id); n != m {
				slaves = append(slaves, n)
			}
		}
		switch kind {
		case "master":
			if m != "" {
				out = append(out, m)
			}
		case "slaves":
			out = append(out, slaves...)
		case "slave":
			out = append(out, slaves[0])
		case "group":
			out = append(out, all...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// everyone is every node and the clients.
func everyone() []string { return append(Nodes(), ClientNode) }

// without is all less those in drop.
func without(all, drop []string) []string {
	var out []string
	for _, n := range all {
		if !slices.Contains(drop, n) {
			out = append(out, n)
		}
	}
	return out
}

// setCut adds (d=1) or removes (d=-1) one hold on the directed link l. A link is a blackhole
// route in one namespace, held while any fault holds it; the route is added when its count
// leaves zero and removed when it reaches zero. The clients have no namespace of their own: a
// cut from the clients is made in the node's namespace (its replies to them are dropped), so
// both directions between a node and the clients share one route.
func (in *injector) setCut(l link, d int) {
	if l.from == l.to {
		return
	}
	r := l
	if r.from == ClientNode {
		r = link{l.to, l.from}
	}
	in.mu.Lock()
	before := in.cuts[r]
	in.cuts[r] = before + d
	after := in.cuts[r]
	in.mu.Unlock()
	addr := in.c.net.ClientAddr()
	if r.to != ClientNode {
		addr = in.c.net.Addr(r.to)
	}
	var err error
	switch {
	case before == 0 && after > 0:
		err = in.c.net.Cut(r.from, addr)
	case before > 0 && after == 0:
		err = in.c.net.Mend(r.from, addr)
	}
	if err != nil {
		in.noteErr(err)
	}
}

func (in *injector) noteErr(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.Errors = append(in.Errors, err.Error())
	in.log.Error("fault injection failed", "err", err)
}

// links are the directed links a network fault f cuts between sides a and b.
func links(k faults.Kind, a, b []string) []link {
	var out []link
	for _, x := range a {
		for _, y := range b {
			if x == y {
				continue
			}
			out = append(out, link{x, y})
			if k != faults.OneWay {
				out = append(out, link{y, x})
			}
		}
	}
	return out
}

// play strikes every fault of s at its time from start until stop closes, then waits for
// nothing: heal undoes whatever is still on.
func (in *injector) play(s Schedule, start time.Time, stop <-chan struct{}) {
	for _, f := range s.Faults {
		select {
		case <-stop:
			return
		case <-time.After(time.Until(start.Add(f.At))):
		}
		in.strike(f, start)
	}
}

// strike applies f now and arranges its end.
func (in *injector) strike(f faults.Fault, start time.Time) {
	if why := in.unsupported(f.Kind); why != "" {
		in.mu.Lock()
		in.Skipped[f.Kind]++
		in.mu.Unlock()
		in.log.Warn("fault skipped", "fault", f.String(), "why", why)
		return
	}
	at := time.Since(start).Round(time.Millisecond)
	switch f.Kind {
	case faults.Crash, faults.Pause, faults.DiskSyncEIO, faults.DiskFull:
		nodes := in.resolve(f.Nodes)
		if f.Node != "" {
			nodes = in.resolve([]string{f.Node})
		}
		if len(nodes) == 0 {
			in.skip(f, "it names a role no node holds now")
		}
		for _, n := range nodes {
			in.nodeFault(f, n, at)
		}
	default:
		a, b := in.resolve(f.Nodes), in.resolve(f.Peers)
		if f.Node != "" {
			a = in.resolve([]string{f.Node})
		}
		if len(f.Nodes) == 0 && f.Node == "" {
			a = nil
		}
		named := len(f.Nodes) > 0 || f.Node != ""
		switch {
		case named && len(a) == 0 || len(f.Peers) > 0 && len(b) == 0:
			// A role nobody holds (a group without a master): an empty side would mean
			// "everyone else" and cut what the fault never meant to.
			in.skip(f, "a side names a role no node holds now")
			return
		case len(a) == 0 && len(b) == 0:
			in.skip(f, "its sides resolved to no node")
			return
		case len(a) == 0:
			a = without(everyone(), b)
		case len(b) == 0:
			b = without(everyone(), a)
		}
		ls := links(f.Kind, a, b)
		for _, l := range ls {
			in.setCut(l, 1)
		}
		in.count(f.Kind)
		in.log.Info("fault", "at", at, "kind", f.Kind, "sides", fmt.Sprintf("%v|%v", a, b), "for", f.Duration)
		in.later(f.Duration, func() {
			for _, l := range ls {
				in.setCut(l, -1)
			}
		})
	}
}

func (in *injector) skip(f faults.Fault, why string) {
	in.mu.Lock()
	in.Skipped[f.Kind]++
	in.mu.Unlock()
	in.log.Info("fault skipped", "fault", f.String(), "why", why)
}

func (in *injector) count(k faults.Kind) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.Applied[k]++
}

// later runs f after d unless the run healed first.
func (in *injector) later(d time.Duration, f func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.healed {
		return
	}
	in.wg.Add(1)
	in.timers = append(in.timers, time.AfterFunc(d, func() {
		defer in.wg.Done()
		f()
	}))
}

// nodeFault crashes or pauses node n.
func (in *injector) nodeFault(f faults.Fault, n string, at time.Duration) {
	p := in.c.procs[n]
	switch f.Kind {
	case faults.Crash:
		if !p.kill() {
			in.skip(f, n+" is already down")
			return
		}
		in.mu.Lock()
		in.down[n] = true
		in.mu.Unlock()
		in.count(f.Kind)
		in.log.Info("fault", "at", at, "kind", "crash (kill -9)", "node", n, "restart after", f.Duration)
		in.later(f.Duration, func() { in.restart(n) })
	case faults.Pause:
		if !p.pause() {
			in.skip(f, n+" is down or paused")
			return
		}
		in.count(f.Kind)
		in.log.Info("fault", "at", at, "kind", "pause (SIGSTOP)", "node", n, "for", f.Duration)
		in.later(f.Duration, func() { p.resume() })
	case faults.DiskSyncEIO, faults.DiskFull:
		if !p.up() {
			in.skip(f, n+" is down")
			return
		}
		trigger := p.fsyncTrigger
		if f.Kind == faults.DiskFull {
			trigger = p.fullTrigger
		}
		if err := os.WriteFile(trigger, nil, 0o644); err != nil {
			in.noteErr(fmt.Errorf("%s on %s: %w", f.Kind, n, err))
			return
		}
		if f.Kind == faults.DiskSyncEIO {
			// A broker or controller exits at its first failed fsync (its supervisor restarts
			// it): an exit the harness caused, not a crash of the code.
			p.expectExit()
		}
		in.count(f.Kind)
		in.log.Info("fault", "at", at, "kind", f.Kind, "node", n, "for", f.Duration)
		in.later(f.Duration, func() {
			if err := os.Remove(trigger); err != nil {
				in.noteErr(err)
			}
			in.mu.Lock()
			pending := in.down[n]
			in.mu.Unlock()
			if !pending && !p.up() { // exited at the failed fsync: the supervisor's restart
				if err := p.start(60 * time.Second); err != nil {
					in.noteErr(fmt.Errorf("restart %s after %s: %w", n, f.Kind, err))
				}
			}
		})
	}
}

// restart starts a crashed node again on its data.
func (in *injector) restart(n string) {
	in.mu.Lock()
	pending := in.down[n]
	delete(in.down, n)
	in.mu.Unlock()
	if !pending {
		return
	}
	if err := in.c.procs[n].start(60 * time.Second); err != nil {
		in.noteErr(fmt.Errorf("restart %s: %w", n, err))
	}
}

// heal ends every fault: blackholes removed, paused processes continued, crashed ones
// restarted. Processes that died on their own are reported (and restarted).
func (in *injector) heal() []string {
	in.mu.Lock()
	in.healed = true
	for _, t := range in.timers {
		if t.Stop() {
			in.wg.Done() // it will never run
		}
	}
	in.mu.Unlock()
	in.wg.Wait()
	if err := in.c.net.HealAll(); err != nil {
		in.noteErr(err)
	}
	for _, p := range in.c.procs {
		for _, trigger := range []string{p.fsyncTrigger, p.fullTrigger} {
			if err := os.Remove(trigger); err != nil && !os.IsNotExist(err) {
				in.noteErr(err)
			}
		}
	}
	var died []string
	for _, n := range Nodes() {
		p := in.c.procs[n]
		p.resume()
		_ = p.signal(syscall.SIGCONT)
		if p.diedAlone() {
			died = append(died, n)
		}
		if !p.up() {
			if err := p.start(60 * time.Second); err != nil {
				in.noteErr(fmt.Errorf("restart %s while healing: %w", n, err))
			}
		}
	}
	return died
}
