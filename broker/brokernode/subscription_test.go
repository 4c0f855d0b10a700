package brokernode

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// brokerWithProps is a ready broker whose topic Orders holds, on queue 0, one message per
// property set, in order; the body is the message's index.
func brokerWithProps(t *testing.T, cfg Config, sets ...map[string]string) (*brokerHarness, node.ConnID) {
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	for i, props := range sets {
		h.send(p, "Orders", 0, strconv.Itoa(i), props)
	}
	h.syncAll()
	return h, p
}

// sixMessages: a = 1..6, TAGS alternating TagA/TagB, b only on even a.
func sixMessages() []map[string]string {
	var out []map[string]string
	for i := 1; i <= 6; i++ {
		props := map[string]string{"a": strconv.Itoa(i), codec.PropTags: []string{"TagB", "TagA"}[i%2]}
		if i%2 == 0 {
			props["b"] = "x"
		}
		out = append(out, props)
	}
	return out
}

func sqlHeartbeat(clientID, group, exprType, expr string) []byte {
	b, _ := json.Marshal(map[string]any{
		"clientID": clientID,
		"consumerDataSet": []any{map[string]any{
			"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
			"subscriptionDataSet": []any{
				map[string]any{"topic": "Orders", "subString": expr, "expressionType": exprType},
				map[string]any{"topic": "%RETRY%" + group, "subString": "*", "expressionType": "TAG"},
			},
		}},
	})
	return b
}

// A SQL92 subscription, given in the pull request (sysFlag bit 2) or by the group's heartbeat
// as the push consumer does, delivers exactly the messages whose properties match, TAGS
// included; nextBeginOffset moves past the messages it skips.
func TestPullSQL92Filters(t *testing.T) {
	cases := []struct {
		expr     string
		want     []string
		wantCode int16
	}{
		{"a > 3", []string{"3", "4", "5"}, codec.Success},
		{"a BETWEEN 2 AND 4 AND b IS NOT NULL", []string{"1", "3"}, codec.Success},
		{"TAGS = 'TagA' OR a IN ('6')", []string{"0", "2", "4", "5"}, codec.Success},
		{"b IS NULL AND a <> 5", []string{"0", "2"}, codec.Success},
		{"a > 100", nil, codec.PullRetryImmediately},
		{"c = 'missing'", nil, codec.PullRetryImmediately},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			h, _ := brokerWithProps(t, testConfig(), sixMessages()...)
			c := h.env.accept(h.b, "127.0.9.8:50001")
			viaPull := h.mustAnswer(c, h.pull(c, "Orders", 0, 0, "sysFlag", "4", "expressionType", "SQL92", "subscription", tc.expr))
			if hb := h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, sqlHeartbeat("c1", "cg", "SQL92", tc.expr))); hb.Code != codec.Success {
				t.Fatalf("heartbeat: code %d %s", hb.Code, hb.Remark)
			}
			viaHeartbeat := h.mustAnswer(c, h.pull(c, "Orders", 0, 0, "sysFlag", "0", "subscription", "", "expressionType", "TAG"))
			for name, resp := range map[string]*codec.Command{"pull header": viaPull, "heartbeat": viaHeartbeat} {
				if resp.Code != tc.wantCode {
					t.Fatalf("%s: code %d (%s), want %d", name, resp.Code, resp.Remark, tc.wantCode)
				}
				if got := bodies(decodeBody(t, resp.Body)); !slices.Equal(got, tc.want) {
					t.Errorf("%s: delivered %v, want %v", name, got, tc.want)
				}
				if next := resp.Ext("nextBeginOffset"); next != "6" {
					t.Errorf("%s: nextBeginOffset %s, want 6 (past every scanned message)", name, next)
				}
			}
		})
	}
}

