package acl

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

const checkFile = `
globalWhiteRemoteAddresses:
  - 10.9.*.*
accounts:
  - accessKey: producer1
    secretKey: producerSecret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - Orders=PUB
      - Audit=DENY
  - accessKey: consumer1
    secretKey: consumerSecret
    defaultTopicPerm: SUB
    defaultGroupPerm: DENY
    topicPerms:
      - Audit=DENY
    groupPerms:
      - billing=SUB
  - accessKey: trusted1
    secretKey: trustedSecret
    whiteRemoteAddress: 192.168.7.*
    defaultTopicPerm: DENY
  - accessKey: admin123
    secretKey: adminSecret
    admin: true
  - accessKey: scopedAdmin
    secretKey: scopedSecret
    admin: true
    topicPerms:
      - Orders=SUB
`

func mustPolicy(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signedReq is a request of code signed as the official clients sign it.
func signedReq(code int16, ext map[string]string, body []byte, ak, sk string) *codec.Command {
	req := codec.NewRequest(code, ext, body)
	return Credentials{ak, sk}.Sign(req)
}

func heartbeat(group string, topics ...string) []byte {
	type sub struct {
		Topic string `json:"topic"`
	}
	type cd struct {
		GroupName           string `json:"groupName"`
		SubscriptionDataSet []sub  `json:"subscriptionDataSet"`
	}
	hb := struct {
		ClientID        string `json:"clientID"`
		ConsumerDataSet []cd   `json:"consumerDataSet"`
	}{ClientID: "c1"}
	if group != "" {
		c := cd{GroupName: group}
		for _, tp := range topics {
			c.SubscriptionDataSet = append(c.SubscriptionDataSet, sub{tp})
		}
		hb.ConsumerDataSet = append(hb.ConsumerDataSet, c)
	}
	b, _ := json.Marshal(hb)
	return b
}

func TestCheck(t *testing.T) {
	p := mustPolicy(t, checkFile)
	const remote = "127.0.0.1:50000"
	sendV2 := func(topic string) map[string]string { return map[string]string{"a": "pg", "b": topic, "e": "0"} }
	pull := func(topic, group string) map[string]string {
		return map[string]string{"consumerGroup": group, "topic": topic, "queueId": "0", "queueOffset": "0"}
	}
	for _, tc := range []struct {
		name   string
		remote string
		req    *codec.Command
		refuse string // "" when allowed
	}{
		{"send with PUB", remote, signedReq(codec.ReqSendMessageV2, sendV2("Orders"), []byte("x"), "producer1", "producerSecret"), ""},
		{"send without PUB", remote, signedReq(codec.ReqSendMessageV2, sendV2("Other"), []byte("x"), "producer1", "producerSecret"),
			"lacks PUB on topic:Other"},
		{"send to a denied topic", remote, signedReq(codec.ReqSendMessage, map[string]string{"topic": "Audit", "queueId": "0"}, nil, "producer1", "producerSecret"),
			"lacks PUB on topic:Audit"},
		{"batch send checked too", remote, signedReq(codec.ReqSendBatchMessage, sendV2("Other"), nil, "producer1", "producerSecret"),
			"lacks PUB on topic:Other"},
		{"send to a retry topic needs SUB on the group", remote,
			signedReq(codec.ReqSendMessageV2, sendV2("%RETRY%billing"), nil, "producer1", "producerSecret"), "lacks SUB on group:billing"},
		{"retry topic send with group SUB", remote,
			signedReq(codec.ReqSendMessageV2, sendV2("%RETRY%billing"), nil, "consumer1", "consumerSecret"), ""},
		{"wrong secret", remote, signedReq(codec.ReqSendMessageV2, sendV2("Orders"), nil, "producer1", "wrongSecret"),
			"signature check failed for accessKey=producer1"},
		{"unknown account", remote, signedReq(codec.ReqSendMessageV2, sendV2("Orders"), nil, "stranger", "whatever1"),
			"no ACL account stranger"},
		{"unsigned", remote, codec.NewRequest(codec.ReqSendMessageV2, sendV2("Orders"), nil), "not signed"},
		{"body tampered", remote, func() *codec.Command {
			r := signedReq(codec.ReqSendMessageV2, sendV2("Orders"), []byte("x"), "producer1", "producerSecret")
			r.Body = []byte("y")
			return r
		}(), "signature check failed"},
		{"pull with SUB on both", remote, signedReq(codec.ReqPullMessage, pull("Orders", "billing"), nil, "consumer1", "consumerSecret"), ""},
		{"pull without SUB on the group", remote, signedReq(codec.ReqPullMessage, pull("Orders", "other"), nil, "consumer1", "consumerSecret"),
			"lacks SUB on group:other"},
		{"pull without SUB on the topic", remote, signedReq(codec.ReqPullMessage, pull("Audit", "billing"), nil, "consumer1", "consumerSecret"),
			"lacks SUB on topic:Audit"},
		{"pull a retry topic", remote, signedReq(codec.ReqPullMessage, pull("%RETRY%billing", "billing"), nil, "consumer1", "consumerSecret"), ""},
		{"producer cannot pull", remote, signedReq(codec.ReqPullMessage, pull("Orders", "billing"), nil, "producer1", "producerSecret"),
			"lacks SUB on topic:Orders"},
		{"commit offset", remote, signedReq(codec.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": "billing", "topic": "Orders",
			"queueId": "0", "commitOffset": "3"}, nil, "consumer1", "consumerSecret"), ""},
		{"commit offset for another group", remote, signedReq(codec.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": "x", "topic": "Orders",
			"queueId": "0", "commitOffset": "3"}, nil, "consumer1", "consumerSecret"), "lacks SUB on group:x"},
		{"query offset", remote, signedReq(codec.ReqQueryConsumerOffset, map[string]string{"consumerGroup": "x", "topic": "Orders", "queueId": "0"},
			nil, "consumer1", "consumerSecret"), "lacks SUB on group:x"},
		{"max offset", remote, signedReq(codec.ReqGetMaxOffset, map[string]string{"topic": "Audit", "queueId": "0"}, nil, "consumer1", "consumerSecret"),
			"lacks SUB on topic:Audit"},
		{"consumer heartbeat", remote, signedReq(codec.ReqHeartBeat, nil, heartbeat("billing", "Orders", "%RETRY%billing"), "consumer1", "consumerSecret"), ""},
		{"heartbeat for another group", remote, signedReq(codec.ReqHeartBeat, nil, heartbeat("x", "Orders"), "consumer1", "consumerSecret"),
			"lacks SUB on group:x"},
		{"heartbeat subscribing to a denied topic", remote, signedReq(codec.ReqHeartBeat, nil, heartbeat("billing", "Audit"), "consumer1", "consumerSecret"),
			"lacks SUB on topic:Audit"},
		{"producer heartbeat", remote, signedReq(codec.ReqHeartBeat, nil, heartbeat(""), "producer1", "producerSecret"), ""},
		{"bad heartbeat body", remote, signedReq(codec.ReqHeartBeat, nil, []byte("{"), "consumer1", "consumerSecret"), "cannot tell what it touches"},
		{"lock", remote, signedReq(codec.ReqLockBatchMQ, nil, []byte(`{"consumerGroup":"x","clientId":"c"}`), "consumer1", "consumerSecret"),
			"lacks SUB on group:x"},
		{"send back", remote, signedReq(codec.ReqConsumerSendMsgBack, map[string]string{"group": "billing", "offset": "1"}, nil, "consumer1", "consumerSecret"), ""},
		{"consumer list", remote, signedReq(codec.ReqGetConsumerListByGroup, map[string]string{"consumerGroup": "x"}, nil, "consumer1", "consumerSecret"),
			"lacks SUB on group:x"},
		{"create topic needs admin", remote, signedReq(codec.ReqUpdateAndCreateTopic, map[string]string{"topic": "T"}, nil, "producer1", "producerSecret"),
			"needs an admin account"},
		{"create topic as admin", remote, signedReq(codec.ReqUpdateAndCreateTopic, map[string]string{"topic": "T"}, nil, "admin123", "adminSecret"), ""},
		{"delete topic needs admin", remote, signedReq(codec.ReqDeleteTopicInBroker, map[string]string{"topic": "T"}, nil, "consumer1", "consumerSecret"),
			"DELETE_TOPIC_IN_BROKER (215)"},
		{"reset offsets needs admin", remote, signedReq(212, nil, nil, "consumer1", "consumerSecret"), "RESET_CONSUMER_OFFSET_IN_BROKER"},
		{"update broker config needs admin", remote, signedReq(25, nil, nil, "consumer1", "consumerSecret"), "needs an admin account"},
		{"a code no rule lists is admin-only", remote, signedReq(3999, nil, nil, "consumer1", "consumerSecret"), "request code 3999"},
		{"register broker needs admin", remote, signedReq(codec.ReqRegisterBroker, nil, nil, "producer1", "producerSecret"), "REGISTER_BROKER"},
		{"unsigned broker registration", remote, codec.NewRequest(codec.ReqRegisterBroker, nil, nil), "not signed"},
		{"replication needs admin", remote, signedReq(codec.ReqReplicaFetch, nil, nil, "consumer1", "consumerSecret"), "needs an admin account"},
		{"controller raft needs admin", remote, signedReq(codec.ReqControllerRaftMessage, nil, nil, "consumer1", "consumerSecret"), "needs an admin account"},
		{"admin with no explicit permissions touches anything", remote,
			signedReq(codec.ReqPullMessage, pull("Audit", "any"), nil, "admin123", "adminSecret"), ""},
		{"admin with explicit permissions is bound by them", remote,
			signedReq(codec.ReqSendMessageV2, sendV2("Orders"), nil, "scopedAdmin", "scopedSecret"), "lacks PUB on topic:Orders"},
		{"route query is open", remote, codec.NewRequest(codec.ReqGetRouteInfoByTopic, map[string]string{"topic": "T"}, nil), ""},
		{"global whitelist skips every check", "10.9.1.2:4000", codec.NewRequest(codec.ReqDeleteTopicInBroker, nil, nil), ""},
		{"account whitelist skips signature and permissions", "192.168.7.9:4000",
			signedReq(codec.ReqSendMessageV2, sendV2("Other"), nil, "trusted1", "wrongSecret"), ""},
		{"outside the account whitelist the signature counts", "192.168.8.9:4000",
			signedReq(codec.ReqSendMessageV2, sendV2("Other"), nil, "trusted1", "wrongSecret"), "signature check failed"},
		{"outside the account whitelist permissions count", "192.168.8.9:4000",
			signedReq(codec.ReqSendMessageV2, sendV2("Other"), nil, "trusted1", "trustedSecret"), "lacks PUB on topic:Other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.remote, tc.req)
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("got %v, want a refusal containing %q", err, tc.refuse)
			}
			for _, secret := range []string{"producerSecret", "consumerSecret", "adminSecret", "trustedSecret", "wrongSecret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("refusal %q shows a secret", err)
				}
			}
		})
	}
}

