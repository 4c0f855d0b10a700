package runtime

import (
	"log/slog"
	"sync"
	"time"
)

// dialFailures keeps a node that redials an unreachable peer every few hundred milliseconds (a
// broker whose controller is down) from writing a log line per attempt: the first failure to
// an address is logged at WARN, later consecutive ones only when their count reaches a power of
// two (with the count and how long the address has been unreachable), and the first success
// after failures at INFO. Dial goroutines share it.
type dialFailures struct {
	mu    sync.Mutex
	addrs map[string]*dialStreak
}

type dialStreak struct {
	failures int
	since    time.Time
}

// maxDialStreaks bounds the addresses remembered; past it the table starts over.
const maxDialStreaks = 1024

// failed records a failed dial to addr and logs it if it is due.
func (d *dialFailures) failed(log *slog.Logger, addr string, err error) {
	d.mu.Lock()
	if d.addrs == nil || len(d.addrs) >= maxDialStreaks {
		d.addrs = make(map[string]*dialStreak)
	}
	s := d.addrs[addr]
	if s == nil {
		s = &dialStreak{since: time.Now()}
		d.addrs[addr] = s
	}
	s.failures++
	n, since := s.failures, s.since
	d.mu.Unlock()
	switch {
	case n == 1:
		log.Warn("cannot connect; retrying, and logging only every doubling of the failures from now", "addr", addr, "err", err)
	case n&(n-1) == 0:
		log.Warn("still cannot connect", "addr", addr, "failures", n, "for", time.Since(since).Round(time.Second), "err", err)
	}
}

// succeeded forgets addr's failures, logging the recovery if there were any.
func (d *dialFailures) succeeded(log *slog.Logger, addr string) {
	d.mu.Lock()
	s := d.addrs[addr]
	delete(d.addrs, addr)
	d.mu.Unlock()
	if s != nil {
		log.Info("connected after failures", "addr", addr, "failures", s.failures, "after", time.Since(s.since).Round(time.Millisecond))
	}
}
