package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// modelMsg is one appended message as the model remembers it.
type modelMsg struct {
	topic string
	q     int32
	body  string
	tags  string
}

// storeMachine drives a Store on a simdisk against a model: the commit log is the list of
// every message appended (history; index i is history[i-1]). The model knows which prefix of
// it is confirmed (visible) and which is synced (survives any crash). After a crash the store
// must hold a prefix of history at least as long as the synced part, and every queue must be
// exactly the projection of that prefix, at the same offsets.
type storeMachine struct {
	d         *simdisk.Disk
	s         *Store
	history   []modelMsg
	synced    uint64
	confirmed uint64
	committed map[offsetKey]int64 // consumer offsets in memory
	flushed   map[offsetKey]int64 // consumer offsets in offsets.json
	seq       int
	crashes   int
	opts      Options // what the store is opened with
}

var modelQueues = []queueKey{{"A", 0}, {"A", 1}, {"B", 0}, {"C%x", 2}}

func newStoreMachine(t *rapid.T, opts Options) *storeMachine {
	m := &storeMachine{d: simdisk.New(), committed: map[offsetKey]int64{}, flushed: map[offsetKey]int64{}, opts: opts}
	m.s = open(t, m.d, opts)
	mustCreate(t, m.s, "A", 2)
	mustCreate(t, m.s, "B", 1)
	mustCreate(t, m.s, "C%x", 3)
	return m
}

// visible returns the model's confirmed messages of one queue.
func (m *storeMachine) visible(k queueKey) []modelMsg {
	var out []modelMsg
	for _, mm := range m.history[:m.confirmed] {
		if mm.topic == k.topic && mm.q == k.queueID {
			out = append(out, mm)
		}
	}
	return out
}

func (m *storeMachine) Append(t *rapid.T) {
	k := rapid.SampledFrom(modelQueues).Draw(t, "queue")
	mm := modelMsg{k.topic, k.queueID, fmt.Sprintf("m%d", m.seq), rapid.SampledFrom([]string{"", "x", "y"}).Draw(t, "tags")}
	m.seq++
	var before int64
	for _, h := range m.history {
		if h.topic == k.topic && h.q == k.queueID {
			before++
		}
	}
	r := mustAppend(t, m.s, msg(mm.topic, mm.q, mm.body, mm.tags))
	m.history = append(m.history, mm)
	if r.Index != uint64(len(m.history)) || r.QueueOffset != before {
		t.Fatalf("append %v went to index %d offset %d, want %d, %d", k, r.Index, r.QueueOffset, len(m.history), before)
	}
}

// ConfirmAsync is the async flush policy: visible at once, durable later (maybe never).
func (m *storeMachine) ConfirmAsync(t *rapid.T) {
	m.confirmed = uint64(len(m.history))
	m.s.Confirm(m.confirmed)
}

// SyncCommitLog completes a (possibly partial) fsync of the commit log, then confirms what it
// covered as the sync flush policy does.
func (m *storeMachine) SyncCommitLog(t *rapid.T) {
	last := uint64(len(m.history))
	upTo := rapid.Uint64Range(m.synced, last).Draw(t, "upTo")
	if err := m.s.CommitLog().(*simdisk.Log).SyncTo(upTo); err != nil {
		t.Fatal(err)
	}
	m.synced = max(m.synced, upTo)
	m.confirmed = max(m.confirmed, upTo)
	m.s.Confirm(m.confirmed)
}

