package opsserver

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/metrics"
)

var testGauge = &metrics.Desc{Name: "sluice_test_level", Help: "A test gauge.", Kind: metrics.KindGauge}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// /readyz answers 503 naming every node that is not ready, 200 once all are; /healthz answers
// 200 whatever they say.
func TestReadyzReportsEveryNodeThatIsNotReady(t *testing.T) {
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var brokerErr error = errors.New("recovering its store")
	s.Add(Source{Name: "namesrv"})
	s.Add(Source{Name: "broker-a", Ready: func() error { return brokerErr }})
	h := s.Handler()
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "broker-a: recovering its store") {
		t.Errorf("/readyz with a recovering broker: %d %q", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	brokerErr = nil
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz once recovered: %d %q", code, body)
	}
	if code, _ := get(t, h, "/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d", code)
	}
}

// A scrape refreshes each node's gauges first; a removed node's gauges are gone, and a node
// added again under its name records into the same series.
func TestScrapeRefreshesAndRemoveDropsGauges(t *testing.T) {
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	level := 1.0
	rec := s.Recorder("broker-a")
	s.Add(Source{Name: "broker-a", Refresh: func() error { rec.Gauge(testGauge).Set(level); return nil }})
	h := s.Handler()
	_, body := get(t, h, "/metrics")
	if !strings.Contains(body, `sluice_test_level{node="broker-a"} 1`) {
		t.Fatalf("first scrape lacks the refreshed gauge:\n%s", body)
	}
	level = 42
	if _, body = get(t, h, "/metrics"); !strings.Contains(body, `sluice_test_level{node="broker-a"} 42`) {
		t.Fatalf("second scrape did not refresh the gauge:\n%s", body)
	}
	if !strings.Contains(body, "go_goroutines") {
		t.Errorf("the Go runtime's metrics are missing")
	}
	s.Remove("broker-a")
	if _, body = get(t, h, "/metrics"); strings.Contains(body, "sluice_test_level{") {
		t.Fatalf("a removed node's gauge is still served:\n%s", body)
	}
	if s.Recorder("broker-a") != rec {
		t.Errorf("a node added again under its name got another recorder")
	}
}

// A node whose loop does not answer is reported not ready within the bound, not waited for.
func TestReadyzDoesNotWaitForAStuckNode(t *testing.T) {
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	stuck := make(chan struct{})
	defer close(stuck)
	s.Add(Source{Name: "broker-a", Ready: func() error { <-stuck; return nil }})
	code, body := get(t, s.Handler(), "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "broker-a: did not answer") {
		t.Errorf("/readyz with a stuck node: %d %q", code, body)
	}
}
