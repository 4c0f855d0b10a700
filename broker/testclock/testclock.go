// Package testclock is a test-only wall clock shifted from the real one: it lets a fault
// harness give one Sluice process a clock that is ahead or behind the others (and jump it while
// the process runs), as a misconfigured or stepped NTP client would. Production runs never set
// it; cmd/sluice enables it only from the SLUICE_TEST_CLOCK_OFFSET and SLUICE_TEST_CLOCK_FILE
// environment variables (docs/testing-flags.md). It never touches the system clock.
package testclock

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Clock is the real clock shifted by an offset that may change while it is in use. It is
// safe for concurrent use.
type Clock struct {
	offset atomic.Int64 // nanoseconds
}

// New returns a clock offset from the real one by offset.
func New(offset time.Duration) *Clock {
	c := &Clock{}
	c.offset.Store(int64(offset))
	return c
}

// Now is the real time plus the current offset. The monotonic reading is dropped, so that
// comparisons of two readings see a jump of the offset as a real clock step would.
func (c *Clock) Now() time.Time {
	return time.Now().Round(0).Add(c.Offset())
}

// Offset is the current offset.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Set changes the offset: the clock jumps by the difference.
func (c *Clock) Set(offset time.Duration) { c.offset.Store(int64(offset)) }

// ParseOffset reads an offset: a Go duration ("-90s", "2h", "0"), signed.
func ParseOffset(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("clock offset %q: %w", s, err)
	}
	return d, nil
}

// ReadOffsetFile reads an offset from the file at path (ParseOffset's form; an empty file
// is a zero offset).
func ReadOffsetFile(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("clock offset file: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return 0, nil
	}
	d, err := ParseOffset(string(b))
	if err != nil {
		return 0, fmt.Errorf("clock offset file %s: %w", path, err)
	}
	return d, nil
}

// Watch rereads the offset file at path every interval until stop is closed, and sets the
// clock to what it holds; a change is logged at WARN. A missing file keeps the current offset
// (the harness may create it later); an unreadable one is logged and ignored.
func (c *Clock) Watch(path string, interval time.Duration, log *slog.Logger, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		d, err := ReadOffsetFile(path)
		switch {
		case err == nil:
			if old := c.Offset(); d != old {
				c.Set(d)
				log.Warn("TEST CLOCK: offset changed", "from", old, "to", d, "file", path)
			}
			lastErr = ""
		case errors.Is(err, os.ErrNotExist):
		case err.Error() != lastErr:
			lastErr = err.Error()
			log.Error("TEST CLOCK: cannot read the offset file; keeping the offset", "offset", c.Offset(), "err", err)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
