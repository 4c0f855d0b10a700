// Package console is Sluice's web console: a server-rendered page (html/template, assets
// embedded, no script) that shows a running cluster (broker groups and their replicas, topics
// and their queues with rates, consumer groups with their lag per queue and a lag-over-time
// chart) and looks messages up by offset message id or by key. It refreshes itself and works
// with JavaScript off.
//
// It reads the cluster only through a Source, which in production speaks the admin protocol
// to the name servers and brokers like any outside tool (AdminSource); it never reaches into
// a node. It is an edge, not node code: it samples the cluster on its own goroutine, keeps
// the samples it charts in memory, and serves HTTP.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

var pages = template.Must(template.New("").ParseFS(assets, "templates/*.html"))

// Options configure a console.
type Options struct {
	NameServers []string      // shown on the page
	Interval    time.Duration // between samples (default 5s)
	Refresh     time.Duration // how often the page reloads itself (default Interval; at least 1s)
	History     int           // samples kept for the charts (default 120)
	RateWindow  time.Duration // rates are averaged over this much history (default 1m)
	Logger      *slog.Logger
	Now         func() time.Time // default time.Now
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = o.Interval
	}
	if o.History <= 0 {
		o.History = 120
	}
	if o.RateWindow <= 0 {
		o.RateWindow = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Console samples a cluster and serves its pages.
type Console struct {
	src  Source
	opts Options

	mu       sync.Mutex
	latest   *Snapshot
	latestAt time.Time
	err      error // of the newest sample, nil if it succeeded
	history  []point
}

// New returns a console of the cluster src reads. It samples nothing until Sample or Run.
func New(src Source, o Options) *Console {
	return &Console{src: src, opts: o.withDefaults()}
}

// Sample reads the cluster once and keeps what the page shows.
func (c *Console) Sample() {
	s, err := c.src.Snapshot()
	at := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// The page shows every failure; the log says when reading starts failing and recovers.
	switch {
	case err != nil && c.err == nil:
		c.opts.Logger.Warn("console: cannot read the cluster", "err", err)
	case err == nil && c.err != nil:
		c.opts.Logger.Info("console: reads the cluster again")
	}
	c.err = err
	if err != nil {
		return
	}
	c.latest, c.latestAt = &s, at
	c.history = append(c.history, pointOf(at, s))
	if n := len(c.history) - c.opts.History; n > 0 {
		c.history = append(c.history[:0:0], c.history[n:]...)
	}
}

// Run samples the cluster every Interval until ctx ends, the first time at once.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		c.Sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// page builds the main page from what the samples kept.
func (c *Console) page() Page {
	c.mu.Lock()
	in := viewInput{nameServers: c.opts.NameServers, refresh: c.opts.Refresh, rateWindow: c.opts.RateWindow,
		latest: c.latest, latestAt: c.latestAt, err: c.err, history: c.history}
	c.mu.Unlock()
	// Samples are never changed once kept (Sample replaces, it does not edit), so building
	// outside the lock is safe.
	return buildPage(in)
}

// Handler serves the console: the page at /, a lookup at /message, assets under /static/.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(assets, "static")
	if err != nil {
		panic("console: embedded assets: " + err.Error()) // the embed directive guarantees the directory
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		render(w, c.opts.Logger, "page.html", c.page())
	})
	mux.HandleFunc("GET /message", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		v := lookup(c.src, q.Get("id"), q.Get("topic"), q.Get("key"))
		render(w, c.opts.Logger, "message.html", struct {
			NameServers string
			Lookup      LookupView
		}{strings.Join(c.opts.NameServers, ";"), v})
	})
	return mux
}

// render executes a template into a buffer first, so a failure is a clean 500.
func render(w http.ResponseWriter, log *slog.Logger, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		log.Error("console: render", "page", name, "err", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// Server is a console served over HTTP, sampling on its own goroutine.
type Server struct {
	console *Console
	http    *http.Server
	ln      net.Listener
	cancel  context.CancelFunc
	sampled chan struct{} // closed when the sampler has stopped
	served  chan struct{} // closed when the HTTP server has stopped
}

// Start listens on addr and serves a console of src, sampling every o.Interval.
func Start(addr string, src Source, o Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console: listen on %s: %w", addr, err)
	}
	c := New(src, o)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{console: c, ln: ln, cancel: cancel, sampled: make(chan struct{}), served: make(chan struct{}),
		http: &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	go func() { defer close(s.sampled); c.Run(ctx) }()
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.opts.Logger.Error("console: serve", "err", err)
		}
	}()
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the page's address.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Close stops sampling and serving, letting requests in flight and a sample under way finish
// within timeout.
func (s *Server) Close(timeout time.Duration) error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.http.Shutdown(ctx)
	<-s.served
	select {
	case <-s.sampled:
	case <-ctx.Done():
		err = errors.Join(err, errors.New("console: a sample of the cluster was still under way"))
	}
	return err
}
