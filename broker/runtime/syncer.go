package runtime

import (
	"sync"

	"github.com/sluicemq/sluice/broker/node"
)

// syncer makes logs durable off the loop, covering many requests with one fsync (group
// commit). Request must not block; done runs on the syncer's goroutine.
type syncer interface {
	Request(l node.Log, upTo uint64, done func(upTo uint64, err error))
	Close()
}

// newSyncer is the syncer Start gives the node.
var newSyncer = func() syncer { return newGroupSyncer() }

// groupSyncer is a minimal group-commit syncer: one goroutine takes every pending request,
// syncs each log they name once, and completes them all.
type groupSyncer struct {
	mu      sync.Mutex
	pending []syncRequest
	closed  bool
	wake    chan struct{}
	exited  chan struct{}
}

type syncRequest struct {
	l    node.Log
	upTo uint64
	done func(upTo uint64, err error)
}

func newGroupSyncer() *groupSyncer {
	s := &groupSyncer{wake: make(chan struct{}, 1), exited: make(chan struct{})}
	go s.run()
	return s
}

func (s *groupSyncer) Request(l node.Log, upTo uint64, done func(upTo uint64, err error)) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.pending = append(s.pending, syncRequest{l, upTo, done})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops the syncer after the batch in progress; requests not yet started are dropped.
func (s *groupSyncer) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		close(s.wake)
	}
	<-s.exited
}

func (s *groupSyncer) run() {
	defer close(s.exited)
	for range s.wake {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		// Every request was made after its entries were appended, so one Sync per log now
		// covers them all.
		errs := make(map[node.Log]error, 1)
		for _, req := range batch {
			err, synced := errs[req.l]
			if !synced {
				err = req.l.Sync()
				errs[req.l] = err
			}
			req.done(req.upTo, err)
		}
	}
}
