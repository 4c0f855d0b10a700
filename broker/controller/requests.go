package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// The requests a controller serves. Header values are strings in ext fields, as RocketMQ's;
// bodies are JSON.
//
// ReqControllerBrokerHeartbeat (1003), sent by every replica every second or so (well under
// MasterTimeout), to the leader: ext clusterName, brokerName, brokerId (>= 1), brokerAddr, and
// optionally masterEpoch (the last master epoch the replica knows) and maxOffset (the end of
// its log), which make it preferred in an election. It registers the replica (a new one or a
// new address is committed through raft before the answer) and keeps it alive in the leader's
// view. The answer is the group (see groupResponse).
//
// ReqControllerAlterInSyncSet (1001), from the master: ext clusterName, brokerName,
// masterBrokerId, masterEpoch; body AlterInSyncBody. Refused with ControllerFencedMasterEpoch
// if masterEpoch is not current (a stale master), ControllerInvalidMaster if the sender is
// not the master, ControllerFencedInSyncEpoch if the set changed meanwhile,
// ControllerInvalidReplicas for a set without the master or with unregistered replicas,
// ControllerBrokerNotAlive for an added replica the leader has not heard from. The answer is
// the group afterwards (or as it is, with a refusal).
//
// ReqControllerGetReplicaInfo (1004): ext clusterName and brokerName (either may be empty:
// every group matches), and local=true to be answered by any member from its own applied
// state instead of by the leader. Body ReplicaInfoBody.
//
// ReqControllerGetMetadataInfo (1005) and ReqControllerGetSyncStateData (1006) are admins'
// views (admin.go).
//
// Any of them but ReqControllerGetMetadataInfo (and a local replica-info request) sent to a
// member that is not the leader is answered ControllerNotLeader with ext
// leaderId and leaderAddr (empty while no leader is known): send it again there.

// AlterInSyncBody is the body of an alter-in-sync-set request.
type AlterInSyncBody struct {
	InSync      []int64 `json:"syncStateSet"`
	InSyncEpoch int64   `json:"syncStateSetEpoch"`
}

// GroupInfo describes one broker group.
type GroupInfo struct {
	Cluster     string        `json:"clusterName"`
	Group       string        `json:"brokerName"`
	MasterID    int64         `json:"masterBrokerId"` // 0: masterless
	MasterAddr  string        `json:"masterAddress"`
	MasterEpoch int64         `json:"masterEpoch"`
	InSync      []int64       `json:"syncStateSet"`
	InSyncEpoch int64         `json:"syncStateSetEpoch"`
	Replicas    []ReplicaInfo `json:"replicas"`
}

// ReplicaInfo is one registered replica. Alive is the answering member's own view (only the
// leader hears heartbeats).
type ReplicaInfo struct {
	ID    int64  `json:"brokerId"`
	Addr  string `json:"brokerAddr"`
	Alive bool   `json:"alive"`
}

// ReplicaInfoBody is the body of a get-replica-info answer.
type ReplicaInfoBody struct {
	Groups []GroupInfo `json:"groups"`
}

// serve answers one request, or returns nil when the answer waits for a proposal.
func (c *Controller) serve(conn node.ConnID, req *codec.Command) *codec.Command {
	switch req.Code {
	case codec.ReqControllerBrokerHeartbeat, codec.ReqControllerAlterInSyncSet, codec.ReqControllerGetReplicaInfo,
		codec.ReqControllerGetSyncStateData:
	case codec.ReqControllerGetMetadataInfo:
		return c.metadata(req) // any member, from its own view (admin.go)
	default:
		return c.unsupported.Answer(c.env, conn, "", req)
	}
	if c.failed != nil {
		return codec.NewResponse(req, codec.SystemError, "controller member failed: "+c.failed.Error())
	}
	if req.Code == codec.ReqControllerGetReplicaInfo {
		if h, _ := codec.DecodeHeader[codec.BrokerGroupHeader](req); h.Local { // no field can be malformed
			return c.replicaInfo(req)
		}
	}
	if !c.isLeader {
		return c.redirect(req)
	}
	if !c.ready() {
		return codec.NewResponse(req, codec.SystemBusy, "controller leader is still catching up; retry")
	}
	switch req.Code {
	case codec.ReqControllerBrokerHeartbeat:
		return c.heartbeat(conn, req)
	case codec.ReqControllerAlterInSyncSet:
		return c.alterInSync(conn, req)
	case codec.ReqControllerGetSyncStateData:
		return c.syncStateData(req)
	default:
		return c.replicaInfo(req)
	}
}

