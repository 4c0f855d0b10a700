package runtime

import (
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/metrics"
	"github.com/sluicemq/sluice/broker/node"
)

// The runtime's metrics (docs/metrics.md): what only the runtime sees, with the wall clock it
// owns: how long requests take from arrival to answer, how long fsyncs take and how many
// entries each covers, and the open connections. A node's own metrics are its business
// (metrics.Reporter).
var (
	mRequestSeconds = metrics.NewHistogram("sluice_request_duration_seconds",
		"Time from a request's arrival on the node's loop (the start of the batch of events it came in) to its answer being queued, by request kind (Config.RequestKind: send, pull, ...); a pull's time includes its long-polling wait.",
		metrics.LatencyBuckets, "request")
	mFsyncSeconds = metrics.NewHistogram("sluice_fsync_duration_seconds",
		"Time one group-commit fsync took, by log kind: the first element of the log's name (commitlog; cq, the consume queues; keyindex; ...).",
		metrics.FsyncBuckets, "log")
	mFsyncEntries = metrics.NewHistogram("sluice_fsync_batch_entries",
		"Log entries one group-commit fsync made durable (entries appended since the log's previous sync), by log kind.",
		metrics.CountBuckets, "log")
	mConnections = metrics.New("sluice_connections", "Connections the node has open, inbound and outbound.", metrics.KindGauge)
)

// runtimeMetrics is the runtime's handles. Owned by the loop, except the fsync histograms,
// which the syncer's goroutine records into (they are safe for concurrent use).
type runtimeMetrics struct {
	rec metrics.Recorder
	on  bool
	// requests maps a request code to its latency histogram (nil: not timed), filled as codes
	// are first seen.
	requests map[int16]metrics.Histogram
	// synced is the index each log was last reported synced up to, by log name.
	synced map[string]uint64
	// The request latency clock. time.Now costs about 180 ns on the project's VMs, as much as
	// the rest of a send's recording, so the loop reads it at most once per batch of events
	// for arrivals (batchAt: every request of a batch was queued before it started) and once
	// per event for answers (answerAt, valid while answerAtSet: a group commit answers many
	// sends in one event).
	batchAt     time.Time
	answerAt    time.Time
	answerAtSet bool
}

// startBatch reads the clock for the requests of the batch of events about to be delivered.
func (m *runtimeMetrics) startBatch() {
	if m.on {
		m.batchAt = time.Now()
	}
}

// answerNow is the time of the answers of the event being delivered.
func (m *runtimeMetrics) answerNow() time.Time {
	if !m.answerAtSet {
		m.answerAt, m.answerAtSet = time.Now(), true
	}
	return m.answerAt
}

func newRuntimeMetrics(rec metrics.Recorder) runtimeMetrics {
	return runtimeMetrics{rec: metrics.Or(rec), on: metrics.Is(rec), requests: map[int16]metrics.Histogram{},
		synced: map[string]uint64{}}
}

// requestHist returns the histogram of requests with code (nil if they are not timed).
func (r *Runtime) requestHist(code int16) metrics.Histogram {
	m := &r.metrics
	if h, ok := m.requests[code]; ok {
		return h
	}
	var h metrics.Histogram
	if r.cfg.RequestKind != nil {
		if kind := r.cfg.RequestKind(code); kind != "" {
			h = m.rec.Histogram(mRequestSeconds, kind)
		}
	}
	m.requests[code] = h
	return h
}

// logKind is the label of a log's fsync metrics: its name's first element.
func logKind(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return name
}

// timedLog is a log whose Sync is timed into hist. A value, comparable: the syncer groups
// requests for the same log by it.
type timedLog struct {
	node.Log
	hist metrics.Histogram
}

func (l timedLog) Sync() error {
	start := time.Now()
	err := l.Log.Sync()
	l.hist.Observe(time.Since(start).Seconds())
	return err
}

// timed wraps l for the syncer when metrics are on.
func (r *Runtime) timed(l node.Log) node.Log {
	if !r.metrics.on {
		return l
	}
	return timedLog{Log: l, hist: r.metrics.rec.Histogram(mFsyncSeconds, logKind(l.Name()))}
}

// noteSynced records the entries a completed sync of logName covered.
func (r *Runtime) noteSynced(logName string, upTo uint64, err error) {
	m := &r.metrics
	if !m.on || err != nil {
		return
	}
	prev, seen := m.synced[logName]
	m.synced[logName] = max(prev, upTo)
	if seen && upTo > prev {
		m.rec.Histogram(mFsyncEntries, logKind(logName)).Observe(float64(upTo - prev))
	}
}

// ReportMetrics sets the runtime's gauges and, if the node is a metrics.Reporter, has it set
// its own, on the loop; it returns ErrStopped if the node has stopped.
func (r *Runtime) ReportMetrics() error {
	return r.Do(func() {
		r.metrics.rec.Gauge(mConnections).Set(float64(len(r.live)))
		if rep, ok := r.handler.(metrics.Reporter); ok {
			rep.ReportMetrics(r.metrics.rec)
		}
	})
}

// Health asks the node, on the loop, whether it is ready (node.Health); nil for a node that
// does not say. It returns ErrStopped if the node has stopped.
func (r *Runtime) Health() error {
	var err error
	if derr := r.Do(func() {
		if h, ok := r.handler.(interface{ Health() error }); ok {
			err = h.Health()
		}
	}); derr != nil {
		return derr
	}
	return err
}
