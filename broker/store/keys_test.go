package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// keyed is a message with a UNIQ_KEY and KEYS, stored at time ms.
func keyed(topic, body, uniq, keys string, ms int64) *codec.Message {
	m := msg(topic, 0, body, "")
	props := map[string]string{}
	if uniq != "" {
		props[codec.PropUniqKey] = uniq
	}
	if keys != "" {
		props[codec.PropKeys] = keys
	}
	m.Properties = codec.EncodeProperties(props)
	m.StoreTimestamp = ms
	return m
}

func queryBodies(t tb, s *Store, topic, key string, maxNum int, begin, end int64) []string {
	t.Helper()
	r, err := s.QueryMessage(topic, key, maxNum, begin, end)
	if err != nil {
		t.Fatalf("QueryMessage(%s, %q): %v", topic, key, err)
	}
	return bodiesOf(t, r.Records)
}

const forever = int64(1) << 62

// QueryMessage finds a topic's messages by UNIQ_KEY and by each word of KEYS, oldest first,
// within the time range, only confirmed ones, the newest maxNum; a key is per topic.
func TestQueryMessageByKey(t *testing.T) {
	s := open(t, simdisk.New(), Options{KeyIndexBucketBits: 1}) // two buckets: every chain mixes keys
	defer s.Close()
	mustCreate(t, s, "A", 1)
	mustCreate(t, s, "B", 1)
	mustAppend(t, s, keyed("A", "a1", "U1", "order-1 customer-7", 100))
	mustAppend(t, s, keyed("B", "b1", "U2", "order-1", 110))
	mustAppend(t, s, keyed("A", "a2", "U3", "order-2  customer-7", 120)) // a double space is no empty key
	mustAppend(t, s, keyed("A", "a3", "", "customer-7 customer-7", 130))
	s.Confirm(3)

	cases := []struct {
		topic, key string
		maxNum     int
		begin, end int64
		want       []string
	}{
		{"A", "order-1", 10, 0, forever, []string{"a1"}},
		{"B", "order-1", 10, 0, forever, []string{"b1"}},
		{"A", "U3", 10, 0, forever, []string{"a2"}},
		{"A", "customer-7", 10, 0, forever, []string{"a1", "a2"}}, // a3 is not confirmed
		{"A", "customer-7", 1, 0, forever, []string{"a2"}},        // the newest maxNum
		{"A", "customer-7", 10, 110, 200, []string{"a2"}},
		{"A", "customer-7", 10, 0, 99, nil},
		{"A", "U2", 10, 0, forever, nil}, // B's key
		{"A", "", 10, 0, forever, nil},
		{"A", "nope", 10, 0, forever, nil},
		{"C", "order-1", 10, 0, forever, nil},
	}
	check := func(when string) {
		t.Helper()
		for _, c := range cases {
			if got := queryBodies(t, s, c.topic, c.key, c.maxNum, c.begin, c.end); !cmp.Equal(got, c.want) {
				t.Errorf("%s: query %s %q max %d [%d,%d] = %v, want %v", when, c.topic, c.key, c.maxNum, c.begin, c.end, got, c.want)
			}
		}
	}
	check("before confirm")
	s.Confirm(4)
	cases[3].want = []string{"a1", "a2", "a3"}
	cases[4].want = []string{"a3"}
	cases[5].want = []string{"a2", "a3"}
	check("after confirm")
	r, _ := s.QueryMessage("A", "order-1", 1, 0, forever)
	if r.LastIndexedIndex != 4 || r.LastIndexedMs != 130 {
		t.Errorf("last indexed %d at %d ms, want 4 at 130", r.LastIndexedIndex, r.LastIndexedMs)
	}
}

