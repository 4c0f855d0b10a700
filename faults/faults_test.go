package faults

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim"
)

// The plans sim/cluster draws by default (Swarm over one target, then Plan) must stay exactly
// what they were before the opt-in kinds existed: a seed names the same run as before. The hash
// was taken with the three-kind package.
func TestDefaultPlansUnchanged(t *testing.T) {
	h := fnv.New64a()
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x5eedfa17))
		cfg := Swarm(r, []string{"127.0.0.1:10911"})
		b, err := EncodePlan(Plan(r, cfg, 120*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	if got := h.Sum64(); got != 0xaf0ad7251515b84f {
		t.Fatalf("default plans of seeds 1..200 hash to %016x, were af0ad7251515b84f", got)
	}
}

// SwarmWith without extras is Swarm; with extras, the default kinds keep Swarm's rates.
func TestSwarmWithStartsWithSwarmsDraws(t *testing.T) {
	targets := []string{"a:1", "b:1", "c:1"}
	for seed := uint64(1); seed <= 20; seed++ {
		r1 := rand.New(rand.NewPCG(seed, 1))
		r2 := rand.New(rand.NewPCG(seed, 1))
		r3 := rand.New(rand.NewPCG(seed, 1))
		base := Swarm(r1, targets)
		same := SwarmWith(r2, targets, SwarmOptions{})
		if !reflect.DeepEqual(base, same) || !reflect.DeepEqual(Plan(r1, base, time.Minute), Plan(r2, same, time.Minute)) {
			t.Fatalf("seed %d: SwarmWith without extras differs from Swarm", seed)
		}
		more := SwarmWith(r3, targets, SwarmOptions{Extra: ExtraKinds})
		for _, k := range DefaultKinds {
			if base.Rates[k] != more.Rates[k] {
				t.Fatalf("seed %d: %s rate %+v with extras, %+v without", seed, k, more.Rates[k], base.Rates[k])
			}
		}
	}
}

var testTargets = []string{"a:1", "b:1", "c:1", "d:1", "e:1"}

func extendedPlan(seed uint64) []Fault {
	r := rand.New(rand.NewPCG(seed, 2))
	cfg := SwarmWith(r, testTargets, SwarmOptions{Extra: ExtraKinds,
		Groups: [][]string{{"@leader", "a:1"}, {"d:1", "e:1"}}, FlipLog: "data"})
	return Plan(r, cfg, 2*time.Minute)
}

// Swarm-drawn extended plans: deterministic per seed, every kind drawn somewhere in a sweep,
// every fault well formed with its shape's promises kept, no overlap per kind and timeline,
// and the encoding round-trips.
func TestExtendedPlans(t *testing.T) {
	seen := map[Kind]int{}
	for seed := uint64(1); seed <= 40; seed++ {
		plan := extendedPlan(seed)
		if again := extendedPlan(seed); !reflect.DeepEqual(plan, again) {
			t.Fatalf("seed %d: two draws differ", seed)
		}
		ends := map[string]time.Duration{}
		for i, f := range plan {
			seen[f.Kind]++
			if err := f.validate(); err != nil {
				t.Fatalf("seed %d fault %d (%v): %v", seed, i, f, err)
			}
			if i > 0 && plan[i-1].At > f.At {
				t.Fatalf("seed %d: plan not sorted at %d", seed, i)
			}
			timeline := fmt.Sprint(f.Kind, f.Node, f.Nodes, f.Peers)
			if f.Kind == Split || f.Kind == Bridge {
				timeline = string(f.Kind)
			}
			if f.Kind == OneWay && f.Node == "" {
				timeline = fmt.Sprint(f.Kind, f.Peers)
			}
			if f.At < ends[timeline] {
				t.Fatalf("seed %d: %v overlaps the previous fault of its timeline (ends %v)", seed, f, ends[timeline])
			}
			ends[timeline] = f.At + f.Duration
			switch f.Kind {
			case Split:
				if len(f.Nodes) == 0 || len(f.Nodes) > len(testTargets)/2 || len(f.Peers) != 0 {
					t.Fatalf("seed %d: split %v is not a minority against the rest", seed, f)
				}
			case Bridge:
				if len(f.Nodes) == 0 || len(f.Peers) == 0 || len(f.Nodes)+len(f.Peers) != len(testTargets)-1 {
					t.Fatalf("seed %d: bridge %v does not leave exactly one bridge target", seed, f)
				}
			case ClockJump:
				if f.Duration < 2*f.Delta.Abs() {
					t.Fatalf("seed %d: %v slews faster than half speed", seed, f)
				}
			case BitFlip:
				if f.Duration != 0 || f.Log != "data" {
					t.Fatalf("seed %d: %v", seed, f)
				}
			}
		}
		b, err := EncodePlan(plan)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodePlan(b)
		if err != nil || !reflect.DeepEqual(back, plan) {
			t.Fatalf("seed %d: round trip: %v", seed, err)
		}
	}
	for _, k := range Kinds {
		if seen[k] == 0 {
			t.Errorf("kind %s never drawn in 40 seeds", k)
		}
	}
	t.Logf("drawn: %v", seen)
}

// A plan file written before the new kinds existed still decodes, and prints as it did.
func TestOldPlanDecodes(t *testing.T) {
	old := []byte(`[
  {"At": 1500000000, "Kind": "crash", "Node": "127.0.0.1:10911", "Duration": 300000000},
  {"At": 2000000000, "Kind": "partition", "Node": "127.0.0.1:10911", "Duration": 1000000000},
  {"At": 2500000000, "Kind": "reset", "Node": "127.0.0.1:10911", "Duration": 0}
]`)
	plan, err := DecodePlan(old)
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{{At: 1500 * time.Millisecond, Kind: Crash, Node: "127.0.0.1:10911", Duration: 300 * time.Millisecond},
		{At: 2 * time.Second, Kind: Partition, Node: "127.0.0.1:10911", Duration: time.Second},
		{At: 2500 * time.Millisecond, Kind: Reset, Node: "127.0.0.1:10911"}}
	if !reflect.DeepEqual(plan, want) {
		t.Fatalf("decoded %+v", plan)
	}
	if s := plan[1].String(); s != "2s partition 127.0.0.1:10911 for 1s" {
		t.Fatalf("old fault prints as %q", s)
	}
}

func TestDecodePlanRejects(t *testing.T) {
	cases := map[string]string{
		"not json":          `{`,
		"unknown kind":      `[{"Kind":"meteor","Node":"a"}]`,
		"negative time":     `[{"At":-1,"Kind":"crash","Node":"a"}]`,
		"huge duration":     `[{"Kind":"crash","Node":"a","Duration":9000000000000000000}]`,
		"node and nodes":    `[{"Kind":"crash","Node":"a","Nodes":["b"]}]`,
		"empty name":        `[{"Kind":"partition","Nodes":["a",""]}]`,
		"no side":           `[{"Kind":"partition","Node":""}]`,
		"node fault, peers": `[{"Kind":"pause","Node":"a","Peers":["b"]}]`,
		"node fault, none":  `[{"Kind":"crash","Node":""}]`,
		"delay, no delta":   `[{"Kind":"delay","Node":"a","Duration":5}]`,
		"slow, neg delta":   `[{"Kind":"slow-fsync","Node":"a","Delta":-5}]`,
		"skew, no delta":    `[{"Kind":"clock-skew","Node":"a","Duration":5}]`,
		"jump, no slew":     `[{"Kind":"clock-jump","Node":"a","Delta":5}]`,
		"crash with delta":  `[{"Kind":"crash","Node":"a","Delta":5}]`,
		"pick, not a flip":  `[{"Kind":"crash","Node":"a","Pick":3}]`,
		"log, not a flip":   `[{"Kind":"pause","Node":"a","Log":"x"}]`,
	}
	for name, in := range cases {
		if plan, err := DecodePlan([]byte(in)); err == nil {
			t.Errorf("%s: decoded %+v", name, plan)
		}
	}
	ok := `[{"Kind":"one-way","Node":"","Peers":["a"],"Duration":5},{"Kind":"bit-flip","Node":"a","Pick":7,"Log":"cl"},
		{"Kind":"clock-jump","Nodes":["@master:g"],"Delta":-5,"Duration":10},{"Kind":"split","Nodes":["a"],"Peers":[]}]`
	plan, err := DecodePlan([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if plan[3].Peers != nil {
		t.Fatal("an empty Peers list must decode as none, so plans round-trip")
	}
}

// FuzzDecodePlan: any input decodes or is refused without a panic; what decodes re-encodes to
// a plan that decodes to the same faults, and prints.
func FuzzDecodePlan(f *testing.F) {
	f.Add([]byte(`[{"At":1,"Kind":"crash","Node":"a","Duration":2}]`))
	f.Add([]byte(`[{"Kind":"bridge","Nodes":["a"],"Peers":["b"],"Duration":2},{"Kind":"delay","Peers":["x"],"Delta":3}]`))
	f.Add([]byte(`[{"Kind":"bit-flip","Node":"@m","Pick":18446744073709551615,"Log":"commitlog"}]`))
	f.Add([]byte(`[{"Kind":"clock-jump","Node":"a","Delta":-9223372036854775808,"Duration":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		plan, err := DecodePlan(b)
		if err != nil {
			return
		}
		for _, f := range plan {
			_ = f.String()
		}
		enc, err := EncodePlan(plan)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodePlan(enc)
		if err != nil || !reflect.DeepEqual(plan, again) {
			t.Fatalf("round trip of %q: %v\n%+v\n%+v", b, err, plan, again)
		}
	})
}

// pinger is a test node: every tick it pings every other node over a connection it dialed
// (redialling closed ones), appends an entry to its log "data" and syncs it, and notes how far
// its clock is from virtual time.
type pinger struct {
	w      *sim.World
	env    node.Env
	self   string
	peers  []string
	out    map[string]node.ConnID
	up     map[node.ConnID]bool
	log    node.Log
	recv   []ping
	synced []synced
	skew   []skew
}

type ping struct {
	at, sent time.Duration // virtual
	from, to string
}

type synced struct {
	asked, at time.Duration
	err       error
}

type skew struct{ at, offset time.Duration }

const tick = 50 * time.Millisecond

func (p *pinger) Start() {
	p.out, p.up = map[string]node.ConnID{}, map[node.ConnID]bool{}
	l, err := p.env.Disk().OpenLog("data")
	if err != nil {
		panic(err)
	}
	p.log = l
	p.env.SetTimer(tick, nil)
}
func (p *pinger) OnAccepted(node.ConnID, string) {}
func (p *pinger) OnDialed(c node.ConnID)         { p.up[c] = true }
func (p *pinger) OnConnClosed(c node.ConnID) {
	delete(p.up, c)
	for peer, id := range p.out {
		if id == c {
			delete(p.out, peer)
		}
	}
}
func (p *pinger) OnFrame(_ node.ConnID, cmd *codec.Command) {
	sent, _ := strconv.ParseInt(cmd.ExtFields["sent"], 10, 64)
	p.recv = append(p.recv, ping{at: p.w.Now(), sent: time.Duration(sent), from: cmd.ExtFields["from"], to: p.self})
}
func (p *pinger) OnTimer(node.TimerID, any) {
	p.skew = append(p.skew, skew{p.w.Now(), p.env.Now().Sub(sim.Epoch) - p.w.Now()})
	for _, peer := range p.peers {
		c, ok := p.out[peer]
		if !ok {
			p.out[peer] = p.env.Dial(peer)
			continue
		}
		if p.up[c] {
			p.env.Send(c, codec.NewRequest(10, map[string]string{"from": p.self, "sent": strconv.FormatInt(int64(p.w.Now()), 10)}, nil))
		}
	}
	if idx, err := p.log.Append([]byte(fmt.Sprintf("%s@%d", p.self, p.w.Now()))); err == nil {
		p.env.Sync(p.log, idx)
		p.synced = append(p.synced, synced{asked: p.w.Now(), at: -1})
	}
	p.env.SetTimer(tick, nil)
}
func (p *pinger) OnSynced(_ string, _ uint64, err error) {
	for i := range p.synced {
		if p.synced[i].at < 0 {
			p.synced[i].at, p.synced[i].err = p.w.Now(), err
			break
		}
	}
}

// mesh builds a world of pingers at testTargets with 1 ms latency and 1 ms fsyncs.
func mesh(seed uint64) (*sim.World, map[string]*pinger) {
	w := sim.NewWorld(seed, sim.NetConfig{MinLatency: time.Millisecond, MaxLatency: time.Millisecond},
		sim.DiskConfig{MinFsync: time.Millisecond, MaxFsync: time.Millisecond}, nil)
	ps := map[string]*pinger{}
	for _, a := range testTargets {
		p := &pinger{w: w, self: a, peers: slices.DeleteFunc(slices.Clone(testTargets), func(x string) bool { return x == a })}
		ps[a] = p
		w.AddNode(a, func(env node.Env) node.Handler { p.env = env; return p })
	}
	return w, ps
}

// pings counts the pings from one node to another received in [from, to).
func pings(ps map[string]*pinger, src, dst string, from, to time.Duration) int {
	n := 0
	for _, r := range ps[dst].recv {
		if r.from == src && r.at >= from && r.at < to {
			n++
		}
	}
	return n
}

// checkCut runs inj (a fault from 1s for 2s) and checks which directed links carried pings
// during it (cut(src, dst) says which must not), and that all did again by 6s..8s.
func checkCut(t *testing.T, in *Injector, ps map[string]*pinger, f Fault, cut func(src, dst string) bool) {
	t.Helper()
	if err := in.Schedule([]Fault{f}); err != nil {
		t.Fatal(err)
	}
	in.World.RunUntil(8 * time.Second)
	for _, src := range testTargets {
		for _, dst := range testTargets {
			if src == dst {
				continue
			}
			during := pings(ps, src, dst, 1100*time.Millisecond, 3*time.Second)
			if cut(src, dst) != (during == 0) {
				t.Errorf("%v: %s -> %s carried %d pings during the fault, cut=%v", f, src, dst, during, cut(src, dst))
			}
			if after := pings(ps, src, dst, 6*time.Second, 8*time.Second); after == 0 {
				t.Errorf("%v: %s -> %s carried nothing after the fault healed", f, src, dst)
			}
		}
	}
}

func in(s string, set ...string) bool { return slices.Contains(set, s) }

// A group partition with a symbolic member (resolved when it strikes) cuts the group off from
// the rest, both ways, and keeps each side whole.
func TestGroupPartitionWithSymbolicMember(t *testing.T) {
	w, ps := mesh(1)
	resolved := 0
	inj := &Injector{World: w, Resolve: func(name string) []string {
		if name != "@leader" {
			t.Fatalf("resolve %q", name)
		}
		resolved++
		return []string{"c:1"}
	}}
	group := []string{"a:1", "c:1"}
	checkCut(t, inj, ps, Fault{At: time.Second, Kind: GroupPartition, Nodes: []string{"@leader", "a:1"}, Duration: 2 * time.Second},
		func(s, d string) bool { return in(s, group...) != in(d, group...) })
	if resolved != 1 {
		t.Fatalf("resolved %d times, want once, when the fault struck", resolved)
	}
}

func TestSplitAndBridge(t *testing.T) {
	w, ps := mesh(1)
	checkCut(t, &Injector{World: w}, ps, Fault{At: time.Second, Kind: Split, Nodes: []string{"b:1", "d:1"}, Duration: 2 * time.Second},
		func(s, d string) bool { return in(s, "b:1", "d:1") != in(d, "b:1", "d:1") })

	w, ps = mesh(1)
	left, right := []string{"a:1", "b:1"}, []string{"d:1", "e:1"} // c:1 bridges
	checkCut(t, &Injector{World: w}, ps, Fault{At: time.Second, Kind: Bridge, Nodes: left, Peers: right, Duration: 2 * time.Second},
		func(s, d string) bool {
			return (in(s, left...) && in(d, right...)) || (in(s, right...) && in(d, left...))
		})
}

// A one-way loss silences one node's frames to the rest while it still hears them; an inbound
// one the reverse. Nothing is lost: pings stalled by a loss shorter than the retransmit
// timeout arrive when it ends.
func TestOneWay(t *testing.T) {
	w, ps := mesh(1)
	checkCut(t, &Injector{World: w}, ps, Fault{At: time.Second, Kind: OneWay, Node: "b:1", Duration: 2 * time.Second},
		func(s, d string) bool { return s == "b:1" })
	// Every ping b sent during the loss arrives (by the first retransmission after it, at
	// 4.05s): as many as c, unaffected, delivered for the same sending times.
	sentDuring := func(src string) (n int) {
		for _, d := range testTargets {
			for _, r := range ps[d].recv {
				if r.from == src && r.sent >= time.Second && r.sent < 3*time.Second {
					n++
				}
			}
		}
		return n
	}
	if b, c := sentDuring("b:1"), sentDuring("c:1"); b != c || b != 4*40 {
		t.Fatalf("pings sent during the loss and received: from b %d, from c %d; want 160 each (nothing lost)", b, c)
	}

	w, ps = mesh(1)
	checkCut(t, &Injector{World: w}, ps, Fault{At: time.Second, Kind: OneWay, Peers: []string{"b:1"}, Duration: 2 * time.Second},
		func(s, d string) bool { return d == "b:1" })
}

// A delay spike slows both directions between its sides by Delta, and only while it lasts.
func TestDelaySpike(t *testing.T) {
	w, ps := mesh(1)
	if err := (&Injector{World: w}).Schedule([]Fault{{At: time.Second, Kind: Delay, Node: "a:1", Delta: 300 * time.Millisecond, Duration: 2 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	w.RunUntil(5 * time.Second)
	for _, dst := range testTargets {
		for _, r := range ps[dst].recv {
			lat := r.at - r.sent
			inSpike := r.sent >= time.Second && r.sent < 3*time.Second
			touchesA := r.from == "a:1" || r.to == "a:1"
			switch {
			case inSpike && touchesA && lat < 301*time.Millisecond:
				t.Fatalf("%s -> %s sent at %v took %v during a 300ms spike", r.from, r.to, r.sent, lat)
			case !touchesA && lat != time.Millisecond:
				t.Fatalf("%s -> %s, not on a's links, took %v", r.from, r.to, lat)
			case touchesA && r.sent >= 3400*time.Millisecond && lat != time.Millisecond:
				t.Fatalf("%s -> %s sent at %v, after the spike, took %v", r.from, r.to, r.sent, lat)
			}
		}
	}
}

// A pause holds a node's timers and inbound frames, then delivers them; nothing is lost and
// its connections stay up.
func TestPauseKind(t *testing.T) {
	w, ps := mesh(1)
	if err := (&Injector{World: w}).Schedule([]Fault{{At: time.Second, Kind: Pause, Node: "c:1", Duration: time.Second}}); err != nil {
		t.Fatal(err)
	}
	w.RunUntil(4 * time.Second)
	for _, r := range ps["c:1"].recv {
		if r.at > time.Second+tick && r.at < 2*time.Second {
			t.Fatalf("paused c received a ping at %v", r.at)
		}
	}
	held := 0
	for _, r := range ps["c:1"].recv {
		if r.at == 2*time.Second {
			held++
		}
	}
	if held < 4*15 {
		t.Fatalf("%d pings delivered to c when its 1s pause ended, want about 4 peers x 20 ticks", held)
	}
	for _, s := range ps["c:1"].skew {
		if s.at > time.Second && s.at < 2*time.Second {
			t.Fatalf("paused c ran a timer at %v", s.at)
		}
	}
	if n := w.Node("c:1"); n.Pauses != 1 || n.Crashes != 0 {
		t.Fatalf("c: %d pauses, %d crashes", n.Pauses, n.Crashes)
	}
}

// Disk kinds: writes fail with EIO or ENOSPC and syncs with EIO while they last; a slow fsync
// delays completions by Delta; each heals by itself.
func TestDiskKinds(t *testing.T) {
	w, ps := mesh(1)
	plan := []Fault{
		{At: time.Second, Kind: DiskWriteEIO, Node: "a:1", Duration: 500 * time.Millisecond},
		{At: time.Second, Kind: DiskFull, Node: "b:1", Duration: 500 * time.Millisecond},
		{At: time.Second, Kind: DiskSyncEIO, Node: "c:1", Duration: 500 * time.Millisecond},
		{At: time.Second, Kind: SlowFsync, Node: "d:1", Delta: 40 * time.Millisecond, Duration: 500 * time.Millisecond},
	}
	if err := (&Injector{World: w}).Schedule(plan); err != nil {
		t.Fatal(err)
	}
	var during, after []error
	w.At(1200*time.Millisecond, func() {
		for _, a := range []string{"a:1", "b:1"} {
			during = append(during, w.Node(a).Disk.WriteFile("meta", nil))
		}
	})
	w.At(2*time.Second, func() {
		for _, a := range []string{"a:1", "b:1"} {
			after = append(after, w.Node(a).Disk.WriteFile("meta", nil))
		}
	})
	w.RunUntil(3 * time.Second)
	if !errors.Is(during[0], node.ErrIO) || !errors.Is(during[1], node.ErrNoSpace) || after[0] != nil || after[1] != nil {
		t.Fatalf("write faults: during %v, after %v", during, after)
	}
	for _, s := range ps["c:1"].synced {
		failed := s.err != nil
		if inFault := s.at >= time.Second && s.at < 1500*time.Millisecond; failed != inFault || (failed && !errors.Is(s.err, node.ErrIO)) {
			t.Fatalf("c's sync completing at %v: %v", s.at, s.err)
		}
	}
	for _, s := range ps["d:1"].synced {
		if s.at < 0 { // still pending when the run stopped
			continue
		}
		want := time.Millisecond
		if s.asked >= time.Second && s.asked < 1500*time.Millisecond {
			want += 40 * time.Millisecond
		}
		if s.err != nil || s.at-s.asked != want {
			t.Fatalf("d's sync asked at %v completed after %v (%v), want %v", s.asked, s.at-s.asked, s.err, want)
		}
	}
	// a and b could not append during their faults: their logs are missing those ticks.
	for _, a := range []string{"a:1", "b:1"} {
		for _, s := range ps[a].synced {
			if s.asked > time.Second && s.asked < 1500*time.Millisecond {
				t.Fatalf("%s appended at %v during a write fault", a, s.asked)
			}
		}
	}
}

// A bit flip corrupts exactly one stored entry, the one Pick names: reads report it corrupt,
// never its data; the same Pick always names the same entry.
func TestBitFlip(t *testing.T) {
	corrupted := func(pick uint64) []string {
		w, _ := mesh(1)
		var heard []string
		onFlip := func(addr, log string, index uint64) {
			// Called before the flip: the entry still reads whole.
			if _, err := w.Node(addr).Disk.Peek(log, index); err != nil {
				t.Fatalf("OnFlip(%s, %s, %d): the entry is already unreadable: %v", addr, log, index, err)
			}
			heard = append(heard, fmt.Sprint(index))
		}
		if err := (&Injector{World: w, OnFlip: onFlip}).Schedule([]Fault{{At: time.Second, Kind: BitFlip, Node: "e:1", Pick: pick, Log: "da"}}); err != nil {
			t.Fatal(err)
		}
		w.RunUntil(time.Second + time.Millisecond)
		n := w.Node("e:1")
		n.Crash() // release the log handle, so the check can open it
		var bad []string
		l, err := n.Disk.OpenLog("data")
		if err != nil {
			t.Fatal(err)
		}
		for i := l.FirstIndex(); i <= l.LastIndex(); i++ {
			b, err := l.Read(i)
			if errors.Is(err, node.ErrCorrupt) && b == nil {
				bad = append(bad, fmt.Sprint(i))
			} else if err != nil || !bytes.HasPrefix(b, []byte("e:1@")) {
				t.Fatalf("entry %d: %q %v", i, b, err)
			}
		}
		if st := n.Disk.Stats(); st.Flips != 1 {
			t.Fatalf("%d flips", st.Flips)
		}
		if !slices.Equal(heard, bad) {
			t.Fatalf("OnFlip heard of %v, the flip corrupted %v", heard, bad)
		}
		return bad
	}
	// e appended an entry per tick before 1s (the flip, scheduled first, runs before the
	// tick at 1s): 19 entries; pick 25 is entry 25 mod 19 + 1 = 7.
	if got := corrupted(25); !slices.Equal(got, []string{"7"}) {
		t.Fatalf("pick 25 corrupted entries %v, want [7]", got)
	}
	if a, b := corrupted(1<<40+3), corrupted(1<<40+3); !slices.Equal(a, b) || len(a) != 1 {
		t.Fatalf("the same pick corrupted %v then %v", a, b)
	}
}

// Clock kinds move only what a node reads from Now: a skew by Delta while it lasts; a jump by
// Delta, slewed back over Duration. Timers keep firing on virtual time.
func TestClockKinds(t *testing.T) {
	w, ps := mesh(1)
	plan := []Fault{
		{At: time.Second, Kind: ClockSkew, Node: "a:1", Delta: -time.Hour, Duration: time.Second},
		{At: time.Second, Kind: ClockJump, Node: "b:1", Delta: 2 * time.Second, Duration: 4 * time.Second},
	}
	if err := (&Injector{World: w}).Schedule(plan); err != nil {
		t.Fatal(err)
	}
	w.RunUntil(6 * time.Second)
	for _, s := range ps["a:1"].skew {
		want := time.Duration(0)
		if s.at >= time.Second && s.at < 2*time.Second {
			want = -time.Hour
		}
		if s.offset != want {
			t.Fatalf("a's clock at %v is off by %v, want %v", s.at, s.offset, want)
		}
	}
	for _, s := range ps["b:1"].skew {
		want := time.Duration(0)
		if s.at >= time.Second && s.at < 5*time.Second {
			want = 2*time.Second - (s.at-time.Second)/2
		}
		if s.offset != want {
			t.Fatalf("b's clock at %v is off by %v, want %v", s.at, s.offset, want)
		}
	}
	if len(ps["a:1"].skew) != len(ps["c:1"].skew) {
		t.Fatalf("a skewed clock changed how often timers fire: %d ticks, c %d", len(ps["a:1"].skew), len(ps["c:1"].skew))
	}
}

// Check refuses plans naming nodes the world lacks, or symbolic ones without a resolver.
func TestInjectorCheck(t *testing.T) {
	w, _ := mesh(1)
	if err := (&Injector{World: w}).Schedule([]Fault{{Kind: Crash, Node: "zz:1"}}); err == nil {
		t.Fatal("scheduled a fault on a missing node")
	}
	if err := (&Injector{World: w}).Schedule([]Fault{{Kind: Partition, Peers: []string{"@m"}}}); err == nil {
		t.Fatal("scheduled a symbolic fault without a resolver")
	}
	// A symbolic name resolving to nobody makes the fault a no-op rather than "everyone".
	w, ps := mesh(1)
	inj := &Injector{World: w, Resolve: func(string) []string { return nil }}
	checkCut(t, inj, ps, Fault{At: time.Second, Kind: Partition, Node: "@m", Duration: 2 * time.Second},
		func(string, string) bool { return false })
}

// Every kind at once, swarm-drawn over the mesh: the same seed gives the same plan and the
// same trace; the run heals (every link carries pings again at the end).
func TestSwarmRunReplays(t *testing.T) {
	run := func(seed uint64) (uint64, map[Kind]int, map[string]*pinger) {
		w, ps := mesh(seed)
		r := rand.New(rand.NewPCG(seed, 3))
		cfg := SwarmWith(r, testTargets, SwarmOptions{Extra: ExtraKinds, Groups: [][]string{{"a:1", "b:1"}}})
		for k, rate := range cfg.Rates { // dense: many faults in a short run
			rate.MeanInterval /= 4
			cfg.Rates[k] = rate
		}
		plan := Plan(r, cfg, 20*time.Second)
		inj := &Injector{World: w}
		if err := inj.Schedule(plan); err != nil {
			t.Fatal(err)
		}
		w.RunUntil(20 * time.Second)
		w.HealAll()
		for _, a := range w.Addrs() {
			w.Node(a).Restart()
		}
		w.RunFor(10 * time.Second)
		return w.TraceHash(), Count(plan), ps
	}
	for _, seed := range []uint64{1, 2, 3} {
		h1, c1, ps := run(seed)
		h2, _, _ := run(seed)
		if h1 != h2 {
			t.Fatalf("seed %d twice: traces %016x and %016x", seed, h1, h2)
		}
		for _, src := range testTargets {
			for _, dst := range testTargets {
				if src != dst && pings(ps, src, dst, 27*time.Second, 30*time.Second) == 0 {
					t.Fatalf("seed %d (%v): %s -> %s silent after healing", seed, c1, src, dst)
				}
			}
		}
		t.Logf("seed %d: %v trace %016x", seed, c1, h1)
	}
}
