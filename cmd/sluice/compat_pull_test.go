package main

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/sluicemq/sluice/broker/codec"
)

// The pull consumer reads every queue with PullFrom up to the max offset the broker reports,
// which matches what was sent; offsets by time (SEARCH_OFFSET_BY_TIMESTAMP) bound the queue;
// a pull past the end is told where the end is. The lite-pull consumer (Subscribe, Start,
// Poll, ACK) receives every message once, and one starting from the last offset
// (GET_MAX_OFFSET) only the messages sent after it started (the topic is old for the broker,
// --recent-head-entries 1: see TestCompatConsumeFromWhere).
func TestCompatPullAndLitePull(t *testing.T) {
	t.Parallel()
	c := startCompat(t, "--recent-head-entries", "1")
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)
	sent := sendBodies(t, p, topic, numbered("m", 40), nil)
	perQueue := map[int]int64{}
	for _, m := range sent {
		perQueue[m.queue]++
	}

	pc := c.newPullConsumer(t, uniqueName(t, "cg-pull"), topic, consumer.MessageSelector{})
	mqs, err := pc.GetTopicRouteInfo(topic)
	if err != nil || len(mqs) != 4 {
		t.Fatalf("queues of %s: %v (%d)", topic, err, len(mqs))
	}
	got := map[string]int{}
	for _, mq := range mqs {
		msgs, _, maxOffset := pullQueue(t, pc, mq)
		if maxOffset != perQueue[mq.QueueId] {
			t.Errorf("queue %d: max offset %d, but %d messages were sent to it", mq.QueueId, maxOffset, perQueue[mq.QueueId])
		}
		for i, m := range msgs {
			got[string(m.Body)]++
			if m.QueueOffset != int64(i) || m.Queue.QueueId != mq.QueueId {
				t.Errorf("queue %d: message %d is %q at queue %d offset %d", mq.QueueId, i, m.Body, m.Queue.QueueId, m.QueueOffset)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := pc.PullFrom(ctx, mq, maxOffset+5, 8)
		cancel()
		if err != nil || res.Status != primitive.PullOffsetIllegal || res.NextBeginOffset != maxOffset {
			t.Errorf("queue %d: pull past the end: %+v %v; want OFFSET_ILLEGAL pointing at %d", mq.QueueId, res, err, maxOffset)
		}
		if off, err := pc.OffsetForTimestamp(mq, 0); err != nil || off != 0 {
			t.Errorf("queue %d: offset for time 0: %d %v, want 0", mq.QueueId, off, err)
		}
		if off, err := pc.OffsetForTimestamp(mq, time.Now().Add(time.Hour).UnixMilli()); err != nil || off != maxOffset {
			t.Errorf("queue %d: offset for an hour from now: %d %v, want the end %d", mq.QueueId, off, err, maxOffset)
		}
	}
	for _, m := range sent {
		if got[m.body] != 1 {
			t.Errorf("PullFrom returned %q %d times", m.body, got[m.body])
		}
	}

	lite := newDeliveryLog()
	pollInto(t, c.newPullConsumer(t, uniqueName(t, "cg-lite"), topic, consumer.MessageSelector{},
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)), lite, "lite")
	tail := newDeliveryLog()
	pollInto(t, c.newPullConsumer(t, uniqueName(t, "cg-tail"), topic, consumer.MessageSelector{},
		consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset)), tail, "tail")
	old := bodiesOf(sent)
	lite.waitAll(t, 30*time.Second, "lite pull: every message polled", old)
	// The tail consumer has looked up its start offsets once it polls a probe on every queue.
	c.newProber(t, topic).waitBalanced(t, tail, 30*time.Second, "tail")
	fresh := bodiesOf(sendBodies(t, p, topic, numbered("new", 12), nil))
	tail.waitAll(t, 30*time.Second, "tail: the new messages polled", fresh)
	lite.waitAll(t, 30*time.Second, "lite pull: the new messages polled", fresh)
	time.Sleep(300 * time.Millisecond)
	lite.checkExactlyOnce(t, "lite pull", append(old, fresh...))
	tail.checkExactlyOnce(t, "tail", fresh)
	if n := len(old) - len(tail.missing(old)); n > 0 {
		t.Errorf("the consumer starting from the last offset polled %d messages sent before it started", n)
	}
}

// Tag filtering: a subscription to "TagA || TagB" receives exactly the messages with those
// tags. The broker filters (the client filters again, so a pull's raw answer shows the
// broker's work): not even a tag whose hash equals TagA's reaches the client.
func TestCompatTagFiltering(t *testing.T) {
	t.Parallel()
	const collider = "TbHA" // 'a','g' -> 'b','H': the same Java String.hashCode as "TagA"
	if codec.TagsHash(collider) != codec.TagsHash("TagA") {
		t.Fatalf("%q does not collide with TagA", collider)
	}
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	tags := []string{"TagA", "TagB", "TagC", collider, ""}
	var bodies []string
	for i := range 8 {
		for _, tag := range tags {
			bodies = append(bodies, "m-"+tag+"-"+string(rune('a'+i)))
		}
	}
	sent := sendBodies(t, c.newProducer(t), topic, bodies, func(i int, m *primitive.Message) {
		if tag := tags[i%len(tags)]; tag != "" {
			m.WithTag(tag)
		}
	})
	var want, unwanted []string
	for i, m := range sent {
		if tag := tags[i%len(tags)]; tag == "TagA" || tag == "TagB" {
			want = append(want, m.body)
		} else {
			unwanted = append(unwanted, m.body)
		}
	}
	sel := consumer.MessageSelector{Type: consumer.TAG, Expression: "TagA || TagB"}

	log := newDeliveryLog()
	c.startPush(t, uniqueName(t, "cg-push"), "push", topic, sel, log.listener("push"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	log.waitAll(t, 30*time.Second, "every TagA and TagB message consumed", want)
	time.Sleep(500 * time.Millisecond)
	log.checkExactlyOnce(t, "push", want)
	for _, b := range want {
		if d := log.deliveries(b); len(d) > 0 && d[0].tags != "TagA" && d[0].tags != "TagB" {
			t.Errorf("%q delivered with tags %q", b, d[0].tags)
		}
	}
	if n := len(unwanted) - len(log.missing(unwanted)); n > 0 {
		t.Errorf("the push consumer received %d messages with other tags", n)
	}

	pc := c.newPullConsumer(t, uniqueName(t, "cg-pull"), topic, sel)
	mqs, err := pc.GetTopicRouteInfo(topic)
	if err != nil {
		t.Fatal(err)
	}
	pulled := 0
	for _, mq := range mqs {
		_, raw, _ := pullQueue(t, pc, mq)
		for _, m := range raw {
			if tag := m.GetTags(); tag != "TagA" && tag != "TagB" {
				t.Errorf("the broker sent %q with tags %q to a TagA || TagB subscription", m.Body, tag)
			}
		}
		pulled += len(raw)
	}
	if pulled != len(want) {
		t.Errorf("pull consumer got %d messages from the broker, want %d", pulled, len(want))
	}
}