// The index survives every way of reopening: a clean restart, a crash with no checkpoint
// (replay indexes everything), a crash after a checkpoint, and a missing index log (built from
// the commit log at open). Messages of a deleted topic are never found, its re-created
// incarnation's are.
func TestKeyIndexRecovery(t *testing.T) {
	for _, how := range []string{"close", "crash", "checkpoint-crash", "index-removed"} {
		t.Run(how, func(t *testing.T) {
			d := simdisk.New()
			s := open(t, d, Options{KeyIndexBucketBits: 2})
			mustCreate(t, s, "A", 1)
			mustCreate(t, s, "Old", 1)
			for i := range 20 {
				mustAppend(t, s, keyed("A", fmt.Sprint("a", i), fmt.Sprint("U", i), fmt.Sprint("k", i%3), int64(i)))
				mustAppend(t, s, keyed("Old", fmt.Sprint("o", i), "", "k0", int64(i)))
			}
			s.Confirm(s.CommitLog().LastIndex())
			syncAll(t, s)
			if how == "checkpoint-crash" {
				checkpoint(t, s)
			}
			if _, err := s.DeleteTopic("Old"); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, s, "Old", 1)
			mustAppend(t, s, keyed("Old", "fresh", "", "k0", 99))
			s.Confirm(s.CommitLog().LastIndex())
			syncAll(t, s)
			switch how {
			case "close":
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			case "crash", "checkpoint-crash":
				d.Crash(rand.New(rand.NewPCG(5, 5)))
			case "index-removed":
				s.Close()
				if err := d.RemoveLog(keyIndexName); err != nil {
					t.Fatal(err)
				}
			}
			s = open(t, d, Options{KeyIndexBucketBits: 2})
			defer s.Close()
			if got := queryBodies(t, s, "A", "k1", 64, 0, forever); !cmp.Equal(got, []string{"a1", "a4", "a7", "a10", "a13", "a16", "a19"}) {
				t.Errorf("A k1 after %s: %v", how, got)
			}
			if got := queryBodies(t, s, "A", "U12", 64, 0, forever); !cmp.Equal(got, []string{"a12"}) {
				t.Errorf("A U12 after %s: %v", how, got)
			}
			if got := queryBodies(t, s, "Old", "k0", 64, 0, forever); !cmp.Equal(got, []string{"fresh"}) {
				t.Errorf("Old k0 after %s: %v, want only the re-created topic's message", how, got)
			}
			// New messages are indexed after the reopen, behind the recovered ones.
			mustAppend(t, s, keyed("A", "late", "", "k1", 200))
			s.Confirm(s.CommitLog().LastIndex())
			if got := queryBodies(t, s, "A", "k1", 2, 0, forever); !cmp.Equal(got, []string{"a19", "late"}) {
				t.Errorf("A k1 newest 2 after %s and one more append: %v", how, got)
			}
		})
	}
}

// VIEW_MESSAGE_BY_ID's store side: the record at a physical offset, never an unconfirmed one
// nor one of a deleted topic.
func TestViewMessage(t *testing.T) {
	s := open(t, simdisk.New(), Options{})
	defer s.Close()
	mustCreate(t, s, "A", 1)
	mustCreate(t, s, "Gone", 1)
	a := mustAppend(t, s, keyed("A", "a", "U1", "", 1))
	g := mustAppend(t, s, keyed("Gone", "g", "U2", "", 1))
	pending := mustAppend(t, s, keyed("A", "p", "U3", "", 1))
	s.Confirm(g.Index)
	rec, err := s.ViewMessage(a.Index)
	if err != nil || !cmp.Equal(bodiesOf(t, [][]byte{rec}), []string{"a"}) {
		t.Fatalf("view %d: %v", a.Index, err)
	}
	if _, err := s.DeleteTopic("Gone"); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint64{0, g.Index, pending.Index, 99} {
		if _, err := s.ViewMessage(idx); !errors.Is(err, node.ErrNotFound) {
			t.Errorf("view %d: %v, want ErrNotFound", idx, err)
		}
	}
}

// Many keys in few buckets: every query returns exactly its own messages (hits are checked
// against the record, so hash-bucket neighbours never leak in).
func TestKeyIndexCollisions(t *testing.T) {
	s := open(t, simdisk.New(), Options{KeyIndexBucketBits: 1})
	defer s.Close()
	mustCreate(t, s, "A", 1)
	for i := range 200 {
		mustAppend(t, s, keyed("A", fmt.Sprint(i), "", fmt.Sprint("key-", i%50), 0))
	}
	s.Confirm(s.CommitLog().LastIndex())
	for k := range 50 {
		want := []string{fmt.Sprint(k), fmt.Sprint(k + 50), fmt.Sprint(k + 100), fmt.Sprint(k + 150)}
		if got := queryBodies(t, s, "A", fmt.Sprint("key-", k), 64, 0, forever); !cmp.Equal(got, want) {
			t.Fatalf("key-%d: %v, want %v", k, got, want)
		}
	}
}