func (c *Controller) redirect(req *codec.Command) *codec.Command {
	lead, addr := c.Leader()
	resp := codec.NewResponse(req, codec.ControllerNotLeader, "this controller member is not the leader")
	resp.SetHeader(&codec.NotLeaderResponseHeader{LeaderID: lead, LeaderAddr: addr})
	return resp
}

func (c *Controller) heartbeat(conn node.ConnID, req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.BrokerHeartbeatHeader](req)
	k, id, addr := GroupKey{Cluster: h.ClusterName, Group: h.BrokerName}, h.BrokerID, h.BrokerAddr
	if err == nil && id < 1 {
		err = fmt.Errorf("brokerId %d is not a broker id (>= 1)", id)
	}
	view := liveReplica{Epoch: h.MasterEpoch, MaxOffset: h.MaxOffset}
	if err != nil {
		return codec.NewResponse(req, codec.ControllerInvalidRequest, "broker heartbeat: "+err.Error())
	}
	c.seen[replicaKey{k, id}] = seenReplica{at: c.clock(), liveReplica: view}
	g := c.state.Group(k)
	if g == nil || g.Replicas[id] != addr {
		return c.propose(conn, req, Command{Op: OpRegister, Cluster: k.Cluster, Group: k.Group, BrokerID: id, Addr: addr})
	}
	if id == g.MasterID && c.electionInFlight(k, g) {
		// The leader decided to replace this master and the election is not applied yet:
		// answering with the group as it stands would confirm the master and renew its lease
		// past the moment the election takes effect (two masters holding a lease). It learns
		// the outcome from its next heartbeat.
		return codec.NewResponse(req, codec.SystemBusy, "an election replacing this master is in flight; retry")
	}
	if g.MasterID == 0 {
		// A masterless group need not wait for the next check: this replica may be eligible.
		if proposed, resp := c.checkGroup(k, conn, req); proposed {
			return resp
		}
	}
	return c.groupResponse(req, codec.Success, "", g)
}

func (c *Controller) alterInSync(conn node.ConnID, req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.AlterInSyncSetHeader](req)
	k, master, epoch := GroupKey{Cluster: h.ClusterName, Group: h.BrokerName}, h.MasterBrokerID, h.MasterEpoch
	var body AlterInSyncBody
	if err == nil {
		if err = json.Unmarshal(req.Body, &body); err != nil {
			err = fmt.Errorf("bad body: %w", err)
		}
	}
	if err == nil && len(body.InSync) > MaxReplicasPerGroup {
		err = fmt.Errorf("an in-sync set of %d replicas", len(body.InSync))
	}
	if err != nil {
		return codec.NewResponse(req, codec.ControllerInvalidRequest, "alter in-sync set: "+err.Error())
	}
	g := c.state.Group(k)
	if g == nil {
		return codec.NewResponse(req, codec.ControllerInvalidRequest, "alter in-sync set: no such broker group "+k.String())
	}
	if code, remark := g.checkAlter(master, epoch, body.InSyncEpoch, body.InSync); code != codec.Success {
		return c.groupResponse(req, code, remark, g)
	}
	live := c.liveReplicas(g)
	for _, id := range body.InSync {
		if _, ok := live[id]; !ok && !g.inSync(id) && id != master {
			return c.groupResponse(req, codec.ControllerBrokerNotAlive, fmt.Sprintf("alter in-sync set: broker %d has not heartbeated to the controller leader", id), g)
		}
	}
	return c.propose(conn, req, Command{Op: OpAlterInSync, Cluster: k.Cluster, Group: k.Group,
		MasterID: master, MasterEpoch: epoch, InSyncEpoch: body.InSyncEpoch, InSync: body.InSync})
}

