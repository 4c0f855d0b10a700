package real

// The official Go client (github.com/apache/rocketmq-client-go/v2) as one more producer, so
// the runs check what a RocketMQ application sees too. Its sends are recorded like the client
// core's, with two differences: it retries nothing (WithRetry(0): a retry of a send whose
// outcome was unknown could land the message twice, which the history would rightly call a
// message at two offsets), and any error is recorded unknown (its errors do not say whether the
// request left), unless no queue was chosen for it (no route: nothing was sent).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/linearizability"
)

// chosenQueues is the official client's queue selector: round robin, remembering the queue it
// chose for each message (by UNIQ_KEY), so a send that fails is recorded on the queue it went
// to, as the history needs.
type chosenQueues struct {
	mu     sync.Mutex
	next   int
	chosen map[string]linearizability.QueueKey
}

func (c *chosenQueues) Select(msg *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(mqs) == 0 {
		return nil
	}
	q := mqs[c.next%len(mqs)]
	c.next++
	c.chosen[msg.GetProperty(codec.PropUniqKey)] = linearizability.QueueKey{Broker: q.BrokerName, Topic: q.Topic, QueueID: int32(q.QueueId)}
	return q
}

// take returns and forgets the queue chosen for id (the zero key if none was: the send never
// got that far).
func (c *chosenQueues) take(id string) (linearizability.QueueKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.chosen[id]
	delete(c.chosen, id)
	return q, ok
}

// officialClient is the client number of the official client's sends in the history.
const officialClient = 50

// produceOfficial sends with the official Go client until stop closes; the returned function
// shuts the client down.
func (r *recorder) produceOfficial(nameServers []string, stop <-chan struct{}, wg *sync.WaitGroup) (func(), error) {
	rlog.SetLogLevel("fatal") // its errors are each send's, recorded in the history
	sel := &chosenQueues{chosen: map[string]linearizability.QueueKey{}}
	p, err := rocketmq.NewProducer(producer.WithNameServer(nameServers), producer.WithGroupName("JepsenOfficial"), producer.WithQueueSelector(sel),
		producer.WithInstanceName(fmt.Sprintf("jepsen-official-%d", time.Now().UnixNano())), producer.WithRetry(0),
		producer.WithSendMsgTimeout(3*time.Second))
	if err != nil {
		return nil, fmt.Errorf("official client: %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("official client: start: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(officialClient), 0))
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(10+rng.IntN(30)) * time.Millisecond):
			}
			id := fmt.Sprintf("o-%d", seq)
			msg := primitive.NewMessage(Topic, body(id, 32+rng.IntN(200)))
			msg.WithProperty(codec.PropUniqKey, id)
			call := r.now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := p.SendSync(ctx, msg)
			cancel()
			q, chosen := sel.take(id)
			op := linearizability.SendOp{Client: officialClient, Queue: q, MsgID: id, Call: call, Return: r.now(), Outcome: linearizability.Unknown}
			switch {
			case err == nil && res != nil && res.Status == primitive.SendOK && res.MessageQueue != nil:
				op.Outcome, op.Offset = linearizability.OK, res.QueueOffset
				op.Queue = linearizability.QueueKey{Broker: res.MessageQueue.BrokerName, Topic: res.MessageQueue.Topic, QueueID: int32(res.MessageQueue.QueueId)}
			case !chosen:
				op.Outcome = linearizability.Failed // no queue was chosen: nothing was sent
			}
			r.mu.Lock()
			r.h.AddSend(op)
			r.sends[op.Outcome]++
			r.official[op.Outcome]++
			r.mu.Unlock()
			if err != nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return func() { _ = p.Shutdown() }, nil
}