// Answers are bounded: at most MaxQueryNum messages, and beyond the first at most MaxGetBytes.
func TestQueryMessageBounds(t *testing.T) {
	s := open(t, simdisk.New(), Options{MaxGetBytes: 1000})
	defer s.Close()
	mustCreate(t, s, "A", 1)
	for i := range 100 {
		mustAppend(t, s, keyed("A", fmt.Sprint(i), "", "k", 0))
	}
	mustAppend(t, s, keyed("A", strings.Repeat("x", 2000), "", "big", 0))
	mustAppend(t, s, keyed("A", strings.Repeat("y", 2000), "", "big", 0))
	s.Confirm(s.CommitLog().LastIndex())
	r, err := s.QueryMessage("A", "k", 1000, 0, forever)
	size := 0
	for _, rec := range r.Records {
		size += len(rec)
	}
	if err != nil || len(r.Records) < 2 || size > 1000 {
		t.Errorf("query bounded by MaxGetBytes 1000 returned %d records of %d bytes (%v)", len(r.Records), size, err)
	}
	s.opts.MaxGetBytes = 1 << 20
	if got := queryBodies(t, s, "A", "k", 1000, 0, forever); len(got) != MaxQueryNum || got[len(got)-1] != "99" {
		t.Errorf("maxNum 1000 returned %d messages ending %v, want the newest %d", len(got), got[len(got)-1:], MaxQueryNum)
	}
	s.opts.MaxGetBytes = 1000
	if got := queryBodies(t, s, "A", "big", 10, 0, forever); len(got) != 1 || got[0][0] != 'y' {
		t.Errorf("two records over MaxGetBytes: got %d, want only the newest", len(got))
	}
}

// keysMachine drives a store with keyed messages in two topics through confirms, partial
// syncs, checkpoints, deletes (and re-creation) of one topic, crashes and restarts, and checks
// every key lookup against the model after each step.
type keysMachine struct {
	d         *simdisk.Disk
	s         *Store
	history   []keyedMsg
	synced    uint64
	confirmed uint64
	seq       int
	exists    map[string]bool
}

type keyedMsg struct {
	topic, body string
	keys        []string
	dead        bool
}

var (
	modelKeyTopics = []string{"A", "B"}
	modelKeys      = []string{"k1", "k2", "k3", "k4"}
)

func (m *keysMachine) open(t *rapid.T) {
	m.s = open(t, m.d, Options{KeyIndexBucketBits: 1})
}

func (m *keysMachine) Append(t *rapid.T) {
	topic := rapid.SampledFrom(modelKeyTopics).Draw(t, "topic")
	if !m.exists[topic] {
		mustCreate(t, m.s, topic, 1)
		m.exists[topic] = true
	}
	keys := rapid.SliceOfNDistinct(rapid.SampledFrom(modelKeys), 0, 3, rapid.ID[string]).Draw(t, "keys")
	body := fmt.Sprint("m", m.seq)
	m.seq++
	mustAppend(t, m.s, keyed(topic, body, "", strings.Join(keys, " "), int64(m.seq)))
	m.history = append(m.history, keyedMsg{topic: topic, body: body, keys: keys})
}

func (m *keysMachine) Confirm(t *rapid.T) {
	m.confirmed = uint64(len(m.history))
	m.s.Confirm(m.confirmed)
}

func (m *keysMachine) SyncCommitLog(t *rapid.T) {
	upTo := rapid.Uint64Range(m.synced, uint64(len(m.history))).Draw(t, "upTo")
	if err := m.s.CommitLog().(*simdisk.Log).SyncTo(upTo); err != nil {
		t.Fatal(err)
	}
	m.synced = upTo
	m.confirmed = max(m.confirmed, upTo)
	m.s.Confirm(m.confirmed)
}

