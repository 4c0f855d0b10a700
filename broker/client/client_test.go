package client

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node/nodetest"
	"github.com/sluicemq/sluice/broker/route"
)

const (
	nsAddr      = "127.0.0.1:9876"
	brokerAAddr = "127.0.0.1:10911"
	brokerBAddr = "127.0.0.2:10911"
)

// harness is one client on a nodetest.Env. The test plays the name server and the brokers: it
// reads the requests the client sent and answers them (or lets them time out, or closes the
// connection) by calling the client's handler methods.
type harness struct {
	t   *testing.T
	env *nodetest.Env
	c   *Client
	// answered holds the requests the test has answered or dropped.
	answered map[*nodetest.Sent]bool
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, DefaultConfig(nsAddr)) }

func newHarnessWith(t *testing.T, cfg Config) *harness {
	env := nodetest.New(t, nil)
	c := New(env, cfg)
	env.Start(c)
	return &harness{t: t, env: env, c: c, answered: map[*nodetest.Sent]bool{}}
}

// pending lists the requests not yet answered, in the order sent.
func (h *harness) pending() []*nodetest.Sent {
	var out []*nodetest.Sent
	for _, f := range h.env.Sent() {
		if !h.answered[f] {
			out = append(out, f)
		}
	}
	return out
}

// next is the one unanswered request; it must have the given code.
func (h *harness) next(code int16) *nodetest.Sent {
	h.t.Helper()
	p := h.pending()
	if len(p) != 1 {
		h.t.Fatalf("%d unanswered requests, want 1 with code %d", len(p), code)
	}
	if p[0].Cmd.Code != code {
		h.t.Fatalf("the client sent code %d to %s, want %d", p[0].Cmd.Code, p[0].Addr, code)
	}
	return p[0]
}

// reply answers f with code, ext and body.
func (h *harness) reply(f *nodetest.Sent, code int16, ext map[string]string, body []byte) {
	h.answered[f] = true
	resp := codec.NewResponse(f.Cmd, code, "remark for code")
	resp.ExtFields = ext
	resp.Body = body
	h.env.Frame(h.c, f.Conn, resp)
}

// drop marks f as one the test will never answer.
func (h *harness) drop(f *nodetest.Sent) { h.answered[f] = true }

// routeBody is a route with four queues on each named broker group (broker-a, broker-b).
func routeBody(groups ...string) []byte {
	addrs := map[string]string{"broker-a": brokerAAddr, "broker-b": brokerBAddr}
	rd := route.TopicRouteData{}
	for _, g := range groups {
		rd.QueueDatas = append(rd.QueueDatas, route.QueueData{BrokerName: g, ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6})
		rd.BrokerDatas = append(rd.BrokerDatas, route.BrokerData{Cluster: "c", BrokerName: g, BrokerAddrs: map[string]string{"0": addrs[g]}})
	}
	return rd.Encode()
}

// answerRoute answers the pending route lookup for topic.
func (h *harness) answerRoute(topic string, body []byte) {
	h.t.Helper()
	f := h.next(codec.ReqGetRouteInfoByTopic)
	if f.Addr != nsAddr || f.Cmd.Ext("topic") != topic {
		h.t.Fatalf("route lookup to %s for %q, want %s for %q", f.Addr, f.Cmd.Ext("topic"), nsAddr, topic)
	}
	if body == nil {
		h.reply(f, codec.TopicNotExist, nil, nil)
		return
	}
	h.reply(f, codec.Success, nil, body)
}

func sendOK(offset string) map[string]string {
	return map[string]string{"msgId": "7F00000100002A9F0000000000000001", "queueId": "0", "queueOffset": offset}
}

type sendOutcome struct {
	calls int
	res   SendResult
	err   error
}

func (h *harness) send(topic string) *sendOutcome {
	out := &sendOutcome{}
	h.c.Send(Message{Topic: topic, Body: []byte("hello"), Tags: "TagA"}, func(r SendResult, err error) {
		out.calls++
		out.res, out.err = r, err
	})
	return out
}

