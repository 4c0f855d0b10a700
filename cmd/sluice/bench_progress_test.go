package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

// screen is what a terminal shows after the bytes written to it: lines split at "\n", "\r"
// back to the line's start, ESC[K erasing to its end, any other byte written over the cell
// under the cursor.
type screen struct {
	lines [][]byte
	col   int
}

func (s *screen) Write(b []byte) (int, error) {
	if s.lines == nil {
		s.lines = [][]byte{nil}
	}
	for i := 0; i < len(b); i++ {
		cur := &s.lines[len(s.lines)-1]
		switch {
		case b[i] == '\n':
			s.lines = append(s.lines, nil)
			s.col = 0
		case b[i] == '\r':
			s.col = 0
		case strings.HasPrefix(string(b[i:]), eraseLine):
			*cur = (*cur)[:min(s.col, len(*cur))]
			i += len(eraseLine) - 1
		default:
			for len(*cur) <= s.col {
				*cur = append(*cur, ' ')
			}
			(*cur)[s.col] = b[i]
			s.col++
		}
	}
	return len(b), nil
}

// text is the screen's lines, trailing blanks cut, the last line kept even if empty.
func (s *screen) text() []string {
	var out []string
	for _, l := range s.lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	return out
}

// The line shows the elapsed time, the messages sent and their rate over the last interval,
// the latency percentiles of that interval only, and the errors so far; on a terminal each
// tick rewrites it in place, and a report line written above it leaves it whole.
func TestBenchProgressLineOnATerminal(t *testing.T) {
	var term screen
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newBenchProgress(&term, true, t0)
	// 1023 µs and 8191 µs are the top values of their histogram buckets: reported exactly.
	for i := 0; i < 90; i++ {
		p.sendDone(1023*time.Microsecond, nil)
	}
	for i := 0; i < 10; i++ {
		p.sendDone(8191*time.Microsecond, nil)
	}
	p.sendDone(0, errors.New("send timed out"))
	p.sendDone(0, errors.New("send timed out"))
	p.tick(t0.Add(time.Second))
	want1 := "[   1s] sent 100 100/s p50 1.02ms p99 8.19ms errors 2"
	if got := term.text(); len(got) != 1 || got[0] != want1 {
		t.Fatalf("after the first tick the screen shows %q, want %q", got, want1)
	}

	// The next second: fewer, faster sends; its percentiles are its own.
	for i := 0; i < 50; i++ {
		p.sendDone(100*time.Microsecond, nil)
	}
	p.tick(t0.Add(2 * time.Second))
	want2 := "[   2s] sent 150 50/s p50 0.10ms p99 0.10ms errors 2"
	if got := term.text(); len(got) != 1 || got[0] != want2 {
		t.Fatalf("after the second tick the screen shows %q, want %q", got, want2)
	}

	// A report line goes above; the next tick draws the line below it. Nothing sent in the
	// interval shows as no percentiles; reads, once counted, join the line.
	fmt.Fprintf(p.above(&term), "send: 150 acknowledged\n")
	if got := term.text(); len(got) != 2 || got[0] != "send: 150 acknowledged" || got[1] != "" {
		t.Fatalf("after a report line the screen shows %q", got)
	}
	p.readDone(120)
	p.tick(t0.Add(4 * time.Second))
	want3 := "[   4s] sent 150 0/s p50 - p99 - errors 2 | read 120 60/s"
	if got := term.text(); len(got) != 2 || got[1] != want3 {
		t.Fatalf("after the third tick the screen shows %q, want %q under the report line", got, want3)
	}

	// Stopping takes the line off.
	ticks, stop := make(chan time.Time), make(chan struct{})
	done := make(chan struct{})
	go func() { p.run(ticks, stop); close(done) }()
	ticks <- t0.Add(5 * time.Second)
	close(stop)
	<-done
	if got := term.text(); len(got) != 2 || got[1] != "" {
		t.Fatalf("after stopping the screen shows %q, want the report line and an empty line", got)
	}
}

// Forced on where nothing can be rewritten (a log), the line is one line a second.
func TestBenchProgressLineInALog(t *testing.T) {
	var log strings.Builder
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newBenchProgress(&log, false, t0)
	p.sendDone(50*time.Microsecond, nil)
	p.tick(t0.Add(time.Second))
	p.tick(t0.Add(2 * time.Second))
	fmt.Fprintf(p.above(&log), "report\n")
	want := "[   1s] sent 1 1/s p50 0.05ms p99 0.05ms errors 0\n[   2s] sent 1 0/s p50 - p99 - errors 0\nreport\n"
	if log.String() != want {
		t.Errorf("log:\n%q\nwant\n%q", log.String(), want)
	}
}

// A nil progress (the line off) takes counts and writes without effect.
func TestBenchProgressOff(t *testing.T) {
	var p *benchProgress
	p.sendDone(time.Millisecond, nil)
	p.readDone(3)
	p.tick(time.Now())
	p.stop()
	var b strings.Builder
	if w := p.above(&b); w != &b {
		t.Errorf("a nil progress wraps the report writer")
	}
	if startProgress(&b, true, false) != nil {
		t.Errorf("startProgress off returned a progress")
	}
}

// --progress is on by default only on a terminal; --progress forces it, --progress=false stops it.
func TestBenchProgressFlag(t *testing.T) {
	for _, c := range []struct {
		args     []string
		terminal bool
		want     bool
	}{
		{nil, true, true},
		{nil, false, false},
		{[]string{"--progress"}, false, true},
		{[]string{"--progress=true"}, false, true},
		{[]string{"--progress=false"}, true, false},
	} {
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		var f progressFlag
		fs.Var(&f, "progress", "")
		if err := fs.Parse(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := f.enabled(c.terminal); got != c.want {
			t.Errorf("%v on a terminal %v: enabled %v, want %v", c.args, c.terminal, got, c.want)
		}
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(&strings.Builder{})
	var f progressFlag
	fs.Var(&f, "progress", "")
	if err := fs.Parse([]string{"--progress=sometimes"}); err == nil {
		t.Error("--progress=sometimes accepted")
	}
}
