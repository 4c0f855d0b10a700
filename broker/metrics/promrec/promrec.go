// Package promrec backs metrics.Recorder with Prometheus's client library: each metrics.Desc
// becomes a vector (counter, gauge or histogram) registered on first use with the Registerer
// the recorder was made with. It is production code: it must never be linked into a node's
// logic, which sees only metrics.Recorder.
package promrec

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicemq/sluice/broker/metrics"
)

// Recorder is a metrics.Recorder over a Prometheus registry. It is safe for concurrent use.
type Recorder struct {
	reg  prometheus.Registerer
	mu   sync.Mutex
	vecs map[string]any // *prometheus.CounterVec, GaugeVec or HistogramVec, by metric name
}

var _ metrics.Recorder = (*Recorder)(nil)

// New returns a recorder that registers its metrics with reg (wrap it with
// prometheus.WrapRegistererWith to tell several nodes of one process apart).
func New(reg prometheus.Registerer) *Recorder {
	return &Recorder{reg: reg, vecs: map[string]any{}}
}

// vec returns d's vector, creating and registering it the first time.
func (r *Recorder) vec(d *metrics.Desc) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.vecs[d.Name]; ok {
		return v
	}
	var c prometheus.Collector
	switch d.Kind {
	case metrics.KindCounter:
		c = prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Name, Help: d.Help}, d.Labels)
	case metrics.KindGauge:
		c = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: d.Name, Help: d.Help}, d.Labels)
	case metrics.KindHistogram:
		c = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.Name, Help: d.Help, Buckets: d.Buckets}, d.Labels)
	default:
		panic(fmt.Sprintf("promrec: metric %s of unknown kind %v", d.Name, d.Kind))
	}
	if err := r.reg.Register(c); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			panic(fmt.Sprintf("promrec: register %s: %v", d.Name, err))
		}
		c = are.ExistingCollector
	}
	r.vecs[d.Name] = c
	return c
}

func (r *Recorder) Counter(d *metrics.Desc, lv ...string) metrics.Counter {
	return r.vec(d).(*prometheus.CounterVec).WithLabelValues(lv...)
}

func (r *Recorder) Gauge(d *metrics.Desc, lv ...string) metrics.Gauge {
	return r.vec(d).(*prometheus.GaugeVec).WithLabelValues(lv...)
}

func (r *Recorder) Histogram(d *metrics.Desc, lv ...string) metrics.Histogram {
	return r.vec(d).(*prometheus.HistogramVec).WithLabelValues(lv...)
}

// ResetGauges drops every series of every gauge recorded through r: a node that stopped
// reports no state. Its counters and histograms stay (they count on if it starts again).
func (r *Recorder) ResetGauges() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.vecs {
		if g, ok := v.(*prometheus.GaugeVec); ok {
			g.Reset()
		}
	}
}

// Reset drops every series of d.
func (r *Recorder) Reset(d *metrics.Desc) {
	switch v := r.vec(d).(type) {
	case *prometheus.CounterVec:
		v.Reset()
	case *prometheus.GaugeVec:
		v.Reset()
	case *prometheus.HistogramVec:
		v.Reset()
	}
}
