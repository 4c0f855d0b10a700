package controller

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim"
)

// fakeBroker is a simulated broker replica as the controller sees one: it heartbeats every
// 500 ms to the member it believes leads (following redirects, moving on when a connection
// closes or an answer is late) and, while it is master, adds every replica the leader sees alive
// to the in-sync set (a real master would wait until they caught up), once per heartbeat.
type fakeBroker struct {
	env         node.Env
	id          int64
	controllers []string

	target     string
	conn       node.ConnID
	opaque     int32
	sentAt     map[int32]sentReq
	failedAt   map[string]time.Time // when a connection to a member last failed
	view       GroupInfo
	lastAnswer time.Time
}

type sentReq struct {
	at   time.Time
	code int16
}

type beatTimer struct{}

func (b *fakeBroker) Start()                         { b.env.SetTimer(0, beatTimer{}) }
func (b *fakeBroker) OnAccepted(node.ConnID, string) {}
func (b *fakeBroker) OnDialed(node.ConnID)           {}
func (b *fakeBroker) OnSynced(string, uint64, error) {}

func (b *fakeBroker) OnConnClosed(c node.ConnID) {
	if c == b.conn {
		b.conn = 0
		b.failedAt[b.target] = b.env.Now()
		b.moveOn("")
	}
}

// moveOn picks the next member to talk to: the named leader (unless it just failed), or the
// next one in the list.
func (b *fakeBroker) moveOn(leader string) {
	if b.conn != 0 {
		b.env.Close(b.conn)
		b.conn = 0
	}
	if at, failed := b.failedAt[leader]; leader != "" && (!failed || b.env.Now().Sub(at) > 3*time.Second) {
		b.target = leader
		return
	}
	i := slices.Index(b.controllers, b.target)
	b.target = b.controllers[(i+1)%len(b.controllers)]
}

func (b *fakeBroker) send(code int16, ext map[string]string, body []byte) {
	if b.conn == 0 {
		b.conn = b.env.Dial(b.target)
	}
	b.opaque++
	req := codec.NewRequest(code, ext, body)
	req.Opaque = b.opaque
	b.sentAt[b.opaque] = sentReq{b.env.Now(), code}
	b.env.Send(b.conn, req)
}

func (b *fakeBroker) OnTimer(_ node.TimerID, _ any) {
	b.env.SetTimer(500*time.Millisecond, beatTimer{})
	for _, op := range slices.Sorted(mapsKeys(b.sentAt)) {
		if b.env.Now().Sub(b.sentAt[op].at) > 2*time.Second {
			clear(b.sentAt)
			b.failedAt[b.target] = b.env.Now()
			b.moveOn("")
			break
		}
	}
	b.send(codec.ReqControllerBrokerHeartbeat, map[string]string{"clusterName": cluster, "brokerName": group,
		"brokerId": strconv.FormatInt(b.id, 10), "brokerAddr": brokerAddr(b.id),
		"masterEpoch": strconv.FormatInt(b.view.MasterEpoch, 10)}, nil)
}

