// Package metrics is how Sluice's nodes and runtimes record what operators watch: counters,
// gauges and histogram observations, through Recorder, a small interface of their own. The
// production runtime backs it with Prometheus (package metrics/promrec), the simulator with
// an in-memory recorder (package sim/simmetrics); the default is Nop.
//
// A Recorder never reads a clock: a duration is computed by whoever has one (a node from its
// Env's Now, a runtime from the wall clock) and handed over as a number of seconds. Handles are
// meant to be looked up once and kept (per topic, per slave), so recording a message costs a
// method call and no allocation. This package owns the interface and the descriptions of
// metrics; it must never import a backend.
package metrics

import (
	"fmt"
	"slices"
	"sync"
)

// Kind is the type of a metric.
type Kind uint8

const (
	KindCounter Kind = iota + 1
	KindGauge
	KindHistogram
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Desc describes one metric: its Prometheus name (with its unit and, for a counter, _total),
// help text, type, label names and, for a histogram, bucket upper bounds (nil: the backend's
// defaults).
type Desc struct {
	Name    string
	Help    string
	Kind    Kind
	Labels  []string
	Buckets []float64
}

// Counter only goes up.
type Counter interface{ Add(delta float64) }

// Gauge is a value that goes up and down.
type Gauge interface {
	Set(v float64)
	Add(delta float64)
}

// Histogram takes observations (seconds, bytes, entries) into buckets.
type Histogram interface{ Observe(v float64) }

// Recorder hands out the series of a metric: the one of d with these label values (as many as
// d.Labels, in order). Asking twice for the same series returns the same one. Reset forgets
// every series of d, so that a gauge refreshed from a node's state (Reporter) drops the series
// of what is gone (a slave that left, a consumer group deleted).
type Recorder interface {
	Counter(d *Desc, labelValues ...string) Counter
	Gauge(d *Desc, labelValues ...string) Gauge
	Histogram(d *Desc, labelValues ...string) Histogram
	Reset(d *Desc)
}

// Reporter is implemented by a node that can report gauges of its state (offsets, lags, the
// in-sync set) on demand: ReportMetrics sets them through r. It must be read-only (no state
// changes, no random draws, no Env call but reading the node's clock, Env.Now) so that
// reporting or not changes nothing in a run; runtimes call it on the node's loop when metrics
// are scraped.
type Reporter interface {
	ReportMetrics(r Recorder)
}

// Nop records nothing.
type Nop struct{}

type nopSeries struct{}

func (nopSeries) Add(float64)     {}
func (nopSeries) Set(float64)     {}
func (nopSeries) Observe(float64) {}

func (Nop) Counter(*Desc, ...string) Counter     { return nopSeries{} }
func (Nop) Gauge(*Desc, ...string) Gauge         { return nopSeries{} }
func (Nop) Histogram(*Desc, ...string) Histogram { return nopSeries{} }
func (Nop) Reset(*Desc)                          {}

// Bool is a gauge's value for a flag: 1 for true, 0 for false.
func Bool(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// Or is r, or Nop if r is nil.
func Or(r Recorder) Recorder {
	if r == nil {
		return Nop{}
	}
	return r
}

// Is reports whether r records anything (it is neither nil nor Nop), for callers that can skip
// work whose only use is a metric.
func Is(r Recorder) bool {
	if r == nil {
		return false
	}
	_, nop := r.(Nop)
	return !nop
}

var (
	allMu sync.Mutex
	all   []*Desc
)

// New declares a metric (at package initialisation: var fooDesc = metrics.New(...)) and
// returns its description; All lists every one declared, for documentation and its test.
// It panics on a name declared twice with another shape.
func New(name, help string, kind Kind, labels ...string) *Desc {
	return add(&Desc{Name: name, Help: help, Kind: kind, Labels: labels})
}

// NewHistogram declares a histogram with bucket upper bounds buckets (ascending).
func NewHistogram(name, help string, buckets []float64, labels ...string) *Desc {
	if !slices.IsSorted(buckets) {
		panic("metrics: buckets of " + name + " are not ascending")
	}
	return add(&Desc{Name: name, Help: help, Kind: KindHistogram, Labels: labels, Buckets: buckets})
}

func add(d *Desc) *Desc {
	allMu.Lock()
	defer allMu.Unlock()
	for _, o := range all {
		if o.Name == d.Name {
			if o.Kind != d.Kind || !slices.Equal(o.Labels, d.Labels) {
				panic("metrics: " + d.Name + " declared twice with different kinds or labels")
			}
			return o
		}
	}
	all = append(all, d)
	return d
}

// All returns every metric declared with New or NewHistogram in the packages linked in,
// sorted by name.
func All() []*Desc {
	allMu.Lock()
	defer allMu.Unlock()
	out := slices.Clone(all)
	slices.SortFunc(out, func(a, b *Desc) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Bucket sets for histograms.
var (
	// LatencyBuckets: 100 µs to 30 s, in seconds (a long-polling pull is held up to 15 s).
	LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30}
	// FsyncBuckets: 50 µs to 5 s, in seconds.
	FsyncBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
	// CountBuckets: 1 to 65536, powers of 4 (entries covered by one fsync).
	CountBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536}
)