// A send is retried on another queue, preferring another broker group, only after a definite
// failure the official client also retries (14, 17, a connection that never came up); any other
// answer, and any unknown outcome (a timeout, a connection lost after it came up), ends the send
// so a retry never duplicates a message.
func TestSendRetriesOnlyAfterADefiniteFailure(t *testing.T) {
	cases := []struct {
		name         string
		fail         func(h *harness, f *nodetest.Sent)
		wantRetry    bool
		wantDefinite bool
		wantErr      error
	}{
		{name: "SERVICE_NOT_AVAILABLE", fail: func(h *harness, f *nodetest.Sent) { h.reply(f, codec.ServiceNotAvailable, nil, nil) }, wantRetry: true},
		{name: "TOPIC_NOT_EXIST", fail: func(h *harness, f *nodetest.Sent) { h.reply(f, codec.TopicNotExist, nil, nil) }, wantRetry: true},
		{name: "MESSAGE_ILLEGAL", fail: func(h *harness, f *nodetest.Sent) { h.reply(f, codec.MessageIllegal, nil, nil) }, wantDefinite: true},
		{name: "SYSTEM_BUSY", fail: func(h *harness, f *nodetest.Sent) { h.reply(f, codec.SystemBusy, nil, nil) }, wantDefinite: true},
		{name: "FLUSH_DISK_TIMEOUT", fail: func(h *harness, f *nodetest.Sent) { h.reply(f, codec.FlushDiskTimeout, nil, nil) }},
		{name: "timeout", fail: func(h *harness, f *nodetest.Sent) {
			h.drop(f)
			h.env.Advance(h.c, DefaultConfig().RequestTimeout)
		}, wantErr: ErrTimeout},
		{name: "connection lost after it came up", fail: func(h *harness, f *nodetest.Sent) {
			h.drop(f)
			h.env.Dialed(h.c, f.Conn)
			h.env.ConnClosed(h.c, f.Conn)
		}, wantErr: ErrConnClosed},
		{name: "connection never came up", fail: func(h *harness, f *nodetest.Sent) {
			h.drop(f)
			h.env.ConnClosed(h.c, f.Conn)
		}, wantRetry: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			out := h.send("Orders")
			h.answerRoute("Orders", routeBody("broker-a", "broker-b"))
			first := h.next(codec.ReqSendMessage)
			firstBroker := first.Cmd.Ext("bname")
			tc.fail(h, first)

			if !tc.wantRetry {
				if out.calls != 1 || out.err == nil {
					t.Fatalf("send finished %d times, err %v; want once with an error", out.calls, out.err)
				}
				if p := h.pending(); len(p) != 0 {
					t.Fatalf("after a non-retriable outcome the client sent code %d to %s", p[0].Cmd.Code, p[0].Addr)
				}
				if Definite(out.err) != tc.wantDefinite {
					t.Errorf("Definite(%v) = %v, want %v", out.err, Definite(out.err), tc.wantDefinite)
				}
				if tc.wantErr != nil && !errors.Is(out.err, tc.wantErr) {
					t.Errorf("err %v, want %v", out.err, tc.wantErr)
				}
				if out.res.Attempts != 1 {
					t.Errorf("%d attempts, want 1", out.res.Attempts)
				}
				return
			}
			if out.calls != 0 {
				t.Fatalf("send finished after a retriable failure: %v", out.err)
			}
			// The definite failure invalidated the route: it is looked up again.
			h.answerRoute("Orders", routeBody("broker-a", "broker-b"))
			second := h.next(codec.ReqSendMessage)
			if second.Cmd.Ext("bname") == firstBroker {
				t.Errorf("the retry went to %s again; it should prefer the other broker group", firstBroker)
			}
			h.reply(second, codec.Success, sendOK("7"), nil)
			if out.calls != 1 || out.err != nil || out.res.Attempts != 2 || out.res.QueueOffset != 7 ||
				out.res.Queue.BrokerName == firstBroker || out.res.OffsetMsgID == "" {
				t.Fatalf("after the retry: %d calls, %+v, err %v", out.calls, out.res, out.err)
			}
		})
	}
}

