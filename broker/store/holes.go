package store

import (
	"errors"
	"slices"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// Replaying a commit-log record that fails its checksum (a bit flipped on the medium).
//
// Recovery (and TruncateAfter) rebuilds the consume-queue entries of the records after the
// checkpoint from the records themselves. A record that fails its checksum cannot say which
// queue it belongs to, yet its queue offset must stay taken: were it forgotten, the next
// message of that queue would be stored at the same offset, and a consumer that had already
// read the lost one there would see two messages at one offset. So the record becomes a hole,
// a consume-queue entry pointing at the unreadable record (which a read then skips: see
// GetFiltered), placed by the first of:
//
//   - the consume-queue entry that pointed at it before recovery dropped the queue's tail
//     (dropAbove notes the entries it drops), when it is the queue's next offset;
//   - the record's own header, read from its unverified bytes (a flipped bit most often lies
//     in the body): when it decodes, names this very commit-log index, a queue that exists
//     (or a configured topic) and that queue's next offset (after filling any gap before it
//     as below), the record is placed there. A header whose flipped bit changed its queue or
//     offset almost always names an offset that is not its queue's next one, and is ignored;
//   - a later record of the same queue whose queue offset is past the queue's end: the gap is
//     filled, in order, with unplaced unreadable records after the queue's last entry.
//
// An unreadable record neither places stays out of every queue (logged) for now: the store
// keeps it in its unplaced list, where a replicated record (AppendReplica: a slave's master
// assigns the queue offsets) whose queue offset is past its queue's end fills the gap the same
// way, and checkpoints stay below it so that the next recovery replays it again. On a master
// (or a single broker) whose queue has no later record, nothing ever places it: its offset is
// taken again by the queue's next message.

// droppedEntry is a consume-queue entry dropAbove removed: where it was and what it held.
type droppedEntry struct {
	key      queueKey
	offset   int64
	size     int
	tagsHash int64
}

// replayHoles tracks the unreadable records of one replay.
type replayHoles struct {
	dropped  map[uint64]droppedEntry // by the commit-log index they point at
	unplaced []uint64                // unreadable records not placed yet, ascending
	placed   int
}

func newReplayHoles() *replayHoles { return &replayHoles{dropped: map[uint64]droppedEntry{}} }

// placeHole appends hole to q as its next entry, listing it with the unconfirmed entries or
// counting it confirmed (everything of q before it is then confirmed too).
func (s *Store) placeHole(q *consumeQueue, hole uint64, size int, tagsHash int64, confirmed uint64) error {
	if err := q.append(hole, size, tagsHash); err != nil {
		return err
	}
	if hole > confirmed {
		s.pending[hole-(confirmed+1)] = q
	} else {
		q.confirmedEnd = q.end()
	}
	return nil
}

func (h *replayHoles) note(index uint64, e droppedEntry) {
	if h != nil {
		h.dropped[index] = e
	}
}

// replayRange replays commit-log entries from..to (see replay), then lists the unconfirmed
// ones (above confirmed) in s.pending, which must hold those before from, and marks the
// others confirmed in their queues.
func (s *Store) replayRange(from, to, confirmed uint64, holes *replayHoles) error {
	// place records hole as the next entry of q (it must be the queue's next offset).
	place := func(q *consumeQueue, hole uint64, size int, tagsHash int64) error {
		holes.placed++
		return s.placeHole(q, hole, size, tagsHash, confirmed)
	}
	for idx := from; idx <= to; idx++ {
		q, err := s.replay(idx, holes, place)
		if err != nil {
			return err
		}
		if idx > confirmed {
			s.pending = append(s.pending, q)
		} else if q != nil {
			q.confirmedEnd = q.end()
		}
	}
	if holes.placed > 0 || len(holes.unplaced) > 0 {
		s.logger.Error("store: commit-log records fail their checksum; their queue offsets are kept as holes",
			"from", from, "to", to, "holes", holes.placed, "unplaced", holes.unplaced)
	}
	s.unplaced = holes.unplaced
	return nil
}

// fillReplicaGap places unplaced unreadable records into q up to a replicated record's queue
// offset (see AppendReplica); it fails with errNoHoles when there are not enough of them.
func (s *Store) fillReplicaGap(q *consumeQueue, offset int64) error {
	holes := &replayHoles{unplaced: s.unplaced}
	err := s.fillGap(q, offset, holes, func(q *consumeQueue, hole uint64, size int, tagsHash int64) error {
		return s.placeHole(q, hole, size, tagsHash, s.confirmed)
	})
	s.unplaced = holes.unplaced
	return err
}

// replayUnreadable handles commit-log entry idx, which fails its checksum: placed at once when
// a dropped consume-queue entry or its own unverified header (unverified, nil if none) says
// where, else left for a later record of its queue.
func (s *Store) replayUnreadable(idx uint64, holes *replayHoles, unverified []byte,
	place func(q *consumeQueue, hole uint64, size int, tagsHash int64) error) (*consumeQueue, error) {
	if e, ok := holes.dropped[idx]; ok && !s.deletedAt(e.key.topic, idx) {
		q, err := s.openQueue(e.key.topic, e.key.queueID)
		if err != nil {
			return nil, err
		}
		if q.end() == e.offset {
			// Appended like any record: the caller lists it as idx's queue.
			if err := q.append(idx, e.size, e.tagsHash); err != nil {
				return nil, err
			}
			holes.placed++
			return q, nil
		}
	}
	if q, err := s.placeByHeader(idx, unverified, holes, place); q != nil || err != nil {
		return q, err
	}
	holes.unplaced = append(holes.unplaced, idx)
	return nil, nil
}

// placeByHeader appends unreadable record idx to the queue its unverified header names, when
// that header is plausible (see the list above); it returns nil, nil when it is not.
func (s *Store) placeByHeader(idx uint64, unverified []byte, holes *replayHoles,
	place func(q *consumeQueue, hole uint64, size int, tagsHash int64) error) (*consumeQueue, error) {
	if unverified == nil {
		return nil, nil
	}
	m, n, err := codec.DecodeRecordUnchecked(unverified)
	if err != nil || n != len(unverified) || m.PhysicalOffset != int64(idx) ||
		!ValidTopicName(m.Topic) || m.QueueID < 0 || m.QueueID >= MaxQueueNums || m.QueueOffset < 0 {
		return nil, nil
	}
	if _, ok := s.queues[queueKey{m.Topic, m.QueueID}]; !ok {
		if _, ok := s.topics[m.Topic]; !ok || m.QueueOffset != 0 {
			return nil, nil
		}
	}
	q, err := s.replayQueue(idx, m, holes, place)
	if q == nil || err != nil {
		return nil, err
	}
	if q.end() != m.QueueOffset {
		return nil, nil
	}
	// Appended like any record: the caller lists it as idx's queue.
	if err := q.append(idx, len(unverified), 0); err != nil {
		return nil, err
	}
	holes.placed++
	s.logger.Warn("store: unreadable commit-log record placed by its unverified header",
		"index", idx, "topic", m.Topic, "queue", m.QueueID, "offset", m.QueueOffset)
	return q, nil
}

// replayQueue opens the consume queue of the record m at commit-log index idx during replay
// and fills the offsets before m's (fillGap) as far as the unplaced holes go. It returns nil
// without an error when m's topic was deleted after idx was written.
func (s *Store) replayQueue(idx uint64, m *codec.Message, holes *replayHoles,
	place func(q *consumeQueue, hole uint64, size int, tagsHash int64) error) (*consumeQueue, error) {
	if s.deletedAt(m.Topic, idx) {
		return nil, nil
	}
	q, err := s.openQueue(m.Topic, m.QueueID)
	if err != nil {
		return nil, err
	}
	if m.QueueOffset > q.end() {
		if err := s.fillGap(q, m.QueueOffset, holes, place); err != nil && !errors.Is(err, errNoHoles) {
			return nil, err
		}
	}
	return q, nil
}

// fillGap fills q's offsets from its end up to offset (exclusive) with unplaced unreadable
// records after q's last entry, in order; it fails if there are not enough of them.
func (s *Store) fillGap(q *consumeQueue, offset int64, holes *replayHoles,
	place func(q *consumeQueue, hole uint64, size int, tagsHash int64) error) error {
	gap := offset - q.end()
	var after uint64
	if q.end() > q.start() {
		index, _, _, err := q.entry(q.end() - 1)
		if err != nil {
			return err
		}
		after = index
	}
	i, _ := slices.BinarySearch(holes.unplaced, after+1)
	if int64(len(holes.unplaced)-i) < gap {
		return errNoHoles
	}
	fill := slices.Clone(holes.unplaced[i : i+int(gap)])
	holes.unplaced = slices.Delete(holes.unplaced, i, i+int(gap))
	for _, hole := range fill {
		if err := place(q, hole, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

var errNoHoles = errors.New("no unreadable records to fill the gap")

// unreadable reports whether err is a commit-log read that failed its checksum.
func unreadable(err error) bool { return errors.Is(err, node.ErrCorrupt) }
