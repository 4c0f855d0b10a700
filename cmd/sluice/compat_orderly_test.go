package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Orderly consumption (consumer.WithConsumerOrder): two consumers of a group lock their queues
// on the broker (LOCK_BATCH_MQ); each queue is consumed by one consumer at a time, in queue
// order, so the messages of one sharding key arrive in the order they were sent.
//
// The official client does not unlock a queue it loses in a rebalance, so a consumer that
// joins waits for the previous holder's lease to run out and for its own next rebalance (every
// 20 s) before it may take such a queue: the broker runs with a short lease (3 s) and the
// consumers renew every second, as a lease must outlast the renewal interval.
func TestCompatOrderlyConsumption(t *testing.T) {
	t.Parallel()
	c := startCompat(t, "--lock-lease", "3s")
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	log := newDeliveryLog()
	var mu sync.Mutex
	busy := map[int]string{} // queue -> the consumer inside a callback for it
	listener := func(name string) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			q := msgs[0].Queue.QueueId
			mu.Lock()
			if other, ok := busy[q]; ok {
				t.Errorf("%s and %s consume queue %d at the same time", other, name, q)
			}
			busy[q] = name
			mu.Unlock()
			log.record(name, msgs...)
			time.Sleep(2 * time.Millisecond) // widen the window an overlap would need
			mu.Lock()
			delete(busy, q)
			mu.Unlock()
			return consumer.ConsumeSuccess, nil
		}
	}
	// Started together, both are usually in the group before either first rebalances, and
	// neither takes (and locks) the other's queues; otherwise the test waits as described.
	var starts sync.WaitGroup
	for _, name := range []string{"A", "B"} {
		pc := c.newPushConsumer(t, group, consumer.WithInstance(uniqueName(t, name)), consumer.WithConsumerOrder(true),
			consumer.WithRebalanceLockInterval(time.Second), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		if err := pc.Subscribe(topic, consumer.MessageSelector{}, listener(name)); err != nil {
			t.Fatal(err)
		}
		starts.Add(1)
		go func() {
			defer starts.Done()
			if err := pc.Start(); err != nil {
				t.Errorf("start %s: %v", name, err)
			}
		}()
	}
	starts.Wait()
	began := time.Now()
	probe := c.newProber(t, topic)
	owners := probe.waitBalanced(t, log, 60*time.Second, "A", "B")
	t.Logf("queue owners %v, settled after %v", owners, time.Since(began).Round(time.Millisecond))
	// The broker holds the consumers' locks: another client of the group gets none of the
	// queues, while a client of another group gets them all (locks are per group).
	if got := c.lockQueues(t, group, "127.0.0.9@intruder", probe.queues); len(got) != 0 {
		t.Errorf("a third client of the group locked queues %v held by A and B", got)
	}
	if got := c.lockQueues(t, group+"-other", "127.0.0.9@intruder", probe.queues); len(got) != 4 {
		t.Errorf("a client of another group locked queues %v, want all 4", got)
	}

	// Eight keys, twelve messages each, interleaved; a key always goes to the same queue.
	p := c.newProducer(t, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	const keys, perKey = 8, 12
	var bodies []string
	for i := range perKey {
		for k := range keys {
			bodies = append(bodies, fmt.Sprintf("key%d-%02d", k, i))
		}
	}
	sent := sendBodies(t, p, topic, bodies, func(i int, m *primitive.Message) {
		m.WithShardingKey(fmt.Sprintf("key%d", i%keys))
	})
	log.waitAll(t, 30*time.Second, "every ordered message consumed", bodies)
	time.Sleep(300 * time.Millisecond)
	log.checkExactlyOnce(t, "orderly", bodies)

	// Per key: consumed in the order sent, by the consumer that holds the key's queue.
	byKey := map[string][]delivery{}
	keyQueue := map[string]int{}
	for i, m := range sent {
		key := fmt.Sprintf("key%d", i%keys)
		if q, ok := keyQueue[key]; ok && q != m.queue {
			t.Fatalf("%s went to queues %d and %d", key, q, m.queue)
		}
		keyQueue[key] = m.queue
		if d := log.deliveries(m.body); len(d) > 0 {
			byKey[key] = append(byKey[key], d[0])
			if d[0].consumer != owners[m.queue] {
				t.Errorf("%q on queue %d consumed by %s, but %s holds that queue", m.body, m.queue, d[0].consumer, owners[m.queue])
			}
		}
	}
	for key, ds := range byKey {
		inSendOrder := append([]delivery(nil), ds...)
		sort.SliceStable(ds, func(i, j int) bool { return ds[i].seq < ds[j].seq })
		for i := range ds {
			if ds[i] != inSendOrder[i] {
				t.Errorf("%s consumed out of order: delivery %d is offset %d, sent offset %d", key, i, ds[i].offset, inSendOrder[i].offset)
				break
			}
		}
	}
}
