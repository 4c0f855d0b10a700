package real

// The workload: producers and consumers on the project's client core (package clientrt, the
// production runtime of package client) in the harness's own process, reaching the cluster
// through the bridge. Every send and pull is recorded in a linearizability.History with its
// real call and return times (nanoseconds since the workload started) and outcome, the way
// the simulator records them (sim/cluster's sendRecorded and pullRecorded), so the same
// checks read it.
//
// Where the real harness knows less than the simulator: it cannot tell from an answer whether
// the replica that answered a pull was master when it answered (the simulator asks the node),
// so a pull that returned no messages is recorded Unknown (a slave's empty answer says nothing
// about the log's end); pulls that returned messages are recorded as the simulator does.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim/checks"
)

// Topic is the workload's topic; QueuesPerGroup its queues on each group.
const (
	Topic          = "JepsenTopic"
	QueuesPerGroup = 4
	consumerGroup  = "JepsenConsumers"
)

// recorder is the run's history and the violations seen while recording.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	h     linearizability.History
	vs    []checks.Violation
	sends map[linearizability.Outcome]int
	// official counts the official Go client's sends (also in sends).
	official map[linearizability.Outcome]int
	pulls    int
}

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func queueKey(q client.MessageQueue) linearizability.QueueKey {
	return linearizability.QueueKey{Broker: q.BrokerName, Topic: q.Topic, QueueID: q.QueueID}
}

// body is message id's payload: the id, '|', then n bytes of filler derived from the id.
func body(id string, n int) []byte {
	b := append([]byte(id), '|')
	for i := 0; i < n; i++ {
		b = append(b, byte('a'+(i+len(id))%26))
	}
	return b
}

// send sends message id and records the call.
func (r *recorder) send(cli *clientrt.Client, clientIdx int, id string, n int) error {
	call := r.now()
	res, err := cli.Send(client.Message{Topic: Topic, Body: body(id, n), Properties: map[string]string{codec.PropUniqKey: id}})
	op := linearizability.SendOp{Client: clientIdx, Queue: queueKey(res.Queue), MsgID: id, Call: call, Return: r.now(),
		Offset: res.QueueOffset, Outcome: linearizability.OK}
	if err != nil {
		op.Outcome = linearizability.Unknown
		if client.Definite(err) {
			op.Outcome = linearizability.Failed
		}
	}
	r.mu.Lock()
	r.h.AddSend(op)
	r.sends[op.Outcome]++
	r.mu.Unlock()
	return err
}

// verify checks a pulled message against what its producer sent.
func (r *recorder) verify(m *codec.Message) (string, bool) {
	id := codec.Property(m.Properties, codec.PropUniqKey)
	n := len(m.Body) - len(id) - 1
	if id == "" || n < 0 || !bytes.Equal(m.Body, body(id, n)) {
		r.mu.Lock()
		r.vs = append(r.vs, checks.Violation{Kind: "corrupt message", Queue: linearizability.QueueKey{Topic: m.Topic, QueueID: m.QueueID},
			MsgID: id, Message: fmt.Sprintf("message %q at offset %d: body does not match what was sent", id, m.QueueOffset)})
		r.mu.Unlock()
		return id, false
	}
	return id, true
}

// pull pulls once and records the call (see the file comment for empty answers).
func (r *recorder) pull(cli *clientrt.Client, clientIdx int, req client.PullRequest) (client.PullResult, error) {
	call := r.now()
	res, err := cli.Pull(req)
	op := linearizability.PullOp{Client: clientIdx, Queue: queueKey(req.Queue), Offset: req.Offset, Call: call, Return: r.now(),
		Outcome: linearizability.OK}
	if err != nil {
		op.Outcome = linearizability.Unknown
		if client.Definite(err) {
			op.Outcome = linearizability.Failed
		}
	}
	if err == nil && res.Status == codec.Success {
		for _, m := range res.Msgs {
			if id, ok := r.verify(m); ok {
				op.Msgs = append(op.Msgs, linearizability.PulledMsg{Offset: m.QueueOffset, MsgID: id})
			}
		}
	}
	if len(op.Msgs) == 0 && op.Outcome == linearizability.OK {
		op.Outcome = linearizability.Unknown
	}
	r.mu.Lock()
	r.h.AddPull(op)
	r.pulls++
	r.mu.Unlock()
	return res, err
}

