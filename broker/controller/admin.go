package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
)

// The admin views of the controller (mqadmin's getControllerMetaData and getSyncStateSet),
// read-only and answered from the member's own state:
//
// ReqControllerGetMetadataInfo (1005), no header, no body: any member answers with a
// codec.ControllerMetadataHeader (ControllerGroupName, the leader's id and address as this
// member knows them, whether it leads, every member as "id-addr" joined by ';', and this
// member's id and raft term). A member that stopped on a disk error answers too.
//
// ReqControllerGetSyncStateData (1006), body the JSON list of broker names: the leader answers
// a codec.BrokerReplicasInfo of the groups of those names (of any cluster; names no group has
// are left out). A follower answers ControllerNotLeader with the leader, as to every request
// only the leader serves (RocketMQ's controllers answer it only while they lead; its admin
// asks for the metadata first and sends this one to the leader).

// ControllerGroupName is the controller group's name in metadata answers (RocketMQ's is its
// DLedger or JRaft group's).
const ControllerGroupName = "sluice-controller"

// maxSyncStateNames bounds the broker names one sync-state request may ask for.
const maxSyncStateNames = MaxGroups

func (c *Controller) metadata(req *codec.Command) *codec.Command {
	st := c.rn.BasicStatus()
	h := codec.ControllerMetadataHeader{Group: ControllerGroupName, IsLeader: c.isLeader,
		ControllerID: strconv.FormatUint(c.cfg.ID, 10), RaftTerm: int64(st.GetTerm())}
	if lead, addr := c.Leader(); lead != 0 {
		h.ControllerLeaderID, h.ControllerLeaderAddress = strconv.FormatUint(lead, 10), addr
	}
	peers := make([]string, 0, len(c.cfg.Peers))
	for _, id := range slices.Sorted(maps.Keys(c.cfg.Peers)) {
		peers = append(peers, fmt.Sprintf("%d-%s", id, c.cfg.Peers[id]))
	}
	h.Peers = strings.Join(peers, ";")
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&h)
	return resp
}

func (c *Controller) syncStateData(req *codec.Command) *codec.Command {
	var names []string
	if err := json.Unmarshal(req.Body, &names); err != nil {
		return codec.NewResponse(req, codec.ControllerInvalidRequest, "get sync state data: the body is not a JSON list of broker names: "+err.Error())
	}
	if len(names) > maxSyncStateNames {
		return codec.NewResponse(req, codec.ControllerInvalidRequest, fmt.Sprintf("get sync state data: %d broker names, at most %d", len(names), maxSyncStateNames))
	}
	body := codec.BrokerReplicasInfo{ReplicasInfoTable: map[string]codec.ReplicasInfo{}}
	for _, k := range c.state.Keys() {
		if !slices.Contains(names, k.Group) {
			continue
		}
		if _, dup := body.ReplicasInfoTable[k.Group]; dup {
			continue // the same name in two clusters: the first cluster's, as keys sort
		}
		info := c.groupInfo(c.state.Group(k))
		ri := codec.ReplicasInfo{MasterAddress: info.MasterAddr, MasterBrokerID: info.MasterID, MasterEpoch: info.MasterEpoch,
			SyncStateSetEpoch: info.InSyncEpoch, InSyncReplicas: []codec.ReplicaIdentity{}, NotInSyncReplicas: []codec.ReplicaIdentity{}}
		for _, r := range info.Replicas {
			id := codec.ReplicaIdentity{Alive: r.Alive, BrokerAddress: r.Addr, BrokerID: r.ID, BrokerName: k.Group}
			if slices.Contains(info.InSync, r.ID) {
				ri.InSyncReplicas = append(ri.InSyncReplicas, id)
			} else {
				ri.NotInSyncReplicas = append(ri.NotInSyncReplicas, id)
			}
		}
		body.ReplicasInfoTable[k.Group] = ri
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body, _ = json.Marshal(body) // plain data: cannot fail; map keys sorted
	return resp
}
