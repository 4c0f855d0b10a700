package codec

import "strings"

// More well-known property keys: the ones the broker sets on retried, dead-lettered and
// delayed messages (docs/protocol.md, "Properties").
const (
	PropRetryTopic      = "RETRY_TOPIC"
	PropOriginMessageID = "ORIGIN_MESSAGE_ID"
	// PropCluster is the cluster of the broker that stored a message, which the Java broker
	// adds to every message a producer sends (a replier builds its reply topic from it).
	PropCluster = "CLUSTER"
)

// Request/reply property keys (Java's MessageConst): a request carries its correlation id,
// the requesting client's id and its time to live; a reply carries them back with MSG_TYPE
// "reply". The broker adds PUSH_REPLY_TIME to the reply it pushes to the requester.
const (
	PropCorrelationID = "CORRELATION_ID"
	PropReplyToClient = "REPLY_TO_CLIENT"
	PropMessageTTL    = "TTL"
	PropMsgType       = "MSG_TYPE"
	PropPushReplyTime = "PUSH_REPLY_TIME"
	// MsgTypeReply is PropMsgType's value on a reply message.
	MsgTypeReply = "reply"
)

// SetProperty returns the property block s with key set to value: every existing entry of key
// is removed and key=value is appended at the end. Every other entry is kept byte for byte and
// in order. The result ends with a separator, as the Go client writes it.
func SetProperty(s, key, value string) string {
	s = DeleteProperty(s, key)
	var sb strings.Builder
	sb.Grow(len(s) + len(key) + len(value) + 3)
	sb.WriteString(s)
	if s != "" && !strings.HasSuffix(s, "\x02") {
		sb.WriteByte(2)
	}
	sb.WriteString(key)
	sb.WriteByte(1)
	sb.WriteString(value)
	sb.WriteByte(2)
	return sb.String()
}

// DeleteProperty returns the property block s without any entry of key (entries Property would
// read as key, and malformed ones naming it). Every other entry, malformed ones included, is
// kept byte for byte and in order; s is returned unchanged when it holds no such entry.
func DeleteProperty(s, key string) string {
	if !strings.Contains(s, key) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s))
	rest := s
	removed := false
	for len(rest) > 0 {
		kv, after, hasSep := strings.Cut(rest, "\x02")
		rest = after
		if k, _, ok := strings.Cut(kv, "\x01"); ok && k == key {
			removed = true
			continue
		}
		sb.WriteString(kv)
		if hasSep {
			sb.WriteByte(2)
		}
	}
	if !removed {
		return s
	}
	return sb.String()
}
