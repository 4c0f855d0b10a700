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

func (h *RegisterBrokerHeader) decodeExt(r *extReader) {
	h.BrokerName = r.str("brokerName")
	h.BrokerAddr = r.str("brokerAddr")
	h.ClusterName = r.str("clusterName")
	h.BrokerID = r.int("brokerId")
	h.HAServerAddr = r.str("haServerAddr")
	h.Compressed = r.bool("compressed")
	h.BodyCRC32 = r.intOr("bodyCrc32", 0)
}

func (h *RegisterBrokerHeader) encodeExt(w extWriter) {
	w.str("brokerName", h.BrokerName)
	w.str("brokerAddr", h.BrokerAddr)
	w.str("clusterName", h.ClusterName)
	w.int("brokerId", h.BrokerID)
	w.str("haServerAddr", h.HAServerAddr)
	w.bool("compressed", h.Compressed)
	w.int("bodyCrc32", h.BodyCRC32)
}

// RegisterBrokerResponseHeader is a name server's answer to REGISTER_BROKER: a slave's master
// and its HA address, empty for a master.
type RegisterBrokerResponseHeader struct {
	MasterAddr   string
	HAServerAddr string
}

func (h *RegisterBrokerResponseHeader) decodeExt(r *extReader) {
	h.MasterAddr = r.str("masterAddr")
	h.HAServerAddr = r.str("haServerAddr")
}

func (h *RegisterBrokerResponseHeader) encodeExt(w extWriter) {
	w.str("masterAddr", h.MasterAddr)
	w.str("haServerAddr", h.HAServerAddr)
}

// UnregisterBrokerHeader is UNREGISTER_BROKER's header; a name server needs the address only.
type UnregisterBrokerHeader struct {
	BrokerName  string
	BrokerAddr  string
	ClusterName string
	BrokerID    int64
}

func (h *UnregisterBrokerHeader) decodeExt(r *extReader) {
	h.BrokerName = r.str("brokerName")
	h.BrokerAddr = r.str("brokerAddr")
	h.ClusterName = r.str("clusterName")
	h.BrokerID = r.intOr("brokerId", 0)
}

