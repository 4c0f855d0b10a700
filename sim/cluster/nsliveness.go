package cluster

// Name-server liveness: brokers register with every name server and re-register every
// RegisterInterval; a name server drops a broker whose connection closes at once, and one that
// has been silent for longer than its BrokerExpiry at its next scan (a paused or hung process,
// or a host gone without a reset, keeps its connection open: only the expiry removes it). The
// simulator runs the name servers with an expiry short enough to pass within a run, and aims
// a pause longer than it at a broker in some seeds. A route prober, a node of the harness (not
// of the cluster under test), asks each name server for the run's topic through the real codec
// every second, and each answer is held against an independent record, kept by polling the
// world every 100 ms, of what could have reached that name server:
//
//   - dead broker still routed: a broker none of whose registrations can have reached the name
//     server (it was down or paused, or its link to the name server cut or lossy)
//     for longer than the expiry on the name server's own clock, plus a scan interval, must
//     not appear in its answers;
//   - liveness: a broker that has been up, ready, holding the topic and reachable both ways
//     from an up name server must appear in its answers again within routeLivenessBound of
//     becoming so, of the last reset of either's connections (which drops the broker until
//     its next registration), or of the last answer that routed it (a name server may drop a live broker
//     when its own clock jumps forward past the expiry; the broker's next registration brings
//     it back).

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/namesrv"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/sim"
)

// The simulator's name-server timing: RocketMQ's expiry of 120 s and scan every 10 s against
// a broker registration every 30 s, scaled by 1/6 to the simulated brokers' 5 s registration,
// so that an expiry passes within a run (60 s single, 120 s groups). Production keeps
// namesrv.DefaultConfig.
const (
	simBrokerExpiry = 20 * time.Second
	simScanInterval = 2 * time.Second
)

// Timing of the route check.
const (
	// routeProbeEvery is how often the prober asks each name server for the topic's route.
	routeProbeEvery = time.Second
	// routePollEvery is how often the harness records what could reach each name server.
	routePollEvery = 100 * time.Millisecond
	// routeAnswerMax: an answer that took longer says too little about when it was composed
	// (a delay spike, a paused name server) and is left out.
	routeAnswerMax = time.Second
	// routePollMargin absorbs the poll's granularity in the expiry bound.
	routePollMargin = time.Second
	// routeLivenessBound is how long a broker that can register may stay out of a name
	// server's routes: a registration interval (5 s), a failed dial's timeout (3 s) still to
	// be learnt of, a probe interval and delay spikes, with room to spare.
	routeLivenessBound = 20 * time.Second
	// maxNetLatency is the simulated network's largest base latency (see Run).
	maxNetLatency = 2 * time.Millisecond
)

// routeProberAddr is the route prober's address.
const routeProberAddr = "127.0.6.1:1"

// nameServerConfig is the name servers' configuration in the simulator, with the run's
// planted bug applied.
func (cfg Config) nameServerConfig() namesrv.Config {
	c := namesrv.DefaultConfig()
	c.BrokerExpiry, c.ScanInterval = simBrokerExpiry, simScanInterval
	c.Bugs = cfg.plant().Bugs
	return c
}

// longPauseEvery: about one run in longPauseEvery pauses one broker for longer than the
// name servers' expiry.
const longPauseEvery = 2

