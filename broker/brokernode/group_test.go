package brokernode

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/controller"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim"
)

// groupWorld is a simulated controller, a broker group of replicas 1..n and a hand-driven
// client (wire), for story tests of replication.
type groupWorld struct {
	t       *testing.T
	w       *sim.World
	ctlAddr string
	addrs   []string // addrs[i] is replica i+1
	cli     *wire
}

const groupClientAddr = "127.0.0.50:1"

func newGroupWorld(t *testing.T, seed uint64, n int, tune func(*Config)) *groupWorld {
	gw := &groupWorld{t: t, ctlAddr: "127.0.0.40:9878"}
	gw.w = sim.NewWorld(seed, sim.NetConfig{MinLatency: 200 * time.Microsecond, MaxLatency: 2 * time.Millisecond},
		sim.DiskConfig{MinFsync: 200 * time.Microsecond, MaxFsync: 3 * time.Millisecond}, groupTestLogger)
	gw.w.AddNode(gw.ctlAddr, func(env node.Env) node.Handler {
		c, err := controller.New(env, controller.DefaultConfig(1, map[uint64]string{1: gw.ctlAddr}))
		if err != nil {
			panic(err)
		}
		return c
	})
	for i := 1; i <= n; i++ {
		addr := fmt.Sprintf("127.0.0.%d:10911", 10+i)
		gw.addrs = append(gw.addrs, addr)
		cfg := testConfig()
		cfg.NameServers = nil
		cfg.BrokerName = "g"
		cfg.BrokerID = int64(i)
		cfg.Addr = addr
		cfg.Controllers = []string{gw.ctlAddr}
		cfg.MinInSync = 2
		if tune != nil {
			tune(&cfg)
		}
		gw.w.AddNode(addr, func(env node.Env) node.Handler {
			b, err := New(env, cfg)
			if err != nil {
				panic(fmt.Sprintf("replica %d: %v", i, err))
			}
			return b
		})
	}
	gw.cli = newWire(nil)
	gw.w.AddNode(groupClientAddr, func(env node.Env) node.Handler { gw.cli.env = env; return gw.cli })
	return gw
}

// broker returns replica id's broker (nil while it is down).
func (gw *groupWorld) broker(id int) *Broker {
	h := gw.w.Node(gw.addrs[id-1]).Handler()
	if h == nil {
		return nil
	}
	return h.(*Broker)
}

// master returns the id of the one replica that is master with a valid lease, 0 if none; it
// fails the test if two are.
func (gw *groupWorld) master() int {
	found := 0
	for id := 1; id <= len(gw.addrs); id++ {
		if b := gw.broker(id); b != nil && b.master() != nil && b.master().leaseValid(b) {
			if found != 0 {
				gw.t.Fatalf("replicas %d and %d are both master with a valid lease", found, id)
			}
			found = id
		}
	}
	return found
}

// runUntil runs the world in 100 ms steps until cond holds, failing after limit.
func (gw *groupWorld) runUntil(limit time.Duration, what string, cond func() bool) {
	gw.t.Helper()
	for end := gw.w.Now() + limit; gw.w.Now() < end; {
		gw.w.RunFor(100 * time.Millisecond)
		gw.master() // checks that there is at most one
		for id := range gw.addrs {
			if b := gw.broker(id + 1); b != nil {
				if err := b.CheckInvariants(); err != nil {
					gw.t.Fatalf("invariant broken: %v", err)
				}
			}
		}
		if cond() {
			return
		}
	}
	gw.t.Fatalf("after %v: %s did not happen", limit, what)
}

func (gw *groupWorld) inSync(id int) []int64 {
	b := gw.broker(id)
	if b == nil || b.master() == nil {
		return nil
	}
	set, _ := b.master().inSync.Confirmed()
	return set
}

