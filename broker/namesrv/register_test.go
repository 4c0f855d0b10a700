package namesrv

import (
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// A registration whose broker address the Go client could not parse back out of a route (it
// splits brokerAddrs on ',' and ':' by hand), or whose name is not valid UTF-8 (JSON would
// route a different name), is refused and changes nothing; good addresses of every form pass.
func TestRegisterChecksTheAddressAndName(t *testing.T) {
	cases := []struct {
		name, addr string
		wantErr    string // "" means accepted
	}{
		{"broker-a", "127.0.0.1:10911", ""},
		{"broker-a", "[::1]:10911", ""},
		{"broker-a", "broker-a.internal:10911", ""},
		{"broker-a", "127.0.0.1", "not host:port"},
		{"broker-a", ":10911", "not host:port"},
		{"broker-a", "127.0.0.1:0", "no port"},
		{"broker-a", "127.0.0.1:65536", "no port"},
		{"broker-a", "127.0.0.1:port", "no port"},
		{"broker-a", "127.0.0.1,127.0.0.2:10911", "character ','"},
		{"broker-a", " 127.0.0.1:10911", "character ' '"},
		{"broker-a", `127.0.0.1":10911`, `character '"'`},
		{"broker-a", "h\xff:10911", "character"},
		{"broker-\xff", "127.0.0.1:10911", "not valid UTF-8"},
	}
	for _, tc := range cases {
		n := startNameServer(t)
		resp := n.call(1, codec.ReqRegisterBroker, registerExt(tc.name, tc.addr, "0"), registerBody(map[string]int32{"Orders": 4}))
		if tc.wantErr == "" {
			if resp.Code != codec.Success {
				t.Errorf("register %q at %q: %d %s, want success", tc.name, tc.addr, resp.Code, resp.Remark)
			}
			continue
		}
		if resp.Code != codec.SystemError || !strings.Contains(resp.Remark, tc.wantErr) {
			t.Errorf("register %q at %q: %d %q, want 1 saying %q", tc.name, tc.addr, resp.Code, resp.Remark, tc.wantErr)
		}
		if len(n.s.brokers) != 0 {
			t.Errorf("register %q at %q was refused but the broker is routed", tc.name, tc.addr)
		}
	}
}

// A name server reads REGISTER_BROKER bodies in every form a broker sends: Java's
// RegisterBrokerBody (what Sluice brokers now write too), the flat table Sluice brokers wrote
// before, and a Java broker's compressed form (header compressed=true); the topics route the
// same either way. A body whose bodyCrc32 does not match is refused, as Java's checksum does.
func TestRegisterBodyForms(t *testing.T) {
	java := `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":1,"timestamp":1767225600000},` +
		`"topicConfigTable":{"Orders":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"Orders","topicSysFlag":0,"writeQueueNums":4}}}}`
	flat := `{"topicConfigTable":{"Orders":{"topicName":"Orders","readQueueNums":4,"writeQueueNums":4,"perm":6}}}`
	compressed := route.RegisterBody{TopicConfigTable: map[string]route.TopicConfig{
		"Orders": {TopicName: "Orders", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}}}.EncodeCompressed()
	cases := []struct {
		name    string
		ext     map[string]string
		body    []byte
		wantErr string
	}{
		{name: "Java's shape", body: []byte(java)},
		{name: "Java's shape with its CRC", ext: map[string]string{"compressed": "false", "bodyCrc32": strconv.Itoa(int(route.BodyCRC32([]byte(java))))}, body: []byte(java)},
		{name: "flat", body: []byte(flat)},
		{name: "compressed", ext: map[string]string{"compressed": "true", "bodyCrc32": strconv.Itoa(int(route.BodyCRC32(compressed)))}, body: compressed},
		{name: "compressed, True", ext: map[string]string{"compressed": "True"}, body: compressed},
		{name: "a CRC that does not match", ext: map[string]string{"bodyCrc32": "12345"}, body: []byte(java), wantErr: "crc32 not match"},
		{name: "JSON said to be compressed", ext: map[string]string{"compressed": "true"}, body: []byte(java), wantErr: "decode compressed register body"},
		{name: "compressed said to be JSON", body: compressed, wantErr: "decode register body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := startNameServer(t)
			ext := registerExt("broker-a", "127.0.0.1:10911", "0")
			maps.Copy(ext, tc.ext)
			resp := n.call(1, codec.ReqRegisterBroker, ext, tc.body)
			if tc.wantErr != "" {
				if resp.Code != codec.SystemError || !strings.Contains(resp.Remark, tc.wantErr) {
					t.Fatalf("register: %d %q, want 1 saying %q", resp.Code, resp.Remark, tc.wantErr)
				}
				if len(n.s.brokers) != 0 {
					t.Fatal("a refused registration routes the broker")
				}
				return
			}
			if resp.Code != codec.Success {
				t.Fatalf("register: %d %s", resp.Code, resp.Remark)
			}
			r := n.route("Orders")
			rd, err := route.DecodeTopicRouteData(r.Body)
			if r.Code != codec.Success || err != nil || len(rd.QueueDatas) != 1 || rd.QueueDatas[0].WriteQueueNums != 4 {
				t.Fatalf("route of Orders: %d %s", r.Code, r.Body)
			}
		})
	}
}

