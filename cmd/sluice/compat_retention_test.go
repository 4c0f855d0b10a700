package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// everyHour is a delete-when that makes retention due at any hour.
func everyHour() string {
	hours := make([]string, 24)
	for h := range hours {
		hours[h] = fmt.Sprint(h)
	}
	return strings.Join(hours, ";")
}

// TestCompatRetentionMovesConsumerForward: with a short file-reserved-time, the expired
// commit-log segments go; an official push consumer whose committed offset fell below the
// queue's new min offset is moved to it (PULL_OFFSET_MOVED), which the broker logs, and goes on
// consuming the messages sent since; a pull below the min offset is answered with the new
// offset.
func TestCompatRetentionMovesConsumerForward(t *testing.T) {
	c := startCompat(t, "--file-reserved-time=2s", "--delete-when="+everyHour(), "--log-level=info")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", c.proc.stderr.String())
		}
	})
	topic := uniqueName(t, "T")
	group := uniqueName(t, "cg")
	c.createTopic(t, topic, 1)
	p := c.newProducer(t)
	ctx := context.Background()
	send := func(body []byte) {
		t.Helper()
		res, err := p.SendSync(ctx, primitive.NewMessage(topic, body))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send: %v %v", res, err)
		}
	}

	// The group consumes three early messages, then stops with its offset at 3.
	early := numbered("early", 3)
	for _, b := range early {
		send([]byte(b))
	}
	log := newDeliveryLog()
	pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, log.listener("first")); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	log.waitAll(t, 30*time.Second, "early messages", early)
	if err := pc.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// More than a commit-log segment (4 MiB) of messages, then they expire. Random bodies:
	// the client compresses bodies over 4 KiB.
	big := make([]byte, 100<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 60 {
		for i := range big {
			big[i] = byte(rng.Uint32())
		}
		send(big)
	}
	time.Sleep(2500 * time.Millisecond)
	fresh := numbered("fresh", 5)
	for _, b := range fresh {
		send([]byte(b))
	}

	// Retention runs with the checkpoint (every 10 s): wait for the min offset to move past 3.
	pull := c.newPullConsumer(t, uniqueName(t, "probe"), topic, consumer.MessageSelector{})
	mq := &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}
	var minOffset int64
	waitFor(t, 60*time.Second, "retention to move the min offset", func() bool {
		res, err := pull.PullFrom(ctx, mq, 0, 8)
		if err != nil || res.Status != primitive.PullOffsetIllegal {
			return false
		}
		minOffset = res.NextBeginOffset
		return minOffset > 3
	})
	if minOffset > 63 {
		t.Fatalf("min offset %d: retention removed unexpired messages (the fresh ones start at 63)", minOffset)
	}
	res, err := pull.PullFrom(ctx, mq, minOffset, 8)
	if err != nil || res.Status != primitive.PullFound {
		t.Fatalf("pull at the new min offset %d: %v %v", minOffset, res, err)
	}

	// The group comes back behind the min offset: moved forward, it consumes the fresh ones.
	pc2 := c.newPushConsumer(t, group)
	if err := pc2.Subscribe(topic, consumer.MessageSelector{}, log.listener("second")); err != nil {
		t.Fatal(err)
	}
	if err := pc2.Start(); err != nil {
		t.Fatal(err)
	}
	log.waitAll(t, 30*time.Second, "fresh messages after the move", fresh)
	if stderr := c.proc.stderr.String(); !strings.Contains(stderr, "consumer behind the queue's oldest message moved forward") ||
		!strings.Contains(stderr, group) {
		t.Errorf("the broker did not log the consumer's jump:\n%s", stderr)
	}
	if stderr := c.proc.stderr.String(); !strings.Contains(stderr, "retention removed old messages") {
		t.Errorf("the broker did not log retention:\n%s", stderr)
	}
}
