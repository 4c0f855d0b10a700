package namesrv

import (
	"encoding/json"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

// registerAtEpoch registers a replica of a group under id, knowing master epoch epoch.
func (n *nameServer) registerAtEpoch(c node.ConnID, name, addr, id string, epoch int64) {
	n.t.Helper()
	body := route.RegisterBody{TopicConfigTable: map[string]route.TopicConfig{
		"Orders": {TopicName: "Orders", ReadQueueNums: 4, WriteQueueNums: 4, Perm: route.PermRead | route.PermWrite}},
		DataVersion: route.DataVersion{StateVersion: epoch}}
	b, _ := json.Marshal(body)
	if resp := n.call(c, codec.ReqRegisterBroker, registerExt(name, addr, id), b); resp.Code != codec.Success {
		n.t.Fatalf("register %s: %d %s", addr, resp.Code, resp.Remark)
	}
}

// masterOf is the address a route of Orders names as the master (id 0) of group name.
func (n *nameServer) masterOf(name string) string {
	n.t.Helper()
	rd, err := route.DecodeTopicRouteData(n.route("Orders").Body)
	if err != nil {
		n.t.Fatal(err)
	}
	for _, bd := range rd.BrokerDatas {
		if bd.BrokerName == name {
			return bd.BrokerAddrs["0"]
		}
	}
	return ""
}

// A failover as the simulator found it (groups seed 31): the master of broker-b (the higher
// address) hangs with its connection to the name server open, still registered as id 0 at
// epoch 4; the controller elects another replica, which registers as id 0 at epoch 5. The route
// must name the new master, not whichever claimant sorts last, until the old one registers
// under its own id or expires; once it re-registers as a slave both are routed.
func TestNewMasterWinsTheMasterSlotOverADeposedOne(t *testing.T) {
	n := startNameServer(t)
	n.registerAtEpoch(1, "broker-b", "127.0.11.2:10911", "0", 4)
	n.registerAtEpoch(2, "broker-b", "127.0.11.1:10911", "1", 4)
	if got := n.masterOf("broker-b"); got != "127.0.11.2:10911" {
		t.Fatalf("master before the failover: %q", got)
	}
	n.registerAtEpoch(2, "broker-b", "127.0.11.1:10911", "0", 5)
	if got := n.masterOf("broker-b"); got != "127.0.11.1:10911" {
		t.Fatalf("after the failover the route names %q as master, want the new master 127.0.11.1:10911", got)
	}
	// The deposed master re-registers as itself: it is a slave in the route again.
	n.registerAtEpoch(1, "broker-b", "127.0.11.2:10911", "2", 5)
	rd, _ := route.DecodeTopicRouteData(n.route("Orders").Body)
	if addrs := rd.BrokerDatas[0].BrokerAddrs; addrs["0"] != "127.0.11.1:10911" || addrs["2"] != "127.0.11.2:10911" {
		t.Fatalf("route after the old master re-registered as a slave: %v", addrs)
	}
}
