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

func (h *PullHeader) fields(f extFields) {
	f.str("consumerGroup", &h.ConsumerGroup)
	f.str("topic", &h.Topic)
	f.int("queueId", &h.QueueID)
	f.int("queueOffset", &h.QueueOffset)
	f.intOr("maxMsgNums", &h.MaxMsgNums, 32)
	f.intOr("sysFlag", &h.SysFlag, 0)
	f.intOr("commitOffset", &h.CommitOffset, -1)
	f.intOr("suspendTimeoutMillis", &h.SuspendTimeoutMillis, 0)
	f.strIf("subscription", &h.Subscription)
	f.intOr("subVersion", &h.SubVersion, 0)
	f.str("expressionType", &h.ExpressionType)
	f.str("bname", &h.BrokerName)
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

func (h *PullResponseHeader) fields(f extFields) {
	f.intOr("nextBeginOffset", &h.NextBeginOffset, 0)
	f.intOr("minOffset", &h.MinOffset, 0)
	f.intOr("maxOffset", &h.MaxOffset, 0)
	f.intOr("suggestWhichBrokerId", &h.SuggestWhichBrokerID, -1)
}

// QueryConsumerOffsetHeader is QUERY_CONSUMER_OFFSET's header.
type QueryConsumerOffsetHeader struct {
	ConsumerGroup string
	Topic         string
	QueueID       int64
	BrokerName    string
}

func (h *QueryConsumerOffsetHeader) fields(f extFields) {
	f.str("consumerGroup", &h.ConsumerGroup)
	f.str("topic", &h.Topic)
	f.int("queueId", &h.QueueID)
	f.str("bname", &h.BrokerName)
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

func (h *UpdateConsumerOffsetHeader) fields(f extFields) {
	f.requiredStr("consumerGroup", &h.ConsumerGroup)
	f.requiredStr("topic", &h.Topic)
	f.int("queueId", &h.QueueID)
	f.int("commitOffset", &h.CommitOffset)
	f.str("bname", &h.BrokerName)
}

// QueueOffsetHeader is the header of GET_MIN_OFFSET and GET_MAX_OFFSET (one queue).
type QueueOffsetHeader struct {
	Topic      string
	QueueID    int64
	BrokerName string
}

func (h *QueueOffsetHeader) fields(f extFields) {
	f.str("topic", &h.Topic)
	f.int("queueId", &h.QueueID)
	f.str("bname", &h.BrokerName)
}

// SearchOffsetHeader is SEARCH_OFFSET_BY_TIMESTAMP's header: a queue and a store time (ms).
type SearchOffsetHeader struct {
	Topic       string
	QueueID     int64
	TimestampMs int64
	BrokerName  string
}

func (h *SearchOffsetHeader) fields(f extFields) {
	f.str("topic", &h.Topic)
	f.int("queueId", &h.QueueID)
	f.int("timestamp", &h.TimestampMs)
	f.str("bname", &h.BrokerName)
}

// OffsetResponseHeader is the answer to the offset requests (query, min, max, search): one
// queue offset, required.
type OffsetResponseHeader struct {
	Offset int64
}

func (h *OffsetResponseHeader) fields(f extFields) { f.int("offset", &h.Offset) }

// ConsumerGroupHeader names a consumer group: GET_CONSUMER_LIST_BY_GROUP's header, and
// NOTIFY_CONSUMER_IDS_CHANGED's (the broker to a member).
type ConsumerGroupHeader struct {
	ConsumerGroup string
}

func (h *ConsumerGroupHeader) fields(f extFields) { f.str("consumerGroup", &h.ConsumerGroup) }

// UnregisterClientHeader is UNREGISTER_CLIENT's header.
type UnregisterClientHeader struct {
	ClientID      string
	ProducerGroup string
	ConsumerGroup string
}

func (h *UnregisterClientHeader) fields(f extFields) {
	f.str("clientID", &h.ClientID)
	f.strIf("producerGroup", &h.ProducerGroup)
	f.strIf("consumerGroup", &h.ConsumerGroup)
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

func (h *SendBackHeader) fields(f extFields) {
	f.requiredStr("group", &h.Group)
	f.int("offset", &h.Offset)
	f.optionalInt("delayLevel", &h.DelayLevel, 0)
	f.str("originMsgId", &h.OriginMsgID)
	f.str("originTopic", &h.OriginTopic)
	f.bool("unitMode", &h.UnitMode)
	f.optionalInt("maxReconsumeTimes", &h.MaxReconsumeTimes, DefaultMaxReconsumeTimes)
	f.str("bname", &h.BrokerName)
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

func (h *EndTransactionHeader) fields(f extFields) {
	f.str("producerGroup", &h.ProducerGroup)
	f.int("tranStateTableOffset", &h.TranStateTableOffset)
	f.int("commitLogOffset", &h.CommitLogOffset)
	f.int("commitOrRollback", &h.CommitOrRollback)
	f.bool("fromTransactionCheck", &h.FromTransactionCheck)
	f.str("msgId", &h.MsgID)
	f.str("transactionId", &h.TransactionID)
	f.str("bname", &h.BrokerName)
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

func (h *CheckTransactionStateHeader) fields(f extFields) {
	f.int("tranStateTableOffset", &h.TranStateTableOffset)
	f.int("commitLogOffset", &h.CommitLogOffset)
	f.str("msgId", &h.MsgID)
	f.str("transactionId", &h.TransactionID)
	f.str("offsetMsgId", &h.OffsetMsgID)
}