func (m *keysMachine) Checkpoint(t *rapid.T) {
	logs, upTo := m.s.BeginCheckpoint()
	finish := rapid.Bool().Draw(t, "finish")
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

func (m *keysMachine) Delete(t *rapid.T) {
	topic := rapid.SampledFrom(modelKeyTopics).Draw(t, "topic")
	_, err := m.s.DeleteTopic(topic)
	if !m.exists[topic] {
		if !errors.Is(err, ErrUnknownTopic) {
			t.Fatalf("delete of absent %s: %v", topic, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	m.exists[topic] = false
	for i := range m.history {
		if m.history[i].topic == topic {
			m.history[i].dead = true
		}
	}
}

func (m *keysMachine) Crash(t *rapid.T) {
	seed := rapid.Uint64().Draw(t, "seed")
	m.d.Crash(rand.New(rand.NewPCG(seed, 7)))
	m.open(t)
	last := m.s.CommitLog().LastIndex()
	if last < m.synced || last > uint64(len(m.history)) {
		t.Fatalf("after a crash the commit log ends at %d; synced %d, appended %d", last, m.synced, len(m.history))
	}
	m.history = m.history[:last]
	m.synced, m.confirmed = last, last
	if err := m.s.CommitLog().Sync(); err != nil {
		t.Fatal(err)
	}
}

func (m *keysMachine) Restart(t *rapid.T) {
	if err := m.s.Close(); err != nil {
		t.Fatal(err)
	}
	m.open(t)
	m.confirmed = uint64(len(m.history))
}

func (m *keysMachine) Check(t *rapid.T) {
	for _, topic := range modelKeyTopics {
		if _, ok := m.s.Topic(topic); ok != m.exists[topic] {
			t.Fatalf("topic %s exists %v, model %v", topic, ok, m.exists[topic])
		}
		for _, k := range modelKeys {
			var want []string
			for _, h := range m.history[:m.confirmed] {
				if h.topic == topic && !h.dead && slices.Contains(h.keys, k) {
					want = append(want, h.body)
				}
			}
			if len(want) > MaxQueryNum {
				want = want[len(want)-MaxQueryNum:]
			}
			if got := queryBodies(t, m.s, topic, k, MaxQueryNum, 0, forever); !cmp.Equal(got, want) {
				t.Fatalf("query %s %s = %v, model %v", topic, k, got, want)
			}
		}
	}
}

func TestKeyIndexModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &keysMachine{d: simdisk.New(), exists: map[string]bool{}}
		m.open(t)
		t.Repeat(map[string]func(*rapid.T){
			"append":        m.Append,
			"appendMore":    m.Append,
			"confirm":       m.Confirm,
			"syncCommitLog": m.SyncCommitLog,
			"checkpoint":    m.Checkpoint,
			"delete":        m.Delete,
			"crash":         m.Crash,
			"restart":       m.Restart,
			"":              m.Check,
		})
	})
}

// BenchmarkOpenWithKeyIndex measures Open on real files holding 100k 1 KiB messages, each
// with a UNIQ_KEY and one KEYS word, after a clean close: the open reads the key index (two
// 32-byte entries a message) and not the commit log. The sub-benchmark "rebuild" removes the
// index log first, so the open builds it from the whole commit log, as an index kept only in
// memory would have to on every open.
func BenchmarkOpenWithKeyIndex(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	d, err := diskfile.Open(dir, diskfile.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(d, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.CreateTopic(TopicConfig{Name: "Bench", ReadQueueNums: 8, WriteQueueNums: 8, Perm: PermReadWrite}); err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat("x", 1024)
	for i := range n {
		m := keyed("Bench", body, fmt.Sprintf("C0A8000100002A9F0000%012x", i), fmt.Sprint("order-", i), int64(i))
		m.QueueID = int32(i % 8)
		if _, err := s.Append(m); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := s.CommitLog().Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	s.Confirm(s.CommitLog().LastIndex())
	logs, upTo := s.BeginCheckpoint()
	for _, l := range logs {
		if err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.FinishCheckpoint(upTo); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	reopen := func(b *testing.B, removeIndex bool) {
		for b.Loop() {
			b.StopTimer()
			if removeIndex {
				if err := d.RemoveLog(keyIndexName); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			s, err := Open(d, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if got := queryBodies(b, s, "Bench", "order-77777", 1, 0, forever); len(got) != 1 {
				b.Fatalf("lookup after open found %d messages", len(got))
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("index", func(b *testing.B) { reopen(b, false) })
	b.Run("rebuild", func(b *testing.B) { reopen(b, true) })
}

// BenchmarkAppendIndexKeys measures what indexing costs an Append (1 KiB messages on real
// files, no fsync): messages without keys beside messages with a UNIQ_KEY and two KEYS words
// (three index entries each).
func BenchmarkAppendIndexKeys(b *testing.B) {
	body := strings.Repeat("x", 1024)
	for _, c := range []struct {
		name       string
		uniq, keys string
	}{{"no-keys", "", ""}, {"uniq+2-keys", "C0A8000100002A9F0000000000000001", "order-1 customer-2"}} {
		b.Run(c.name, func(b *testing.B) {
			d, err := diskfile.Open(b.TempDir(), diskfile.Options{})
			if err != nil {
				b.Fatal(err)
			}
			s, err := Open(d, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.CreateTopic(TopicConfig{Name: "Bench", ReadQueueNums: 8, WriteQueueNums: 8, Perm: PermReadWrite}); err != nil {
				b.Fatal(err)
			}
			m := keyed("Bench", body, c.uniq, c.keys, 1)
			b.SetBytes(int64(len(body)))
			i := 0
			for b.Loop() {
				m.QueueID = int32(i % 8)
				if _, err := s.Append(m); err != nil {
					b.Fatal(err)
				}
				if i++; i%1000 == 0 {
					b.StopTimer()
					for _, l := range append([]node.Log{s.CommitLog()}, s.keys.Log()) {
						if err := l.Sync(); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
			}
		})
	}
}
