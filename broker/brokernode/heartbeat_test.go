package brokernode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicemq/sluice/broker/codec"
)

// goClientHeartbeat is a HEART_BEAT body as the official Go client writes it (internal/model.go
// heartbeatData.encode): a consumer in clustering mode with its retry subscription, and a
// producer group.
const goClientHeartbeat = `{"clientID":"10.0.0.1@4242","producerDataSet":[{"groupName":"pg"}],"consumerDataSet":[{"groupName":"cg",` +
	`"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",` +
	`"subscriptionDataSet":[{"classFilterMode":false,"topic":"Orders","subString":"TagA || TagB","tagsSet":["TagA","TagB"],` +
	`"codeSet":[2598919,2598920],"subVersion":1767225600000000000,"expressionType":"TAG"},` +
	`{"classFilterMode":false,"topic":"%RETRY%cg","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`

func TestDecodeHeartbeat(t *testing.T) {
	type sub = heartbeatSubscriptionData
	cases := []struct {
		name    string
		body    string
		check   func(t *testing.T, hb heartbeatData)
		wantErr string
	}{
		{name: "as the Go client writes it", body: goClientHeartbeat, check: func(t *testing.T, hb heartbeatData) {
			if hb.ClientID != "10.0.0.1@4242" || len(hb.ConsumerDataSet) != 1 || len(hb.ProducerDataSet) != 1 || hb.ProducerDataSet[0].GroupName != "pg" {
				t.Fatalf("decoded %+v", hb)
			}
			cd := hb.ConsumerDataSet[0]
			want := []sub{{"Orders", "TagA || TagB", "TAG", 1767225600000000000}, {"%RETRY%cg", "*", "TAG", 1}}
			if cd.GroupName != "cg" || cd.MessageModel != "CLUSTERING" {
				t.Errorf("consumer data %+v", cd)
			}
			if diff := cmp.Diff(want, cd.SubscriptionDataSet); diff != "" {
				t.Errorf("subscriptions (-want +got):\n%s", diff)
			}
		}},
		{name: "a producer only", body: `{"clientID":"c","producerDataSet":[{"groupName":"pg"}],"consumerDataSet":[]}`,
			check: func(t *testing.T, hb heartbeatData) {
				if len(hb.ConsumerDataSet) != 0 || len(hb.ProducerDataSet) != 1 {
					t.Errorf("decoded %+v", hb)
				}
			}},
		{name: "sets may be null", body: `{"clientID":"c","producerDataSet":null,"consumerDataSet":null}`,
			check: func(t *testing.T, hb heartbeatData) {}},
		{name: "no client id", body: `{"consumerDataSet":[]}`, wantErr: "clientID is required"},
		{name: "empty body", body: ``, wantErr: "bad body"},
		{name: "not JSON", body: `beat`, wantErr: "bad body"},
		{name: "a set that is not a list", body: `{"clientID":"c","consumerDataSet":{"groupName":"cg"}}`, wantErr: "bad body"},
		{name: "a number for a name", body: `{"clientID":7}`, wantErr: "bad body"},
		{name: "too many consumer groups", body: `{"clientID":"c","consumerDataSet":[` +
			strings.TrimSuffix(strings.Repeat(`{"groupName":"g"},`, maxHeartbeatGroups+1), ",") + `]}`, wantErr: "at most"},
		{name: "too many producer groups", body: `{"clientID":"c","producerDataSet":[` +
			strings.TrimSuffix(strings.Repeat(`{"groupName":"g"},`, maxHeartbeatGroups+1), ",") + `]}`, wantErr: "at most"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hb, err := decodeHeartbeat([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, hb)
		})
	}
}

