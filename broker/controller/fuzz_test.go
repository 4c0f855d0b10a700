package controller

import (
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// FuzzRequests feeds arbitrary requests (and raft frames) to a leading member with one
// registered group: whatever arrives, it answers every request exactly once and never panics.
func FuzzRequests(f *testing.F) {
	f.Add(uint8(0), "C", "G", "1", "10.0.0.1:1", "1", "", []byte(nil))
	f.Add(uint8(1), "C", "G", "1", "", "1", "3", []byte(`{"syncStateSet":[1,2],"syncStateSetEpoch":1}`))
	f.Add(uint8(1), "C", "G", "1", "", "-5", "x", []byte(`{"syncStateSet":[1,1,1,99999999999]}`))
	f.Add(uint8(2), "", "G", "", "", "", "true", []byte(nil))
	f.Add(uint8(3), "", "", "", "", "", "", []byte{0x08, 0x03, 0x10, 0x01, 0x18, 0x02})
	codes := []int16{codec.ReqControllerBrokerHeartbeat, codec.ReqControllerAlterInSyncSet,
		codec.ReqControllerGetReplicaInfo, codec.ReqControllerRaftMessage, 999}
	f.Fuzz(func(t *testing.T, code uint8, cluster, group, id, addr, epoch, extra string, body []byte) {
		m := startMember(t, oneMember(), nil)
		m.heartbeat(1, 1)
		m.heartbeat(1, 1)
		c := codes[int(code)%len(codes)]
		ext := map[string]string{"clusterName": cluster, "brokerName": group, "brokerId": id, "brokerAddr": addr,
			"masterBrokerId": id, "masterEpoch": epoch, "maxOffset": extra, "local": extra}
		resp := m.request(2, c, ext, body)
		if (resp == nil) != (c == codec.ReqControllerRaftMessage) {
			t.Fatalf("request code %d: answer %+v", c, resp)
		}
		m.run(m.cfg.MasterTimeout)
	})
}
