package simmetrics

import (
	"testing"

	"github.com/sluicemq/sluice/broker/metrics"
)

var (
	testCounter = &metrics.Desc{Name: "test_things_total", Kind: metrics.KindCounter, Labels: []string{"topic"}}
	testGauge   = &metrics.Desc{Name: "test_level", Kind: metrics.KindGauge, Labels: []string{"queue"}}
	testHist    = &metrics.Desc{Name: "test_seconds", Kind: metrics.KindHistogram}
)

func TestSeriesAddUpPerNodeAndLabel(t *testing.T) {
	m := New()
	a, b := m.With("node", "a"), m.With("node", "b")
	a.Counter(testCounter, "T1").Add(3)
	a.Counter(testCounter, "T1").Add(2) // the same series again
	a.Counter(testCounter, "T2").Add(1)
	b.Counter(testCounter, "T1").Add(10)
	if got := m.Sum("test_things_total"); got != 16 {
		t.Errorf("sum of every series: %v, want 16", got)
	}
	if got := m.Sum("test_things_total", "topic=T1"); got != 15 {
		t.Errorf("topic T1 over both nodes: %v, want 15", got)
	}
	if got := m.Sum("test_things_total", "node=a", "topic=T1"); got != 5 {
		t.Errorf("node a, topic T1: %v, want 5", got)
	}
	if got := m.Sum("test_things_total", "node=c"); got != 0 {
		t.Errorf("a node that recorded nothing: %v", got)
	}

	a.Histogram(testHist).Observe(0.5)
	a.Histogram(testHist).Observe(1.5)
	h := m.Series("test_seconds")
	if len(h) != 1 || h[0].Count != 2 || h[0].Value != 2 {
		t.Errorf("histogram: %+v, want one series of 2 observations summing to 2", h)
	}

	series := m.Series("test_things_total")
	var keys []string
	for _, s := range series {
		keys = append(keys, key(s.Desc.Name, s.Labels))
	}
	want := []string{"test_things_total{node=a,topic=T1}", "test_things_total{node=a,topic=T2}", "test_things_total{node=b,topic=T1}"}
	if len(keys) != len(want) {
		t.Fatalf("series %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("series %d: %s, want %s (sorted)", i, keys[i], want[i])
		}
	}
}

func TestResetDropsOnlyTheNodesSeries(t *testing.T) {
	m := New()
	a, b := m.With("node", "a"), m.With("node", "b")
	a.Gauge(testGauge, "0").Set(7)
	a.Gauge(testGauge, "1").Set(8)
	b.Gauge(testGauge, "0").Set(9)
	a.Reset(testGauge)
	if got := m.Sum("test_level"); got != 9 {
		t.Errorf("after node a's reset: %v, want node b's 9 alone", got)
	}
	a.Gauge(testGauge, "1").Add(2)
	if got := m.Sum("test_level", "node=a"); got != 2 {
		t.Errorf("a series made again after the reset starts from 0: %v", got)
	}
	m.Reset(testGauge)
	if got := len(m.Series("test_level")); got != 0 {
		t.Errorf("%d series left after the unlabelled reset", got)
	}
}

func TestMisuseIsCaught(t *testing.T) {
	m := New()
	for name, f := range map[string]func(){
		"counter decreased":  func() { m.Counter(testCounter, "T").Add(-1) },
		"wrong label count":  func() { m.Counter(testCounter) },
		"gauge as a counter": func() { m.Counter(testGauge, "0") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
