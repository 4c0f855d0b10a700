package codec

// PullHeader is PULL_MESSAGE's header (Java's PullMessageRequestHeader). QueueID and
// QueueOffset are required; the other numbers read as their default when missing or
// malformed.
type PullHeader struct {
	ConsumerGroup string
	Topic         string
	QueueID       int64
	QueueOffset   int64
	// MaxMsgNums defaults to 32.
	MaxMsgNums int64
	SysFlag    int64
	// CommitOffset defaults to -1 (none).
	CommitOffset         int64
	SuspendTimeoutMillis int64
	// Subscription is left out of the request when empty: the broker then uses the group's
	// subscription from its heartbeats.
	Subscription   string
	SubVersion     int64
	ExpressionType string
	BrokerName     string
}

func (h *PullHeader) decodeExt(r *extReader) {
	h.ConsumerGroup = r.str("consumerGroup")
	h.Topic = r.str("topic")
	h.QueueID = r.int("queueId")
	h.QueueOffset = r.int("queueOffset")
	h.MaxMsgNums = r.intOr("maxMsgNums", 32)
	h.SysFlag = r.intOr("sysFlag", 0)
	h.CommitOffset = r.intOr("commitOffset", -1)
	h.SuspendTimeoutMillis = r.intOr("suspendTimeoutMillis", 0)
	h.Subscription = r.str("subscription")
	h.SubVersion = r.intOr("subVersion", 0)
	h.ExpressionType = r.str("expressionType")
	h.BrokerName = r.str("bname")
}

func (h *PullHeader) encodeExt(w extWriter) {
	w.str("consumerGroup", h.ConsumerGroup)
	w.str("topic", h.Topic)
	w.int("queueId", h.QueueID)
	w.int("queueOffset", h.QueueOffset)
	w.int("maxMsgNums", h.MaxMsgNums)
	w.int("sysFlag", h.SysFlag)
	w.int("commitOffset", h.CommitOffset)
	w.int("suspendTimeoutMillis", h.SuspendTimeoutMillis)
	w.strIf("subscription", h.Subscription)
	w.int("subVersion", h.SubVersion)
	w.str("expressionType", h.ExpressionType)
	w.str("bname", h.BrokerName)
}

// PullResponseHeader is the answer to a pull: where to pull next, the queue's range, and the
// replica to pull from next. Read leniently, as the official client reads it: a missing or
// malformed offset is 0, a missing or malformed suggestion -1 (none).
type PullResponseHeader struct {
	NextBeginOffset      int64
	MinOffset            int64
	MaxOffset            int64
	SuggestWhichBrokerID int64
}

func (h *PullResponseHeader) decodeExt(r *extReader) {
	h.NextBeginOffset = r.intOr("nextBeginOffset", 0)
	h.MinOffset = r.intOr("minOffset", 0)
	h.MaxOffset = r.intOr("maxOffset", 0)
	h.SuggestWhichBrokerID = r.intOr("suggestWhichBrokerId", -1)
}

func (h *PullResponseHeader) encodeExt(w extWriter) {
	w.int("nextBeginOffset", h.NextBeginOffset)
	w.int("minOffset", h.MinOffset)
	w.int("maxOffset", h.MaxOffset)
	w.int("suggestWhichBrokerId", h.SuggestWhichBrokerID)
}

// QueryConsumerOffsetHeader is QUERY_CONSUMER_OFFSET's header.
type QueryConsumerOffsetHeader struct {
	ConsumerGroup string
	Topic         string
	QueueID       int64
	BrokerName    string
}

func (h *QueryConsumerOffsetHeader) decodeExt(r *extReader) {
	h.ConsumerGroup = r.str("consumerGroup")
	h.Topic = r.str("topic")
	h.QueueID = r.int("queueId")
	h.BrokerName = r.str("bname")
}

func (h *QueryConsumerOffsetHeader) encodeExt(w extWriter) {
	w.str("consumerGroup", h.ConsumerGroup)
	w.str("topic", h.Topic)
	w.int("queueId", h.QueueID)
	w.str("bname", h.BrokerName)
}

