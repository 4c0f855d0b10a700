package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// shortDelayLevels makes level n wait n seconds (levels 1..6; 7..18 reuse short delays), so
// delay tests stay short.
const shortDelayLevels = "1s 2s 3s 4s 5s 6s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s"

// Tolerances for delayed delivery: never before the delay (the store keeps milliseconds, so
// a due time can round down by up to 1 ms), at most delayLate after it, generous for a loaded
// machine.
const (
	delayEarly = 5 * time.Millisecond
	delayLate  = 4 * time.Second
)

// delayedSend is one delayed message as sent.
type delayedSend struct {
	body   string
	level  int
	queue  int
	sentAt time.Time // just before SendSync
}

// msgDelivery is one delivery as the consumer saw it.
type msgDelivery struct {
	msg *primitive.MessageExt
	at  time.Time
}

// recordDeliveries returns a consume callback recording every delivery by body, and a snapshot func.
func recordDeliveries() (func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), func() map[string][]msgDelivery) {
	var mu sync.Mutex
	got := map[string][]msgDelivery{}
	cb := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)] = append(got[string(m.Body)], msgDelivery{m, now})
		}
		return consumer.ConsumeSuccess, nil
	}
	snap := func() map[string][]msgDelivery {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string][]msgDelivery, len(got))
		for k, v := range got {
			out[k] = append([]msgDelivery(nil), v...)
		}
		return out
	}
	return cb, snap
}

// sendDelayed sends one message per level with DelayTimeLevel, body "<prefix>-<i>-L<level>".
func sendDelayed(t *testing.T, c *compatCluster, topic, prefix string, levels ...int) []delayedSend {
	t.Helper()
	p := c.newProducer(t)
	var out []delayedSend
	for i, lv := range levels {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s-%d-L%d", prefix, i, lv)))
		m.WithTag("Delayed")
		m.WithProperty("level", fmt.Sprint(lv))
		m.WithDelayTimeLevel(lv)
		sentAt := time.Now()
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("delayed send level %d: %v %v", lv, res, err)
		}
		out = append(out, delayedSend{body: string(m.Body), level: lv, queue: res.MessageQueue.QueueId, sentAt: sentAt})
	}
	return out
}

// checkDelivery checks one delayed message was delivered once, as sent, to the queue it was
// sent to, without DELAY, and re-put by the broker (store timestamp) within [due-early,
// latest]. The consumer cannot have seen it before it was re-put.
func checkDelivery(t *testing.T, s delayedSend, got []msgDelivery, topic string, latest time.Time) {
	t.Helper()
	due := s.sentAt.Add(time.Duration(s.level) * time.Second)
	if len(got) != 1 {
		t.Errorf("%s delivered %d times, want once", s.body, len(got))
		return
	}
	m, at := got[0].msg, got[0].at
	stored := time.UnixMilli(m.StoreTimestamp)
	switch {
	case m.Topic != topic || m.Queue.QueueId != s.queue:
		t.Errorf("%s delivered from %s/%d, sent to %s/%d", s.body, m.Topic, m.Queue.QueueId, topic, s.queue)
	case m.GetTags() != "Delayed" || m.GetProperty("level") != fmt.Sprint(s.level):
		t.Errorf("%s lost its tag or property: tags %q level %q", s.body, m.GetTags(), m.GetProperty("level"))
	case m.GetProperty(primitive.PropertyDelayTimeLevel) != "":
		t.Errorf("%s delivered with DELAY=%s still set", s.body, m.GetProperty(primitive.PropertyDelayTimeLevel))
	case stored.Before(due.Add(-delayEarly)) || at.Before(due.Add(-delayEarly)):
		t.Errorf("%s (level %d) delivered early: re-put %v and received %v after the send, want at least %ds",
			s.body, s.level, stored.Sub(s.sentAt), at.Sub(s.sentAt), s.level)
	case stored.After(latest):
		t.Errorf("%s (level %d) re-put late: %v after the send, latest allowed %v", s.body, s.level,
			stored.Sub(s.sentAt), latest.Sub(s.sentAt))
	}
}

// Delayed messages of levels 1, 2 and 3 (1 s, 2 s, 3 s here) are invisible to a consumer that
// is already running until their delay has passed, then delivered once, as sent, within the
// tolerance.
func TestCompatDelayLevels(t *testing.T) {
	t.Parallel()
	c := startCompat(t, "--delay-levels", shortDelayLevels)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 2)
	cb, snap := recordDeliveries()
	pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, cb); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	sent := sendDelayed(t, c, topic, "d", 3, 1, 2, 1)
	waitFor(t, 3*time.Second+delayLate+2*time.Second, "every delayed message delivered", func() bool {
		return len(snap()) == len(sent)
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would show up here
	got := snap()
	for _, s := range sent {
		checkDelivery(t, s, got[s.body], topic, s.sentAt.Add(time.Duration(s.level)*time.Second+delayLate))
	}
}

// Delayed messages pending while the broker stops (cleanly, or killed) are delivered after it
// comes back: those whose time came during the downtime promptly after the restart, the others
// on time; each exactly once.
func TestCompatDelayAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, c *compatCluster)
	}{
		{"clean", func(t *testing.T, c *compatCluster) { c.Stop(t) }},
		{"killed", func(t *testing.T, c *compatCluster) {
			if err := c.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-c.proc.exited
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startCompat(t, "--delay-levels", shortDelayLevels)
			topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
			c.createTopic(t, topic, 2)
			sent := sendDelayed(t, c, topic, "r", 1, 5, 6)
			tc.stop(t, c)
			time.Sleep(1500 * time.Millisecond) // level 1 falls due while the broker is down
			c.proc = startDev(t, c.Data, c.NameServer, c.Broker, c.extra...)
			restarted := time.Now()
			c.waitRouted(t, topic, 2)

			cb, snap := recordDeliveries()
			pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
			if err := pc.Subscribe(topic, consumer.MessageSelector{}, cb); err != nil {
				t.Fatal(err)
			}
			if err := pc.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 6*time.Second+delayLate+5*time.Second, "every delayed message delivered after the restart", func() bool {
				return len(snap()) == len(sent)
			})
			time.Sleep(500 * time.Millisecond)
			got := snap()
			checkDelivery(t, sent[0], got[sent[0].body], topic, restarted.Add(delayLate))
			for _, s := range sent[1:] {
				checkDelivery(t, s, got[s.body], topic, s.sentAt.Add(time.Duration(s.level)*time.Second+delayLate))
			}
		})
	}
}

// waitRouted waits until the name server routes topic with the given number of queues (after
// a restart the broker registers again).
func (c *compatCluster) waitRouted(t *testing.T, topic string, queues int) {
	t.Helper()
	a := c.newAdmin(t)
	waitFor(t, 20*time.Second, "topic "+topic+" routed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		mqs, err := a.FetchPublishMessageQueues(ctx, topic)
		return err == nil && len(mqs) == queues
	})
}
