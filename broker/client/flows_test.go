package client

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node/nodetest"
	"github.com/sluicemq/sluice/broker/route"
)

// A delayed message carries its level in the DELAY property; a half message carries sysFlag 4
// and the TRAN_MSG and PGROUP properties, and its result keeps the broker's transaction id.
func TestDelayedAndHalfMessagesOnTheWire(t *testing.T) {
	h := newHarness(t)
	var delayed SendResult
	h.c.Send(Message{Topic: "Orders", Body: []byte("x"), Tags: "A", DelayLevel: 3}, func(r SendResult, err error) {
		if err != nil {
			t.Fatal(err)
		}
		delayed = r
	})
	h.answerRoute("Orders", routeBody("broker-a"))
	f := h.next(codec.ReqSendMessage)
	props := codec.ParseProperties(f.Cmd.Ext("properties"))
	if props[codec.PropDelay] != "3" || props[codec.PropTags] != "A" || f.Cmd.Ext("sysFlag") != "0" {
		t.Fatalf("delayed send: sysFlag %q properties %v", f.Cmd.Ext("sysFlag"), props)
	}
	h.reply(f, codec.Success, sendOK("4"), nil)
	if delayed.QueueOffset != 4 {
		t.Fatalf("delayed send result %+v", delayed)
	}

	var half SendResult
	h.c.SendHalf(Message{Topic: "Orders", Body: []byte("y"), Properties: map[string]string{codec.PropUniqKey: "tx-1"}}, func(r SendResult, err error) {
		if err != nil {
			t.Fatal(err)
		}
		half = r
	})
	f = h.next(codec.ReqSendMessage)
	props = codec.ParseProperties(f.Cmd.Ext("properties"))
	if f.Cmd.Ext("sysFlag") != "4" || props[codec.PropTranMsg] != "true" || props[codec.PropProducerGroup] != "DEFAULT_PRODUCER" || props[codec.PropUniqKey] != "tx-1" {
		t.Fatalf("half send: sysFlag %q properties %v", f.Cmd.Ext("sysFlag"), props)
	}
	ok := sendOK("9")
	ok["transactionId"] = "T9"
	h.reply(f, codec.Success, ok, nil)
	if half.QueueOffset != 9 || half.TransactionID != "T9" || half.OffsetMsgID == "" {
		t.Fatalf("half send result %+v", half)
	}

	// A transactional message cannot be delayed: refused before anything is sent.
	var err error
	h.c.SendHalf(Message{Topic: "Orders", DelayLevel: 1}, func(_ SendResult, e error) { err = e })
	if err == nil || !Definite(err) || len(h.pending()) != 0 {
		t.Fatalf("delayed half message: err %v, %d requests", err, len(h.pending()))
	}
}

// EndTransaction names the half message by the offsets its send returned: the queue offset,
// and the commit-log offset parsed out of the offset msgId. With a callback it waits for the
// answer; without one it sends and forgets, as the official client does.
func TestEndTransaction(t *testing.T) {
	h := newHarness(t)
	half := SendResult{Queue: MessageQueue{Topic: "Orders", BrokerName: "broker-a", QueueID: 1}, QueueOffset: 5,
		OffsetMsgID: codec.OffsetMsgID(netip.MustParseAddrPort(brokerAAddr), 1234), TransactionID: "T5"}
	var got []error
	h.c.EndTransaction(half, "tx-5", TxCommit, func(err error) { got = append(got, err) })
	h.answerRoute("Orders", routeBody("broker-a"))
	f := h.next(codec.ReqEndTransaction)
	want := map[string]string{"producerGroup": "DEFAULT_PRODUCER", "tranStateTableOffset": "5", "commitLogOffset": "1234",
		"commitOrRollback": "8", "fromTransactionCheck": "false", "msgId": "tx-5", "transactionId": "T5", "bname": "broker-a"}
	for k, v := range want {
		if f.Cmd.Ext(k) != v {
			t.Errorf("END_TRANSACTION %s = %q, want %q", k, f.Cmd.Ext(k), v)
		}
	}
	if f.Addr != brokerAAddr {
		t.Errorf("END_TRANSACTION went to %s", f.Addr)
	}
	h.reply(f, codec.SystemError, nil, nil)
	if len(got) != 1 || got[0] == nil || !Definite(got[0]) {
		t.Fatalf("a refused END_TRANSACTION reported %v", got)
	}

	h.c.EndTransaction(half, "tx-5", TxRollback, nil)
	f = h.next(codec.ReqEndTransaction)
	h.drop(f)
	if f.Cmd.Ext("commitOrRollback") != "12" || len(h.env.LiveTimers()) != 0 {
		t.Fatalf("fire-and-forget rollback: state %q, %d timers", f.Cmd.Ext("commitOrRollback"), len(h.env.LiveTimers()))
	}

	// A send result without a parseable msgId cannot name the half message (the official
	// client panics there); this one fails definitely and sends nothing.
	half.OffsetMsgID = "not-hex"
	got = nil
	h.c.EndTransaction(half, "tx-5", TxCommit, func(err error) { got = append(got, err) })
	if len(got) != 1 || !Definite(got[0]) || len(h.pending()) != 0 {
		t.Fatalf("bad msgId: %v, %d requests sent", got, len(h.pending()))
	}
}