// The codes the official clients need for producing and consuming are not admin-only; the
// codes that change or expose the broker are.
func TestRequirements(t *testing.T) {
	for code, want := range map[int16]string{
		codec.ReqSendMessageV2: "signed", codec.ReqPullMessage: "signed", codec.ReqHeartBeat: "signed",
		codec.ReqUpdateConsumerOffset: "signed", codec.ReqGetRouteInfoByTopic: "open",
		codec.ReqUpdateAndCreateTopic: "admin", codec.ReqDeleteTopicInBroker: "admin", codec.ReqGetAllTopicConfig: "admin",
		codec.ReqViewMessageByID: "admin", codec.ReqRegisterBroker: "admin", codec.ReqUnregisterBroker: "admin",
		codec.ReqDeleteTopicInNamesrv: "admin", codec.ReqReplicaHandshake: "admin", codec.ReqControllerBrokerHeartbeat: "admin",
	} {
		if got := Requirement(int32(code)); got != want {
			t.Errorf("code %d (%s): %s, want %s", code, codec.RequestCodeName(int32(code)), got, want)
		}
	}
}

func TestGuardAnswersNoPermission(t *testing.T) {
	g := NewGuard(mustPolicy(t, checkFile), slog.New(slog.NewTextHandler(io.Discard, nil)))
	req := signedReq(codec.ReqUpdateAndCreateTopic, map[string]string{"topic": "T"}, nil, "producer1", "producerSecret")
	req.Opaque = 77
	resp := g.Admit("127.0.0.1:1", req)
	if resp == nil || resp.Code != codec.NoPermission || resp.Opaque != 77 || !resp.IsResponse() ||
		!strings.Contains(resp.Remark, "needs an admin account") {
		t.Fatalf("answer %+v", resp)
	}
	if g.Refused() != 1 {
		t.Errorf("refused %d", g.Refused())
	}
	if g.Admit("127.0.0.1:1", signedReq(codec.ReqUpdateAndCreateTopic, nil, nil, "admin123", "adminSecret")) != nil {
		t.Error("admin refused")
	}
}

