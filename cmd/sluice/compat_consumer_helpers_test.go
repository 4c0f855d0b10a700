package main

// Helpers for the consumer compatibility tests (compat_consumer_test.go and friends): a record
// of which consumer received which message, senders that say which queue each message went
// to, and a wait for a consumer group to settle on a queue assignment.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/sluicemq/sluice/broker/codec"
)

// delivery is one message handed to one consumer's callback.
type delivery struct {
	consumer string
	queue    int
	offset   int64
	tags     string
	seq      int // order of delivery across the whole log
}

// deliveryLog records, by message body (every test message has a unique body), each delivery
// to any consumer of a test.
type deliveryLog struct {
	mu  sync.Mutex
	got map[string][]delivery
	seq int
}

func newDeliveryLog() *deliveryLog { return &deliveryLog{got: map[string][]delivery{}} }

func (l *deliveryLog) record(consumerName string, msgs ...*primitive.MessageExt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		q := -1
		if m.Queue != nil {
			q = m.Queue.QueueId
		}
		l.seq++
		l.got[string(m.Body)] = append(l.got[string(m.Body)],
			delivery{consumer: consumerName, queue: q, offset: m.QueueOffset, tags: m.GetTags(), seq: l.seq})
	}
}

// listener is a push-consumer callback that records every message for consumerName.
func (l *deliveryLog) listener(consumerName string) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		l.record(consumerName, msgs...)
		return consumer.ConsumeSuccess, nil
	}
}

// deliveries returns a copy of the deliveries of body.
func (l *deliveryLog) deliveries(body string) []delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got[body])
}

// waitAll waits until every body has been delivered at least once.
func (l *deliveryLog) waitAll(t *testing.T, timeout time.Duration, what string, bodies []string) {
	t.Helper()
	waitFor(t, timeout, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, b := range bodies {
			if len(l.got[b]) == 0 {
				return false
			}
		}
		return true
	})
}

// missing lists the bodies never delivered.
func (l *deliveryLog) missing(bodies []string) []string {
	var out []string
	for _, b := range bodies {
		if len(l.deliveries(b)) == 0 {
			out = append(out, b)
		}
	}
	return out
}

// checkExactlyOnce reports every body delivered more than once (to anyone).
func (l *deliveryLog) checkExactlyOnce(t *testing.T, what string, bodies []string) {
	t.Helper()
	for _, b := range bodies {
		if d := l.deliveries(b); len(d) != 1 {
			t.Errorf("%s: message %q delivered %d times: %+v", what, b, len(d), d)
		}
	}
}

// perConsumer counts the deliveries of bodies by consumer.
func (l *deliveryLog) perConsumer(bodies []string) map[string]int {
	out := map[string]int{}
	for _, b := range bodies {
		for _, d := range l.deliveries(b) {
			out[d.consumer]++
		}
	}
	return out
}

// sentMessage is what a test sent: its unique body and where it went.
type sentMessage struct {
	body   string
	queue  int
	offset int64
}

func bodiesOf(msgs []sentMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.body
	}
	return out
}

// sendBodies sends one message per body (sync), each built by mk (nil: a plain message), and
// returns where each went.
func sendBodies(t *testing.T, p rocketmq.Producer, topic string, bodies []string, mk func(i int, m *primitive.Message)) []sentMessage {
	t.Helper()
	out := make([]sentMessage, 0, len(bodies))
	for i, b := range bodies {
		m := primitive.NewMessage(topic, []byte(b))
		if mk != nil {
			mk(i, m)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.SendSync(ctx, m)
		cancel()
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %q: %v %v", b, res, err)
		}
		out = append(out, sentMessage{body: b, queue: res.MessageQueue.QueueId, offset: res.QueueOffset})
	}
	return out
}

// numbered makes n bodies prefix-0 .. prefix-(n-1).
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// prober sends one probe message to each queue of a topic (a manual queue selector), to see
// which consumer currently serves which queue.
type prober struct {
	p      rocketmq.Producer
	topic  string
	queues []*primitive.MessageQueue
	round  int
}

