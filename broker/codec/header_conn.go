package codec

// ConsumerConnectionHeader is GET_CONSUMER_CONNECTION_LIST's header (Java's
// GetConsumerConnectionListRequestHeader).
type ConsumerConnectionHeader struct {
	ConsumerGroup string
}

func (h *ConsumerConnectionHeader) fields(f extFields) {
	f.requiredStr("consumerGroup", &h.ConsumerGroup)
}

// ProducerConnectionHeader is GET_PRODUCER_CONNECTION_LIST's header (Java's
// GetProducerConnectionListRequestHeader).
type ProducerConnectionHeader struct {
	ProducerGroup string
}

func (h *ProducerConnectionHeader) fields(f extFields) {
	f.requiredStr("producerGroup", &h.ProducerGroup)
}

// ResetOffsetHeader is INVOKE_BROKER_TO_RESET_OFFSET's header (Java's
// ResetOffsetRequestHeader), and, with Group, Topic and TimestampMs only, the header of the
// RESET_CONSUMER_CLIENT_OFFSET push to a client. TimestampMs -1 means each queue's end.
// QueueID -1 (the default) means every queue; Offset -1 (the default) means "find it by
// TimestampMs". IsForce false moves no queue forward.
type ResetOffsetHeader struct {
	Group       string
	Topic       string
	TimestampMs int64
	IsForce     bool
	QueueID     int64
	Offset      int64
	// Push: write the client push's fields only (topic, group, timestamp), as Java's
	// Broker2Client does.
	Push bool
}

func (h *ResetOffsetHeader) fields(f extFields) {
	f.requiredStr("group", &h.Group)
	f.requiredStr("topic", &h.Topic)
	f.int("timestamp", &h.TimestampMs)
	f.custom(func(r *extReader) {
		h.IsForce = r.bool("isForce")
		h.QueueID = r.optionalInt("queueId", -1)
		h.Offset = r.optionalInt("offset", -1)
	}, func(w extWriter) {
		if h.Push {
			return
		}
		w.bool("isForce", h.IsForce)
		w.int("queueId", h.QueueID)
		if h.Offset >= 0 {
			w.int("offset", h.Offset)
		}
	})
}

// ControllerMetadataHeader is CONTROLLER_GET_METADATA_INFO's answer header (RocketMQ 5's
// GetMetaDataResponseHeader): the controller group's name, its leader, whether the answering
// member leads, and the members as "id-addr" joined by ';'. ControllerID and RaftTerm are
// Sluice's own additions: the answering member's raft id and its raft term.
type ControllerMetadataHeader struct {
	Group                   string
	ControllerLeaderID      string
	ControllerLeaderAddress string
	IsLeader                bool
	Peers                   string
	ControllerID            string
	RaftTerm                int64
}

func (h *ControllerMetadataHeader) fields(f extFields) {
	f.str("group", &h.Group)
	f.str("controllerLeaderId", &h.ControllerLeaderID)
	f.str("controllerLeaderAddress", &h.ControllerLeaderAddress)
	f.bool("isLeader", &h.IsLeader)
	f.str("peers", &h.Peers)
	f.strIf("controllerId", &h.ControllerID)
	f.optionalInt("raftTerm", &h.RaftTerm, 0)
}
