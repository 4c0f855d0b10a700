// Package store is the broker's storage engine, RocketMQ style: one commit log holding every
// message's stored record, a consume queue per topic and queue (fixed-size entries pointing
// into the commit log), topic configuration, consumer offsets and the checkpoint that bounds
// crash recovery. It owns the layout of those logs and files on a node.Disk and the rules for
// what a reader may see (only confirmed messages).
//
// It is node code: it never starts goroutines, never reads the clock, never uses global
// randomness, never touches files or sockets except through node.Disk, and never lets map
// order leak into behaviour. It never syncs a log itself: durability is requested by the broker
// through its environment (Env.Sync), and the store is told the outcome (Confirm,
// FinishCheckpoint). Broken invariants panic.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/logentry"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store/keyindex"
)

// ErrCorrupt is wrapped by recovery errors that find the logs inconsistent.
var ErrCorrupt = errors.New("store: corrupt")

// ErrClosed is returned after Close, or after a failure left the store's logs in an unknown
// state (the broker must reopen it).
var ErrClosed = errors.New("store: closed")

// Defaults for Options.
const (
	DefaultMaxGetBytes = 4 << 20
	DefaultMinGetScan  = 800 // consume-queue entries a Get may scan, at least (RocketMQ: 16000 bytes)
)

// Options configures a Store.
type Options struct {
	// Logger receives recovery and failure reports; nil discards them.
	Logger *slog.Logger
	// MaxGetBytes bounds the records one Get returns (a first record is always returned);
	// 0 means DefaultMaxGetBytes.
	MaxGetBytes int
	// MinGetScan is the least number of consume-queue entries one Get scans while filtering
	// (it scans max(MinGetScan, 20*maxMsgs)); 0 means DefaultMinGetScan.
	MinGetScan int
	// KeyIndexBucketBits sizes the key index's bucket table (2^bits heads of 8 bytes); 0 means
	// DefaultKeyIndexBucketBits.
	KeyIndexBucketBits int
	// ConfirmCheckpointedOnly makes recovery confirm only the messages up to the checkpoint
	// (which never exceeds what was confirmed before the restart); the rest stay invisible
	// until Confirm. A replica of a broker group needs it: a message it holds but its master
	// never acknowledged may yet be truncated, so it must not be served before the group
	// confirms it again.
	ConfirmCheckpointedOnly bool

	// MaxOpenQueueFiles bounds the consume-queue logs open at once (queuefiles.go); 0 means
	// DefaultMaxOpenQueueFiles.
	MaxOpenQueueFiles int

	// Bugs is the set of planted bugs (package bugs) the store honours: DropFailedOffsetWrites
	// (FlushOffsets forgets that offsets changed before it knows the write happened) and
	// OffsetSyncLowers (SyncOffsets clamps a master's offset to the local queue end even below
	// a local offset the master has passed), RecoveryDropsLast (recovery truncates the
	// commit log's last entry as if it were torn) and ConfirmReplayed (recovery confirms every
	// replayed entry despite ConfirmCheckpointedOnly). Empty in production.
	Bugs bugs.Set
}

// AppendResult says where an appended message went.
type AppendResult struct {
	Index       uint64 // commit-log index, also the message's PhysicalOffset
	QueueOffset int64
	Size        int // stored record size in bytes
}