func (b *fakeBroker) OnFrame(c node.ConnID, resp *codec.Command) {
	if !resp.IsResponse() || c != b.conn {
		return
	}
	sent, ok := b.sentAt[resp.Opaque]
	if !ok {
		return // an answer that came too late
	}
	delete(b.sentAt, resp.Opaque)
	switch resp.Code {
	case codec.ControllerNotLeader:
		b.moveOn(resp.Ext("leaderAddr"))
		return
	case codec.Success:
	default:
		if len(resp.Body) == 0 {
			return
		}
	}
	var g GroupInfo
	if err := json.Unmarshal(resp.Body, &g); err != nil {
		panic(fmt.Sprintf("broker %d: undecodable group in answer %d: %v", b.id, resp.Code, err))
	}
	if g.MasterEpoch < b.view.MasterEpoch {
		// A deposed leader that has not noticed yet may answer from an older state: a
		// broker never moves its epoch backwards.
		return
	}
	b.view, b.lastAnswer = g, b.env.Now()
	var ids []int64
	for _, r := range g.Replicas {
		if r.Alive {
			ids = append(ids, r.ID)
		}
	}
	if sent.code == codec.ReqControllerBrokerHeartbeat && g.MasterID == b.id && len(ids) > len(g.InSync) {
		body, _ := json.Marshal(AlterInSyncBody{InSync: ids, InSyncEpoch: g.InSyncEpoch})
		b.send(codec.ReqControllerAlterInSyncSet, map[string]string{"clusterName": cluster, "brokerName": group,
			"masterBrokerId": strconv.FormatInt(b.id, 10), "masterEpoch": strconv.FormatInt(g.MasterEpoch, 10)}, body)
	}
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var controllerAddrs = []string{"10.0.0.1:9878", "10.0.0.2:9878", "10.0.0.3:9878"}

// failoverRun is one simulated run: 3 controller members and 3 broker replicas. It checks
// each step and returns the trace hash.
func failoverRun(t *testing.T, seed uint64) uint64 {
	var logger *slog.Logger
	if os.Getenv("SLUICE_SIM_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := sim.NewWorld(seed, sim.NetConfig{MinLatency: 200 * time.Microsecond, MaxLatency: 2 * time.Millisecond},
		sim.DiskConfig{MinFsync: 100 * time.Microsecond, MaxFsync: 3 * time.Millisecond}, logger)
	peers := map[uint64]string{}
	for i, addr := range controllerAddrs {
		peers[uint64(i+1)] = addr
	}
	for i, addr := range controllerAddrs {
		w.AddNode(addr, func(env node.Env) node.Handler {
			c, err := New(env, DefaultConfig(uint64(i+1), peers))
			if err != nil {
				panic(fmt.Sprintf("controller %d: %v", i+1, err))
			}
			return c
		})
	}
	brokers := map[int64]*fakeBroker{}
	for id := int64(1); id <= 3; id++ {
		w.AddNode(brokerAddr(id), func(env node.Env) node.Handler {
			b := &fakeBroker{env: env, id: id, controllers: controllerAddrs, target: controllerAddrs[int(id)%3], sentAt: map[int32]sentReq{}, failedAt: map[string]time.Time{}}
			brokers[id] = b
			return b
		})
	}
	member := func(addr string) *Controller {
		if h := w.Node(addr).Handler(); h != nil {
			return h.(*Controller)
		}
		return nil
	}
	leaders := func(among []string) []string {
		var out []string
		for _, addr := range among {
			if c := member(addr); c != nil && c.IsLeader() {
				out = append(out, addr)
			}
		}
		return out
	}
	groupAt := func(addr string) GroupInfo {
		c := member(addr)
		g := c.State().Group(GroupKey{cluster, group})
		if g == nil {
			t.Fatalf("seed %d: member %s has no group", seed, addr)
		}
		info := c.groupInfo(g)
		for i := range info.Replicas {
			info.Replicas[i].Alive = false
		}
		return info
	}

	// Start-up: a leader, a master, everyone in sync.
	w.RunFor(5 * time.Second)
	ls := leaders(controllerAddrs)
	if len(ls) != 1 {
		t.Fatalf("seed %d: after start-up the leaders are %v, want one", seed, ls)
	}
	oldLeader := ls[0]
	before := groupAt(oldLeader)
	if before.MasterID == 0 || before.MasterEpoch != 1 || len(before.InSync) != 3 {
		t.Fatalf("seed %d: after start-up the group is %+v", seed, before)
	}

	// Partition the leader from everyone.
	for _, addr := range w.Addrs() {
		if addr != oldLeader {
			w.Block(oldLeader, addr)
			w.Block(addr, oldLeader)
		}
	}
	// Split votes can delay the new leader by seconds, and a broker that was talking to the
	// old leader needs a failed dial (3 s across a partition) to move on.
	w.RunFor(10 * time.Second)
	others := slices.DeleteFunc(slices.Clone(controllerAddrs), func(a string) bool { return a == oldLeader })
	ls = leaders(others)
	if len(ls) != 1 || member(oldLeader).IsLeader() {
		t.Fatalf("seed %d: with %s partitioned the leaders are %v (old leader still leads: %v)", seed, oldLeader, ls, member(oldLeader).IsLeader())
	}
	newLeader := ls[0]
	if after := groupAt(newLeader); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("seed %d: the new leader's group %+v differs from the old one's %+v", seed, after, before)
	}
	for id, b := range brokers {
		if b.view.MasterID != before.MasterID || b.view.MasterEpoch != 1 || w.Now()-b.lastAnswer.Sub(sim.Epoch) > time.Second {
			t.Fatalf("seed %d: broker %d sees %+v, last answer at %v (now %v; new leader %s since %v; broker targets %s)", seed, id, b.view,
				b.lastAnswer.Sub(sim.Epoch), w.Now(), newLeader, member(newLeader).leaderSince.Sub(sim.Epoch), b.target)
		}
	}

	// The master dies: an in-sync slave takes over under epoch 2.
	oldMaster := before.MasterID
	w.Node(brokerAddr(oldMaster)).Crash()
	w.RunFor(8 * time.Second)
	g := groupAt(newLeader)
	if g.MasterID == 0 || g.MasterID == oldMaster || g.MasterEpoch != 2 {
		t.Fatalf("seed %d: after master %d died the group is %+v", seed, oldMaster, g)
	}

	// Heal: every member converges on the same state; one leader.
	w.HealAll()
	w.RunFor(5 * time.Second)
	if ls := leaders(controllerAddrs); len(ls) != 1 {
		t.Fatalf("seed %d: after healing the leaders are %v", seed, ls)
	}
	for _, addr := range controllerAddrs {
		if got := groupAt(addr); fmt.Sprint(got) != fmt.Sprint(groupAt(newLeader)) {
			t.Fatalf("seed %d: member %s holds %+v, the leader %+v", seed, addr, got, groupAt(newLeader))
		}
	}

	// The leader crashes (losing what it had not synced) and restarts: it rebuilds the same
	// state from its disk, and the group keeps its master meanwhile.
	w.Node(newLeader).Crash()
	w.RunFor(4 * time.Second)
	w.Node(newLeader).Restart()
	w.RunFor(4 * time.Second)
	if ls := leaders(controllerAddrs); len(ls) != 1 {
		t.Fatalf("seed %d: after the leader's restart the leaders are %v", seed, ls)
	}
	final := groupAt(ls[0])
	if final.MasterID != g.MasterID || final.MasterEpoch != g.MasterEpoch {
		t.Fatalf("seed %d: after the leader's restart the group is %+v, before %+v", seed, final, g)
	}
	for _, addr := range controllerAddrs {
		if got := groupAt(addr); fmt.Sprint(got) != fmt.Sprint(final) {
			t.Fatalf("seed %d: after the leader's restart member %s holds %+v, the leader %+v", seed, addr, got, final)
		}
	}
	return w.TraceHash()
}

// Three members in the simulator: the leader is partitioned away, a new one is elected and
// the state survives; the master broker dies and an in-sync slave is elected; after healing
// every member holds the same state, also after the leader crashes and restarts. The same seed
// gives the same trace twice.
func TestSimulatedLeaderPartitionAndFailover(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		first := failoverRun(t, seed)
		if again := failoverRun(t, seed); again != first {
			t.Fatalf("seed %d: trace hash %x, then %x: the run is not deterministic", seed, first, again)
		}
	}
}
