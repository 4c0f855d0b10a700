// Package opsserver is a process's operations endpoint: one HTTP listener serving
// Prometheus metrics at /metrics, liveness at /healthz and readiness at /readyz, for every
// node the process runs. It owns the listener and the registry; the nodes' own numbers come
// from the sources added to it, asked on each scrape.
package opsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluicemq/sluice/broker/metrics"
	"github.com/sluicemq/sluice/broker/metrics/promrec"
)

// Source is one node as the server sees it.
type Source struct {
	// Name labels the node's series (node="...") and its line in /readyz.
	Name string
	// Refresh sets the node's gauges (a runtime's ReportMetrics); an error leaves them as
	// they were. Nil: nothing to refresh.
	Refresh func() error
	// Ready reports why the node is not ready (nil when it is); /readyz answers 503 while any
	// source is not. Nil: always ready.
	Ready func() error
}

// Server is the operations endpoint. Its zero value is not usable; use New.
type Server struct {
	reg *prometheus.Registry
	log *slog.Logger

	mu        sync.Mutex // serialises scrapes (refresh then gather) and guards sources and recorders
	sources   []Source
	recorders map[string]*promrec.Recorder // by node name

	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// New returns a server with a registry holding the Go runtime's and the process's own
// collectors.
func New(log *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Server{reg: reg, log: log, recorders: map[string]*promrec.Recorder{}}
}

// Recorder returns the recorder of the node named name: its series carry node="name". A node
// started again (sluice dev's replicas) gets the same one.
func (s *Server) Recorder(name string) metrics.Recorder {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recorders[name]
	if r == nil {
		r = promrec.New(prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, s.reg))
		s.recorders[name] = r
	}
	return r
}

// Add adds a node's source.
func (s *Server) Add(src Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources = append(s.sources, src)
}

// Remove removes the source named name (a node the process stopped) and drops its gauges,
// which would otherwise show its last state as if it still held.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.recorders[name]; r != nil {
		r.ResetGauges()
	}
	for i, src := range s.sources {
		if src.Name == name {
			s.sources = append(s.sources[:i], s.sources[i+1:]...)
			return
		}
	}
}

// Handler serves /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	prom := promhttp.HandlerFor(prometheus.GathererFunc(s.gather), promhttp.HandlerOpts{ErrorLog: slogAdapter{s.log}})
	mux.Handle("/metrics", prom)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "sluice: /metrics (Prometheus), /healthz (alive), /readyz (ready)")
	})
	return mux
}

// gather refreshes every source's gauges, then gathers the registry.
func (s *Server) gather() ([]*dto.MetricFamily, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.sources {
		if src.Refresh != nil {
			if err := within(askTimeout, src.Refresh); err != nil {
				s.log.Debug("metrics: refresh failed", "node", src.Name, "err", err)
			}
		}
	}
	return s.reg.Gather()
}

// readyz answers 200 "ready" when every source is ready, else 503 with a line per source
// that is not.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	srcs := append([]Source(nil), s.sources...)
	s.mu.Unlock()
	var notReady []string
	for _, src := range srcs {
		if src.Ready == nil {
			continue
		}
		if err := within(askTimeout, src.Ready); err != nil {
			notReady = append(notReady, src.Name+": "+err.Error())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(notReady) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready")
		fmt.Fprintln(w, strings.Join(notReady, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

// askTimeout bounds how long a scrape or a readiness check waits for a node: one whose event
// loop is stuck is reported as not ready, and its gauges are left as they were.
const askTimeout = 2 * time.Second

// within runs f and returns its error, or an error saying it did not return within d (f then
// finishes in the background).
func within(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("did not answer within %v (its event loop may be stuck)", d)
	}
}

// Listen starts serving on addr ("127.0.0.1:0" picks a port).
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address Listen listens on (nil before).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the listener and waits for the serving goroutine (at most 2 s for requests in
// flight).
func (s *Server) Close() {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// slogAdapter is promhttp's error logger.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Error("metrics: " + fmt.Sprint(v...)) }
