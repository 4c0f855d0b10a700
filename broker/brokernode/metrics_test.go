package brokernode

import (
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/simmetrics"
)

// The broker counts what it stores and serves per topic, sets its state's gauges when asked,
// and says it is ready only once a name server accepted its registration.
func TestBrokerRecordsMetricsAndHealth(t *testing.T) {
	mem := simmetrics.New()
	cfg := testConfig()
	cfg.Metrics = mem
	h := startBroker(t, cfg, nil)
	if err := h.b.Health(); err == nil || !strings.Contains(err.Error(), "registration") {
		t.Errorf("Health before any registration was accepted: %v", err)
	}
	producer := h.env.accept(h.b, "127.0.9.7:50000")
	consumer := h.env.accept(h.b, "127.0.9.8:50001")
	for i := range 3 {
		op := h.send(producer, "Orders", 1, strings.Repeat("x", 10+i), nil)
		h.syncAll()
		if resp := h.mustAnswer(producer, op); resp.Code != codec.Success {
			t.Fatalf("send %d: %d %s", i, resp.Code, resp.Remark)
		}
	}
	if resp := h.mustAnswer(consumer, h.pull(consumer, "Orders", 1, 1)); resp.Code != codec.Success {
		t.Fatalf("pull: %d %s", resp.Code, resp.Remark)
	}
	if got := mem.Sum("sluice_broker_messages_in_total", "topic=Orders"); got != 3 {
		t.Errorf("messages in: %v, want 3", got)
	}
	if got := mem.Sum("sluice_broker_bytes_in_total", "topic=Orders"); got != 10+11+12 {
		t.Errorf("bytes in: %v, want the bodies' 33", got)
	}
	if got := mem.Sum("sluice_broker_messages_out_total", "topic=Orders"); got != 2 {
		t.Errorf("messages out: %v, want the 2 at offsets 1 and 2", got)
	}

	h.b.store.CommitOffset("g1", "Orders", 1, 1)
	h.b.ReportMetrics(mem)
	if got := mem.Sum("sluice_broker_consumer_lag_messages", "group=g1", "topic=Orders", "queue=1"); got != 2 {
		t.Errorf("lag of g1 on Orders/1: %v, want 2", got)
	}
	if got := mem.Sum("sluice_broker_queue_max_offset", "topic=Orders", "queue=1"); got != 3 {
		t.Errorf("max offset of Orders/1: %v, want 3", got)
	}
	if got := mem.Sum("sluice_broker_master"); got != 1 {
		t.Errorf("a single broker is a writable master: %v", got)
	}
	if got := mem.Sum("sluice_broker_registered"); got != 0 {
		t.Errorf("registered before any answer: %v", got)
	}

	if h.nameServersAnswer() == 0 {
		t.Fatal("the broker sent no registration to answer")
	}
	if err := h.b.Health(); err != nil {
		t.Errorf("Health once registered: %v", err)
	}
	h.b.ReportMetrics(mem)
	if got := mem.Sum("sluice_broker_registered") + mem.Sum("sluice_broker_ready"); got != 2 {
		t.Errorf("registered + ready once a name server answered: %v, want 2", got)
	}
}
