package codec

import "math"

// TopicHeader names a topic: the header of GET_ROUTEINFO_BY_TOPIC, DELETE_TOPIC_IN_BROKER and
// DELETE_TOPIC_IN_NAMESRV.
type TopicHeader struct {
	Topic string
}

func (h *TopicHeader) decodeExt(r *extReader) { h.Topic = r.str("topic") }
func (h *TopicHeader) encodeExt(w extWriter)  { w.str("topic", h.Topic) }

// CreateTopicHeader is UPDATE_AND_CREATE_TOPIC's header (Java's CreateTopicRequestHeader).
// The queue counts are required; a missing or malformed Perm reads as read and write (6).
type CreateTopicHeader struct {
	Topic           string
	DefaultTopic    string
	ReadQueueNums   int64
	WriteQueueNums  int64
	Perm            int64
	TopicFilterType string
	TopicSysFlag    int64
	Order           bool
}

func (h *CreateTopicHeader) decodeExt(r *extReader) {
	h.Topic = r.str("topic")
	h.DefaultTopic = r.str("defaultTopic")
	h.ReadQueueNums = r.int("readQueueNums")
	h.WriteQueueNums = r.int("writeQueueNums")
	h.Perm = r.intOr("perm", 6)
	h.TopicFilterType = r.str("topicFilterType")
	h.TopicSysFlag = r.intOr("topicSysFlag", 0)
	h.Order = r.bool("order")
}

func (h *CreateTopicHeader) encodeExt(w extWriter) {
	w.str("topic", h.Topic)
	w.str("defaultTopic", h.DefaultTopic)
	w.int("readQueueNums", h.ReadQueueNums)
	w.int("writeQueueNums", h.WriteQueueNums)
	w.int("perm", h.Perm)
	w.str("topicFilterType", h.TopicFilterType)
	w.int("topicSysFlag", h.TopicSysFlag)
	w.bool("order", h.Order)
}

// ViewMessageHeader is VIEW_MESSAGE_BY_ID's header: the message's commit-log offset, required.
type ViewMessageHeader struct {
	Offset int64
}

func (h *ViewMessageHeader) decodeExt(r *extReader) { h.Offset = r.int("offset") }
func (h *ViewMessageHeader) encodeExt(w extWriter)  { w.int("offset", h.Offset) }

// QueryMessageHeader is QUERY_MESSAGE's header: a key of a topic within store times (ms).
// The numbers read as their default when missing or malformed: MaxNum math.MaxInt64 (the
// broker's limit), the whole time range.
type QueryMessageHeader struct {
	Topic            string
	Key              string
	MaxNum           int64
	BeginTimestampMs int64
	EndTimestampMs   int64
}

func (h *QueryMessageHeader) decodeExt(r *extReader) {
	h.Topic = r.str("topic")
	h.Key = r.str("key")
	h.MaxNum = r.intOr("maxNum", math.MaxInt64)
	h.BeginTimestampMs = r.intOr("beginTimestamp", 0)
	h.EndTimestampMs = r.intOr("endTimestamp", math.MaxInt64)
}

func (h *QueryMessageHeader) encodeExt(w extWriter) {
	w.str("topic", h.Topic)
	w.str("key", h.Key)
	w.int("maxNum", h.MaxNum)
	w.int("beginTimestamp", h.BeginTimestampMs)
	w.int("endTimestamp", h.EndTimestampMs)
}

// QueryMessageResponseHeader is the answer to QUERY_MESSAGE: how far the index is built.
type QueryMessageResponseHeader struct {
	IndexLastUpdateTimestampMs int64
	IndexLastUpdatePhyoffset   int64
}

func (h *QueryMessageResponseHeader) decodeExt(r *extReader) {
	h.IndexLastUpdateTimestampMs = r.intOr("indexLastUpdateTimestamp", 0)
	h.IndexLastUpdatePhyoffset = r.intOr("indexLastUpdatePhyoffset", 0)
}

func (h *QueryMessageResponseHeader) encodeExt(w extWriter) {
	w.int("indexLastUpdateTimestamp", h.IndexLastUpdateTimestampMs)
	w.int("indexLastUpdatePhyoffset", h.IndexLastUpdatePhyoffset)
}
