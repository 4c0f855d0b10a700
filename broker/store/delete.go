package store

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sluicemq/sluice/broker/node"
)

// deletedTopic is a tombstone kept in topics.json: the messages of Topic at commit-log indexes
// up to UpToIndex belong to a deleted incarnation of the topic. They stay in the commit log
// (nothing is ever rewritten there) but are never replayed into a consume queue, indexed by
// key or served again. A topic created again under the same name starts empty, with fresh
// queues, above UpToIndex.
type deletedTopic struct {
	Topic     string `json:"topic"`
	UpToIndex uint64 `json:"upToIndex"`
}

// ErrUnknownTopic is wrapped by DeleteTopic for a topic the store does not have.
var ErrUnknownTopic = errors.New("unknown topic")

// DeleteTopic deletes a topic: its configuration, its consume queues (their logs are removed)
// and every consumer offset on it. Its messages stay in the commit log, unreachable.
//
// The tombstone and the topic's removal are one atomic write of topics.json, done first: once
// it is on disk the delete has happened, and recovery finishes whatever a crash interrupted
// (consume-queue logs still present, offsets.json still naming the topic). Messages of the
// topic appended but not yet confirmed are covered by the tombstone too; their acknowledgement
// still follows their fsync as usual, but nobody can read them.
//
// It returns the names of the consume-queue logs it removed, so that a broker with a
// checkpoint in flight stops waiting for their syncs.
func (s *Store) DeleteTopic(name string) ([]string, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	_, exists := s.topics[name]
	queues := s.queuesOf(name)
	if !exists && len(queues) == 0 {
		return nil, fmt.Errorf("store: delete topic %q: %w", name, ErrUnknownTopic)
	}
	upTo := s.commitLog.LastIndex()
	old, hadTomb := s.deleted[name]
	if hadTomb && old > upTo {
		panic(fmt.Sprintf("store: tombstone of %s covers index %d beyond the commit log's last %d", name, old, upTo))
	}
	tc := s.topics[name]
	delete(s.topics, name)
	if s.deleted == nil {
		s.deleted = map[string]uint64{}
	}
	s.deleted[name] = upTo
	if err := s.writeTopics(); err != nil {
		if exists {
			s.topics[name] = tc
		}
		if hadTomb {
			s.deleted[name] = old
		} else {
			delete(s.deleted, name)
		}
		return nil, fmt.Errorf("store: delete topic %s: %w", name, err)
	}

	// Committed. What follows only tidies up; recovery redoes it after a crash.
	s.dropOffsetsOf(name)
	if err := s.FlushOffsets(); err != nil {
		s.logger.Warn("store: deleted topic's offsets not yet persisted; recovery drops them", "topic", name, "err", err)
	}
	for i, q := range s.pending {
		if q != nil && q.key.topic == name {
			s.pending[i] = nil // confirmed later as usual, into no queue
		}
	}
	var removed []string
	for _, q := range queues {
		removed = append(removed, queueLogName(q.key.topic, q.key.queueID))
		s.removeQueue(q)
	}
	s.logger.Info("store: topic deleted", "topic", name, "upToIndex", upTo, "queues", len(queues))
	return removed, nil
}

// DeletedTopics returns the tombstones, topic to the last commit-log index they cover.
func (s *Store) DeletedTopics() map[string]uint64 { return maps.Clone(s.deleted) }

// deletedAt reports whether the message of topic at commit-log index belongs to a deleted
// incarnation of the topic.
func (s *Store) deletedAt(topic string, index uint64) bool {
	upTo, ok := s.deleted[topic]
	return ok && index <= upTo
}

// queuesOf returns the open consume queues of a topic, by queue id.
func (s *Store) queuesOf(topic string) []*consumeQueue {
	var out []*consumeQueue
	for _, q := range s.sortedQueues() {
		if q.key.topic == topic {
			out = append(out, q)
		}
	}
	return out
}