// Store is one broker's message store. It is not safe for concurrent use: the broker's event
// loop owns it.
type Store struct {
	disk   node.Disk
	logger *slog.Logger
	opts   Options

	commitLog node.Log
	topics    map[string]TopicConfig
	queues    map[queueKey]*consumeQueue
	// files owns which consume-queue logs are open (queuefiles.go).
	files *queueFiles

	offsets      map[offsetKey]int64
	offsetsDirty bool
	// aheadOffsets holds the master's offsets SyncOffsets had to clamp (sync.go; persisted
	// with the offsets); RaiseClampedOffsets applies them once the queues have grown.
	aheadOffsets map[offsetKey]int64

	// deleted holds the tombstones of deleted topics (delete.go).
	deleted map[string]uint64
	// subgroups are the subscription groups an admin configured (subgroups.go).
	subgroups map[string]codec.SubscriptionGroupConfig
	// keys is the index by message key (keys.go); keysDirty: added to since the last
	// BeginCheckpoint.
	keys      *keyindex.Index
	keysDirty bool
	keyBuf    []string

	// confirmed is the highest commit-log index readers may see.
	confirmed uint64
	// pending lists, in commit-log order, the queue of every appended but unconfirmed message:
	// pending[i] holds index pendingFirst+i.
	pending      []*consumeQueue
	pendingFirst uint64

	// checkpoint is the commit-log index covered by the last checkpoint.json written.
	checkpoint uint64
	// inFlight is the checkpoint begun and not yet finished, if any.
	inFlight *checkpointRun

	buf []byte // record encoding scratch
	// err is set when the store can no longer trust its logs; every operation then fails.
	err error
	// unplaced lists, ascending, the commit-log records that fail their checksum and are in
	// no consume queue yet (holes.go); a replicated record may still place them.
	unplaced []uint64
	// afterRetentionStep, set by tests, runs after each step of Retain (retention.go); an
	// error stops it there, as a crash would.
	afterRetentionStep func(retentionStep) error
	// rebasedAt is where Rebase last restarted the commit log (rebase.go; 0: never).
	rebasedAt uint64
}

type checkpointRun struct {
	upTo   uint64
	queues []*consumeQueue
	keys   bool // the key index log is among the logs
}

// Open opens (or creates) the store on d and recovers it:
//
//  1. topics.json, offsets.json and checkpoint.json are loaded (missing files mean empty).
//  2. The commit log is opened; the disk has already dropped a torn last entry (one cut
//     short: a whole entry that fails its checksum is kept, and replayed as unreadable).
//  3. cp = min(checkpoint, commit-log last index). If cp is below the stored checkpoint (the
//     commit log lost entries the checkpoint covered), checkpoint.json is lowered to cp first,
//     so that new messages reusing those indexes are replayed by any later recovery.
//  4. Every consume queue (ListLogs "cq/") drops its tail entries that point above cp (or
//     that fail their checksum): they may point at messages that no longer exist.
//  5. Commit-log entries cp+1..last are replayed into their consume queues; each record's
//     QueueOffset must equal its queue's next offset, else Open fails with ErrCorrupt.
//  6. Topics found in the logs but missing from topics.json are re-created with enough queues.
//
// The key index (keys.go) and deleted topics' tombstones (delete.go) are recovered alongside:
// the index like a consume queue, and no deleted message is replayed.
//
// Afterwards every recovered message counts as confirmed (with ConfirmCheckpointedOnly, those
// up to the checkpoint; the others wait for Confirm). Only the synced part of the commit
// log is known durable, though (a process crash leaves unsynced writes in the OS): the broker
// must sync the commit log up to CommitLog().LastIndex() once after Open, before it serves
// reads or acknowledges anything, and replicas must not be told about more than that.
func Open(d node.Disk, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.MaxGetBytes <= 0 {
		opts.MaxGetBytes = DefaultMaxGetBytes
	}
	if opts.MinGetScan <= 0 {
		opts.MinGetScan = DefaultMinGetScan
	}
	if opts.MaxOpenQueueFiles <= 0 {
		opts.MaxOpenQueueFiles = DefaultMaxOpenQueueFiles
	}
	s := &Store{
		disk:    d,
		logger:  opts.Logger,
		opts:    opts,
		topics:  map[string]TopicConfig{},
		queues:  map[queueKey]*consumeQueue{},
		offsets: map[offsetKey]int64{},
		files:   &queueFiles{disk: d, budget: opts.MaxOpenQueueFiles},
	}
	if err := s.recover(); err != nil {
		s.closeLogs()
		return nil, err
	}
	return s, nil
}