// UpdateConsumerOffsetHeader is UPDATE_CONSUMER_OFFSET's header: every field but the broker
// name is required, the group and topic not empty.
type UpdateConsumerOffsetHeader struct {
	ConsumerGroup string
	Topic         string
	QueueID       int64
	CommitOffset  int64
	BrokerName    string
}

func (h *UpdateConsumerOffsetHeader) decodeExt(r *extReader) {
	h.ConsumerGroup = r.requiredStr("consumerGroup")
	h.Topic = r.requiredStr("topic")
	h.QueueID = r.int("queueId")
	h.CommitOffset = r.int("commitOffset")
	h.BrokerName = r.str("bname")
}

func (h *UpdateConsumerOffsetHeader) encodeExt(w extWriter) {
	w.str("consumerGroup", h.ConsumerGroup)
	w.str("topic", h.Topic)
	w.int("queueId", h.QueueID)
	w.int("commitOffset", h.CommitOffset)
	w.str("bname", h.BrokerName)
}

// QueueOffsetHeader is the header of GET_MIN_OFFSET and GET_MAX_OFFSET (one queue).
type QueueOffsetHeader struct {
	Topic      string
	QueueID    int64
	BrokerName string
}

func (h *QueueOffsetHeader) decodeExt(r *extReader) {
	h.Topic = r.str("topic")
	h.QueueID = r.int("queueId")
	h.BrokerName = r.str("bname")
}

func (h *QueueOffsetHeader) encodeExt(w extWriter) {
	w.str("topic", h.Topic)
	w.int("queueId", h.QueueID)
	w.str("bname", h.BrokerName)
}

// SearchOffsetHeader is SEARCH_OFFSET_BY_TIMESTAMP's header: a queue and a store time (ms).
type SearchOffsetHeader struct {
	Topic       string
	QueueID     int64
	TimestampMs int64
	BrokerName  string
}

func (h *SearchOffsetHeader) decodeExt(r *extReader) {
	h.Topic = r.str("topic")
	h.QueueID = r.int("queueId")
	h.TimestampMs = r.int("timestamp")
	h.BrokerName = r.str("bname")
}

func (h *SearchOffsetHeader) encodeExt(w extWriter) {
	w.str("topic", h.Topic)
	w.int("queueId", h.QueueID)
	w.int("timestamp", h.TimestampMs)
	w.str("bname", h.BrokerName)
}

// OffsetResponseHeader is the answer to the offset requests (query, min, max, search): one
// queue offset, required.
type OffsetResponseHeader struct {
	Offset int64
}

func (h *OffsetResponseHeader) decodeExt(r *extReader) { h.Offset = r.int("offset") }
func (h *OffsetResponseHeader) encodeExt(w extWriter)  { w.int("offset", h.Offset) }

// ConsumerGroupHeader names a consumer group: GET_CONSUMER_LIST_BY_GROUP's header, and
// NOTIFY_CONSUMER_IDS_CHANGED's (the broker to a member).
type ConsumerGroupHeader struct {
	ConsumerGroup string
}

func (h *ConsumerGroupHeader) decodeExt(r *extReader) { h.ConsumerGroup = r.str("consumerGroup") }
func (h *ConsumerGroupHeader) encodeExt(w extWriter)  { w.str("consumerGroup", h.ConsumerGroup) }

// UnregisterClientHeader is UNREGISTER_CLIENT's header.
type UnregisterClientHeader struct {
	ClientID      string
	ProducerGroup string
	ConsumerGroup string
}

func (h *UnregisterClientHeader) decodeExt(r *extReader) {
	h.ClientID = r.str("clientID")
	h.ProducerGroup = r.str("producerGroup")
	h.ConsumerGroup = r.str("consumerGroup")
}

func (h *UnregisterClientHeader) encodeExt(w extWriter) {
	w.str("clientID", h.ClientID)
	w.strIf("producerGroup", h.ProducerGroup)
	w.strIf("consumerGroup", h.ConsumerGroup)
}