// send sends one message with body to replica id's queue 0 of topic T.
func (gw *groupWorld) send(id int, body string) int32 {
	return gw.cli.call(gw.addrs[id-1], codec.ReqSendMessage, sendExt("T", "0", nil), []byte(body))
}

// bodies lists the bodies of replica id's commit log, in order.
func (gw *groupWorld) bodies(id int) []string {
	gw.t.Helper()
	b := gw.broker(id)
	recs, err := b.store.ReadRecords(1, b.store.CommitLog().LastIndex(), 1<<30)
	if err != nil {
		gw.t.Fatal(err)
	}
	var out []string
	for _, rec := range recs {
		m, _, err := codec.DecodeRecord(rec)
		if err != nil {
			gw.t.Fatal(err)
		}
		out = append(out, string(m.Body))
	}
	return out
}

func (gw *groupWorld) isolate(addr string, block bool) {
	for _, other := range append(slices.Clone(gw.addrs), gw.ctlAddr) {
		if other == addr {
			continue
		}
		if block {
			gw.w.Block(addr, other)
			gw.w.Block(other, addr)
		} else {
			gw.w.Unblock(addr, other)
			gw.w.Unblock(other, addr)
		}
	}
}

// isolationStory is what happened in runIsolationStory.
type isolationStory struct {
	gw            *groupWorld
	first, second int      // the masters before and after the partition
	acked         []string // bodies acknowledged by a master with its lease
	lostAcked     []string // bodies the cut-off master acknowledged (none, without planted bugs)
}

// runIsolationStory: a group of three in sync replication elects a master, which gathers both
// slaves in its in-sync set and acknowledges sends. The master is cut off from the group (not
// from its client) while ten sends arrive; it stops taking writes once its lease lapses, and a
// slave takes over and acknowledges new sends. Then the partition heals and the story runs
// until the old master is back in the new master's in-sync set (or 20 s pass).
func runIsolationStory(t *testing.T, tune func(*Config)) *isolationStory {
	gw := newGroupWorld(t, 1, 3, tune)
	st := &isolationStory{gw: gw}
	gw.runUntil(20*time.Second, "a master with all three in sync", func() bool {
		m := gw.master()
		return m != 0 && len(gw.inSync(m)) == 3
	})
	st.first = gw.master()
	var ops []int32
	for i := 0; i < 30; i++ {
		st.acked = append(st.acked, "a"+strconv.Itoa(i))
		ops = append(ops, gw.send(st.first, st.acked[i]))
	}
	gw.w.RunFor(time.Second)
	for i, op := range ops {
		if r := gw.cli.got[op]; r == nil || r.Code != codec.Success {
			t.Fatalf("send %d to master %d: %+v", i, st.first, r)
		}
	}

	gw.isolate(gw.addrs[st.first-1], true)
	var lostOps []int32
	for i := 0; i < 10; i++ {
		lostOps = append(lostOps, gw.send(st.first, "lost"+strconv.Itoa(i)))
	}
	gw.runUntil(20*time.Second, "a new master", func() bool {
		for id := 1; id <= 3; id++ {
			if b := gw.broker(id); id != st.first && b.master() != nil && b.master().leaseValid(b) {
				return true
			}
		}
		return false
	})
	for id := 1; id <= 3; id++ {
		if b := gw.broker(id); id != st.first && b.master() != nil {
			st.second = id
		}
	}
	for i, op := range lostOps {
		if r := gw.cli.got[op]; r != nil && r.Code == codec.Success {
			st.lostAcked = append(st.lostAcked, "lost"+strconv.Itoa(i))
		}
	}
	if got := gw.bodies(st.first); len(got) < 40 {
		t.Fatalf("the cut-off master holds %d entries, want its 10 unacknowledged ones too", len(got))
	}
	gw.runUntil(20*time.Second, "the remaining slave in sync with the new master", func() bool { return len(gw.inSync(st.second)) == 2 })
	ops = ops[:0]
	start := len(st.acked)
	for i := 0; i < 20; i++ {
		st.acked = append(st.acked, "b"+strconv.Itoa(i))
		ops = append(ops, gw.send(st.second, st.acked[start+i]))
	}
	gw.w.RunFor(time.Second)
	for i, op := range ops {
		if r := gw.cli.got[op]; r == nil || r.Code != codec.Success {
			t.Fatalf("send %d to the new master %d: %+v", i, st.second, r)
		}
	}

	gw.isolate(gw.addrs[st.first-1], false)
	for end := gw.w.Now() + 20*time.Second; gw.w.Now() < end && len(gw.inSync(st.second)) < 3; {
		gw.w.RunFor(100 * time.Millisecond)
	}
	return st
}