// checkRequest is a broker's CHECK_TRANSACTION_STATE for a half message of producer group pg.
func checkRequest(t testing.TB, pg string) *codec.Command {
	t.Helper()
	props := map[string]string{codec.PropUniqKey: "tx-7", codec.PropTranMsg: "true", codec.PropTransactionID: "T7"}
	if pg != "" {
		props[codec.PropProducerGroup] = pg
	}
	body, err := codec.AppendRecord(nil, &codec.Message{Topic: "Orders", QueueID: 2, QueueOffset: 3, PhysicalOffset: 77,
		SysFlag: codec.SysFlagTxnPrepared, BornHost: netip.MustParseAddrPort("127.0.9.1:5"), StoreHost: netip.MustParseAddrPort(brokerAAddr),
		Body: []byte("tx body"), Properties: codec.EncodeProperties(props)})
	if err != nil {
		t.Fatal(err)
	}
	req := codec.NewRequest(codec.ReqCheckTransactionState, map[string]string{"tranStateTableOffset": "3",
		"commitLogOffset": "77", "msgId": "tx-7", "transactionId": "", "offsetMsgId": "7F00000100002A9F000000000000004D"}, body)
	req.Opaque = 900
	return req
}

// A broker's transaction check reaches the application's checker with the half message; its
// decision goes back as END_TRANSACTION (fromTransactionCheck) on the connection the check came
// in on, with the check's offsets. Checks for another producer group, or with a body that is
// not a stored message, are ignored without a panic.
func TestTransactionCheckIsAnsweredOnItsConnection(t *testing.T) {
	var checks []TransactionCheck
	var answered []error
	cfg := DefaultConfig(nsAddr)
	cfg.ProducerGroup = "pg"
	cfg.CheckTransaction = func(ch TransactionCheck, reply func(TransactionState, func(error))) {
		checks = append(checks, ch)
		reply(TxCommit, func(err error) { answered = append(answered, err) })
	}
	h := newHarnessWith(t, cfg)
	// The client's connection to the broker exists because it sent something there.
	h.c.Heartbeat(func(error) {})
	h.c.Route("Orders", func(*route.TopicRouteData, error) {})
	h.answerRoute("Orders", routeBody("broker-a"))
	h.c.Heartbeat(func(error) {})
	hb := h.next(codec.ReqHeartBeat)
	h.env.Dialed(h.c, hb.Conn)
	h.reply(hb, codec.Success, nil, nil)

	h.env.Frame(h.c, hb.Conn, checkRequest(t, "other-group"))
	bad := checkRequest(t, "pg")
	bad.Body = bad.Body[:20]
	h.env.Frame(h.c, hb.Conn, bad)
	if len(checks) != 0 || len(h.pending()) != 0 {
		t.Fatalf("checks of another group or with a bad body were answered: %d checks, %d requests", len(checks), len(h.pending()))
	}

	h.env.Frame(h.c, hb.Conn, checkRequest(t, "pg"))
	if len(checks) != 1 || checks[0].UniqKey != "tx-7" || checks[0].Msg.Topic != "Orders" || string(checks[0].Msg.Body) != "tx body" {
		t.Fatalf("checker saw %+v", checks)
	}
	f := h.next(codec.ReqEndTransaction)
	want := map[string]string{"producerGroup": "pg", "tranStateTableOffset": "3", "commitLogOffset": "77",
		"commitOrRollback": "8", "fromTransactionCheck": "true", "msgId": "tx-7", "transactionId": "T7", "bname": ""}
	for k, v := range want {
		if f.Cmd.Ext(k) != v {
			t.Errorf("check answer %s = %q, want %q", k, f.Cmd.Ext(k), v)
		}
	}
	if f.Conn != hb.Conn || f.Cmd.Opaque == 900 {
		t.Errorf("check answer on conn %d opaque %d, want conn %d and a new opaque", f.Conn, f.Cmd.Opaque, hb.Conn)
	}
	h.reply(f, codec.Success, nil, nil)
	if len(answered) != 1 || answered[0] != nil {
		t.Fatalf("answer outcome %v", answered)
	}

	// A check whose connection closes before the application decides is answered nowhere.
	cfg.CheckTransaction = func(ch TransactionCheck, reply func(TransactionState, func(error))) {
		h.env.ConnClosed(h.c, hb.Conn)
		reply(TxRollback, func(err error) { answered = append(answered, err) })
	}
	h.c.cfg = cfg
	h.env.Frame(h.c, hb.Conn, checkRequest(t, "pg"))
	if len(answered) != 2 || !Definite(answered[1]) || len(h.pending()) != 0 {
		t.Fatalf("answer after the connection closed: %v, %d requests", answered, len(h.pending()))
	}
}