func (s *Store) recover() error {
	var topics topicsDoc
	if _, err := readJSON(s.disk, topicsFile, &topics); err != nil {
		return err
	}
	for _, tc := range topics.Topics {
		s.topics[tc.Name] = tc
	}
	s.loadTombstones(topics.Deleted)
	var offsets offsetsDoc
	if _, err := readJSON(s.disk, offsetsFile, &offsets); err != nil {
		return err
	}
	for _, e := range offsets.Offsets {
		s.offsets[offsetKey{e.Group, e.Topic, e.QueueID}] = e.Offset
	}
	for _, e := range offsets.Ahead {
		if s.aheadOffsets == nil {
			s.aheadOffsets = map[offsetKey]int64{}
		}
		s.aheadOffsets[offsetKey{e.Group, e.Topic, e.QueueID}] = e.Offset
	}
	if err := s.loadSubscriptionGroups(); err != nil {
		return err
	}
	var ckpt checkpointDoc
	if _, err := readJSON(s.disk, checkpointFile, &ckpt); err != nil {
		return err
	}
	if err := s.loadRebased(); err != nil {
		return err
	}

	cl, err := s.disk.OpenLog(commitLogName)
	if err != nil {
		return fmt.Errorf("store: open commit log: %w", err)
	}
	s.commitLog = cl
	s.files.commitLog = cl
	first, last := cl.FirstIndex(), cl.LastIndex()
	if s.opts.Bugs.Has(bugs.RecoveryDropsLast) && last > first {
		// The planted bug: a whole, durable last entry is repaired away as if torn.
		if err := cl.TruncateBack(last - 1); err != nil {
			return fmt.Errorf("store: truncate commit log to %d: %w", last-1, err)
		}
		last--
	}
	cp := min(ckpt.CommitLogIndex, last)
	if cp < ckpt.CommitLogIndex {
		s.logger.Info("store: commit log ends before checkpoint; lowering it",
			"checkpoint", ckpt.CommitLogIndex, "commitLogLast", last)
		if err := writeJSON(s.disk, checkpointFile, checkpointDoc{CommitLogIndex: cp}); err != nil {
			return err
		}
	}
	s.checkpoint = cp
	if err := s.clampTombstones(last); err != nil {
		return err
	}
	if err := s.openKeyIndex(cp); err != nil {
		return err
	}

	names, err := s.disk.ListLogs(cqPrefix)
	if err != nil {
		return fmt.Errorf("store: list consume queues: %w", err)
	}
	holes := newReplayHoles()
	for _, name := range names {
		topic, qid, ok := parseQueueName(name)
		if !ok {
			return fmt.Errorf("%w: unexpected consume-queue log name %q", ErrCorrupt, name)
		}
		q, err := s.openQueue(topic, qid)
		if err != nil {
			return err
		}
		if err := q.dropAbove(cp, holes); err != nil {
			return err
		}
		removed, err := s.removeStaleQueue(q)
		if err != nil {
			return err
		}
		if removed {
			continue
		}
		// Learn what the later steps need while the log is open: its head for retention
		// (dropAbove learnt its tail), so that no step opens every queue again.
		if err := q.learnHead(); err != nil && !errors.Is(err, node.ErrCorrupt) {
			return fmt.Errorf("store: recover consume queue %s/%d: %w", topic, qid, err)
		}
	}

	if err := s.trimToCommitLog(); err != nil {
		return err
	}
	// Entries up to cp are what checkpoint covers; with ConfirmCheckpointedOnly only they are
	// confirmed, and the replayed ones wait for Confirm.
	confirmed := last
	if s.opts.ConfirmCheckpointedOnly && !s.opts.Bugs.Has(bugs.ConfirmReplayed) {
		confirmed = max(cp, first-1)
		for _, q := range s.queues {
			q.confirmedEnd = q.end()
		}
	}
	replayFrom := max(cp+1, first)
	if err := s.replayRange(replayFrom, last, confirmed, holes); err != nil {
		return err
	}
	s.logger.Info("store: recovered", "commitLogFirst", first, "commitLogLast", last,
		"checkpoint", cp, "replayed", last+1-replayFrom, "queues", len(s.queues))

	if err := s.recreateMissingTopics(); err != nil {
		return err
	}
	s.dropDeletedOffsets()
	for _, q := range s.queues {
		if !s.opts.ConfirmCheckpointedOnly {
			q.confirmedEnd = q.end()
		}
		q.assertInside(s.commitLog.LastIndex())
	}
	s.confirmed = confirmed
	s.pendingFirst = confirmed + 1
	if s.pendingFirst+uint64(len(s.pending)) != last+1 {
		panic(fmt.Sprintf("store: recovery left %d unconfirmed entries from %d, commit log ends at %d", len(s.pending), s.pendingFirst, last))
	}
	return nil
}

