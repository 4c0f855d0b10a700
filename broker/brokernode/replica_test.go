package brokernode

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
	"github.com/sluicemq/sluice/sim/simdisk"
)

const (
	testCtl    = "127.0.0.40:9878"
	testMaster = "127.0.0.11:10911"
)

// replicaConfig is replica 2 of group g with one controller.
func replicaConfig() Config {
	cfg := testConfig()
	cfg.BrokerName = "g"
	cfg.BrokerID = 2
	cfg.Addr = "127.0.0.12:10911"
	cfg.Controllers = []string{testCtl}
	return cfg
}

// lastRequest is the last request with code the broker sent to addr, with its connection; it
// fails the test if there is none.
func (h *brokerHarness) lastRequest(addr string, code int16) (node.ConnID, *codec.Command) {
	h.t.Helper()
	dials := h.env.Dials()
	sent := h.env.Sent()
	for i := len(sent) - 1; i >= 0; i-- {
		if f := sent[i]; !f.Cmd.IsResponse() && dials[f.Conn] == addr && f.Cmd.Code == code {
			return f.Conn, f.Cmd
		}
	}
	h.t.Fatalf("no request of code %d to %s", code, addr)
	return 0, nil
}

// reply delivers the answer to req on c.
func (h *brokerHarness) reply(c node.ConnID, req *codec.Command, code int16, ext map[string]string, body []byte) {
	resp := codec.NewResponse(req, code, "")
	resp.ExtFields = ext
	resp.Body = body
	h.b.OnFrame(c, resp)
	h.env.checkInvariants(h.b)
}

// controllerSays answers the broker's pending heartbeat with the group view.
func (h *brokerHarness) controllerSays(master int64, masterAddr string, epoch int64, set string, setEpoch int64) {
	h.t.Helper()
	c, hb := h.lastRequest(testCtl, codec.ReqControllerBrokerHeartbeat)
	h.reply(c, hb, codec.Success, map[string]string{
		"masterBrokerId": strconv.FormatInt(master, 10), "masterAddress": masterAddr,
		"masterEpoch": strconv.FormatInt(epoch, 10), "syncStateSet": set,
		"syncStateSetEpoch": strconv.FormatInt(setEpoch, 10),
	}, nil)
}

// record is the stored record of a message on T/0 at index with queue offset off.
func record(_ *testing.T, body string, index uint64, off int64) []byte {
	host := netip.MustParseAddrPort(testMaster)
	rec, err := codec.AppendRecord(nil, &codec.Message{Topic: "T", QueueID: 0, Body: []byte(body),
		BornHost: host, StoreHost: host, PhysicalOffset: int64(index), QueueOffset: off})
	if err != nil {
		panic(err)
	}
	return rec
}

