package diskfile

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/node"
)

// BenchmarkSegmentSize measures how the wal segment size affects the event loop: b.N batches
// of 100 appends of 1 KiB each, while another goroutine fsyncs the log in a loop as the disk
// worker does. It reports the latency of one batch (p50, p99, max) and the append rate.
// Run with a fixed count so every size writes the same amount and crosses many segments:
//
//	go test -run='^$' -bench=SegmentSize -benchtime=10000x ./broker/diskfile/
func BenchmarkSegmentSize(b *testing.B) {
	const batch = 100
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte(i)
	}
	for _, mib := range []int{1, 4, 8, 20} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			d, err := Open(b.TempDir(), Options{SegmentBytes: mib << 20, Logger: quietLogger})
			if err != nil {
				b.Fatal(err)
			}
			l, err := d.OpenLog("commitlog")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.Sync(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			lat := make([]time.Duration, 0, b.N)
			b.SetBytes(batch * int64(len(payload)))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				t0 := time.Now()
				for range batch {
					if _, err := l.Append(payload); err != nil {
						b.Fatal(err)
					}
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
			}
			b.ReportMetric(pct(0.50), "p50-µs/batch")
			b.ReportMetric(pct(0.99), "p99-µs/batch")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs/batch")
			b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "entries/s")
			b.ReportMetric(0, "ns/op") // batch latency is reported above
		})
	}
}

// countingLog counts the Syncs of the log it wraps.
type countingLog struct {
	node.Log
	syncs atomic.Int64
}

func (c *countingLog) Sync() error {
	c.syncs.Add(1)
	return c.Log.Sync()
}

// BenchmarkGroupCommit compares group commit with an fsync per entry, for 1 KiB entries.
//
// GroupCommit: 64 appenders; each appends (under a mutex, as the event loop serialises
// appends), asks the Syncer for its entry and waits for the done callback before it counts
// the entry acknowledged and appends the next. FsyncPerEntry: append then Sync, one entry at
// a time. Both report acknowledged entries/s.
//
//	go test -run='^$' -bench=GroupCommit -benchtime=3s ./broker/diskfile/
func BenchmarkGroupCommit(b *testing.B) {
	payload := benchPayload(3)

	b.Run("GroupCommit", func(b *testing.B) {
		const appenders = 64
		l := &countingLog{Log: openBenchLog(b)}
		s := NewSyncer()
		defer s.Close()
		var loop sync.Mutex
		var next, acked atomic.Int64
		var wg sync.WaitGroup
		b.SetBytes(int64(len(payload)))
		b.ResetTimer()
		start := time.Now()
		for range appenders {
			wg.Go(func() {
				done := make(chan error, 1)
				for next.Add(1) <= int64(b.N) {
					loop.Lock()
					i, err := l.Append(payload)
					loop.Unlock()
					if err != nil {
						b.Error(err)
						return
					}
					s.Request(l, i, func(_ uint64, err error) { done <- err })
					if err := <-done; err != nil {
						b.Error(err)
						return
					}
					acked.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		if acked.Load() != int64(b.N) {
			b.Fatalf("%d acknowledged, want %d", acked.Load(), b.N)
		}
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
		b.ReportMetric(float64(b.N)/float64(l.syncs.Load()), "entries/fsync")
	})

	b.Run("FsyncPerEntry", func(b *testing.B) {
		l := openBenchLog(b)
		b.SetBytes(int64(len(payload)))
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if _, err := l.Append(payload); err != nil {
				b.Fatal(err)
			}
			if err := l.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	})
}

// BenchmarkAppend measures Log.Append as the event loop calls it, one 1 KiB entry per op.
//
// Loop: the cost of Append alone (ns/op, B/op, allocs/op): every 256 appends (a typical
// group commit) the timer stops while the log is synced, as the disk worker would do
// concurrently, so the pending batch stays small. Sustained: appends as fast as possible while
// another goroutine calls Sync in a loop; the rate is then bounded by the disk (back-pressure),
// and allocations count the syncer's too.
//
//	go test -run='^$' -bench='^BenchmarkAppend$' -benchtime=3s ./broker/diskfile/
func BenchmarkAppend(b *testing.B) {
	payload := benchPayload(7)
	b.Run("Loop", func(b *testing.B) {
		l := openBenchLog(b)
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := l.Append(payload); err != nil {
				b.Fatal(err)
			}
			if i%256 == 255 {
				b.StopTimer()
				if err := l.Sync(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		}
	})
	b.Run("Sustained", func(b *testing.B) {
		l := openBenchLog(b)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := l.Sync(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := l.Append(payload); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		close(stop)
		wg.Wait()
	})
}

// benchPayload is a 1 KiB entry with a byte pattern set by step.
func benchPayload(step int) []byte {
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte(i * step)
	}
	return payload
}

// openBenchLog opens a commit log on a fresh directory, closed when the benchmark ends.
func openBenchLog(b *testing.B) node.Log {
	d, err := Open(b.TempDir(), Options{Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	l, err := d.OpenLog("commitlog")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}
