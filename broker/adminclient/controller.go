package adminclient

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
)

// ControllerMetadata is a controller member's view of its group (CONTROLLER_GET_METADATA_INFO).
type ControllerMetadata struct {
	Addr       string // the member asked
	Group      string
	LeaderID   string // "" while the member knows no leader
	LeaderAddr string
	IsLeader   bool // the member asked leads
	Peers      []string
	// MemberID and RaftTerm are Sluice's additions: the member's raft id and term ("" and 0
	// from a RocketMQ controller).
	MemberID string
	RaftTerm int64
}

// ControllerMetadata asks the controller member at addr for its metadata.
func (c *Client) ControllerMetadata(addr string) (ControllerMetadata, error) {
	resp, err := c.callOK(addr, codec.NewRequest(codec.ReqControllerGetMetadataInfo, nil, nil))
	if err != nil {
		return ControllerMetadata{}, fmt.Errorf("controller metadata: %w", err)
	}
	h, err := codec.DecodeHeader[codec.ControllerMetadataHeader](resp)
	if err != nil {
		return ControllerMetadata{}, fmt.Errorf("controller metadata from %s: %w", addr, err)
	}
	md := ControllerMetadata{Addr: addr, Group: h.Group, LeaderID: h.ControllerLeaderID, LeaderAddr: h.ControllerLeaderAddress,
		IsLeader: h.IsLeader, MemberID: h.ControllerID, RaftTerm: h.RaftTerm, Peers: []string{}}
	for _, p := range strings.Split(h.Peers, ";") {
		if p = strings.TrimSpace(p); p != "" {
			md.Peers = append(md.Peers, p)
		}
	}
	return md, nil
}

// SyncStateSet asks the controller leader for broker groups' masters and in-sync sets
// (CONTROLLER_GET_SYNC_STATE_DATA), as mqadmin's getSyncStateSet does: the member at addr
// names the leader (CONTROLLER_GET_METADATA_INFO), which is asked. Names no group has are left
// out of the answer.
func (c *Client) SyncStateSet(addr string, brokerNames []string) (codec.BrokerReplicasInfo, error) {
	md, err := c.ControllerMetadata(addr)
	if err != nil {
		return codec.BrokerReplicasInfo{}, err
	}
	if md.LeaderAddr == "" {
		return codec.BrokerReplicasInfo{}, fmt.Errorf("sync state set: controller %s knows no leader yet; retry", addr)
	}
	body, _ := json.Marshal(brokerNames) // strings: cannot fail
	resp, err := c.callOK(md.LeaderAddr, codec.NewRequest(codec.ReqControllerGetSyncStateData, nil, body))
	if err != nil {
		return codec.BrokerReplicasInfo{}, fmt.Errorf("sync state set: %w", err)
	}
	var out codec.BrokerReplicasInfo
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return out, fmt.Errorf("sync state set from %s: bad body: %w", md.LeaderAddr, err)
	}
	if out.ReplicasInfoTable == nil {
		out.ReplicasInfoTable = map[string]codec.ReplicasInfo{}
	}
	return out, nil
}

// GroupSyncState is one broker group as the controller holds it: its master (0: none), the
// master's epoch, and the in-sync set (broker ids, sorted) with its epoch.
type GroupSyncState struct {
	MasterID    int64
	MasterAddr  string
	MasterEpoch int64
	InSync      []int64
	InSyncEpoch int64
}

// GroupSyncState is the compact view of one broker group's epoch and in-sync set, for the
// console: SyncStateSet for one name. It fails if the controller has no such group.
func (c *Client) GroupSyncState(controllerAddr, brokerName string) (GroupSyncState, error) {
	info, err := c.SyncStateSet(controllerAddr, []string{brokerName})
	if err != nil {
		return GroupSyncState{}, err
	}
	ri, ok := info.ReplicasInfoTable[brokerName]
	if !ok {
		return GroupSyncState{}, fmt.Errorf("the controller has no broker group %s", brokerName)
	}
	g := GroupSyncState{MasterID: ri.MasterBrokerID, MasterAddr: ri.MasterAddress, MasterEpoch: ri.MasterEpoch,
		InSyncEpoch: ri.SyncStateSetEpoch, InSync: []int64{}}
	for _, r := range ri.InSyncReplicas {
		g.InSync = append(g.InSync, r.BrokerID)
	}
	slices.Sort(g.InSync)
	return g, nil
}

// ControllerBesideNameServer is where Sluice and RocketMQ's quick start put a controller
// beside a name server: its port plus 2 (9878 beside 9876; 'sluice dev' does so). The name
// servers know nothing of the controllers (brokers are configured with them), so an admin that
// names none is guessing; the guess is checked by asking it for its metadata.
func ControllerBesideNameServer(nameServer string) (string, error) {
	host, port, err := net.SplitHostPort(nameServer)
	if err != nil {
		return "", fmt.Errorf("name server address %q: %w", nameServer, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65533 {
		return "", fmt.Errorf("name server address %q: bad port", nameServer)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+2)), nil
}

// NameServers are the name server addresses the client was made with.
func (c *Client) NameServers() []string { return slices.Clone(c.nameServers) }
