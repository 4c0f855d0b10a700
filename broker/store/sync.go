package store

import (
	"fmt"
	"maps"
	"slices"

	"github.com/sluicemq/sluice/broker/bugs"
)

// What a slave of a broker group copies from its master besides the commit log (the broker's
// metasync.go fetches them every few seconds): the topic configurations with the tombstones of
// deleted topics, and the consumer offsets (the delay levels' and the transactions' progress
// included, which are offsets of reserved groups).
//
// Merge rules (RocketMQ 4.x SlaveSynchronize does the same, except where noted):
//
//   - Topics: the master's set replaces the local one. A local topic the master does not list
//     is dropped, unless this store holds messages of it in a consume queue that no tombstone
//     covers (it cannot have come from the master's log then; kept, and reported). A master's
//     tombstone (topic, upTo) newer than the local one is adopted once the local commit log
//     reaches upTo: the topic's consume queues, all of whose entries are then at or below upTo,
//     are removed with its offsets, as DeleteTopic does. Before that it is deferred (Java has
//     no tombstones: it only drops the configuration).
//   - Offsets: the master's value replaces the local one (even a lower one: the master is the
//     authority, e.g. after an offset reset), clamped to the local queue's confirmed end, so a
//     slave never takes an offset beyond what it can serve. Offsets the master does not list
//     are kept (Java's putAll). A clamp never lowers a local offset the master has passed: a
//     replica that has just restarted has confirmed only up to its checkpoint, and would
//     otherwise forget offsets it copied before. The clamped master's values are remembered
//     (in offsets.json too: a replica that restarts between the round and its election must
//     not answer below what it copied) and applied by RaiseClampedOffsets when the replica
//     becomes master, its log then confirmed whole.

// Offset is one committed consumer offset.
type Offset struct {
	Group   string
	Topic   string
	QueueID int32
	Offset  int64
}

// Offsets returns every committed offset, sorted by group, topic and queue.
func (s *Store) Offsets() []Offset {
	entries := sortedEntries(s.offsets)
	out := make([]Offset, len(entries))
	for i, e := range entries {
		out[i] = Offset(e)
	}
	return out
}

// OffsetsSync is what SyncOffsets did.
type OffsetsSync struct {
	Changed int // local offsets set to a new value
	Clamped int // master's offsets beyond the local queue's confirmed end, stored clamped
	Skipped int // master's entries refused (illegal topic, queue or offset)
}

// SyncOffsets takes the master's offsets by the rules at the top of this file: each replaces
// the local one, clamped to MaxOffset(topic, queue) (0 for a queue this store does not have
// yet: the next sync raises it) but not below a local value the master has passed. Offsets the
// master does not list are kept. The caller persists with FlushOffsets (also when nothing
// Changed: the clamped master's values it remembers may have).
func (s *Store) SyncOffsets(master []Offset) OffsetsSync {
	var res OffsetsSync
	for _, o := range master {
		if o.Group == "" || !ValidTopicName(o.Topic) || o.QueueID < 0 || o.QueueID >= MaxQueueNums || o.Offset < 0 {
			res.Skipped++
			continue
		}
		k := offsetKey{o.Group, o.Topic, o.QueueID}
		old, had := s.offsets[k]
		off := o.Offset
		if end := s.MaxOffset(o.Topic, o.QueueID); off > end {
			off = end
			if had && old <= o.Offset && !s.opts.Bugs.Has(bugs.OffsetSyncLowers) {
				off = max(off, old)
			}
			res.Clamped++
			if s.aheadOffsets == nil {
				s.aheadOffsets = map[offsetKey]int64{}
			}
			if want, ok := s.aheadOffsets[k]; !ok || want != o.Offset {
				s.aheadOffsets[k] = o.Offset
				s.offsetsDirty = true
			}
		} else if _, ok := s.aheadOffsets[k]; ok {
			delete(s.aheadOffsets, k)
			s.offsetsDirty = true
		}
		if had && old == off {
			continue
		}
		s.offsets[k] = off
		s.offsetsDirty = true
		res.Changed++
	}
	return res
}

// RaiseClampedOffsets raises the offsets SyncOffsets clamped towards the master's values it
// had to clamp, as far as the queues' confirmed ends now allow, and forgets those it reached.
// A replica calls it when it becomes master. It reports how many offsets it raised; the
// caller persists with FlushOffsets (also when it raised none: it may have forgotten some).
func (s *Store) RaiseClampedOffsets() int {
	raised := 0
	for k, want := range s.aheadOffsets {
		end := s.MaxOffset(k.topic, k.queueID)
		if off := min(want, end); off > s.offsets[k] {
			s.offsets[k] = off
			s.offsetsDirty = true
			raised++
		}
		if want <= end {
			delete(s.aheadOffsets, k)
			s.offsetsDirty = true
		}
	}
	return raised
}

// TopicsSync is what SyncTopics did.
type TopicsSync struct {
	// Changed: topics.json was rewritten (the broker re-registers its topics).
	Changed bool
	// Removed names the consume-queue logs removed with adopted tombstones.
	Removed []string
	// Deleted names the topics whose tombstones were adopted.
	Deleted []string
	// Deferred names the topics whose master's tombstone the local log has not reached yet
	// (or, which should not happen, whose local queues hold entries on both sides of it).
	Deferred []string
	// Kept names local topics the master does not list but whose messages this store holds.
	Kept []string
}

