package main

// Producer-side compatibility: every way the official Go client sends (sync, async, oneway,
// batch, ordered with a queue selector, tagged and keyed, compressed large bodies) against a
// real 'sluice dev', each checked the way a user would: every message comes back exactly as
// sent, once. TestCompatSyncSendAndPushConsume (compat_send_test.go) covers the plain sync send.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// inbox collects what a push consumer received, in delivery order.
type inbox struct {
	mu   sync.Mutex
	got  []*primitive.MessageExt
	byID map[string]int // deliveries per MsgId
}

func newInbox() *inbox { return &inbox{byID: map[string]int{}} }

// consume is a push consumer callback that records every message and acknowledges it.
func (in *inbox) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range msgs {
		in.got = append(in.got, m)
		in.byID[m.MsgId]++
	}
	return consumer.ConsumeSuccess, nil
}

// distinct is how many different messages arrived.
func (in *inbox) distinct() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.byID)
}

// snapshot is every delivery so far, in order.
func (in *inbox) snapshot() []*primitive.MessageExt {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.got)
}

// startConsumer subscribes a clustering push consumer of group to topic (with selector) that
// records into a new inbox, and starts it from the first offset.
func (c *compatCluster) startConsumer(t *testing.T, topic string, sel consumer.MessageSelector, opts ...consumer.Option) *inbox {
	t.Helper()
	in := newInbox()
	opts = append([]consumer.Option{consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)}, opts...)
	pc := c.newPushConsumer(t, uniqueName(t, "cg"), opts...)
	if err := pc.Subscribe(topic, sel, in.consume); err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start push consumer: %v", err)
	}
	return in
}

// expectExactly waits until in holds every message of sent (keyed by the id the consumer sees:
// the UNIQ_KEY, or the offset msgId for batch messages), then checks each arrived once and
// exactly as sent: body byte for byte, flag, tags, keys and user properties, and that nothing
// else arrived.
func expectExactly(t *testing.T, in *inbox, sent map[string]*primitive.Message, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d messages consumed", len(sent)), func() bool { return in.distinct() >= len(sent) })
	time.Sleep(500 * time.Millisecond) // a duplicate or a stray message would show up here
	in.mu.Lock()
	defer in.mu.Unlock()
	for id, k := range in.byID {
		if k != 1 {
			t.Errorf("message %s delivered %d times", id, k)
		}
	}
	for _, m := range in.got {
		want, ok := sent[m.MsgId]
		if !ok {
			t.Errorf("received a message that was not sent: id %s body %.40q", m.MsgId, m.Body)
			continue
		}
		if !bytes.Equal(m.Body, want.Body) {
			t.Errorf("message %s: body of %d bytes differs from the %d bytes sent", m.MsgId, len(m.Body), len(want.Body))
		}
		if m.Flag != want.Flag || m.GetTags() != want.GetTags() || m.GetKeys() != want.GetKeys() ||
			m.GetProperty("user") != want.GetProperty("user") {
			t.Errorf("message %s: flag %d tags %q keys %q user %q; sent flag %d tags %q keys %q user %q", m.MsgId,
				m.Flag, m.GetTags(), m.GetKeys(), m.GetProperty("user"),
				want.Flag, want.GetTags(), want.GetKeys(), want.GetProperty("user"))
		}
	}
}

// userMessage is message i of a test: its own body, tag, keys, user property and flag.
func userMessage(topic string, i int) *primitive.Message {
	m := primitive.NewMessage(topic, []byte(fmt.Sprintf("body-%d", i)))
	m.WithTag([]string{"TagA", "TagB"}[i%2])
	m.WithKeys([]string{fmt.Sprintf("key-%d", i), "all"})
	m.WithProperty("user", strconv.Itoa(i))
	m.Flag = int32(i)
	return m
}

// SendAsync: every callback reports SEND_OK with the message's own id, and every message is
// consumed once, as sent.
func TestCompatAsyncSend(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t, producer.WithSendMsgTimeout(10*time.Second))
	const n = 40
	var mu sync.Mutex
	sent := map[string]*primitive.Message{}
	results := make(chan error, n)
	for i := range n {
		m := userMessage(topic, i)
		err := p.SendAsync(context.Background(), func(_ context.Context, res *primitive.SendResult, err error) {
			if err == nil && res.Status != primitive.SendOK {
				err = fmt.Errorf("status %d", res.Status)
			}
			if err == nil {
				mu.Lock()
				sent[res.MsgID] = m
				mu.Unlock()
			}
			results <- err
		}, m)
		if err != nil {
			t.Fatalf("SendAsync %d: %v", i, err)
		}
	}
	for i := range n {
		select {
		case err := <-results:
			if err != nil {
				t.Fatalf("async send callback: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d async send callbacks within 20s", i, n)
		}
	}
	mu.Lock()
	if len(sent) != n {
		t.Fatalf("%d distinct message ids in %d callbacks", len(sent), n)
	}
	mu.Unlock()
	expectExactly(t, c.startConsumer(t, topic, consumer.MessageSelector{}), sent, 30*time.Second)
}