// A heartbeat naming many new consumer groups creates all their retry topics and registers
// them with one REGISTER_BROKER (one per group made the work grow with the square of the
// groups: 1000 groups blocked the broker for seconds).
func TestHeartbeatWithManyGroupsRegistersOnce(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	ns := h.nameServerConn()
	registrations := func() int {
		n := 0
		for _, f := range h.framesTo(ns) {
			if f.Code == codec.ReqRegisterBroker {
				n++
			}
		}
		return n
	}
	before := registrations()
	var groups []string
	for i := range maxHeartbeatGroups {
		groups = append(groups, fmt.Sprintf(`{"groupName":"g%d","messageModel":"CLUSTERING"}`, i))
	}
	groups = append(groups, `{"groupName":"b","messageModel":"BROADCASTING"}`)[1:] // stay at the bound
	body := `{"clientID":"127.0.9.8@1","consumerDataSet":[` + strings.Join(groups, ",") + `]}`
	if resp := h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, []byte(body))); resp.Code != codec.Success {
		t.Fatalf("heartbeat: %d %s", resp.Code, resp.Remark)
	}
	if n := registrations() - before; n != 1 {
		t.Errorf("the heartbeat sent %d registrations, want 1", n)
	}
	for i := 1; i < maxHeartbeatGroups; i++ {
		if _, ok := h.b.Store().Topic(fmt.Sprintf("%%RETRY%%g%d", i)); !ok {
			t.Fatalf("no retry topic for group g%d", i)
		}
	}
	if _, ok := h.b.Store().Topic("%RETRY%b"); !ok {
		t.Error("a broadcasting group got no retry topic (Java creates one for every group)")
	}
	if got := consumerList(t, h, c, "g7"); len(got) != 1 {
		t.Errorf("group g7 has members %v, want the client", got)
	}
	// A repeat creates nothing and registers nothing.
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, []byte(body)))
	if n := registrations() - before; n != 1 {
		t.Errorf("a repeated heartbeat registered again (%d in all)", n)
	}
}

// FuzzDecodeHeartbeat: the decoder never panics; what it accepts names its client and survives
// a round trip through JSON unchanged.
func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add([]byte(goClientHeartbeat))
	f.Add(heartbeat("127.0.9.8@1", "cg"))
	f.Add([]byte(`{"clientID":"c","producerDataSet":null,"consumerDataSet":[{"groupName":"","messageModel":"BROADCASTING"}]}`))
	f.Add([]byte(`{"clientID":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		hb, err := decodeHeartbeat(body)
		if err != nil {
			return
		}
		if hb.ClientID == "" {
			t.Fatalf("accepted a heartbeat without a client id: %+v", hb)
		}
		again, err := decodeHeartbeat(mustJSON(hb))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", hb, err)
		}
		if diff := cmp.Diff(hb, again); diff != "" {
			t.Fatalf("round trip changed the heartbeat (-first +second):\n%s", diff)
		}
	})
}

// A heartbeat creates %RETRY%<group> for each consumer group, with Java's retryQueueNums (1)
// and perm 6, and registers it with the name servers at once, so a client that looks the
// retry topic up at its rebalance finds the route; a group already known registers nothing.
func TestHeartbeatCreatesAndRegistersRetryTopic(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	before := len(h.framesTo(h.nameServerConn()))
	if r := h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, []byte(goClientHeartbeat))); r.Code != codec.Success {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Remark)
	}
	if tc, ok := h.b.Store().Topic("%RETRY%cg"); !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 || tc.Perm != 6 {
		t.Fatalf("retry topic %+v (exists %v), want 1 queue, perm 6", tc, ok)
	}
	if n := len(h.framesTo(h.nameServerConn())); n != before+1 {
		t.Fatalf("%d registrations after the heartbeat, want 1", n-before)
	}
	if tc, ok := h.lastRegistration()["%RETRY%cg"]; !ok || tc.ReadQueueNums != 1 || tc.Perm != 6 {
		t.Fatalf("registered %%RETRY%%cg as %+v (present %v)", tc, ok)
	}
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, []byte(goClientHeartbeat)))
	if n := len(h.framesTo(h.nameServerConn())); n != before+1 {
		t.Errorf("a second heartbeat registered again (%d registrations)", n-before)
	}
}