func (c *compatCluster) newProber(t *testing.T, topic string) *prober {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mqs, err := c.newAdmin(t).FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(mqs) == 0 {
		t.Fatalf("queues of %s: %v (%d)", topic, err, len(mqs))
	}
	sort.Slice(mqs, func(i, j int) bool { return mqs[i].QueueId < mqs[j].QueueId })
	return &prober{p: c.newProducer(t, producer.WithQueueSelector(producer.NewManualQueueSelector())), topic: topic, queues: mqs}
}

// sendRound sends one probe to every queue and returns the probe bodies by queue id.
func (pr *prober) sendRound(t *testing.T) map[int]string {
	t.Helper()
	pr.round++
	out := map[int]string{}
	for _, q := range pr.queues {
		body := fmt.Sprintf("probe-%d-q%d", pr.round, q.QueueId)
		sendBodies(t, pr.p, pr.topic, []string{body}, func(_ int, m *primitive.Message) { m.Queue = q })
		out[q.QueueId] = body
	}
	return out
}

// waitBalanced sends probe rounds until two rounds in a row show the group settled: every
// queue's probe delivered exactly once, and the consumers that received them are exactly
// want. It returns which consumer serves each queue. Probes are not test messages: tests
// never count them.
func (pr *prober) waitBalanced(t *testing.T, log *deliveryLog, timeout time.Duration, want ...string) map[int]string {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(timeout)
	good := 0
	var last string
	for time.Now().Before(deadline) {
		probes := pr.sendRound(t)
		// Give the round time to arrive, and a duplicate time to show up.
		roundEnd := time.Now().Add(3 * time.Second)
		for time.Now().Before(roundEnd) && len(log.missing(slices.Collect(maps.Values(probes)))) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		owner := map[int]string{}
		ok := true
		for q, body := range probes {
			d := log.deliveries(body)
			if len(d) != 1 {
				ok = false
				continue
			}
			owner[q] = d[0].consumer
		}
		got := slices.Sorted(maps.Keys(invert(owner)))
		last = fmt.Sprintf("round %d: owners %v, consumers %v", pr.round, owner, got)
		if ok && slices.Equal(got, want) {
			good++
			if good == 2 {
				return owner
			}
		} else {
			good = 0
		}
	}
	t.Fatalf("the group did not settle on consumers %v within %v; last %s", want, timeout, last)
	return nil
}