// SendOneWay gets no answer, so the consumer is the only witness: every message arrives once.
func TestCompatOneWaySend(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)
	const n = 30
	sent := map[string]*primitive.Message{}
	for i := range n {
		m := userMessage(topic, i)
		if err := p.SendOneWay(context.Background(), m); err != nil {
			t.Fatalf("SendOneWay %d: %v", i, err)
		}
		sent[m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)] = m // set by the client on send
	}
	if len(sent) != n {
		t.Fatalf("the client gave %d distinct ids to %d messages", len(sent), n)
	}
	expectExactly(t, c.startConsumer(t, topic, consumer.MessageSelector{}), sent, 30*time.Second)
}

// SendSync with several messages is one SEND_BATCH_MESSAGE: the result names each message
// (comma-joined offset msgIds, which is also the id a consumer sees, since the Go client gives
// batch messages no UNIQ_KEY), and each is consumed once with its own body, tags and keys.
func TestCompatBatchSend(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 2)
	p := c.newProducer(t)
	sent := map[string]*primitive.Message{}
	var batches [][]string
	for batch := range 3 {
		var msgs []*primitive.Message
		for i := range 5 {
			msgs = append(msgs, userMessage(topic, batch*10+i))
		}
		res, err := p.SendSync(context.Background(), msgs...)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("batch %d: %v %v", batch, res, err)
		}
		ids := strings.Split(res.OffsetMsgID, ",")
		if len(ids) != len(msgs) {
			t.Fatalf("batch %d: result names %d messages (%q), sent %d", batch, len(ids), res.OffsetMsgID, len(msgs))
		}
		for i, id := range ids {
			if _, dup := sent[id]; dup || len(id) != 32 {
				t.Fatalf("batch %d: msgId %q is repeated or not a 32-hex offset id", batch, id)
			}
			sent[id] = msgs[i]
		}
		batches = append(batches, ids)
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
	expectExactly(t, in, sent, 30*time.Second)
	// A batch lands in one queue, in order: consecutive queue offsets.
	at := map[string]*primitive.MessageExt{}
	for _, m := range in.snapshot() {
		at[m.MsgId] = m
	}
	for b, ids := range batches {
		first := at[ids[0]]
		for i, id := range ids {
			m := at[id]
			if m == nil || first == nil {
				continue // reported by expectExactly
			}
			if m.Queue.QueueId != first.Queue.QueueId || m.QueueOffset != first.QueueOffset+int64(i) {
				t.Errorf("batch %d message %d at queue %d offset %d; the batch starts at queue %d offset %d",
					b, i, m.Queue.QueueId, m.QueueOffset, first.Queue.QueueId, first.QueueOffset)
			}
		}
	}
}

