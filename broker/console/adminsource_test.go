package console

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// fakeServer answers each request on every connection with answer(req); it counts requests
// by code.
type fakeServer struct {
	addr string
	mu   sync.Mutex
	seen map[int16]int
}

func serveFake(t *testing.T, answer func(req *codec.Command) *codec.Command) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeServer{addr: ln.Addr().String(), seen: map[int16]int{}}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				for {
					fr, err := codec.ReadFrame(conn, 1<<20)
					if err != nil {
						return
					}
					req, err := codec.Decode(fr)
					if err != nil {
						return
					}
					f.mu.Lock()
					f.seen[req.Code]++
					f.mu.Unlock()
					b, _ := codec.Encode(answer(req))
					if _, err := conn.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	return f
}

func (f *fakeServer) count(code int16) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[code]
}

func jsonBody(req *codec.Command, v any) *codec.Command {
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body, _ = json.Marshal(v)
	return resp
}

// AdminSource reads a cluster through the admin protocol: brokers from the name server, each
// routed queue's offsets, groups, consumers and committed offsets from each group's master,
// joined by broker group. A master that cannot be reached is asked once per snapshot, and
// named as a problem rather than failing the snapshot.
func TestConsoleAdminSourceSnapshot(t *testing.T) {
	broker := serveFake(t, func(req *codec.Command) *codec.Command {
		switch req.Code {
		case codec.ReqGetMaxOffset, codec.ReqGetMinOffset:
			h, _ := codec.DecodeHeader[codec.QueueOffsetHeader](req)
			resp := codec.NewResponse(req, codec.Success, "")
			off := 100 + 10*h.QueueID
			if req.Code == codec.ReqGetMinOffset {
				off = 5
			}
			resp.SetHeader(&codec.OffsetResponseHeader{Offset: off})
			return resp
		case codec.ReqGetAllSubscriptionGroup:
			return jsonBody(req, map[string]any{"subscriptionGroupTable": map[string]any{"billing": map[string]any{}}})
		case codec.ReqGetConsumerListByGroup:
			return jsonBody(req, map[string]any{"consumerIdList": []string{"10.0.0.9@1"}})
		case codec.ReqGetAllConsumerOffset:
			return jsonBody(req, map[string]any{"offsetTable": map[string]map[int32]int64{"Orders@billing": {0: 40, 1: 200}}})
		}
		return codec.NewResponse(req, codec.RequestCodeNotSupported, "no")
	})
	// broker-b's master is registered but does not listen.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	brokers := map[string]route.BrokerData{
		"broker-a": {Cluster: "c", BrokerName: "broker-a", BrokerAddrs: map[string]string{"0": broker.addr, "1": "127.0.0.1:1"}},
		"broker-b": {Cluster: "c", BrokerName: "broker-b", BrokerAddrs: map[string]string{"0": deadAddr}},
	}
	ns := serveFake(t, func(req *codec.Command) *codec.Command {
		switch req.Code {
		case codec.ReqGetBrokerClusterInfo:
			return jsonBody(req, route.ClusterInfo{BrokerAddrTable: brokers, ClusterAddrTable: map[string][]string{"c": {"broker-a", "broker-b"}}})
		case codec.ReqGetAllTopicListFromNS:
			return jsonBody(req, route.TopicList{TopicList: []string{"Orders"}})
		case codec.ReqGetRouteInfoByTopic:
			r := route.TopicRouteData{BrokerDatas: []route.BrokerData{brokers["broker-a"], brokers["broker-b"]}, QueueDatas: []route.QueueData{
				{BrokerName: "broker-a", ReadQueueNums: 2, WriteQueueNums: 2, Perm: route.PermRead | route.PermWrite},
				{BrokerName: "broker-b", ReadQueueNums: 4, WriteQueueNums: 4, Perm: route.PermRead | route.PermWrite}}}
			resp := codec.NewResponse(req, codec.Success, "")
			resp.Body = r.Encode()
			return resp
		}
		return codec.NewResponse(req, codec.RequestCodeNotSupported, "no")
	})
	// The controller leads itself, and holds broker-a's sync state.
	var ctl *fakeServer
	ctl = serveFake(t, func(req *codec.Command) *codec.Command {
		resp := codec.NewResponse(req, codec.Success, "")
		switch req.Code {
		case codec.ReqControllerGetMetadataInfo:
			resp.SetHeader(&codec.ControllerMetadataHeader{Group: "g", ControllerLeaderID: "1", ControllerLeaderAddress: ctl.addr, IsLeader: true})
			return resp
		case codec.ReqControllerGetSyncStateData:
			return jsonBody(req, codec.BrokerReplicasInfo{ReplicasInfoTable: map[string]codec.ReplicasInfo{"broker-a": {
				MasterBrokerID: 2, MasterAddress: broker.addr, MasterEpoch: 3, SyncStateSetEpoch: 4,
				InSyncReplicas: []codec.ReplicaIdentity{{BrokerName: "broker-a", BrokerID: 1}, {BrokerName: "broker-a", BrokerID: 2}}}}})
		}
		return codec.NewResponse(req, codec.RequestCodeNotSupported, "no")
	})
	cli := adminclient.New([]string{ns.addr}, 2*time.Second)
	defer cli.Close()
	s, err := NewAdminSource(cli, ctl.addr).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Brokers) != 3 || s.Brokers[0].Group != "broker-a" || s.Brokers[0].ID != 0 || s.Brokers[2].Group != "broker-b" {
		t.Errorf("brokers %+v", s.Brokers)
	}
	if want := []SyncState{{Group: "broker-a", Epoch: 3, Master: "2 (" + broker.addr + ")", InSync: []string{"1", "2"}}}; !slices.EqualFunc(s.SyncStates, want, func(a, b SyncState) bool {
		return a.Group == b.Group && a.Epoch == b.Epoch && a.Master == b.Master && slices.Equal(a.InSync, b.InSync)
	}) {
		t.Errorf("sync states %+v, want %+v (broker-b has one replica: no controller to ask)", s.SyncStates, want)
	}
	if s.Brokers[0].Epoch != nil || s.Brokers[0].DiskUsedBytes != nil {
		t.Errorf("figures the name servers do not know were filled: %+v", s.Brokers[0])
	}
	wantQueues := []Queue{{"Orders", "broker-a", 0, 5, 100}, {"Orders", "broker-a", 1, 5, 110}}
	if !slices.Equal(s.Queues, wantQueues) {
		t.Errorf("queues %+v, want %+v", s.Queues, wantQueues)
	}
	wantOffsets := []Offset{{"billing", "Orders", "broker-a", 0, 40}, {"billing", "Orders", "broker-a", 1, 200}}
	if !slices.Equal(s.Offsets, wantOffsets) {
		t.Errorf("offsets %+v, want %+v", s.Offsets, wantOffsets)
	}
	if len(s.Groups) != 1 || s.Groups[0].Name != "billing" || !slices.Equal(s.Groups[0].Consumers, []string{"10.0.0.9@1"}) {
		t.Errorf("groups %+v", s.Groups)
	}
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0], deadAddr) {
		t.Errorf("problems %q, want one: broker-b's master, asked nothing more once it did not answer", s.Problems)
	}
	if n := broker.count(codec.ReqGetMaxOffset); n != 2 {
		t.Errorf("%d max-offset requests to broker-a, want one per queue", n)
	}

	p := buildPage(viewInput{latest: &s, history: []point{pointOf(time.Now(), s)}})
	if g := p.Groups[0]; g.Lag != "60" || g.Consumers != 1 { // 100-40 on queue 0; 110-200 is 0 on queue 1
		t.Errorf("billing's view: %+v", g)
	}
}

// A body stored compressed is shown inflated, and says so; one that does not inflate is shown
// as stored, with the reason.
func TestConsoleMessageOfCompressedBody(t *testing.T) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write([]byte("hello, compressed world"))
	w.Close()
	props := codec.EncodeProperties(map[string]string{codec.PropKeys: "k1", codec.PropTags: "t"})
	m := &codec.Message{Topic: "T", SysFlag: codec.SysFlagCompressed, Body: buf.Bytes(), Properties: props}
	v := messageView(messageOf(adminclient.Found{Broker: "127.0.0.1:10911", Msg: m}))
	if v.Body != "hello, compressed world" || !strings.Contains(v.BodyHow, "zlib-compressed, 23 bytes inflated") || v.Keys != "k1" || v.Tags != "t" {
		t.Errorf("compressed body shown as %q (%s), keys %q, tags %q", v.Body, v.BodyHow, v.Keys, v.Tags)
	}
	m.Body = []byte{1, 2, 3}
	v = messageView(messageOf(adminclient.Found{Msg: m}))
	if !strings.Contains(v.BodyHow, "does not inflate") || !strings.Contains(v.Body, "01 02 03") {
		t.Errorf("a body that does not inflate shown as %q (%s)", v.Body, v.BodyHow)
	}
}
