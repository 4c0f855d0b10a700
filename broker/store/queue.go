package store

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

type queueKey struct {
	topic   string
	queueID int32
}

// consumeQueue is one topic queue's index: queue offset q is at log index q+1. Its log is
// open only while it is among the most recently used (queuefiles.go).
type consumeQueue struct {
	key queueKey
	// log is the open log; nil while the queue is closed.
	log   node.Log
	files *queueFiles
	// first and last are the log's FirstIndex and LastIndex at its last close (meaningful
	// while log is nil).
	first, last uint64
	// confirmedEnd is one past the highest queue offset readers may see.
	confirmedEnd int64
	// dirty: appended (or trimmed) since the last BeginCheckpoint.
	dirty bool
	// headIdx and tailIdx cache the commit-log indexes of the first and the last entry (0:
	// not known), so that retention (retention.go), truncation and recovery need not open
	// every queue; every truncation of the queue's end it affects resets them.
	headIdx, tailIdx uint64
	// prev and next link the open queues by use (queuefiles.go).
	prev, next *consumeQueue
}

func queueLogName(topic string, queueID int32) string {
	return fmt.Sprintf("%s%s/%d", cqPrefix, topic, queueID)
}

// openQueue returns the consume queue with its log open, opening (or creating) it.
func (s *Store) openQueue(topic string, queueID int32) (*consumeQueue, error) {
	k := queueKey{topic, queueID}
	if q, ok := s.queues[k]; ok {
		if _, err := q.use(); err != nil {
			return nil, err
		}
		return q, nil
	}
	if tc, ok := s.topics[topic]; ok {
		k.topic = tc.Name // share the configuration's string
	}
	f := s.files
	f.makeRoom()
	l, err := s.disk.OpenLog(queueLogName(topic, queueID))
	if err != nil {
		return nil, fmt.Errorf("store: open consume queue %s/%d: %w", topic, queueID, err)
	}
	f.opens++
	q := &consumeQueue{key: k, log: l, files: f}
	f.open++
	f.pushFront(q)
	s.queues[k] = q
	return q, nil
}

// dirtyQueues returns the dirty consume queues, sorted by topic and queue.
func (s *Store) dirtyQueues() []*consumeQueue {
	var out []*consumeQueue
	for _, q := range s.queues {
		if q.dirty {
			out = append(out, q)
		}
	}
	sortQueues(out)
	return out
}

func (s *Store) sortedQueues() []*consumeQueue {
	out := make([]*consumeQueue, 0, len(s.queues))
	for _, q := range s.queues {
		out = append(out, q)
	}
	sortQueues(out)
	return out
}

func sortQueues(out []*consumeQueue) {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key, out[j].key
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		return a.queueID < b.queueID
	})
}

// start is the lowest queue offset held; end is one past the highest.
func (q *consumeQueue) start() int64 {
	if q.log == nil {
		return int64(q.first) - 1
	}
	return int64(q.log.FirstIndex()) - 1
}

func (q *consumeQueue) end() int64 {
	if q.log == nil {
		return int64(q.last)
	}
	return int64(q.log.LastIndex())
}

func (q *consumeQueue) append(index uint64, size int, tagsHash int64) error {
	l, err := q.use()
	if err != nil {
		return err
	}
	want := l.LastIndex() + 1
	f := q.files
	f.buf = encodeCQEntry(f.buf[:0], index, size, tagsHash)
	got, err := l.Append(f.buf)
	if err != nil {
		return fmt.Errorf("store: append to consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	if got != want {
		panic(fmt.Sprintf("store: consume queue %s/%d appended at %d, expected %d (offsets must be dense)", q.key.topic, q.key.queueID, got, want))
	}
	q.dirty = true
	q.tailIdx = index
	if got == l.FirstIndex() {
		q.headIdx = index
	}
	return nil
}

// entry reads queue offset off.
func (q *consumeQueue) entry(off int64) (index uint64, size int, tagsHash int64, err error) {
	l, err := q.use()
	if err != nil {
		return 0, 0, 0, err
	}
	b, err := l.Read(uint64(off) + 1)
	if err != nil {
		return 0, 0, 0, err
	}
	index, size, tagsHash, ok := decodeCQEntry(b)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: consume queue %s/%d offset %d has a %d-byte entry", ErrCorrupt, q.key.topic, q.key.queueID, off, len(b))
	}
	return index, size, tagsHash, nil
}