// removeQueue closes a consume queue's log and removes it; a failure is logged, and the
// stale log is removed by the next recovery (its entries are all covered by a tombstone).
func (s *Store) removeQueue(q *consumeQueue) {
	delete(s.queues, q.key)
	name := queueLogName(q.key.topic, q.key.queueID)
	if err := s.files.close(q); err != nil {
		s.logger.Warn("store: close consume queue of a deleted topic", "log", name, "err", err)
	}
	if err := s.disk.RemoveLog(name); err != nil {
		s.logger.Warn("store: remove consume queue of a deleted topic; recovery retries", "log", name, "err", err)
	}
}

func (s *Store) dropOffsetsOf(topic string) {
	for k := range s.offsets {
		if k.topic == topic {
			delete(s.offsets, k)
			s.offsetsDirty = true
		}
	}
	for k := range s.aheadOffsets {
		if k.topic == topic {
			delete(s.aheadOffsets, k)
			s.offsetsDirty = true
		}
	}
}

// Recovery steps for tombstones, called by recover in this order.

// loadTombstones takes the tombstones read from topics.json.
func (s *Store) loadTombstones(list []deletedTopic) {
	for _, d := range list {
		if s.deleted == nil {
			s.deleted = map[string]uint64{}
		}
		s.deleted[d.Topic] = d.UpToIndex
	}
}

// clampTombstones lowers tombstones to the commit log's last index after a crash cut the log
// shorter: the indexes above it will be reused by new messages, which must not count as
// deleted. topics.json is rewritten before anything is appended.
func (s *Store) clampTombstones(clLast uint64) error {
	changed := false
	for _, name := range slices.Sorted(maps.Keys(s.deleted)) {
		if s.deleted[name] > clLast {
			s.logger.Info("store: commit log ends before a tombstone; lowering it", "topic", name,
				"upToIndex", s.deleted[name], "commitLogLast", clLast)
			s.deleted[name] = clLast
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.writeTopics()
}

// removeStaleQueue removes a consume-queue log left behind by a delete that a crash
// interrupted: its entries point at messages covered by the topic's tombstone. It reports
// whether q was removed. A queue of a topic created again after the delete holds only entries
// above the tombstone (the old logs were removed first), so it is kept.
func (s *Store) removeStaleQueue(q *consumeQueue) (bool, error) {
	upTo, ok := s.deleted[q.key.topic]
	if !ok || q.end() <= q.start() {
		return false, nil
	}
	index, _, _, err := q.entry(q.start())
	if errors.Is(err, node.ErrCorrupt) {
		return false, nil // not known to be stale; reads report the corrupt entry
	}
	if err != nil {
		return false, fmt.Errorf("store: recover consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
	}
	if index > upTo {
		return false, nil
	}
	name := queueLogName(q.key.topic, q.key.queueID)
	s.logger.Info("store: removing consume queue of a deleted topic", "log", name, "upToIndex", upTo)
	delete(s.queues, q.key)
	if err := s.files.close(q); err != nil {
		return false, fmt.Errorf("store: close stale consume queue %s: %w", name, err)
	}
	if err := s.disk.RemoveLog(name); err != nil {
		return false, fmt.Errorf("store: remove stale consume queue %s: %w", name, err)
	}
	return true, nil
}

// dropDeletedOffsets forgets offsets of deleted topics that do not exist again (offsets.json
// was not yet rewritten when a crash interrupted the delete); the next flush persists it.
func (s *Store) dropDeletedOffsets() {
	for _, name := range slices.Sorted(maps.Keys(s.deleted)) {
		if _, ok := s.topics[name]; !ok {
			s.dropOffsetsOf(name)
		}
	}
}

func (s *Store) tombstoneList() []deletedTopic {
	out := make([]deletedTopic, 0, len(s.deleted))
	for _, name := range slices.Sorted(maps.Keys(s.deleted)) {
		out = append(out, deletedTopic{Topic: name, UpToIndex: s.deleted[name]})
	}
	return out
}