func (m *storeMachine) Checkpoint(t *rapid.T) {
	logs, upTo := m.s.BeginCheckpoint()
	if upTo != m.confirmed {
		t.Fatalf("checkpoint covers %d, confirmed %d", upTo, m.confirmed)
	}
	finish := rapid.IntRange(0, 3).Draw(t, "finish") > 0
	for _, l := range logs {
		if finish || rapid.Bool().Draw(t, "syncThisOne") {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if finish {
		if err := m.s.FinishCheckpoint(upTo); err != nil {
			t.Fatal(err)
		}
	}
}

func (m *storeMachine) Get(t *rapid.T) {
	k := rapid.SampledFrom(modelQueues).Draw(t, "queue")
	vis := m.visible(k)
	max := int64(len(vis))
	offset := rapid.Int64Range(-1, max+2).Draw(t, "offset")
	maxMsgs := rapid.IntRange(1, 4).Draw(t, "maxMsgs")
	filter := rapid.SampledFrom([]string{"", "x", "y"}).Draw(t, "filter")
	var match func(int64) bool
	if filter != "" {
		h := codec.TagsHash(filter)
		match = func(got int64) bool { return got == h }
	}
	got, err := m.s.Get(k.topic, k.queueID, offset, maxMsgs, match)
	if err != nil {
		t.Fatal(err)
	}
	want := GetResult{MaxOffset: max}
	switch {
	case max == 0:
		want = GetResult{Status: NoMessageInQueue}
	case offset < 0:
		want.Status = OffsetTooSmall
	case offset == max:
		want.Status, want.NextOffset = OffsetOverflowOne, max
	case offset > max:
		want.Status, want.NextOffset = OffsetOverflowBadly, max
	default:
		want.Status, want.NextOffset = NoMatchedMessage, max
		for i := offset; i < max; i++ {
			if filter != "" && vis[i].tags != filter {
				continue
			}
			want.Status = Found
			want.Records = append(want.Records, []byte(vis[i].body))
			if len(want.Records) == maxMsgs {
				want.NextOffset = i + 1
				break
			}
		}
	}
	var bodies [][]byte
	for _, b := range bodiesOf(t, got.Records) {
		bodies = append(bodies, []byte(b))
	}
	got.Records = bodies
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Get(%v@%d, max %d, filter %q) (-want +got):\n%s", k, offset, maxMsgs, filter, diff)
	}
}

func (m *storeMachine) ReadIndex(t *rapid.T) {
	idx := rapid.Uint64Range(0, uint64(len(m.history))+1).Draw(t, "index")
	got, err := m.s.ReadIndex(idx)
	if idx == 0 || idx > m.confirmed {
		if err == nil {
			t.Fatalf("ReadIndex(%d) returned a message; confirmed %d", idx, m.confirmed)
		}
		return
	}
	if err != nil {
		t.Fatalf("ReadIndex(%d): %v", idx, err)
	}
	if want := m.history[idx-1]; string(got.Body) != want.body || got.Topic != want.topic || got.QueueID != want.q {
		t.Fatalf("ReadIndex(%d) = %s/%d %q, want %+v", idx, got.Topic, got.QueueID, got.Body, want)
	}
}

func (m *storeMachine) CommitOffset(t *rapid.T) {
	k := offsetKey{rapid.SampledFrom([]string{"g1", "g2"}).Draw(t, "group"), "A", rapid.Int32Range(0, 1).Draw(t, "q")}
	off := rapid.Int64Range(0, 20).Draw(t, "offset")
	m.s.CommitOffset(k.group, k.topic, k.queueID, off)
	m.committed[k] = off
}

func (m *storeMachine) FlushOffsets(t *rapid.T) {
	if err := m.s.FlushOffsets(); err != nil {
		t.Fatal(err)
	}
	m.flushed = cloneOffsets(m.committed)
}

func cloneOffsets(o map[offsetKey]int64) map[offsetKey]int64 {
	c := make(map[offsetKey]int64, len(o))
	for k, v := range o {
		c[k] = v
	}
	return c
}

// Crash cuts the power; the node restarts and recovers.
func (m *storeMachine) Crash(t *rapid.T) {
	seed := rapid.Uint64().Draw(t, "crashSeed")
	m.d.Crash(rand.New(rand.NewPCG(seed, seed^0x5eed)))
	m.crashes++
	m.s = open(t, m.d, m.opts)
	last := m.s.CommitLog().LastIndex()
	if last < m.synced || last > uint64(len(m.history)) {
		t.Fatalf("after crash the commit log ends at %d; synced %d, appended %d", last, m.synced, len(m.history))
	}
	m.history = m.history[:last]
	m.synced = last // what survived a power loss is on the medium
	m.confirmed = last
	m.committed = cloneOffsets(m.flushed)
	m.afterOpen(t)
}

// Restart closes the store cleanly and reopens it.
func (m *storeMachine) Restart(t *rapid.T) {
	if err := m.s.Close(); err != nil {
		t.Fatal(err)
	}
	m.flushed = cloneOffsets(m.committed)
	m.s = open(t, m.d, m.opts)
	if last := m.s.CommitLog().LastIndex(); last != uint64(len(m.history)) {
		t.Fatalf("after a clean restart the commit log ends at %d, appended %d", last, len(m.history))
	}
	m.confirmed = uint64(len(m.history))
	m.afterOpen(t)
}

// afterOpen does what the broker does after Open: sync the commit log before serving.
func (m *storeMachine) afterOpen(t *rapid.T) {
	if rapid.Bool().Draw(t, "syncAfterOpen") {
		if err := m.s.CommitLog().Sync(); err != nil {
			t.Fatal(err)
		}
		m.synced = uint64(len(m.history))
	}
}

// Check runs after every action: the store shows exactly the model's confirmed messages.
func (m *storeMachine) Check(t *rapid.T) {
	if m.s.Confirmed() != m.confirmed {
		t.Fatalf("confirmed %d, model %d", m.s.Confirmed(), m.confirmed)
	}
	if cl := m.s.CommitLog().LastIndex(); cl != uint64(len(m.history)) {
		t.Fatalf("commit log ends at %d, model %d", cl, len(m.history))
	}
	for _, k := range modelQueues {
		var want []string
		for _, mm := range m.visible(k) {
			want = append(want, mm.body)
		}
		if diff := cmp.Diff(want, queueBodies(t, m.s, k.topic, k.queueID)); diff != "" {
			t.Fatalf("queue %v (-want +got):\n%s", k, diff)
		}
		if got := m.s.MaxOffset(k.topic, k.queueID); got != int64(len(want)) {
			t.Fatalf("MaxOffset(%v) = %d, want %d", k, got, len(want))
		}
		if q, ok := m.s.queues[k]; ok {
			q.assertInside(m.s.CommitLog().LastIndex())
		}
	}
	if open, budget, _, _ := m.s.OpenQueueFiles(); open > budget {
		t.Fatalf("%d consume-queue logs open, budget %d", open, budget)
	}
	for k, want := range m.committed {
		if got, ok := m.s.QueryOffset(k.group, k.topic, k.queueID); !ok || got != want {
			t.Fatalf("QueryOffset(%v) = %d %v, want %d", k, got, ok, want)
		}
	}
}

// TestStoreModel is the store's state-machine test: random appends, reads, partial syncs,
// finished and abandoned checkpoints, offset commits, clean restarts and crashes, checked
// against the model after every step.
func TestStoreModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newStoreMachine(t, Options{})
		t.Repeat(m.actions())
	})
}

