package brokernode

import (
	"maps"
	"strconv"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// FuzzDecodeSendHeader: the send header decoder (long names for SEND_MESSAGE, V2 letters for
// SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE) never panics on any ext fields,
// and what it accepts has a valid topic, the queue id the header gave, and properties within
// the stored record's limit.
func FuzzDecodeSendHeader(f *testing.F) {
	f.Add(false, "")
	f.Add(true, "")
	f.Add(false, "queueId=-1\nsysFlag=99999999999\nbornTimestamp=x")
	f.Add(true, "b=%RETRY%cg\ne=2147483648\ni=DELAY\x01x\x02")
	f.Add(false, "topic\nproperties=a")
	// The names of the fields the assertions read, long and V2.
	type fieldNames struct{ topic, queueID, properties string }
	long, short := fieldNames{"topic", "queueId", "properties"}, fieldNames{"b", "e", "i"}
	f.Fuzz(func(t *testing.T, v2 bool, edits string) {
		names, ext := long, sendExt(fuzzTopic, "1", map[string]string{codec.PropTags: "TagA"})
		ext = applyExtEdits(maps.Clone(ext), edits)
		req := codec.NewRequest(codec.ReqSendMessage, ext, nil)
		if v2 {
			ext = applyExtEdits(batchExt(fuzzTopic, 1, ""), edits)
			req = codec.NewRequest(codec.ReqSendBatchMessage, ext, nil)
			names = short
		}
		h, err := decodeSendHeader(req)
		if err != nil {
			return
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