// A SQL92 subscription the broker cannot serve is refused at the pull, before anything is
// read or committed: the consumer stays at its offset and the group's stored offset does not
// move. The heartbeat carrying it is accepted, as Java accepts it.
func TestPullSQL92Refused(t *testing.T) {
	off := testConfig()
	off.EnablePropertyFilter = false
	cases := []struct {
		name      string
		cfg       Config
		exprType  string
		expr      string
		wantCode  int16
		wantInErr string
	}{
		{"bad expression", testConfig(), "SQL92", "a >", codec.SubscriptionParseFailed, `parse the consumer's subscription failed: SQL92 expression "a >"`},
		{"not a condition", testConfig(), "SQL92", "a + 1", codec.SubscriptionParseFailed, "after a complete expression"},
		{"unknown type", testConfig(), "XPATH", "/a", codec.SubscriptionParseFailed, `expression type "XPATH" is not supported`},
		{"property filter off", off, "SQL92", "a > 3", codec.SystemError, "The broker does not support consumer to filter message by SQL92"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := brokerWithProps(t, tc.cfg, sixMessages()...)
			c := h.env.accept(h.b, "127.0.9.8:50001")
			if hb := h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, sqlHeartbeat("c1", "cg", tc.exprType, tc.expr))); hb.Code != codec.Success {
				t.Fatalf("heartbeat: code %d %s", hb.Code, hb.Remark)
			}
			for _, extra := range [][]string{
				{"sysFlag", "3", "commitOffset", "4", "suspendTimeoutMillis", "20000"}, // push consumer, heartbeat subscription
				{"sysFlag", "5", "commitOffset", "4", "expressionType", tc.exprType, "subscription", tc.expr},
			} {
				resp := h.mustAnswer(c, h.pull(c, "Orders", 0, 2, extra...))
				if resp.Code != tc.wantCode || !strings.Contains(resp.Remark, tc.wantInErr) {
					t.Errorf("sysFlag %s: code %d %q, want code %d saying %q", extra[1], resp.Code, resp.Remark, tc.wantCode, tc.wantInErr)
				}
				if next := resp.Ext("nextBeginOffset"); next != "2" || len(resp.Body) != 0 {
					t.Errorf("sysFlag %s: nextBeginOffset %s with %d body bytes, want 2 and none", extra[1], next, len(resp.Body))
				}
			}
			// Nothing stored: not found, or (a young queue, the new-group rule) offset 0.
			if q := h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset, offsetExt("cg", "0"), nil)); q.Code != codec.QueryNotFound &&
				(q.Code != codec.Success || q.Ext("offset") != "0") {
				t.Errorf("a refused pull committed the group's offset: code %d offset %s", q.Code, q.Ext("offset"))
			}
		})
	}
}

// A long-polling pull with a SQL92 subscription parked at the end of the queue is woken by a
// new message: one that does not match moves it past (PULL_RETRY_IMMEDIATELY), one that does
// is delivered.
func TestParkedSQL92Pull(t *testing.T) {
	h, p := brokerWithProps(t, testConfig(), sixMessages()...)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	park := func(offset int64) int32 {
		return h.pull(c, "Orders", 0, offset, "sysFlag", "6", "suspendTimeoutMillis", "20000",
			"expressionType", "SQL92", "subscription", "a > 10")
	}
	op := park(6)
	if resp := h.answer(c, op); resp != nil {
		t.Fatalf("pull at the end was answered at once: code %d", resp.Code)
	}
	h.send(p, "Orders", 0, "6", map[string]string{"a": "7"})
	h.syncAll()
	resp := h.mustAnswer(c, op)
	if resp.Code != codec.PullRetryImmediately || resp.Ext("nextBeginOffset") != "7" {
		t.Fatalf("woken by a non-matching message: code %d next %s, want 20 and 7", resp.Code, resp.Ext("nextBeginOffset"))
	}
	op = park(7)
	h.send(p, "Orders", 0, "7", map[string]string{"a": "11"})
	h.syncAll()
	resp = h.mustAnswer(c, op)
	if got := bodies(decodeBody(t, resp.Body)); resp.Code != codec.Success || !slices.Equal(got, []string{"7"}) || resp.Ext("nextBeginOffset") != "8" {
		t.Fatalf("woken by a matching message: code %d %v next %s", resp.Code, got, resp.Ext("nextBeginOffset"))
	}
}