// dropAbove removes tail entries pointing above commit-log index cp, and tail entries that
// fail their checksum (recovery replays whatever they held, or reports the gap). The entries
// it drops that it could read are noted in holes (nil: not noted), so that replay can still
// place a commit-log record it cannot read.
func (q *consumeQueue) dropAbove(cp uint64, holes *replayHoles) error {
	if q.end() <= q.start() || (q.tailIdx != 0 && q.tailIdx <= cp) {
		return nil // answered without opening the queue
	}
	l, err := q.use()
	if err != nil {
		return fmt.Errorf("store: recover consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	keep := l.LastIndex()
	for keep >= l.FirstIndex() {
		b, err := l.Read(keep)
		if err != nil && !errors.Is(err, node.ErrCorrupt) {
			return fmt.Errorf("store: recover consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
		}
		if err == nil {
			index, size, tagsHash, ok := decodeCQEntry(b)
			if ok && index <= cp {
				if keep == l.LastIndex() {
					q.tailIdx = index
				}
				break
			}
			if ok {
				holes.note(index, droppedEntry{key: q.key, offset: int64(keep) - 1, size: size, tagsHash: tagsHash})
			}
		}
		keep--
	}
	if keep == l.LastIndex() {
		return nil
	}
	q.headIdx, q.tailIdx = 0, 0
	if err := l.TruncateBack(keep); err != nil {
		return fmt.Errorf("store: recover consume queue %s/%d: truncate to %d: %w", q.key.topic, q.key.queueID, keep, err)
	}
	return nil
}

// learnHead reads and caches the commit-log index of the queue's first entry, if it has one
// and it is not known.
func (q *consumeQueue) learnHead() error {
	if q.headIdx != 0 || q.end() <= q.start() {
		return nil
	}
	index, _, _, err := q.entry(q.start())
	if err != nil {
		return err
	}
	q.headIdx = index
	return nil
}

// assertInside panics if the queue's last entry points beyond the commit log. A closed queue
// whose last entry's index is not cached is not opened for it.
func (q *consumeQueue) assertInside(clLast uint64) {
	if q.end() <= q.start() {
		return
	}
	index := q.tailIdx
	if index == 0 {
		if q.log == nil {
			return
		}
		// Read without marking the queue used: callers iterate the queue map.
		b, err := q.log.Read(uint64(q.end()))
		var ok bool
		if index, _, _, ok = decodeCQEntry(b); err != nil || !ok {
			return // a corrupt entry is reported when read
		}
	}
	if index > clLast {
		panic(fmt.Sprintf("store: consume queue %s/%d offset %d points at commit log index %d beyond its last index %d",
			q.key.topic, q.key.queueID, q.end()-1, index, clLast))
	}
}

// GetStatus mirrors RocketMQ's GetMessageStatus.
type GetStatus int

const (
	Found               GetStatus = iota // at least one message returned
	NoMatchedMessage                     // messages scanned, none matched the filter
	MessageWasRemoving                   // the commit log no longer holds the messages
	OffsetFoundNull                      // the consume-queue entry at offset is gone
	OffsetOverflowBadly                  // offset > max
	OffsetOverflowOne                    // offset == max (nothing new yet: long-poll)
	OffsetTooSmall                       // offset < min
	NoMessageInQueue                     // the queue is empty (max == 0)
)

var statusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "MESSAGE_WAS_REMOVING", "OFFSET_FOUND_NULL",
	"OFFSET_OVERFLOW_BADLY", "OFFSET_OVERFLOW_ONE", "OFFSET_TOO_SMALL", "NO_MESSAGE_IN_QUEUE"}

func (s GetStatus) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("GetStatus(%d)", int(s))
}

// GetResult is the outcome of Get. Records are raw stored records, concatenable into a pull
// response body; they alias stored data and must not be modified.
type GetResult struct {
	Status     GetStatus
	Records    [][]byte
	NextOffset int64 // where the consumer should pull next
	MinOffset  int64
	MaxOffset  int64 // one past the highest confirmed offset
}

// MinOffset returns the lowest queue offset still held (0 for an unknown queue).
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	if q, ok := s.queues[queueKey{topic, queueID}]; ok {
		return q.start()
	}
	return 0
}

// MaxOffset returns one past the highest confirmed queue offset (0 for an unknown queue).
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	if q, ok := s.queues[queueKey{topic, queueID}]; ok {
		return q.confirmedEnd
	}
	return 0
}

