package store

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

var host = netip.MustParseAddrPort("127.0.9.1:10911")

func open(t tb, d node.Disk, opts Options) *Store {
	t.Helper()
	s, err := Open(d, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func msg(topic string, q int32, body, tags string) *codec.Message {
	props := ""
	if tags != "" {
		props = codec.EncodeProperties(map[string]string{codec.PropTags: tags})
	}
	return &codec.Message{Topic: topic, QueueID: q, Body: []byte(body), Properties: props,
		BornHost: host, StoreHost: host, BornTimestamp: 1, StoreTimestamp: 2}
}

func mustAppend(t tb, s *Store, m *codec.Message) AppendResult {
	t.Helper()
	r, err := s.Append(m)
	if err != nil {
		t.Fatalf("Append %s/%d %q: %v", m.Topic, m.QueueID, m.Body, err)
	}
	return r
}

func mustCreate(t tb, s *Store, name string, queues int32) {
	t.Helper()
	if err := s.CreateTopic(TopicConfig{Name: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: PermReadWrite}); err != nil {
		t.Fatal(err)
	}
}

// bodiesOf decodes records and checks each carries the queue offset it was returned at.
func bodiesOf(t tb, recs [][]byte) []string {
	t.Helper()
	var out []string
	for _, rec := range recs {
		m, n, err := codec.DecodeRecord(rec)
		if err != nil || n != len(rec) {
			t.Fatalf("record does not decode: %v", err)
		}
		out = append(out, string(m.Body))
	}
	return out
}

// queueBodies reads a whole queue through Get, checking queue offsets are dense from 0.
func queueBodies(t tb, s *Store, topic string, q int32) []string {
	t.Helper()
	var out []string
	for off := int64(0); ; {
		r, err := s.Get(topic, q, off, 7, nil)
		if err != nil {
			t.Fatalf("Get %s/%d@%d: %v", topic, q, off, err)
		}
		if r.Status != Found {
			return out
		}
		for i, rec := range r.Records {
			m, _, err := codec.DecodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			if m.QueueOffset != off+int64(i) || m.Topic != topic || m.QueueID != q {
				t.Fatalf("%s/%d@%d: record says %s/%d@%d", topic, q, off+int64(i), m.Topic, m.QueueID, m.QueueOffset)
			}
			out = append(out, string(m.Body))
		}
		off = r.NextOffset
	}
}

func TestGetStatuses(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	mustCreate(t, s, "T", 3)
	for i, tag := range []string{"a", "b", "a", "b", "a"} { // T/0 offsets 0..4, indexes 1..5
		mustAppend(t, s, msg("T", 0, fmt.Sprintf("m%d", i), tag))
	}
	for i := 0; i < 4; i++ { // T/2 offsets 0..3, indexes 6..9
		mustAppend(t, s, msg("T", 2, fmt.Sprintf("k%d", i), ""))
	}
	s.Confirm(9)
	mustAppend(t, s, msg("T", 1, "n0", "")) // index 10, never confirmed
	// Simulate retention on T/2: offsets 0 and 1 are gone.
	if err := queueLog(t, s, "T", 2).TruncateFront(3); err != nil {
		t.Fatal(err)
	}
	tagA := codec.TagsHash("a")
	onlyA := func(h int64) bool { return h == tagA }
	none := func(int64) bool { return false }

	tests := []struct {
		name         string
		topic        string
		q            int32
		offset       int64
		maxMsgs      int
		match        func(int64) bool
		status       GetStatus
		bodies       []string
		next, lo, hi int64
	}{
		{"all", "T", 0, 0, 32, nil, Found, []string{"m0", "m1", "m2", "m3", "m4"}, 5, 0, 5},
		{"batch limit", "T", 0, 1, 2, nil, Found, []string{"m1", "m2"}, 3, 0, 5},
		{"filtered, batch full", "T", 0, 0, 2, onlyA, Found, []string{"m0", "m2"}, 3, 0, 5},
		{"filtered, to the end", "T", 0, 1, 32, onlyA, Found, []string{"m2", "m4"}, 5, 0, 5},
		{"nothing matches", "T", 0, 1, 32, none, NoMatchedMessage, nil, 5, 0, 5},
		{"at max", "T", 0, 5, 32, nil, OffsetOverflowOne, nil, 5, 0, 5},
		{"past max goes back to max, not to 0", "T", 0, 9, 32, nil, OffsetOverflowBadly, nil, 5, 0, 5},
		{"unconfirmed only", "T", 1, 0, 32, nil, NoMessageInQueue, nil, 0, 0, 0},
		{"unknown queue", "nope", 0, 3, 32, nil, NoMessageInQueue, nil, 0, 0, 0},
		{"below min", "T", 2, 0, 32, nil, OffsetTooSmall, nil, 2, 2, 4},
		{"past max, min > 0", "T", 2, 7, 32, nil, OffsetOverflowBadly, nil, 4, 2, 4},
		{"from min", "T", 2, 2, 32, nil, Found, []string{"k2", "k3"}, 4, 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Get(tt.topic, tt.q, tt.offset, tt.maxMsgs, tt.match)
			if err != nil {
				t.Fatal(err)
			}
			got := struct {
				Status       string
				Bodies       []string
				Next, Lo, Hi int64
			}{r.Status.String(), bodiesOf(t, r.Records), r.NextOffset, r.MinOffset, r.MaxOffset}
			want := struct {
				Status       string
				Bodies       []string
				Next, Lo, Hi int64
			}{tt.status.String(), tt.bodies, tt.next, tt.lo, tt.hi}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Get(%s/%d@%d) (-want +got):\n%s", tt.topic, tt.q, tt.offset, diff)
			}
		})
	}

	t.Run("byte bound", func(t *testing.T) {
		small := open(t, simdisk.New(), Options{MaxGetBytes: 1})
		mustCreate(t, small, "T", 1)
		mustAppend(t, small, msg("T", 0, "x", ""))
		mustAppend(t, small, msg("T", 0, "y", ""))
		small.Confirm(2)
		r, _ := small.Get("T", 0, 0, 32, nil)
		if r.Status != Found || len(r.Records) != 1 || r.NextOffset != 1 {
			t.Fatalf("got %v with %d records, next %d; want one record, next 1", r.Status, len(r.Records), r.NextOffset)
		}
	})
}

