package brokernode

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

// The statistics follow what happens: topic stats show each queue's offsets and its last
// message's store time; consume stats show a group's committed offset against the queue's max
// and the store time of the last message it consumed; runtime info counts what was stored and
// served.
func TestStatsFollowSendsPullsAndCommits(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	producer := h.env.accept(h.b, "127.0.9.7:50000")
	consumer := h.env.accept(h.b, "127.0.9.8:50001")
	admin := h.env.accept(h.b, "127.0.9.9:50002")
	for i := range 3 {
		h.send(producer, "Orders", 1, "order-"+strconv.Itoa(i), nil)
		h.syncAll()
	}
	if resp := h.mustAnswer(consumer, h.pull(consumer, "Orders", 1, 0, "maxMsgNums", "2")); resp.Code != codec.Success {
		t.Fatalf("pull: %d %s", resp.Code, resp.Remark)
	}
	h.commitOffset(consumer, "cg", "Orders", 1, 2)
	msgs := h.queueMessages("Orders", 1) // a pull of all three: 5 served in all
	second, third := msgs[1], msgs[2]

	resp := h.mustAnswer(admin, h.request(admin, codec.ReqGetTopicStatsInfo, map[string]string{"topic": "Orders"}, nil))
	if resp.Code != codec.Success {
		t.Fatalf("topic stats: %d %s", resp.Code, resp.Remark)
	}
	tab, err := codec.DecodeTopicStatsTable(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Offsets) != int(h.cfg.DefaultQueueNums) {
		t.Fatalf("%d queues in the topic stats, want %d", len(tab.Offsets), h.cfg.DefaultQueueNums)
	}
	q1 := tab.Offsets[1]
	if q1.Queue != (codec.MessageQueue{BrokerName: "broker-a", QueueID: 1, Topic: "Orders"}) || q1.MinOffset != 0 || q1.MaxOffset != 3 ||
		q1.LastUpdateTimestamp != third.StoreTimestamp {
		t.Errorf("queue 1: %+v, want max 3 and last update %d", q1, third.StoreTimestamp)
	}
	if q0 := tab.Offsets[0]; q0.MaxOffset != 0 || q0.LastUpdateTimestamp != 0 {
		t.Errorf("empty queue 0: %+v", q0)
	}

	resp = h.mustAnswer(admin, h.request(admin, codec.ReqGetConsumeStats, map[string]string{"consumerGroup": "cg"}, nil))
	stats, err := codec.DecodeConsumeStats(resp.Body)
	if err != nil || resp.Code != codec.Success {
		t.Fatalf("consume stats: %d %s %v", resp.Code, resp.Remark, err)
	}
	if len(stats.Offsets) != int(h.cfg.DefaultQueueNums) {
		t.Fatalf("consume stats of %d queues: %+v", len(stats.Offsets), stats)
	}
	if w := stats.Offsets[1].OffsetWrapper; w != (codec.OffsetWrapper{BrokerOffset: 3, ConsumerOffset: 2, LastTimestamp: second.StoreTimestamp}) {
		t.Errorf("queue 1 of cg: %+v", w)
	}
	resp = h.mustAnswer(admin, h.request(admin, codec.ReqGetConsumeStats, map[string]string{"consumerGroup": "cg", "topic": "Nope"}, nil))
	if stats, _ := codec.DecodeConsumeStats(resp.Body); resp.Code != codec.Success || len(stats.Offsets) != 0 {
		t.Errorf("consume stats of a topic the broker lacks: %d %+v", resp.Code, stats)
	}
	if resp := h.mustAnswer(admin, h.request(admin, codec.ReqGetTopicStatsInfo, map[string]string{"topic": "Nope"}, nil)); resp.Code != codec.TopicNotExist {
		t.Errorf("topic stats of an unknown topic: code %d", resp.Code)
	}

	resp = h.mustAnswer(admin, h.request(admin, codec.ReqGetBrokerRuntimeInfo, nil, nil))
	kv, err := codec.DecodeKVTable(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"msgPutTotalTodayNow": "3", "msgGetTotalTodayNow": "5", "msgPutTotalTodayMorning": "0",
		"replicaRole": "single", "brokerRole": "ASYNC_MASTER", "writable": "true", "dispatchBehindBytes": "0",
		"earliestMessageTimeStamp": strconv.FormatInt(msgs[0].StoreTimestamp, 10)} {
		if got := kv.Table[k]; got != want {
			t.Errorf("runtime info %s = %q, want %q", k, got, want)
		}
	}
	if max, _ := strconv.ParseUint(kv.Table["commitLogMaxOffset"], 10, 64); max != h.b.Store().CommitLog().LastIndex()+1 {
		t.Errorf("commitLogMaxOffset %s, last index %d", kv.Table["commitLogMaxOffset"], h.b.Store().CommitLog().LastIndex())
	}
	// A day later the morning totals move on.
	h.env.advance(h.b, 24*time.Hour)
	kv.Table = h.b.RuntimeInfo()
	if kv.Table["msgPutTotalTodayMorning"] != "3" || kv.Table["msgPutTotalYesterdayMorning"] != "0" {
		t.Errorf("a day later: today morning %s, yesterday morning %s", kv.Table["msgPutTotalTodayMorning"], kv.Table["msgPutTotalYesterdayMorning"])
	}
}