// SendBack names the message by its commit-log offset and its original topic and id, on the
// master of the broker group it was pulled from.
func TestSendBack(t *testing.T) {
	h := newHarness(t)
	m := &codec.Message{Topic: "%RETRY%cg", PhysicalOffset: 42, ReconsumeTimes: 1, StoreHost: netip.MustParseAddrPort(brokerBAddr),
		Properties: codec.EncodeProperties(map[string]string{codec.PropUniqKey: "u1", codec.PropRetryTopic: "Orders"})}
	var got []error
	h.c.SendBack(SendBack{Queue: MessageQueue{Topic: "%RETRY%cg", BrokerName: "broker-b"}, Msg: m, Group: "cg",
		DelayLevel: 2, MaxReconsumeTimes: 3}, func(err error) { got = append(got, err) })
	h.answerRoute("%RETRY%cg", routeBody("broker-a", "broker-b"))
	f := h.next(codec.ReqConsumerSendMsgBack)
	want := map[string]string{"group": "cg", "offset": "42", "delayLevel": "2", "originMsgId": "u1", "originTopic": "Orders",
		"unitMode": "false", "maxReconsumeTimes": "3", "bname": "broker-b"}
	for k, v := range want {
		if f.Cmd.Ext(k) != v {
			t.Errorf("send back %s = %q, want %q", k, f.Cmd.Ext(k), v)
		}
	}
	if f.Addr != brokerBAddr {
		t.Errorf("send back went to %s, want broker-b's master", f.Addr)
	}
	h.reply(f, codec.Success, nil, nil)
	if len(got) != 1 || got[0] != nil {
		t.Fatalf("send back: %v", got)
	}

	// Without a UNIQ_KEY the offset message id names the message; its own topic is the origin.
	m = &codec.Message{Topic: "Orders", PhysicalOffset: 7, StoreHost: netip.MustParseAddrPort(brokerAAddr)}
	h.c.SendBack(SendBack{Queue: MessageQueue{Topic: "Orders", BrokerName: "broker-a"}, Msg: m, Group: "cg", DelayLevel: -1},
		func(err error) { got = append(got, err) })
	h.answerRoute("Orders", routeBody("broker-a"))
	f = h.next(codec.ReqConsumerSendMsgBack)
	if f.Cmd.Ext("originMsgId") != codec.OffsetMsgID(m.StoreHost, 7) || f.Cmd.Ext("originTopic") != "Orders" || f.Cmd.Ext("delayLevel") != "-1" {
		t.Fatalf("send back without UNIQ_KEY: %v", f.Cmd.ExtFields)
	}
	h.drop(f)
	h.env.Advance(h.c, DefaultConfig().RequestTimeout)
	if len(got) != 2 || !errors.Is(got[1], ErrTimeout) || Definite(got[1]) {
		t.Fatalf("timed-out send back: %v", got)
	}
}