// Watch picks up a change to the file, keeps the policy in force when the file turns bad, and
// picks up the next good version.
func TestWatchReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	write := func(s string) { // replaced whole, as docs/security.md advises
		if err := os.WriteFile(path+".new", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	const v1 = "accounts:\n  - accessKey: account1\n    secretKey: secret123\n    defaultTopicPerm: DENY\n"
	write(v1)
	p, data, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stop := make(chan struct{})
	defer close(stop)
	Watch(g, path, data, 5*time.Millisecond, stop)
	send := func() *codec.Command {
		return signedReq(codec.ReqSendMessageV2, map[string]string{"b": "T", "e": "0"}, nil, "account1", "secret123")
	}
	if g.Admit("127.0.0.1:1", send()) == nil {
		t.Fatal("allowed before the grant")
	}
	wait := func(what string, allowed bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for (g.Admit("127.0.0.1:1", send()) == nil) != allowed {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write(strings.Replace(v1, "DENY", "PUB", 1))
	wait("the grant", true)
	write("accounts: [") // a half-written edit: the grant stays
	time.Sleep(50 * time.Millisecond)
	if g.Admit("127.0.0.1:1", send()) != nil {
		t.Fatal("a bad file changed the policy")
	}
	write(v1)
	wait("the revocation", false)
}

// BenchmarkCheckSend: the cost ACL adds to a signed send (a typical V2 header, 1 KiB body).
func BenchmarkCheckSend(b *testing.B) {
	p := mustPolicy(b, checkFile)
	ext := map[string]string{"a": "pg", "b": "Orders", "c": "TBW102", "d": "4", "e": "1", "f": "0", "g": "1700000000000",
		"h": "0", "i": "UNIQ_KEY\x01AC11000100002A9F0000000000000000\x02WAIT\x01true", "j": "0", "k": "false", "m": "false", "n": "broker-a"}
	req := signedReq(codec.ReqSendMessageV2, ext, make([]byte, 1024), "producer1", "producerSecret")
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check("127.0.0.1:1", req); err != nil {
			b.Fatal(err)
		}
	}
}