func epochsJSON(t *testing.T, pairs ...int64) []byte {
	t.Helper()
	var doc epochsBody
	for i := 0; i < len(pairs); i += 2 {
		doc.Epochs = append(doc.Epochs, replication.Epoch{Epoch: pairs[i], Start: uint64(pairs[i+1])})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fetchAnswer answers the broker's pending fetch with records of epoch (starting at start)
// and the master's confirmed index.
func (h *brokerHarness) fetchAnswer(epoch, start, confirmed int64, recs ...[]byte) {
	h.t.Helper()
	c, f := h.lastRequest(testMaster, codec.ReqReplicaFetch)
	var body []byte
	for _, r := range recs {
		body = append(body, r...)
	}
	h.reply(c, f, codec.Success, map[string]string{"epoch": strconv.FormatInt(epoch, 10),
		"epochStart": strconv.FormatInt(start, 10), "confirmed": strconv.FormatInt(confirmed, 10)}, body)
}

func wantFetch(t *testing.T, h *brokerHarness, from, synced string) {
	t.Helper()
	_, f := h.lastRequest(testMaster, codec.ReqReplicaFetch)
	if f.Ext("from") != from || f.Ext("synced") != synced || f.Ext("masterEpoch") != "1" {
		t.Fatalf("fetch %v, want from %s synced %s at epoch 1", f.ExtFields, from, synced)
	}
}

// A slave handshakes with the master the controller names, fetches, appends, fsyncs and only
// then reports what it synced in its next fetch; it shows consumers what the master confirmed
// and it synced, and refuses sends.
func TestSlaveReportsOnlyWhatItSynced(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("SlaveAckBeforeFsync=%v", unsafe), func(t *testing.T) {
			cfg := replicaConfig()
			if unsafe {
				cfg.Bugs = bugs.Of(bugs.SlaveAckBeforeFsync)
			}
			h := startBroker(t, cfg, nil)
			_, hb := h.lastRequest(testCtl, codec.ReqControllerBrokerHeartbeat)
			if hb.Ext("brokerId") != "2" || hb.Ext("brokerName") != "g" || hb.Ext("masterEpoch") != "0" {
				t.Fatalf("heartbeat %v", hb.ExtFields)
			}
			h.controllerSays(1, testMaster, 1, "1,2", 2)
			c, hs := h.lastRequest(testMaster, codec.ReqReplicaHandshake)
			h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "3", "epoch": "1"}, epochsJSON(t, 1, 1))
			wantFetch(t, h, "1", "0")
			h.fetchAnswer(1, 1, 2, record(t, "m1", 1, 0), record(t, "m2", 2, 1), record(t, "m3", 3, 2))
			if got := h.b.store.CommitLog().LastIndex(); got != 3 {
				t.Fatalf("slave holds %d entries", got)
			}
			if unsafe {
				wantFetch(t, h, "4", "3") // the planted bug: reported before the fsync
				return
			}
			wantFetch(t, h, "1", "0") // no new fetch before the fsync
			h.syncAll()
			wantFetch(t, h, "4", "3")
			if tb := h.b.repl.table.Entries(); len(tb) != 1 || tb[0] != (replication.Epoch{Epoch: 1, Start: 1}) {
				t.Fatalf("epoch table %v", tb)
			}
			cli := h.env.accept(h.b, "127.0.0.50:1")
			pull := h.pull(cli, "T", 0, 0)
			if msgs := decodeBody(t, h.mustAnswer(cli, pull).Body); len(msgs) != 2 {
				t.Fatalf("the slave serves %d messages, want the 2 the master confirmed", len(msgs))
			}
			send := h.send(cli, "T", 0, "x", nil)
			if r := h.mustAnswer(cli, send); r.Code != codec.ServiceNotAvailable {
				t.Fatalf("send to a slave answered %d %s", r.Code, r.Remark)
			}
			// The master confirms the third: visible after the next answer.
			h.fetchAnswer(1, 1, 3)
			pull = h.pull(cli, "T", 0, 2)
			if msgs := decodeBody(t, h.mustAnswer(cli, pull).Body); len(msgs) != 1 || string(msgs[0].Body) != "m3" {
				t.Fatalf("after the master confirmed 3: %v", msgs)
			}
		})
	}
}

