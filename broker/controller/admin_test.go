package controller

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sluicemq/sluice/broker/codec"
)

// CONTROLLER_GET_METADATA_INFO names the group's members, the leader and the raft term, and is
// answered by a follower from its own view as by the leader.
func TestMetadataFromLeaderAndFollower(t *testing.T) {
	m := startMember(t, oneMember(), nil)
	resp := m.request(101, codec.ReqControllerGetMetadataInfo, nil, nil)
	h, err := codec.DecodeHeader[codec.ControllerMetadataHeader](resp)
	want := codec.ControllerMetadataHeader{Group: ControllerGroupName, ControllerLeaderID: "1", ControllerLeaderAddress: "10.0.0.1:9878",
		IsLeader: true, Peers: "1-10.0.0.1:9878", ControllerID: "1", RaftTerm: h.RaftTerm}
	if resp.Code != codec.Success || err != nil || h != want || h.RaftTerm < 1 {
		t.Fatalf("leader's metadata: code %d %v %+v, want %+v with a term", resp.Code, err, h, want)
	}

	f := startMember(t, threeMembers(1), nil)
	resp = f.request(101, codec.ReqControllerGetMetadataInfo, nil, nil)
	h, _ = codec.DecodeHeader[codec.ControllerMetadataHeader](resp)
	if resp.Code != codec.Success || h.IsLeader || h.ControllerLeaderID != "" || h.Peers != "1-10.0.0.1:9878;2-10.0.0.2:9878;3-10.0.0.3:9878" {
		t.Fatalf("before any leader: code %d %+v", resp.Code, h)
	}
	f.env.Frame(f.c, 50, raftFrame(t, &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(4))}))
	f.settle()
	resp = f.request(101, codec.ReqControllerGetMetadataInfo, nil, nil)
	h, _ = codec.DecodeHeader[codec.ControllerMetadataHeader](resp)
	if resp.Code != codec.Success || h.IsLeader || h.ControllerLeaderID != "2" || h.ControllerLeaderAddress != "10.0.0.2:9878" || h.RaftTerm != 4 || h.ControllerID != "1" {
		t.Fatalf("a follower of member 2 in term 4: code %d %+v", resp.Code, h)
	}
	// The sync state is the leader's to answer.
	resp = f.request(101, codec.ReqControllerGetSyncStateData, nil, []byte(`["G"]`))
	if resp.Code != codec.ControllerNotLeader || resp.Ext("leaderAddr") != "10.0.0.2:9878" {
		t.Fatalf("sync state from a follower: code %d ext %v", resp.Code, resp.ExtFields)
	}
}

// CONTROLLER_GET_SYNC_STATE_DATA answers, per broker name asked, the master, its epoch, the
// in-sync set's epoch and the replicas in and out of the set, as RocketMQ's
// BrokerReplicasInfo.
func TestSyncStateData(t *testing.T) {
	m := startMember(t, oneMember(), nil)
	m.heartbeat(101, 1)
	m.heartbeat(101, 1) // registered; elected master
	m.heartbeat(102, 2)
	wantGroup(t, m.alter(101, 1, 1, 1, 1, 2), codec.Success, 1, 1, 1, 2)
	m.heartbeat(103, 3) // registered, never in sync
	resp := m.request(104, codec.ReqControllerGetSyncStateData, nil, []byte(`["G","nope"]`))
	if resp.Code != codec.Success {
		t.Fatalf("code %d %s", resp.Code, resp.Remark)
	}
	var got codec.BrokerReplicasInfo
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatal(err)
	}
	replica := func(id int64) codec.ReplicaIdentity {
		return codec.ReplicaIdentity{Alive: true, BrokerAddress: brokerAddr(id), BrokerID: id, BrokerName: group}
	}
	want := codec.BrokerReplicasInfo{ReplicasInfoTable: map[string]codec.ReplicasInfo{group: {
		InSyncReplicas: []codec.ReplicaIdentity{replica(1), replica(2)}, MasterAddress: brokerAddr(1), MasterBrokerID: 1,
		MasterEpoch: 1, NotInSyncReplicas: []codec.ReplicaIdentity{replica(3)}, SyncStateSetEpoch: 2,
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sync state (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ name, body string }{
		{"no body", ""}, {"not a list", `{"G":1}`}, {"numbers", `[1]`},
	} {
		if resp := m.request(104, codec.ReqControllerGetSyncStateData, nil, []byte(tc.body)); resp.Code != codec.ControllerInvalidRequest {
			t.Errorf("%s: code %d, want CONTROLLER_INVALID_REQUEST", tc.name, resp.Code)
		}
	}
	if resp := m.request(104, codec.ReqControllerGetSyncStateData, nil, []byte(`[]`)); resp.Code != codec.Success || string(resp.Body) != `{"replicasInfoTable":{}}` {
		t.Errorf("no names: code %d body %s", resp.Code, resp.Body)
	}
}