// CHECK_CLIENT_CONFIG, which Java consumers send before starting with a SQL92 selector, is
// answered as Java answers it.
func TestCheckClientConfig(t *testing.T) {
	off := testConfig()
	off.EnablePropertyFilter = false
	check := func(exprType, expr string) []byte {
		b, _ := json.Marshal(map[string]any{"clientId": "c1", "group": "cg",
			"subscriptionData": map[string]any{"topic": "Orders", "subString": expr, "expressionType": exprType}})
		return b
	}
	for _, tc := range []struct {
		cfg      Config
		body     []byte
		wantCode int16
	}{
		{testConfig(), check("SQL92", "a > 3"), codec.Success},
		{testConfig(), check("TAG", "TagA || TagB"), codec.Success},
		{testConfig(), check("SQL92", "a >"), codec.SubscriptionParseFailed},
		{off, check("SQL92", "a > 3"), codec.SystemError},
		{off, check("TAG", "*"), codec.Success},
		{testConfig(), nil, codec.Success},
		{testConfig(), []byte("{"), codec.SystemError},
	} {
		h := startBroker(t, tc.cfg, nil)
		c := h.env.accept(h.b, "127.0.9.8:50001")
		if resp := h.mustAnswer(c, h.request(c, codec.ReqCheckClientConfig, nil, tc.body)); resp.Code != tc.wantCode {
			t.Errorf("%s (filter on: %v): code %d %q, want %d", tc.body, tc.cfg.EnablePropertyFilter, resp.Code, resp.Remark, tc.wantCode)
		}
	}
}

// The official Go client's lite-pull consumer sends its expression in the pull with type TAG
// whatever its selector; when the group's heartbeat registered that expression as SQL92, the
// pull is filtered as SQL92. Another expression in the pull is taken as it says.
func TestPullTagLabelledSQL92(t *testing.T) {
	h, _ := brokerWithProps(t, testConfig(), sixMessages()...)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, sqlHeartbeat("c1", "cg", "SQL92", "a > 4")))
	resp := h.mustAnswer(c, h.pull(c, "Orders", 0, 0, "sysFlag", "6", "expressionType", "TAG", "subscription", "a > 4"))
	if got := bodies(decodeBody(t, resp.Body)); resp.Code != codec.Success || !slices.Equal(got, []string{"4", "5"}) {
		t.Errorf("TAG-labelled registered SQL92 expression: code %d %v, want the messages with a > 4", resp.Code, got)
	}
	resp = h.mustAnswer(c, h.pull(c, "Orders", 0, 0, "sysFlag", "6", "expressionType", "TAG", "subscription", "TagB"))
	if got := bodies(decodeBody(t, resp.Body)); resp.Code != codec.Success || !slices.Equal(got, []string{"1", "3", "5"}) {
		t.Errorf("a tag expression: code %d %v, want the TagB messages", resp.Code, got)
	}
}

// A pull without its subscription (sysFlag bit 2 clear, as Java's push consumer sends by
// default) before the group's heartbeat has told this broker the subscription (at start, or
// after a restart of the broker) is refused with SUBSCRIPTION_NOT_EXIST, as Java's
// PullMessageProcessor refuses it, not served unfiltered: a consumer with a SQL92 selector was
// given every message (the simulator's SQL92 flow found it). Once the heartbeat has arrived,
// the same pull is filtered.
func TestPullWithoutSubscriptionBeforeHeartbeat(t *testing.T) {
	h, _ := brokerWithProps(t, testConfig(), sixMessages()...)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	pull := func() *codec.Command {
		return h.mustAnswer(c, h.pull(c, "Orders", 0, 0, "sysFlag", "0", "subscription", "", "expressionType", "SQL92"))
	}
	if resp := pull(); resp.Code != codec.SubscriptionNotExist || resp.Remark != "the consumer's group info not exist" || len(resp.Body) != 0 {
		t.Errorf("no heartbeat yet: code %d %q, %d body bytes; want %d, the group info not exist, nothing", resp.Code, resp.Remark, len(resp.Body), codec.SubscriptionNotExist)
	}
	other, _ := json.Marshal(map[string]any{"clientID": "c1", "consumerDataSet": []any{map[string]any{
		"groupName": "cg", "messageModel": "CLUSTERING",
		"subscriptionDataSet": []any{map[string]any{"topic": "Other", "subString": "*"}}}}})
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, other))
	if resp := pull(); resp.Code != codec.SubscriptionNotExist || resp.Remark != "the consumer's subscription not exist" {
		t.Errorf("group known, topic not subscribed: code %d %q; want %d, the subscription not exist", resp.Code, resp.Remark, codec.SubscriptionNotExist)
	}
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, sqlHeartbeat("c1", "cg", "SQL92", "a > 3")))
	if resp := pull(); resp.Code != codec.Success || !slices.Equal(bodies(decodeBody(t, resp.Body)), []string{"3", "4", "5"}) {
		t.Errorf("after the heartbeat: code %d %q, want the messages with a > 3", resp.Code, resp.Remark)
	}
}