// Get reads up to maxMsgs confirmed messages of a queue from offset, skipping those whose tags
// hash match rejects (match nil accepts all), as RocketMQ's DefaultMessageStore.getMessage does:
// it scans at most max(MinGetScan, 20*maxMsgs) entries, stops before a record that would take
// the result past MaxGetBytes (a first record is always returned), and NextOffset is offset
// plus the entries scanned. An unknown queue reads as empty. Errors are reserved for unreadable
// or corrupt data, and are returned only when the unreadable record is the first one: records
// before it are served first. A commit-log record that fails its checksum is the exception:
// it is skipped (scanned, never returned) and logged, so its queue offset reads as a hole.
// This broker holds no other copy of it, and a queue must not stall behind it for good.
func (s *Store) Get(topic string, queueID int32, offset int64, maxMsgs int, match func(tagsHash int64) bool) (GetResult, error) {
	return s.GetFiltered(topic, queueID, offset, maxMsgs, Filter{TagsHash: match})
}

// Filter selects the messages GetFiltered returns; a nil field accepts everything.
type Filter struct {
	// TagsHash sees the tags hash of a consume-queue entry: a cheap first cut, which lets
	// through every message whose tags share a hash with a wanted one.
	TagsHash func(tagsHash int64) bool
	// Record sees the stored record of an entry TagsHash accepted and makes the final call
	// (for example the exact tags); it must not keep or modify rec.
	Record func(rec []byte) bool
}

// GetFiltered is Get with a two-stage filter: entries either stage rejects are skipped but
// still count as scanned, so NextOffset moves past them.
func (s *Store) GetFiltered(topic string, queueID int32, offset int64, maxMsgs int, f Filter) (GetResult, error) {
	match := f.TagsHash
	if err := s.usable(); err != nil {
		return GetResult{}, err
	}
	maxMsgs = max(maxMsgs, 1)
	q, ok := s.queues[queueKey{topic, queueID}]
	if !ok {
		return GetResult{Status: NoMessageInQueue}, nil
	}
	r := GetResult{MinOffset: q.start(), MaxOffset: q.confirmedEnd}
	switch {
	case r.MaxOffset == 0:
		r.Status, r.NextOffset = NoMessageInQueue, 0
		return r, nil
	case offset < r.MinOffset:
		r.Status, r.NextOffset = OffsetTooSmall, r.MinOffset
		return r, nil
	case offset == r.MaxOffset:
		r.Status, r.NextOffset = OffsetOverflowOne, offset
		return r, nil
	case offset > r.MaxOffset:
		// Back to the end of the queue, not to 0 as Java 4.x does when minOffset is 0: a
		// consumer ahead of the queue (after an async-flush broker lost its tail) should not
		// re-read the whole queue (docs/protocol.md, "Pulls").
		r.Status, r.NextOffset = OffsetOverflowBadly, r.MaxOffset
		return r, nil
	}
	clLast := s.commitLog.LastIndex()
	scanLimit := int64(max(s.opts.MinGetScan, 20*maxMsgs))
	r.Status = NoMatchedMessage
	bytes := 0
	scanned := int64(0)
	for off := offset; off < r.MaxOffset && scanned < scanLimit; off++ {
		index, size, tagsHash, err := q.entry(off)
		if errors.Is(err, node.ErrNotFound) && len(r.Records) == 0 && scanned == 0 {
			r.Status, r.NextOffset = OffsetFoundNull, off+1
			return r, nil
		}
		if err != nil {
			if len(r.Records) > 0 {
				break
			}
			return GetResult{}, fmt.Errorf("store: read consume queue %s/%d offset %d: %w", topic, queueID, off, err)
		}
		if index > clLast || index > s.confirmed {
			panic(fmt.Sprintf("store: consume queue %s/%d offset %d points at commit log index %d (last %d, confirmed %d)",
				topic, queueID, off, index, clLast, s.confirmed))
		}
		if len(r.Records) > 0 && (len(r.Records) >= maxMsgs || bytes+size > s.opts.MaxGetBytes) {
			break
		}
		scanned++
		if match != nil && !match(tagsHash) {
			continue
		}
		rec, err := s.commitLog.Read(index)
		if errors.Is(err, node.ErrNotFound) {
			if len(r.Records) == 0 {
				r.Status = MessageWasRemoving
			}
			continue
		}
		if errors.Is(err, node.ErrCorrupt) {
			s.logger.Error("store: commit-log record fails its checksum; skipping it",
				"topic", topic, "queue", queueID, "offset", off, "commitLogIndex", index, "err", err)
			continue
		}
		if err != nil {
			if len(r.Records) > 0 {
				// Serve what precedes the unreadable record; the next Get reports it.
				scanned--
				break
			}
			return GetResult{}, fmt.Errorf("store: read commit log index %d for %s/%d offset %d: %w", index, topic, queueID, off, err)
		}
		if len(rec) != size {
			return GetResult{}, fmt.Errorf("%w: %s/%d offset %d: consume queue says %d bytes at commit log index %d, record has %d",
				ErrCorrupt, topic, queueID, off, size, index, len(rec))
		}
		if f.Record != nil && !f.Record(rec) {
			continue
		}
		r.Records = append(r.Records, rec)
		bytes += size
		r.Status = Found
	}
	r.NextOffset = offset + scanned
	return r, nil
}

