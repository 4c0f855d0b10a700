package main

import (
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
)

// Clustering: consumers of one group split the queues and every message is consumed once
// across them; when a consumer joins or leaves, the broker tells the group
// (NOTIFY_CONSUMER_IDS_CHANGED), it rebalances at once (not at its 20 s timer), and messages
// sent afterwards are again consumed exactly once.
func TestCompatClusteringRebalance(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)
	probe := c.newProber(t, topic)
	log := newDeliveryLog()
	start := func(name string) interface{ Shutdown() error } {
		return c.startPush(t, group, name, topic, consumer.MessageSelector{}, log.listener(name),
			consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	}
	// settled waits for the group to settle on want; the periodic rebalance alone would take
	// up to 20 s, so settling well within that shows the broker's notification worked.
	settled := func(want ...string) map[int]string {
		t.Helper()
		began := time.Now()
		owners := probe.waitBalanced(t, log, 40*time.Second, want...)
		took := time.Since(began)
		t.Logf("settled on %v after %v: queue owners %v", want, took.Round(time.Millisecond), owners)
		if took > 15*time.Second {
			t.Errorf("settling on %v took %v: the group waited for its periodic rebalance, as if never notified", want, took)
		}
		return owners
	}
	phase := func(name string, owners map[int]string) {
		t.Helper()
		sent := sendBodies(t, p, topic, numbered(name, 40), nil)
		bodies := bodiesOf(sent)
		log.waitAll(t, 30*time.Second, name+" messages consumed", bodies)
		time.Sleep(300 * time.Millisecond) // a duplicate would show up here
		log.checkExactlyOnce(t, name, bodies)
		for _, m := range sent {
			if d := log.deliveries(m.body); len(d) > 0 && d[0].consumer != owners[m.queue] {
				t.Errorf("%s: %q on queue %d consumed by %s, but the group assigned that queue to %s",
					name, m.body, m.queue, d[0].consumer, owners[m.queue])
			}
		}
		t.Logf("%s: %s", name, describe(log.perConsumer(bodies)))
	}

	a := start("A")
	start("B")
	owners := settled("A", "B")
	phase("two", owners)

	start("C")
	owners = settled("A", "B", "C")
	phase("three", owners)

	if err := a.Shutdown(); err != nil {
		t.Fatalf("shut down A: %v", err)
	}
	owners = settled("B", "C")
	phase("after-A-left", owners)
}

// Broadcasting: every consumer of the group receives every message, once each.
func TestCompatBroadcasting(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	logs := map[string]*deliveryLog{"A": newDeliveryLog(), "B": newDeliveryLog()}
	for name, log := range logs {
		c.startPush(t, group, name, topic, consumer.MessageSelector{}, log.listener(name),
			consumer.WithConsumerModel(consumer.BroadCasting), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	}
	began := time.Now()
	sent := bodiesOf(sendBodies(t, c.newProducer(t), topic, numbered("m", 40), nil))
	sentAfter := time.Since(began)
	for name, log := range logs {
		log.waitAll(t, 30*time.Second, "every message consumed by "+name, sent)
	}
	t.Logf("sent in %v, all consumed by both after %v", sentAfter.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond) // a duplicate would show up here
	for name, log := range logs {
		log.checkExactlyOnce(t, "broadcast to "+name, sent)
	}
}

// Where a new consumer group starts: CONSUME_FROM_FIRST_OFFSET reads everything,
// CONSUME_FROM_LAST_OFFSET (GET_MAX_OFFSET) only what is sent after it started, and
// CONSUME_FROM_TIMESTAMP (SEARCH_OFFSET_BY_TIMESTAMP) what was stored from that time on. The
// topic is old for the broker (--recent-head-entries 1): on a young one a new group starts at
// offset 0 whatever it asks, as from a Java broker (TestCompatNewGroupOnYoungTopic).
func TestCompatConsumeFromWhere(t *testing.T) {
	t.Parallel()
	c := startCompat(t, "--recent-head-entries", "1")
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)
	old := bodiesOf(sendBodies(t, p, topic, numbered("old", 12), nil))
	// The client takes the timestamp in whole seconds (yyyyMMddHHmmss, UTC): the cut is the
	// next second boundary, after every old message was stored.
	cut := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(cut) + 50*time.Millisecond)
	mid := bodiesOf(sendBodies(t, p, topic, numbered("mid", 12), nil))

	logs := map[string]*deliveryLog{"first": newDeliveryLog(), "last": newDeliveryLog(), "timestamp": newDeliveryLog()}
	where := map[string][]consumer.Option{
		"first":     {consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)},
		"last":      {consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset)},
		"timestamp": {consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp), consumer.WithConsumeTimestamp(cut.UTC().Format("20060102150405"))},
	}
	for name, opts := range where {
		c.startPush(t, uniqueName(t, "cg-"+name), name, topic, consumer.MessageSelector{}, logs[name].listener(name), opts...)
	}
	// Messages sent before the last-offset consumer has looked up its start offsets would be
	// missed by design: wait until it receives a probe on every queue.
	c.newProber(t, topic).waitBalanced(t, logs["last"], 30*time.Second, "last")
	fresh := bodiesOf(sendBodies(t, p, topic, numbered("new", 12), nil))

	cases := []struct {
		name       string
		want, none []string
	}{
		{"first", append(append(append([]string{}, old...), mid...), fresh...), nil},
		{"timestamp", append(append([]string{}, mid...), fresh...), old},
		{"last", fresh, append(append([]string{}, old...), mid...)},
	}
	for _, tc := range cases {
		logs[tc.name].waitAll(t, 30*time.Second, tc.name+": its messages consumed", tc.want)
	}
	time.Sleep(300 * time.Millisecond)
	for _, tc := range cases {
		logs[tc.name].checkExactlyOnce(t, tc.name, tc.want)
		for _, b := range tc.none {
			if d := logs[tc.name].deliveries(b); len(d) > 0 {
				t.Errorf("%s: consumed %q, which it should start after", tc.name, b)
			}
		}
	}
}

// A consumer group's offsets are kept by the broker: a new consumer of the group resumes where
// the previous one stopped (nothing lost, nothing consumed again, although it is told to start
// from the first offset), and so does one started after the broker restarted.
func TestCompatOffsetsSurviveRestarts(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	log := newDeliveryLog()
	var all []string
	round := func(name string, p rocketmq.Producer) {
		t.Helper()
		bodies := bodiesOf(sendBodies(t, p, topic, numbered(name, 20), nil))
		pc := c.startPush(t, group, name, topic, consumer.MessageSelector{}, log.listener(name),
			consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		log.waitAll(t, 30*time.Second, name+": its messages consumed", bodies)
		time.Sleep(500 * time.Millisecond)    // the client moves its offset after the callback returns
		if err := pc.Shutdown(); err != nil { // commits the offsets (UPDATE_CONSUMER_OFFSET)
			t.Fatalf("shut down %s: %v", name, err)
		}
		log.checkExactlyOnce(t, name, bodies)
		if again := log.perConsumer(all)[name]; again > 0 {
			t.Errorf("%s consumed %d messages an earlier consumer of the group had consumed", name, again)
		}
		all = append(all, bodies...)
	}
	p := c.newProducer(t)
	round("first", p)
	round("after-consumer-restart", p)
	time.Sleep(300 * time.Millisecond) // the last commit is sent without waiting for an answer
	c.Restart(t)
	c.waitRoute(t, topic, 4)
	round("after-broker-restart", c.newProducer(t))
}