// checkTopicConfig applies CreateTopics's rules to one configuration.
func checkTopicConfig(tc TopicConfig) error {
	if !ValidTopicName(tc.Name) {
		return fmt.Errorf("store: invalid topic name %q", tc.Name)
	}
	if tc.ReadQueueNums < 1 || tc.ReadQueueNums > MaxQueueNums || tc.WriteQueueNums < 1 || tc.WriteQueueNums > MaxQueueNums {
		return fmt.Errorf("store: topic %s: queue counts read %d write %d outside 1..%d",
			tc.Name, tc.ReadQueueNums, tc.WriteQueueNums, MaxQueueNums)
	}
	return nil
}

// SyncTopics makes the local topics the master's (topics) and adopts the master's tombstones
// (deleted: topic to the last commit-log index it covers), by the rules at the top of this
// file, with one atomic write of topics.json. Bad input changes nothing.
func (s *Store) SyncTopics(topics []TopicConfig, deleted map[string]uint64) (TopicsSync, error) {
	var res TopicsSync
	if err := s.usable(); err != nil {
		return res, err
	}
	want := make(map[string]TopicConfig, len(topics))
	for _, tc := range topics {
		if err := checkTopicConfig(tc); err != nil {
			return res, fmt.Errorf("store: sync topics: %w", err)
		}
		if _, dup := want[tc.Name]; dup {
			return res, fmt.Errorf("store: sync topics: topic %s listed twice", tc.Name)
		}
		want[tc.Name] = tc
	}
	last := s.commitLog.LastIndex()
	newDeleted := maps.Clone(s.deleted)
	if newDeleted == nil {
		newDeleted = map[string]uint64{}
	}
	var doomed []*consumeQueue
	for _, name := range slices.Sorted(maps.Keys(deleted)) {
		upTo := deleted[name]
		if !ValidTopicName(name) {
			return TopicsSync{}, fmt.Errorf("store: sync topics: tombstone of invalid topic name %q", name)
		}
		if old, ok := s.deleted[name]; ok && old >= upTo {
			continue
		}
		if upTo > last {
			res.Deferred = append(res.Deferred, name)
			continue
		}
		stale, mixed, err := s.queuesUpTo(name, upTo)
		if err != nil {
			return TopicsSync{}, err
		}
		if mixed {
			// AppendReplica refuses a new incarnation's record behind an old one's (its queue
			// offset does not follow), so a replica cannot get here; leave it to an operator.
			s.logger.Error("store: cannot adopt the master's tombstone: a consume queue holds messages on both sides of it",
				"topic", name, "upToIndex", upTo)
			res.Deferred = append(res.Deferred, name)
			continue
		}
		newDeleted[name] = upTo
		doomed = append(doomed, stale...)
		res.Deleted = append(res.Deleted, name)
	}
	newTopics := maps.Clone(want)
	for _, name := range slices.Sorted(maps.Keys(s.topics)) {
		if _, ok := want[name]; ok {
			continue
		}
		if s.holdsLiveMessages(name, doomed) {
			newTopics[name] = s.topics[name]
			res.Kept = append(res.Kept, name)
		}
	}
	if maps.Equal(newTopics, s.topics) && maps.Equal(newDeleted, s.deleted) {
		return res, nil
	}
	oldTopics, oldDeleted := s.topics, s.deleted
	s.topics, s.deleted = newTopics, newDeleted
	if err := s.writeTopics(); err != nil {
		s.topics, s.deleted = oldTopics, oldDeleted
		return TopicsSync{}, fmt.Errorf("store: sync topics: %w", err)
	}
	res.Changed = true

	// Committed. As after DeleteTopic, what follows only tidies up; recovery redoes it.
	for _, name := range res.Deleted {
		s.dropOffsetsOf(name) // the old incarnation's; the master's come with the offsets
		for k := range s.aheadOffsets {
			if k.topic == name {
				delete(s.aheadOffsets, k)
			}
		}
	}
	for _, q := range doomed {
		for i, p := range s.pending {
			if p == q {
				s.pending[i] = nil
			}
		}
		res.Removed = append(res.Removed, queueLogName(q.key.topic, q.key.queueID))
		s.removeQueue(q)
	}
	s.logger.Info("store: topics synced from the master", "topics", len(newTopics), "deleted", res.Deleted,
		"deferred", res.Deferred, "kept", res.Kept)
	return res, nil
}

// queuesUpTo sorts the consume queues of topic by a tombstone at upTo: stale ones hold only
// entries at or below it (or none); mixed reports a queue with entries on both sides.
func (s *Store) queuesUpTo(topic string, upTo uint64) (stale []*consumeQueue, mixed bool, err error) {
	for _, q := range s.queuesOf(topic) {
		if q.end() <= q.start() {
			stale = append(stale, q)
			continue
		}
		if err := q.learnHead(); err != nil {
			return nil, false, fmt.Errorf("store: sync topics: consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
		}
		first, lastIdx := q.headIdx, q.tailIdx
		if lastIdx == 0 {
			var err error
			if lastIdx, _, _, err = q.entry(q.end() - 1); err != nil {
				return nil, false, fmt.Errorf("store: sync topics: consume queue %s/%d: %w", q.key.topic, q.key.queueID, err)
			}
			q.tailIdx = lastIdx
		}
		switch {
		case lastIdx <= upTo:
			stale = append(stale, q)
		case first <= upTo:
			mixed = true
		}
	}
	return stale, mixed, nil
}

// holdsLiveMessages reports whether topic has a consume queue with entries that is not about
// to be removed (doomed); such entries lie above any tombstone of the topic.
func (s *Store) holdsLiveMessages(topic string, doomed []*consumeQueue) bool {
	for _, q := range s.queuesOf(topic) {
		if q.end() > q.start() && !slices.Contains(doomed, q) {
			return true
		}
	}
	return false
}
