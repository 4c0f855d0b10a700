package brokernode

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store"
)

const testSlave = "127.0.0.12:10911"

// groupPair is replicas 1 (at first the master) and 2 (at first a slave) of group g, each on
// its own test env, wired by relaying what either sends to the other's address and the answers
// back. The test plays the controller: the in-sync set is the master alone (it acknowledges on
// its own fsync; the slave replicates all the same), and it never answers alter requests.
type groupPair struct {
	t      *testing.T
	m, s   *brokerHarness // replicas 1 and 2, whatever their roles
	links  []*relay
	master int64
	epoch  int64
}

// relay carries the requests one harness sends to addr to the other, and the answers back.
type relay struct {
	from, to   *brokerHarness
	addr       string
	conns      map[node.ConnID]node.ConnID // from's conn -> to's side of it
	back       map[node.ConnID]node.ConnID
	fromN, toN int // frames of each relayed so far
}

// newGroupPair starts the pair with replica 1 master at epoch 1; tune, if set, adjusts both
// configurations.
func newGroupPair(t *testing.T, tune func(*Config)) *groupPair {
	t.Helper()
	mcfg := replicaConfig()
	mcfg.BrokerID, mcfg.Addr = 1, testMaster
	scfg := replicaConfig()
	scfg.Addr = testSlave
	if tune != nil {
		tune(&mcfg)
		tune(&scfg)
	}
	p := &groupPair{t: t, m: startBroker(t, mcfg, nil), s: startBroker(t, scfg, nil), master: 1, epoch: 1}
	p.links = []*relay{
		{from: p.s, to: p.m, addr: testMaster, conns: map[node.ConnID]node.ConnID{}, back: map[node.ConnID]node.ConnID{}},
		{from: p.m, to: p.s, addr: testSlave, conns: map[node.ConnID]node.ConnID{}, back: map[node.ConnID]node.ConnID{}},
	}
	p.controller()
	p.pump()
	if p.m.b.master() == nil || p.s.b.slave() == nil {
		t.Fatalf("roles %v and %v after the controller named 1 master", p.m.b.role, p.s.b.role)
	}
	return p
}

// controller answers both brokers' last heartbeats with the current view.
func (p *groupPair) controller() {
	addr := testMaster
	if p.master == 2 {
		addr = testSlave
	}
	set := strconv.FormatInt(p.master, 10)
	for _, h := range []*brokerHarness{p.m, p.s} {
		h.controllerSays(p.master, addr, p.epoch, set, p.epoch)
	}
}

// move relays what is new on r; it reports whether anything moved.
func (r *relay) move() bool {
	moved := false
	sent := r.from.env.Sent()
	for ; r.fromN < len(sent); r.fromN++ {
		f := sent[r.fromN]
		if f.Cmd.IsResponse() || f.Addr != r.addr || r.from.env.Closed(f.Conn) {
			continue
		}
		tc, ok := r.conns[f.Conn]
		if !ok {
			tc = r.to.env.accept(r.to.b, r.from.cfg.Addr[:strings.IndexByte(r.from.cfg.Addr, ':')]+":"+strconv.Itoa(40000+len(r.conns)))
			r.conns[f.Conn], r.back[tc] = tc, f.Conn
		}
		r.to.b.OnFrame(tc, f.Cmd)
		r.to.env.checkInvariants(r.to.b)
		moved = true
	}
	r.to.syncAll()
	tsent := r.to.env.Sent()
	for ; r.toN < len(tsent); r.toN++ {
		f := tsent[r.toN]
		fc, ok := r.back[f.Conn]
		if !ok || !f.Cmd.IsResponse() || r.from.env.Closed(fc) {
			continue
		}
		r.from.b.OnFrame(fc, f.Cmd)
		r.from.env.checkInvariants(r.from.b)
		moved = true
	}
	r.from.syncAll()
	return moved
}

// pump relays frames both ways until none moves, completing fsyncs on both.
func (p *groupPair) pump() {
	for range 100 {
		moved := false
		for _, r := range p.links {
			moved = r.move() || moved
		}
		if !moved {
			return
		}
	}
	p.t.Fatal("the pair keeps talking after 100 rounds")
}

