package adminclient

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

func TestSummarizeRuntime(t *testing.T) {
	got := SummarizeRuntime("a:1", map[string]string{"replicaRole": "master", "brokerRole": "SYNC_MASTER", "writable": "true",
		"masterEpoch": "3", "syncStateSet": "1,2", "diskUsedBytes": "10", "diskCapacityBytes": "40", "commitLogDiskRatio": "0.2500",
		"putTps": "12.50 1.00 0.10", "getTransferedTps": "x", "msgPutTotalTodayNow": "7", "diskFull": "false"})
	want := BrokerRuntime{Addr: "a:1", Role: "master", BrokerRole: "SYNC_MASTER", Writable: true, MasterEpoch: 3,
		SyncStateSet: []int64{1, 2}, DiskUsedBytes: 10, DiskCapacityBytes: 40, DiskRatio: 0.25, InTPS: 12.5, PutTotal: 7}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if r := SummarizeRuntime("b", nil); r.Addr != "b" || r.SyncStateSet != nil {
		t.Fatalf("empty table: %+v", r)
	}
}

// A broker's runtime table and its config travel in RocketMQ's bodies; a key the client cannot
// send as one line is refused before anything is sent.
func TestRuntimeAndConfigCalls(t *testing.T) {
	var gotBody string
	addr := fakePeer(t, func(req *codec.Command) []*codec.Command {
		resp := codec.NewResponse(req, codec.Success, "")
		switch req.Code {
		case codec.ReqGetBrokerRuntimeInfo:
			resp.Body = []byte(`{"table":{"replicaRole":"single","putTps":"2.00 0 0"}}`)
		case codec.ReqGetBrokerConfig:
			resp.Body = []byte("brokerName=broker-a\nfileReservedTime=72\n")
		case codec.ReqUpdateBrokerConfig:
			gotBody = string(req.Body)
		}
		return []*codec.Command{resp}
	})
	c := New(nil, 5*time.Second)
	defer c.Close()
	r, err := c.BrokerRuntime(addr)
	if err != nil || r.Role != "single" || r.InTPS != 2 {
		t.Fatalf("runtime: %+v %v", r, err)
	}
	ps, err := c.BrokerConfig(addr)
	if err != nil || len(ps) != 2 || ps[1] != (codec.ConfigProperty{Key: "fileReservedTime", Value: "72"}) {
		t.Fatalf("config: %v %v", ps, err)
	}
	if err := c.UpdateBrokerConfig(addr, "fileReservedTime", "48"); err != nil || gotBody != "fileReservedTime=48\n" {
		t.Fatalf("update: %v, body %q", err, gotBody)
	}
	if err := c.UpdateBrokerConfig(addr, "a=b", "1"); err == nil || !strings.Contains(err.Error(), "bad key") {
		t.Fatalf("a key with '=': %v", err)
	}
}
