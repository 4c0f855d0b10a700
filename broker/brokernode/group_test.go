package brokernode

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

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

func seedRaft(t *testing.T, seed uint64) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	old := crand.Reader
	crand.Reader = rand.NewChaCha8(key)
	t.Cleanup(func() { crand.Reader = old })
}

func newGroupWorld(t *testing.T, seed uint64, n int, tune func(*Config)) *groupWorld {
	seedRaft(t, seed)
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
		if b := gw.broker(id); b != nil && b.grp.role == roleMaster && b.leaseValid() {
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
		if cond() {
			return
		}
	}
	gw.t.Fatalf("after %v: %s did not happen", limit, what)
}

func (gw *groupWorld) inSync(id int) []int64 {
	b := gw.broker(id)
	if b == nil || b.grp.inSync == nil {
		return nil
	}
	set, _ := b.grp.inSync.Confirmed()
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

// A group of three in sync replication: a master is elected and gathers both slaves in its
// in-sync set; sends are acknowledged. The master is cut off from the group (not from its
// client) while sends arrive: it acknowledges none of them and stops taking writes when its
// lease lapses; a slave takes over and acknowledges new sends. When the partition heals the
// old master follows the new one, truncates its unacknowledged tail, and all three replicas
// end with the same log holding every acknowledged message and none of the unacknowledged.
func TestGroupFailoverKeepsAcknowledged(t *testing.T) {
	gw := newGroupWorld(t, 1, 3, nil)
	gw.runUntil(20*time.Second, "a master with all three in sync", func() bool {
		m := gw.master()
		return m != 0 && len(gw.inSync(m)) == 3
	})
	first := gw.master()
	var acked []string
	var ops []int32
	for i := 0; i < 30; i++ {
		acked = append(acked, "a"+strconv.Itoa(i))
		ops = append(ops, gw.send(first, acked[i]))
	}
	gw.w.RunFor(time.Second)
	for i, op := range ops {
		if r := gw.cli.got[op]; r == nil || r.Code != codec.Success {
			t.Fatalf("send %d to master %d: %+v", i, first, r)
		}
	}

	gw.isolate(gw.addrs[first-1], true)
	var lostOps []int32
	for i := 0; i < 10; i++ {
		lostOps = append(lostOps, gw.send(first, "lost"+strconv.Itoa(i)))
	}
	gw.runUntil(20*time.Second, "a new master", func() bool { m := gw.master(); return m != 0 && m != first })
	second := gw.master()
	if b := gw.broker(first); b.writable() {
		t.Fatalf("the cut-off master %d still accepts writes", first)
	}
	for i, op := range lostOps {
		if r := gw.cli.got[op]; r != nil && r.Code == codec.Success {
			t.Fatalf("the cut-off master acknowledged send %d", i)
		}
	}
	if got := gw.bodies(first); len(got) < 40 {
		t.Fatalf("the cut-off master holds %d entries, want its 10 unacknowledged ones too", len(got))
	}
	refused := gw.send(first, "refused")
	gw.w.RunFor(100 * time.Millisecond)
	if r := gw.cli.got[refused]; r == nil || r.Code != codec.ServiceNotAvailable {
		t.Fatalf("a send to the lapsed master: %+v, want SERVICE_NOT_AVAILABLE", r)
	}
	gw.runUntil(20*time.Second, "the remaining slave in sync with the new master", func() bool { return len(gw.inSync(second)) == 2 })
	ops = ops[:0]
	start := len(acked)
	for i := 0; i < 20; i++ {
		acked = append(acked, "b"+strconv.Itoa(i))
		ops = append(ops, gw.send(second, acked[start+i]))
	}
	gw.w.RunFor(time.Second)
	for i, op := range ops {
		if r := gw.cli.got[op]; r == nil || r.Code != codec.Success {
			t.Fatalf("send %d to the new master %d: %+v", i, second, r)
		}
	}

	gw.isolate(gw.addrs[first-1], false)
	gw.runUntil(20*time.Second, "the old master back in the in-sync set", func() bool { return len(gw.inSync(second)) == 3 })
	want := gw.bodies(second)
	for _, a := range acked {
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
			if len(body) > 4 && body[:4] == "lost" {
				t.Errorf("replica %d kept the unacknowledged %q", id, body)
			}
		}
	}
}

// groupTestLogger receives the simulated nodes' logs (nil: discarded).
var groupTestLogger *slog.Logger