// orderedSend sends steps messages for each of orders order ids, interleaved, with a hash
// queue selector keyed by the order id; it returns the message ids in send order per order.
func orderedSend(t *testing.T, c *compatCluster, topic string, orders, steps int) map[string][]string {
	t.Helper()
	p := c.newProducer(t, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	want := map[string][]string{}
	queueOf := map[string]int{}
	for step := range steps {
		for o := range orders {
			order := fmt.Sprintf("order-%d", o)
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s/step-%d", order, step)))
			m.WithShardingKey(order)
			m.WithKeys([]string{order})
			res, err := p.SendSync(context.Background(), m)
			if err != nil || res.Status != primitive.SendOK {
				t.Fatalf("send %s step %d: %v %v", order, step, res, err)
			}
			if q, ok := queueOf[order]; ok && q != res.MessageQueue.QueueId {
				t.Fatalf("%s went to queue %d, then %d: the selector is not keyed by order id", order, q, res.MessageQueue.QueueId)
			}
			queueOf[order] = res.MessageQueue.QueueId
			want[order] = append(want[order], res.MsgID)
		}
	}
	return want
}

// checkOrder checks that every order's messages arrived in send order, each once.
func checkOrder(t *testing.T, in *inbox, want map[string][]string) {
	t.Helper()
	got := map[string][]string{}
	for _, m := range in.snapshot() {
		order := m.GetKeys()
		got[order] = append(got[order], m.MsgId)
	}
	for order, ids := range want {
		if !slices.Equal(got[order], ids) {
			t.Errorf("%s consumed as %v, sent as %v", order, got[order], ids)
		}
	}
}

// Ordered send with a queue selector keyed by order id, consumed by an orderly push consumer
// (queue locks, one goroutine per queue): each order's messages arrive in the order sent.
func TestCompatOrderedSendOrderlyConsume(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	const orders, steps = 6, 8
	want := orderedSend(t, c, topic, orders, steps)
	in := c.startConsumer(t, topic, consumer.MessageSelector{}, consumer.WithConsumerOrder(true))
	waitFor(t, 30*time.Second, "every ordered message consumed", func() bool { return in.distinct() >= orders*steps })
	time.Sleep(500 * time.Millisecond)
	if got := len(in.snapshot()); got != orders*steps {
		t.Errorf("%d deliveries for %d messages", got, orders*steps)
	}
	checkOrder(t, in, want)
}

// The same ordered send read by a plain (concurrent) consumer: delivery order is not promised,
// but the broker must keep each order's messages in one queue at ascending offsets in send order.
func TestCompatOrderedSendKeepsQueueOrder(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	const orders, steps = 6, 8
	want := orderedSend(t, c, topic, orders, steps)
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
	waitFor(t, 30*time.Second, "every ordered message consumed", func() bool { return in.distinct() >= orders*steps })
	at := map[string]*primitive.MessageExt{}
	for _, m := range in.snapshot() {
		at[m.MsgId] = m
	}
	for order, ids := range want {
		for i := 1; i < len(ids); i++ {
			prev, cur := at[ids[i-1]], at[ids[i]]
			if prev == nil || cur == nil {
				t.Fatalf("%s: step %d or %d never consumed", order, i-1, i)
			}
			if cur.Queue.QueueId != prev.Queue.QueueId || cur.QueueOffset <= prev.QueueOffset {
				t.Errorf("%s: step %d at queue %d offset %d, step %d at queue %d offset %d", order,
					i-1, prev.Queue.QueueId, prev.QueueOffset, i, cur.Queue.QueueId, cur.QueueOffset)
			}
		}
	}
}

// A consumer subscribed with "TagA || TagB" gets exactly the TagA and TagB messages, with their
// keys; TagC and untagged messages never reach it (the broker or the client filters them).
func TestCompatTagAndKeySubscription(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 2)
	p := c.newProducer(t)
	wanted := map[string]*primitive.Message{}
	for i := range 24 {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("body-%d", i)))
		tag := []string{"TagA", "TagB", "TagC", ""}[i%4]
		if tag != "" {
			m.WithTag(tag)
		}
		m.WithKeys([]string{fmt.Sprintf("key-%d", i), tag + "-key"})
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		if tag == "TagA" || tag == "TagB" {
			wanted[res.MsgID] = m
		}
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "TagA || TagB"})
	expectExactly(t, in, wanted, 30*time.Second)
}

// Bodies of 4 KiB and more are zlib-compressed by the client (sysFlag bit 0); the broker stores
// them as received and the consumer inflates them: each comes back byte for byte. The set
// includes the threshold itself, a compressible and an incompressible body, and one just
// below the threshold (sent raw).
func TestCompatLargeCompressedBody(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 1)
	p := c.newProducer(t, producer.WithSendMsgTimeout(10*time.Second))
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	text := []byte(strings.Repeat("sluice compresses nothing; the client does. ", 3000)) // ~135 KiB
	sent := map[string]*primitive.Message{}
	for i, body := range [][]byte{random(4095), random(4096), text, random(300 << 10)} {
		m := primitive.NewMessage(topic, body)
		m.WithTag("Big")
		m.WithProperty("user", strconv.Itoa(i))
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send body %d (%d bytes): %v %v", i, len(body), res, err)
		}
		if wantCompressed := len(body) >= 4096; m.Compress != wantCompressed {
			t.Fatalf("body %d (%d bytes): client compressed=%v, want %v (the test would not test compression)",
				i, len(body), m.Compress, wantCompressed)
		}
		sent[res.MsgID] = m
	}
	expectExactly(t, c.startConsumer(t, topic, consumer.MessageSelector{}), sent, 30*time.Second)
}

