package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/sluicemq/sluice/broker/codec"
)

// sql92Messages sends n messages: message i has property a = i (except every sixth, which has
// no a), color red, green or blue in turn, and tag TagA or TagB in turn.
func sql92Messages(t *testing.T, c *compatCluster, topic string, n int) []sentMessage {
	t.Helper()
	return sendBodies(t, c.newProducer(t), topic, numbered("m", n), func(i int, m *primitive.Message) {
		if i%6 != 5 {
			m.WithProperty("a", strconv.Itoa(i))
		}
		m.WithProperty("color", []string{"red", "green", "blue"}[i%3])
		m.WithTag([]string{"TagA", "TagB"}[i%2])
	})
}

// sql92Selector is a push consumer's SQL92 expression and, written out in Go, which of
// sql92Messages it selects.
type sql92Selector struct {
	name, expr string
	orderly    bool
	match      func(i int) bool
}

// The official push consumer subscribing with a SQL92 selector (consumer.MessageSelector{Type:
// consumer.SQL92}) receives exactly the messages whose properties match, TAGS among them, once
// each; an orderly one receives them in queue order. The group's offsets move past the
// messages that do not match. So does the lite-pull consumer.
func TestCompatSQL92Filter(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	const n = 60
	sent := sql92Messages(t, c, topic, n)

	selectors := []sql92Selector{
		{name: "range", orderly: true, expr: "a > 20 AND color IN ('red', 'blue')",
			match: func(i int) bool { return i%6 != 5 && i > 20 && i%3 != 1 }},
		{name: "tags", expr: "TAGS = 'TagB' AND (a BETWEEN 10 AND 30 OR a IS NULL)",
			match: func(i int) bool { return i%2 == 1 && (i%6 == 5 || i >= 10 && i <= 30) }},
		{name: "not", expr: "NOT (color = 'green') AND a <> 7 AND a < 12.5",
			match: func(i int) bool { return i%6 != 5 && i%3 != 1 && i != 7 && i <= 12 }},
	}
	type running struct {
		sql92Selector
		group string
		log   *deliveryLog
		stop  func() error
		want  []string
	}
	var all []*running
	for _, s := range selectors {
		r := &running{sql92Selector: s, group: uniqueName(t, "cg-"+s.name), log: newDeliveryLog()}
		opts := []consumer.Option{consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)}
		if s.orderly {
			opts = append(opts, consumer.WithConsumerOrder(true))
		}
		pc := c.startPush(t, r.group, s.name, topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: s.expr},
			r.log.listener(s.name), opts...)
		r.stop = pc.Shutdown
		for i, m := range sent {
			if s.match(i) {
				r.want = append(r.want, m.body)
			}
		}
		if len(r.want) == 0 || len(r.want) == n {
			t.Fatalf("%s: selects %d of %d messages; a filter test needs some of each", s.name, len(r.want), n)
		}
		all = append(all, r)
	}
	// The lite-pull consumer (Poll) sends its expression in every pull, labelled TAG whatever
	// the selector; the broker knows the group registered it as SQL92.
	lite := &running{sql92Selector: selectors[1], group: uniqueName(t, "cg-lite"), log: newDeliveryLog(), want: all[1].want}
	lite.name += "-lite"
	pollInto(t, c.newPullConsumer(t, lite.group, topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: lite.expr},
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)), lite.log, lite.name)
	all = append(all, lite)
	for _, r := range all {
		r.log.waitAll(t, 30*time.Second, r.name+": the matching messages consumed", r.want)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate or a stray message would show up here
	for _, r := range all {
		r.log.checkExactlyOnce(t, r.name, r.want)
		for i, m := range sent {
			if d := r.log.deliveries(m.body); !r.match(i) && len(d) > 0 {
				t.Errorf("%s (%s): received %s, which does not match", r.name, r.expr, m.body)
			}
		}
		t.Logf("%s: %q selected %d of %d messages", r.name, r.expr, len(r.want), n)
		if r.orderly {
			checkQueueOrder(t, r.name, r.log, r.want)
		}
	}

	// Offsets: a consumer that shuts down commits where it stands: past the last message it
	// consumed on every queue, the ones that did not match skipped on the way. (Past a queue's
	// trailing non-matching messages only once its next long poll returns, as with a Java
	// broker: the client commits consumed messages, and moves on by nextBeginOffset later.)
	r := all[0]
	ends, lastMatch := map[int]int64{}, map[int]int64{}
	for i, m := range sent {
		ends[m.queue] = max(ends[m.queue], m.offset+1)
		if r.match(i) {
			lastMatch[m.queue] = max(lastMatch[m.queue], m.offset+1)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatalf("shut down %s: %v", r.name, err)
	}
	committed := func() map[int]int64 {
		out := map[int]int64{}
		for q := range ends {
			if off, ok := queryOffset(t, c, r.group, topic, q); ok {
				out[q] = off
			}
		}
		return out
	}
	waitFor(t, 10*time.Second, r.name+": offsets committed on every queue", func() bool { return len(committed()) == len(ends) })
	got := committed()
	for q, end := range ends {
		if got[q] < lastMatch[q] || got[q] > end {
			t.Errorf("%s: queue %d committed at %d; want from %d (after its last match) to %d (its end)", r.name, q, got[q], lastMatch[q], end)
		}
	}
	t.Logf("%s: committed %v; last matches end at %v, queues at %v", r.name, got, lastMatch, ends)
}

// checkQueueOrder checks that the messages of each queue were delivered in queue order.
func checkQueueOrder(t *testing.T, name string, log *deliveryLog, bodies []string) {
	t.Helper()
	var ds []delivery
	for _, b := range bodies {
		ds = append(ds, log.deliveries(b)...)
	}
	slices.SortFunc(ds, func(a, b delivery) int { return a.seq - b.seq })
	last := map[int]int64{}
	for _, d := range ds {
		if prev, ok := last[d.queue]; ok && d.offset <= prev {
			t.Errorf("%s: queue %d delivered offset %d after offset %d", name, d.queue, d.offset, prev)
		}
		last[d.queue] = d.offset
	}
}

// queryOffset asks the broker for a group's committed offset (QUERY_CONSUMER_OFFSET); false if
// it has none.
func queryOffset(t *testing.T, c *compatCluster, group, topic string, queue int) (int64, bool) {
	t.Helper()
	resp := rawRequest(t, c.Broker, codec.NewRequest(codec.ReqQueryConsumerOffset,
		codec.EncodeHeader(&codec.QueryConsumerOffsetHeader{ConsumerGroup: group, Topic: topic, QueueID: int64(queue)}), nil))
	if resp.Code != codec.Success {
		return 0, false
	}
	h, err := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
	return h.Offset, err == nil
}

// rawGroupPull is a PULL_MESSAGE as the push consumer sends it (the group's subscription comes
// from its heartbeats), at offset 0 of a queue.
func rawGroupPull(t *testing.T, c *compatCluster, group, topic string, queue int) *codec.Command {
	t.Helper()
	return rawRequest(t, c.Broker, codec.NewRequest(codec.ReqPullMessage, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue), "queueOffset": "0",
		"maxMsgNums": "32", "sysFlag": "2", "commitOffset": "-1", "suspendTimeoutMillis": "0",
		"subscription": "", "subVersion": "0", "expressionType": "TAG"}, nil))
}

