package runtime

import (
	"sync"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

type eventKind uint8

const (
	evFunc          eventKind = iota + 1 // run fn (Post, Do)
	evAccepted                           // c was accepted by the listener
	evDialed                             // outbound c is connected
	evFrame                              // cmd arrived on c
	evClosed                             // c ended (peer, error, failed dial)
	evDeliverClosed                      // deliver OnConnClosed for c, already removed
	evTimer                              // timer fired
	evSynced                             // a sync of logName up to upTo completed
)

// event is one thing for the loop to do. It is a value, not an interface, so posting a frame
// costs no allocation beyond the decoded command.
type event struct {
	kind    eventKind
	c       *conn
	cmd     *codec.Command
	fn      func()
	timer   node.TimerID
	logName string
	upTo    uint64
	err     error
}

// queue is the loop's inbox: a mutex-protected slice the loop swaps out whole, so one wakeup
// drains every event posted since the last one.
type queue struct {
	mu         sync.Mutex
	evs        []event
	closed     bool
	frameBytes int // bytes of frames in evs
	maxFrameB  int
	waiters    int
	space      sync.Cond // signalled when frameBytes drops or the queue closes
	wake       chan struct{}
}

func (q *queue) init(maxFrameBytes int) {
	q.maxFrameB = maxFrameBytes
	q.space.L = &q.mu
	q.wake = make(chan struct{}, 1)
}

// post queues e and never blocks. It reports false if the queue is closed.
func (q *queue) post(e event) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.evs = append(q.evs, e)
	first := len(q.evs) == 1
	q.mu.Unlock()
	if first {
		q.signal()
	}
	return true
}

// postFrame queues a frame event of size bytes, first waiting while the queued frames exceed
// the bound (backpressure onto the reader). It reports false if the queue is closed.
func (q *queue) postFrame(e event, size int) bool {
	q.mu.Lock()
	for q.frameBytes > q.maxFrameB && !q.closed {
		q.waiters++
		q.space.Wait()
		q.waiters--
	}
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.evs = append(q.evs, e)
	q.frameBytes += size
	first := len(q.evs) == 1
	q.mu.Unlock()
	if first {
		q.signal()
	}
	return true
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every queued event, leaving spare (emptied) as the new queue.
func (q *queue) take(spare []event) []event {
	q.mu.Lock()
	batch := q.evs
	q.evs = spare[:0]
	q.frameBytes = 0
	if q.waiters > 0 {
		q.space.Broadcast()
	}
	q.mu.Unlock()
	return batch
}

// close drops every queued event and makes later posts no-ops.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.evs = nil
	q.space.Broadcast()
	q.mu.Unlock()
}