// longPause draws, from a PRNG of its own (so every other draw of the run stays where it
// was), in about one run of longPauseEvery, a pause of one of targets long enough for the name
// servers to expire it and for the probes to see it gone: the process hangs (a stop-the-world
// GC gone wrong, SIGSTOP, a frozen VM) with its connections open, so no reset tells the name
// servers; only the expiry takes it out of routes. A crash would end the pause, and a crash or
// a reset of the target's connections would tell the name servers, so the pause goes where
// none of the planned crashes and resets that may strike the target (strikes(f, target))
// does, from 3 s into the run to 5 s before its end d; if there is no such place, there is no
// pause.
func longPause(seed uint64, targets []string, plan []faults.Fault, d time.Duration, strikes func(f faults.Fault, target string) bool) []faults.Fault {
	rng := rand.New(rand.NewPCG(seed, 0x10e6a05e))
	if rng.IntN(longPauseEvery) != 0 {
		return nil
	}
	target := targets[rng.IntN(len(targets))]
	dur := simBrokerExpiry + simScanInterval + 8*time.Second + time.Duration(rng.Int64N(int64(10*time.Second)))
	// Starts at which the pause meets no crash: [lo, hi] less [c-dur, c+down] for each crash.
	lo, hi := 3*time.Second, d-5*time.Second-dur
	type span struct{ from, to time.Duration }
	var forbidden []span
	for _, f := range plan {
		if (f.Kind == faults.Crash || f.Kind == faults.Reset) && strikes(f, target) {
			forbidden = append(forbidden, span{f.At - dur, f.At + f.Duration})
		}
	}
	slices.SortFunc(forbidden, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	var free []span
	at := lo
	for _, s := range append(forbidden, span{hi, hi}) {
		if s.from > at {
			free = append(free, span{at, min(s.from, hi)})
		}
		at = max(at, s.to)
		if at >= hi {
			break
		}
	}
	var total time.Duration
	for _, s := range free {
		total += s.to - s.from
	}
	if total <= 0 {
		return nil
	}
	pick := time.Duration(rng.Int64N(int64(total)))
	for _, s := range free {
		if pick < s.to-s.from {
			return []faults.Fault{{At: s.from + pick, Kind: faults.Pause, Node: target, Duration: dur}}
		}
		pick -= s.to - s.from
	}
	panic("cluster: long pause: no free span picked")
}

// routeWatch is the record of one broker as seen from one name server.
type routeWatch struct {
	ns, broker string
	// lastFresh is the name server's clock at the latest moment a registration of the broker
	// may have reached it (an upper bound of the last registration's time stamp), and
	// lastFreshAt that moment in virtual time; freshUntil is how long frames the broker sent
	// while it could reach the name server may still be arriving.
	lastFresh   time.Time
	lastFreshAt time.Duration
	freshUntil  time.Duration
	// silentSince starts the current run of polls at which the name server's clock says the
	// broker has been silent for longer than the expiry (-1: not silent).
	silentSince time.Duration
	// eligibleSince starts the current stretch in which the broker can register (-1: it
	// cannot); lastRouted is when an answer last routed it.
	eligibleSince time.Duration
	lastRouted    time.Duration
	// expiredSeen: an answer has shown the broker gone in the current silent stretch.
	expiredSeen          bool
	reportedDead, noLive bool
}

// routeCheck is the route check of one run.
type routeCheck struct {
	r       *run
	topic   string
	watches []*routeWatch
	// lastBody is the last route body that decoded, and lastRouted the addresses it routes:
	// the name servers answer the same bytes until a route changes.
	lastBody   []byte
	lastRouted []string
}

// startRouteCheck starts the prober and the poll for the name servers nss and brokers.
func (r *run) startRouteCheck(nss, brokers []string) {
	rc := &routeCheck{r: r, topic: r.cfg.Topic}
	r.routes = rc
	for _, ns := range nss {
		for _, b := range brokers {
			rc.watches = append(rc.watches, &routeWatch{ns: ns, broker: b, lastFresh: sim.Epoch,
				silentSince: -1, eligibleSince: -1, lastRouted: -1})
		}
	}
	r.w.AddNode(routeProberAddr, func(env node.Env) node.Handler {
		return &routeProber{env: env, rc: rc, nss: nss, conns: map[string]node.ConnID{}, pending: map[string]routeProbe{}}
	})
	var tick func()
	tick = func() {
		rc.poll()
		r.w.After(routePollEvery, tick)
	}
	r.w.After(0, tick)
}

// broker is the handler of the broker at addr while it is up and not paused (nil otherwise).
func (rc *routeCheck) broker(addr string) *brokernode.Broker {
	n := rc.r.w.Node(addr)
	if n == nil || !n.Up() || n.Paused() || n.Handler() == nil {
		return nil
	}
	b, _ := n.Handler().(*brokernode.Broker)
	return b
}

// onStrike notes a node fault as it strikes addr: a reset of a broker's or a name server's
// connections drops the broker from that name server's routes until its next registration
// (RegisterInterval, plus a dial), so the liveness bound starts again from the reset.
func (r *run) onStrike(addr string, f faults.Fault) {
	if f.Kind != faults.Reset || r.routes == nil {
		return
	}
	for _, rw := range r.routes.watches {
		if rw.broker == addr || rw.ns == addr {
			rw.eligibleSince = -1
		}
	}
}

// poll records, for every broker and name server, whether a registration can reach it now.
func (rc *routeCheck) poll() {
	w := rc.r.w
	now := w.Now()
	for _, rw := range rc.watches {
		n := w.Node(rw.ns)
		b := rc.broker(rw.broker)
		cutTo, lossyTo, delayTo := w.LinkState(rw.broker, rw.ns)
		cutFrom, lossyFrom, _ := w.LinkState(rw.ns, rw.broker)
		// A registration sent now arrives within the link's latency; one held by a paused name
		// server is stamped when it resumes. (A broker registers once ready; any running one
		// counts here, to be safe.)
		fresh := b != nil && !cutTo && !lossyTo
		if fresh {
			rw.freshUntil = max(rw.freshUntil, now+maxNetLatency+delayTo+routePollEvery)
		}
		if n.Paused() {
			rw.freshUntil = max(rw.freshUntil, now+routePollEvery)
		}
		clock := sim.Epoch.Add(now + n.ClockOffset())
		if fresh || now <= rw.freshUntil {
			if clock.After(rw.lastFresh) {
				rw.lastFresh = clock
			}
			rw.lastFreshAt = now
		}
		if clock.Sub(rw.lastFresh) > simBrokerExpiry+routePollMargin {
			if rw.silentSince < 0 {
				rw.silentSince, rw.expiredSeen = now, false
			}
		} else {
			rw.silentSince = -1
		}
		eligible := b != nil && b.Ready() && hasTopic(b, rc.topic) && n.Up() && n.Handler() != nil && !n.Paused() && !cutTo && !lossyTo && !cutFrom && !lossyFrom
		if !eligible {
			rw.eligibleSince = -1
		} else if rw.eligibleSince < 0 {
			rw.eligibleSince = now
		}
	}
}

func hasTopic(b *brokernode.Broker, topic string) bool {
	_, ok := b.Store().Topic(topic)
	return ok
}

// onAnswer judges one answer of name server ns, asked at sent and answered at now.
func (rc *routeCheck) onAnswer(ns string, sent time.Duration, resp *codec.Command) {
	r := rc.r
	now := r.w.Now()
	if now-sent > routeAnswerMax {
		return
	}
	r.report.RouteProbes++
	var routed []string
	switch resp.Code {
	case codec.Success:
		if rc.lastBody != nil && bytes.Equal(rc.lastBody, resp.Body) {
			routed = rc.lastRouted
			break
		}
		rd, err := route.DecodeTopicRouteData(resp.Body)
		if err != nil {
			r.violate("route", "name server %s answered a route for %s that does not decode: %v", ns, rc.topic, err)
			return
		}
		for _, bd := range rd.BrokerDatas {
			for _, addr := range bd.BrokerAddrs {
				routed = append(routed, addr)
			}
		}
		rc.lastBody, rc.lastRouted = bytes.Clone(resp.Body), routed
	case codec.TopicNotExist:
	default:
		return // the name server could not say (nothing it answers so today)
	}
	for _, rw := range rc.watches {
		if rw.ns != ns {
			continue
		}
		in := slices.Contains(routed, rw.broker)
		if in && rw.silentSince >= 0 && sent >= rw.silentSince+simScanInterval+routePollMargin && !rw.reportedDead {
			rw.reportedDead = true
			local := sim.Epoch.Add(sent + r.w.Node(ns).ClockOffset())
			r.violate("dead broker still routed", "name server %s routed %s for topic %s at %v, though none of its registrations can have reached it since %v (%v on the name server's clock; expiry %v, scan every %v)",
				ns, rw.broker, rc.topic, sent, rw.lastFreshAt, local.Sub(rw.lastFresh).Round(time.Millisecond), simBrokerExpiry, simScanInterval)
		}
		if !in && rw.silentSince >= 0 && !rw.expiredSeen {
			rw.expiredSeen = true
			r.report.RouteExpiries++
		}
		if in {
			rw.lastRouted = now
			continue
		}
		if rw.eligibleSince >= 0 && !rw.noLive {
			since := max(rw.eligibleSince, rw.lastRouted)
			if sent-since > routeLivenessBound {
				rw.noLive = true
				r.violate("liveness", "name server %s left %s out of the route of %s at %v, though the broker has been up, ready, holding the topic and reachable since %v (bound %v)",
					ns, rw.broker, rc.topic, sent, since, routeLivenessBound)
			}
		}
	}
}

// routeProbe is one outstanding route request.
type routeProbe struct {
	opaque int32
	at     time.Duration
	conn   node.ConnID
}

// routeProber is the harness's route-probing client: every routeProbeEvery it asks each name
// server (one request outstanding per name server) for the run's topic.
type routeProber struct {
	env     node.Env
	rc      *routeCheck
	nss     []string
	conns   map[string]node.ConnID
	pending map[string]routeProbe // by name server
	opaque  int32
}

type probeTimer struct{}

func (p *routeProber) Start() { p.env.SetTimer(routeProbeEvery, probeTimer{}) }

func (p *routeProber) OnAccepted(node.ConnID, string) {}
func (p *routeProber) OnDialed(node.ConnID)           {}
func (p *routeProber) OnSynced(string, uint64, error) {}

func (p *routeProber) OnTimer(node.TimerID, any) {
	now := p.rc.r.w.Now()
	for _, ns := range p.nss {
		if q, ok := p.pending[ns]; ok && now-q.at < 3*routeProbeEvery {
			continue // a later answer than that is ignored
		}
		c, ok := p.conns[ns]
		if !ok {
			c = p.env.Dial(ns)
			p.conns[ns] = c
		}
		p.opaque++
		req := codec.NewRequest(codec.ReqGetRouteInfoByTopic, codec.EncodeHeader(&codec.TopicHeader{Topic: p.rc.topic}), nil)
		req.Opaque = p.opaque
		p.pending[ns] = routeProbe{opaque: req.Opaque, at: now, conn: c}
		p.env.Send(c, req)
	}
	p.env.SetTimer(routeProbeEvery, probeTimer{})
}

func (p *routeProber) OnConnClosed(c node.ConnID) {
	for _, ns := range p.nss {
		if p.conns[ns] == c {
			delete(p.conns, ns)
		}
		if q, ok := p.pending[ns]; ok && q.conn == c {
			delete(p.pending, ns)
		}
	}
}

func (p *routeProber) OnFrame(c node.ConnID, resp *codec.Command) {
	if !resp.IsResponse() {
		return
	}
	for _, ns := range p.nss {
		if q, ok := p.pending[ns]; ok && q.conn == c && q.opaque == resp.Opaque {
			delete(p.pending, ns)
			p.rc.onAnswer(ns, q.at, resp)
			return
		}
	}
}

var _ node.Handler = (*routeProber)(nil)

// replicaAddrs lists every replica of every group.
func (gr *groupsRun) replicaAddrs() []string {
	var out []string
	for _, g := range gr.groups {
		for _, n := range g.nodes {
			out = append(out, n.Addr)
		}
	}
	return out
}

// mayStrike reports whether node fault f may strike replica target: it names it, or every
// replica or the slaves of its group ("@master:G" is left out: a paused master is deposed, and
// the name then resolves to its successor).
func (r *run) mayStrike(f faults.Fault, target string) bool {
	for _, name := range append([]string{f.Node}, f.Nodes...) {
		if name == target {
			return true
		}
		kind, group, _ := strings.Cut(strings.TrimPrefix(name, "@"), ":")
		if strings.HasPrefix(name, "@") && (kind == "group" || kind == "slaves") && slices.Contains(r.resolveGroup(group), target) {
			return true
		}
	}
	return false
}

// resolveGroup lists the replicas of group name.
func (r *run) resolveGroup(name string) []string {
	for _, g := range r.gr.groups {
		if g.name == name {
			var out []string
			for _, n := range g.nodes {
				out = append(out, n.Addr)
			}
			return out
		}
	}
	return nil
}
