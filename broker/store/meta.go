package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

// Metadata file names on the node's disk.
const (
	commitLogName  = "commitlog"
	cqPrefix       = "cq/"
	topicsFile     = "topics.json"
	offsetsFile    = "offsets.json"
	checkpointFile = "checkpoint.json"
)

// CommitLogName is the name of the commit log on the node's disk (fault injection aims at it).
const CommitLogName = commitLogName

// PermRead and PermWrite are RocketMQ's topic permission bits (package route's); PermReadWrite
// is both.
const (
	PermWrite     int32 = route.PermWrite
	PermRead      int32 = route.PermRead
	PermReadWrite       = PermRead | PermWrite
)

// MaxQueueNums bounds a topic's queue counts.
const MaxQueueNums = 1024

// TopicConfig is one topic's configuration, persisted in topics.json.
type TopicConfig struct {
	Name           string `json:"topicName"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	WriteQueueNums int32  `json:"writeQueueNums"`
	Perm           int32  `json:"perm"`
}

// ValidTopicName reports whether name is a legal topic: 1..127 characters from RocketMQ's set
// [%|a-zA-Z0-9_-]. The set keeps topic names safe as path components of consume-queue logs.
func ValidTopicName(name string) bool {
	if name == "" || len(name) > 127 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '%' || c == '|' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return true
}

type topicsDoc struct {
	Topics  []TopicConfig  `json:"topics"`
	Deleted []deletedTopic `json:"deleted,omitempty"`
}

type offsetKey struct {
	group, topic string
	queueID      int32
}

type offsetEntry struct {
	Group   string `json:"group"`
	Topic   string `json:"topic"`
	QueueID int32  `json:"queueId"`
	Offset  int64  `json:"offset"`
}

type offsetsDoc struct {
	Offsets []offsetEntry `json:"offsets"`
	// Ahead are the master's offsets SyncOffsets had to clamp (sync.go), kept with the
	// offsets so that a restart does not forget them.
	Ahead []offsetEntry `json:"ahead,omitempty"`
}

// sortedEntries lists offsets as offsetsDoc entries, sorted by group, topic and queue.
func sortedEntries(offsets map[offsetKey]int64) []offsetEntry {
	out := make([]offsetEntry, 0, len(offsets))
	for k, off := range offsets {
		out = append(out, offsetEntry{k.group, k.topic, k.queueID, off})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.QueueID < b.QueueID
	})
	return out
}

type checkpointDoc struct {
	// CommitLogIndex: every consume-queue entry for commit-log indexes up to here is durable.
	CommitLogIndex uint64 `json:"commitLogIndex"`
}

// readJSON decodes a metadata file into v; a missing file leaves v untouched and reports false.
func readJSON(d node.Disk, name string, v any) (bool, error) {
	b, err := d.ReadFile(name)
	if errors.Is(err, node.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("store: decode %s: %w", name, err)
	}
	return true, nil
}

func writeJSON(d node.Disk, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", name, err)
	}
	if err := d.WriteFile(name, append(b, '\n')); err != nil {
		return fmt.Errorf("store: write %s: %w", name, err)
	}
	return nil
}

func (s *Store) writeTopics() error {
	return writeJSON(s.disk, topicsFile, topicsDoc{Topics: s.Topics(), Deleted: s.tombstoneList()})
}

// CreateTopic creates or updates a topic and persists topics.json before returning, so a
// topic is on disk before any message uses it.
func (s *Store) CreateTopic(tc TopicConfig) error { return s.CreateTopics(tc) }

// CreateTopics creates or updates topics with one write of topics.json: all of them or, on an
// error, none. Creating many topics one by one rewrites the file each time; this does not.
func (s *Store) CreateTopics(tcs ...TopicConfig) error {
	if err := s.usable(); err != nil {
		return err
	}
	for _, tc := range tcs {
		if !ValidTopicName(tc.Name) {
			return fmt.Errorf("store: invalid topic name %q", tc.Name)
		}
		if tc.ReadQueueNums < 1 || tc.ReadQueueNums > MaxQueueNums || tc.WriteQueueNums < 1 || tc.WriteQueueNums > MaxQueueNums {
			return fmt.Errorf("store: topic %s: queue counts read %d write %d outside 1..%d",
				tc.Name, tc.ReadQueueNums, tc.WriteQueueNums, MaxQueueNums)
		}
	}
	type undo struct {
		old     TopicConfig
		existed bool
	}
	undos := make([]undo, 0, len(tcs))
	changed := false
	for _, tc := range tcs {
		old, existed := s.topics[tc.Name]
		undos = append(undos, undo{old, existed})
		if !existed || old != tc {
			s.topics[tc.Name] = tc
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := s.writeTopics(); err != nil {
		for i := len(tcs) - 1; i >= 0; i-- {
			if u := undos[i]; u.existed {
				s.topics[tcs[i].Name] = u.old
			} else {
				delete(s.topics, tcs[i].Name)
			}
		}
		return err
	}
	return nil
}

// Topic returns a topic's configuration.
func (s *Store) Topic(name string) (TopicConfig, bool) {
	tc, ok := s.topics[name]
	return tc, ok
}

// Topics returns every topic, sorted by name.
func (s *Store) Topics() []TopicConfig {
	out := make([]TopicConfig, 0, len(s.topics))
	for _, tc := range s.topics {
		out = append(out, tc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CommitOffset records a consumer group's offset for a queue in memory; FlushOffsets persists
// it. Offsets may move backwards (an explicit reset is the caller's business).
func (s *Store) CommitOffset(group, topic string, queueID int32, offset int64) {
	k := offsetKey{group, topic, queueID}
	if old, ok := s.offsets[k]; ok && old == offset {
		return
	}
	s.offsets[k] = offset
	s.offsetsDirty = true
}

// QueryOffset returns a consumer group's committed offset for a queue.
func (s *Store) QueryOffset(group, topic string, queueID int32) (int64, bool) {
	off, ok := s.offsets[offsetKey{group, topic, queueID}]
	return off, ok
}

// FlushOffsets writes offsets.json (sorted, so the same offsets give the same bytes) if any
// offset (or clamped master's offset, sync.go) changed since the last flush. The broker calls
// it on a timer and on Close.
func (s *Store) FlushOffsets() error {
	if !s.offsetsDirty {
		return nil
	}
	doc := offsetsDoc{Offsets: sortedEntries(s.offsets)}
	if len(s.aheadOffsets) > 0 {
		doc.Ahead = sortedEntries(s.aheadOffsets)
	}
	if s.opts.Bugs.Has(bugs.DropFailedOffsetWrites) {
		s.offsetsDirty = false // the planted bug: cleared whether or not the write happens
	}
	if err := writeJSON(s.disk, offsetsFile, doc); err != nil {
		return err
	}
	s.offsetsDirty = false
	return nil
}