func (c *Controller) replicaInfo(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.BrokerGroupHeader](req) // no field can be malformed
	cluster, group := h.ClusterName, h.BrokerName
	var body ReplicaInfoBody
	for _, k := range c.state.Keys() {
		if (cluster == "" || k.Cluster == cluster) && (group == "" || k.Group == group) {
			body.Groups = append(body.Groups, c.groupInfo(c.state.Group(k)))
		}
	}
	resp := codec.NewResponse(req, codec.Success, "")
	if len(body.Groups) == 1 {
		setGroupExt(resp, body.Groups[0])
	}
	resp.Body, _ = json.Marshal(body)
	return resp
}

// groupResponse answers req with code and, when g is known, the group: ext masterBrokerId,
// masterAddress, masterEpoch, syncStateSet (comma-separated ids), syncStateSetEpoch, and the
// GroupInfo as the JSON body.
func (c *Controller) groupResponse(req *codec.Command, code int16, remark string, g *Group) *codec.Command {
	resp := codec.NewResponse(req, code, remark)
	if g != nil {
		info := c.groupInfo(g)
		setGroupExt(resp, info)
		resp.Body = c.groupBody(info)
	}
	return resp
}

// encodedGroup is a group answer's body and the GroupInfo it encodes.
type encodedGroup struct {
	info GroupInfo
	body []byte
}

// groupBody is info as JSON: the body encoded last time for the group when info is the same
// (the body is shared by the answers that carry it and never modified).
func (c *Controller) groupBody(info GroupInfo) []byte {
	k := GroupKey{Cluster: info.Cluster, Group: info.Group}
	if e, ok := c.groupBodies[k]; ok && sameGroupInfo(e.info, info) {
		return e.body
	}
	body, _ := json.Marshal(info)
	if len(c.groupBodies) >= MaxGroups {
		clear(c.groupBodies) // groups come and go: start over rather than grow
	}
	c.groupBodies[k] = encodedGroup{info: info, body: body}
	return body
}

// sameGroupInfo reports whether a and b encode to the same JSON.
func sameGroupInfo(a, b GroupInfo) bool {
	return a.Cluster == b.Cluster && a.Group == b.Group && a.MasterID == b.MasterID && a.MasterAddr == b.MasterAddr &&
		a.MasterEpoch == b.MasterEpoch && a.InSyncEpoch == b.InSyncEpoch && slices.Equal(a.InSync, b.InSync) &&
		slices.Equal(a.Replicas, b.Replicas) && (a.InSync == nil) == (b.InSync == nil) && (a.Replicas == nil) == (b.Replicas == nil)
}

func setGroupExt(resp *codec.Command, info GroupInfo) {
	resp.SetHeader(&codec.GroupResponseHeader{MasterBrokerID: info.MasterID, MasterAddress: info.MasterAddr,
		MasterEpoch: info.MasterEpoch, SyncStateSet: info.InSync, SyncStateSetEpoch: info.InSyncEpoch})
}

func (c *Controller) groupInfo(g *Group) GroupInfo {
	info := GroupInfo{
		Cluster: g.Key.Cluster, Group: g.Key.Group,
		MasterID: g.MasterID, MasterAddr: g.Replicas[g.MasterID], MasterEpoch: g.MasterEpoch,
		InSync: slices.Clone(g.InSync), InSyncEpoch: g.InSyncEpoch,
	}
	if info.InSync == nil {
		info.InSync = []int64{}
	}
	live := map[int64]liveReplica{}
	if c.isLeader {
		live = c.liveReplicas(g)
	}
	for _, id := range slices.Sorted(maps.Keys(g.Replicas)) {
		_, alive := live[id]
		info.Replicas = append(info.Replicas, ReplicaInfo{ID: id, Addr: g.Replicas[id], Alive: alive})
	}
	return info
}
