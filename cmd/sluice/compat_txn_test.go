package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// txnFlags make the broker check unresolved transactions back within about two seconds.
var txnFlags = []string{"--txn-check-interval", "1s", "--txn-timeout", "1s"}

// txnListener is a primitive.TransactionListener whose answers come from functions of the
// message body, and which counts the checks it is asked, by body.
type txnListener struct {
	execute func(body string) primitive.LocalTransactionState
	check   func(body string) primitive.LocalTransactionState

	mu     sync.Mutex
	checks map[string]int
}

func (l *txnListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	return l.execute(string(m.Body))
}

func (l *txnListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	l.checks[string(m.Body)]++
	l.mu.Unlock()
	return l.check(string(m.Body))
}

func (l *txnListener) checked(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checks[body]
}

func answer(s primitive.LocalTransactionState) func(string) primitive.LocalTransactionState {
	return func(string) primitive.LocalTransactionState { return s }
}

// newTxnProducer starts an official transaction producer against c, with its own client
// instance (the official client routes a check to the producer group of the instance that
// first registered, so producers must not share one).
func (c *compatCluster) newTxnProducer(t *testing.T, l *txnListener) rocketmq.TransactionProducer {
	t.Helper()
	l.checks = map[string]int{}
	p, err := rocketmq.NewTransactionProducer(l,
		producer.WithNameServer([]string{c.NameServer}),
		producer.WithInstanceName(uniqueName(t, "inst")),
		producer.WithGroupName(uniqueName(t, "pg")),
		producer.WithRetry(2),
	)
	if err != nil {
		t.Fatalf("new transaction producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start transaction producer: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// sendTxn sends one transactional message and checks the outcome the producer reports.
func sendTxn(t *testing.T, p rocketmq.TransactionProducer, topic, body string, want primitive.LocalTransactionState) *primitive.Message {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	m.WithTag("TagT")
	m.WithKeys([]string{"key-" + body})
	m.WithProperty("user", "u-"+body)
	res, err := p.SendMessageInTransaction(context.Background(), m)
	if err != nil {
		t.Fatalf("send %s in a transaction: %v", body, err)
	}
	if res.Status != primitive.SendOK || res.State != want {
		t.Fatalf("send %s in a transaction: status %v state %v, want SendOK and state %v", body, res.Status, res.State, want)
	}
	return m
}

// delivered is how many times the message with id (its UNIQ_KEY) reached in.
func delivered(in *inbox, id string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.byID[id]
}

// uniqKey is the client message id the producer gave m (the id consumers see).
func uniqKey(m *primitive.Message) string {
	return m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
}

// Committed at once: every message is consumed exactly once, exactly as sent, and check passes
// afterwards deliver nothing more.
func TestCompatTransactionCommit(t *testing.T) {
	t.Parallel()
	c := startCompat(t, txnFlags...)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	l := &txnListener{execute: answer(primitive.CommitMessageState), check: answer(primitive.CommitMessageState)}
	p := c.newTxnProducer(t, l)
	sent := map[string]*primitive.Message{}
	for i := range 8 {
		m := sendTxn(t, p, topic, fmt.Sprintf("commit-%d", i), primitive.CommitMessageState)
		sent[uniqKey(m)] = m
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
	waitFor(t, 30*time.Second, "every committed message consumed", func() bool { return in.distinct() == len(sent) })
	time.Sleep(2500 * time.Millisecond) // past the timeout and a check pass: a duplicate would show up
	expectExactly(t, in, sent, 30*time.Second)
	for _, m := range in.snapshot() {
		if m.GetProperty(primitive.PropertyTransactionPrepared) != "" {
			t.Errorf("message %s delivered still marked as a half message", m.Body)
		}
	}
}

// Rolled back at once: never delivered, not even after the check passes (whose answer would be
// "commit"), while committed markers sent after them in the same queue are.
func TestCompatTransactionRollback(t *testing.T) {
	t.Parallel()
	c := startCompat(t, txnFlags...)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 1) // one queue: a marker arriving means everything before it was read
	l := &txnListener{
		execute: func(body string) primitive.LocalTransactionState {
			if strings.HasPrefix(body, "marker") {
				return primitive.CommitMessageState
			}
			return primitive.RollbackMessageState
		},
		check: answer(primitive.CommitMessageState),
	}
	p := c.newTxnProducer(t, l)
	const n = 5
	for i := range n {
		sendTxn(t, p, topic, fmt.Sprintf("rollback-%d", i), primitive.RollbackMessageState)
	}
	marker1 := sendTxn(t, p, topic, "marker-1", primitive.CommitMessageState)
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
	waitFor(t, 30*time.Second, "the first marker consumed", func() bool { return delivered(in, uniqKey(marker1)) > 0 })
	time.Sleep(2500 * time.Millisecond) // past the timeout and a check pass
	marker2 := sendTxn(t, p, topic, "marker-2", primitive.CommitMessageState)
	// Only the markers arrive, once each.
	expectExactly(t, in, map[string]*primitive.Message{uniqKey(marker1): marker1, uniqKey(marker2): marker2}, 30*time.Second)
	for i := range n {
		if k := l.checked(fmt.Sprintf("rollback-%d", i)); k != 0 {
			t.Errorf("rolled-back message rollback-%d checked back %d times", i, k)
		}
	}
}

// Unknown after local execution: the broker checks back, and the producer's answer decides:
// commit delivers the message once, rollback never. Checks stop once a transaction is resolved.
func TestCompatTransactionCheckBack(t *testing.T) {
	t.Parallel()
	c := startCompat(t, txnFlags...)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 1)
	l := &txnListener{
		execute: answer(primitive.UnkonwnState),
		check: func(body string) primitive.LocalTransactionState {
			if strings.HasPrefix(body, "commit") {
				return primitive.CommitMessageState
			}
			return primitive.RollbackMessageState
		},
	}
	p := c.newTxnProducer(t, l)
	sent := map[string]*primitive.Message{}
	var bodies []string
	for i := range 3 {
		m := sendTxn(t, p, topic, fmt.Sprintf("commit-%d", i), primitive.UnkonwnState)
		sent[uniqKey(m)] = m
		sendTxn(t, p, topic, fmt.Sprintf("rollback-%d", i), primitive.UnkonwnState)
		bodies = append(bodies, fmt.Sprintf("commit-%d", i), fmt.Sprintf("rollback-%d", i))
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
	// The producer's first heartbeat (1 s after its start) tells the broker whom to ask.
	waitFor(t, 30*time.Second, "every transaction checked back", func() bool {
		for _, b := range bodies {
			if l.checked(b) == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, 30*time.Second, "the committed messages consumed", func() bool { return in.distinct() >= len(sent) })
	time.Sleep(500 * time.Millisecond) // the answers to the last checks land
	before := map[string]int{}
	for _, b := range bodies {
		before[b] = l.checked(b)
	}
	time.Sleep(2500 * time.Millisecond) // two more check passes
	marker := primitive.NewMessage(topic, []byte("marker"))
	res, err := c.newProducer(t).SendSync(context.Background(), marker)
	if err != nil {
		t.Fatalf("send the marker: %v", err)
	}
	sent[res.MsgID] = marker
	// The committed ones and the marker arrive once each, the rolled-back ones never.
	expectExactly(t, in, sent, 30*time.Second)
	total := 0
	for _, b := range bodies {
		k := l.checked(b)
		total += k
		if k != before[b] {
			t.Errorf("message %s checked %d more times after it was resolved", b, k-before[b])
		}
	}
	t.Logf("%d checks observed for %d transactions", total, len(bodies))
}