// A broker that keeps failing definitely is tried MaxSendAttempts times, then the send fails
// definitely (the message was stored nowhere).
func TestSendGivesUpAfterMaxAttempts(t *testing.T) {
	h := newHarness(t)
	out := h.send("Orders")
	for i := 0; i < DefaultConfig().MaxSendAttempts; i++ {
		h.answerRoute("Orders", routeBody("broker-a", "broker-b"))
		h.reply(h.next(codec.ReqSendMessage), codec.ServiceNotAvailable, nil, nil)
	}
	if out.calls != 1 || !Definite(out.err) || out.res.Attempts != 3 || len(h.pending()) != 0 {
		t.Fatalf("after 3 failures: %d calls, attempts %d, err %v, %d more requests", out.calls, out.res.Attempts, out.err, len(h.pending()))
	}
}

// A request that times out reports ErrTimeout, not a definite failure; its response, arriving
// late, is dropped: the callback is not called twice and nothing is retried.
func TestTimedOutRequestIgnoresItsLateResponse(t *testing.T) {
	h := newHarness(t)
	out := h.send("Orders")
	h.answerRoute("Orders", routeBody("broker-a"))
	f := h.next(codec.ReqSendMessage)
	h.drop(f)
	h.env.Advance(h.c, DefaultConfig().RequestTimeout-time.Millisecond)
	if out.calls != 0 {
		t.Fatal("the send finished before its timeout")
	}
	h.env.Advance(h.c, time.Millisecond)
	if out.calls != 1 || !errors.Is(out.err, ErrTimeout) || Definite(out.err) {
		t.Fatalf("at the timeout: %d calls, err %v (definite %v)", out.calls, out.err, Definite(out.err))
	}
	h.reply(f, codec.Success, sendOK("0"), nil)
	if out.calls != 1 || !errors.Is(out.err, ErrTimeout) || len(h.pending()) != 0 {
		t.Fatalf("the late response changed the outcome: %d calls, err %v", out.calls, out.err)
	}
}

// A topic with no route is sent to through TBW102's route (queue counts capped at 4), with
// the real topic name, so the broker auto-creates it.
func TestSendFallsBackToTBW102(t *testing.T) {
	h := newHarness(t)
	out := h.send("NewTopic")
	h.answerRoute("NewTopic", nil) // 17
	tbw := route.TopicRouteData{
		QueueDatas:  []route.QueueData{{BrokerName: "broker-a", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7}},
		BrokerDatas: []route.BrokerData{{Cluster: "c", BrokerName: "broker-a", BrokerAddrs: map[string]string{"0": brokerAAddr}}},
	}
	h.answerRoute(route.DefaultTopic, tbw.Encode())
	f := h.next(codec.ReqSendMessage)
	sh, err := codec.DecodeSendHeader(f.Cmd)
	if q := sh.QueueID; f.Addr != brokerAAddr || sh.Topic != "NewTopic" || sh.DefaultTopic != route.DefaultTopic || err != nil || q < 0 || q >= 4 {
		t.Fatalf("fallback send to %s: topic %q defaultTopic %q queueId %q", f.Addr, f.Cmd.Ext("topic"), f.Cmd.Ext("defaultTopic"), f.Cmd.Ext("queueId"))
	}
	h.reply(f, codec.Success, sendOK("0"), nil)
	if out.err != nil {
		t.Fatal(out.err)
	}
	// With neither route the send fails definitely, having reached no broker.
	h = newHarness(t)
	out = h.send("Other")
	for len(h.pending()) > 0 { // each attempt looks up Other, then TBW102
		h.answerRoute(h.pending()[0].Cmd.Ext("topic"), nil)
	}
	if out.calls != 1 || !Definite(out.err) || out.res.Attempts != DefaultConfig().MaxSendAttempts {
		t.Fatalf("send with no route at all: %d calls, %d attempts, err %v (definite %v)", out.calls, out.res.Attempts, out.err, Definite(out.err))
	}
	for _, f := range h.env.Sent() {
		if f.Cmd.Code == codec.ReqSendMessage {
			t.Fatal("a send without any route reached a broker")
		}
	}
}

