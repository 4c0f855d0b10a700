package store

import (
	"errors"
	"fmt"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// What replication needs of the store (package replication decides where a replica's log
// diverges from its master's; the broker drives the rest):
//
//   - TruncateAfter cuts the commit log back to a given index, dropping the consume-queue and
//     key-index entries of what goes. Consumer offsets are left alone: a consumer whose offset
//     now lies beyond a queue's end is moved back by the pull's OFFSET_MOVED answer.
//   - AppendReplica appends a record exactly as the master stored it, at the index the master
//     stored it at (the commit-log index is the message's physical offset, identical on every
//     replica), and indexes it as Append does.
//   - ReadRecords reads raw records from an index, for a master serving its replicas.

// ErrDiverged is wrapped by AppendReplica when a record does not continue the local log: it
// is for another index, or its queue offset is not the next one of its queue. The replica
// must find the point where its log and the master's agree again (a new handshake).
var ErrDiverged = errors.New("store: replicated record does not continue the log")

// TruncateAfter removes every commit-log entry after index (keeps ..index), with the
// consume-queue and key-index entries pointing at them. Confirmed() drops to index if it was
// above; the unconfirmed entries at or below index stay unconfirmed. A checkpoint in flight is
// abandoned (FinishCheckpoint then fails; the next BeginCheckpoint covers its logs again).
// index at or above the last index is a no-op; index must be at least FirstIndex()-1.
//
// It is crash-safe at every step, by doing in place what recovery (Open) does after a crash:
//
//  1. cp = min(checkpoint, index). checkpoint.json is lowered to cp first, durably: from then
//     on, a recovery rebuilds every consume-queue entry above cp from the commit log, whatever
//     is left of the steps below.
//  2. The key index and every consume queue drop their entries above cp.
//  3. The commit log is truncated after index (truncations are durable at once).
//  4. Tombstones of deleted topics above index are lowered to it (recovery does the same when
//     a crash cut the commit log shorter).
//  5. Commit-log entries cp+1..index are replayed into their queues and the key index.
//
// A crash before step 3 completes leaves the whole log, which recovery indexes again: the
// caller (replication) must then truncate again, which it does since it decides from the log
// and the epoch table it keeps, updated only after TruncateAfter returns. A failure after step
// 1 leaves the logs in an unknown state: the store fails (ErrClosed) and must be reopened,
// which recovers it as after a crash.
func (s *Store) TruncateAfter(index uint64) error {
	if err := s.usable(); err != nil {
		return err
	}
	first, last := s.commitLog.FirstIndex(), s.commitLog.LastIndex()
	if index >= last {
		return nil
	}
	if index+1 < first {
		return fmt.Errorf("store: truncate after %d: the commit log starts at %d", index, first)
	}
	// A checkpoint in flight may cover entries that are about to be rebuilt: the syncs it
	// waits for were of the old entries.
	if s.inFlight != nil {
		for _, q := range s.inFlight.queues {
			q.dirty = true
		}
		s.keysDirty = s.keysDirty || s.inFlight.keys
		s.inFlight = nil
	}
	cp := min(s.checkpoint, index)
	if cp < s.checkpoint {
		if err := writeJSON(s.disk, checkpointFile, checkpointDoc{CommitLogIndex: cp}); err != nil {
			return fmt.Errorf("store: truncate after %d: lower the checkpoint: %w", index, err)
		}
		s.checkpoint = cp
	}
	if err := s.keys.TruncateFrom(cp + 1); err != nil {
		return s.fail(fmt.Errorf("truncate after %d: key index: %w", index, err))
	}
	holes := newReplayHoles()
	for _, q := range s.sortedQueues() {
		if err := q.dropAbove(cp, holes); err != nil {
			return s.fail(fmt.Errorf("truncate after %d: %w", index, err))
		}
	}
	if err := s.commitLog.TruncateBack(index); err != nil {
		return s.fail(fmt.Errorf("truncate commit log after %d: %w", index, err))
	}
	if err := s.clampTombstones(index); err != nil {
		return s.fail(fmt.Errorf("truncate after %d: %w", index, err))
	}

	confirmed := min(s.confirmed, index)
	if cp > confirmed {
		panic(fmt.Sprintf("store: checkpoint %d above the confirmed index %d", cp, confirmed))
	}
	for _, q := range s.queues {
		q.confirmedEnd = q.end() // every entry left points at or below cp
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	s.pendingFirst = confirmed + 1
	if err := s.replayRange(cp+1, index, confirmed, holes); err != nil {
		return s.fail(fmt.Errorf("truncate after %d: rebuild: %w", index, err))
	}
	s.confirmed = confirmed
	for _, q := range s.sortedQueues() {
		q.assertInside(index)
	}
	s.logger.Info("store: commit log truncated", "after", index, "was", last, "checkpoint", cp, "confirmed", confirmed)
	return nil
}

// AppendReplica appends rec, a stored record read from the master's commit log at index, to
// this replica's commit log at the same index, and indexes it in its consume queue and the
// key index as Append does. Like an appended message it stays invisible until Confirm covers
// it. The topic is created (or given more queues) if the record needs it, before the append,
// as the master had it before its append.
//
// rec comes from another node, so it is checked rather than trusted: it must decode as one
// whole record for index (its physical offset), of a legal topic and queue. A record for
// another index than LastIndex()+1, or whose queue offset is not its queue's next offset,
// wraps ErrDiverged; nothing is appended then.
func (s *Store) AppendReplica(index uint64, rec []byte) (AppendResult, error) {
	if err := s.usable(); err != nil {
		return AppendResult{}, err
	}
	if next := s.commitLog.LastIndex() + 1; index != next {
		return AppendResult{}, fmt.Errorf("%w: record for index %d, the commit log's next index is %d", ErrDiverged, index, next)
	}
	m, n, err := codec.DecodeRecord(rec)
	if err != nil || n != len(rec) {
		return AppendResult{}, fmt.Errorf("store: replicated record for index %d: not one whole record (%d of %d bytes): %v", index, n, len(rec), err)
	}
	if m.PhysicalOffset != int64(index) {
		return AppendResult{}, fmt.Errorf("store: replicated record for index %d carries physical offset %d", index, m.PhysicalOffset)
	}
	if !ValidTopicName(m.Topic) || m.QueueID < 0 || m.QueueID >= MaxQueueNums {
		return AppendResult{}, fmt.Errorf("store: replicated record for index %d: topic %q queue %d", index, m.Topic, m.QueueID)
	}
	var q *consumeQueue
	if !s.deletedAt(m.Topic, index) {
		// A deleted incarnation's record does not bring its topic back.
		if err := s.ensureReplicaTopic(m.Topic, m.QueueID); err != nil {
			return AppendResult{}, err
		}
		if q, err = s.openQueue(m.Topic, m.QueueID); err != nil {
			return AppendResult{}, err
		}
		if _, err := s.rebaseQueue(q, m.QueueOffset); err != nil {
			return AppendResult{}, err
		}
		if m.QueueOffset > q.end() && len(s.unplaced) > 0 {
			// Offsets of records this replica cannot read (holes.go).
			if err := s.fillReplicaGap(q, m.QueueOffset); err != nil && !errors.Is(err, errNoHoles) {
				return AppendResult{}, err
			}
		}
		if next := q.end(); m.QueueOffset != next {
			return AppendResult{}, fmt.Errorf("%w: record for index %d has queue offset %d for %s/%d, whose next offset is %d",
				ErrDiverged, index, m.QueueOffset, m.Topic, m.QueueID, next)
		}
	}
	return s.appendAt(index, rec, m, q)
}

// ensureReplicaTopic makes sure topic exists with queue queueID, creating it or adding
// queues (read and write alike) as needed. A replica learns its topics from the records it
// replicates; their permissions are the default.
func (s *Store) ensureReplicaTopic(topic string, queueID int32) error {
	tc, ok := s.topics[topic]
	if ok && queueID < tc.ReadQueueNums && queueID < tc.WriteQueueNums {
		return nil
	}
	if !ok {
		tc = TopicConfig{Name: topic, Perm: PermReadWrite}
	}
	tc.ReadQueueNums = max(tc.ReadQueueNums, queueID+1)
	tc.WriteQueueNums = max(tc.WriteQueueNums, queueID+1)
	if err := s.CreateTopics(tc); err != nil {
		return fmt.Errorf("store: topic of a replicated record: %w", err)
	}
	return nil
}

// ReadRecords returns the raw records of the commit log from index from on, at most maxBytes
// of them in all (but always the first, if there is one) and none above upTo. An index past
// the last gives none. The records alias stored data and must not be modified.
func (s *Store) ReadRecords(from, upTo uint64, maxBytes int) ([][]byte, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	upTo = min(upTo, s.commitLog.LastIndex())
	if from < s.commitLog.FirstIndex() {
		return nil, fmt.Errorf("store: read records from %d: the commit log starts at %d: %w", from, s.commitLog.FirstIndex(), node.ErrNotFound)
	}
	var out [][]byte
	bytes := 0
	for i := from; i <= upTo; i++ {
		rec, err := s.commitLog.Read(i)
		if err != nil {
			if len(out) > 0 {
				break // serve what precedes it; the next read reports it
			}
			return nil, fmt.Errorf("store: read commit log index %d: %w", i, err)
		}
		if len(out) > 0 && bytes+len(rec) > maxBytes {
			break
		}
		out = append(out, rec)
		bytes += len(rec)
	}
	return out, nil
}

// Failed reports whether the store failed (a disk error left its logs in an unknown state)
// and must be reopened; a store closed by Close is not failed.
func (s *Store) Failed() bool { return s.err != nil && s.err != ErrClosed }

// Reopen recovers a failed store in place, as Open does after a crash: its logs are closed
// and opened again, an interrupted truncation is redone by recovery (see TruncateAfter) or
// by the caller's next TruncateAfter. When reopening fails (the disk still fails), the store
// stays failed and Reopen may be called again later.
func (s *Store) Reopen() error {
	if !s.Failed() {
		return nil
	}
	_ = s.closeLogs() // the logs already failed; their close errors say nothing new
	fresh, err := Open(s.disk, s.opts)
	if err != nil {
		return fmt.Errorf("store: reopen after %v: %w", s.err, err)
	}
	*s = *fresh
	return nil
}