// replay indexes commit-log entry idx into its consume queue and the key index, as the
// append that wrote it did. It returns the queue (nil for a message of a deleted topic, or
// for an entry that fails its checksum and is not placed yet: see holes.go).
func (s *Store) replay(idx uint64, holes *replayHoles,
	place func(q *consumeQueue, hole uint64, size int, tagsHash int64) error) (*consumeQueue, error) {
	rec, err := s.commitLog.Read(idx)
	if unreadable(err) {
		return s.replayUnreadable(idx, holes, logentry.Unverified(err), place)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: commit log index %d unreadable during recovery: %w", ErrCorrupt, idx, err)
	}
	m, n, err := codec.DecodeRecord(rec)
	if err != nil || n != len(rec) {
		// Corrupt all the same (its body checksum or its framing fails, which a disk that
		// checks every entry never returns): a hole too.
		s.logger.Error("store: commit-log record does not decode during replay", "index", idx, "bytes", len(rec), "decoded", n, "err", err)
		return s.replayUnreadable(idx, holes, rec, place)
	}
	if m.PhysicalOffset != int64(idx) {
		return nil, fmt.Errorf("%w: commit log index %d holds a record with physical offset %d", ErrCorrupt, idx, m.PhysicalOffset)
	}
	if !ValidTopicName(m.Topic) || m.QueueID < 0 || m.QueueID >= MaxQueueNums {
		return nil, fmt.Errorf("%w: commit log index %d holds topic %q queue %d", ErrCorrupt, idx, m.Topic, m.QueueID)
	}
	q, err := s.replayQueue(idx, m, holes, place)
	if q == nil || err != nil {
		return nil, err
	}
	if _, err := s.rebaseQueue(q, m.QueueOffset); err != nil {
		return nil, err
	}
	if next := q.end(); m.QueueOffset != next {
		return nil, fmt.Errorf("%w: commit log index %d has queue offset %d for %s/%d, but the consume queue's next offset is %d",
			ErrCorrupt, idx, m.QueueOffset, m.Topic, m.QueueID, next)
	}
	if err := q.append(idx, len(rec), tagsHashOf(m)); err != nil {
		return nil, err
	}
	return q, s.indexKeys(idx, m)
}

func (s *Store) recreateMissingTopics() error {
	need := map[string]int32{}
	for k := range s.queues {
		if _, ok := s.topics[k.topic]; !ok {
			need[k.topic] = max(need[k.topic], k.queueID+1)
		}
	}
	if len(need) == 0 {
		return nil
	}
	names := make([]string, 0, len(need))
	for name := range need {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := need[name]
		s.topics[name] = TopicConfig{Name: name, ReadQueueNums: n, WriteQueueNums: n, Perm: PermReadWrite}
		s.logger.Warn("store: re-created topic missing from topics.json", "topic", name, "queues", n)
	}
	return s.writeTopics()
}

