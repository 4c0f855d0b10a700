package brokernode

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/replication"
	"github.com/sluicemq/sluice/broker/store"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// A slave that comes back after its master's retention removed entries it never fetched is
// told the master's first index at its handshake: it drops its log and restarts it there (not
// fetching below it for ever), reports as synced only the index before it, takes the master's
// queue offsets (its queues' min offsets move up, a pull below them is moved up), catches up,
// and keeps all of that across a restart.
func TestSlaveBelowMastersFirstIndexRestartsItsLog(t *testing.T) {
	disk := simdisk.New()
	h := startBroker(t, replicaConfig(), disk)
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	c, hs := h.lastRequest(testMaster, codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "3", "epoch": "1"}, epochsJSON(t, 1, 1))
	h.fetchAnswer(1, 1, 3, record(t, "m1", 1, 0), record(t, "m2", 2, 1), record(t, "m3", 3, 2))
	h.syncAll()
	wantFetch(t, h, "4", "3")

	// Away long enough for the master's retention to remove indexes 1..10.
	c, f := h.lastRequest(testMaster, codec.ReqReplicaFetch)
	h.reply(c, f, codec.SystemError, nil, nil)
	h.env.advance(h.b, time.Second)
	// The master's queues: T/0 from offset 7 (m11..), T/1 from 42, with nothing past index 10.
	body, err := json.Marshal(epochsBody{Epochs: []replication.Epoch{{Epoch: 1, Start: 1}}, FirstIndex: 11,
		QueueStarts: []store.QueueStart{{Topic: "T", QueueID: 0, Offset: 7}, {Topic: "T", QueueID: 1, Offset: 42}}})
	if err != nil {
		t.Fatal(err)
	}
	c, hs = h.lastRequest(testMaster, codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "20", "epoch": "1"}, body)
	cl := h.b.store.CommitLog()
	if cl.FirstIndex() != 11 || cl.LastIndex() != 10 {
		t.Fatalf("after the handshake the slave's log holds %d..%d, want empty at 11", cl.FirstIndex(), cl.LastIndex())
	}
	wantFetch(t, h, "11", "10")
	if got := h.b.repl.table.Entries(); fmt.Sprint(got) != fmt.Sprint([]replication.Epoch{{Epoch: 1, Start: 1}}) {
		t.Fatalf("epoch table %v after the rebase", got)
	}
	// m11..m13 are offsets 7..9 of T/0 on the master.
	h.fetchAnswer(1, 1, 20, record(t, "m11", 11, 7), record(t, "m12", 12, 8), record(t, "m13", 13, 9))
	if last := cl.LastIndex(); last != 13 {
		t.Fatalf("the slave's log ends at %d after the fetch, want 13", last)
	}
	_, f = h.lastRequest(testMaster, codec.ReqReplicaFetch)
	if f.Ext("from") != "11" {
		t.Fatal("the next fetch went out before the records were synced")
	}
	h.syncAll()
	wantFetch(t, h, "14", "13")
	check := func() {
		t.Helper()
		if min, max := h.b.store.MinOffset("T", 0), h.b.store.MaxOffset("T", 0); min != 7 || max != 10 {
			t.Fatalf("T/0 offsets %d..%d, want 7..10", min, max)
		}
		if min, max := h.b.store.MinOffset("T", 1), h.b.store.MaxOffset("T", 1); min != 42 || max != 42 {
			t.Fatalf("T/1 offsets %d..%d, want the master's 42..42", min, max)
		}
		cli := h.env.accept(h.b, "127.0.0.50:1")
		moved := h.mustAnswer(cli, h.pull(cli, "T", 0, 1))
		if moved.Code != codec.PullOffsetMoved || moved.Ext("nextBeginOffset") != "7" {
			t.Fatalf("pull below the min offset: code %d next %q, want %d and 7", moved.Code, moved.Ext("nextBeginOffset"), codec.PullOffsetMoved)
		}
		var bodies []string
		for _, m := range decodeBody(t, h.mustAnswer(cli, h.pull(cli, "T", 0, 7)).Body) {
			bodies = append(bodies, string(m.Body))
		}
		if fmt.Sprint(bodies) != "[m11 m12 m13]" {
			t.Fatalf("slave serves %v", bodies)
		}
	}
	check()

	disk.Crash(rand.New(rand.NewPCG(1, 1)))
	h = startBrokerAt(t, replicaConfig(), disk, h.env.Now())
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	c, hs = h.lastRequest(testMaster, codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "20", "epoch": "1"}, body)
	wantFetch(t, h, "14", "13")
	h.fetchAnswer(1, 1, 13)
	check()
}

