package codec

import (
	"fmt"
	"strconv"
	"strings"
)

// RegisterBrokerHeader is REGISTER_BROKER's header (a broker to a name server). BrokerID is
// required; a missing or malformed BodyCRC32 is 0 (not checked).
type RegisterBrokerHeader struct {
	BrokerName   string
	BrokerAddr   string
	ClusterName  string
	BrokerID     int64
	HAServerAddr string
	// Compressed says the body is RegisterBrokerBody's compressed form.
	Compressed bool
	BodyCRC32  int64
}

func (h *RegisterBrokerHeader) fields(f extFields) {
	f.str("brokerName", &h.BrokerName)
	f.str("brokerAddr", &h.BrokerAddr)
	f.str("clusterName", &h.ClusterName)
	f.int("brokerId", &h.BrokerID)
	f.str("haServerAddr", &h.HAServerAddr)
	f.bool("compressed", &h.Compressed)
	f.intOr("bodyCrc32", &h.BodyCRC32, 0)
}

// RegisterBrokerResponseHeader is a name server's answer to REGISTER_BROKER: a slave's master
// and its HA address, empty for a master.
type RegisterBrokerResponseHeader struct {
	MasterAddr   string
	HAServerAddr string
}

func (h *RegisterBrokerResponseHeader) fields(f extFields) {
	f.str("masterAddr", &h.MasterAddr)
	f.str("haServerAddr", &h.HAServerAddr)
}

// UnregisterBrokerHeader is UNREGISTER_BROKER's header; a name server needs the address only.
type UnregisterBrokerHeader struct {
	BrokerName  string
	BrokerAddr  string
	ClusterName string
	BrokerID    int64
}

func (h *UnregisterBrokerHeader) fields(f extFields) {
	f.str("brokerName", &h.BrokerName)
	f.str("brokerAddr", &h.BrokerAddr)
	f.str("clusterName", &h.ClusterName)
	f.intOr("brokerId", &h.BrokerID, 0)
}

// NoMasterEpoch is ReplicaHeader.MasterEpoch when the request names none (an admin's).
const NoMasterEpoch = -1

// ReplicaHeader is the header of a slave's replication handshake and of its metadata-sync
// requests (GET_ALL_TOPIC_CONFIG and the others, which admins send too): its broker id and
// the master epoch it follows. A missing or empty masterEpoch is NoMasterEpoch; a malformed
// one is an error.
type ReplicaHeader struct {
	BrokerID    int64
	MasterEpoch int64
}

func (h *ReplicaHeader) fields(f extFields) {
	f.intOr("brokerId", &h.BrokerID, 0)
	f.optionalInt("masterEpoch", &h.MasterEpoch, NoMasterEpoch)
}

// ReplicaFetchHeader is a slave's fetch of its master's commit log: from which index, and what
// it has made durable. BrokerID, From and Synced are required; MasterEpoch as in ReplicaHeader.
type ReplicaFetchHeader struct {
	BrokerID    int64
	MasterEpoch int64
	From        int64
	Synced      int64
}

func (h *ReplicaFetchHeader) fields(f extFields) {
	f.optionalInt("masterEpoch", &h.MasterEpoch, NoMasterEpoch)
	f.int("brokerId", &h.BrokerID)
	f.int("from", &h.From)
	f.int("synced", &h.Synced)
}

// HandshakeResponseHeader is a master's answer to a handshake: the end of what it may serve
// and its epoch. LastIndex is required.
type HandshakeResponseHeader struct {
	LastIndex int64
	Epoch     int64
}

func (h *HandshakeResponseHeader) fields(f extFields) {
	f.int("lastIndex", &h.LastIndex)
	f.intOr("epoch", &h.Epoch, 0)
}

// FetchResponseHeader is a master's answer to a fetch: the epoch of the records, where it
// starts, and the master's confirmed index. All required.
type FetchResponseHeader struct {
	Epoch      int64
	EpochStart int64
	Confirmed  int64
}

func (h *FetchResponseHeader) fields(f extFields) {
	f.int("epoch", &h.Epoch)
	f.int("epochStart", &h.EpochStart)
	f.int("confirmed", &h.Confirmed)
}

// BrokerGroupHeader names a broker group to the controller: GET_REPLICA_INFO's header, and the
// start of the others'. Local asks any member, leader or not, for its own view.
type BrokerGroupHeader struct {
	ClusterName string
	BrokerName  string
	Local       bool
}

