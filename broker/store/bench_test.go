package store

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/diskfile"
)

// BenchmarkDurableAppend measures durable appends of 1 KiB messages through the store on real
// files, from 64 concurrent appenders, each acknowledged only after the fsync that covers it.
// The store is driven as the broker's event loop drives it (one goroutine at a time, under a
// mutex here). Two ways side by side in one run:
//
//   - group-commit: the broker's policy: one fsync in flight through diskfile.Syncer; every
//     append that arrived meanwhile is covered by the next one.
//   - fsync-per-message: the baseline: each append is followed by its own fsync.
func BenchmarkDurableAppend(b *testing.B) {
	const appenders = 64
	body := bytes.Repeat([]byte("x"), 1024)
	newStore := func(b *testing.B) *Store {
		d, err := diskfile.Open(b.TempDir(), diskfile.Options{})
		if err != nil {
			b.Fatal(err)
		}
		s, err := Open(d, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CreateTopic(TopicConfig{Name: "Bench", ReadQueueNums: 8, WriteQueueNums: 8, Perm: PermReadWrite}); err != nil {
			b.Fatal(err)
		}
		return s
	}
	msg := func(i int) *codec.Message {
		return &codec.Message{Topic: "Bench", QueueID: int32(i % 8), Body: body, Properties: "UNIQ_KEY\x01x\x02"}
	}
	run := func(b *testing.B, appendDurably func(s *Store, m *codec.Message)) {
		s := newStore(b)
		defer s.Close()
		var wg sync.WaitGroup
		per := b.N/appenders + 1
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		start := time.Now()
		for a := 0; a < appenders; a++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					appendDurably(s, msg(i))
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(per*appenders)/time.Since(start).Seconds(), "msgs/s")
	}

	b.Run("group-commit", func(b *testing.B) {
		var loop sync.Mutex // stands for the broker's event loop
		syncer := diskfile.NewSyncer()
		defer syncer.Close()
		// The broker's group-commit state: at most one sync in flight.
		var inFlight, wanted bool
		waiters := map[uint64][]chan struct{}{}
		var request func(s *Store)
		request = func(s *Store) {
			if inFlight {
				wanted = true
				return
			}
			inFlight = true
			cl := s.CommitLog()
			syncer.Request(cl, cl.LastIndex(), func(upTo uint64, err error) {
				if err != nil {
					b.Error(err)
				}
				// Posted back to the loop.
				go func() {
					loop.Lock()
					defer loop.Unlock()
					inFlight = false
					s.Confirm(max(upTo, s.Confirmed()))
					for idx, ws := range waiters {
						if idx <= upTo {
							for _, w := range ws {
								close(w)
							}
							delete(waiters, idx)
						}
					}
					if wanted || len(waiters) > 0 {
						wanted = false
						request(s)
					}
				}()
			})
		}
		run(b, func(s *Store, m *codec.Message) {
			loop.Lock()
			res, err := s.Append(m)
			if err != nil {
				loop.Unlock()
				b.Fatal(err)
			}
			done := make(chan struct{})
			waiters[res.Index] = append(waiters[res.Index], done)
			request(s)
			loop.Unlock()
			<-done
		})
	})
	b.Run("fsync-per-message", func(b *testing.B) {
		var loop sync.Mutex
		run(b, func(s *Store, m *codec.Message) {
			loop.Lock()
			defer loop.Unlock()
			res, err := s.Append(m)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.CommitLog().Sync(); err != nil {
				b.Fatal(err)
			}
			s.Confirm(res.Index)
		})
	})
}
