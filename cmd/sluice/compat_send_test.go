package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// A plain synchronous send and a clustering push consumer: every message comes back exactly as
// sent (body, tags, keys, user properties), once.
func TestCompatSyncSendAndPushConsume(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)
	const n = 40
	sent := map[string]*primitive.Message{}
	for i := range n {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("body-%d", i)))
		m.WithTag("TagA")
		m.WithKeys([]string{fmt.Sprintf("key-%d", i)})
		m.WithProperty("user", fmt.Sprint(i))
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		sent[res.MsgID] = m
	}
	var mu sync.Mutex
	got := map[string]int{}
	pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	err := pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			want, ok := sent[m.MsgId]
			switch {
			case !ok:
				t.Errorf("received a message nobody sent: %v", m)
			case string(m.Body) != string(want.Body) || m.GetTags() != "TagA" || m.GetKeys() != want.GetKeys() || m.GetProperty("user") != want.GetProperty("user"):
				t.Errorf("received %q tags=%q keys=%q user=%q, sent %q keys=%q user=%q", m.Body, m.GetTags(), m.GetKeys(),
					m.GetProperty("user"), want.Body, want.GetKeys(), want.GetProperty("user"))
			}
			got[m.MsgId]++
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every message consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would show up here
	mu.Lock()
	defer mu.Unlock()
	for id, k := range got {
		if k != 1 {
			t.Errorf("message %s delivered %d times", id, k)
		}
	}
}