// TestStoreModelSmallBudget is TestStoreModel with fewer open consume-queue logs allowed than
// the model has queues: queues are closed and reopened all along, also while a checkpoint
// holds their logs, and their offsets must survive that, checkpoints, restarts and crashes.
func TestStoreModelSmallBudget(t *testing.T) {
	var closes uint64
	rapid.Check(t, func(t *rapid.T) {
		budget := rapid.IntRange(1, len(modelQueues)-1).Draw(t, "budget")
		m := newStoreMachine(t, Options{MaxOpenQueueFiles: budget})
		t.Repeat(m.actions())
		_, _, _, n := m.s.OpenQueueFiles()
		closes += n
	})
	if closes == 0 {
		t.Fatal("no run closed a consume queue: the budget was never exercised")
	}
}

func (m *storeMachine) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"append":        m.Append,
		"appendMore":    m.Append,
		"confirmAsync":  m.ConfirmAsync,
		"syncCommitLog": m.SyncCommitLog,
		"checkpoint":    m.Checkpoint,
		"get":           m.Get,
		"readIndex":     m.ReadIndex,
		"commitOffset":  m.CommitOffset,
		"flushOffsets":  m.FlushOffsets,
		"crash":         m.Crash,
		"restart":       m.Restart,
		"":              m.Check,
	}
}