func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(1000, 0)
	for s := range 20 {
		m.add(t0.Add(time.Duration(s)*time.Second), 5)
	}
	now := t0.Add(20 * time.Second)
	if r := m.rate(now, 10); r != 5 {
		t.Errorf("10 s rate %v, want 5", r)
	}
	if r := m.rate(now, 60); r != 100.0/60 {
		t.Errorf("1 min rate %v, want %v", r, 100.0/60)
	}
	// Buckets reused after rateBuckets seconds count afresh.
	later := now.Add(rateBuckets * time.Second)
	m.add(later, 1)
	if r := m.rate(later.Add(time.Second), 10); r != 0.1 {
		t.Errorf("after a gap: %v, want 0.1", r)
	}
	if got := m.tps(later.Add(time.Second)); got != "0.10 0.02 0.00" {
		t.Errorf("tps %q", got)
	}
}

// An admin configures a group: it is listed with its configuration, its pulls are refused
// while consumeEnable is false, and deleting it with cleanOffset drops its offsets (without,
// they stay).
func TestSubscriptionGroupUpdateAndDelete(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	admin := h.env.accept(h.b, "127.0.9.9:50002")
	consumer := h.env.accept(h.b, "127.0.9.8:50001")
	h.send(consumer, "Orders", 0, "one", nil)
	h.syncAll()
	h.commitOffset(consumer, "cg", "Orders", 0, 1)

	cfg := codec.DefaultSubscriptionGroup("cg")
	cfg.ConsumeEnable, cfg.RetryMaxTimes = false, 3
	if resp := h.mustAnswer(admin, h.request(admin, codec.ReqUpdateAndCreateSubscription, nil, mustJSON(cfg))); resp.Code != codec.Success {
		t.Fatalf("update: %d %s", resp.Code, resp.Remark)
	}
	var all allGroupsBody
	if err := json.Unmarshal([]byte(allGroups(t, h, admin)), &all); err != nil {
		t.Fatal(err)
	}
	if all.SubscriptionGroupTable["cg"] != cfg || len(all.ConfiguredGroups) != 1 {
		t.Fatalf("listed as %+v (configured %v)", all.SubscriptionGroupTable["cg"], all.ConfiguredGroups)
	}
	if resp := h.mustAnswer(consumer, h.pull(consumer, "Orders", 0, 0)); resp.Code != codec.NoPermission || !strings.Contains(resp.Remark, "cg") {
		t.Fatalf("pull of a disabled group: %d %s", resp.Code, resp.Remark)
	}
	for _, bad := range []string{`{"groupName":""}`, `{"groupName":"bad name"}`, `{"groupName":"g","retryQueueNums":-1}`, `not json`} {
		if resp := h.mustAnswer(admin, h.request(admin, codec.ReqUpdateAndCreateSubscription, nil, []byte(bad))); resp.Code != codec.SystemError {
			t.Errorf("update with %s: code %d", bad, resp.Code)
		}
	}

	del := func(clean string) {
		t.Helper()
		if resp := h.mustAnswer(admin, h.request(admin, codec.ReqDeleteSubscriptionGroup, map[string]string{"groupName": "cg", "removeOffset": clean}, nil)); resp.Code != codec.Success {
			t.Fatalf("delete: %d %s", resp.Code, resp.Remark)
		}
	}
	del("false")
	if _, ok := h.b.Store().SubscriptionGroup("cg"); ok {
		t.Fatal("the group is still configured")
	}
	if _, ok := h.b.Store().QueryOffset("cg", "Orders", 0); !ok {
		t.Fatal("a delete without cleanOffset dropped the offsets")
	}
	if resp := h.mustAnswer(consumer, h.pull(consumer, "Orders", 0, 0)); resp.Code != codec.Success {
		t.Fatalf("pull after the delete: %d %s", resp.Code, resp.Remark)
	}
	del("true")
	if _, ok := h.b.Store().QueryOffset("cg", "Orders", 0); ok {
		t.Fatal("a delete with removeOffset kept the offsets")
	}
}

