package promrec

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicemq/sluice/broker/metrics"
)

var (
	testIn    = &metrics.Desc{Name: "sluice_promrec_test_in_total", Help: "In.", Kind: metrics.KindCounter, Labels: []string{"topic"}}
	testLevel = &metrics.Desc{Name: "sluice_promrec_test_level", Help: "Level.", Kind: metrics.KindGauge, Labels: []string{"queue"}}
	testSecs  = &metrics.Desc{Name: "sluice_promrec_test_seconds", Help: "Seconds.", Kind: metrics.KindHistogram, Buckets: metrics.LatencyBuckets}
)

// Two recorders on one registry, told apart by a constant label (two nodes of one process),
// share the vectors' names; ResetGauges drops one node's gauges and leaves its counters.
func TestRecordersOfTwoNodesShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(prometheus.WrapRegistererWith(prometheus.Labels{"node": "a"}, reg))
	b := New(prometheus.WrapRegistererWith(prometheus.Labels{"node": "b"}, reg))
	a.Counter(testIn, "T").Add(2)
	b.Counter(testIn, "T").Add(5)
	a.Gauge(testLevel, "0").Set(7)
	a.Histogram(testSecs).Observe(0.002)
	want := `
# HELP sluice_promrec_test_in_total In.
# TYPE sluice_promrec_test_in_total counter
sluice_promrec_test_in_total{node="a",topic="T"} 2
sluice_promrec_test_in_total{node="b",topic="T"} 5
# HELP sluice_promrec_test_level Level.
# TYPE sluice_promrec_test_level gauge
sluice_promrec_test_level{node="a",queue="0"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), testIn.Name, testLevel.Name); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, testSecs.Name); n != 1 {
		t.Errorf("%d histogram series, want 1", n)
	}
	a.ResetGauges()
	if n := testutil.CollectAndCount(reg, testLevel.Name); n != 0 {
		t.Errorf("%d gauge series after ResetGauges, want 0", n)
	}
	if n := testutil.CollectAndCount(reg, testIn.Name); n != 2 {
		t.Errorf("%d counter series after ResetGauges, want 2 (counters stay)", n)
	}
}

// What one send costs the broker and its runtime with Prometheus behind the recorder: two
// per-topic counter adds through cached handles and a latency observation (the runtime reads
// the clock once per batch of events, not per request: runtimeMetrics).
func BenchmarkRecordSend(b *testing.B) {
	r := New(prometheus.NewRegistry())
	in, bytesIn := r.Counter(testIn, "T"), r.Counter(testIn, "U")
	h := r.Histogram(testSecs)
	b.ReportAllocs()
	for b.Loop() {
		in.Add(1)
		bytesIn.Add(1024)
		h.Observe((2 * time.Millisecond).Seconds())
	}
}