func TestAppendAssignsOffsets(t *testing.T) {
	s := open(t, simdisk.New(), Options{})
	if _, err := s.Append(msg("T", 0, "x", "")); err == nil {
		t.Fatal("append to unknown topic accepted")
	}
	mustCreate(t, s, "T", 2)
	if _, err := s.Append(msg("T", 2, "x", "")); err == nil {
		t.Fatal("append to queue 2 of a 2-queue topic accepted")
	}
	var got []AppendResult
	for _, q := range []int32{0, 1, 0, 0} {
		got = append(got, mustAppend(t, s, msg("T", q, "b", "")))
	}
	for i, r := range got {
		got[i].Size = 0
		if r.Size != codec.RecordSize(msg("T", 0, "b", "")) {
			t.Errorf("append %d: size %d", i, r.Size)
		}
	}
	want := []AppendResult{{Index: 1, QueueOffset: 0}, {Index: 2, QueueOffset: 0}, {Index: 3, QueueOffset: 1}, {Index: 4, QueueOffset: 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("append results (-want +got):\n%s", diff)
	}
	if s.MaxOffset("T", 0) != 0 {
		t.Fatal("unconfirmed messages counted in MaxOffset")
	}
	if _, err := s.ReadIndex(3); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("ReadIndex of unconfirmed message: %v", err)
	}
	s.Confirm(3)
	if s.MaxOffset("T", 0) != 2 || s.MaxOffset("T", 1) != 1 {
		t.Fatalf("max offsets %d, %d after Confirm(3)", s.MaxOffset("T", 0), s.MaxOffset("T", 1))
	}
	m, err := s.ReadIndex(3)
	if err != nil || m.QueueOffset != 1 || m.PhysicalOffset != 3 {
		t.Fatalf("ReadIndex(3) = %+v, %v", m, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Confirm moving backwards did not panic")
			}
		}()
		s.Confirm(2)
	}()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Confirm beyond the commit log did not panic")
			}
		}()
		s.Confirm(5)
	}()
}

