package main

// The live progress line of 'sluice bench': once a second, on stderr, one line rewritten in
// place with the time elapsed, the messages sent and their rate over the last second, the send
// latency p50 and p99 over the last second (latencyHist), the errors so far, and, once a
// consumer reads, the messages read and their rate. It is drawn when stderr is a terminal;
// --progress forces it elsewhere too (where nothing can be rewritten, such as a log, it is
// then one line a second, as the simulator's sweep does), and --progress=false turns it off.
// Report lines written through benchProgress.above appear above it.

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// progressFlag is --progress: unset (auto: on when stderr is a terminal), true or false.
type progressFlag struct {
	set, on bool
}

func (f *progressFlag) String() string {
	if f == nil || !f.set {
		return "auto"
	}
	return strconv.FormatBool(f.on)
}

func (f *progressFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	f.set, f.on = true, on
	return nil
}

// IsBoolFlag lets --progress stand alone for --progress=true.
func (f *progressFlag) IsBoolFlag() bool { return true }

// enabled is whether to draw the line, given whether stderr is a terminal.
func (f *progressFlag) enabled(terminal bool) bool {
	if f.set {
		return f.on
	}
	return terminal
}

// eraseLine is the terminal's "erase to the end of the line" (ANSI EL).
const eraseLine = "\x1b[K"

// benchProgress counts what a benchmark has done and draws the line. A nil *benchProgress
// counts nothing and draws nothing, so callers need not ask whether the line is on.
type benchProgress struct {
	mu       sync.Mutex
	out      io.Writer
	terminal bool // out is a terminal: the line is rewritten in place
	start    time.Time

	sent, errs, read int64
	reading          bool        // a consumer has counted reads: the line shows them
	hist             latencyHist // send latencies since the last line

	lastAt             time.Time // when the last line was drawn (start before the first)
	lastSent, lastRead int64
	drawn              bool // the line is on the terminal now

	stopFn func() // set by startProgress
}

func newBenchProgress(out io.Writer, terminal bool, start time.Time) *benchProgress {
	return &benchProgress{out: out, terminal: terminal, start: start, lastAt: start}
}

// sendDone counts one send: its latency if it succeeded, an error if not.
func (p *benchProgress) sendDone(lat time.Duration, err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs++
		return
	}
	p.sent++
	p.hist.record(lat)
}

// readDone counts n messages a consumer read.
func (p *benchProgress) readDone(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.read += n
	p.reading = true
}

// line is the progress line as of now.
func (p *benchProgress) line(now time.Time) string {
	secs := now.Sub(p.lastAt).Seconds()
	rate := func(n, last int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n-last) / secs
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%5s] sent %d %.0f/s", now.Sub(p.start).Round(time.Second), p.sent, rate(p.sent, p.lastSent))
	if p.hist.n > 0 {
		fmt.Fprintf(&b, " p50 %s p99 %s", ms(p.hist.quantile(0.5)), ms(p.hist.quantile(0.99)))
	} else {
		b.WriteString(" p50 - p99 -")
	}
	fmt.Fprintf(&b, " errors %d", p.errs)
	if p.reading {
		fmt.Fprintf(&b, " | read %d %.0f/s", p.read, rate(p.read, p.lastRead))
	}
	return b.String()
}

// tick draws the line as of now and starts a new interval.
func (p *benchProgress) tick(now time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		fmt.Fprintf(p.out, "\r%s%s", p.line(now), eraseLine)
		p.drawn = true
	} else {
		fmt.Fprintln(p.out, p.line(now))
	}
	p.lastAt, p.lastSent, p.lastRead = now, p.sent, p.read
	p.hist = latencyHist{}
}

// clearLocked takes the line off the terminal, leaving the cursor at the start of the line.
func (p *benchProgress) clearLocked() {
	if p.drawn {
		fmt.Fprint(p.out, "\r"+eraseLine)
		p.drawn = false
	}
}

// above returns a writer for lines that must appear above the progress line (report lines on
// a terminal shared with stderr): each write takes the line off first; the next tick draws it
// again. A nil benchProgress returns w.
func (p *benchProgress) above(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return aboveWriter{p: p, w: w}
}

type aboveWriter struct {
	p *benchProgress
	w io.Writer
}

func (a aboveWriter) Write(b []byte) (int, error) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.p.clearLocked()
	return a.w.Write(b)
}

// run draws the line at each tick until stop is closed, then takes it off.
func (p *benchProgress) run(ticks <-chan time.Time, stop <-chan struct{}) {
	for {
		select {
		case now := <-ticks:
			p.tick(now)
		case <-stop:
			p.mu.Lock()
			p.clearLocked()
			p.mu.Unlock()
			return
		}
	}
}

// startProgress starts a progress line on out, drawn every second, when on; stop ends it.
// Off, it returns nil.
func startProgress(out io.Writer, terminal, on bool) *benchProgress {
	if !on {
		return nil
	}
	p := newBenchProgress(out, terminal, time.Now())
	tick := time.NewTicker(time.Second)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		p.run(tick.C, quit)
	}()
	p.stopFn = sync.OnceFunc(func() {
		tick.Stop()
		close(quit)
		<-done
	})
	return p
}

// stop stops the line startProgress started and takes it off; it may be called again.
func (p *benchProgress) stop() {
	if p != nil && p.stopFn != nil {
		p.stopFn()
	}
}