func parseQueueName(name string) (string, int32, bool) {
	rest, ok := strings.CutPrefix(name, cqPrefix)
	if !ok {
		return "", 0, false
	}
	topic, qs, ok := strings.Cut(rest, "/")
	if !ok || !ValidTopicName(topic) {
		return "", 0, false
	}
	qid, err := strconv.ParseInt(qs, 10, 32)
	if err != nil || qid < 0 || qid >= MaxQueueNums || strconv.FormatInt(qid, 10) != qs {
		return "", 0, false
	}
	return topic, int32(qid), true
}

func tagsHashOf(m *codec.Message) int64 {
	return codec.TagsHash(codec.Property(m.Properties, codec.PropTags))
}

func (s *Store) usable() error {
	if s.err == nil && s.files.broken != nil {
		return s.fail(s.files.broken)
	}
	return s.err
}

// fail records that the logs are in an unknown state; every later call returns err.
func (s *Store) fail(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %w", ErrClosed, err)
		s.logger.Error("store: failed; reopen required", "err", err)
	}
	return s.err
}

// Append stores m: it assigns m.PhysicalOffset (the commit-log index) and m.QueueOffset,
// appends the record to the commit log and its consume queue, and returns where it went.
// The message is invisible to readers until Confirm covers its index. The topic must exist
// and m.QueueID must be below its WriteQueueNums.
func (s *Store) Append(m *codec.Message) (AppendResult, error) {
	if err := s.usable(); err != nil {
		return AppendResult{}, err
	}
	tc, ok := s.topics[m.Topic]
	if !ok {
		return AppendResult{}, fmt.Errorf("store: append: unknown topic %q", m.Topic)
	}
	if m.QueueID < 0 || m.QueueID >= tc.WriteQueueNums {
		return AppendResult{}, fmt.Errorf("store: append: topic %s has %d write queues, no queue %d", m.Topic, tc.WriteQueueNums, m.QueueID)
	}
	q, err := s.openQueue(m.Topic, m.QueueID)
	if err != nil {
		return AppendResult{}, err
	}
	index := s.commitLog.LastIndex() + 1
	m.PhysicalOffset = int64(index)
	m.QueueOffset = q.end()
	rec, err := codec.AppendRecord(s.buf[:0], m)
	if err != nil {
		return AppendResult{}, fmt.Errorf("store: append: %w", err)
	}
	s.buf = rec
	return s.appendAt(index, rec, m, q)
}

// appendAt appends the encoded record rec of m at commit-log index (the log's next index),
// then its consume-queue entry in q (nil: the message belongs to no live queue, e.g. a deleted
// topic's on a replica) and its keys, undoing the commit-log append if the queue refuses it.
// Local sends and records replicated from a master both end here.
func (s *Store) appendAt(index uint64, rec []byte, m *codec.Message, q *consumeQueue) (AppendResult, error) {
	got, err := s.commitLog.Append(rec)
	if err != nil {
		return AppendResult{}, fmt.Errorf("store: append to commit log: %w", err)
	}
	if got != index {
		panic(fmt.Sprintf("store: commit log appended at index %d, expected %d", got, index))
	}
	if q != nil {
		if err := q.append(index, len(rec), tagsHashOf(m)); err != nil {
			// Undo the commit-log append so the two stay consistent.
			if terr := s.commitLog.TruncateBack(index - 1); terr != nil {
				return AppendResult{}, s.fail(fmt.Errorf("append to consume queue failed (%v), then commit log truncate failed: %w", err, terr))
			}
			return AppendResult{}, err
		}
		if err := s.indexKeys(index, m); err != nil {
			return AppendResult{}, s.unappend(q, index, err)
		}
	}
	if s.pendingFirst+uint64(len(s.pending)) != index {
		panic(fmt.Sprintf("store: unconfirmed list ends at %d, appended index %d", s.pendingFirst+uint64(len(s.pending)), index))
	}
	s.pending = append(s.pending, q)
	return AppendResult{Index: index, QueueOffset: m.QueueOffset, Size: len(rec)}, nil
}

