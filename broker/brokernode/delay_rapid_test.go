package brokernode

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/simdisk"
	"pgregory.net/rapid"
)

// TestDelayRules drives a broker with random delayed sends, clock steps, fsync completions,
// crashes (losing any part of what was not synced) and clean restarts, and checks the delay
// rules against a model:
//   - never early: a delivered message was re-put no sooner than its send plus its level's delay
//     (levels beyond the table count as the last), and without DELAY;
//   - on time: whenever the broker is settled (fsyncs done, due timers fired), every
//     acknowledged message whose time has come is in its real queue, also right after a restart;
//   - never lost, and never twice unless a crash intervened (progress is persisted only after
//     the re-put is durable, so a crash may repeat a delivery but not drop one).
func TestDelayRules(t *testing.T) {
	levels := []time.Duration{time.Second, 3 * time.Second, 7 * time.Second}
	cfg := delayConfig(levels...)
	rapid.Check(t, func(rt *rapid.T) {
		type sent struct {
			at    time.Time
			delay time.Duration
			acked bool
		}
		disk := simdisk.New()
		h := startBroker(t, cfg, disk)
		conn := h.env.accept(h.b, "127.0.9.7:50000")
		msgs := map[string]*sent{}
		pending := map[int32]string{} // send opaque -> body, on the current broker
		crashed := false

		collectAcks := func() {
			for op, body := range pending {
				if r := h.answer(conn, op); r != nil {
					if r.Code != codec.Success {
						rt.Fatalf("send of %s answered %d (%s)", body, r.Code, r.Remark)
					}
					msgs[body].acked = true
					delete(pending, op)
				}
			}
		}
		check := func(settled bool) {
			seen := map[string]int{}
			for _, m := range h.queue("Orders", 0) {
				body := string(m.Body)
				s, ok := msgs[body]
				if !ok {
					rt.Fatalf("delivered %q, never sent", body)
				}
				if due := s.at.Add(s.delay).UnixMilli(); m.StoreTimestamp < due {
					rt.Fatalf("%s delivered %d ms early", body, due-m.StoreTimestamp)
				}
				if codec.Property(m.Properties, codec.PropDelay) != "" {
					rt.Fatalf("%s delivered with DELAY", body)
				}
				seen[body]++
			}
			if !settled {
				return
			}
			for body, s := range msgs {
				if s.acked && !s.at.Add(s.delay).After(h.env.Now()) && seen[body] == 0 {
					rt.Fatalf("%s (acknowledged, due %v ago) not delivered", body, h.env.Now().Sub(s.at.Add(s.delay)))
				}
				if !crashed && seen[body] > 1 {
					rt.Fatalf("%s delivered %d times without a crash", body, seen[body])
				}
			}
		}
		restart := func(down time.Duration) {
			h = startBrokerAt(t, cfg, disk, h.env.Now().Add(down))
			conn = h.env.accept(h.b, "127.0.9.7:50000")
			pending = map[int32]string{}
		}

		rt.Repeat(map[string]func(*rapid.T){
			"send": func(rt *rapid.T) {
				level := rapid.IntRange(1, len(levels)+1).Draw(rt, "level")
				body := "m" + strconv.Itoa(len(msgs))
				op := h.send(conn, "Orders", 0, body, map[string]string{codec.PropDelay: strconv.Itoa(level)})
				msgs[body] = &sent{at: h.env.Now(), delay: levels[min(level, len(levels))-1]}
				pending[op] = body
				collectAcks()
			},
			"advance": func(rt *rapid.T) {
				h.env.advance(h.b, time.Duration(rapid.Int64Range(0, 4000).Draw(rt, "ms"))*time.Millisecond)
				collectAcks()
				check(false)
			},
			"sync": func(rt *rapid.T) {
				h.completeSyncs()
				h.env.advance(h.b, 0)
				collectAcks()
				check(false)
			},
			"settle": func(rt *rapid.T) {
				h.settle()
				collectAcks()
				check(true)
			},
			"crash": func(rt *rapid.T) {
				disk.CrashWith(func(name string, unsynced uint64) (uint64, bool) {
					keep := rapid.Uint64Range(0, unsynced).Draw(rt, "keep "+name)
					return keep, keep > 0 && rapid.Bool().Draw(rt, "tear "+name)
				})
				crashed = true
				restart(time.Duration(rapid.Int64Range(0, 10000).Draw(rt, "down ms")) * time.Millisecond)
				h.settle()
				check(true)
			},
			"stop": func(rt *rapid.T) {
				h.settle()
				collectAcks()
				if err := h.b.Store().Close(); err != nil {
					rt.Fatalf("close: %v", err)
				}
				restart(time.Duration(rapid.Int64Range(0, 10000).Draw(rt, "down ms")) * time.Millisecond)
				h.settle()
				check(true)
			},
		})

		// Heal: everything acknowledged is delivered once the longest delay has passed.
		h.settle()
		collectAcks()
		h.wait(levels[len(levels)-1])
		check(true)
		for body, s := range msgs {
			if s.acked && s.at.Add(s.delay).After(h.env.Now()) {
				panic(fmt.Sprintf("%s still not due after the longest delay", body))
			}
		}
	})
}
