package codec

// DefaultMaxReconsumeTimes is how many times a message is redelivered before it goes to its
// group's dead-letter topic when the header does not say (Java's default maxReconsumeTimes).
const DefaultMaxReconsumeTimes = 16

// SendHeader is the header of a send: SEND_MESSAGE and SEND_REPLY_MESSAGE with their long
// names (Java's SendMessageRequestHeader), SEND_MESSAGE_V2, SEND_BATCH_MESSAGE and
// SEND_REPLY_MESSAGE_V2 with one letter each (SendMessageRequestHeaderV2); DecodeSendHeader
// reads either into it, as Java converts V2 to V1 before one send path serves both.
//
// QueueID is required; the numeric fields a client always sends read as their default when
// missing or malformed, as Sluice has always read them.
type SendHeader struct {
	ProducerGroup string
	Topic         string
	DefaultTopic  string
	// DefaultTopicQueueNums is the queue count for a topic this send creates (0: the broker's
	// default).
	DefaultTopicQueueNums int64
	// QueueID is the queue asked for; negative lets the broker pick one.
	QueueID int64
	// SysFlag and Flag hold the low 32 bits of what was sent.
	SysFlag        int32
	BornTimestamp  int64
	Flag           int32
	Properties     string
	ReconsumeTimes int64
	UnitMode       bool
	// MaxReconsumeTimes defaults to DefaultMaxReconsumeTimes.
	MaxReconsumeTimes int64
	Batch             bool
	// BrokerName is RocketMQ 5's bname (n in V2).
	BrokerName string
}

// sendNames are a send header's field names: long (SEND_MESSAGE) or one letter (V2).
type sendNames struct {
	producerGroup, topic, defaultTopic, defaultTopicQueueNums, queueID, sysFlag, bornTimestamp,
	flag, properties, reconsumeTimes, unitMode, maxReconsumeTimes, batch, brokerName string
}