// A returning replica whose log goes past what it shares with the new master truncates it at
// the handshake, adopts the master's new epoch at its start, and refuses records that do not
// fit its epoch table.
func TestSlaveTruncatesAtHandshake(t *testing.T) {
	disk := simdisk.New()
	cfg := replicaConfig()
	h := startBroker(t, cfg, disk)
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	c, hs := h.lastRequest(testMaster, codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "0", "epoch": "1"}, epochsJSON(t, 1, 1))
	var recs [][]byte
	for i := 1; i <= 5; i++ {
		recs = append(recs, record(t, "old"+strconv.Itoa(i), uint64(i), int64(i-1)))
	}
	h.fetchAnswer(1, 1, 5, recs...)
	h.syncAll()

	// The controller moves on: broker 3 is master at epoch 3, whose epoch 1 ended at 3.
	h.env.advance(h.b, h.b.cfg.ControllerHeartbeatInterval+replicaTickInterval)
	h.controllerSays(3, "127.0.0.13:10911", 3, "3", 5)
	c, hs = h.lastRequest("127.0.0.13:10911", codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "6", "epoch": "3"}, epochsJSON(t, 1, 1, 3, 4))
	if got := h.b.store.CommitLog().LastIndex(); got != 3 {
		t.Fatalf("after the handshake the log ends at %d, want 3", got)
	}
	_, f := h.lastRequest("127.0.0.13:10911", codec.ReqReplicaFetch)
	if f.Ext("from") != "4" || f.Ext("masterEpoch") != "3" {
		t.Fatalf("fetch %v", f.ExtFields)
	}
	// An answer of epoch 3 that claims to start elsewhere does not fit.
	h.reply(c, f, codec.Success, map[string]string{"epoch": "3", "epochStart": "2", "confirmed": "3"}, record(t, "new4", 4, 3))
	if got := h.b.store.CommitLog().LastIndex(); got != 3 {
		t.Fatalf("a record that does not fit the epoch table was appended (log ends at %d)", got)
	}
	h.env.advance(h.b, time.Second) // reconnect and handshake again
	c, hs = h.lastRequest("127.0.0.13:10911", codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "6", "epoch": "3"}, epochsJSON(t, 1, 1, 3, 4))
	c, f = h.lastRequest("127.0.0.13:10911", codec.ReqReplicaFetch)
	h.reply(c, f, codec.Success, map[string]string{"epoch": "3", "epochStart": "4", "confirmed": "5"},
		append(record(t, "new4", 4, 3), record(t, "new5", 5, 4)...))
	want := []replication.Epoch{{Epoch: 1, Start: 1}, {Epoch: 3, Start: 4}}
	if got := h.b.repl.table.Entries(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("epoch table %v, want %v", got, want)
	}
	saved, err := replication.Load(disk, 5)
	if err != nil || fmt.Sprint(saved.Entries()) != fmt.Sprint(want) {
		t.Fatalf("saved epoch table %v %v", saved.Entries(), err)
	}
	h.syncAll()
	cli := h.env.accept(h.b, "127.0.0.50:1")
	pull := h.pull(cli, "T", 0, 0)
	var bodies []string
	for _, m := range decodeBody(t, h.mustAnswer(cli, pull).Body) {
		bodies = append(bodies, string(m.Body))
	}
	if fmt.Sprint(bodies) != "[old1 old2 old3 new4 new5]" {
		t.Fatalf("slave serves %v", bodies)
	}
}

// masterHarness is replica 1 made master at epoch 1 with in-sync set {1, 2}, and a slave
// connection for replica 2.
func masterHarness(t *testing.T, minInSync int) (*brokerHarness, node.ConnID) {
	t.Helper()
	cfg := replicaConfig()
	cfg.BrokerID = 1
	cfg.Addr = testMaster
	cfg.MinInSync = minInSync
	h := startBroker(t, cfg, nil)
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	if h.b.master() == nil || !h.b.role.writable(h.b) {
		t.Fatalf("role %v after the controller named it master", h.b.role)
	}
	slave := h.env.accept(h.b, "127.0.0.12:40000")
	return h, slave
}

func (h *brokerHarness) slaveFetch(c node.ConnID, from, synced int) int32 {
	return h.request(c, codec.ReqReplicaFetch, map[string]string{"brokerId": "2", "masterEpoch": "1",
		"from": strconv.Itoa(from), "synced": strconv.Itoa(synced)}, nil)
}

