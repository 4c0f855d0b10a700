package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store/keyindex"
)

// The index by key (package keyindex): every stored message's keys, the UNIQ_KEY property and
// the space-separated words of KEYS, map (topic, key) to its commit-log index, as RocketMQ's
// IndexService does. It is maintained in Append, in commit-log order, and covered by the
// checkpoint like the consume queues: its log is synced with them, so after a crash recovery
// drops its entries above the checkpoint and re-indexes the replayed messages. A store without
// the index log (made before it existed, or after it was removed) indexes its whole commit log
// at open.
//
// Why a log with a hash chain and not a map in memory: the memory held stays 8 bytes a bucket
// (2 MiB by default) however many messages are stored, and open reads 32-byte index entries,
// not the whole commit log (measured in BenchmarkOpenWithKeyIndex).

const (
	keyIndexName = "keyindex"
	// DefaultKeyIndexBucketBits: 2^18 buckets, 2 MiB of bucket heads.
	DefaultKeyIndexBucketBits = 18
	// MaxKeysPerMessage bounds the keys indexed for one message (UNIQ_KEY first, then KEYS in
	// order); further keys are not indexed.
	MaxKeysPerMessage = 64
	// MaxQueryNum bounds the messages one QueryMessage returns (RocketMQ's maxMsgsNumBatch).
	MaxQueryNum = 64
	// maxQueryScan bounds the index entries one QueryMessage reads.
	maxQueryScan = 1 << 16
)