// Confirm makes messages up to commit-log index upTo visible to readers. The broker calls it
// once the fsync covering upTo completed (sync flush) or right after Append (async flush).
// upTo must not be below Confirmed() nor above the commit log's last index.
func (s *Store) Confirm(upTo uint64) {
	if s.commitLog == nil {
		panic("store: Confirm on a closed store")
	}
	if upTo < s.confirmed {
		panic(fmt.Sprintf("store: Confirm(%d) moves confirmed index backwards from %d", upTo, s.confirmed))
	}
	if last := s.commitLog.LastIndex(); upTo > last {
		panic(fmt.Sprintf("store: Confirm(%d) beyond commit log last index %d", upTo, last))
	}
	n := upTo + 1 - s.pendingFirst // pending entries now confirmed
	for _, q := range s.pending[:n] {
		if q == nil {
			continue // its topic was deleted
		}
		q.confirmedEnd++
		if q.confirmedEnd > q.end() {
			panic(fmt.Sprintf("store: queue %s/%d confirmed end %d beyond its end %d", q.key.topic, q.key.queueID, q.confirmedEnd, q.end()))
		}
	}
	clear(s.pending[:n])
	s.pending = s.pending[n:]
	s.pendingFirst = upTo + 1
	s.confirmed = upTo
}

// Confirmed returns the highest commit-log index readers may see.
func (s *Store) Confirmed() uint64 { return s.confirmed }

// CommitLog exposes the commit log so the broker can request its sync (Env.Sync). Only the
// store appends to it.
func (s *Store) CommitLog() node.Log { return s.commitLog }

// BeginCheckpoint starts a checkpoint. It returns the consume-queue logs and the key index log
// with appends not yet covered by a checkpoint, sorted by name, and the commit-log index the checkpoint will cover
// (Confirmed()). The broker syncs every returned log up to at least its LastIndex at the time
// of this call, then calls FinishCheckpoint(upTo). If a sync fails, the broker simply never
// finishes: the next BeginCheckpoint includes the abandoned checkpoint's logs again. A failed
// or closed store has nothing to checkpoint: it returns no logs (FinishCheckpoint refuses).
func (s *Store) BeginCheckpoint() (logs []node.Log, upTo uint64) {
	if s.usable() != nil {
		return nil, s.checkpoint
	}
	if s.inFlight != nil {
		for _, q := range s.inFlight.queues {
			q.dirty = true
		}
		s.keysDirty = s.keysDirty || s.inFlight.keys
		s.inFlight = nil
	}
	queues := s.dirtyQueues()
	for _, q := range queues {
		// A dirty queue closed since its appends is reopened: its log must be synced. Logs
		// opened here may close others handed out before them, which runtimes allow.
		l, err := q.use()
		if err != nil {
			s.logger.Warn("store: checkpoint postponed: a consume queue with unsynced entries cannot be opened",
				"queue", q.key.topic+"/"+fmt.Sprint(q.key.queueID), "err", err)
			return nil, s.checkpoint
		}
		logs = append(logs, l)
	}
	for _, q := range queues {
		q.dirty = false
	}
	keys := s.keysDirty
	if keys {
		s.keysDirty = false
		logs = append(logs, s.keys.Log())
	}
	upTo = s.confirmed
	if len(s.unplaced) > 0 {
		// Keep an unplaced unreadable record in the next recovery's replay (holes.go).
		upTo = min(upTo, s.unplaced[0]-1)
	}
	s.inFlight = &checkpointRun{upTo: upTo, queues: queues, keys: keys}
	return logs, upTo
}

