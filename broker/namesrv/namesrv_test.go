package namesrv

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/nodetest"
	"github.com/sluicemq/sluice/broker/route"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// nameServer is a started name server on a nodetest.Env with helpers to speak to it.
type nameServer struct {
	t      *testing.T
	env    *nodetest.Env
	s      *Server
	opaque int32
}

func startNameServer(t *testing.T) *nameServer {
	env := nodetest.New(t, nil)
	t.Cleanup(func() {
		if d := env.Dials(); len(d) != 0 {
			t.Errorf("a name server dials nobody; it dialled %v", d)
		}
	})
	s := New(env, DefaultConfig())
	env.Start(s)
	return &nameServer{t: t, env: env, s: s}
}

// call delivers a request on c and returns the one response it got.
func (n *nameServer) call(c node.ConnID, code int16, ext map[string]string, body []byte) *codec.Command {
	n.t.Helper()
	n.opaque++
	req := codec.NewRequest(code, ext, body)
	req.Opaque = n.opaque
	before := len(n.env.Sent())
	n.env.Frame(n.s, c, req)
	if len(n.env.Sent()) != before+1 {
		n.t.Fatalf("request code %d got %d responses, want 1", code, len(n.env.Sent())-before)
	}
	resp := n.env.Sent()[before]
	if resp.Conn != c || !resp.Cmd.IsResponse() || resp.Cmd.Opaque != req.Opaque {
		n.t.Fatalf("response %+v on conn %d does not answer request %d on conn %d", resp.Cmd, resp.Conn, req.Opaque, c)
	}
	return resp.Cmd
}

// register is REGISTER_BROKER for one broker with topics given as name -> queue count.
func (n *nameServer) register(c node.ConnID, name, addr string, id string, topics map[string]int32) *codec.Command {
	body := route.RegisterBody{TopicConfigTable: map[string]route.TopicConfig{}}
	for t, q := range topics {
		body.TopicConfigTable[t] = route.TopicConfig{TopicName: t, ReadQueueNums: q, WriteQueueNums: q, Perm: route.PermRead | route.PermWrite}
	}
	b, _ := json.Marshal(body)
	return n.call(c, codec.ReqRegisterBroker, map[string]string{
		"brokerName": name, "brokerAddr": addr, "clusterName": "DefaultCluster", "brokerId": id, "haServerAddr": addr,
	}, b)
}

