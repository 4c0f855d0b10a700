package store

import (
	"errors"
	"fmt"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// Open consume-queue logs are a bounded resource: on the production disk every open log holds
// file descriptors (the wal's tail segment, and the descriptor Sync fsyncs through), and a
// broker carries tens of thousands of queues. So a queue's log is opened on demand and at
// most Options.MaxOpenQueueFiles of them are open at once; opening one more closes the least
// recently used (a list ordered by use, so the choice never depends on map order or time).
//
// A closed queue keeps in memory only what the store needs without its log: its bounds
// (first and last log index), its confirmed end, the commit-log indexes of its head and tail
// entries when known, and whether it is dirty. Reading or appending reopens it.
//
// Closing is safe with the checkpoint protocol because nothing assumes that closing makes a
// log durable: a dirty queue stays dirty when closed, and BeginCheckpoint reopens it to hand
// its log to the checkpoint. Unless the disk says its Close is as good as a sync
// (node.DurableCloser, as the production disk's is): then a queue closed without error is
// clean, and no checkpoint reopens it. A log handed to a checkpoint may be closed before its sync runs;
// runtimes sync by name or report what the close made durable (node.Env.Sync).
//
// Reopening checks the log against the bounds remembered at close. Any difference fails the
// store (reopen required), as a corrupt log does. A last entry that fails its checksum (a bit
// flipped in it while the log was closed; the disk keeps a whole entry however it reads) is
// rebuilt from the commit-log record it pointed at.

// DefaultMaxOpenQueueFiles is the open consume-queue logs used when
// Options.MaxOpenQueueFiles is zero.
const DefaultMaxOpenQueueFiles = 1000

// queueFiles owns the open consume-queue logs: the budget and the use order.
type queueFiles struct {
	disk   node.Disk
	budget int
	open   int
	// head is the most recently used open queue, tail the least; linked through prev/next.
	head, tail *consumeQueue
	// broken is set when a reopened log could not be reconciled with what the store knew of
	// it; the store fails (usable).
	broken error
	// buf is the entry-encoding scratch shared by all queues.
	buf []byte
	// commitLog is the store's commit log, for reconcile.
	commitLog node.Log

	opens, closes uint64
}

// touch marks q, which is open, as the most recently used.
func (f *queueFiles) touch(q *consumeQueue) {
	if f.head == q {
		return
	}
	f.unlink(q)
	f.pushFront(q)
}

func (f *queueFiles) pushFront(q *consumeQueue) {
	q.prev, q.next = nil, f.head
	if f.head != nil {
		f.head.prev = q
	}
	f.head = q
	if f.tail == nil {
		f.tail = q
	}
}

func (f *queueFiles) unlink(q *consumeQueue) {
	if q.prev != nil {
		q.prev.next = q.next
	} else if f.head == q {
		f.head = q.next
	}
	if q.next != nil {
		q.next.prev = q.prev
	} else if f.tail == q {
		f.tail = q.prev
	}
	q.prev, q.next = nil, nil
}

// makeRoom closes least recently used queues until one more log may be opened.
func (f *queueFiles) makeRoom() {
	for f.open >= f.budget && f.tail != nil {
		f.close(f.tail)
	}
}

// close closes q's log, remembering its bounds. A close error is not the store's failure:
// what the log lost (if anything) shows when it is reopened (reconcile), and the queue stays
// dirty if it was, so the next checkpoint reopens and syncs it.
func (f *queueFiles) close(q *consumeQueue) error {
	if q.log == nil {
		return nil
	}
	q.first, q.last = q.log.FirstIndex(), q.log.LastIndex()
	dc, durable := q.log.(node.DurableCloser)
	err := q.log.Close()
	if err == nil && durable && dc.ClosesDurably() {
		q.dirty = false // everything it held is durable, its front truncation applied
	}
	q.log = nil
	f.unlink(q)
	f.open--
	f.closes++
	if err != nil {
		return fmt.Errorf("store: close consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	return nil
}

// use returns q's log, opening it (and closing the least recently used if the budget is
// spent) if it is closed.
func (q *consumeQueue) use() (node.Log, error) {
	f := q.files
	if q.log != nil {
		f.touch(q)
		return q.log, nil
	}
	if f.broken != nil {
		return nil, f.broken
	}
	f.makeRoom()
	l, err := f.disk.OpenLog(queueLogName(q.key.topic, q.key.queueID))
	if err != nil {
		return nil, fmt.Errorf("store: open consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	f.opens++
	q.log = l
	f.open++
	f.pushFront(q)
	if err := q.reconcile(); err != nil {
		f.broken = err
		return nil, err
	}
	return l, nil
}

// reconcile checks the reopened log against the bounds remembered at close (see above).
func (q *consumeQueue) reconcile() error {
	l := q.log
	first, last := l.FirstIndex(), l.LastIndex()
	if first == q.first && last == q.last {
		if q.tailIdx == 0 || last < first {
			return nil
		}
		if _, err := l.Read(last); !errors.Is(err, node.ErrCorrupt) {
			return nil // any other error shows when the entry is read
		}
		// The last entry fails its checksum: put it back from its commit-log record.
		b, err := q.rebuiltTail()
		if err == nil {
			err = l.TruncateBack(last - 1)
		}
		if err == nil {
			_, err = l.Append(b)
		}
		if err == nil {
			q.dirty = true
			return nil
		}
		return fmt.Errorf("%w: consume queue %s/%d's last entry (commit log index %d) was corrupted while closed, and it cannot be rebuilt: %w",
			ErrCorrupt, q.key.topic, q.key.queueID, q.tailIdx, err)
	}
	return fmt.Errorf("%w: consume queue %s/%d reopened with entries %d..%d, it had %d..%d when closed",
		ErrCorrupt, q.key.topic, q.key.queueID, first, last, q.first, q.last)
}

// rebuiltTail is the encoded entry of the queue's last offset, made from the commit-log
// record at tailIdx, which must be that offset's message.
func (q *consumeQueue) rebuiltTail() ([]byte, error) {
	rec, err := q.files.commitLog.Read(q.tailIdx)
	if err != nil {
		return nil, err
	}
	m, n, err := codec.DecodeRecord(rec)
	if err != nil || n != len(rec) {
		return nil, fmt.Errorf("commit log index %d does not decode: %v", q.tailIdx, err)
	}
	if m.Topic != q.key.topic || m.QueueID != q.key.queueID || m.QueueOffset != int64(q.last)-1 {
		return nil, fmt.Errorf("commit log index %d holds %s/%d offset %d", q.tailIdx, m.Topic, m.QueueID, m.QueueOffset)
	}
	return encodeCQEntry(nil, q.tailIdx, len(rec), tagsHashOf(m)), nil
}

// OpenQueueFiles reports how many consume-queue logs are open, the budget, and how often
// logs were opened and closed, for tests and statistics.
func (s *Store) OpenQueueFiles() (open, budget int, opens, closes uint64) {
	f := s.files
	return f.open, f.budget, f.opens, f.closes
}
