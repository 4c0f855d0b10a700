package codec

import "math"

// TopicHeader names a topic: the header of GET_ROUTEINFO_BY_TOPIC, DELETE_TOPIC_IN_BROKER and
// DELETE_TOPIC_IN_NAMESRV.
type TopicHeader struct {
	Topic string
}

func (h *TopicHeader) fields(f extFields) { f.str("topic", &h.Topic) }

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

func (h *CreateTopicHeader) fields(f extFields) {
	f.str("topic", &h.Topic)
	f.str("defaultTopic", &h.DefaultTopic)
	f.int("readQueueNums", &h.ReadQueueNums)
	f.int("writeQueueNums", &h.WriteQueueNums)
	f.intOr("perm", &h.Perm, 6)
	f.str("topicFilterType", &h.TopicFilterType)
	f.intOr("topicSysFlag", &h.TopicSysFlag, 0)
	f.bool("order", &h.Order)
}

// ViewMessageHeader is VIEW_MESSAGE_BY_ID's header: the message's commit-log offset, required.
type ViewMessageHeader struct {
	Offset int64
}

func (h *ViewMessageHeader) fields(f extFields) { f.int("offset", &h.Offset) }

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

func (h *QueryMessageHeader) fields(f extFields) {
	f.str("topic", &h.Topic)
	f.str("key", &h.Key)
	f.intOr("maxNum", &h.MaxNum, math.MaxInt64)
	f.intOr("beginTimestamp", &h.BeginTimestampMs, 0)
	f.intOr("endTimestamp", &h.EndTimestampMs, math.MaxInt64)
}

// QueryMessageResponseHeader is the answer to QUERY_MESSAGE: how far the index is built.
type QueryMessageResponseHeader struct {
	IndexLastUpdateTimestampMs int64
	IndexLastUpdatePhyoffset   int64
}

func (h *QueryMessageResponseHeader) fields(f extFields) {
	f.intOr("indexLastUpdateTimestamp", &h.IndexLastUpdateTimestampMs, 0)
	f.intOr("indexLastUpdatePhyoffset", &h.IndexLastUpdatePhyoffset, 0)
}
