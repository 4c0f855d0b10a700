package namesrv

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/sim"
)

// asker is a simulated client that asks the name server for routes.
type asker struct {
	env    node.Env
	conn   node.ConnID
	dialed bool
	opaque int32
	got    map[int32]*codec.Command
}

func (a *asker) Start()                                  {}
func (a *asker) OnAccepted(node.ConnID, string)          {}
func (a *asker) OnDialed(node.ConnID)                    {}
func (a *asker) OnConnClosed(node.ConnID)                { a.dialed = false }
func (a *asker) OnTimer(node.TimerID, any)               {}
func (a *asker) OnSynced(string, uint64, error)          {}
func (a *asker) OnFrame(_ node.ConnID, c *codec.Command) { a.got[c.Opaque] = c }

func (a *asker) ask(addr, topic string) int32 {
	if !a.dialed {
		a.conn, a.dialed = a.env.Dial(addr), true
	}
	a.opaque++
	req := codec.NewRequest(codec.ReqGetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	req.Opaque = a.opaque
	a.env.Send(a.conn, req)
	return a.opaque
}

// In the simulator, a real broker registers once it is ready, so clients find it through
// TBW102 and through the topics it creates; when it crashes its connection resets and it
// leaves the routes at once, long before BrokerExpiry; after its restart it is back.
func TestRealBrokerRegistersAndLeavesOnCrash(t *testing.T) {
	const nsAddr, brokerAddr = "127.0.0.1:9876", "127.0.0.1:10911"
	w := sim.NewWorld(3, sim.NetConfig{MinLatency: 100 * time.Microsecond, MaxLatency: time.Millisecond},
		sim.DiskConfig{MinFsync: 100 * time.Microsecond, MaxFsync: time.Millisecond}, nil)
	w.AddNode(nsAddr, func(env node.Env) node.Handler { return New(env, DefaultConfig()) })
	bcfg := brokernode.DefaultConfig()
	bcfg.Addr, bcfg.NameServers = brokerAddr, []string{nsAddr}
	broker := w.AddNode(brokerAddr, func(env node.Env) node.Handler {
		b, err := brokernode.New(env, bcfg)
		if err != nil {
			panic(fmt.Sprintf("broker: %v", err))
		}
		return b
	})
	a := &asker{got: map[int32]*codec.Command{}}
	w.AddNode("127.0.0.2:1", func(env node.Env) node.Handler { a.env = env; return a })

	routeOf := func(topic string) *codec.Command {
		t.Helper()
		op := a.ask(nsAddr, topic)
		w.RunFor(50 * time.Millisecond)
		if a.got[op] == nil {
			t.Fatalf("no answer to the route query for %s", topic)
		}
		return a.got[op]
	}

	w.RunFor(100 * time.Millisecond)
	resp := routeOf(route.DefaultTopic)
	if resp.Code != codec.Success {
		t.Fatalf("route of %s once the broker is ready: code %d (%s)", route.DefaultTopic, resp.Code, resp.Remark)
	}
	rd, err := route.DecodeTopicRouteData(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if addr, ok := rd.MasterAddr(bcfg.BrokerName); !ok || addr != brokerAddr || rd.QueueDatas[0].Perm != 7 {
		t.Fatalf("route of %s: %s", route.DefaultTopic, resp.Body)
	}

	broker.Crash()
	w.RunFor(50 * time.Millisecond)
	if resp := routeOf(route.DefaultTopic); resp.Code != codec.TopicNotExist {
		t.Fatalf("route of %s right after the broker crashed: code %d, want 17", route.DefaultTopic, resp.Code)
	}
	broker.Restart()
	w.RunFor(100 * time.Millisecond)
	if resp := routeOf(route.DefaultTopic); resp.Code != codec.Success {
		t.Fatalf("route of %s after the restart: code %d", route.DefaultTopic, resp.Code)
	}
}