// messageKeys appends to dst the keys a message is indexed under, distinct, UNIQ_KEY first.
func messageKeys(dst []string, props string) []string {
	keys := dst[:0]
	add := func(k string) {
		if k != "" && len(keys) < MaxKeysPerMessage && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	add(codec.Property(props, codec.PropUniqKey))
	for rest := codec.Property(props, codec.PropKeys); rest != ""; {
		var k string
		k, rest, _ = strings.Cut(rest, " ")
		add(k)
	}
	return keys
}

// openKeyIndex opens the index during recovery and brings it to cover exactly the commit-log
// indexes up to cp (the replay then indexes the rest): entries above cp are dropped, and an
// index that did not exist is built from the commit log up to cp.
func (s *Store) openKeyIndex(cp uint64) error {
	existing, err := s.disk.ListLogs(keyIndexName)
	if err != nil {
		return fmt.Errorf("store: list key index: %w", err)
	}
	fresh := !slices.Contains(existing, keyIndexName)
	l, err := s.disk.OpenLog(keyIndexName)
	if err != nil {
		return fmt.Errorf("store: open key index: %w", err)
	}
	bits := s.opts.KeyIndexBucketBits
	if bits == 0 {
		bits = DefaultKeyIndexBucketBits
	}
	x, err := keyindex.Open(l, bits)
	if err != nil {
		l.Close()
		return fmt.Errorf("store: %w", err)
	}
	s.keys = x
	if x.Broken() > 0 {
		s.logger.Warn("store: key index has corrupt entries; lookups through them stop early", "entries", x.Broken())
	}
	if err := x.TruncateFrom(cp + 1); err != nil {
		return fmt.Errorf("store: recover key index: %w", err)
	}
	if !fresh {
		return nil
	}
	first := s.commitLog.FirstIndex()
	for idx := first; idx <= cp; idx++ {
		rec, err := s.commitLog.Read(idx)
		if unreadable(err) {
			s.logger.Error("store: commit-log record fails its checksum; not in the key index", "index", idx, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: commit log index %d unreadable while building the key index: %w", ErrCorrupt, idx, err)
		}
		m, _, err := codec.DecodeRecord(rec)
		if err != nil {
			return fmt.Errorf("%w: commit log index %d while building the key index: %w", ErrCorrupt, idx, err)
		}
		if s.deletedAt(m.Topic, idx) {
			continue
		}
		if err := s.indexKeys(idx, m); err != nil {
			return err
		}
	}
	if cp >= first {
		s.logger.Info("store: built the key index from the commit log", "messages", cp+1-first, "entries", x.Len())
	}
	return nil
}

// indexKeys adds m's keys at commit-log index.
func (s *Store) indexKeys(index uint64, m *codec.Message) error {
	s.keyBuf = messageKeys(s.keyBuf, m.Properties)
	for _, k := range s.keyBuf {
		if err := s.keys.Add(keyindex.Entry{Hash: keyindex.Hash(m.Topic, k), CommitIndex: index, StoreMs: m.StoreTimestamp}); err != nil {
			return fmt.Errorf("store: index keys of commit log index %d: %w", index, err)
		}
		s.keysDirty = true
	}
	return nil
}

// unappend undoes an Append whose keys could not be indexed: the index entries, the
// consume-queue entry and the commit-log entry of index go, so the three stay consistent.
func (s *Store) unappend(q *consumeQueue, index uint64, cause error) error {
	errIdx := s.keys.TruncateFrom(index)
	errCQ := q.truncateBack(q.end() - 1)
	errCL := s.commitLog.TruncateBack(index - 1)
	if err := errors.Join(errIdx, errCQ, errCL); err != nil {
		return s.fail(fmt.Errorf("indexing keys failed (%v), then undoing the append failed: %w", cause, err))
	}
	return cause
}

// QueryResult is the outcome of QueryMessage.
type QueryResult struct {
	// Records are the matching stored records, oldest first; they alias stored data.
	Records [][]byte
	// LastIndexed is the newest index entry: RocketMQ's indexLastUpdateTimestamp and
	// indexLastUpdatePhyoffset.
	LastIndexedMs    int64
	LastIndexedIndex uint64
}

// QueryMessage returns the newest confirmed messages of topic carrying key (as UNIQ_KEY or one
// of KEYS) stored within [beginMs, endMs], at most maxNum (clamped to 1..MaxQueryNum) and,
// beyond the first, at most MaxGetBytes in all. Messages of deleted topics are never returned.
// Every hit is read back and checked, so hash collisions cannot return a wrong message.
func (s *Store) QueryMessage(topic, key string, maxNum int, beginMs, endMs int64) (QueryResult, error) {
	if err := s.usable(); err != nil {
		return QueryResult{}, err
	}
	maxNum = min(max(maxNum, 1), MaxQueryNum)
	last := s.keys.Last()
	res := QueryResult{LastIndexedMs: last.StoreMs, LastIndexedIndex: last.CommitIndex}
	if key == "" {
		return res, nil
	}
	bytes := 0
	var seen []uint64
	var readErr error
	err := s.keys.Walk(keyindex.Hash(topic, key), maxQueryScan, func(e keyindex.Entry) bool {
		if e.CommitIndex > s.confirmed || e.StoreMs < beginMs || e.StoreMs > endMs ||
			s.deletedAt(topic, e.CommitIndex) || slices.Contains(seen, e.CommitIndex) {
			return true
		}
		seen = append(seen, e.CommitIndex)
		rec, err := s.commitLog.Read(e.CommitIndex)
		if errors.Is(err, node.ErrNotFound) {
			return true // no longer in the commit log
		}
		if err != nil {
			readErr = fmt.Errorf("store: read commit log index %d for key %q: %w", e.CommitIndex, key, err)
			return false
		}
		m, _, err := codec.DecodeRecord(rec)
		if err != nil {
			readErr = fmt.Errorf("store: commit log index %d: %w: %w", e.CommitIndex, ErrCorrupt, err)
			return false
		}
		if m.Topic != topic || !slices.Contains(messageKeys(nil, m.Properties), key) {
			return true // another key with the same hash
		}
		if len(res.Records) > 0 && bytes+len(rec) > s.opts.MaxGetBytes {
			return false
		}
		res.Records = append(res.Records, rec)
		bytes += len(rec)
		return len(res.Records) < maxNum
	})
	if readErr == nil {
		readErr = err
	}
	if readErr != nil && len(res.Records) == 0 {
		return QueryResult{}, readErr
	}
	if readErr != nil {
		s.logger.Warn("store: key lookup stopped early", "topic", topic, "key", key, "err", readErr)
	}
	slices.Reverse(res.Records)
	return res, nil
}

// ViewMessage returns the stored record at a commit-log index (a message's physical offset),
// which must be confirmed and not belong to a deleted topic; otherwise the error wraps
// node.ErrNotFound.
func (s *Store) ViewMessage(index uint64) ([]byte, error) {
	rec, m, err := s.readConfirmed(index)
	if err != nil {
		return nil, err
	}
	if s.deletedAt(m.Topic, index) {
		return nil, fmt.Errorf("store: the message at commit log index %d belongs to deleted topic %s: %w", index, m.Topic, node.ErrNotFound)
	}
	return rec, nil
}