func invert(m map[int]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

// startPush makes, subscribes and starts a push consumer named name (also its instance name,
// so each consumer is its own client with its own client id) in group.
func (c *compatCluster) startPush(t *testing.T, group, name, topic string, sel consumer.MessageSelector,
	f func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	opts = append([]consumer.Option{consumer.WithInstance(uniqueName(t, name))}, opts...)
	pc := c.newPushConsumer(t, group, opts...)
	if err := pc.Subscribe(topic, sel, f); err != nil {
		t.Fatalf("subscribe %s: %v", name, err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return pc
}

func describe(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// newPullConsumer makes an official pull consumer against c in group, subscribed to topic
// with sel and started; it is shut down when the test ends.
func (c *compatCluster) newPullConsumer(t *testing.T, group, topic string, sel consumer.MessageSelector, opts ...consumer.Option) rocketmq.PullConsumer {
	t.Helper()
	base := []consumer.Option{
		consumer.WithNameServer([]string{c.NameServer}),
		consumer.WithInstance(uniqueName(t, "inst")),
		consumer.WithGroupName(group),
	}
	pc, err := rocketmq.NewPullConsumer(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new pull consumer: %v", err)
	}
	if err := pc.Subscribe(topic, sel); err != nil {
		t.Fatalf("pull consumer subscribe: %v", err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start pull consumer: %v", err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	return pc
}

// pollInto polls pc (lite pull) in the background until the test ends, acknowledging and
// recording every message for name.
func pollInto(t *testing.T, pc rocketmq.PullConsumer, log *deliveryLog, name string) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			cr, err := pc.Poll(context.Background(), 200*time.Millisecond)
			if err != nil || cr == nil {
				continue
			}
			log.record(name, cr.GetMsgList()...)
			pc.ACK(context.Background(), cr, consumer.ConsumeSuccess)
		}
	}()
	// Registered after the consumer's own cleanup, so it runs first: polling stops before
	// the consumer shuts down.
	t.Cleanup(func() { close(done); <-stopped })
}

// pullQueue reads a whole queue with PullFrom, from offset 0 to the max offset the broker
// reports, checking every answer on the way. It returns the messages the client handed back
// and the raw messages of the broker's answers (before the client's own tag filtering).
func pullQueue(t *testing.T, pc rocketmq.PullConsumer, mq *primitive.MessageQueue) (msgs, raw []*primitive.MessageExt, maxOffset int64) {
	t.Helper()
	for off, n := int64(0), 0; ; n++ {
		if n > 1000 {
			t.Fatalf("queue %d: no end in sight after %d pulls (offset %d)", mq.QueueId, n, off)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := pc.PullFrom(ctx, mq, off, 7)
		cancel()
		if err != nil {
			t.Fatalf("PullFrom queue %d offset %d: %v", mq.QueueId, off, err)
		}
		maxOffset = res.MaxOffset
		switch res.Status {
		case primitive.PullFound:
			msgs = append(msgs, res.GetMessageExts()...)
			raw = append(raw, primitive.DecodeMessage(res.GetBody())...)
		case primitive.PullNoMsgMatched:
		default:
			t.Fatalf("PullFrom queue %d offset %d: status %v (next %d, max %d)", mq.QueueId, off, res.Status, res.NextBeginOffset, res.MaxOffset)
		}
		if res.NextBeginOffset <= off {
			t.Fatalf("PullFrom queue %d offset %d: next offset %d does not move forward", mq.QueueId, off, res.NextBeginOffset)
		}
		off = res.NextBeginOffset
		if off == res.MaxOffset {
			return msgs, raw, maxOffset
		}
	}
}

// waitRoute waits until the name server routes topic with the given number of queues (after a
// restart the broker registers its topics once it has recovered).
func (c *compatCluster) waitRoute(t *testing.T, topic string, queues int) {
	t.Helper()
	a := c.newAdmin(t)
	waitFor(t, 30*time.Second, "a route for "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		mqs, err := a.FetchPublishMessageQueues(ctx, topic)
		return err == nil && len(mqs) == queues
	})
}

// rawRequest sends one request to addr on a connection of its own, with the project's codec
// (for what the official client offers no call for), and returns the answer.
func rawRequest(t *testing.T, addr string, req *codec.Command) *codec.Command {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer nc.Close()
	req.Opaque = 1
	frame, err := codec.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatalf("write request %d to %s: %v", req.Code, addr, err)
	}
	got, err := codec.ReadFrame(bufio.NewReader(nc), codec.DefaultMaxFrameBytes)
	if err != nil {
		t.Fatalf("read the answer to request %d from %s: %v", req.Code, addr, err)
	}
	resp, err := codec.Decode(got)
	if err != nil || !resp.IsResponse() || resp.Opaque != 1 {
		t.Fatalf("answer to request %d from %s: %+v %v", req.Code, addr, resp, err)
	}
	return resp
}

// lockQueues asks the broker, as client clientID of group, to lock mqs (LOCK_BATCH_MQ) and
// returns the queue ids it granted.
func (c *compatCluster) lockQueues(t *testing.T, group, clientID string, mqs []*primitive.MessageQueue) []int {
	t.Helper()
	body, err := json.Marshal(map[string]any{"consumerGroup": group, "clientId": clientID, "mqSet": mqs})
	if err != nil {
		t.Fatal(err)
	}
	resp := rawRequest(t, c.Broker, codec.NewRequest(codec.ReqLockBatchMQ, nil, body))
	var granted struct {
		LockOKMQSet []primitive.MessageQueue `json:"lockOKMQSet"`
	}
	if resp.Code != codec.Success || json.Unmarshal(resp.Body, &granted) != nil {
		t.Fatalf("lock: code %d (%s) body %q", resp.Code, resp.Remark, resp.Body)
	}
	ids := []int{}
	for _, mq := range granted.LockOKMQSet {
		ids = append(ids, mq.QueueId)
	}
	slices.Sort(ids)
	return ids
}