// OffsetByTime returns the first queue offset of topic/queueID whose message was stored at or
// after timestampMs (milliseconds since the epoch), or the queue's MaxOffset if every message
// is older; an unknown or empty queue gives 0. It binary-searches the store timestamps, which
// appends make non-decreasing along a queue (a clock stepping back makes the answer one of
// the offsets around the step). Messages the commit log no longer holds count as older.
//
// Java 4.x (ConsumeQueue.getOffsetInQueueByTime) returns the offset whose store time is
// nearest, which may be a message stored before timestampMs and, when all are older, the last
// message rather than the end; SEARCH_OFFSET_BY_TIMESTAMP serves CONSUME_FROM_TIMESTAMP, where
// "stored at or after" is what a user expects, as in RocketMQ 5's lower-boundary search.
func (s *Store) OffsetByTime(topic string, queueID int32, timestampMs int64) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	q, ok := s.queues[queueKey{topic, queueID}]
	if !ok {
		return 0, nil
	}
	// Invariant: every offset below lo is older than timestampMs; every offset at or above hi
	// is not (hi = confirmedEnd stands for "none").
	lo, hi := q.start(), q.confirmedEnd
	for lo < hi {
		mid := lo + (hi-lo)/2
		ts, err := s.storeTimestamp(q, mid)
		if err != nil {
			return 0, err
		}
		if ts < timestampMs {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// storeTimestamp reads the store time of the message at queue offset off; a message the
// commit log no longer holds reads as the oldest possible.
func (s *Store) storeTimestamp(q *consumeQueue, off int64) (int64, error) {
	index, size, _, err := q.entry(off)
	if err != nil {
		return 0, fmt.Errorf("store: read consume queue %s/%d offset %d: %w", q.key.topic, q.key.queueID, off, err)
	}
	rec, err := s.commitLog.Read(index)
	if errors.Is(err, node.ErrNotFound) {
		return math.MinInt64, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read commit log index %d for %s/%d offset %d: %w", index, q.key.topic, q.key.queueID, off, err)
	}
	m, n, err := codec.DecodeRecord(rec)
	if err != nil || n != len(rec) || n != size {
		return 0, fmt.Errorf("%w: %s/%d offset %d: commit log index %d holds no valid %d-byte record (%d bytes): %v",
			ErrCorrupt, q.key.topic, q.key.queueID, off, index, size, len(rec), err)
	}
	return m.StoreTimestamp, nil
}

// QueueHead reports a queue's lowest held offset and, when the queue holds an entry there,
// the commit-log index of that entry (ok false for an empty or unknown queue). It is what the
// broker needs to tell whether a queue's head is recent (ConsumerManageProcessor's rule for
// groups without an offset).
func (s *Store) QueueHead(topic string, queueID int32) (minOffset int64, index uint64, ok bool, err error) {
	q, known := s.queues[queueKey{topic, queueID}]
	if !known || q.end() <= q.start() {
		return s.MinOffset(topic, queueID), 0, false, nil
	}
	if err := q.learnHead(); err != nil { // cached: a closed queue is not opened for it
		return q.start(), 0, false, fmt.Errorf("store: head of consume queue %s/%d: %w", topic, queueID, err)
	}
	return q.start(), q.headIdx, true, nil
}

// truncateBack removes the queue's entries from queue offset end on (the new end).
func (q *consumeQueue) truncateBack(end int64) error {
	l, err := q.use()
	if err != nil {
		return err
	}
	q.headIdx, q.tailIdx = 0, 0
	return l.TruncateBack(uint64(end)) // queue offset o is at log index o+1
}