// SendBackHeader is CONSUMER_SEND_MSG_BACK's header: the group (required, not empty), the
// commit-log offset of the message (required), its delay level and maximum reconsume count
// (optional, but not malformed).
type SendBackHeader struct {
	Group       string
	Offset      int64
	DelayLevel  int64
	OriginMsgID string
	OriginTopic string
	UnitMode    bool
	// MaxReconsumeTimes defaults to DefaultMaxReconsumeTimes.
	MaxReconsumeTimes int64
	BrokerName        string
}

func (h *SendBackHeader) decodeExt(r *extReader) {
	h.Group = r.requiredStr("group")
	h.Offset = r.int("offset")
	h.DelayLevel = r.optionalInt("delayLevel", 0)
	h.OriginMsgID = r.str("originMsgId")
	h.OriginTopic = r.str("originTopic")
	h.UnitMode = r.bool("unitMode")
	h.MaxReconsumeTimes = r.optionalInt("maxReconsumeTimes", DefaultMaxReconsumeTimes)
	h.BrokerName = r.str("bname")
}

func (h *SendBackHeader) encodeExt(w extWriter) {
	w.str("group", h.Group)
	w.int("offset", h.Offset)
	w.int("delayLevel", h.DelayLevel)
	w.str("originMsgId", h.OriginMsgID)
	w.str("originTopic", h.OriginTopic)
	w.bool("unitMode", h.UnitMode)
	w.int("maxReconsumeTimes", h.MaxReconsumeTimes)
	w.str("bname", h.BrokerName)
}

// EndTransactionHeader is END_TRANSACTION's header: the three numbers are required.
type EndTransactionHeader struct {
	ProducerGroup        string
	TranStateTableOffset int64
	CommitLogOffset      int64
	// CommitOrRollback is 0 (unknown), SysFlagTxnCommit or SysFlagTxnRollback.
	CommitOrRollback     int64
	FromTransactionCheck bool
	MsgID                string
	TransactionID        string
	BrokerName           string
}

func (h *EndTransactionHeader) decodeExt(r *extReader) {
	h.ProducerGroup = r.str("producerGroup")
	h.TranStateTableOffset = r.int("tranStateTableOffset")
	h.CommitLogOffset = r.int("commitLogOffset")
	h.CommitOrRollback = r.int("commitOrRollback")
	h.FromTransactionCheck = r.bool("fromTransactionCheck")
	h.MsgID = r.str("msgId")
	h.TransactionID = r.str("transactionId")
	h.BrokerName = r.str("bname")
}

func (h *EndTransactionHeader) encodeExt(w extWriter) {
	w.str("producerGroup", h.ProducerGroup)
	w.int("tranStateTableOffset", h.TranStateTableOffset)
	w.int("commitLogOffset", h.CommitLogOffset)
	w.int("commitOrRollback", h.CommitOrRollback)
	w.bool("fromTransactionCheck", h.FromTransactionCheck)
	w.str("msgId", h.MsgID)
	w.str("transactionId", h.TransactionID)
	w.str("bname", h.BrokerName)
}

// CheckTransactionStateHeader is CHECK_TRANSACTION_STATE's header (the broker asks a
// producer): the half message's queue offset and commit-log offset are required.
type CheckTransactionStateHeader struct {
	TranStateTableOffset int64
	CommitLogOffset      int64
	MsgID                string
	TransactionID        string
	OffsetMsgID          string
}

func (h *CheckTransactionStateHeader) decodeExt(r *extReader) {
	h.TranStateTableOffset = r.int("tranStateTableOffset")
	h.CommitLogOffset = r.int("commitLogOffset")
	h.MsgID = r.str("msgId")
	h.TransactionID = r.str("transactionId")
	h.OffsetMsgID = r.str("offsetMsgId")
}

func (h *CheckTransactionStateHeader) encodeExt(w extWriter) {
	w.int("tranStateTableOffset", h.TranStateTableOffset)
	w.int("commitLogOffset", h.CommitLogOffset)
	w.str("msgId", h.MsgID)
	w.str("transactionId", h.TransactionID)
	w.str("offsetMsgId", h.OffsetMsgID)
}