// updateBrokerConfig changes the live keys at once, persists them across a restart, and
// refuses keys that are unknown, unused or fixed, naming them, changing nothing.
func TestUpdateBrokerConfig(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	admin := h.env.accept(h.b, "127.0.9.9:50002")
	update := func(body string) *codec.Command {
		return h.mustAnswer(admin, h.request(admin, codec.ReqUpdateBrokerConfig, nil, []byte(body)))
	}
	get := func() map[string]string {
		resp := h.mustAnswer(admin, h.request(admin, codec.ReqGetBrokerConfig, nil, nil))
		m := map[string]string{}
		for _, p := range codec.DecodeConfigProperties(resp.Body) {
			m[p.Key] = p.Value
		}
		return m
	}
	if got := get(); got["fileReservedTime"] != "72" || got["brokerName"] != "broker-a" || got["maxMessageSize"] != strconv.Itoa(4<<20) {
		t.Fatalf("config before: %v", got)
	}
	if resp := update("fileReservedTime=48\nmaxMessageSize=1024\n"); resp.Code != codec.Success {
		t.Fatalf("update: %d %s", resp.Code, resp.Remark)
	}
	if h.b.cfg.FileReservedTime != 48*time.Hour || h.b.cfg.MaxMessageBytes != 1024 {
		t.Fatalf("not applied: %v %d", h.b.cfg.FileReservedTime, h.b.cfg.MaxMessageBytes)
	}
	op := h.send(admin, "Orders", 0, strings.Repeat("x", 1025), nil)
	h.syncAll()
	if resp := h.mustAnswer(admin, op); resp.Code == codec.Success {
		t.Fatal("a body over the new maxMessageSize was stored")
	}
	for body, key := range map[string]string{
		"brokerName=other":           "brokerName",
		"fileReservedTim=1":          "fileReservedTim",
		"flushIntervalCommitLog=100": "flushIntervalCommitLog",
		"maxMessageSize=-1":          "maxMessageSize",
		"deleteWhen=04\nbrokerId=3":  "brokerId",
		"":                           "no key",
	} {
		resp := update(body)
		if resp.Code != codec.SystemError || !strings.Contains(resp.Remark, key) {
			t.Errorf("update %q: %d %q, want an error naming %s", body, resp.Code, resp.Remark, key)
		}
	}
	if h.b.cfg.DeleteWhen[0] != 4 || len(h.b.cfg.DeleteWhen) != 1 {
		t.Errorf("a refused update changed deleteWhen: %v", h.b.cfg.DeleteWhen)
	}
	if got := get(); got["fileReservedTime"] != "48" || got["maxMessageSize"] != "1024" {
		t.Fatalf("config after: %v", got)
	}
	if err := h.b.Store().Close(); err != nil {
		t.Fatal(err)
	}
	h = startBroker(t, h.cfg, h.disk)
	if h.b.cfg.FileReservedTime != 48*time.Hour || h.b.cfg.MaxMessageBytes != 1024 {
		t.Fatalf("after a restart: %v %d", h.b.cfg.FileReservedTime, h.b.cfg.MaxMessageBytes)
	}
}

// A group an admin configures on the master reaches the slave, which stores it (and refuses
// to be configured itself); a delete on the master reaches it too. Runtime info names each
// replica's role and the master's in-sync set.
func TestSlaveCopiesConfiguredGroups(t *testing.T) {
	p := newGroupPair(t, nil)
	cli := p.m.env.accept(p.m.b, "127.0.0.50:1")
	cfg := codec.DefaultSubscriptionGroup("G")
	cfg.RetryMaxTimes = 2
	if r := p.m.mustAnswer(cli, p.m.request(cli, codec.ReqUpdateAndCreateSubscription, nil, mustJSON(cfg))); r.Code != codec.Success {
		t.Fatalf("update on the master: %d %s", r.Code, r.Remark)
	}
	p.advance(p.s.b.cfg.MetaSyncInterval + time.Second)
	if got, ok := p.s.b.store.SubscriptionGroup("G"); !ok || got != cfg {
		t.Fatalf("slave's G: %+v %v, want %+v", got, ok, cfg)
	}
	sc := p.s.env.accept(p.s.b, "127.0.0.51:1")
	if r := p.s.mustAnswer(sc, p.s.request(sc, codec.ReqUpdateAndCreateSubscription, nil, mustJSON(cfg))); r.Code != codec.ServiceNotAvailable {
		t.Fatalf("update on the slave: %d %s", r.Code, r.Remark)
	}
	if mi, si := p.m.b.RuntimeInfo(), p.s.b.RuntimeInfo(); mi["replicaRole"] != "master" || si["replicaRole"] != "slave" ||
		si["brokerRole"] != "SLAVE" || mi["masterEpoch"] != "1" || mi["syncStateSet"] != "1" {
		t.Fatalf("runtime info: master %v\nslave %v", mi, si)
	}
	if r := p.m.mustAnswer(cli, p.m.request(cli, codec.ReqDeleteSubscriptionGroup, map[string]string{"groupName": "G"}, nil)); r.Code != codec.Success {
		t.Fatalf("delete: %d %s", r.Code, r.Remark)
	}
	p.advance(p.s.b.cfg.MetaSyncInterval + time.Second)
	if _, ok := p.s.b.store.SubscriptionGroup("G"); ok {
		t.Fatal("the slave kept the group the master deleted")
	}
}