// Lock sends the official client's body to the master and reports only queues it asked for;
// it times out after LockTimeout (1 s), not the 3 s of other requests. Unlock names the same
// queues.
func TestLockAndUnlock(t *testing.T) {
	h := newHarness(t)
	h.c.cfg.ClientID = "c1"
	qs := []MessageQueue{{Topic: "Orders", BrokerName: "broker-a", QueueID: 2}, {Topic: "Orders", BrokerName: "broker-a", QueueID: 0}}
	var locked []MessageQueue
	var lockErr error
	calls := 0
	h.c.Lock("og", qs, func(l []MessageQueue, err error) { calls++; locked, lockErr = l, err })
	h.answerRoute("Orders", routeBody("broker-a"))
	f := h.next(codec.ReqLockBatchMQ)
	var body lockBody
	if err := json.Unmarshal(f.Cmd.Body, &body); err != nil {
		t.Fatal(err)
	}
	if f.Addr != brokerAAddr || body.ConsumerGroup != "og" || body.ClientID != "c1" || len(body.MQSet) != 2 ||
		body.MQSet[0] != (lockMQ{Topic: "Orders", BrokerName: "broker-a", QueueID: 2}) {
		t.Fatalf("lock to %s with body %s", f.Addr, f.Cmd.Body)
	}
	h.reply(f, codec.Success, nil, []byte(`{"lockOKMQSet":[{"topic":"Orders","brokerName":"broker-a","queueId":0},{"topic":"Other","brokerName":"broker-a","queueId":0}]}`))
	if calls != 1 || lockErr != nil || !slices.Equal(locked, []MessageQueue{qs[1]}) {
		t.Fatalf("lock: %d calls, locked %v, err %v", calls, locked, lockErr)
	}

	// An empty answer locks nothing; a lock unanswered for LockTimeout times out.
	h.c.Lock("og", qs, func(l []MessageQueue, err error) { calls++; locked, lockErr = l, err })
	h.reply(h.next(codec.ReqLockBatchMQ), codec.Success, nil, nil)
	if calls != 2 || lockErr != nil || len(locked) != 0 {
		t.Fatalf("empty lock answer: locked %v, err %v", locked, lockErr)
	}
	h.c.Lock("og", qs, func(l []MessageQueue, err error) { calls++; locked, lockErr = l, err })
	h.drop(h.next(codec.ReqLockBatchMQ))
	h.env.Advance(h.c, time.Second)
	if calls != 3 || !errors.Is(lockErr, ErrTimeout) {
		t.Fatalf("lock after 1 s without an answer: %d calls, err %v", calls, lockErr)
	}

	var unlockErr error
	h.c.Unlock("og", qs[:1], func(err error) { unlockErr = err })
	f = h.next(codec.ReqUnlockBatchMQ)
	if err := json.Unmarshal(f.Cmd.Body, &body); err != nil || len(body.MQSet) != 1 || body.MQSet[0].QueueID != 2 {
		t.Fatalf("unlock body %s (%v)", f.Cmd.Body, err)
	}
	h.reply(f, codec.Success, nil, nil)
	if unlockErr != nil {
		t.Fatal(unlockErr)
	}

	// Queues of two broker groups, or none, are refused before anything is sent.
	h.c.Lock("og", []MessageQueue{qs[0], {Topic: "Orders", BrokerName: "broker-b"}}, func(_ []MessageQueue, err error) { lockErr = err })
	if !Definite(lockErr) || len(h.pending()) != 0 {
		t.Fatalf("lock across broker groups: err %v, %d requests", lockErr, len(h.pending()))
	}
	h.c.Unlock("og", nil, func(err error) { unlockErr = err })
	if !Definite(unlockErr) || len(h.pending()) != 0 {
		t.Fatalf("unlock of nothing: err %v", unlockErr)
	}
}

