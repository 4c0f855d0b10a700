package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Request/reply with the official Go client: a producer's Request and RequestAsync get the
// replies a responder (a push consumer of the request topic) sends with
// consumer.CreateReplyMessage, which needs the CLUSTER property the broker stores on every
// message, and which the broker pushes to the requester (PUSH_REPLY_MESSAGE_TO_CLIENT); a
// request no one answers times out.
func TestCompatRequestReply(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "Req")
	c.createTopic(t, topic, 2)

	// The responder: a consumer whose replies go through their own producer (its own client).
	replier := c.newProducer(t)
	var mu sync.Mutex
	var replyErrs []string
	clusters := map[string]bool{}
	c.startPush(t, uniqueName(t, "responder"), "responder", topic, consumer.MessageSelector{},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				if consumer.GetReplyToClient(m) == "" {
					continue // the requester's warm-up message, not a request
				}
				mu.Lock()
				clusters[m.GetProperty(primitive.PropertyCluster)] = true
				mu.Unlock()
				reply, err := consumer.CreateReplyMessage(m, nil)
				if err == nil {
					// CreateReplyMessage parses its body argument as properties and leaves the
					// reply's body empty (client-go's message_util.go), so set it here.
					reply.Body = []byte("re: " + string(m.Body))
					_, err = replier.SendSync(ctx, reply)
				}
				if err != nil {
					mu.Lock()
					replyErrs = append(replyErrs, fmt.Sprintf("%s: %v", m.Body, err))
					mu.Unlock()
				}
			}
			return consumer.ConsumeSuccess, nil
		}, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))

	requester := c.newProducer(t)
	ctx := context.Background()
	// The broker finds the requester among the clients that heartbeated as producers. The Go
	// client heartbeats 1 s after it starts, then every 30 s, and only to the brokers of the
	// routes it knows then (Request heartbeats itself only for a topic the name server does not
	// know): so the requester learns the route with a send, then its heartbeat is awaited, as
	// client-go's own request/reply example waits.
	if _, err := requester.SendSync(ctx, primitive.NewMessage(topic, []byte("warm-up"))); err != nil {
		t.Fatalf("warm-up send: %v", err)
	}
	time.Sleep(2 * time.Second)

	// Request: each gets the reply to its own message.
	for i := range 3 {
		body := fmt.Sprintf("question-%d", i)
		reply, err := requester.Request(ctx, 15*time.Second, primitive.NewMessage(topic, []byte(body)))
		if err != nil {
			mu.Lock()
			t.Fatalf("Request %s: %v (responder errors: %v)", body, err, replyErrs)
		}
		if got := string(reply.Body); got != "re: "+body {
			t.Errorf("Request %s got reply %q, want %q", body, got, "re: "+body)
		}
		if reply.GetProperty(primitive.PropertyMsgType) != "reply" || reply.GetProperty(primitive.PropertyCorrelationID) == "" {
			t.Errorf("reply to %s: MSG_TYPE %q CORRELATION_ID %q", body, reply.GetProperty(primitive.PropertyMsgType),
				reply.GetProperty(primitive.PropertyCorrelationID))
		}
	}

	// RequestAsync: the callbacks get the replies. client-go runs a callback twice for one
	// reply (once on the reply, once more when it deletes the request from its go-cache, whose
	// OnEvicted hook fires on Delete too), so repeats are expected; every one must carry a
	// reply to one of the requests.
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 64)
	want := map[string]bool{}
	asked := map[string]bool{}
	for i := range 4 {
		body := fmt.Sprintf("async-%d", i)
		want["re: "+body] = true
		asked["re: "+body] = true
		err := requester.RequestAsync(ctx, 15*time.Second, func(_ context.Context, m *primitive.Message, err error) {
			r := result{err: err}
			if m != nil {
				r.body = string(m.Body)
			}
			results <- r
		}, primitive.NewMessage(topic, []byte(body)))
		if err != nil {
			t.Fatalf("RequestAsync %s: %v", body, err)
		}
	}
	for len(want) > 0 {
		select {
		case r := <-results:
			if r.err != nil || !asked[r.body] {
				t.Fatalf("RequestAsync callback: reply %q, error %v", r.body, r.err)
			}
			delete(want, r.body)
		case <-time.After(20 * time.Second):
			t.Fatalf("RequestAsync: replies %v never came", want)
		}
	}

	mu.Lock()
	if len(replyErrs) > 0 {
		t.Errorf("the responder's replies failed: %v", replyErrs)
	}
	if len(clusters) != 1 || !clusters["DefaultCluster"] {
		t.Errorf("the requests reached the responder with CLUSTER %v, want DefaultCluster", clusters)
	}
	mu.Unlock()

	// A request to a topic no one consumes times out.
	silent := uniqueName(t, "Silent")
	c.createTopic(t, silent, 1)
	start := time.Now()
	reply, err := requester.Request(ctx, 2*time.Second, primitive.NewMessage(silent, []byte("anyone?")))
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("Request with no responder: reply %v, error %v; want a timeout", reply, err)
	}
	if d := time.Since(start); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("Request with no responder returned after %v, want its 2s timeout", d)
	}
}