func (h *UnregisterBrokerHeader) encodeExt(w extWriter) {
	w.str("brokerName", h.BrokerName)
	w.str("brokerAddr", h.BrokerAddr)
	w.str("clusterName", h.ClusterName)
	w.int("brokerId", h.BrokerID)
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

func (h *ReplicaHeader) decodeExt(r *extReader) {
	h.BrokerID = r.intOr("brokerId", 0)
	h.MasterEpoch = r.optionalInt("masterEpoch", NoMasterEpoch)
}

func (h *ReplicaHeader) encodeExt(w extWriter) {
	w.int("brokerId", h.BrokerID)
	w.int("masterEpoch", h.MasterEpoch)
}

// ReplicaFetchHeader is a slave's fetch of its master's commit log: from which index, and what
// it has made durable. BrokerID, From and Synced are required; MasterEpoch as in ReplicaHeader.
type ReplicaFetchHeader struct {
	BrokerID    int64
	MasterEpoch int64
	From        int64
	Synced      int64
}

func (h *ReplicaFetchHeader) decodeExt(r *extReader) {
	h.MasterEpoch = r.optionalInt("masterEpoch", NoMasterEpoch)
	h.BrokerID = r.int("brokerId")
	h.From = r.int("from")
	h.Synced = r.int("synced")
}

func (h *ReplicaFetchHeader) encodeExt(w extWriter) {
	w.int("brokerId", h.BrokerID)
	w.int("masterEpoch", h.MasterEpoch)
	w.int("from", h.From)
	w.int("synced", h.Synced)
}

// HandshakeResponseHeader is a master's answer to a handshake: the end of what it may serve
// and its epoch. LastIndex is required.
type HandshakeResponseHeader struct {
	LastIndex int64
	Epoch     int64
}

func (h *HandshakeResponseHeader) decodeExt(r *extReader) {
	h.LastIndex = r.int("lastIndex")
	h.Epoch = r.intOr("epoch", 0)
}

func (h *HandshakeResponseHeader) encodeExt(w extWriter) {
	w.int("lastIndex", h.LastIndex)
	w.int("epoch", h.Epoch)
}

// FetchResponseHeader is a master's answer to a fetch: the epoch of the records, where it
// starts, and the master's confirmed index. All required.
type FetchResponseHeader struct {
	Epoch      int64
	EpochStart int64
	Confirmed  int64
}

func (h *FetchResponseHeader) decodeExt(r *extReader) {
	h.Epoch = r.int("epoch")
	h.EpochStart = r.int("epochStart")
	h.Confirmed = r.int("confirmed")
}

func (h *FetchResponseHeader) encodeExt(w extWriter) {
	w.int("epoch", h.Epoch)
	w.int("epochStart", h.EpochStart)
	w.int("confirmed", h.Confirmed)
}

// BrokerGroupHeader names a broker group to the controller: GET_REPLICA_INFO's header, and the
// start of the others'. Local asks any member, leader or not, for its own view.
type BrokerGroupHeader struct {
	ClusterName string
	BrokerName  string
	Local       bool
}

func (h *BrokerGroupHeader) decodeExt(r *extReader) {
	h.ClusterName = r.str("clusterName")
	h.BrokerName = r.str("brokerName")
	h.Local = r.ext["local"] == "true"
}

func (h *BrokerGroupHeader) encodeExt(w extWriter) {
	w.strIf("clusterName", h.ClusterName)
	w.strIf("brokerName", h.BrokerName)
	if h.Local {
		w.bool("local", true)
	}
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

func (h *BrokerHeartbeatHeader) decodeExt(r *extReader) {
	h.ClusterName = r.requiredStr("clusterName")
	h.BrokerName = r.requiredStr("brokerName")
	h.BrokerID = r.int("brokerId")
	h.BrokerAddr = r.requiredStr("brokerAddr")
	h.MasterEpoch = r.optionalInt("masterEpoch", 0)
	h.MaxOffset = r.optionalInt("maxOffset", 0)
}

func (h *BrokerHeartbeatHeader) encodeExt(w extWriter) {
	w.str("clusterName", h.ClusterName)
	w.str("brokerName", h.BrokerName)
	w.int("brokerId", h.BrokerID)
	w.str("brokerAddr", h.BrokerAddr)
	w.int("masterEpoch", h.MasterEpoch)
	w.int("maxOffset", h.MaxOffset)
}

// AlterInSyncSetHeader is a master's request to the controller to change its group's in-sync
// set (the set is in the body). Every field is required.
type AlterInSyncSetHeader struct {
	ClusterName    string
	BrokerName     string
	MasterBrokerID int64
	MasterEpoch    int64
}

func (h *AlterInSyncSetHeader) decodeExt(r *extReader) {
	h.ClusterName = r.requiredStr("clusterName")
	h.BrokerName = r.requiredStr("brokerName")
	h.MasterBrokerID = r.int("masterBrokerId")
	h.MasterEpoch = r.int("masterEpoch")
}

func (h *AlterInSyncSetHeader) encodeExt(w extWriter) {
	w.str("clusterName", h.ClusterName)
	w.str("brokerName", h.BrokerName)
	w.int("masterBrokerId", h.MasterBrokerID)
	w.int("masterEpoch", h.MasterEpoch)
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

func (h *GroupResponseHeader) decodeExt(r *extReader) {
	h.MasterBrokerID = r.int("masterBrokerId")
	h.MasterEpoch = r.int("masterEpoch")
	h.SyncStateSetEpoch = r.int("syncStateSetEpoch")
	h.MasterAddress = r.str("masterAddress")
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

func (h *GroupResponseHeader) encodeExt(w extWriter) {
	ids := make([]string, len(h.SyncStateSet))
	for i, id := range h.SyncStateSet {
		ids[i] = strconv.FormatInt(id, 10)
	}
	w.int("masterBrokerId", h.MasterBrokerID)
	w.str("masterAddress", h.MasterAddress)
	w.int("masterEpoch", h.MasterEpoch)
	w.str("syncStateSet", strings.Join(ids, ","))
	w.int("syncStateSetEpoch", h.SyncStateSetEpoch)
}

// NotLeaderResponseHeader is a controller member's answer when it is not the leader: which
// member is, if it knows (LeaderID 0, LeaderAddr "" when not).
type NotLeaderResponseHeader struct {
	LeaderID   uint64
	LeaderAddr string
}

func (h *NotLeaderResponseHeader) decodeExt(r *extReader) {
	if id, err := strconv.ParseUint(r.str("leaderId"), 10, 64); err == nil {
		h.LeaderID = id
	}
	h.LeaderAddr = r.str("leaderAddr")
}

func (h *NotLeaderResponseHeader) encodeExt(w extWriter) {
	w.str("leaderId", strconv.FormatUint(h.LeaderID, 10))
	w.str("leaderAddr", h.LeaderAddr)
}
