package store

import (
	"fmt"

	"github.com/sluicemq/sluice/broker/node"
)

// A replica whose log ends below its master's first index (it was offline while retention on
// the master removed segments it had not fetched, or it is new and the master's log no longer
// starts at 1) cannot continue its log: what it lacks is gone. It restarts instead, as a
// RocketMQ slave does: Rebase drops every message it holds and restarts the commit log at the
// master's first index, and each consume queue, emptied, takes the queue offset of the first
// replicated record it receives (rebaseQueue), so every queue's min offset moves up to the
// master's. The offsets in between belong to messages below the commit log's first index,
// which this store never holds again: a pull there is moved up, as after retention.
//
// Cost: the production disk rewrites a rebased log's files at once, on the event loop (an
// empty segment file made durable, the old ones removed): a few fsyncs for the commit log and
// for each queue that moves. A replica with very many queues stalls for that long, once per
// rebase, which only a replica that was away past its master's retention ever does.
//
// rebase.json records that the store was rebased (and where): only then may an empty queue
// skip offsets; in a store never rebased a gap in a queue's offsets is a divergence
// (ErrDiverged) or corruption, as before.

const rebaseFile = "rebase.json"

type rebaseDoc struct {
	// CommitLogIndex is where the commit log restarted, the last time it was rebased.
	CommitLogIndex uint64 `json:"commitLogIndex"`
}

// Rebased returns the commit-log index the store was last rebased to (0: never).
func (s *Store) Rebased() uint64 { return s.rebasedAt }

// Rebase drops every message of the store and restarts its commit log at first: afterwards
// CommitLog().FirstIndex() is first, the log is empty, Confirmed() and Checkpoint() are
// first-1. Topics, consumer offsets and tombstones stay; the consume queues and the key index
// are emptied (their files follow at the next checkpoint, as after retention). It is for a
// replica of a broker group, whose queue offsets come from its master's records.
//
// Order, so that a crash at any step recovers to a store the replica's next handshake rebases
// again: rebase.json first (harmless alone), then the queues and the key index are emptied,
// then the commit log is rebased (node.Rebaser: durable, whole or not at all), then the
// checkpoint is lowered. A failure after the queues were emptied fails the store (reopen).
func (s *Store) Rebase(first uint64) error {
	if err := s.usable(); err != nil {
		return err
	}
	if first == 0 {
		return fmt.Errorf("store: rebase to commit-log index 0")
	}
	r, ok := s.commitLog.(node.Rebaser)
	if !ok {
		return fmt.Errorf("store: rebase: the commit log (%T) cannot be rebased", s.commitLog)
	}
	oldFirst, oldLast := s.commitLog.FirstIndex(), s.commitLog.LastIndex()
	if s.inFlight != nil {
		// Its syncs were of entries about to go.
		for _, q := range s.inFlight.queues {
			q.dirty = true
		}
		s.keysDirty = s.keysDirty || s.inFlight.keys
		s.inFlight = nil
	}
	if err := writeJSON(s.disk, rebaseFile, rebaseDoc{CommitLogIndex: first}); err != nil {
		return fmt.Errorf("store: rebase to %d: %w", first, err)
	}
	s.rebasedAt = first
	if err := s.trimFronts(max(oldLast+1, first)); err != nil {
		return s.fail(fmt.Errorf("rebase to %d: %w", first, err))
	}
	if err := r.Rebase(first); err != nil {
		return s.fail(fmt.Errorf("rebase commit log to %d: %w", first, err))
	}
	if err := s.clampTombstones(first - 1); err != nil {
		return s.fail(fmt.Errorf("rebase to %d: %w", first, err))
	}
	if err := writeJSON(s.disk, checkpointFile, checkpointDoc{CommitLogIndex: first - 1}); err != nil {
		return s.fail(fmt.Errorf("rebase to %d: lower the checkpoint: %w", first, err))
	}
	s.checkpoint = first - 1
	s.confirmed = first - 1
	clear(s.pending)
	s.pending = s.pending[:0]
	s.pendingFirst = first
	s.unplaced = nil
	for _, q := range s.queues {
		if q.end() != q.start() {
			panic(fmt.Sprintf("store: consume queue %s/%d kept offsets %d..%d through a rebase", q.key.topic, q.key.queueID, q.start(), q.end()))
		}
		q.confirmedEnd = q.end()
	}
	s.logger.Warn("store: dropped every message and restarted the commit log at the master's first index",
		"first", first, "was", fmt.Sprintf("%d..%d", oldFirst, oldLast))
	return nil
}