func TestTopicsAndOffsetsPersist(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	mustCreate(t, s, "b", 4)
	mustCreate(t, s, "a", 1)
	if err := s.CreateTopic(TopicConfig{Name: "../x", ReadQueueNums: 1, WriteQueueNums: 1}); err == nil {
		t.Fatal("accepted a topic name with a path in it")
	}
	s.CommitOffset("g2", "b", 3, 10)
	s.CommitOffset("g1", "b", 1, 7)
	s.CommitOffset("g1", "a", 0, 5)
	if err := s.FlushOffsets(); err != nil {
		t.Fatal(err)
	}
	first, _ := d.ReadFile(offsetsFile)
	s.CommitOffset("g1", "a", 0, 5) // unchanged: no rewrite needed
	if s.offsetsDirty {
		t.Fatal("unchanged offset marked dirty")
	}
	s.CommitOffset("g0", "a", 0, 1)
	if err := s.Close(); err != nil { // Close flushes
		t.Fatal(err)
	}
	s = open(t, d, Options{})
	if diff := cmp.Diff([]TopicConfig{
		{Name: "a", ReadQueueNums: 1, WriteQueueNums: 1, Perm: PermReadWrite},
		{Name: "b", ReadQueueNums: 4, WriteQueueNums: 4, Perm: PermReadWrite},
	}, s.Topics()); diff != "" {
		t.Fatalf("topics after reopen (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		g, t string
		q    int32
		off  int64
	}{{"g0", "a", 0, 1}, {"g1", "a", 0, 5}, {"g1", "b", 1, 7}, {"g2", "b", 3, 10}} {
		if off, ok := s.QueryOffset(c.g, c.t, c.q); !ok || off != c.off {
			t.Errorf("offset %s %s/%d = %d %v, want %d", c.g, c.t, c.q, off, ok, c.off)
		}
	}
	if !strings.Contains(string(first), `"group": "g1"`) || strings.Index(string(first), `"g1"`) > strings.Index(string(first), `"g2"`) {
		t.Errorf("offsets.json not sorted:\n%s", first)
	}
}

// crashUntil crashes copies of a scenario with successive seeds until keep accepts the
// reopened disk; it fails the test if no seed among the first 500 does.
func crashUntil(t *testing.T, build func() *simdisk.Disk, keep func(d *simdisk.Disk) bool) *simdisk.Disk {
	t.Helper()
	for seed := uint64(0); seed < 500; seed++ {
		d := build()
		d.Crash(rand.New(rand.NewPCG(seed, 99)))
		if keep(d) {
			return d
		}
	}
	t.Fatal("no crash seed gave the wanted outcome")
	return nil
}

func clLast(d *simdisk.Disk) uint64 {
	l, err := d.OpenLog(commitLogName)
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.LastIndex()
}

// TestCrashKeepsSyncedMessages: whatever a crash does to unsynced data, every message the
// commit-log sync covered comes back at its offset, and the queues are exactly the projection
// of the surviving commit log.
func TestCrashKeepsSyncedMessages(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		d := simdisk.New()
		s := open(t, d, Options{})
		mustCreate(t, s, "A", 2)
		mustCreate(t, s, "B", 3)
		type sent struct {
			topic string
			q     int32
			body  string
		}
		var history []sent
		var synced uint64
		for i := 0; i < 40; i++ {
			m := sent{"A", int32(r.IntN(2)), fmt.Sprintf("a%d", i)}
			if r.IntN(2) == 0 {
				m = sent{"B", int32(r.IntN(3)), fmt.Sprintf("b%d", i)}
			}
			mustAppend(t, s, msg(m.topic, m.q, m.body, ""))
			history = append(history, m)
			switch r.IntN(8) {
			case 0: // sync flush
				s.CommitLog().Sync()
				synced = s.CommitLog().LastIndex()
				s.Confirm(synced)
			case 1: // async flush: visible before durable
				s.Confirm(s.CommitLog().LastIndex())
			case 2: // checkpoint
				logs, upTo := s.BeginCheckpoint()
				for _, l := range logs {
					l.Sync()
				}
				if err := s.FinishCheckpoint(upTo); err != nil {
					t.Fatal(err)
				}
			}
		}
		d.Crash(rand.New(rand.NewPCG(seed, 2)))
		s = open(t, d, Options{})
		last := s.CommitLog().LastIndex()
		if last < synced {
			t.Fatalf("seed %d: commit log ends at %d, synced %d", seed, last, synced)
		}
		if s.Confirmed() != last {
			t.Fatalf("seed %d: confirmed %d after recovery, commit log last %d", seed, s.Confirmed(), last)
		}
		want := map[queueKey][]string{}
		for _, m := range history[:last] {
			k := queueKey{m.topic, m.q}
			want[k] = append(want[k], m.body)
		}
		for _, k := range []queueKey{{"A", 0}, {"A", 1}, {"B", 0}, {"B", 1}, {"B", 2}} {
			if diff := cmp.Diff(want[k], queueBodies(t, s, k.topic, k.queueID)); diff != "" {
				t.Fatalf("seed %d: queue %v after crash (-want +got):\n%s", seed, k, diff)
			}
			if q, ok := s.queues[k]; ok {
				q.assertInside(last)
			}
		}
	}
}

