package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
)

// retryDelayLevels makes the retry levels 3, 4 and 5 wait 1 s, 3 s and 5 s: far enough apart
// that a retry at the wrong level shows.
const retryDelayLevels = "1s 1s 1s 3s 5s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s"

// retryRePutLate bounds how long after a failed consumption the broker re-puts the retry:
// the level's delay plus the client's send-back round trip.
const retryRePutLate = 1500 * time.Millisecond

// consumeAttempt is one consumption of a message.
type consumeAttempt struct {
	at             time.Time
	topic          string // as the callback sees it
	pulledFrom     string // the queue's topic it was pulled from
	stored         time.Time
	reconsumeTimes int32
	msgID          string
}

// A push consumer that answers ConsumeRetryLater for some messages gets each of them again
// from %RETRY%<group>, reported under the original topic, with ReconsumeTimes counting up and
// a growing delay (levels 3, 4, 5); after WithMaxReconsumeTimes(3) failures the message lands
// in %DLQ%<group>, where a second consumer finds exactly the failed messages, as sent. Messages
// consumed successfully are delivered once and never retried.
func TestCompatRetryThenDeadLetter(t *testing.T) {
	t.Parallel()
	c := startCompat(t, "--delay-levels", retryDelayLevels)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 2)
	// The broker creates %RETRY%<group> on the group's first heartbeat, but the official client
	// looks its route up once at Start, before that heartbeat, and then only every 30 s: with a
	// new group it would not pull its retries for up to 30 s (a Java broker behaves the same).
	// Creating the retry topic first, as an operator may, keeps the test short.
	c.createTopic(t, "%RETRY%"+group, 1)
	const maxReconsume = 3
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("what the broker holds:\n%s", dumpQueues(c, map[string]int{topic: 2, "%RETRY%" + group: 1,
				"%DLQ%" + group: 1, "SCHEDULE_TOPIC_XXXX": 6}))
		}
	})
	retryDelays := []time.Duration{time.Second, 3 * time.Second, 5 * time.Second} // levels 3, 4, 5

	var mu sync.Mutex
	attempts := map[string][]consumeAttempt{}
	pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithMaxReconsumeTimes(maxReconsume))
	err := pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		result := consumer.ConsumeSuccess
		for _, m := range msgs {
			body := string(m.Body)
			attempts[body] = append(attempts[body], consumeAttempt{time.Now(), m.Topic, m.Queue.Topic, time.UnixMilli(m.StoreTimestamp), m.ReconsumeTimes, m.MsgId})
			if strings.HasPrefix(body, "fail-") {
				result = consumer.ConsumeRetryLater
			}
		}
		return result, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}

	p := c.newProducer(t)
	sent := map[string]*primitive.Message{}
	ids := map[string]string{}
	for i, body := range []string{"fail-0", "ok-0", "fail-1", "ok-1", "fail-2"} {
		m := primitive.NewMessage(topic, []byte(body))
		m.WithTag("Tag" + body[:2])
		m.WithKeys([]string{fmt.Sprintf("key-%d", i)})
		m.WithProperty("user", body)
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %s: %v %v", body, res, err)
		}
		sent[body], ids[body] = m, res.MsgID
	}
	failing := []string{"fail-0", "fail-1", "fail-2"}

	total := retryDelays[0] + retryDelays[1] + retryDelays[2]
	waitFor(t, total+3*delayLate, "every failing message consumed 1+maxReconsumeTimes times", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range failing {
			if len(attempts[b]) < maxReconsume+1 {
				return false
			}
		}
		return true
	})

	// The dead letters, read by a consumer of another group.
	dlqTopic := "%DLQ%" + group
	c.waitRouted(t, dlqTopic, 1)
	dlqCB, dlqSnap := recordDeliveries()
	dc := c.newPushConsumer(t, uniqueName(t, "dlq"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := dc.Subscribe(dlqTopic, consumer.MessageSelector{}, dlqCB); err != nil {
		t.Fatal(err)
	}
	if err := dc.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every dead letter read from "+dlqTopic, func() bool { return len(dlqSnap()) >= len(failing) })
	time.Sleep(2 * time.Second) // a late retry or a stray dead letter would show up here

	mu.Lock()
	defer mu.Unlock()
	for _, b := range []string{"ok-0", "ok-1"} {
		if a := attempts[b]; len(a) != 1 || a[0].reconsumeTimes != 0 || a[0].pulledFrom != topic {
			t.Errorf("%s consumed successfully but delivered %d times: %+v", b, len(a), a)
		}
	}
	for _, b := range failing {
		a := attempts[b]
		if len(a) != maxReconsume+1 {
			t.Errorf("%s consumed %d times, want %d (once plus %d retries)", b, len(a), maxReconsume+1, maxReconsume)
			continue
		}
		for k, at := range a {
			wantFrom := topic
			if k > 0 {
				wantFrom = "%RETRY%" + group
			}
			if at.reconsumeTimes != int32(k) || at.topic != topic || at.pulledFrom != wantFrom || at.msgID != ids[b] {
				t.Errorf("%s attempt %d: reconsumeTimes %d topic %q pulled from %q msgId %s; want %d, %q, %q, %s",
					b, k, at.reconsumeTimes, at.topic, at.pulledFrom, at.msgID, k, topic, wantFrom, ids[b])
			}
			if k == 0 {
				continue
			}
			// The broker re-put it (store time) the level's delay after the failure; the consumer
			// got it then, give or take a loaded machine.
			rePut, gap, want := at.stored.Sub(a[k-1].at), at.at.Sub(a[k-1].at), retryDelays[k-1]
			if rePut < want-delayEarly || rePut > want+retryRePutLate {
				t.Errorf("%s retry %d re-put %v after the failure, want %v (delay level %d) within [-%v, +%v]",
					b, k, rePut, want, 2+k, delayEarly, retryRePutLate)
			}
			if gap < want-delayEarly || gap > want+delayLate {
				t.Errorf("%s retry %d consumed %v after the failure, want %v (delay level %d) within [-%v, +%v]",
					b, k, gap, want, 2+k, delayEarly, delayLate)
			}
		}
	}

	dead := dlqSnap()
	if len(dead) != len(failing) {
		t.Errorf("%s holds %d distinct messages, want exactly the %d failing ones: %v", dlqTopic, len(dead), len(failing), sortedKeys(dead))
	}
	for _, b := range failing {
		got := dead[b]
		if len(got) != 1 {
			t.Errorf("%s found %d times in %s, want once", b, len(got), dlqTopic)
			continue
		}
		m, want := got[0].msg, sent[b]
		switch {
		case m.Topic != dlqTopic:
			t.Errorf("%s dead letter read from topic %q", b, m.Topic)
		case m.MsgId != ids[b] || m.GetTags() != want.GetTags() || m.GetKeys() != want.GetKeys() || m.GetProperty("user") != b:
			t.Errorf("%s dead letter msgId %s tags %q keys %q user %q; sent %s %q %q", b, m.MsgId, m.GetTags(), m.GetKeys(),
				m.GetProperty("user"), ids[b], want.GetTags(), want.GetKeys())
		case m.ReconsumeTimes != maxReconsume+1:
			t.Errorf("%s dead letter reconsumeTimes %d, want %d", b, m.ReconsumeTimes, maxReconsume+1)
		case m.GetProperty(primitive.PropertyRetryTopic) != topic || m.GetProperty(primitive.PropertyOriginMessageId) == "":
			t.Errorf("%s dead letter RETRY_TOPIC %q ORIGIN_MESSAGE_ID %q", b, m.GetProperty(primitive.PropertyRetryTopic),
				m.GetProperty(primitive.PropertyOriginMessageId))
		case m.GetProperty(primitive.PropertyDelayTimeLevel) != "":
			t.Errorf("%s dead letter carries DELAY=%s", b, m.GetProperty(primitive.PropertyDelayTimeLevel))
		}
	}
}

// dumpQueues lists what each queue holds (body, reconsume times, store time), read with the
// project's own client: a failure report shows whether the broker or the client lost track.
func dumpQueues(c *compatCluster, queues map[string]int) string {
	reader, err := clientrt.Start(client.DefaultConfig(c.NameServer), quietLogger())
	if err != nil {
		return "cannot start a reader: " + err.Error()
	}
	defer reader.Close()
	var sb strings.Builder
	for _, topic := range slices.Sorted(maps.Keys(queues)) {
		for q := range queues[topic] {
			mq := client.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueID: int32(q)}
			res, err := reader.Pull(client.PullRequest{Queue: mq, Group: "dump", MaxMsgs: 256, Subscription: "*"})
			fmt.Fprintf(&sb, "%s/%d: status %d maxOffset %d err %v:", topic, q, res.Status, res.MaxOffset, err)
			for _, m := range res.Msgs {
				fmt.Fprintf(&sb, " %s(reconsume %d, stored %s)", m.Body, m.ReconsumeTimes,
					time.UnixMilli(m.StoreTimestamp).Format("15:04:05.000"))
			}
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