// rebaseQueue lets an empty queue of a rebased store start at the queue offset of the first
// record it gets (see above), and reports whether it moved. In a store never rebased, or for
// a queue holding entries, it does nothing: the caller's check of the offset stands.
func (s *Store) rebaseQueue(q *consumeQueue, offset int64) (bool, error) {
	if s.rebasedAt == 0 || q.end() != q.start() || offset == q.end() || offset < 0 {
		return false, nil
	}
	l, err := q.use()
	if err != nil {
		return false, err
	}
	r, ok := l.(node.Rebaser)
	if !ok {
		return false, fmt.Errorf("store: rebase consume queue %s/%d: its log (%T) cannot be rebased", q.key.topic, q.key.queueID, l)
	}
	was := q.end()
	if err := r.Rebase(uint64(offset) + 1); err != nil {
		return false, fmt.Errorf("store: rebase consume queue %s/%d to offset %d: %w", q.key.topic, q.key.queueID, offset, err)
	}
	q.confirmedEnd = offset
	q.headIdx, q.tailIdx = 0, 0
	q.dirty = true
	s.logger.Info("store: consume queue restarted at its master's offset", "topic", q.key.topic, "queue", q.key.queueID,
		"from", was, "to", offset)
	return true, nil
}

// loadRebased reads rebase.json at recovery.
func (s *Store) loadRebased() error {
	var doc rebaseDoc
	if _, err := readJSON(s.disk, rebaseFile, &doc); err != nil {
		return err
	}
	s.rebasedAt = doc.CommitLogIndex
	return nil
}

// QueueStart is where one consume queue starts: its min offset.
type QueueStart struct {
	Topic   string `json:"topic"`
	QueueID int32  `json:"queueId"`
	Offset  int64  `json:"offset"`
}

// QueueStarts lists every queue's min offset, sorted by topic and queue: on a master, the
// offsets a replica rebased to its first index starts its queues at (StartQueuesAt).
func (s *Store) QueueStarts() []QueueStart {
	qs := s.sortedQueues()
	out := make([]QueueStart, 0, len(qs))
	for _, q := range qs {
		out = append(out, QueueStart{Topic: q.key.topic, QueueID: q.key.queueID, Offset: q.start()})
	}
	return out
}

// StartQueuesAt starts the empty queues of a rebased store at its master's offsets (the
// master's QueueStarts when its commit log started where this one restarted), creating the
// queues (and topics) it lacks: a queue no record after the restart index reaches would
// otherwise keep its old end, and a replica elected master later would hand out offsets the
// group already used. Queues holding entries are left alone.
func (s *Store) StartQueuesAt(starts []QueueStart) error {
	if err := s.usable(); err != nil {
		return err
	}
	if s.rebasedAt == 0 {
		return fmt.Errorf("store: start queues at a master's offsets: the store was never rebased")
	}
	for _, st := range starts {
		if !ValidTopicName(st.Topic) || st.QueueID < 0 || st.QueueID >= MaxQueueNums || st.Offset < 0 {
			return fmt.Errorf("store: start queue %q/%d at %d: not a queue", st.Topic, st.QueueID, st.Offset)
		}
		if err := s.ensureReplicaTopic(st.Topic, st.QueueID); err != nil {
			return err
		}
		q, err := s.openQueue(st.Topic, st.QueueID)
		if err != nil {
			return err
		}
		if _, err := s.rebaseQueue(q, st.Offset); err != nil {
			return err
		}
	}
	return nil
}