// TestRecoveryLowersCheckpoint: an async-flush checkpoint covered commit-log entries the
// crash then lost. New messages reuse those indexes; a second crash that loses their
// consume-queue entries must still find them by replay.
func TestRecoveryLowersCheckpoint(t *testing.T) {
	build := func() *simdisk.Disk {
		d := simdisk.New()
		s := open(t, d, Options{})
		mustCreate(t, s, "T", 1)
		for i := 0; i < 10; i++ {
			mustAppend(t, s, msg("T", 0, fmt.Sprintf("old%d", i), ""))
		}
		d.SyncLog(commitLogName, 5)
		s.Confirm(10) // async flush
		logs, upTo := s.BeginCheckpoint()
		for _, l := range logs {
			l.Sync()
		}
		if err := s.FinishCheckpoint(upTo); err != nil || upTo != 10 {
			t.Fatalf("checkpoint %d: %v", upTo, err)
		}
		return d
	}
	d := crashUntil(t, build, func(d *simdisk.Disk) bool { return clLast(d) == 5 })
	s := open(t, d, Options{})
	if got := s.MaxOffset("T", 0); got != 5 {
		t.Fatalf("max offset %d after losing commit-log entries 6..10, want 5", got)
	}
	if s.Checkpoint() != 5 {
		t.Fatalf("checkpoint %d, want lowered to 5", s.Checkpoint())
	}
	for i := 5; i < 8; i++ {
		mustAppend(t, s, msg("T", 0, fmt.Sprintf("new%d", i), ""))
	}
	s.CommitLog().Sync() // the commit log is durable, the consume queue is not
	s.Confirm(8)
	d.Crash(rand.New(rand.NewPCG(0, 0)))
	// The worst case for the consume queue: every unsynced entry lost.
	l, _ := d.OpenLog("cq/T/0")
	l.TruncateBack(min(l.LastIndex(), 5))
	l.Close()
	s = open(t, d, Options{})
	want := []string{"old0", "old1", "old2", "old3", "old4", "new5", "new6", "new7"}
	if diff := cmp.Diff(want, queueBodies(t, s, "T", 0)); diff != "" {
		t.Fatalf("queue after second crash (-want +got):\n%s", diff)
	}
}