// SearchOffset sends the timestamp in milliseconds and reads the offset; an answer without
// one, or with an error code, is an error.
func TestSearchOffset(t *testing.T) {
	ts := nodetest.Start.Add(90 * time.Second)
	cases := []struct {
		code    int16
		ext     map[string]string
		want    int64
		wantErr bool
	}{
		{codec.Success, map[string]string{"offset": "17"}, 17, false},
		{codec.Success, nil, 0, true},
		{codec.SystemError, map[string]string{"offset": "3"}, 0, true},
	}
	for _, tc := range cases {
		h := newHarness(t)
		var off int64
		var err error
		h.c.SearchOffset(MessageQueue{Topic: "Orders", BrokerName: "broker-a", QueueID: 3}, ts, func(o int64, e error) { off, err = o, e })
		h.answerRoute("Orders", routeBody("broker-a"))
		f := h.next(codec.ReqSearchOffsetByTimestamp)
		if f.Cmd.Ext("timestamp") != itoa(ts.UnixMilli()) || f.Cmd.Ext("queueId") != "3" || f.Cmd.Ext("topic") != "Orders" {
			t.Fatalf("search request %v", f.Cmd.ExtFields)
		}
		h.reply(f, tc.code, tc.ext, nil)
		if off != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("code %d ext %v: offset %d err %v", tc.code, tc.ext, off, err)
		}
	}
}