// A new slave (empty log) of a master whose log no longer starts at 1 starts at the master's
// first index; one whose own retention removed the index where its log and the new master's
// part ways restarts at that index, also backwards from its own first index.
func TestRebaseTarget(t *testing.T) {
	for _, c := range []struct {
		first, last, p, masterFirst uint64
		want                        uint64
		rebase                      bool
	}{
		{1, 0, 0, 1, 0, false},      // new slave, master from 1
		{1, 0, 0, 40, 40, true},     // new slave, master trimmed
		{1, 30, 30, 31, 0, false},   // up to date
		{1, 30, 30, 32, 32, true},   // one short of the master's start
		{5, 30, 20, 10, 0, false},   // truncation to 20 stays above its own first index
		{25, 30, 20, 10, 21, true},  // its retention removed the divergence point
		{25, 30, 20, 40, 40, true},  // and the master's is later still
		{1, 30, 20, 25, 25, true},   // truncated to 20, below the master's start
		{41, 40, 40, 41, 0, false},  // empty at the master's first index already
		{10, 12, 12, 1, 0, false},   // the master holds more than the slave: nothing to do
		{10, 12, 12, 13, 0, false},  // next index is the master's first
		{10, 12, 5, 13, 13, true},   // divergence below its own first, master starts later
		{10, 12, 8, 1, 9, true},     // divergence just below its own first index
		{10, 12, 9, 1, 0, false},    // truncation empties the log at its own first index
		{100, 99, 50, 80, 80, true}, // empty, but not known to share 51..99
	} {
		got, ok := rebaseTarget(c.first, c.last, c.p, c.masterFirst)
		if ok != c.rebase || got != c.want {
			t.Errorf("rebaseTarget(first %d, last %d, p %d, master first %d) = %d %v, want %d %v",
				c.first, c.last, c.p, c.masterFirst, got, ok, c.want, c.rebase)
		}
	}
}

// A master's retention keeps what a live slave has not fetched, in the in-sync set or not,
// and stops waiting for one that stopped fetching; that slave's fetch below the master's first
// index is refused, and the handshake tells it where the log starts.
func TestMasterRetentionKeepsWhatLiveSlavesLack(t *testing.T) {
	cfg := hourlyRetention(time.Minute)
	cfg.BrokerName, cfg.BrokerID, cfg.Addr = "g", 1, testMaster
	cfg.Controllers = []string{testCtl}
	h := startBroker(t, cfg, simdisk.New())
	h.controllerSays(1, testMaster, 1, "1", 2) // slave 2 outside the in-sync set
	slave := h.env.accept(h.b, "127.0.0.12:40000")
	cli := h.env.accept(h.b, "127.0.9.7:50000")
	for i := 1; i <= 5; i++ {
		h.mustSend(cli, "T", fmt.Sprintf("m%d", i))
	}
	fetch := func(from, synced int) *codec.Command {
		h.t.Helper()
		op := h.slaveFetch(slave, from, synced)
		h.env.advance(h.b, h.b.cfg.ReplicaFetchWait+time.Millisecond) // a parked fetch is answered
		return h.mustAnswer(slave, op)
	}
	// The slave fetched index 1 and no more, and keeps fetching for 5 minutes.
	for end := h.env.Now().Add(5 * time.Minute); h.env.Now().Before(end); {
		if r := fetch(2, 1); r.Code != codec.Success {
			t.Fatalf("fetch while live: %d %s", r.Code, r.Remark)
		}
		h.advanceSynced(5 * time.Second)
	}
	if first := h.b.store.CommitLog().FirstIndex(); first != 2 {
		t.Fatalf("master's first index %d while a live slave has synced only index 1: want 2", first)
	}
	// It stops fetching: nothing waits for it any more.
	h.advanceSynced(time.Minute)
	first := h.b.store.CommitLog().FirstIndex()
	if first != 6 {
		t.Fatalf("master's first index %d once the slave went away, want 6 (m1..m5 expired)", first)
	}
	if r := fetch(2, 1); r.Code != codec.SystemError {
		t.Fatalf("fetch below the master's first index answered %d %q", r.Code, r.Remark)
	}
	hs := h.request(slave, codec.ReqReplicaHandshake, map[string]string{"brokerId": "2", "masterEpoch": "1"}, nil)
	r := h.mustAnswer(slave, hs)
	var doc epochsBody
	if err := json.Unmarshal(r.Body, &doc); r.Code != codec.Success || err != nil || doc.FirstIndex != first ||
		fmt.Sprint(doc.QueueStarts) != "[{T 0 5}]" {
		t.Fatalf("handshake answer %d %s (%v), want first index %d and T/0 starting at 5", r.Code, r.Body, err, first)
	}
}