// One client instance (a producer and a push consumer with the same InstanceName) shares one
// TCP connection to the broker for everything. While the consumer's pulls are parked on that
// connection (long polling, up to 15 s), sends on it still complete at once, and the parked
// pulls wake up with the new messages.
func TestCompatSharedConnectionSendsWhilePullsPark(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	before := connsTo(t, c.Broker)

	instance := uniqueName(t, "shared")
	in := c.startConsumer(t, topic, consumer.MessageSelector{}, consumer.WithInstance(instance))
	p := c.newProducer(t, producer.WithInstanceName(instance), producer.WithSendMsgTimeout(20*time.Second))

	// One message through, so the consumer is pulling; then the queues are empty and its pulls
	// park on the broker.
	sent := map[string]*primitive.Message{}
	first := userMessage(topic, 0)
	res, err := p.SendSync(context.Background(), first)
	if err != nil {
		t.Fatalf("first send: %v", err)
	}
	sent[res.MsgID] = first
	waitFor(t, 30*time.Second, "the first message consumed", func() bool { return in.distinct() == 1 })
	time.Sleep(time.Second)

	if got := connsTo(t, c.Broker) - before; got != 1 {
		t.Errorf("the producer and consumer of one instance hold %d new connections to the broker, want 1 shared", got)
	}
	const n = 10
	for i := 1; i <= n; i++ {
		m := userMessage(topic, i)
		start := time.Now()
		res, err := p.SendSync(context.Background(), m)
		took := time.Since(start)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d while pulls are parked: %v %v", i, res, err)
		}
		// A send queued behind a parked pull would wait for the long poll (15 s).
		if took > 5*time.Second {
			t.Errorf("send %d took %v on the connection of parked pulls", i, took)
		}
		sent[res.MsgID] = m
	}
	expectExactly(t, in, sent, 20*time.Second)
}

// connsTo counts this process's established TCP connections to addr (ip:port), from /proc.
func connsTo(t *testing.T, addr string) int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	host, port, _ := strings.Cut(addr, ":")
	if host != "127.0.0.1" {
		t.Fatalf("connsTo handles 127.0.0.1 only, got %s", addr)
	}
	pn, _ := strconv.Atoi(port)
	want := fmt.Sprintf("0100007F:%04X", pn)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		if len(fields) >= 10 && fields[2] == want && fields[3] == "01" && inodes[fields[9]] {
			n++
		}
	}
	return n
}

// The official client accepts only literal IPs as name-server addresses (docs/protocol.md, "Routes"): given
// a hostname it refuses to start. 'sluice dev' therefore announces its name server as the
// literal address it listens on, even when told to listen on "localhost", and a producer given
// that address sends and a consumer receives.
func TestCompatNameServerAsLiteralIP(t *testing.T) {
	t.Parallel()
	port := strings.TrimPrefix(freePort(t), "127.0.0.1:")
	if _, err := producer.NewDefaultProducer(producer.WithNameServer([]string{"localhost:" + port})); err == nil {
		t.Fatal("the official client accepted a hostname as name server; docs/protocol.md says it refuses one")
	}

	cmd := exec.Command(sluiceBinary(t), "dev", "--data", filepath.Join(t.TempDir(), "data"),
		"--namesrv-addr", "localhost:"+port, "--broker-addr", freePort(t), "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &logBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	announced := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "sluice dev: name server listening on "); ok {
				announced <- addr
			}
		}
		_ = cmd.Wait()
	}()
	var nsAddr string
	select {
	case nsAddr = <-announced:
	case <-exited:
		t.Fatalf("sluice dev exited early\n%s", stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice dev did not announce its name server within 30s\n%s", stderr)
	}
	if ap, err := netip.ParseAddrPort(nsAddr); err != nil || ap.Port() == 0 || strconv.Itoa(int(ap.Port())) != port {
		t.Fatalf("sluice dev announced name server %q for --namesrv-addr localhost:%s; want a literal ip:%s", nsAddr, port, port)
	}

	c := &compatCluster{NameServer: nsAddr}
	topic := uniqueName(t, "T")
	p := c.newProducer(t)
	m := userMessage(topic, 1)
	var res *primitive.SendResult
	// The topic is auto-created by the first send; until the broker has registered with the
	// name server the client finds no route, so retry briefly.
	waitFor(t, 20*time.Second, "a send through the announced name server", func() bool {
		res, err = p.SendSync(context.Background(), m)
		return err == nil && res.Status == primitive.SendOK
	})
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
	expectExactly(t, in, map[string]*primitive.Message{res.MsgID: m}, 30*time.Second)
}