// TestRecoveryDropsDanglingQueueEntries: consume queues synced by a checkpoint point at
// commit-log entries a crash lost; recovery removes them.
func TestRecoveryDropsDanglingQueueEntries(t *testing.T) {
	build := func() *simdisk.Disk {
		d := simdisk.New()
		s := open(t, d, Options{})
		mustCreate(t, s, "T", 2)
		for i := 0; i < 6; i++ {
			mustAppend(t, s, msg("T", int32(i%2), fmt.Sprintf("m%d", i), ""))
		}
		d.SyncLog(commitLogName, 2)
		for _, q := range s.sortedQueues() {
			d.SyncLog(queueLogName(q.key.topic, q.key.queueID), math.MaxUint64)
		}
		return d
	}
	d := crashUntil(t, build, func(d *simdisk.Disk) bool { return clLast(d) == 3 })
	s := open(t, d, Options{})
	if diff := cmp.Diff([]string{"m0", "m2"}, queueBodies(t, s, "T", 0)); diff != "" {
		t.Errorf("T/0 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"m1"}, queueBodies(t, s, "T", 1)); diff != "" {
		t.Errorf("T/1 (-want +got):\n%s", diff)
	}
	if got := queueLog(t, s, "T", 1).LastIndex(); got != 1 {
		t.Errorf("T/1 consume queue holds %d entries, want 1", got)
	}
	if r := mustAppend(t, s, msg("T", 1, "m4'", "")); r.Index != 4 || r.QueueOffset != 1 {
		t.Errorf("append after recovery went to %+v", r)
	}
}

func TestRecoveryRecreatesTopicsAndDetectsCorruption(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	mustCreate(t, s, "T", 8)
	mustAppend(t, s, msg("T", 5, "x", ""))
	s.Close()
	d.WriteFile(topicsFile, []byte(`{"topics":[]}`))
	s = open(t, d, Options{})
	if tc, ok := s.Topic("T"); !ok || tc.WriteQueueNums != 6 || tc.ReadQueueNums != 6 {
		t.Fatalf("re-created topic: %+v %v", tc, ok)
	}
	if diff := cmp.Diff([]string{"x"}, queueBodies(t, s, "T", 5)); diff != "" {
		t.Fatalf("T/5 (-want +got):\n%s", diff)
	}
	s.Close()

	// A record whose queue offset skips ahead of its consume queue.
	l, _ := d.OpenLog(commitLogName)
	m := msg("T", 5, "bad", "")
	m.QueueOffset, m.PhysicalOffset = 3, 2
	rec, _ := codec.AppendRecord(nil, m)
	l.Append(rec)
	l.Close()
	if _, err := Open(d, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "queue offset 3") {
		t.Fatalf("Open over a bad queue offset: %v", err)
	}
}

func TestCheckpointAbandonedIsRetried(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	mustCreate(t, s, "T", 2)
	mustAppend(t, s, msg("T", 0, "a", ""))
	s.Confirm(1)
	logs, _ := s.BeginCheckpoint() // the sync fails: never finished
	if len(logs) != 1 {
		t.Fatalf("first checkpoint: %d logs", len(logs))
	}
	mustAppend(t, s, msg("T", 1, "b", ""))
	s.Confirm(2)
	logs, upTo := s.BeginCheckpoint()
	var names []string
	for _, l := range logs {
		names = append(names, l.Name())
	}
	if diff := cmp.Diff([]string{"cq/T/0", "cq/T/1"}, names); diff != "" || upTo != 2 {
		t.Fatalf("retried checkpoint up to %d (-want +got):\n%s", upTo, diff)
	}
	if err := s.FinishCheckpoint(1); err == nil {
		t.Fatal("finished a checkpoint that was not begun")
	}
	if err := s.FinishCheckpoint(2); err != nil {
		t.Fatal(err)
	}
	if logs, _ := s.BeginCheckpoint(); len(logs) != 0 {
		t.Fatalf("clean store checkpoint returned %d logs", len(logs))
	}
}

// TestBitFlipNeverServed: a flipped commit-log entry is never returned. Reads skip it (its
// queue offset reads as a hole) rather than stall the queue behind it; ReadIndex reports it.
func TestBitFlipNeverServed(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	mustCreate(t, s, "T", 1)
	for i := 0; i < 3; i++ {
		mustAppend(t, s, msg("T", 0, fmt.Sprintf("m%d", i), ""))
	}
	s.Confirm(3)
	if err := d.FlipByte(commitLogName, 2); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get("T", 0, 0, 32, nil); err != nil || r.Status != Found || len(r.Records) != 2 || r.NextOffset != 3 {
		t.Fatalf("Get across a flipped entry: %v, %d records, next %d, %v", r.Status, len(r.Records), r.NextOffset, err)
	}
	if r, err := s.Get("T", 0, 1, 1, nil); err != nil || r.Status != Found || len(r.Records) != 1 || r.NextOffset != 3 {
		t.Fatalf("Get at a flipped entry: %v, %d records, next %d, %v", r.Status, len(r.Records), r.NextOffset, err)
	}
	if err := d.FlipByte(commitLogName, 3); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get("T", 0, 1, 32, nil); err != nil || r.Status != NoMatchedMessage || len(r.Records) != 0 || r.NextOffset != 3 {
		t.Fatalf("Get of flipped entries only: %v, %d records, next %d, %v", r.Status, len(r.Records), r.NextOffset, err)
	}
	if _, err := s.ReadIndex(2); !errors.Is(err, node.ErrCorrupt) {
		t.Fatalf("ReadIndex of a flipped entry: %v", err)
	}
}

// TestBitFlipReplayKeepsOffsets: recovery that replays a commit-log record failing its
// checksum keeps its queue offset taken (a hole), so the queue's next message is not stored
// at an offset a consumer may already have read another message at: placed by the consume
// queue's own entry when that was durable, else by the queue's next record.
func TestBitFlipReplayKeepsOffsets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		syncCQ bool // the consume queue's entries survive the crash
		flip   uint64
		want   []string // queue 0 after recovery and one more append, "" for a hole
	}{
		{"queue entry durable, last of its queue", true, 4, []string{"a0", "a1", "", "new"}},
		{"queue entry lost, a later record fills", false, 2, []string{"a0", "", "a2", "new"}},
		{"queue entry durable, middle", true, 2, []string{"a0", "", "a2", "new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := simdisk.New()
			s := open(t, d, Options{})
			mustCreate(t, s, "T", 2)
			// Commit log: a0, a1, b0, a2, b1 at indexes 1..5 (queue 0: a0 a1 a2; queue 1: b0 b1),
			// no checkpoint: recovery replays them all.
			mustAppend(t, s, msg("T", 0, "a0", ""))
			mustAppend(t, s, msg("T", 0, "a1", ""))
			mustAppend(t, s, msg("T", 1, "b0", ""))
			mustAppend(t, s, msg("T", 0, "a2", ""))
			mustAppend(t, s, msg("T", 1, "b1", ""))
			s.Confirm(5)
			if err := d.SyncLog(commitLogName, 5); err != nil {
				t.Fatal(err)
			}
			if tc.syncCQ {
				for _, name := range []string{"cq/T/0", "cq/T/1"} {
					if err := d.SyncLog(name, 10); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := d.FlipByte(commitLogName, tc.flip); err != nil {
				t.Fatal(err)
			}
			d.CrashWith(func(string, uint64) (uint64, bool) { return 0, false })
			s = open(t, d, Options{})
			mustAppend(t, s, msg("T", 0, "new", ""))
			s.Confirm(s.CommitLog().LastIndex())
			got := queueWithHoles(t, s, "T", 0)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("queue 0 (-want +got):\n%s", diff)
			}
		})
	}
}

