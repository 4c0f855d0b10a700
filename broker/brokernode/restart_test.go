package brokernode

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim"
)

// wire is a simulated process that sends hand-written requests and keeps every response.
type wire struct {
	env    node.Env
	conns  map[string]node.ConnID
	opaque int32
	got    map[int32]*codec.Command
}

func newWire(env node.Env) *wire {
	return &wire{env: env, conns: map[string]node.ConnID{}, got: map[int32]*codec.Command{}}
}

func (w *wire) Start()                                  {}
func (w *wire) OnAccepted(node.ConnID, string)          {}
func (w *wire) OnDialed(node.ConnID)                    {}
func (w *wire) OnTimer(node.TimerID, any)               {}
func (w *wire) OnSynced(string, uint64, error)          {}
func (w *wire) OnFrame(_ node.ConnID, c *codec.Command) { w.got[c.Opaque] = c }
func (w *wire) OnConnClosed(c node.ConnID) {
	for addr, id := range w.conns {
		if id == c {
			delete(w.conns, addr)
		}
	}
}

func (w *wire) call(addr string, code int16, ext map[string]string, body []byte) int32 {
	c, ok := w.conns[addr]
	if !ok {
		c = w.env.Dial(addr)
		w.conns[addr] = c
	}
	w.opaque++
	req := codec.NewRequest(code, ext, body)
	req.Opaque = w.opaque
	w.env.Send(c, req)
	return w.opaque
}

// A broker that crashes and restarts on the same simulated disk keeps every message it
// acknowledged and the consumer offsets it flushed before the crash.
func TestRestartKeepsSyncedMessagesAndFlushedOffsets(t *testing.T) {
	const brokerAddr = "127.0.0.1:10911"
	w := sim.NewWorld(1, sim.NetConfig{MinLatency: 100 * time.Microsecond, MaxLatency: time.Millisecond},
		sim.DiskConfig{MinFsync: 100 * time.Microsecond, MaxFsync: 2 * time.Millisecond}, nil)
	cfg := testConfig()
	cfg.Addr = brokerAddr
	broker := w.AddNode(brokerAddr, func(env node.Env) node.Handler {
		b, err := New(env, cfg)
		if err != nil {
			panic(fmt.Sprintf("broker recovery failed: %v", err))
		}
		return b
	})
	cli := newWire(nil)
	w.AddNode("127.0.0.2:1", func(env node.Env) node.Handler { cli.env = env; return cli })
	w.RunFor(100 * time.Millisecond)

	var sends []int32
	for i := 0; i < 5; i++ {
		sends = append(sends, cli.call(brokerAddr, codec.ReqSendMessage, sendExt("Orders", "2", nil), []byte("m"+strconv.Itoa(i))))
	}
	upd := offsetExt("cg", "2")
	upd["topic"] = "Orders"
	upd["commitOffset"] = "3"
	cli.call(brokerAddr, codec.ReqUpdateConsumerOffset, upd, nil)
	w.RunFor(100 * time.Millisecond)
	for i, op := range sends {
		if r := cli.got[op]; r == nil || r.Code != codec.Success {
			t.Fatalf("send %d before the crash: %+v", i, r)
		}
	}
	// Past OffsetFlushInterval, so the offset is on disk.
	w.RunFor(cfg.OffsetFlushInterval)

	broker.Crash()
	w.RunFor(time.Second)
	broker.Restart()
	w.RunFor(100 * time.Millisecond)
	if !broker.Handler().(*Broker).Ready() {
		t.Fatal("the restarted broker is not ready")
	}

	pull := cli.call(brokerAddr, codec.ReqPullMessage, pullExt("Orders", 2, 0), nil)
	query := cli.call(brokerAddr, codec.ReqQueryConsumerOffset, offsetExt("cg", "2"), nil)
	w.RunFor(100 * time.Millisecond)
	resp := cli.got[pull]
	if resp == nil || resp.Code != codec.Success {
		t.Fatalf("pull after the restart: %+v", resp)
	}
	msgs := decodeBody(t, resp.Body)
	if len(msgs) != len(sends) {
		t.Fatalf("after the restart queue 2 holds %d messages, want the %d acknowledged", len(msgs), len(sends))
	}
	for i, m := range msgs {
		if string(m.Body) != "m"+strconv.Itoa(i) || m.QueueOffset != int64(i) {
			t.Errorf("message %d after the restart: body %q offset %d", i, m.Body, m.QueueOffset)
		}
	}
	if r := cli.got[query]; r == nil || r.Code != codec.Success || r.Ext("offset") != "3" {
		t.Fatalf("consumer offset after the restart: %+v, want 3", r)
	}
}