// A master in sync replication acknowledges a send only once every member of its in-sync set
// synced it (the slave's report comes in its next fetch); it serves slaves only what it made
// durable itself, parking a fetch until there is some; its epoch-table entry is on disk before
// its first write.
func TestMasterAcksWhatTheInSyncSetHolds(t *testing.T) {
	h, slave := masterHarness(t, 2)
	if saved, err := h.disk.ReadFile(replication.EpochsFile); err != nil || string(saved) != `{"epochs":[{"epoch":1,"startIndex":1}]}`+"\n" {
		t.Fatalf("epoch table on disk when the master role was taken: %s %v", saved, err)
	}
	hs := h.request(slave, codec.ReqReplicaHandshake, map[string]string{"brokerId": "2", "masterEpoch": "1"}, nil)
	if r := h.mustAnswer(slave, hs); r.Code != codec.Success || r.Ext("lastIndex") != "0" {
		t.Fatalf("handshake answer %d %v", r.Code, r.ExtFields)
	}
	cli := h.env.accept(h.b, "127.0.0.50:1")
	send := h.send(cli, "T", 0, "m1", nil)
	f1 := h.slaveFetch(slave, 1, 0)
	if h.answer(slave, f1) != nil {
		t.Fatal("a fetch was answered with an entry the master has not synced")
	}
	h.syncAll()
	if h.answer(cli, send) != nil {
		t.Fatal("acknowledged before the slave synced it")
	}
	r := h.mustAnswer(slave, f1)
	if r.Code != codec.Success || r.Ext("epoch") != "1" || r.Ext("epochStart") != "1" || len(decodeBody(t, r.Body)) != 1 {
		t.Fatalf("fetch answer %d %v", r.Code, r.ExtFields)
	}
	f2 := h.slaveFetch(slave, 2, 1)
	if a := h.answer(cli, send); a == nil || a.Code != codec.Success {
		t.Fatalf("send not acknowledged once the slave reported it synced: %+v", a)
	}
	if h.answer(slave, f2) != nil {
		t.Fatal("a fetch with nothing new was answered at once instead of parked")
	}
	h.env.advance(h.b, h.b.cfg.ReplicaFetchWait+time.Millisecond)
	if r := h.mustAnswer(slave, f2); r.Code != codec.Success || len(r.Body) != 0 {
		t.Fatalf("parked fetch expired with %d %d bytes", r.Code, len(r.Body))
	}

	for _, c := range []struct {
		ext  map[string]string
		code int16
	}{
		{map[string]string{"brokerId": "2", "masterEpoch": "2", "from": "2", "synced": "1"}, codec.ServiceNotAvailable},
		{map[string]string{"brokerId": "2", "masterEpoch": "1", "from": "9", "synced": "1"}, codec.SystemError},
		{map[string]string{"brokerId": "2", "masterEpoch": "1", "from": "2", "synced": "2"}, codec.SystemError},
		{map[string]string{"brokerId": "1", "masterEpoch": "1", "from": "2", "synced": "1"}, codec.SystemError},
		{map[string]string{"brokerId": "2", "masterEpoch": "1"}, codec.SystemError},
	} {
		op := h.request(slave, codec.ReqReplicaFetch, c.ext, nil)
		if r := h.mustAnswer(slave, op); r.Code != c.code {
			t.Errorf("fetch %v answered %d %s, want %d", c.ext, r.Code, r.Remark, c.code)
		}
	}
}

// A master that hears nothing from the controller for MasterLease stops taking writes and
// acknowledges nothing, though its slave reports the entries synced.
func TestMasterLeaseLapses(t *testing.T) {
	h, slave := masterHarness(t, 2)
	h.request(slave, codec.ReqReplicaHandshake, map[string]string{"brokerId": "2", "masterEpoch": "1"}, nil)
	cli := h.env.accept(h.b, "127.0.0.50:1")
	send := h.send(cli, "T", 0, "m1", nil)
	h.syncAll()
	h.env.advance(h.b, h.b.cfg.MasterLease) // heartbeats go unanswered
	if h.b.role.writable(h.b) {
		t.Fatal("still writable after the lease")
	}
	h.slaveFetch(slave, 2, 1)
	if h.answer(cli, send) != nil {
		t.Fatal("a lapsed master acknowledged a send")
	}
	refused := h.send(cli, "T", 0, "m2", nil)
	if r := h.mustAnswer(cli, refused); r.Code != codec.ServiceNotAvailable {
		t.Fatalf("send to a lapsed master: %d %s", r.Code, r.Remark)
	}
	h.controllerSays(1, testMaster, 1, "1,2", 2) // renewed
	if a := h.answer(cli, send); a == nil || a.Code != codec.Success {
		t.Fatalf("after renewal the synced send is acknowledged: %+v", a)
	}
}

