package store

import (
	"errors"
	"fmt"
	"math"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// Retention: the oldest messages leave the store as a prefix of the commit log, as RocketMQ
// deletes whole commit-log files (DefaultMessageStore.CleanCommitLogService): the expired ones
// (stored before a deadline), and under disk pressure the oldest ones whatever their age. The
// consume queues and the key index lose their entries for those messages with them, so every
// queue's min offset moves up to its first message still held.
//
// What is still needed is never removed: entries not yet confirmed or not yet covered by the
// checkpoint (recovery replays from the checkpoint), an unreadable record not yet placed
// (holes.go), anything at or above the caller's KeepFrom (what a slave has not fetched yet),
// and the entries of Protected queues at or above their group's offset (delayed messages not
// yet due, transaction halves not yet resolved).
//
// A log may apply a front truncation to its files only at its next sync (the production disk
// does, so that the file work runs on the runtime's disk worker, not on the event loop): the
// queues and the key index are marked for the next checkpoint, which syncs them, and the
// commit log is synced all the time. Until then a crash brings removed entries back, which is
// harmless: the next Retain removes them again.
//
// Order, so that a crash at any point loses nothing kept: the consume queues first, then the
// key index, then the commit log. A crash between the steps leaves queues that start later
// than the commit log, which is harmless (the next Retain finds the same cut and finishes).
// The opposite, queue entries pointing below the commit log's first index (a file system that
// lost a queue's truncation but kept the commit log's), is repaired at open (trimFronts).

// RetentionPolicy says what one Retain may remove.
type RetentionPolicy struct {
	// ExpireBeforeMs: a message stored before this time (milliseconds since the epoch) is
	// expired. 0 expires nothing by age.
	ExpireBeforeMs int64
	// Force removes the oldest segment of the commit log (or, on a log without segments, the
	// oldest eighth of its entries) even if nothing in it expired: the disk is short of space.
	Force bool
	// KeepFrom keeps every commit-log index at or above it (0: no such bound): the broker
	// passes the lowest index a slave of its group has not fetched yet.
	KeepFrom uint64
	// Protected keeps, for every queue of Topic, the entries at and above Group's offset on
	// that queue (all of the queue when the group has none).
	Protected []ProtectedQueues
}

// ProtectedQueues names a topic whose unconsumed entries (by Group's offsets) retention keeps.
type ProtectedQueues struct {
	Group, Topic string
}

// RetentionResult says what one Retain removed.
type RetentionResult struct {
	// From and To: commit-log indexes From..To-1 were removed (From == To: none).
	From, To uint64
	// Limit is the highest cut the kept-entry rules allowed (the cut may be lower).
	Limit uint64
	// Segments is how many segments of the commit log the cut emptied (0 on a log without
	// segments).
	Segments int
}

// Removed is the number of commit-log entries removed.
func (r RetentionResult) Removed() uint64 { return r.To - r.From }

// retentionStep names the steps of Retain, for crash tests.
type retentionStep string

const (
	stepQueues   retentionStep = "queues"
	stepKeyIndex retentionStep = "keyindex"
)

// Retain removes the prefix of the commit log that p allows, with the consume-queue and
// key-index entries for it. It reads O(log n) records per log it trims (binary searches), and
// each trimmed log's TruncateFront: on the production disk that removes whole segment files
// and rewrites the one segment the cut falls in. A failure before the commit log is trimmed
// changes nothing that matters (the next call redoes it); a failed commit-log truncation fails
// the store like any failed write.
func (s *Store) Retain(p RetentionPolicy) (RetentionResult, error) {
	if err := s.usable(); err != nil {
		return RetentionResult{}, err
	}
	first := s.commitLog.FirstIndex()
	limit, err := s.retentionLimit(p)
	if err != nil {
		return RetentionResult{From: first, To: first}, err
	}
	res := RetentionResult{From: first, To: first, Limit: limit}
	if limit <= first {
		return res, nil
	}
	cut := first
	if p.ExpireBeforeMs != 0 {
		// The usual answer, from one read of the oldest record (its segment stays cached):
		// nothing has expired yet.
		ts, err := s.recordTime(first)
		if err != nil {
			return res, err
		}
		if ts < p.ExpireBeforeMs {
			if cut, err = s.firstUnexpired(first, limit, p.ExpireBeforeMs); err != nil {
				return res, err
			}
		}
	}
	starts := segmentStarts(s.commitLog)
	if len(starts) > 0 {
		// Whole segments only: the cut moves down to the start of the segment it falls in.
		cut = floorStart(starts, cut, first)
	}
	if p.Force {
		forced := first + max(1, (limit-first)/8)
		if len(starts) > 0 {
			// The end of the oldest segment still holding entries (the starts may still list
			// segments a front truncation removed, until the log's next sync); never inside
			// the tail segment, which RocketMQ never deletes either.
			forced = first
			for _, st := range starts {
				if st > first {
					forced = st
					break
				}
			}
		}
		cut = max(cut, min(forced, limit))
	}
	if cut <= first {
		return res, nil
	}
	if cut > s.confirmed+1 || cut > s.checkpoint+1 {
		panic(fmt.Sprintf("store: retention cut %d above confirmed %d or checkpoint %d", cut, s.confirmed, s.checkpoint))
	}
	if err := s.trimFronts(cut); err != nil {
		return res, err
	}
	if err := s.commitLog.TruncateFront(cut); err != nil {
		return res, s.fail(fmt.Errorf("retention: truncate commit log front to %d: %w", cut, err))
	}
	res.To = cut
	res.Segments = segmentsEmptied(starts, first, cut)
	s.logger.Info("store: retention removed old messages", "fromIndex", first, "toIndex", cut-1,
		"forced", p.Force)
	return res, nil
}

// retentionLimit is the lowest commit-log index Retain must keep.
func (s *Store) retentionLimit(p RetentionPolicy) (uint64, error) {
	limit := min(s.checkpoint+1, s.confirmed+1, s.commitLog.LastIndex()+1)
	if s.inFlight != nil {
		limit = min(limit, s.inFlight.upTo+1)
	}
	if len(s.unplaced) > 0 {
		limit = min(limit, s.unplaced[0])
	}
	if p.KeepFrom != 0 {
		limit = min(limit, p.KeepFrom)
	}
	for _, pq := range p.Protected {
		for _, q := range s.queuesOf(pq.Topic) {
			off, ok := s.offsets[offsetKey{pq.Group, pq.Topic, q.key.queueID}]
			if !ok {
				off = q.start()
			}
			off = max(off, q.start())
			if off >= q.end() {
				continue
			}
			index, _, _, err := q.entry(off)
			if err != nil {
				return 0, fmt.Errorf("store: retention: protected queue %s/%d offset %d: %w", pq.Topic, q.key.queueID, off, err)
			}
			limit = min(limit, index)
		}
	}
	return limit, nil
}

// firstUnexpired binary-searches [first, limit) for the first record stored at or after
// deadlineMs (limit if none): store times are non-decreasing along the commit log, except where
// a clock stepped back, which makes the answer one of the indexes around the step.
func (s *Store) firstUnexpired(first, limit uint64, deadlineMs int64) (uint64, error) {
	lo, hi := first, limit
	for lo < hi {
		mid := lo + (hi-lo)/2
		ts, err := s.recordTime(mid)
		if err != nil {
			return first, err
		}
		if ts < deadlineMs {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// recordTime reads the store time of the commit-log record at idx. A record that fails its
// checksum counts as not expired, so an unreadable record holds retention at itself rather
// than letting a guess remove newer messages.
func (s *Store) recordTime(idx uint64) (int64, error) {
	rec, err := s.commitLog.Read(idx)
	if errors.Is(err, node.ErrCorrupt) {
		return math.MaxInt64, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: retention: read commit log index %d: %w", idx, err)
	}
	m, _, err := codec.DecodeRecord(rec)
	if err != nil {
		return math.MaxInt64, nil
	}
	return m.StoreTimestamp, nil
}

// trimFronts removes, from every consume queue and the key index, the entries for commit-log
// indexes below cut.
func (s *Store) trimFronts(cut uint64) error {
	for _, q := range s.sortedQueues() {
		if err := q.trimBefore(cut); err != nil {
			return err
		}
	}
	if s.afterRetentionStep != nil {
		if err := s.afterRetentionStep(stepQueues); err != nil {
			return err
		}
	}
	if s.keys != nil {
		if err := s.keys.TruncateBefore(cut); err != nil {
			return fmt.Errorf("store: retention: %w", err)
		}
		s.keysDirty = true
	}
	if s.afterRetentionStep != nil {
		return s.afterRetentionStep(stepKeyIndex)
	}
	return nil
}

// trimBefore removes the queue's entries for commit-log indexes below cut (a prefix: indexes
// grow along a queue). A queue left empty keeps its end: its min offset equals its max.
func (q *consumeQueue) trimBefore(cut uint64) error {
	if q.end() <= q.start() {
		return nil
	}
	if err := q.learnHead(); err != nil {
		return fmt.Errorf("store: retention: head of consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	if q.headIdx >= cut {
		return nil // the usual case, answered without reading the queue
	}
	// Invariant: offsets below lo point below cut; offsets at or above hi do not.
	lo, hi := q.start(), q.end()
	for lo < hi {
		mid := lo + (hi-lo)/2
		index, _, _, err := q.entry(mid)
		if err != nil {
			return fmt.Errorf("store: retention: consume queue %s/%d offset %d: %w", q.key.topic, q.key.queueID, mid, err)
		}
		if index < cut {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo <= q.start() {
		return nil
	}
	l, err := q.use()
	if err != nil {
		return fmt.Errorf("store: retention: consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	if err := l.TruncateFront(uint64(lo) + 1); err != nil {
		return fmt.Errorf("store: retention: truncate consume queue %s/%d front to offset %d: %w", q.key.topic, q.key.queueID, lo, err)
	}
	q.dirty = true // the next checkpoint's sync applies the truncation to the files
	q.headIdx = 0
	if q.end() <= q.start() {
		q.tailIdx = 0
		return nil
	}
	// Learn the new head while the log is open, so the next Retain need not open it.
	if err := q.learnHead(); err != nil {
		return fmt.Errorf("store: retention: new head of consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	return nil
}

// trimToCommitLog is recovery's step: entries of the consume queues and the key index that
// point below the commit log's first index are removed (see the order above).
func (s *Store) trimToCommitLog() error {
	first := s.commitLog.FirstIndex()
	if first <= 1 {
		return nil
	}
	if err := s.trimFronts(first); err != nil {
		// Not fatal: reads of those entries find no record (MESSAGE_WAS_REMOVING) and move on.
		s.logger.Warn("store: recovery could not trim an index to the commit log's first index", "first", first, "err", err)
	}
	return nil
}

// segmentStarts returns l's segment starts if it has segments.
func segmentStarts(l node.Log) []uint64 {
	if sl, ok := l.(node.SegmentedLog); ok {
		return sl.SegmentStarts()
	}
	return nil
}

// segmentsEmptied counts the segments (by their starts, ascending; the last is the tail) that
// held entries at or above first and hold none once the log starts at cut.
func segmentsEmptied(starts []uint64, first, cut uint64) int {
	n := 0
	for i := 0; i+1 < len(starts); i++ {
		if end := starts[i+1]; end > first && end <= cut {
			n++
		}
	}
	return n
}

// floorStart returns the greatest segment start at or below cut, but not below first.
func floorStart(starts []uint64, cut, first uint64) uint64 {
	out := first
	for _, st := range starts {
		if st > cut {
			break
		}
		out = max(out, st)
	}
	return out
}