// queueWithHoles reads a queue whole, one message per Get: its bodies by offset, "" for an
// offset whose record cannot be read (skipped by Get).
func queueWithHoles(t tb, s *Store, topic string, queueID int32) []string {
	t.Helper()
	got := make([]string, s.MaxOffset(topic, queueID))
	for off := int64(0); off < s.MaxOffset(topic, queueID); {
		r, err := s.Get(topic, queueID, off, 1, nil)
		if err != nil || r.NextOffset <= off {
			t.Fatalf("Get at %d: %v, next %d, %v", off, r.Status, r.NextOffset, err)
		}
		for _, rec := range r.Records {
			m, _, err := codec.DecodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			got[m.QueueOffset] = string(m.Body)
		}
		off = r.NextOffset
	}
	return got
}

// TestBitFlipReplayPlacesByHeader: a flipped record that is the last of its queue in the
// replay, whose consume-queue entry did not survive the crash, still keeps its queue offset
// taken: recovery reads the queue it belonged to from its unverified header (the flipped bit
// lies in its body). Before, nothing placed it and the queue's next message took its offset,
// which a consumer may already have read the flipped message at.
func TestBitFlipReplayPlacesByHeader(t *testing.T) {
	d := simdisk.New()
	s := open(t, d, Options{})
	mustCreate(t, s, "T", 2)
	big := strings.Repeat("x", 500) // the flip (the entry's middle byte) lands in the body
	mustAppend(t, s, msg("T", 0, "a0", ""))
	mustAppend(t, s, msg("T", 0, big, "")) // 2: flipped
	mustAppend(t, s, msg("T", 1, "b0", ""))
	mustAppend(t, s, msg("T", 1, "b1", ""))
	s.Confirm(4)
	if err := d.SyncLog(commitLogName, 4); err != nil {
		t.Fatal(err)
	}
	if err := d.FlipByte(commitLogName, 2); err != nil {
		t.Fatal(err)
	}
	d.CrashWith(func(string, uint64) (uint64, bool) { return 0, false }) // consume queues lost
	s = open(t, d, Options{})
	mustAppend(t, s, msg("T", 0, "new", ""))
	s.Confirm(s.CommitLog().LastIndex())
	if diff := cmp.Diff([]string{"a0", "", "new"}, queueWithHoles(t, s, "T", 0)); diff != "" {
		t.Fatalf("queue 0 (-want +got):\n%s", diff)
	}
	if _, upTo := s.BeginCheckpoint(); upTo != s.CommitLog().LastIndex() {
		t.Fatalf("checkpoint up to %d, want %d: the hole is placed", upTo, s.CommitLog().LastIndex())
	}
}

// queueLog returns the open log of a consume queue, opening it if the budget closed it.
func queueLog(t *testing.T, s *Store, topic string, queueID int32) node.Log {
	t.Helper()
	q, ok := s.queues[queueKey{topic, queueID}]
	if !ok {
		t.Fatalf("no consume queue %s/%d", topic, queueID)
	}
	l, err := q.use()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestFramingBytesInside: whatever the damaged bytes say, the framing positions lie inside
// them (framingBitPlacement flips each).
func TestFramingBytesInside(t *testing.T) {
	rec, err := codec.AppendRecord(nil, msg("Orders", 0, "o0", "tag"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n <= len(rec); n++ {
		b := slices.Clone(rec[:n])
		for _, fill := range []byte{0x00, 0xff} {
			for i := 40; i < n; i++ {
				b[i] = fill // lengths and flags of any value
			}
			for _, at := range framingBytes(b) {
				if at < 0 || at >= len(b) {
					t.Fatalf("%d bytes: framing position %d", n, at)
				}
			}
		}
	}
}