// Heartbeats announce the producer group and every registered consumer group (a clustering
// group also subscribes to its retry topic), go to every broker address the routes named
// (only masters while no consumer is registered), and repeat every HeartbeatInterval.
func TestHeartbeats(t *testing.T) {
	cfg := DefaultConfig(nsAddr)
	cfg.ClientID = "c1"
	cfg.ProducerGroup = "pg"
	cfg.HeartbeatInterval = 5 * time.Second
	h := newHarnessWith(t, cfg)
	if timers := h.env.LiveTimers(); len(timers) != 1 || timers[0].D != time.Second {
		t.Fatalf("after start: timers %+v, want the first heartbeat in 1 s", timers)
	}
	h.env.Advance(h.c, time.Second)
	if len(h.pending()) != 0 {
		t.Fatal("a heartbeat went out before any broker was known")
	}
	rd := route.TopicRouteData{
		QueueDatas: []route.QueueData{{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
		BrokerDatas: []route.BrokerData{{Cluster: "c", BrokerName: "broker-a",
			BrokerAddrs: map[string]string{"0": brokerAAddr, "1": brokerBAddr}}},
	}
	h.c.Route("Orders", func(*route.TopicRouteData, error) {})
	h.answerRoute("Orders", rd.Encode())

	beat := func() []*nodetest.Sent {
		t.Helper()
		h.env.Advance(h.c, cfg.HeartbeatInterval)
		p := h.pending()
		for _, f := range p {
			if f.Cmd.Code != codec.ReqHeartBeat {
				t.Fatalf("sent code %d, want heartbeats", f.Cmd.Code)
			}
			h.reply(f, codec.Success, nil, nil)
		}
		return p
	}
	sent := beat()
	if len(sent) != 1 || sent[0].Addr != brokerAAddr {
		t.Fatalf("producer-only heartbeat went to %d addresses, want the master only", len(sent))
	}
	var body heartbeatBody
	if err := json.Unmarshal(sent[0].Cmd.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ClientID != "c1" || len(body.ProducerDataSet) != 1 || body.ProducerDataSet[0].GroupName != "pg" || len(body.ConsumerDataSet) != 0 {
		t.Fatalf("producer heartbeat %s", sent[0].Cmd.Body)
	}

	h.c.RegisterConsumer(ConsumerGroup{Name: "cg", Subscriptions: map[string]string{"Orders": "TagA || TagB"}})
	sent = beat()
	if len(sent) != 2 || sent[0].Addr == sent[1].Addr {
		t.Fatalf("consumer heartbeat went to %d addresses, want master and slave", len(sent))
	}
	if err := json.Unmarshal(sent[0].Cmd.Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.ConsumerDataSet) != 1 {
		t.Fatalf("consumer heartbeat %s", sent[0].Cmd.Body)
	}
	cd := body.ConsumerDataSet[0]
	if cd.GroupName != "cg" || cd.MessageModel != "CLUSTERING" || len(cd.SubscriptionDataSet) != 2 {
		t.Fatalf("consumer data %+v", cd)
	}
	orders, retry := cd.SubscriptionDataSet[0], cd.SubscriptionDataSet[1]
	if orders.Topic != "Orders" || !slices.Equal(orders.TagsSet, []string{"TagA", "TagB"}) ||
		!slices.Equal(orders.CodeSet, []string{itoa(codec.TagsHash("TagA")), itoa(codec.TagsHash("TagB"))}) {
		t.Errorf("Orders subscription %+v", orders)
	}
	if retry.Topic != "%RETRY%cg" || retry.SubString != "*" || retry.TagsSet == nil || len(retry.TagsSet) != 0 {
		t.Errorf("retry subscription %+v", retry)
	}

	// A failed heartbeat is reported and the schedule goes on.
	var hbErr error
	h.c.Heartbeat(func(err error) { hbErr = err })
	for _, f := range h.pending() {
		h.reply(f, codec.SystemError, nil, nil)
	}
	if hbErr == nil {
		t.Fatal("failed heartbeats reported no error")
	}
	if sent = beat(); len(sent) != 2 {
		t.Fatalf("%d heartbeats after a failure", len(sent))
	}
}

// A batch goes out as one SEND_BATCH_MESSAGE with the V2 short-name header and one record per
// message; mixed topics or a delayed message are refused before anything is sent.
func TestSendBatch(t *testing.T) {
	h := newHarness(t)
	msgs := []Message{
		{Topic: "Orders", Body: []byte("one"), Tags: "A", Properties: map[string]string{codec.PropUniqKey: "b-0"}},
		{Topic: "Orders", Body: []byte("two"), Properties: map[string]string{codec.PropUniqKey: "b-1"}},
	}
	var res SendResult
	var err error
	h.c.SendBatch(msgs, func(r SendResult, e error) { res, err = r, e })
	h.answerRoute("Orders", routeBody("broker-a"))
	f := h.next(codec.ReqSendBatchMessage)
	want := map[string]string{"a": "DEFAULT_PRODUCER", "b": "Orders", "c": route.DefaultTopic, "d": "4", "f": "0",
		"i": "", "m": "true", "n": "broker-a"}
	for k, v := range want {
		if f.Cmd.Ext(k) != v {
			t.Errorf("batch header %s = %q, want %q", k, f.Cmd.Ext(k), v)
		}
	}
	got, derr := codec.DecodeBatch(f.Cmd.Body)
	if derr != nil || len(got) != 2 || string(got[0].Body) != "one" || codec.Property(got[0].Properties, codec.PropTags) != "A" ||
		codec.Property(got[1].Properties, codec.PropUniqKey) != "b-1" {
		t.Fatalf("batch body: %v, %+v", derr, got)
	}
	ok := sendOK("12")
	ok["msgId"] = "7F00000100002A9F0000000000000001,7F00000100002A9F0000000000000002"
	h.reply(f, codec.Success, ok, nil)
	if err != nil || res.QueueOffset != 12 || res.OffsetMsgID != ok["msgId"] || f.Cmd.Ext("e") != itoa(int64(res.Queue.QueueID)) {
		t.Fatalf("batch result %+v, err %v", res, err)
	}

	for _, bad := range [][]Message{nil, {msgs[0], {Topic: "Other"}}, {msgs[0], {Topic: "Orders", DelayLevel: 2}}} {
		err = nil
		h.c.SendBatch(bad, func(_ SendResult, e error) { err = e })
		if !Definite(err) || len(h.pending()) != 0 {
			t.Errorf("batch %+v: err %v, %d requests", bad, err, len(h.pending()))
		}
	}
}