// GET_BROKER_CLUSTER_INFO (106) answers Java's ClusterInfo: every registered broker under its
// group (topics or not), and each cluster's groups; a broker that leaves leaves it.
func TestBrokerClusterInfo(t *testing.T) {
	n := startNameServer(t)
	if r := n.call(9, codec.ReqGetBrokerClusterInfo, nil, nil); r.Code != codec.Success || string(r.Body) != `{"brokerAddrTable":{},"clusterAddrTable":{}}` {
		t.Fatalf("empty: %d %s", r.Code, r.Body)
	}
	n.register(1, "broker-b", "127.0.0.2:10911", "0", map[string]int32{"Orders": 8})
	n.register(2, "broker-a", "127.0.0.1:10911", "0", nil)
	n.register(3, "broker-a", "127.0.0.3:10911", "1", map[string]int32{"Orders": 8})
	other := registerExt("broker-c", "127.0.0.4:10911", "0")
	other["clusterName"] = "Other"
	n.call(4, codec.ReqRegisterBroker, other, nil)
	want := `{"brokerAddrTable":{` +
		`"broker-a":{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.3:10911"}},` +
		`"broker-b":{"cluster":"DefaultCluster","brokerName":"broker-b","brokerAddrs":{"0":"127.0.0.2:10911"}},` +
		`"broker-c":{"cluster":"Other","brokerName":"broker-c","brokerAddrs":{"0":"127.0.0.4:10911"}}},` +
		`"clusterAddrTable":{"DefaultCluster":["broker-a","broker-b"],"Other":["broker-c"]}}`
	if r := n.call(9, codec.ReqGetBrokerClusterInfo, nil, nil); r.Code != codec.Success || string(r.Body) != want {
		t.Fatalf("cluster info: %d\n%s\nwant\n%s", r.Code, r.Body, want)
	}
	n.s.OnConnClosed(4)
	if r := n.call(9, codec.ReqGetBrokerClusterInfo, nil, nil); strings.Contains(string(r.Body), "broker-c") || strings.Contains(string(r.Body), "Other") {
		t.Fatalf("after broker-c left: %s", r.Body)
	}
}

// A slave's registration is answered with its group's master address and HA address, as
// Java's name server does (a Java slave replicates from them); a master's with empty ones.
func TestRegisterAnswersTheMasterToASlave(t *testing.T) {
	n := startNameServer(t)
	master := registerExt("broker-a", "127.0.0.1:10911", "0")
	master["haServerAddr"] = "127.0.0.1:10912"
	if r := n.call(1, codec.ReqRegisterBroker, master, nil); r.Code != codec.Success || r.Ext("masterAddr") != "" || r.Ext("haServerAddr") != "" {
		t.Errorf("master's registration answered %d %v", r.Code, r.ExtFields)
	}
	if r := n.call(2, codec.ReqRegisterBroker, registerExt("broker-a", "127.0.0.2:10911", "1"), nil); r.Ext("masterAddr") != "127.0.0.1:10911" || r.Ext("haServerAddr") != "127.0.0.1:10912" {
		t.Errorf("slave's registration answered %v", r.ExtFields)
	}
	if r := n.call(3, codec.ReqRegisterBroker, registerExt("broker-b", "127.0.0.3:10911", "1"), nil); r.Ext("masterAddr") != "" {
		t.Errorf("a slave of a group without a master was answered %v", r.ExtFields)
	}
}