// A master's lease is measured in elapsed time, not in readings of its clock: a master whose
// clock is stepped back a minute (as seeds 135, 161, 249, 320, 329, 386 and 420 of the groups
// simulator did, while the controller replaced it) still loses its lease MasterLease after its
// last confirmed heartbeat was sent, refuses writes and pulls (a new master may be
// acknowledging messages it lacks), and takes them again once the controller renews it.
func TestMasterLeaseIgnoresClockStepBack(t *testing.T) {
	h, _ := masterHarness(t, 1)
	cli := h.env.accept(h.b, "127.0.0.50:1")
	h.env.StepClock(-time.Minute)
	h.env.advance(h.b, h.b.cfg.MasterLease) // heartbeats go unanswered
	if h.b.role.writable(h.b) {
		t.Fatal("still writable MasterLease after the last confirmed heartbeat, its clock stepped back")
	}
	if r := h.mustAnswer(cli, h.send(cli, "T", 0, "m1", nil)); r.Code != codec.ServiceNotAvailable {
		t.Fatalf("send to a lapsed master: %d %s", r.Code, r.Remark)
	}
	if r := h.mustAnswer(cli, h.pull(cli, "T", 0, 0)); r.Code != codec.ServiceNotAvailable {
		t.Fatalf("pull from a lapsed master: %d %s", r.Code, r.Remark)
	}
	// Its heartbeats went on through the step; the next answer renews the lease.
	h.controllerSays(1, testMaster, 1, "1", 3)
	if !h.b.role.writable(h.b) {
		t.Fatal("not writable after the controller renewed the lease")
	}
	h.env.advance(h.b, h.b.cfg.MasterLease)
	if h.b.role.writable(h.b) {
		t.Fatal("still writable MasterLease after the renewal")
	}
}

// A slave that stops fetching is dropped from the in-sync set after MaxReplicaLag; until the
// controller has agreed, acknowledgements still wait for it.
func TestMasterDropsLaggingSlave(t *testing.T) {
	h, slave := masterHarness(t, 1)
	h.request(slave, codec.ReqReplicaHandshake, map[string]string{"brokerId": "2", "masterEpoch": "1"}, nil)
	h.slaveFetch(slave, 1, 0)
	cli := h.env.accept(h.b, "127.0.0.50:1")
	send := h.send(cli, "T", 0, "m1", nil)
	h.syncAll()
	step := h.b.cfg.ControllerHeartbeatInterval
	for waited := time.Duration(0); waited <= h.b.cfg.MaxReplicaLag; waited += step {
		h.env.advance(h.b, step)
		h.controllerSays(1, testMaster, 1, "1,2", 2)
	}
	c, alter := h.lastRequest(testCtl, codec.ReqControllerAlterInSyncSet)
	var body struct {
		Set   []int64 `json:"syncStateSet"`
		Epoch int64   `json:"syncStateSetEpoch"`
	}
	if err := json.Unmarshal(alter.Body, &body); err != nil || fmt.Sprint(body.Set) != "[1]" || body.Epoch != 2 ||
		alter.Ext("masterEpoch") != "1" || alter.Ext("masterBrokerId") != "1" {
		t.Fatalf("alter request %v %s (%v)", alter.ExtFields, alter.Body, err)
	}
	if h.answer(cli, send) != nil {
		t.Fatal("acknowledged without the slave before the controller agreed")
	}
	h.reply(c, alter, codec.Success, map[string]string{"masterBrokerId": "1", "masterAddress": testMaster,
		"masterEpoch": "1", "syncStateSet": "1", "syncStateSetEpoch": "3"}, nil)
	if a := h.answer(cli, send); a == nil || a.Code != codec.Success {
		t.Fatalf("not acknowledged once the lagging slave left the set: %+v", a)
	}
}

// Every pull answer suggests the master (suggestWhichBrokerId 0), except a replica's while the
// controller names no master for its group: then it suggests its own id.
func TestPullSuggestsTheMasterWhenThereIsOne(t *testing.T) {
	suggestion := func(h *brokerHarness) string {
		h.t.Helper()
		cli := h.env.accept(h.b, "127.0.0.50:1")
		return h.mustAnswer(cli, h.pull(cli, "T", 0, 0)).Ext("suggestWhichBrokerId")
	}
	if got := suggestion(startBroker(t, testConfig(), nil)); got != "0" {
		t.Errorf("a broker without a group suggests %q, want 0", got)
	}
	h := startBroker(t, replicaConfig(), nil)
	if got := suggestion(h); got != "2" {
		t.Errorf("a replica the controller has not told of a master suggests %q, want its own id 2", got)
	}
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	if got := suggestion(h); got != "0" {
		t.Errorf("a slave of a live master suggests %q, want 0", got)
	}
	h.wait(h.b.cfg.ControllerHeartbeatInterval)
	h.controllerSays(0, "", 2, "2", 3)
	if got := suggestion(h); got != "2" {
		t.Errorf("a replica of a group without a master suggests %q, want its own id 2", got)
	}
}

