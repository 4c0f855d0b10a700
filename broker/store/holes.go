package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
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
//     as below), the record is placed there;
//   - the same header corrected by one bit: a bit flipped in a placement field (the topic's
//     bytes, the queue id, the queue offset, the commit-log index) makes the header name a
//     queue that does not exist or an offset that is not its queue's next one, and a bit
//     flipped in a field that frames the others (the total size, magic, sysflag, ports, body,
//     topic or properties length) makes it not decode. Every one-bit correction of the
//     placement fields (oneBitPlacement), or of the framing fields (framingBitPlacement), is
//     tried; when exactly one names, with this commit-log index, a queue's next offset as
//     above (without filling a gap), the record is placed there. Two candidates place
//     nothing: a guess could take an offset of the wrong queue;
//   - a later record of the same queue whose queue offset is past the queue's end: the gap is
//     filled, in order, with unplaced unreadable records after the queue's last entry.
//
// So a single flipped bit anywhere in a record leaves it placeable, unless the damaged header
// is one bit from two queues' next offsets (ambiguous: left unplaced) or names another queue's
// next offset exactly (misplaced, as a plausible header always could be). Several flipped
// bits in its header may defeat all of them.
// An unreadable record none places stays out of every queue (logged): the store keeps it in
// its unplaced list, where a replicated record (AppendReplica: a slave's master assigns the
// queue offsets) whose queue offset is past its queue's end fills the gap the same way, and
// checkpoints and retention stay below it so that the next recovery replays it again. On a
// master (or a single broker) whose queue has no later record, nothing places it: its offset
// is taken again by the queue's next message.
//
// The record must reach recovery at all: a flipped last entry of the commit log is kept by
// the disk (broker/diskfile's repairTail keeps every whole entry), not dropped as a torn
// write, which gave its index and its queue offset to the next message.

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
// that header is plausible, or else to the one queue it names but for one flipped bit (see
// the list above); it returns nil, nil when neither.
func (s *Store) placeByHeader(idx uint64, unverified []byte, holes *replayHoles,
	place func(q *consumeQueue, hole uint64, size int, tagsHash int64) error) (*consumeQueue, error) {
	if unverified == nil {
		return nil, nil
	}
	var k queueKey
	var offset int64
	var ok bool
	if m, n, err := codec.DecodeRecordUnchecked(unverified); err == nil && n == len(unverified) {
		q, err := s.placeByExactHeader(idx, m, len(unverified), holes, place)
		if q != nil || err != nil {
			return q, err
		}
		k, offset, ok = s.oneBitPlacement(idx, m)
	} else {
		k, offset, ok = s.framingBitPlacement(idx, unverified)
	}
	if !ok {
		return nil, nil
	}
	q, err := s.openQueue(k.topic, k.queueID)
	if err != nil {
		return nil, err
	}
	if q.end() != offset {
		panic(fmt.Sprintf("store: one-bit placement of index %d at %s/%d offset %d, queue ends at %d", idx, k.topic, k.queueID, offset, q.end()))
	}
	s.logger.Warn("store: unreadable commit-log record placed by its unverified header, one bit corrected",
		"index", idx, "topic", k.topic, "queue", k.queueID, "offset", offset)
	return q, s.appendPlaced(q, idx, len(unverified), holes)
}

