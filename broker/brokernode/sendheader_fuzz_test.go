package brokernode

import (
	"errors"
	"maps"
	"strconv"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// FuzzDecodeSendHeader: the send header decoder of every kind of send (long names for
// SEND_MESSAGE and SEND_REPLY_MESSAGE, V2 letters for SEND_MESSAGE_V2, SEND_BATCH_MESSAGE and
// SEND_REPLY_MESSAGE_V2) never panics on any ext fields; what it refuses for a missing or
// malformed field it refuses with a *codec.HeaderError naming a field of the request's own
// kind; and what it accepts has a valid topic, the queue id the header gave, and properties
// within the stored record's limit, all read from the request's own kind of names (a V2
// request's long names are ignored).
func FuzzDecodeSendHeader(f *testing.F) {
	f.Add(uint8(0), "")
	f.Add(uint8(2), "")
	f.Add(uint8(0), "queueId=-1\nsysFlag=99999999999\nbornTimestamp=x")
	f.Add(uint8(2), "b=%RETRY%cg\ne=2147483648\ni=DELAY\x01x\x02")
	f.Add(uint8(0), "topic\nproperties=a")
	f.Add(uint8(1), "e\nqueueId=1\ntopic=Other")
	f.Add(uint8(4), "e=x")
	codes := []int16{codec.ReqSendMessage, codec.ReqSendMessageV2, codec.ReqSendBatchMessage, codec.ReqSendReplyMessage, codec.ReqSendReplyMessageV2}
	// The names of the fields the assertions read, long and V2.
	type fieldNames struct{ topic, queueID, properties string }
	long, short := fieldNames{"topic", "queueId", "properties"}, fieldNames{"b", "e", "i"}
	f.Fuzz(func(t *testing.T, kind uint8, edits string) {
		code := codes[int(kind)%len(codes)]
		names, ext := long, sendExt(fuzzTopic, "1", map[string]string{codec.PropTags: "TagA"})
		if codec.IsSendV2(code) {
			names, ext = short, batchExt(fuzzTopic, 1, "")
		}
		ext = applyExtEdits(maps.Clone(ext), edits)
		h, err := decodeSendHeader(codec.NewRequest(code, ext, nil))
		var he *codec.HeaderError
		if errors.As(err, &he) {
			if ours := (he.Field == names.queueID); !ours {
				t.Fatalf("code %d refused for field %q, not the queue id %q of its kind: %v", code, he.Field, names.queueID, err)
			}
			return
		}
		if err != nil {
			return // a topic or properties the broker refuses
		}
		if validTopic(h.Topic) != nil || h.Topic != ext[names.topic] {
			t.Fatalf("accepted topic %q from %q", h.Topic, ext[names.topic])
		}
		if q, err := strconv.ParseInt(ext[names.queueID], 10, 64); err != nil || q != h.QueueID {
			t.Fatalf("accepted queue id %d from %q", h.QueueID, ext[names.queueID])
		}
		if len(h.Properties) > codec.MaxPropertiesBytes || h.Properties != ext[names.properties] {
			t.Fatalf("accepted properties of %d bytes, header had %d", len(h.Properties), len(ext[names.properties]))
		}
	})
}
