package namesrv

import (
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/metrics"
)

// The name server's metrics (docs/metrics.md).
var (
	mRegistrations = metrics.New("sluice_namesrv_registrations_total", "REGISTER_BROKER requests (registrations and their periodic renewals), by result: ok or refused.", metrics.KindCounter, "result")
	mDropped       = metrics.New("sluice_namesrv_brokers_dropped_total", "Brokers dropped from routes, by cause: expired (no registration within the expiry), closed (their connection closed) or unregistered.", metrics.KindCounter, "cause")
	mBrokers       = metrics.New("sluice_namesrv_brokers", "Brokers registered and live.", metrics.KindGauge)
	mTopics        = metrics.New("sluice_namesrv_topics", "Topics the live brokers registered.", metrics.KindGauge)
)

// countRegistration counts a REGISTER_BROKER answered with resp.
func (s *Server) countRegistration(resp *codec.Command) {
	result := "ok"
	if resp.Code != codec.Success {
		result = "refused"
	}
	s.rec.Counter(mRegistrations, result).Add(1)
}

// ReportMetrics implements metrics.Reporter. Read-only.
func (s *Server) ReportMetrics(r metrics.Recorder) {
	r.Gauge(mBrokers).Set(float64(len(s.brokers)))
	r.Gauge(mTopics).Set(float64(len(s.topicNames())))
}