// placeByExactHeader places record idx where its unverified header m says, when that is
// plausible; nil, nil when it is not.
func (s *Store) placeByExactHeader(idx uint64, m *codec.Message, size int, holes *replayHoles,
	place func(q *consumeQueue, hole uint64, size int, tagsHash int64) error) (*consumeQueue, error) {
	if m.PhysicalOffset != int64(idx) || !ValidTopicName(m.Topic) || m.QueueID < 0 || m.QueueID >= MaxQueueNums || m.QueueOffset < 0 {
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
	s.logger.Warn("store: unreadable commit-log record placed by its unverified header",
		"index", idx, "topic", m.Topic, "queue", m.QueueID, "offset", m.QueueOffset)
	return q, s.appendPlaced(q, idx, size, holes)
}

// appendPlaced appends unreadable record idx to q as its next entry, like any replayed
// record (the caller lists q as idx's queue).
func (s *Store) appendPlaced(q *consumeQueue, idx uint64, size int, holes *replayHoles) error {
	if err := q.append(idx, size, 0); err != nil {
		return err
	}
	holes.placed++
	return nil
}

// oneBitPlacement finds where record idx goes when its unverified header m differs in one
// bit from a placement that fits: the header's commit-log index is idx and it names a queue
// whose next offset is its queue offset (an existing queue that no tombstone covers at idx, or
// a configured topic's queue at offset 0). Such a bit is looked for in the commit-log index
// (the rest must then fit as it is), else in the topic's bytes, the queue id and the queue
// offset. It reports ok only when exactly one placement fits.
func (s *Store) oneBitPlacement(idx uint64, m *codec.Message) (queueKey, int64, bool) {
	fits := func(topic string, queueID int32, offset int64) bool {
		return s.placementFits(idx, topic, queueID, offset)
	}
	if m.PhysicalOffset != int64(idx) {
		if bits.OnesCount64(uint64(m.PhysicalOffset)^idx) == 1 && ValidTopicName(m.Topic) && fits(m.Topic, m.QueueID, m.QueueOffset) {
			return queueKey{m.Topic, m.QueueID}, m.QueueOffset, true
		}
		return queueKey{}, 0, false
	}
	var found []queueKey
	var offset int64
	try := func(topic string, queueID int32, off int64) {
		if len(found) < 2 && fits(topic, queueID, off) {
			found = append(found, queueKey{topic, queueID})
			offset = off
		}
	}
	topic := []byte(m.Topic)
	for i := range topic {
		for b := range 8 {
			topic[i] ^= 1 << b
			if t := string(topic); ValidTopicName(t) {
				try(t, m.QueueID, m.QueueOffset)
			}
			topic[i] ^= 1 << b
		}
	}
	if ValidTopicName(m.Topic) {
		for b := range 32 {
			try(m.Topic, m.QueueID^(1<<b), m.QueueOffset)
		}
		for b := range 64 {
			try(m.Topic, m.QueueID, m.QueueOffset^(1<<b))
		}
	}
	if len(found) != 1 {
		return queueKey{}, 0, false
	}
	return found[0], offset, true
}

// placementFits reports whether record idx can go to queue topic/queueID at offset: that is
// an existing queue's next offset (no tombstone covering idx), or offset 0 of a configured
// topic's queue.
func (s *Store) placementFits(idx uint64, topic string, queueID int32, offset int64) bool {
	if offset < 0 || queueID < 0 || queueID >= MaxQueueNums || s.deletedAt(topic, idx) {
		return false
	}
	if q, ok := s.queues[queueKey{topic, queueID}]; ok {
		return q.end() == offset
	}
	tc, ok := s.topics[topic]
	return ok && offset == 0 && queueID < max(tc.ReadQueueNums, tc.WriteQueueNums)
}

// framingBitPlacement finds where record idx goes when its unverified bytes b do not decode
// as a record: a bit flipped in a field that frames the others (total size, magic, sysflag,
// the hosts' ports, the body, topic and properties lengths) leaves the placement fields
// intact. Each bit of those fields is flipped back in turn; it reports ok only when exactly
// one placement fits (placementFits, with the header's commit-log index idx) among the
// records that then decode whole.
func (s *Store) framingBitPlacement(idx uint64, b []byte) (queueKey, int64, bool) {
	fix := slices.Clone(b)
	var found queueKey
	var offset int64
	n := 0
	for _, at := range framingBytes(b) {
		for bit := range 8 {
			fix[at] ^= 1 << bit
			m, size, err := codec.DecodeRecordUnchecked(fix)
			fix[at] ^= 1 << bit
			if err != nil || size != len(fix) || m.PhysicalOffset != int64(idx) || !ValidTopicName(m.Topic) ||
				!s.placementFits(idx, m.Topic, m.QueueID, m.QueueOffset) {
				continue
			}
			if k := (queueKey{m.Topic, m.QueueID}); n == 0 || k != found || m.QueueOffset != offset {
				found, offset = k, m.QueueOffset
				n++
			}
		}
	}
	return found, offset, n == 1
}

// framingBytes returns the positions in record b of its framing fields' bytes, located with
// the (possibly damaged) values of the fields before them.
func framingBytes(b []byte) []int {
	const sysflagAt, bornHostAt = 36, 48 // after total size, magic, body crc, queue id, flag, queue and physical offsets
	at := []int{0, 1, 2, 3, 4, 5, 6, 7, sysflagAt, sysflagAt + 1, sysflagAt + 2, sysflagAt + 3}
	inside := func() []int { return slices.DeleteFunc(at, func(i int) bool { return i >= len(b) }) }
	if len(b) < sysflagAt+4 {
		return inside()
	}
	sysflag := binary.BigEndian.Uint32(b[sysflagAt:])
	hostIP := func(v6 bool) int {
		if v6 {
			return 16
		}
		return 4
	}
	bornPort := bornHostAt + hostIP(sysflag&codec.SysFlagBornHostV6 != 0)
	storePort := bornPort + 4 + 8 + hostIP(sysflag&codec.SysFlagStoreHostV6 != 0) // after the store timestamp
	bodyLenAt := storePort + 4 + 4 + 8                                            // after reconsume times, prepared tx offset
	for i := range 4 {
		at = append(at, bornPort+i, storePort+i, bodyLenAt+i)
	}
	if bodyLenAt+4 > len(b) {
		return inside()
	}
	topicLenAt := bodyLenAt + 4 + int(int32(binary.BigEndian.Uint32(b[bodyLenAt:])))
	if topicLenAt < bodyLenAt+4 || topicLenAt >= len(b) {
		return inside()
	}
	propsLenAt := topicLenAt + 1 + int(b[topicLenAt])
	at = append(at, topicLenAt, propsLenAt, propsLenAt+1)
	return inside()
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
