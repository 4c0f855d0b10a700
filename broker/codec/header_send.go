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
	h.namedFields(fieldDecoder{&r}, names)
	return h, r.err
}

// namedFields are the send header's fields under the names n.
func (h *SendHeader) namedFields(f extFields, n *sendNames) {
	f.str(n.producerGroup, &h.ProducerGroup)
	f.str(n.topic, &h.Topic)
	f.str(n.defaultTopic, &h.DefaultTopic)
	f.intOr(n.defaultTopicQueueNums, &h.DefaultTopicQueueNums, 0)
	f.int(n.queueID, &h.QueueID)
	f.int32Or(n.sysFlag, &h.SysFlag, 0)
	f.intOr(n.bornTimestamp, &h.BornTimestamp, 0)
	f.int32Or(n.flag, &h.Flag, 0)
	f.str(n.properties, &h.Properties)
	f.intOr(n.reconsumeTimes, &h.ReconsumeTimes, 0)
	f.bool(n.unitMode, &h.UnitMode)
	f.intOr(n.maxReconsumeTimes, &h.MaxReconsumeTimes, DefaultMaxReconsumeTimes)
	f.bool(n.batch, &h.Batch)
	f.str(n.brokerName, &h.BrokerName)
}

// fields uses the long names (SEND_MESSAGE); see DecodeSendHeader and EncodeSendHeaderV2 for
// V2.
func (h *SendHeader) fields(f extFields) { h.namedFields(f, &sendLongNames) }

// EncodeSendHeaderV2 is h with SEND_MESSAGE_V2's one-letter names.
func EncodeSendHeaderV2(h SendHeader) map[string]string {
	w := extWriter{}
	h.namedFields(fieldEncoder{w}, &sendV2Names)
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

func (h *SendResponseHeader) fields(f extFields) {
	f.custom(h.decodeMessage, h.encodeMessage)
	f.strIf("transactionId", &h.TransactionID)
	f.str("MSG_REGION", &h.Region)
	f.bool("TRACE_ON", &h.TraceOn)
}

// decodeMessage and encodeMessage are the fields that name the message (NoMessage).
func (h *SendResponseHeader) decodeMessage(r *extReader) {
	var ok bool
	if h.MsgID, ok = r.ext["msgId"]; ok {
		h.QueueID = int32(r.intOr("queueId", 0))
		h.QueueOffset = r.int("queueOffset")
	} else {
		h.NoMessage = true
	}
}

func (h *SendResponseHeader) encodeMessage(w extWriter) {
	if !h.NoMessage {
		w.str("msgId", h.MsgID)
		w.int("queueId", int64(h.QueueID))
		w.int("queueOffset", h.QueueOffset)
	}
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

func (h *ReplyPushHeader) fields(f extFields) {
	h.SendHeader.namedFields(f, &replyPushNames)
	f.str("bornHost", &h.BornHost)
	f.str("storeHost", &h.StoreHost)
	f.intOr("storeTimestamp", &h.StoreTimestamp, 0)
}
