package diskfile

import (
	"errors"
	"sync"

	"github.com/sluicemq/sluice/broker/node"
)

// SyncerQueueLen bounds the Syncer's request queue. Request blocks while it is full. The
// worker empties the queue into its pending lists before every fsync, so at most about twice
// this many requests are held at once.
const SyncerQueueLen = 4096

// ErrSyncerClosed is passed to done for a request made after Close.
var ErrSyncerClosed = errors.New("syncer closed")

// Syncer is group commit: one worker goroutine that fsyncs logs on request, covering every
// request pending for a log with one Log.Sync. Requests that arrive while an fsync runs wait
// for the next one, which covers all of them. Requests for different logs are independent:
// each log gets its own Sync and its own result; logs are served in the order their oldest
// pending request arrived.
type Syncer struct {
	reqs    chan syncRequest
	mu      sync.RWMutex // held for reading while sending on reqs, for writing by Close
	closed  bool
	stopped chan struct{}
}

type syncRequest struct {
	log  node.Log
	upTo uint64
	done func(upTo uint64, err error)
}

// NewSyncer starts a Syncer's worker goroutine. Call Close to stop it.
func NewSyncer() *Syncer {
	s := &Syncer{
		reqs:    make(chan syncRequest, SyncerQueueLen),
		stopped: make(chan struct{}),
	}
	go s.run()
	return s
}

// Request asks for l to be durable up to index upTo (which the caller has appended). Once a
// Sync started after this call has finished, done is called on the worker goroutine with
// upTo and the Sync's error. A request made after Close gets done(upTo, ErrSyncerClosed) at
// once, on the caller's goroutine. Request blocks while the queue is full. done must not
// block and must not call Request (the production runtime posts the result to its event
// loop and returns).
func (s *Syncer) Request(l node.Log, upTo uint64, done func(upTo uint64, err error)) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		done(upTo, ErrSyncerClosed)
		return
	}
	s.reqs <- syncRequest{log: l, upTo: upTo, done: done}
	s.mu.RUnlock()
}

// Close serves every request already made, then stops the worker and returns. Closing twice
// is a no-op.
func (s *Syncer) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.reqs)
	}
	s.mu.Unlock()
	<-s.stopped
}

// run is the worker loop. pending holds the requests per log not yet covered by a Sync;
// order is the logs with pending requests, oldest first.
func (s *Syncer) run() {
	defer close(s.stopped)
	pending := make(map[node.Log][]syncRequest)
	var order []node.Log
	add := func(r syncRequest) {
		if _, ok := pending[r.log]; !ok {
			order = append(order, r.log)
		}
		pending[r.log] = append(pending[r.log], r)
	}
	open := true
	for open || len(order) > 0 {
		if len(order) == 0 {
			r, ok := <-s.reqs // idle: block for work
			if !ok {
				open = false
				continue
			}
			add(r)
		}
		// Take everything already queued, so one Sync covers it.
	drain:
		for open {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					open = false
					break drain
				}
				add(r)
			default:
				break drain
			}
		}
		l := order[0]
		order[0] = nil
		order = order[1:]
		batch := pending[l]
		delete(pending, l)
		err := l.Sync()
		for _, r := range batch {
			r.done(r.upTo, err)
		}
	}
}