// The story without planted bugs: the cut-off master acknowledges none of the sends that came
// after the cut, and refuses writes once its lease lapsed; after the heal it follows the new
// master, truncates its unacknowledged tail and rejoins the in-sync set, and all three
// replicas end with the same log, holding every acknowledged message and none of the others.
func TestGroupFailoverKeepsAcknowledged(t *testing.T) {
	st := runIsolationStory(t, nil)
	gw := st.gw
	if len(st.lostAcked) > 0 {
		t.Fatalf("the cut-off master acknowledged %v", st.lostAcked)
	}
	if len(gw.inSync(st.second)) != 3 {
		t.Fatalf("in-sync set %v after the heal, want all three", gw.inSync(st.second))
	}
	want := gw.bodies(st.second)
	for _, a := range st.acked {
		if !slices.Contains(want, a) {
			t.Errorf("acknowledged %q is not on the new master", a)
		}
	}
	for id := 1; id <= 3; id++ {
		got := gw.bodies(id)
		if !slices.Equal(got, want) {
			t.Errorf("replica %d holds %v,\nthe master %v", id, got, want)
		}
		for _, body := range got {
			if strings.HasPrefix(body, "lost") {
				t.Errorf("replica %d kept the unacknowledged %q", id, body)
			}
		}
	}
	refused := gw.send(st.first, "refused")
	gw.w.RunFor(100 * time.Millisecond)
	if r := gw.cli.got[refused]; r == nil || r.Code != codec.ServiceNotAvailable {
		t.Fatalf("a send to the old master, now a slave: %+v, want SERVICE_NOT_AVAILABLE", r)
	}
}

// The planted bug bugs.StaleMasterAcks: the cut-off master acknowledges the sends that came
// after the cut once its lease lapses, and the failover loses them.
func TestPlantedStaleMasterAcksLosesAcknowledged(t *testing.T) {
	st := runIsolationStory(t, func(c *Config) { c.Bugs = c.Bugs.With(bugs.StaleMasterAcks) })
	if len(st.lostAcked) == 0 {
		t.Fatal("the cut-off master acknowledged nothing")
	}
	kept := st.gw.bodies(st.second)
	for _, body := range st.lostAcked {
		if slices.Contains(kept, body) {
			t.Errorf("acknowledged %q survived the failover", body)
		}
	}
}

// The planted bug bugs.SkipTruncation: the old master keeps its unacknowledged tail when it
// rejoins, so its log differs from the new master's.
func TestPlantedSkipTruncationKeepsDivergentTail(t *testing.T) {
	st := runIsolationStory(t, func(c *Config) { c.Bugs = c.Bugs.With(bugs.SkipTruncation) })
	got, want := st.gw.bodies(st.first), st.gw.bodies(st.second)
	if !slices.ContainsFunc(got, func(b string) bool { return strings.HasPrefix(b, "lost") }) {
		t.Fatalf("the old master dropped its unacknowledged tail: %v", got)
	}
	if slices.Equal(got, want) {
		t.Fatal("the old master's log equals the new master's")
	}
}

// groupTestLogger receives the simulated nodes' logs (nil: discarded).
var groupTestLogger *slog.Logger
