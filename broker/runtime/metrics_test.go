package runtime

import (
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simmetrics"
)

// The runtime times requests of the kinds RequestKind names from arrival to answer, counts the
// open connections when asked, and leaves other requests untimed.
func TestRuntimeRecordsRequestLatencyAndConnections(t *testing.T) {
	const hold = 30 * time.Millisecond
	mem := simmetrics.New()
	n := &testNode{}
	type held struct {
		c   node.ConnID
		req *codec.Command
	}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		if cmd.Code == 2 { // answered after hold
			n.env.SetTimer(hold, held{c, cmd})
			return
		}
		n.env.Send(c, codec.NewResponse(cmd, codec.Success, ""))
	}
	n.onTimer = func(_ node.TimerID, tag any) {
		h := tag.(held)
		n.env.Send(h.c, codec.NewResponse(h.req, codec.Success, ""))
	}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Metrics: mem, RequestKind: func(code int16) string {
		if code == 2 {
			return "slow"
		}
		return ""
	}}, n)
	c := dialRaw(t, r.Addr().String())
	for i, code := range []int16{1, 2, 1} {
		req := codec.NewRequest(code, nil, nil)
		req.Opaque = int32(i + 1)
		c.write(req)
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.read(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.ReportMetrics(); err != nil {
		t.Fatal(err)
	}
	var got []*simmetrics.Series
	if err := r.Do(func() { got = mem.Series("sluice_request_duration_seconds") }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Count != 1 || got[0].Labels[0] != "request=slow" {
		t.Fatalf("request latency series %+v, want one observation of the slow request", got)
	}
	if got[0].Value < hold.Seconds() || got[0].Value > 5 {
		t.Errorf("the slow request took %vs, held %v", got[0].Value, hold)
	}
	var conns float64
	if err := r.Do(func() { conns = mem.Sum("sluice_connections") }); err != nil {
		t.Fatal(err)
	}
	if conns != 1 {
		t.Errorf("connections %v, want 1", conns)
	}
}