var (
	sendLongNames = sendNames{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
		"sysFlag", "bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode", "maxReconsumeTimes", "batch", "bname"}
	sendV2Names = sendNames{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n"}
	// sendV2Alias names each letter's long field, for errors.
	sendV2Alias = map[string]string{"a": "producerGroup", "b": "topic", "c": "defaultTopic", "d": "defaultTopicQueueNums",
		"e": "queueId", "f": "sysFlag", "g": "bornTimestamp", "h": "flag", "i": "properties", "j": "reconsumeTimes",
		"k": "unitMode", "l": "maxReconsumeTimes", "m": "batch", "n": "bname"}
)

// IsSendV2 reports whether requests of code carry the one-letter send header.
func IsSendV2(code int16) bool {
	return code == ReqSendMessageV2 || code == ReqSendBatchMessage || code == ReqSendReplyMessageV2
}

// DecodeSendHeader decodes the header of a send request of any kind, by its code. A V2 header
// is read from its letters only: a long name the request also carries is ignored, as Java's
// V2 header ignores it.
func DecodeSendHeader(c *Command) (SendHeader, error) {
	var h SendHeader
	r := extReader{ext: c.ExtFields}
	names := &sendLongNames
	if IsSendV2(c.Code) {
		names, r.alias = &sendV2Names, sendV2Alias
	}
	h.decodeNames(&r, names)
	return h, r.err
}

func (h *SendHeader) decodeNames(r *extReader, n *sendNames) {
	h.ProducerGroup = r.str(n.producerGroup)
	h.Topic = r.str(n.topic)
	h.DefaultTopic = r.str(n.defaultTopic)
	h.DefaultTopicQueueNums = r.intOr(n.defaultTopicQueueNums, 0)
	h.QueueID = r.int(n.queueID)
	h.SysFlag = int32(r.intOr(n.sysFlag, 0))
	h.BornTimestamp = r.intOr(n.bornTimestamp, 0)
	h.Flag = int32(r.intOr(n.flag, 0))
	h.Properties = r.str(n.properties)
	h.ReconsumeTimes = r.intOr(n.reconsumeTimes, 0)
	h.UnitMode = r.bool(n.unitMode)
	h.MaxReconsumeTimes = r.intOr(n.maxReconsumeTimes, DefaultMaxReconsumeTimes)
	h.Batch = r.bool(n.batch)
	h.BrokerName = r.str(n.brokerName)
}

func (h *SendHeader) encodeNames(w extWriter, n *sendNames) {
	w.str(n.producerGroup, h.ProducerGroup)
	w.str(n.topic, h.Topic)
	w.str(n.defaultTopic, h.DefaultTopic)
	w.int(n.defaultTopicQueueNums, h.DefaultTopicQueueNums)
	w.int(n.queueID, h.QueueID)
	w.int(n.sysFlag, int64(h.SysFlag))
	w.int(n.bornTimestamp, h.BornTimestamp)
	w.int(n.flag, int64(h.Flag))
	w.str(n.properties, h.Properties)
	w.int(n.reconsumeTimes, h.ReconsumeTimes)
	w.bool(n.unitMode, h.UnitMode)
	w.int(n.maxReconsumeTimes, h.MaxReconsumeTimes)
	w.bool(n.batch, h.Batch)
	w.str(n.brokerName, h.BrokerName)
}

// decodeExt and encodeExt use the long names (SEND_MESSAGE); see DecodeSendHeader and
// EncodeSendHeaderV2 for V2.
func (h *SendHeader) decodeExt(r *extReader) { h.decodeNames(r, &sendLongNames) }
func (h *SendHeader) encodeExt(w extWriter)  { h.encodeNames(w, &sendLongNames) }

// EncodeSendHeaderV2 is h with SEND_MESSAGE_V2's one-letter names.
func EncodeSendHeaderV2(h SendHeader) map[string]string {
	w := extWriter{}
	h.encodeNames(w, &sendV2Names)
	return w
}

// SendResponseHeader is the answer to a send: the offset message id(s) (comma-separated for a
// batch), the queue and the queue offset of the first message, and Java's region and trace
// markers.
type SendResponseHeader struct {
	// NoMessage is an answer that names no message: it carries none of msgId, queueId and
	// queueOffset (a reply that was neither pushed nor stored). It is decoded from an answer
	// without msgId; otherwise queueOffset is required.
	NoMessage     bool
	MsgID         string
	QueueID       int32
	QueueOffset   int64
	TransactionID string
	Region        string
	TraceOn       bool
}

// NewSendResponseHeader is the answer the broker writes, with Java's region and trace markers.
func NewSendResponseHeader(msgID string, queueID int32, queueOffset int64) SendResponseHeader {
	return SendResponseHeader{MsgID: msgID, QueueID: queueID, QueueOffset: queueOffset, Region: "DefaultRegion", TraceOn: true}
}

func (h *SendResponseHeader) decodeExt(r *extReader) {
	var ok bool
	if h.MsgID, ok = r.ext["msgId"]; ok {
		h.QueueID = int32(r.intOr("queueId", 0))
		h.QueueOffset = r.int("queueOffset")
	} else {
		h.NoMessage = true
	}
	h.TransactionID = r.str("transactionId")
	h.Region = r.str("MSG_REGION")
	h.TraceOn = r.bool("TRACE_ON")
}

func (h *SendResponseHeader) encodeExt(w extWriter) {
	if !h.NoMessage {
		w.str("msgId", h.MsgID)
		w.int("queueId", int64(h.QueueID))
		w.int("queueOffset", h.QueueOffset)
	}
	w.strIf("transactionId", h.TransactionID)
	w.str("MSG_REGION", h.Region)
	w.bool("TRACE_ON", h.TraceOn)
}

// ReplyPushHeader is PUSH_REPLY_MESSAGE_TO_CLIENT's header (Java's ReplyMessageRequestHeader):
// the reply's send header as the replier sent it (with long names, and without
// maxReconsumeTimes, batch and bname), with the broker's hosts and store time; the broker sets
// the properties.
type ReplyPushHeader struct {
	SendHeader
	BornHost       string
	StoreHost      string
	StoreTimestamp int64
}

// replyPushNames are the send fields a reply push carries; "" is a field it leaves out.
var replyPushNames = sendNames{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
	"sysFlag", "bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode", "", "", ""}

func (h *ReplyPushHeader) decodeExt(r *extReader) {
	h.SendHeader.decodeNames(r, &replyPushNames)
	h.BornHost = r.str("bornHost")
	h.StoreHost = r.str("storeHost")
	h.StoreTimestamp = r.intOr("storeTimestamp", 0)
}

func (h *ReplyPushHeader) encodeExt(w extWriter) {
	h.SendHeader.encodeNames(w, &replyPushNames)
	w.str("bornHost", h.BornHost)
	w.str("storeHost", h.StoreHost)
	w.int("storeTimestamp", h.StoreTimestamp)
}