// assertConfirmed reads a record's commit-log index where the stored layout keeps it, and
// panics on a record past the confirmed log.
func TestAssertConfirmed(t *testing.T) {
	h := startBroker(t, replicaConfig(), nil)
	rec := record(t, "m", h.b.store.Confirmed()+1, 0)
	defer func() {
		if recover() == nil {
			t.Fatal("a record past the confirmed index was not caught")
		}
	}()
	h.b.assertConfirmed(record(t, "m", h.b.store.Confirmed(), 0))
	h.b.assertConfirmed(rec)
}

// A slave registers a topic it first sees in replicated records at once, not at its next
// periodic registration: while the master is gone, routes to the group's queues come only from
// its slaves' registrations.
func TestSlaveRegistersATopicItGotByReplication(t *testing.T) {
	h := startBroker(t, replicaConfig(), nil)
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	c, hs := h.lastRequest(testMaster, codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "0", "epoch": "1"}, epochsJSON(t, 1, 1))
	if _, ok := h.b.store.Topic("T"); ok {
		t.Fatal("the slave has topic T before any record of it")
	}
	h.fetchAnswer(1, 1, 0, record(t, "m1", 1, 0))
	if _, ok := h.lastRegistration()["T"]; !ok {
		t.Fatalf("the slave's last registration lacks T: %v", h.lastRegistration())
	}
}

// A new master whose own confirmed index is behind the log it took over (a replica confirms
// only what its master confirmed to it) lets a slave into the in-sync set only once the slave
// holds that whole log: an earlier master may have acknowledged any of it, and a slave in the
// set is electable (elected, it would truncate the rest away on the others).
func TestInSyncSetNeedsTheInheritedLog(t *testing.T) {
	cfg := replicaConfig()
	cfg.MinInSync = 2
	h := startBroker(t, cfg, nil)
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	c, hs := h.lastRequest(testMaster, codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "3", "epoch": "1"}, epochsJSON(t, 1, 1))
	h.fetchAnswer(1, 1, 0, record(t, "m1", 1, 0), record(t, "m2", 2, 1), record(t, "m3", 3, 2))
	h.syncAll()
	// The master is gone; this replica is elected with the set {2}, and replica 3, which holds
	// only index 1, fetches from it.
	h.env.advance(h.b, h.b.cfg.ControllerHeartbeatInterval)
	h.controllerSays(2, cfg.Addr, 2, "2", 3)
	if h.b.master() == nil || h.b.store.CommitLog().LastIndex() != 3 || h.b.store.Confirmed() >= 3 {
		t.Fatalf("role %v, last %d, confirmed %d: the test needs a master that has not confirmed what it inherited",
			h.b.role, h.b.store.CommitLog().LastIndex(), h.b.store.Confirmed())
	}
	slave := h.env.accept(h.b, "127.0.0.13:40000")
	fetch := func(from, synced int) {
		h.request(slave, codec.ReqReplicaFetch, map[string]string{"brokerId": "3", "masterEpoch": "2",
			"from": strconv.Itoa(from), "synced": strconv.Itoa(synced)}, nil)
	}
	alters := func() (n int, last string) {
		for _, f := range h.env.Sent() {
			if f.Cmd.Code == codec.ReqControllerAlterInSyncSet && !f.Cmd.IsResponse() {
				n, last = n+1, string(f.Cmd.Body)
			}
		}
		return n, last
	}
	step := h.b.cfg.ControllerHeartbeatInterval
	for i := 0; i < 5; i++ {
		fetch(2, 1)
		h.env.advance(h.b, step)
		h.controllerSays(2, cfg.Addr, 2, "2", 3)
		if n, body := alters(); n > 0 {
			t.Fatalf("asked for in-sync set %s with a slave that holds 1 of the 3 inherited entries", body)
		}
	}
	fetch(4, 3)
	h.env.advance(h.b, step)
	h.controllerSays(2, cfg.Addr, 2, "2", 3)
	h.env.advance(h.b, step)
	if n, body := alters(); n == 0 || !strings.Contains(body, "[2,3]") {
		t.Fatalf("the caught-up slave was not proposed (%d requests, last %s)", n, body)
	}
}