// advance moves both clocks by d in group ticks, answering heartbeats and relaying.
func (p *groupPair) advance(d time.Duration) {
	for step := time.Duration(0); step < d; step += replicaTickInterval {
		p.m.env.advance(p.m.b, replicaTickInterval)
		p.s.env.advance(p.s.b, replicaTickInterval)
		p.controller()
		p.pump()
	}
}

func (h *brokerHarness) commitOffset(c node.ConnID, group, topic string, queue int, off int64) {
	h.t.Helper()
	op := h.request(c, codec.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": group, "topic": topic,
		"queueId": strconv.Itoa(queue), "commitOffset": strconv.FormatInt(off, 10)}, nil)
	if r := h.mustAnswer(c, op); r.Code != codec.Success {
		h.t.Fatalf("commit offset: %d %s", r.Code, r.Remark)
	}
}

func (h *brokerHarness) queryOffset(c node.ConnID, group, topic string, queue int) (int64, int16) {
	h.t.Helper()
	r := h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset, map[string]string{"consumerGroup": group,
		"topic": topic, "queueId": strconv.Itoa(queue)}, nil))
	off, _ := strconv.ParseInt(r.Ext("offset"), 10, 64)
	return off, r.Code
}

// savedOffset reads an offset from offsets.json on the broker's disk.
func savedOffset(t *testing.T, h *brokerHarness, group, topic string, queue int32) (int64, bool) {
	t.Helper()
	b, err := h.disk.ReadFile("offsets.json")
	if err != nil {
		return 0, false
	}
	var doc struct {
		Offsets []struct {
			Group, Topic string
			QueueID      int32 `json:"queueId"`
			Offset       int64
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("offsets.json: %v", err)
	}
	for _, e := range doc.Offsets {
		if e.Group == group && e.Topic == topic && e.QueueID == queue {
			return e.Offset, true
		}
	}
	return 0, false
}

// A slave copies its master's topics (created and deleted), consumer offsets and delay
// progress within a sync interval, durably; an offset beyond what it holds is clamped; after
// a failover the new master serves consumers the offsets it copied, and keeps them.
func TestSlaveCopiesMasterMetadata(t *testing.T) {
	p := newGroupPair(t, nil)
	cli := p.m.env.accept(p.m.b, "127.0.0.50:1")
	if r := p.m.createTopic(cli, map[string]string{"topic": "Meta", "readQueueNums": "8",
		"writeQueueNums": "8", "perm": "6"}); r.Code != codec.Success {
		t.Fatalf("create topic: %d %s", r.Code, r.Remark)
	}
	for i := range 3 {
		p.m.send(cli, "T", 0, "m"+strconv.Itoa(i), nil)
	}
	p.m.send(cli, "T", 2, "m3", nil)
	p.m.send(cli, "T", 1, "delayed", map[string]string{codec.PropDelay: "1"})
	p.pump()
	p.m.commitOffset(cli, "G", "T", 0, 2)
	p.m.commitOffset(cli, "G", "T", 2, 50) // beyond the queue: the master takes it, the slave clamps
	p.advance(p.s.b.cfg.MetaSyncInterval + time.Second)

	if tc, ok := p.s.b.store.Topic("Meta"); !ok || tc.ReadQueueNums != 8 || tc.Perm != 6 {
		t.Fatalf("slave's topic Meta %+v %v, want the master's 8 queues perm 6", tc, ok)
	}
	if off, ok := savedOffset(t, p.s, "G", "T", 0); !ok || off != 2 {
		t.Fatalf("slave's offsets.json has G/T/0 = %d %v, want 2", off, ok)
	}
	if off, ok := p.s.b.store.QueryOffset("G", "T", 2); !ok || off != 1 {
		t.Fatalf("slave's G/T/2 = %d %v, want the master's 50 clamped to the slave's queue end 1", off, ok)
	}
	mProg, mok := p.m.b.store.QueryOffset(delayProgressGroup, ScheduleTopic, 0)
	sProg, sok := savedOffset(t, p.s, delayProgressGroup, ScheduleTopic, 0)
	if !mok || mProg != 1 || !sok || sProg != mProg {
		t.Fatalf("delay progress of level 1: master %d %v, slave's offsets.json %d %v; want 1 on both", mProg, mok, sProg, sok)
	}
	if !strings.Contains(string(mustJSON(p.s.b.knownGroups())), `"G"`) {
		t.Fatalf("slave's known groups %v lack G", p.s.b.knownGroups())
	}

	// A deletion reaches the slave as a tombstone.
	del := p.m.request(cli, codec.ReqDeleteTopicInBroker, map[string]string{"topic": "Meta"}, nil)
	if r := p.m.mustAnswer(cli, del); r.Code != codec.Success {
		t.Fatalf("delete topic: %d %s", r.Code, r.Remark)
	}
	p.m.commitOffset(cli, "G", "T", 0, 3)
	p.advance(p.s.b.cfg.MetaSyncInterval + time.Second)
	if _, ok := p.s.b.store.Topic("Meta"); ok {
		t.Fatal("the slave kept topic Meta the master deleted")
	}
	if _, ok := p.s.b.store.DeletedTopics()["Meta"]; !ok {
		t.Fatalf("the slave has no tombstone of Meta: %v", p.s.b.store.DeletedTopics())
	}

	// Failover: the slave becomes master; consumers find the offsets it copied.
	p.master, p.epoch = 2, 2
	p.advance(time.Second)
	if role, _, writable := p.s.b.Role(); role != "master" || !writable {
		t.Fatalf("replica 2 is %s (writable %v) after the controller named it master", role, writable)
	}
	c2 := p.s.env.accept(p.s.b, "127.0.0.51:1")
	if off, code := p.s.queryOffset(c2, "G", "T", 0); code != codec.Success || off != 3 {
		t.Fatalf("new master answers G/T/0 = %d (code %d), want 3", off, code)
	}
	// The delayed message the old master delivered is not delivered again: the new master
	// resumed its level from the progress it copied.
	p.advance(2 * time.Second)
	if n := len(p.s.queueMessages("T", 1)); n != 1 {
		t.Fatalf("T/1 on the new master holds %d messages, want the delayed one once", n)
	}
	resp := p.s.mustAnswer(c2, p.s.pull(c2, "T", 0, 2))
	if resp.Code != codec.Success || len(decodeBody(t, resp.Body)) != 1 {
		t.Fatalf("new master's pull of T/0 from 2: %d %s", resp.Code, resp.Remark)
	}
	// The old master, a slave now, takes the new master's offsets; the new master keeps its own.
	p.s.commitOffset(c2, "G", "T", 0, 1) // a reset, say
	p.advance(p.s.b.cfg.MetaSyncInterval + time.Second)
	if off, _ := p.m.b.store.QueryOffset("G", "T", 0); off != 1 {
		t.Fatalf("old master's G/T/0 = %d after following the new master, want its 1", off)
	}
	if off, _ := p.s.b.store.QueryOffset("G", "T", 0); off != 1 {
		t.Fatalf("new master's G/T/0 = %d, want 1", off)
	}
}

// A slave asks with the master epoch it follows; a broker that is not the master at that epoch
// refuses, so a deposed master's metadata is never copied. Admins (no epoch) are served.
func TestMetadataServedOnlyByTheMasterAtTheEpoch(t *testing.T) {
	p := newGroupPair(t, nil)
	c := p.s.env.accept(p.s.b, "127.0.0.50:1")
	for _, code := range metaSyncCodes {
		if r := p.s.mustAnswer(c, p.s.request(c, code, map[string]string{"masterEpoch": "1"}, nil)); r.Code != codec.ServiceNotAvailable {
			t.Errorf("slave answered code %d with masterEpoch: %d %s", code, r.Code, r.Remark)
		}
		if r := p.s.mustAnswer(c, p.s.request(c, code, nil, nil)); r.Code != codec.Success {
			t.Errorf("slave answered an admin's code %d: %d %s", code, r.Code, r.Remark)
		}
		mc := p.m.env.accept(p.m.b, "127.0.0.51:1")
		if r := p.m.mustAnswer(mc, p.m.request(mc, code, map[string]string{"masterEpoch": "0"}, nil)); r.Code != codec.ServiceNotAvailable {
			t.Errorf("master answered code %d at a stale epoch: %d %s", code, r.Code, r.Remark)
		}
	}
}

// The bodies of GET_ALL_TOPIC_CONFIG, GET_ALL_CONSUMER_OFFSET and GET_ALL_DELAY_OFFSET have
// Java's shapes and decode back to what was served.
func TestMetadataBodies(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	c := h.env.accept(h.b, "127.0.0.50:1")
	h.send(c, "T", 0, "m", nil)
	h.syncAll()
	h.commitOffset(c, "G", "T", 0, 1)
	h.b.store.CommitOffset(delayProgressGroup, ScheduleTopic, 2, 7)

	topics := h.mustAnswer(c, h.request(c, codec.ReqGetAllTopicConfig, nil, nil))
	var raw map[string]map[string]any
	if err := json.Unmarshal(topics.Body, &raw); err != nil {
		t.Fatal(err)
	}
	tt, ok := raw["topicConfigTable"]["T"].(map[string]any)
	if !ok || tt["topicName"] != "T" || tt["readQueueNums"] != 4.0 || tt["topicFilterType"] != "SINGLE_TAG" || raw["dataVersion"]["counter"] != 1.0 {
		t.Fatalf("topic config body %s", topics.Body)
	}
	got, _, err := decodeAllTopics(topics.Body)
	if err != nil || len(got) != len(h.b.store.Topics()) {
		t.Fatalf("decoded %v %v, want %v", got, err, h.b.store.Topics())
	}
	again := h.mustAnswer(c, h.request(c, codec.ReqGetAllTopicConfig, nil, nil))
	if string(again.Body) != string(topics.Body) {
		t.Fatalf("the same topics served twice differ (dataVersion moved):\n%s\n%s", topics.Body, again.Body)
	}

	offs := h.mustAnswer(c, h.request(c, codec.ReqGetAllConsumerOffset, nil, nil))
	if string(offs.Body) != `{"offsetTable":{"T@G":{"0":1}}}` {
		t.Fatalf("consumer offsets body %s", offs.Body)
	}
	if o, err := decodeAllOffsets(offs.Body); err != nil || len(o) != 1 || o[0] != (store.Offset{Group: "G", Topic: "T", QueueID: 0, Offset: 1}) {
		t.Fatalf("decoded %v %v", o, err)
	}
	delay := h.mustAnswer(c, h.request(c, codec.ReqGetAllDelayOffset, nil, nil))
	if string(delay.Body) != `{"offsetTable":{"3":7}}` {
		t.Fatalf("delay offsets body %s", delay.Body)
	}
	if o, err := decodeDelayOffsets(delay.Body); err != nil || len(o) != 1 || o[0] != (store.Offset{Group: delayProgressGroup, Topic: ScheduleTopic, QueueID: 2, Offset: 7}) {
		t.Fatalf("decoded %v %v", o, err)
	}
}

// FuzzMetadataBodies feeds the decoders of the master's metadata answers arbitrary bodies:
// they never panic, and what they accept is what the store's sync then checks.
func FuzzMetadataBodies(f *testing.F) {
	f.Add([]byte(`{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4,"writeQueueNums":4,"perm":6}},"deletedTopics":[{"topic":"X","upToIndex":3}]}`))
	f.Add([]byte(`{"offsetTable":{"T@G":{"0":1,"1":5}}}`))
	f.Add([]byte(`{"offsetTable":{"1":7,"18":0}}`))
	f.Add([]byte(`{"subscriptionGroupTable":{"G":{"groupName":"G"}}}`))
	f.Add([]byte(`{"offsetTable":{"@":{"-1":-5}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := startBroker(t, testConfig(), nil)
		if topics, deleted, err := decodeAllTopics(body); err == nil {
			if _, err := h.b.store.SyncTopics(topics, deleted); err == nil {
				for _, tc := range h.b.store.Topics() {
					if !store.ValidTopicName(tc.Name) || tc.ReadQueueNums < 1 {
						t.Fatalf("synced an illegal topic %+v", tc)
					}
				}
			}
		}
		_, _, _ = decodeAllGroups(body)
		for _, dec := range []func([]byte) ([]store.Offset, error){decodeAllOffsets, decodeDelayOffsets} {
			offs, err := dec(body)
			if err != nil {
				continue
			}
			h.b.store.SyncOffsets(offs)
			for _, o := range h.b.store.Offsets() {
				if o.Offset < 0 || o.Offset > h.b.store.MaxOffset(o.Topic, o.QueueID) {
					t.Fatalf("synced offset %+v outside its queue", o)
				}
			}
		}
	})
}

// halfChecks lists the half queue offsets checked back on c (CHECK_TRANSACTION_STATE).
func halfChecks(h *brokerHarness, c node.ConnID) []string {
	var out []string
	for _, f := range h.checks(c) {
		out = append(out, f.Ext("tranStateTableOffset"))
	}
	return out
}

// Half messages and op marks live in the commit log: a new master rebuilds its transaction
// bookkeeping from the replicated op queue and checks back only the halves still open, and so
// does a broker that becomes master again after following another (what it remembered from its
// first mastership is stale by then).
func TestNewMasterResumesTransactionChecks(t *testing.T) {
	p := newGroupPair(t, func(c *Config) {
		c.TxnCheckInterval, c.TxnTimeout, c.TxnCheckMax = time.Second, 3*time.Second, 100
	})
	prod := p.m.producerConn("127.0.0.60:1", "P1", "pg")
	h0 := p.m.sendHalf(prod, "pg", "Orders", 0, "b0", "U0")
	h1 := p.m.sendHalf(prod, "pg", "Orders", 0, "b1", "U1")
	h2 := p.m.sendHalf(prod, "pg", "Orders", 0, "b2", "U2")
	if r := p.m.endTxnAnswer(prod, "pg", h0, 8, false); r.Code != codec.Success {
		t.Fatalf("commit U0: %d %s", r.Code, r.Remark)
	}
	p.pump()

	// Replica 2 becomes master; a producer reconnects to it.
	p.master, p.epoch = 2, 2
	p.advance(time.Second)
	prod2 := p.s.producerConn("127.0.0.60:2", "P1", "pg")
	p.advance(5 * time.Second)
	if got := halfChecks(p.s, prod2); len(got) == 0 || slices.Contains(got, "0") || !slices.Contains(got, "1") || !slices.Contains(got, "2") {
		t.Fatalf("new master checked back halves %v, want 1 and 2 (0 was committed on the old master)", got)
	}
	op := p.s.endTxn(prod2, "pg", h1, 12, true)
	p.pump()
	if r := p.s.mustAnswer(prod2, op); r.Code != codec.Success {
		t.Fatalf("roll back U1 on the new master: %d %s", r.Code, r.Remark)
	}

	// Back to replica 1, which follows replica 2 meanwhile: it checks only U2.
	p.master, p.epoch = 1, 3
	p.advance(time.Second)
	prod1 := p.m.producerConn("127.0.0.60:3", "P1", "pg")
	p.advance(5 * time.Second)
	if got := halfChecks(p.m, prod1); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != "2" }) {
		t.Fatalf("replica 1, master again, checked back halves %v, want only 2", got)
	}
	_ = h2
	// Committing U0 again on it delivers nothing more: its decision is known.
	if n := len(p.m.queueMessages("Orders", 0)); n != 1 {
		t.Fatalf("Orders/0 holds %d messages, want the one committed", n)
	}
}

// A topic deleted and created again on the master: the slave's queue of the old incarnation
// cannot take the new one's records (their queue offsets start again at 0) until it adopts the
// master's tombstone; it does so at once, and then holds what the master holds.
func TestSlaveFollowsATopicDeletedAndCreatedAgain(t *testing.T) {
	p := newGroupPair(t, nil)
	cli := p.m.env.accept(p.m.b, "127.0.0.50:1")
	p.m.send(cli, "T", 0, "old0", nil)
	p.m.send(cli, "T", 0, "old1", nil)
	p.advance(p.s.b.cfg.MetaSyncInterval + time.Second)
	if n := len(p.s.queueMessages("T", 0)); n != 2 {
		t.Fatalf("slave's T/0 holds %d messages, want 2", n)
	}
	if r := p.m.mustAnswer(cli, p.m.request(cli, codec.ReqDeleteTopicInBroker, map[string]string{"topic": "T"}, nil)); r.Code != codec.Success {
		t.Fatalf("delete topic: %d %s", r.Code, r.Remark)
	}
	p.m.send(cli, "T", 0, "new0", nil) // auto-created again
	p.pump()
	p.advance(time.Second) // well within a sync interval
	if _, ok := p.s.b.store.DeletedTopics()["T"]; !ok {
		t.Fatal("the slave has no tombstone of T")
	}
	if sl, ml := p.s.b.store.CommitLog().LastIndex(), p.m.b.store.CommitLog().LastIndex(); sl != ml {
		t.Fatalf("slave's log ends at %d, the master's at %d", sl, ml)
	}
	p.advance(p.s.b.cfg.ReplicaFetchWait) // the slave learns that the master confirmed new0
	got := p.s.queueMessages("T", 0)
	if len(got) != 1 || string(got[0].Body) != "new0" || got[0].QueueOffset != 0 {
		t.Fatalf("slave's T/0 holds %d messages (want new0 at offset 0)", len(got))
	}
}

// A new master answers offset queries only once it has confirmed the log it took over and
// raised the offsets it copied clamped: before, it would answer below what it copied (a
// consumer resuming from there consumes again what the old master's consumers had passed).
func TestNewMasterAnswersOffsetsOnceItConfirmedTheLog(t *testing.T) {
	p := newGroupPair(t, func(c *Config) { c.ReplicaFetchWait = time.Minute })
	cli := p.m.env.accept(p.m.b, "127.0.0.50:1")
	p.m.send(cli, "T", 0, "m0", nil)
	p.pump()
	p.m.commitOffset(cli, "G", "T", 0, 5) // beyond the queue: the slave clamps it
	p.advance(p.s.b.cfg.MetaSyncInterval + time.Second)
	if off, _ := p.s.b.store.QueryOffset("G", "T", 0); off >= 5 {
		t.Fatalf("slave's G/T/0 = %d, want the master's 5 clamped to its queue end", off)
	}
	// The master takes the slave into its in-sync set; m1 is acknowledged once the slave
	// reports it synced, but the slave hears of that only with the master's next answer,
	// which waits for something new to send.
	p.m.env.advance(p.m.b, time.Second)
	p.m.controllerSays(1, testMaster, 1, "1,2", 2)
	p.m.send(cli, "T", 0, "m1", nil)
	p.pump()
	if c := p.s.b.store.Confirmed(); c >= 2 || p.s.b.acks.durable != 2 {
		t.Fatalf("slave confirmed %d and synced %d, want m1 synced but not known confirmed", c, p.s.b.acks.durable)
	}

	// The controller names replica 2 master, replica 1 in its in-sync set; replica 1 has not
	// followed it yet, so the new master cannot confirm m1.
	p.s.env.advance(p.s.b, time.Second)
	p.s.controllerSays(2, testSlave, 2, "1,2", 3)
	if role, epoch, _ := p.s.b.Role(); role != "master" || epoch != 2 {
		t.Fatalf("replica 2 is %s at epoch %d, want master at 2", role, epoch)
	}
	c2 := p.s.env.accept(p.s.b, "127.0.0.51:1")
	if off, code := p.s.queryOffset(c2, "G", "T", 0); code != codec.ServiceNotAvailable {
		t.Fatalf("new master still confirming answered G/T/0 = %d (code %d), want SERVICE_NOT_AVAILABLE", off, code)
	}
	// Replica 1 follows it and confirms m1: the new master raises the offset and answers.
	p.master, p.epoch = 2, 2
	p.advance(2 * time.Second)
	if off, code := p.s.queryOffset(c2, "G", "T", 0); code != codec.Success || off != 2 {
		t.Fatalf("new master answers G/T/0 = %d (code %d), want 2 (the master's 5 raised as far as the queue goes)", off, code)
	}
}