func (h *BrokerGroupHeader) fields(f extFields) {
	f.strIf("clusterName", &h.ClusterName)
	f.strIf("brokerName", &h.BrokerName)
	f.custom(func(r *extReader) { h.Local = r.ext["local"] == "true" }, func(w extWriter) {
		if h.Local {
			w.bool("local", true)
		}
	})
}

// BrokerHeartbeatHeader is a replica's heartbeat to the controller. ClusterName, BrokerName,
// BrokerID and BrokerAddr are required; MasterEpoch (the last epoch of its log) and MaxOffset
// (its durable index) may be missing or empty (0), not malformed.
type BrokerHeartbeatHeader struct {
	ClusterName string
	BrokerName  string
	BrokerID    int64
	BrokerAddr  string
	MasterEpoch int64
	MaxOffset   int64
}

func (h *BrokerHeartbeatHeader) fields(f extFields) {
	f.requiredStr("clusterName", &h.ClusterName)
	f.requiredStr("brokerName", &h.BrokerName)
	f.int("brokerId", &h.BrokerID)
	f.requiredStr("brokerAddr", &h.BrokerAddr)
	f.optionalInt("masterEpoch", &h.MasterEpoch, 0)
	f.optionalInt("maxOffset", &h.MaxOffset, 0)
}

// AlterInSyncSetHeader is a master's request to the controller to change its group's in-sync
// set (the set is in the body). Every field is required.
type AlterInSyncSetHeader struct {
	ClusterName    string
	BrokerName     string
	MasterBrokerID int64
	MasterEpoch    int64
}

func (h *AlterInSyncSetHeader) fields(f extFields) {
	f.requiredStr("clusterName", &h.ClusterName)
	f.requiredStr("brokerName", &h.BrokerName)
	f.int("masterBrokerId", &h.MasterBrokerID)
	f.int("masterEpoch", &h.MasterEpoch)
}

// GroupResponseHeader is the controller's answer about one broker group: its master, epoch
// and in-sync set (comma-separated broker ids on the wire). MasterBrokerID, MasterEpoch and
// SyncStateSetEpoch are required; every id in the set must be a broker id (at least 1).
type GroupResponseHeader struct {
	MasterBrokerID    int64
	MasterAddress     string
	MasterEpoch       int64
	SyncStateSet      []int64
	SyncStateSetEpoch int64
}

func (h *GroupResponseHeader) fields(f extFields) {
	f.int("masterBrokerId", &h.MasterBrokerID)
	f.int("masterEpoch", &h.MasterEpoch)
	f.int("syncStateSetEpoch", &h.SyncStateSetEpoch)
	f.str("masterAddress", &h.MasterAddress)
	f.custom(h.decodeSyncStateSet, h.encodeSyncStateSet)
}

func (h *GroupResponseHeader) decodeSyncStateSet(r *extReader) {
	if s := r.str("syncStateSet"); s != "" {
		for _, f := range strings.Split(s, ",") {
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil || id < 1 {
				r.fail("syncStateSet", s, false, fmt.Sprintf("a list of broker ids (bad id %q)", f))
				h.SyncStateSet = nil
				return
			}
			h.SyncStateSet = append(h.SyncStateSet, id)
		}
	}
}

func (h *GroupResponseHeader) encodeSyncStateSet(w extWriter) {
	ids := make([]string, len(h.SyncStateSet))
	for i, id := range h.SyncStateSet {
		ids[i] = strconv.FormatInt(id, 10)
	}
	w.str("syncStateSet", strings.Join(ids, ","))
}

// NotLeaderResponseHeader is a controller member's answer when it is not the leader: which
// member is, if it knows (LeaderID 0, LeaderAddr "" when not).
type NotLeaderResponseHeader struct {
	LeaderID   uint64
	LeaderAddr string
}

func (h *NotLeaderResponseHeader) fields(f extFields) {
	f.custom(func(r *extReader) {
		if id, err := strconv.ParseUint(r.str("leaderId"), 10, 64); err == nil {
			h.LeaderID = id
		}
	}, func(w extWriter) { w.str("leaderId", strconv.FormatUint(h.LeaderID, 10)) })
	f.str("leaderAddr", &h.LeaderAddr)
}