func newClient(nameServers []string, id string, log *slog.Logger) (*clientrt.Client, error) {
	cfg := client.DefaultConfig(nameServers...)
	cfg.ClientID = id
	cfg.RouteTTL = 2 * time.Second // follow a failover within seconds, as the simulator's clients do
	// The clients' reconnection chatter drowns the harness's log under faults: kept only at
	// debug level.
	clog := slog.New(slog.NewTextHandler(io.Discard, nil))
	if log.Enabled(context.Background(), slog.LevelDebug) {
		clog = log.With("client", id)
	}
	return clientrt.Start(cfg, clog)
}

// produce runs senders goroutines on cli until stop closes.
func (r *recorder) produce(cli *clientrt.Client, idx, senders int, stop <-chan struct{}, wg *sync.WaitGroup) {
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(idx), uint64(s)))
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(5+rng.IntN(20)) * time.Millisecond):
				}
				if err := r.send(cli, idx, fmt.Sprintf("p%d.%d-%d", idx, s, seq), 32+rng.IntN(200)); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
}

// consume pulls every queue of the topic on cli from offset 0 until stop closes.
func (r *recorder) consume(cli *clientrt.Client, idx int, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var qs []client.MessageQueue
		for len(qs) == 0 {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if qs, err = cli.Queues(Topic); err != nil {
				time.Sleep(500 * time.Millisecond)
			}
		}
		for _, q := range qs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var offset int64
				for {
					select {
					case <-stop:
						return
					default:
					}
					res, err := r.pull(cli, idx, client.PullRequest{Queue: q, Group: consumerGroup, Offset: offset, MaxMsgs: 32, SuspendMillis: 500})
					if err != nil {
						time.Sleep(200 * time.Millisecond)
						continue
					}
					if res.Status == codec.Success || res.NextBeginOffset > offset {
						offset = res.NextBeginOffset
					}
					if res.Status != codec.Success {
						// A slave, or a master without a lease, answers at once rather than
						// holding the pull: do not spin on it.
						time.Sleep(100 * time.Millisecond)
					}
				}
			}()
		}
	}()
}

// probe sends until one send succeeds, within bound (liveness after healing).
func (r *recorder) probe(cli *clientrt.Client, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	var last error
	for n := 0; time.Now().Before(deadline); n++ {
		if last = r.send(cli, 998, fmt.Sprintf("probe-%d", n), 16); last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no send succeeded within %v of healing (last: %w)", bound, last)
}

// drain reads every queue from offset 0 to its end with a fresh client. A queue's end is an
// answer of "nothing there" from the replica the controllers name master of its group.
func (r *recorder) drain(c *Cluster, cli *clientrt.Client, bound time.Duration) (map[linearizability.QueueKey][]linearizability.PulledMsg, error) {
	deadline := time.Now().Add(bound)
	var qs []client.MessageQueue
	for {
		var err error
		if qs, err = cli.Queues(Topic); err == nil && len(qs) == QueuesPerGroup*len(Groups) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("drain: the topic's %d queues not routed within %v (have %d; %v)", QueuesPerGroup*len(Groups), bound, len(qs), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	out := map[linearizability.QueueKey][]linearizability.PulledMsg{}
	for _, q := range qs {
		key := queueKey(q)
		out[key] = []linearizability.PulledMsg{}
		var offset int64
		for {
			if time.Now().After(deadline) {
				return out, fmt.Errorf("drain of %v did not finish within %v (at offset %d)", key, bound, offset)
			}
			res, err := r.pull(cli, 999, client.PullRequest{Queue: q, Group: "JepsenDrain", Offset: offset, MaxMsgs: 256})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if res.Status == codec.Success {
				for _, m := range res.Msgs {
					if id, ok := r.verify(m); ok {
						out[key] = append(out[key], linearizability.PulledMsg{Offset: m.QueueOffset, MsgID: id})
					}
					offset = m.QueueOffset + 1
				}
				continue
			}
			_, _ = c.syncState(q.BrokerName)
			if res.Status == codec.PullNotFound && res.Addr != "" && res.Addr == c.masterAddr(q.BrokerName) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return out, nil
}
