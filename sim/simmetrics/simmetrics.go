// Package simmetrics is the simulator's metrics.Recorder: it keeps every series in memory, as
// plain numbers, so that a run's summary can print what the nodes recorded (messages in and
// out, elections) and tests can read any series back. It is deterministic (no clock, no
// goroutines, map order never leaks: listings are sorted) and, like the rest of a world, used
// from one goroutine.
package simmetrics

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/metrics"
)

// Memory holds the series of every metric recorded through it or through the recorders
// With returns.
type Memory struct {
	series map[string]*Series // by key (name and labels)
}

var _ metrics.Recorder = (*Memory)(nil)

// New returns an empty recorder.
func New() *Memory { return &Memory{series: map[string]*Series{}} }

// Series is one series: a counter's or gauge's value, or a histogram's count and sum of
// observations (Value is then the sum).
type Series struct {
	Desc   *metrics.Desc
	Labels []string // name=value pairs, in the order given
	Value  float64
	Count  uint64 // observations (histograms)
}

func (s *Series) Add(delta float64) {
	if s.Desc.Kind == metrics.KindCounter && delta < 0 {
		panic(fmt.Sprintf("simmetrics: counter %s decreased by %v", s.Desc.Name, delta))
	}
	s.Value += delta
}
func (s *Series) Set(v float64)     { s.Value = v }
func (s *Series) Observe(v float64) { s.Value += v; s.Count++ }

// key is a series' identity: its metric's name and its labels.
func key(name string, labels []string) string {
	return name + "{" + strings.Join(labels, ",") + "}"
}

// get returns (making it the first time) d's series with labelValues, after the constant
// labels consts (name=value pairs).
func (m *Memory) get(d *metrics.Desc, kind metrics.Kind, consts []string, labelValues []string) *Series {
	if d.Kind != kind {
		panic(fmt.Sprintf("simmetrics: %s is a %v, used as a %v", d.Name, d.Kind, kind))
	}
	if len(labelValues) != len(d.Labels) {
		panic(fmt.Sprintf("simmetrics: %s takes %d label values, got %d", d.Name, len(d.Labels), len(labelValues)))
	}
	labels := slices.Clone(consts)
	for i, v := range labelValues {
		labels = append(labels, d.Labels[i]+"="+v)
	}
	k := key(d.Name, labels)
	s := m.series[k]
	if s == nil {
		s = &Series{Desc: d, Labels: labels}
		m.series[k] = s
	}
	return s
}

func (m *Memory) Counter(d *metrics.Desc, lv ...string) metrics.Counter {
	return m.get(d, metrics.KindCounter, nil, lv)
}
func (m *Memory) Gauge(d *metrics.Desc, lv ...string) metrics.Gauge {
	return m.get(d, metrics.KindGauge, nil, lv)
}
func (m *Memory) Histogram(d *metrics.Desc, lv ...string) metrics.Histogram {
	return m.get(d, metrics.KindHistogram, nil, lv)
}

// Reset drops every series of d.
func (m *Memory) Reset(d *metrics.Desc) { m.reset(d, nil) }

func (m *Memory) reset(d *metrics.Desc, consts []string) {
	for k, s := range m.series {
		if s.Desc.Name == d.Name && hasPrefix(s.Labels, consts) {
			delete(m.series, k)
		}
	}
}

func hasPrefix(labels, prefix []string) bool {
	return len(labels) >= len(prefix) && slices.Equal(labels[:len(prefix)], prefix)
}

// With returns a recorder into m whose series carry the constant label name=value first (a
// node's address, say), as the production endpoint labels each node's series.
func (m *Memory) With(name, value string) metrics.Recorder {
	return labelled{m: m, consts: []string{name + "=" + value}}
}

type labelled struct {
	m      *Memory
	consts []string
}

func (l labelled) Counter(d *metrics.Desc, lv ...string) metrics.Counter {
	return l.m.get(d, metrics.KindCounter, l.consts, lv)
}
func (l labelled) Gauge(d *metrics.Desc, lv ...string) metrics.Gauge {
	return l.m.get(d, metrics.KindGauge, l.consts, lv)
}
func (l labelled) Histogram(d *metrics.Desc, lv ...string) metrics.Histogram {
	return l.m.get(d, metrics.KindHistogram, l.consts, lv)
}
func (l labelled) Reset(d *metrics.Desc) { l.m.reset(d, l.consts) }

// Sum adds up the values of every series of the metric named name whose labels include each
// of match (name=value pairs): Sum("sluice_broker_messages_in_total") is the messages every
// broker took, Sum(n, "topic=T") those of topic T.
func (m *Memory) Sum(name string, match ...string) float64 {
	var total float64
	for _, s := range m.Series(name) {
		if containsAll(s.Labels, match) {
			total += s.Value
		}
	}
	return total
}

func containsAll(labels, match []string) bool {
	for _, want := range match {
		if !slices.Contains(labels, want) {
			return false
		}
	}
	return true
}

// Series lists the series of the metric named name (every metric if name is ""), sorted by
// name, then labels.
func (m *Memory) Series(name string) []*Series {
	var out []*Series
	for _, s := range m.series {
		if name == "" || s.Desc.Name == name {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Series) int {
		return strings.Compare(key(a.Desc.Name, a.Labels), key(b.Desc.Name, b.Labels))
	})
	return out
}