// FinishCheckpoint records, in checkpoint.json, that every consume-queue entry for commit-log
// indexes up to upTo is durable. upTo must be the value the last BeginCheckpoint returned.
func (s *Store) FinishCheckpoint(upTo uint64) error {
	if err := s.usable(); err != nil {
		return err
	}
	if s.inFlight == nil || s.inFlight.upTo != upTo {
		return fmt.Errorf("store: FinishCheckpoint(%d) without a matching BeginCheckpoint", upTo)
	}
	if upTo < s.checkpoint {
		panic(fmt.Sprintf("store: checkpoint moves backwards from %d to %d", s.checkpoint, upTo))
	}
	if upTo > s.checkpoint {
		if err := writeJSON(s.disk, checkpointFile, checkpointDoc{CommitLogIndex: upTo}); err != nil {
			return err
		}
	}
	s.checkpoint = upTo
	s.inFlight = nil
	return nil
}

// Checkpoint returns the commit-log index covered by the last finished checkpoint.
func (s *Store) Checkpoint() uint64 { return s.checkpoint }

// Close flushes consumer offsets and closes every log. The store is unusable afterwards.
func (s *Store) Close() error {
	if s.commitLog == nil {
		return ErrClosed
	}
	var errs []error
	if s.err == nil {
		errs = append(errs, s.FlushOffsets())
	}
	errs = append(errs, s.closeLogs())
	s.queues = map[queueKey]*consumeQueue{}
	s.files = &queueFiles{disk: s.disk, budget: s.opts.MaxOpenQueueFiles}
	s.keys, s.commitLog = nil, nil
	if s.err == nil {
		s.err = ErrClosed
	}
	return errors.Join(errs...)
}

// closeLogs closes every log. The handles stay: a closed handle refuses reads, appends and
// truncations (and reports the bounds it had), and closed consume queues are not reopened
// (files.broken), so a failed store whose Reopen could not open its logs again stays safe to
// call into until a later Reopen succeeds.
func (s *Store) closeLogs() error {
	var errs []error
	for _, q := range s.sortedQueues() {
		errs = append(errs, s.files.close(q))
	}
	if s.files.broken == nil {
		// A failed store whose Reopen could not open its logs again must not reopen queues.
		s.files.broken = ErrClosed
	}
	if s.keys != nil {
		errs = append(errs, s.keys.Log().Close())
	}
	if s.commitLog != nil {
		errs = append(errs, s.commitLog.Close())
	}
	return errors.Join(errs...)
}

// ReadIndex returns the message at commit-log index, which must be confirmed. The body and
// properties alias stored data and must not be modified.
func (s *Store) ReadIndex(index uint64) (*codec.Message, error) {
	_, m, err := s.readConfirmed(index)
	return m, err
}

// readConfirmed reads and decodes the confirmed record at a commit-log index; an index not
// (yet) visible wraps node.ErrNotFound, a record that does not decode wraps ErrCorrupt.
func (s *Store) readConfirmed(index uint64) ([]byte, *codec.Message, error) {
	if err := s.usable(); err != nil {
		return nil, nil, err
	}
	if index == 0 || index > s.confirmed {
		return nil, nil, fmt.Errorf("store: no message at commit log index %d (confirmed up to %d): %w", index, s.confirmed, node.ErrNotFound)
	}
	rec, err := s.commitLog.Read(index)
	if err != nil {
		return nil, nil, fmt.Errorf("store: read commit log index %d: %w", index, err)
	}
	m, _, err := codec.DecodeRecord(rec)
	if err != nil {
		return nil, nil, fmt.Errorf("store: commit log index %d: %w: %w", index, ErrCorrupt, err)
	}
	return rec, m, nil
}

// cqEntrySize is a consume-queue entry: commit-log index u64 | record size u32 | tags hash i64.
const cqEntrySize = 20

func encodeCQEntry(dst []byte, index uint64, size int, tagsHash int64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, index)
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	return binary.BigEndian.AppendUint64(dst, uint64(tagsHash))
}

func decodeCQEntry(b []byte) (index uint64, size int, tagsHash int64, ok bool) {
	if len(b) != cqEntrySize {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint64(b), int(binary.BigEndian.Uint32(b[8:])), int64(binary.BigEndian.Uint64(b[12:])), true
}