// During a failover the name server routes a group with slaves only (brokerId 0 is gone until
// the new master registers): such a route is not kept for RouteTTL. The next send, and a pull,
// ask the name server again and reach the new master, within the TTL.
func TestMasterlessRouteIsLookedUpAgain(t *testing.T) {
	slavesOnly := route.TopicRouteData{
		QueueDatas:  []route.QueueData{{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
		BrokerDatas: []route.BrokerData{{Cluster: "c", BrokerName: "broker-a", BrokerAddrs: map[string]string{"2": brokerBAddr}}},
	}
	promoted := route.TopicRouteData{
		QueueDatas:  slavesOnly.QueueDatas,
		BrokerDatas: []route.BrokerData{{Cluster: "c", BrokerName: "broker-a", BrokerAddrs: map[string]string{"0": brokerBAddr}}},
	}
	h := newHarness(t)
	out := h.send("Orders")
	for len(h.pending()) > 0 { // every attempt finds no master
		h.answerRoute("Orders", slavesOnly.Encode())
	}
	if out.calls != 1 || !Definite(out.err) || out.res.Attempts != DefaultConfig().MaxSendAttempts {
		t.Fatalf("send with a masterless route: %d calls, %d attempts, err %v", out.calls, out.res.Attempts, out.err)
	}
	out = h.send("Orders")
	h.answerRoute("Orders", promoted.Encode()) // asked again although within RouteTTL
	f := h.next(codec.ReqSendMessage)
	if f.Addr != brokerBAddr {
		t.Fatalf("send went to %s, want the new master %s", f.Addr, brokerBAddr)
	}
	h.reply(f, codec.Success, sendOK("0"), nil)
	if out.err != nil {
		t.Fatal(out.err)
	}

	// A pull of a masterless group goes to a slave, and the route is looked up again soon
	// (masterlessRefresh), not only after RouteTTL.
	h = newHarness(t)
	var pullErr error
	pull := func() {
		h.c.Pull(PullRequest{Queue: MessageQueue{Topic: "Orders", BrokerName: "broker-a"}, Group: "g", MaxMsgs: 1},
			func(_ PullResult, err error) { pullErr = err })
	}
	pull()
	h.answerRoute("Orders", slavesOnly.Encode())
	f = h.next(codec.ReqPullMessage)
	if f.Addr != brokerBAddr {
		t.Fatalf("pull went to %s, want the slave %s", f.Addr, brokerBAddr)
	}
	h.reply(f, codec.PullNotFound, map[string]string{"nextBeginOffset": "0", "suggestWhichBrokerId": "2"}, nil)
	if pullErr != nil {
		t.Fatal(pullErr)
	}
	h.env.Advance(h.c, masterlessRefresh)
	pull()
	h.answerRoute("Orders", promoted.Encode())
	if f := h.next(codec.ReqPullMessage); f.Addr != brokerBAddr {
		t.Fatalf("pull went to %s, want the new master %s", f.Addr, brokerBAddr)
	}
}

// A route is looked up once and reused until RouteTTL has passed.
func TestRouteIsCachedForItsTTL(t *testing.T) {
	h := newHarness(t)
	lookups := 0
	get := func() {
		h.c.Route("Orders", func(rd *route.TopicRouteData, err error) {
			if err != nil || len(rd.QueueDatas) != 1 {
				t.Fatalf("route: %v", err)
			}
		})
		if len(h.pending()) > 0 {
			lookups++
			h.answerRoute("Orders", routeBody("broker-a"))
		}
	}
	get()
	h.env.Advance(h.c, DefaultConfig().RouteTTL-time.Second)
	get()
	if lookups != 1 {
		t.Fatalf("%d lookups within the TTL, want 1", lookups)
	}
	h.env.Advance(h.c, time.Second)
	get()
	if lookups != 2 {
		t.Fatalf("%d lookups once the TTL passed, want 2", lookups)
	}
	h.c.InvalidateRoute("Orders")
	get()
	if lookups != 3 {
		t.Fatalf("%d lookups after InvalidateRoute, want 3", lookups)
	}
}

// Pull asks for long polling when told to, and decodes a body of several stored records.
func TestPullDecodesAMultiMessageBody(t *testing.T) {
	h := newHarness(t)
	var got PullResult
	var gotErr error
	calls := 0
	q := MessageQueue{Topic: "Orders", BrokerName: "broker-a", QueueID: 2}
	h.c.Pull(PullRequest{Queue: q, Group: "cg", Offset: 5, MaxMsgs: 32, SuspendMillis: 15000}, func(r PullResult, err error) {
		calls++
		got, gotErr = r, err
	})
	h.answerRoute("Orders", routeBody("broker-a"))
	f := h.next(codec.ReqPullMessage)
	if f.Addr != brokerAAddr || f.Cmd.Ext("sysFlag") != "6" || f.Cmd.Ext("queueOffset") != "5" || f.Cmd.Ext("queueId") != "2" || f.Cmd.Ext("suspendTimeoutMillis") != "15000" {
		t.Fatalf("pull request to %s: %v", f.Addr, f.Cmd.ExtFields)
	}
	var body []byte
	for i := 0; i < 3; i++ {
		var err error
		body, err = codec.AppendRecord(body, &codec.Message{
			Topic: "Orders", QueueID: 2, QueueOffset: int64(5 + i), PhysicalOffset: int64(40 + i),
			BornHost: netip.MustParseAddrPort("127.0.9.7:5"), StoreHost: netip.MustParseAddrPort(brokerAAddr),
			Body: []byte{'m', byte('0' + i)}, Properties: codec.EncodeProperties(map[string]string{"TAGS": "A"}),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	h.reply(f, codec.Success, map[string]string{"nextBeginOffset": "8", "minOffset": "0", "maxOffset": "8"}, body)
	if calls != 1 || gotErr != nil || got.Status != codec.Success || len(got.Msgs) != 3 || got.NextBeginOffset != 8 || got.MaxOffset != 8 {
		t.Fatalf("pull: %d calls, err %v, status %d, %d messages, next %d max %d", calls, gotErr, got.Status, len(got.Msgs), got.NextBeginOffset, got.MaxOffset)
	}
	for i, m := range got.Msgs {
		if string(m.Body) != "m"+string(rune('0'+i)) || m.QueueOffset != int64(5+i) {
			t.Errorf("message %d: body %q offset %d", i, m.Body, m.QueueOffset)
		}
	}
}

// A pull carries its subscription and its type as the official Go client's pull consumer
// does: the subscription bit of sysFlag, subscription and expressionType (TAG by default).
func TestPullCarriesSubscriptionType(t *testing.T) {
	cases := []struct {
		req            PullRequest
		wantSub, wantT string
	}{
		{PullRequest{}, "*", "TAG"},
		{PullRequest{Subscription: "A || B"}, "A || B", "TAG"},
		{PullRequest{Subscription: "a > 5 AND color = 'red'", ExpressionType: "SQL92"}, "a > 5 AND color = 'red'", "SQL92"},
		// The group's subscription from its heartbeats: no subscription bit, no subscription.
		{PullRequest{Subscription: "a > 5", ExpressionType: "SQL92", GroupSubscription: true}, "", "SQL92"},
	}
	for _, tc := range cases {
		h := newHarness(t)
		tc.req.Queue = MessageQueue{Topic: "Orders", BrokerName: "broker-a"}
		tc.req.Group, tc.req.MaxMsgs = "cg", 8
		h.c.Pull(tc.req, func(PullResult, error) {})
		h.answerRoute("Orders", routeBody("broker-a"))
		f := h.next(codec.ReqPullMessage)
		wantFlag := "4"
		if tc.req.GroupSubscription {
			wantFlag = "0"
		}
		_, hasSub := f.Cmd.ExtFields["subscription"]
		if f.Cmd.Ext("sysFlag") != wantFlag || hasSub != (tc.wantSub != "") || f.Cmd.Ext("subscription") != tc.wantSub || f.Cmd.Ext("expressionType") != tc.wantT {
			t.Errorf("pull %+v: request %v, want subscription %q of type %s", tc.req, f.Cmd.ExtFields, tc.wantSub, tc.wantT)
		}
	}
}

// A SQL92 subscription goes in the heartbeat as Java's FilterAPI.build makes it: the
// expression as is, its type, no tags.
func TestHeartbeatCarriesSQL92Subscription(t *testing.T) {
	h := newHarness(t)
	h.c.RegisterConsumer(ConsumerGroup{Name: "cg", Subscriptions: map[string]string{"Orders": "a > 5 || b", "Tags": "A || B"},
		ExpressionTypes: map[string]string{"Orders": "SQL92"}})
	var hb heartbeatBody
	if err := json.Unmarshal(h.c.heartbeatBody(), &hb); err != nil {
		t.Fatal(err)
	}
	got := map[string]subscriptionData{}
	for _, sd := range hb.ConsumerDataSet[0].SubscriptionDataSet {
		got[sd.Topic] = sd
	}
	if sd := got["Orders"]; sd.SubString != "a > 5 || b" || sd.ExpressionType != "SQL92" || len(sd.TagsSet) != 0 || sd.TagsSet == nil {
		t.Errorf("SQL92 subscription: %+v", sd)
	}
	if sd := got["Tags"]; sd.ExpressionType != "TAG" || len(sd.TagsSet) != 2 {
		t.Errorf("tag subscription: %+v", sd)
	}
}

// Pull statuses other than success carry their offsets without an error; other codes are
// errors; a body that is not stored records is an error, not a panic.
func TestPullStatuses(t *testing.T) {
	cases := []struct {
		code    int16
		body    []byte
		wantErr bool
	}{
		{codec.PullNotFound, nil, false},
		{codec.PullRetryImmediately, nil, false},
		{codec.PullOffsetMoved, nil, false},
		{codec.TopicNotExist, nil, true},
		{codec.Success, []byte{0, 0, 0, 9, 1, 2}, true},
	}
	for _, tc := range cases {
		h := newHarness(t)
		var got PullResult
		var gotErr error
		h.c.Pull(PullRequest{Queue: MessageQueue{Topic: "Orders", BrokerName: "broker-a"}, Offset: 3}, func(r PullResult, err error) { got, gotErr = r, err })
		h.answerRoute("Orders", routeBody("broker-a"))
		h.reply(h.next(codec.ReqPullMessage), tc.code, map[string]string{"nextBeginOffset": "3", "minOffset": "0", "maxOffset": "3"}, tc.body)
		if (gotErr != nil) != tc.wantErr {
			t.Errorf("code %d: err %v, want error %v", tc.code, gotErr, tc.wantErr)
		}
		if !tc.wantErr && (got.Status != tc.code || got.NextBeginOffset != 3 || got.MaxOffset != 3) {
			t.Errorf("code %d: %+v", tc.code, got)
		}
	}
}

// CommitOffset is fire-and-forget, as in the official client: one UPDATE_CONSUMER_OFFSET to
// the queue's master, no timer, and an answer (brokers may send one) is dropped.
func TestCommitOffsetIsFireAndForget(t *testing.T) {
	h := newHarness(t)
	q := MessageQueue{Topic: "Orders", BrokerName: "broker-a", QueueID: 1}
	h.c.CommitOffset("cg", q, 12)
	h.answerRoute("Orders", routeBody("broker-a"))
	timers := len(h.env.LiveTimers())
	f := h.next(codec.ReqUpdateConsumerOffset)
	if f.Addr != brokerAAddr || f.Cmd.Ext("commitOffset") != "12" || f.Cmd.Ext("consumerGroup") != "cg" || f.Cmd.Ext("queueId") != "1" {
		t.Fatalf("commit to %s: %v", f.Addr, f.Cmd.ExtFields)
	}
	if f.Cmd.Flag != 0 {
		t.Errorf("flag %d: the Go client never sets the oneway bit", f.Cmd.Flag)
	}
	if timers != 0 {
		t.Errorf("%d timers running for a fire-and-forget commit", timers)
	}
	h.reply(f, codec.Success, nil, nil) // dropped without effect
	if len(h.c.calls) != 0 {
		t.Fatalf("%d calls outstanding", len(h.c.calls))
	}
}

// QueryOffset distinguishes "no offset yet" (22) from an error and from a found offset.
func TestQueryOffset(t *testing.T) {
	cases := []struct {
		code      int16
		ext       map[string]string
		wantOff   int64
		wantFound bool
		wantErr   bool
	}{
		{codec.Success, map[string]string{"offset": "9"}, 9, true, false},
		{codec.QueryNotFound, nil, 0, false, false},
		{codec.SystemError, nil, 0, false, true},
	}
	for _, tc := range cases {
		h := newHarness(t)
		var off int64
		var found bool
		var err error
		h.c.QueryOffset("cg", MessageQueue{Topic: "Orders", BrokerName: "broker-a"}, func(o int64, f bool, e error) { off, found, err = o, f, e })
		h.answerRoute("Orders", routeBody("broker-a"))
		h.reply(h.next(codec.ReqQueryConsumerOffset), tc.code, tc.ext, nil)
		if off != tc.wantOff || found != tc.wantFound || (err != nil) != tc.wantErr {
			t.Errorf("code %d: offset %d found %v err %v", tc.code, off, found, err)
		}
	}
}

// readAddr picks a read's broker as the official FindBrokerAddressInSubscribe(name, want,
// false) does, deterministically: the id asked for, the next id for a missing slave id, the
// master, then the lowest slave id.
func TestReadAddr(t *testing.T) {
	group := func(addrs map[string]string) *route.TopicRouteData {
		return &route.TopicRouteData{BrokerDatas: []route.BrokerData{
			{BrokerName: "other", BrokerAddrs: map[string]string{"0": "o:0"}},
			{BrokerName: "g", BrokerAddrs: addrs},
		}}
	}
	full := map[string]string{"0": "m", "1": "s1", "2": "s2"}
	noMaster := map[string]string{"2": "s2", "3": "s3", "x": "bad", "4": ""}
	cases := []struct {
		addrs   map[string]string
		want    int64
		addr    string
		id      int64
		wantErr bool
	}{
		{full, 0, "m", 0, false},
		{full, 1, "s1", 1, false},
		{full, 2, "s2", 2, false},
		{full, 5, "m", 0, false},              // neither 5 nor 6: the master
		{noMaster, 0, "s2", 2, false},         // no master: the lowest slave id
		{noMaster, 1, "s2", 2, false},         // 1 missing: the next id
		{noMaster, 3, "s3", 3, false},         // the suggested slave
		{noMaster, 7, "s2", 2, false},         // neither 7 nor 8, no master: the lowest slave
		{map[string]string{}, 0, "", 0, true}, // no broker at all
		{map[string]string{"x": "bad", "-1": "neg"}, 0, "", 0, true},
	}
	for _, tc := range cases {
		addr, id, err := readAddr(group(tc.addrs), "g", tc.want)
		if addr != tc.addr || id != tc.id || (err != nil) != tc.wantErr {
			t.Errorf("%v want %d: got %q id %d err %v, want %q id %d error %v", tc.addrs, tc.want, addr, id, err, tc.addr, tc.id, tc.wantErr)
		}
	}
	if _, _, err := readAddr(group(full), "missing", 0); !errors.Is(err, errNoRoute) {
		t.Errorf("a group the route lacks: err %v", err)
	}
}

// Pulls follow the suggestWhichBrokerId of the last answer for their queue (per queue), and a
// failed pull forgets it; offset queries and commits go to the master, or without one to a slave.
func TestPullFollowsTheSuggestedBroker(t *testing.T) {
	const slave1, slave2 = "127.0.0.3:10911", "127.0.0.4:10911"
	rd := route.TopicRouteData{
		QueueDatas:  []route.QueueData{{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
		BrokerDatas: []route.BrokerData{{Cluster: "c", BrokerName: "broker-a", BrokerAddrs: map[string]string{"0": brokerAAddr, "1": slave1, "2": slave2}}},
	}
	h := newHarness(t)
	q0 := MessageQueue{Topic: "Orders", BrokerName: "broker-a", QueueID: 0}
	q1 := MessageQueue{Topic: "Orders", BrokerName: "broker-a", QueueID: 1}
	var got PullResult
	var gotErr error
	pull := func(q MessageQueue) *nodetest.Sent {
		h.c.Pull(PullRequest{Queue: q, Group: "g", MaxMsgs: 1}, func(r PullResult, err error) { got, gotErr = r, err })
		if p := h.pending(); len(p) == 1 && p[0].Cmd.Code == codec.ReqGetRouteInfoByTopic {
			h.answerRoute("Orders", rd.Encode())
		}
		return h.next(codec.ReqPullMessage)
	}
	notFound := func(suggest string) map[string]string {
		return map[string]string{"nextBeginOffset": "0", "minOffset": "0", "maxOffset": "0", "suggestWhichBrokerId": suggest}
	}
	steps := []struct {
		q       MessageQueue
		want    string
		code    int16
		suggest string
	}{
		{q0, brokerAAddr, codec.PullNotFound, "1"},
		{q1, brokerAAddr, codec.PullNotFound, "0"}, // another queue keeps its own suggestion
		{q0, slave1, codec.PullNotFound, "2"},
		{q0, slave2, codec.SystemError, "2"}, // a failed pull forgets the suggestion
		{q0, brokerAAddr, codec.PullNotFound, "2"},
		{q0, slave2, codec.PullNotFound, "0"},
		{q0, brokerAAddr, codec.PullNotFound, "junk"}, // unreadable: the master
		{q0, brokerAAddr, codec.PullNotFound, ""},
	}
	for i, s := range steps {
		f := pull(s.q)
		if f.Addr != s.want {
			t.Fatalf("step %d: pull of %s went to %s, want %s", i, s.q, f.Addr, s.want)
		}
		h.reply(f, s.code, notFound(s.suggest), nil)
		if (gotErr != nil) != (s.code != codec.PullNotFound) || got.Addr != s.want && gotErr == nil {
			t.Fatalf("step %d: result %+v err %v", i, got, gotErr)
		}
	}

	// Without a master in the route, offsets are read and committed at a slave, as the Java
	// client's RemoteBrokerOffsetStore does.
	h = newHarness(t)
	slaves := route.TopicRouteData{QueueDatas: rd.QueueDatas,
		BrokerDatas: []route.BrokerData{{Cluster: "c", BrokerName: "broker-a", BrokerAddrs: map[string]string{"2": slave2, "1": slave1}}}}
	var off int64
	var found bool
	h.c.QueryOffset("g", q0, func(o int64, f bool, err error) { off, found, gotErr = o, f, err })
	h.answerRoute("Orders", slaves.Encode())
	f := h.next(codec.ReqQueryConsumerOffset)
	if f.Addr != slave1 {
		t.Fatalf("offset query went to %s, want the slave %s", f.Addr, slave1)
	}
	h.reply(f, codec.Success, map[string]string{"offset": "7"}, nil)
	if off != 7 || !found || gotErr != nil {
		t.Fatalf("offset query: %d %v %v", off, found, gotErr)
	}
	h.c.CommitOffset("g", q0, 9)
	if f := h.next(codec.ReqUpdateConsumerOffset); f.Addr != slave1 || f.Cmd.Ext("commitOffset") != "9" {
		t.Fatalf("commit went to %s: %v", f.Addr, f.Cmd.ExtFields)
	}
}

// A pull that gets no answer drops the cached route: the next pull looks it up again (the
// master may be dead, and the name server already routes to its replacement or a slave).
func TestPullWithoutAnswerLooksTheRouteUpAgain(t *testing.T) {
	h := newHarness(t)
	var pullErr error
	pull := func() {
		h.c.Pull(PullRequest{Queue: MessageQueue{Topic: "Orders", BrokerName: "broker-a"}, Group: "g", MaxMsgs: 1},
			func(_ PullResult, err error) { pullErr = err })
	}
	pull()
	h.answerRoute("Orders", routeBody("broker-a"))
	f := h.next(codec.ReqPullMessage)
	h.env.Dialed(h.c, f.Conn)
	h.drop(f)
	h.env.ConnClosed(h.c, f.Conn)
	if !errors.Is(pullErr, ErrConnClosed) {
		t.Fatalf("pull on a closed connection: %v", pullErr)
	}
	pull()
	h.answerRoute("Orders", routeBody("broker-a")) // asked again within RouteTTL
	h.next(codec.ReqPullMessage)
}