// A SQL92 selector that does not parse: the official push consumer starts (it does not check
// the expression, and the broker accepts its heartbeat as Java does), the broker logs the
// expression and answers every pull SUBSCRIPTION_PARSE_FAILED with the parser's message (the
// client logs it and retries every 3 s), nothing is delivered and no offset moves. A consumer
// of the group with a good selector then receives every message it selects: none was lost.
// The official pull consumer's PullFrom returns the broker's error to its caller.
func TestCompatSQL92BadExpression(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	sent := sql92Messages(t, c, topic, 24)
	const bad = "a > AND color = 'red'"
	log := newDeliveryLog()
	pc := c.startPush(t, group, "bad", topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: bad},
		log.listener("bad"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))

	waitFor(t, 10*time.Second, "the broker to log the refused expression", func() bool {
		return strings.Contains(c.proc.stderr.String(), "consumer subscribed with an expression the broker refuses")
	})
	logged := c.proc.stderr.String()
	if !strings.Contains(logged, group) || !strings.Contains(logged, `a > AND color = 'red'`) {
		t.Errorf("the broker's log does not name the group and the expression:\n%s", logged)
	}
	t.Logf("broker log: %s", lineContaining(logged, "refuses"))
	resp := rawGroupPull(t, c, group, topic, 0)
	if resp.Code != codec.SubscriptionParseFailed || !strings.Contains(resp.Remark, "parse the consumer's subscription failed") ||
		!strings.Contains(resp.Remark, "at offset 4") || resp.Ext("nextBeginOffset") != "0" || len(resp.Body) != 0 {
		t.Errorf("a pull of the group: code %d remark %q next %s body %d bytes; want 23 with the parser's message, next 0, no body",
			resp.Code, resp.Remark, resp.Ext("nextBeginOffset"), len(resp.Body))
	}
	t.Logf("pull answer: code %d remark %q", resp.Code, resp.Remark)

	// The pull consumer's PullFrom sends the selector in the request: the error comes back.
	puller := c.newPullConsumer(t, uniqueName(t, "cg-pull"), topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: bad})
	mqs, err := puller.GetTopicRouteInfo(topic)
	if err != nil || len(mqs) == 0 {
		t.Fatalf("queues of %s: %v", topic, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = puller.PullFrom(ctx, mqs[0], 0, 8)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "23") || !strings.Contains(err.Error(), "parse the consumer's subscription failed") {
		t.Errorf("PullFrom with a bad selector: %v; want the broker's SUBSCRIPTION_PARSE_FAILED", err)
	}
	t.Logf("PullFrom: %v", err)

	time.Sleep(3500 * time.Millisecond) // the push consumer has retried its pulls by now
	if got := log.perConsumer(bodiesOf(sent))["bad"]; got != 0 {
		t.Errorf("the consumer with a bad selector received %d messages", got)
	}
	if err := pc.Shutdown(); err != nil {
		t.Fatalf("shut down: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the offset commit on shutdown is not waited for
	for q := range 4 {
		if off, ok := queryOffset(t, c, group, topic, q); ok && off != 0 {
			t.Errorf("queue %d: the group's offset moved to %d although nothing was delivered", q, off)
		}
	}

	good := newDeliveryLog()
	c.startPush(t, group, "good", topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: "color = 'red'"},
		good.listener("good"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	var red []string
	for i, m := range sent {
		if i%3 == 0 {
			red = append(red, m.body)
		}
	}
	good.waitAll(t, 30*time.Second, "the group's next consumer receives the messages the bad one could not", red)
	time.Sleep(300 * time.Millisecond)
	good.checkExactlyOnce(t, "good", red)
	if got, want := len(good.perConsumer(bodiesOf(sent))), 1; got != want || good.perConsumer(bodiesOf(sent))["good"] != len(red) {
		t.Errorf("the good consumer received %v, want exactly the %d red messages", good.perConsumer(bodiesOf(sent)), len(red))
	}
}

// With property filters off (--enable-property-filter=false, Java's enablePropertyFilter), a
// SQL92 consumer's pulls are refused with Java's answer and nothing is delivered or skipped.
func TestCompatSQL92Disabled(t *testing.T) {
	t.Parallel()
	c := startCompat(t, "--enable-property-filter=false")
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	sent := sql92Messages(t, c, topic, 12)
	log := newDeliveryLog()
	c.startPush(t, group, "sql", topic, consumer.MessageSelector{Type: consumer.SQL92, Expression: "a > 3"},
		log.listener("sql"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	var resp *codec.Command
	waitFor(t, 10*time.Second, "the group's heartbeat", func() bool {
		resp = rawGroupPull(t, c, group, topic, 0)
		return resp.Code != codec.SubscriptionNotExist && resp.Code != codec.Success
	})
	if resp.Code != codec.SystemError || resp.Remark != "The broker does not support consumer to filter message by SQL92" {
		t.Errorf("a pull of the group: code %d remark %q; want 1 and Java's remark", resp.Code, resp.Remark)
	}
	time.Sleep(3500 * time.Millisecond)
	if got := log.perConsumer(bodiesOf(sent))["sql"]; got != 0 {
		t.Errorf("received %d messages with property filters off", got)
	}
	for q := range 4 {
		if off, ok := queryOffset(t, c, group, topic, q); ok && off != 0 {
			t.Errorf("queue %d: the group's offset moved to %d", q, off)
		}
	}
}

func lineContaining(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