func (n *nameServer) route(topic string) *codec.Command {
	return n.call(99, codec.ReqGetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
}

// Two broker groups (one with a slave) register a topic; the route a client gets back is the
// TopicRouteData JSON the Go client parses: queueDatas present, brokerAddrs keyed by broker id
// with no whitespace anywhere, groups sorted by name. The whole body is a golden file.
func TestRouteInfoHasTheShapeClientsParse(t *testing.T) {
	n := startNameServer(t)
	n.register(1, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Orders": 8})
	n.register(2, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4, "Payments": 2})
	n.register(3, "broker-a", "127.0.0.3:10911", "1", map[string]int32{"Orders": 4})

	resp := n.route("Orders")
	if resp.Code != codec.Success {
		t.Fatalf("route of Orders: code %d (%s)", resp.Code, resp.Remark)
	}
	golden(t, "route_orders.json", resp.Body)

	body := string(resp.Body)
	for _, want := range []string{
		`"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}`,
		`"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.3:10911"}`,
		`"brokerAddrs":{"0":"127.0.0.2:10911"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("route body lacks %s:\n%s", want, body)
		}
	}
	if strings.ContainsAny(body, " \n\t") {
		t.Errorf("route body has whitespace, which the Go client's hand parser of brokerAddrs turns into bad addresses:\n%s", body)
	}
	rd, err := route.DecodeTopicRouteData(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if addr, ok := rd.MasterAddr("broker-a"); !ok || addr != "127.0.0.1:10911" {
		t.Errorf("broker-a master %q (%v)", addr, ok)
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(append([]byte(nil), got...), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSuffix(want, []byte("\n")), got) {
		t.Errorf("%s differs from the golden file (run go test -update and review the diff):\ngot  %s\nwant %s", name, got, want)
	}
}

// A topic nobody registered is 17 TOPIC_NOT_EXIST, which sends producers to TBW102.
func TestUnknownTopicIsTopicNotExist(t *testing.T) {
	n := startNameServer(t)
	n.register(1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4})
	resp := n.route("Nope")
	if resp.Code != codec.TopicNotExist || len(resp.Body) != 0 || !strings.Contains(resp.Remark, "Nope") {
		t.Fatalf("route of an unknown topic: code %d remark %q body %q, want 17 naming the topic", resp.Code, resp.Remark, resp.Body)
	}
}

// A broker whose connection closes drops out of routes at once; other brokers stay.
func TestClosedBrokerConnectionDropsItFromRoutes(t *testing.T) {
	n := startNameServer(t)
	n.register(1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4})
	n.register(2, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Orders": 4, "OnlyB": 1})

	n.env.ConnClosed(n.s, 2)
	if resp := n.route("OnlyB"); resp.Code != codec.TopicNotExist {
		t.Fatalf("route of a topic only the closed broker had: code %d, want 17", resp.Code)
	}
	resp := n.route("Orders")
	rd, err := route.DecodeTopicRouteData(resp.Body)
	if resp.Code != codec.Success || err != nil || len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerName != "broker-a" {
		t.Fatalf("route of Orders after broker-b's close: code %d %s", resp.Code, resp.Body)
	}
	// broker-a re-registers over a new connection; the close of its old one must not drop it.
	n.register(7, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4})
	n.env.ConnClosed(n.s, 1)
	if resp := n.route("Orders"); resp.Code != codec.Success {
		t.Fatalf("the close of a broker's previous connection dropped it: code %d", resp.Code)
	}
	// Closing a connection no broker registered on changes nothing.
	n.env.ConnClosed(n.s, 42)
	if resp := n.route("Orders"); resp.Code != codec.Success {
		t.Fatalf("an unrelated close dropped broker-a: code %d", resp.Code)
	}
}

// A broker that stops re-registering is dropped by the first scan after BrokerExpiry has
// passed; one that keeps re-registering stays forever.
func TestSilentBrokerExpires(t *testing.T) {
	n := startNameServer(t)
	cfg := DefaultConfig()
	n.register(1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Silent": 4})
	n.register(2, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Chatty": 4})

	for elapsed := time.Duration(0); elapsed < cfg.BrokerExpiry; elapsed += 30 * time.Second {
		n.env.Advance(n.s, 30*time.Second)
		n.register(2, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Chatty": 4})
	}
	// Exactly BrokerExpiry has passed: the scan at that instant keeps it (silence must exceed it).
	if resp := n.route("Silent"); resp.Code != codec.Success {
		t.Fatalf("broker-a dropped after exactly BrokerExpiry: code %d", resp.Code)
	}
	n.env.Advance(n.s, cfg.ScanInterval)
	if resp := n.route("Silent"); resp.Code != codec.TopicNotExist {
		t.Fatalf("broker-a still routed %v after its last registration: code %d", cfg.BrokerExpiry+cfg.ScanInterval, resp.Code)
	}
	if resp := n.route("Chatty"); resp.Code != codec.Success {
		t.Fatalf("a broker that kept re-registering expired: code %d", resp.Code)
	}
}

// GET_ALL_TOPIC_LIST_FROM_NAMESERVER lists every registered topic once, sorted, in the body
// shape the admin client decodes.
func TestAllTopicList(t *testing.T) {
	n := startNameServer(t)
	n.register(1, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Orders": 4, "TBW102": 8})
	n.register(2, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4, "Audit": 1})
	resp := n.call(99, codec.ReqGetAllTopicListFromNS, nil, nil)
	if resp.Code != codec.Success {
		t.Fatalf("code %d", resp.Code)
	}
	if got, want := string(resp.Body), `{"topicList":["Audit","Orders","TBW102"],"brokerAddr":null}`; got != want {
		t.Fatalf("topic list %s, want %s", got, want)
	}
}

// Requests the name server does not serve get 3 REQUEST_CODE_NOT_SUPPORTED; malformed
// registrations get 1; responses sent to it are ignored.
func TestRequestsItDoesNotServe(t *testing.T) {
	n := startNameServer(t)
	for _, code := range []int16{codec.ReqSendMessage, codec.ReqPullMessage, 999} {
		if resp := n.call(5, code, nil, nil); resp.Code != codec.RequestCodeNotSupported || resp.Remark == "" {
			t.Errorf("code %d: answered %d %q, want 3 with a remark", code, resp.Code, resp.Remark)
		}
	}
	for _, ext := range []map[string]string{
		{"brokerName": "broker-a", "brokerId": "0"},
		{"brokerAddr": "127.0.0.1:10911", "brokerId": "0"},
		{"brokerAddr": "127.0.0.1:10911", "brokerName": "broker-a", "brokerId": "master"},
	} {
		if resp := n.call(5, codec.ReqRegisterBroker, ext, nil); resp.Code != codec.SystemError {
			t.Errorf("register %v: code %d, want 1", ext, resp.Code)
		}
	}
	if resp := n.call(5, codec.ReqRegisterBroker, map[string]string{"brokerAddr": "127.0.0.1:10911", "brokerName": "a", "brokerId": "0"}, []byte("{")); resp.Code != codec.SystemError {
		t.Errorf("register with a broken body: code %d, want 1", resp.Code)
	}
	before := len(n.env.Sent())
	n.env.Frame(n.s, 5, &codec.Command{Code: codec.Success, Flag: codec.FlagResponse, Opaque: 7})
	if len(n.env.Sent()) != before {
		t.Fatal("the name server answered a response")
	}
}

// DELETE_TOPIC_IN_NAMESRV takes a topic out of routes and the topic list at once, for every
// broker that registered it; other topics stay; a broker that registers it again brings it back.
func TestDeleteTopicInNamesrv(t *testing.T) {
	n := startNameServer(t)
	n.register(1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4, "Audit": 1})
	n.register(2, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Orders": 4})

	if resp := n.call(99, codec.ReqDeleteTopicInNamesrv, map[string]string{"topic": "Orders"}, nil); resp.Code != codec.Success {
		t.Fatalf("delete: code %d %q", resp.Code, resp.Remark)
	}
	if resp := n.route("Orders"); resp.Code != codec.TopicNotExist {
		t.Fatalf("route of a deleted topic: code %d, want 17", resp.Code)
	}
	if resp := n.route("Audit"); resp.Code != codec.Success {
		t.Fatalf("route of another topic after the delete: code %d", resp.Code)
	}
	list := n.call(99, codec.ReqGetAllTopicListFromNS, nil, nil)
	if got, want := string(list.Body), `{"topicList":["Audit"],"brokerAddr":null}`; got != want {
		t.Fatalf("topic list after delete %s, want %s", got, want)
	}
	// Deleting a topic nobody has is harmless; a request without a topic is an error.
	if resp := n.call(99, codec.ReqDeleteTopicInNamesrv, map[string]string{"topic": "Nope"}, nil); resp.Code != codec.Success {
		t.Fatalf("delete of an unknown topic: code %d", resp.Code)
	}
	if resp := n.call(99, codec.ReqDeleteTopicInNamesrv, nil, nil); resp.Code != codec.SystemError {
		t.Fatalf("delete without a topic: code %d, want 1", resp.Code)
	}
	n.register(2, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Orders": 2})
	resp := n.route("Orders")
	rd, err := route.DecodeTopicRouteData(resp.Body)
	if resp.Code != codec.Success || err != nil || len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerName != "broker-b" || rd.QueueDatas[0].WriteQueueNums != 2 {
		t.Fatalf("route after broker-b registered Orders again: code %d %s", resp.Code, resp.Body)
	}
	// broker-a's next heartbeat carries the very bytes it registered before the delete: the
	// name server must not take them for a registration it has already applied.
	n.register(1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4, "Audit": 1})
	if rd, _ := route.DecodeTopicRouteData(n.route("Orders").Body); rd == nil || len(rd.BrokerDatas) != 2 {
		t.Fatalf("route after broker-a registered the same topics again: %+v, want both groups", rd)
	}
}

// The name server keeps the last route body it encoded for a topic; every change a route is
// built from must show in the next route all the same: a new broker, a known broker under
// another id or group with the very same registration bytes, a new topic table, a closed
// connection, an unregistration. Each route is compared with one a fresh name server builds
// from the same registrations.
func TestRoutesFollowEveryChange(t *testing.T) {
	n := startNameServer(t)
	type reg struct {
		c              node.ConnID
		name, addr, id string
		topics         map[string]int32
	}
	var live []reg
	check := func(step string) {
		t.Helper()
		fresh := startNameServer(t)
		for _, r := range live {
			fresh.register(r.c, r.name, r.addr, r.id, r.topics)
		}
		got, want := n.route("Orders"), fresh.route("Orders")
		if got.Code != want.Code || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("%s: route %d %s, want %d %s", step, got.Code, got.Body, want.Code, want.Body)
		}
	}
	apply := func(step string, r reg) {
		t.Helper()
		if resp := n.register(r.c, r.name, r.addr, r.id, r.topics); resp.Code != codec.Success {
			t.Fatalf("%s: register: %d %s", step, resp.Code, resp.Remark)
		}
		live = slices.DeleteFunc(live, func(o reg) bool { return o.addr == r.addr })
		live = append(live, r)
		check(step)
	}
	check("nobody registered")
	apply("a master", reg{1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4}})
	check("asked again")
	apply("a slave", reg{2, "broker-a", "127.0.0.2:10911", "1", map[string]int32{"Orders": 4}})
	apply("the slave under another id, same bytes", reg{2, "broker-a", "127.0.0.2:10911", "2", map[string]int32{"Orders": 4}})
	apply("the slave in another group, same bytes", reg{2, "broker-b", "127.0.0.2:10911", "2", map[string]int32{"Orders": 4}})
	apply("more queues", reg{1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 8}})
	n.s.OnConnClosed(2)
	live = slices.DeleteFunc(live, func(r reg) bool { return r.c == 2 })
	check("the slave's connection closed")
	n.call(1, codec.ReqUnregisterBroker, map[string]string{"brokerAddr": "127.0.0.1:10911"}, nil)
	live = nil
	check("the master unregistered")
}
