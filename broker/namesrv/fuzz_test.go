package namesrv

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

// The name server's request surface under fuzzing: FuzzNameServerRequest feeds one request
// per input to a name server that routes two brokers, and checks what must hold whatever
// arrives.

type fuzzRequest struct {
	ext  map[string]string
	body []byte
}

func registerExt(name, addr, id string) map[string]string {
	return map[string]string{"brokerName": name, "brokerAddr": addr, "clusterName": "DefaultCluster", "brokerId": id,
		"haServerAddr": addr, "compressed": "false", "bodyCrc32": "0"}
}

func registerBody(topics map[string]int32) []byte {
	body := route.RegisterBody{TopicConfigTable: map[string]route.TopicConfig{}}
	for t, q := range topics {
		body.TopicConfigTable[t] = route.TopicConfig{TopicName: t, ReadQueueNums: q, WriteQueueNums: q, Perm: route.PermRead | route.PermWrite}
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzRequests holds a template for every request code the name server serves (and for the
// ones the official client or a Java broker sends that it may serve later).
// TestFuzzTemplatesCoverServedCodes fails when a served code has none: add one here when you
// teach OnFrame a new code.
func fuzzRequests() map[int16]fuzzRequest {
	return map[int16]fuzzRequest{
		codec.ReqRegisterBroker:        {registerExt("broker-b", "127.0.0.2:10911", "0"), registerBody(map[string]int32{"Orders": 8, "New": 2})},
		codec.ReqUnregisterBroker:      {registerExt("broker-a", "127.0.0.3:10911", "1"), nil},
		codec.ReqGetRouteInfoByTopic:   {map[string]string{"topic": "Orders"}, nil},
		codec.ReqGetAllTopicListFromNS: {nil, nil},
		codec.ReqGetBrokerClusterInfo:  {nil, nil},
		codec.ReqDeleteTopicInNamesrv:  {map[string]string{"topic": "Orders"}, nil},
		322:                            {registerExt("broker-a", "127.0.0.1:10911", "0"), []byte(`{}`)}, // QUERY_DATA_VERSION
	}
}

// readOnlyCodes never change what the name server routes.
var readOnlyCodes = map[int16]bool{codec.ReqGetRouteInfoByTopic: true, codec.ReqGetAllTopicListFromNS: true, codec.ReqGetBrokerClusterInfo: true, 322: true}

const (
	fuzzTemplateExt  = 1 << 0 // start from the template's ext fields (else from none)
	fuzzTemplateBody = 1 << 1 // send the template's body (else the fuzzed one)
	fuzzOneway       = 1 << 2 // set the oneway flag bit
	fuzzBrokerConn   = 1 << 3 // send on the connection broker-a registered over
)

// fuzzNameServer routes broker-a (a master on conn 1 and a slave on conn 3) with Orders and
// TBW102.
func fuzzNameServer(t *testing.T) *nameServer {
	n := startNameServer(t)
	topics := map[string]int32{"Orders": 4, "TBW102": 8}
	for _, r := range []struct {
		c        node.ConnID
		addr, id string
	}{{1, "127.0.0.1:10911", "0"}, {3, "127.0.0.3:10911", "1"}} {
		if resp := n.call(r.c, codec.ReqRegisterBroker, registerExt("broker-a", r.addr, r.id), registerBody(topics)); resp.Code != codec.Success {
			t.Fatalf("register %s: %d %s", r.addr, resp.Code, resp.Remark)
		}
	}
	return n
}

// snapshot copies what the name server routes.
func snapshot(s *Server) map[string]liveBroker {
	out := map[string]liveBroker{}
	for addr, b := range s.brokers {
		c := *b
		c.topics = maps.Clone(b.topics)
		out[addr] = c
	}
	return out
}

// checkRoute checks a GET_ROUTEINFO_BY_TOPIC answer is one the Go client can use.
func checkRoute(t *testing.T, topic string, resp *codec.Command) {
	t.Helper()
	if resp.Code != codec.Success {
		return
	}
	rd, err := route.DecodeTopicRouteData(resp.Body)
	if err != nil {
		t.Fatalf("route of %q does not decode: %v\n%s", topic, err, resp.Body)
	}
	if len(rd.QueueDatas) == 0 || len(rd.QueueDatas) != len(rd.BrokerDatas) {
		t.Fatalf("route of %q answered with %d queue datas for %d broker datas:\n%s", topic, len(rd.QueueDatas), len(rd.BrokerDatas), resp.Body)
	}
	for _, bd := range rd.BrokerDatas {
		if bd.BrokerAddrs == nil {
			t.Fatalf("route of %q without brokerAddrs for %s (the Go client's parser panics on it):\n%s", topic, bd.BrokerName, resp.Body)
		}
	}
}

// FuzzNameServerRequest delivers one request, its code and flags, ext fields and body chosen by
// the fuzzer, to a name server routing a broker group, and checks: it does not panic; it
// answers exactly once, with the request's opaque, on the request's connection (a oneway
// request may go unanswered); a refused request or a query leaves the routes as they were;
// every route it answers decodes as the Go client needs; and a broker it registers is routed
// for each topic it registered.
func FuzzNameServerRequest(f *testing.F) {
	templates := fuzzRequests()
	for _, code := range slices.Sorted(maps.Keys(templates)) {
		f.Add(code, uint8(fuzzTemplateExt|fuzzTemplateBody), "", []byte(nil))
		f.Add(code, uint8(fuzzTemplateExt|fuzzTemplateBody|fuzzBrokerConn), "", []byte(nil))
		f.Add(code, uint8(fuzzTemplateExt), "brokerId=x\ntopic", []byte("{"))
	}
	f.Add(codec.ReqRegisterBroker, uint8(fuzzTemplateExt|fuzzBrokerConn), "brokerAddr=127.0.0.1:10911\nbrokerId=-1",
		[]byte(`{"topicConfigTable":{"":{"readQueueNums":-4,"perm":255}}}`))
	f.Add(codec.ReqRegisterBroker, uint8(fuzzTemplateExt), "brokerName=a b\nbrokerAddr=[::1]:1,2", []byte(`{"topicConfigTable":null}`))
	f.Add(codec.ReqRegisterBroker, uint8(fuzzTemplateExt), "compressed=true", route.RegisterBody{TopicConfigTable: map[string]route.TopicConfig{"Z": {TopicName: "Z", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6}}}.EncodeCompressed())
	f.Add(codec.ReqGetRouteInfoByTopic, uint8(0), "topic=TBW102", []byte(nil))
	f.Add(int16(-7), uint8(fuzzOneway), "", []byte("x"))
	f.Fuzz(func(t *testing.T, code int16, flags uint8, edits string, body []byte) {
		n := fuzzNameServer(t)
		ext := map[string]string{}
		if flags&fuzzTemplateExt != 0 {
			maps.Copy(ext, templates[code].ext)
		}
		for _, line := range strings.Split(edits, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				ext[k] = v
			} else if line != "" {
				delete(ext, line)
			}
		}
		if flags&fuzzTemplateBody != 0 {
			body = templates[code].body
		}
		c := node.ConnID(5)
		if flags&fuzzBrokerConn != 0 {
			c = 1
		}
		before := snapshot(n.s)
		sentBefore := len(n.env.Sent())
		req := codec.NewRequest(code, ext, body)
		req.Opaque = 4242
		if flags&fuzzOneway != 0 {
			req.Flag |= codec.FlagOneway
		}
		n.s.OnFrame(c, req)

		sent := n.env.Sent()[sentBefore:]
		var resp *codec.Command
		for _, s := range sent {
			if s.Conn != c || !s.Cmd.IsResponse() || s.Cmd.Opaque != req.Opaque || resp != nil {
				t.Fatalf("request %d on conn %d: the name server sent %+v on conn %d (after %+v)", req.Opaque, c, s.Cmd, s.Conn, resp)
			}
			resp = s.Cmd
		}
		if resp == nil {
			if flags&fuzzOneway == 0 {
				t.Fatalf("request code %d with ext %q got no answer", code, ext)
			}
			return
		}
		if resp.Code != codec.Success || readOnlyCodes[code] {
			if diff := cmp.Diff(before, snapshot(n.s), cmp.AllowUnexported(liveBroker{})); diff != "" {
				t.Fatalf("request code %d answered %d %q changed the routes (-before +after):\n%s", code, resp.Code, resp.Remark, diff)
			}
		}
		if code == codec.ReqGetRouteInfoByTopic {
			checkRoute(t, ext["topic"], resp)
		}
		if code == codec.ReqRegisterBroker && resp.Code == codec.Success {
			decode := route.DecodeRegisterBody
			if strings.EqualFold(ext["compressed"], "true") {
				decode = route.DecodeCompressedRegisterBody
			}
			regd, err := decode(body)
			if err != nil {
				t.Fatalf("registration accepted with a body that does not decode: %v", err)
			}
			for _, topic := range slices.Sorted(maps.Keys(regd.TopicConfigTable)) {
				r := n.route(topic)
				checkRoute(t, topic, r)
				if !routes(r, ext["brokerName"], ext["brokerAddr"]) {
					t.Fatalf("topic %q registered by %s at %s: route %d %s", topic, ext["brokerName"], ext["brokerAddr"], r.Code, r.Body)
				}
			}
		}
	})
}

// routes reports whether a route answer names addr in broker group name.
func routes(resp *codec.Command, name, addr string) bool {
	rd, err := route.DecodeTopicRouteData(resp.Body)
	if resp.Code != codec.Success || err != nil {
		return false
	}
	for _, bd := range rd.BrokerDatas {
		if bd.BrokerName == name && slices.Contains(slices.Collect(maps.Values(bd.BrokerAddrs)), addr) {
			return true
		}
	}
	return false
}

// servedCodes probes a name server with an empty request of every code 0..1023 and returns
// those it does not refuse as unsupported.
func servedCodes(t *testing.T) []int16 {
	n := fuzzNameServer(t)
	var served []int16
	for code := int16(0); code < 1024; code++ {
		if r := n.call(5, code, nil, nil); r.Code != codec.RequestCodeNotSupported {
			served = append(served, code)
		}
	}
	return served
}

// Every code the name server serves has a template in fuzzRequests, and each template, as is,
// is accepted, so FuzzNameServerRequest starts from well-formed requests.
func TestFuzzTemplatesCoverServedCodes(t *testing.T) {
	served := servedCodes(t)
	templates := fuzzRequests()
	for _, code := range served {
		tmpl, ok := templates[code]
		if !ok {
			t.Errorf("the name server serves request code %d but FuzzNameServerRequest has no template for it: add one to fuzzRequests in broker/namesrv/fuzz_test.go", code)
			continue
		}
		n := fuzzNameServer(t)
		if resp := n.call(5, code, maps.Clone(tmpl.ext), tmpl.body); resp.Code != codec.Success {
			t.Errorf("template of code %d: answered %d %s; the fuzzer should start from a request the name server accepts", code, resp.Code, resp.Remark)
		}
	}
	for _, want := range []int16{codec.ReqRegisterBroker, codec.ReqGetRouteInfoByTopic, codec.ReqGetAllTopicListFromNS} {
		if !slices.Contains(served, want) {
			t.Errorf("the probe missed code %d, which the name server serves: served = %v", want, served)
		}
	}
}
