package brokernode

import (
	"maps"
	"strconv"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// FuzzDecodeSendHeader: the send header decoder (long names for SEND_MESSAGE, V2 letters for
// SEND_BATCH_MESSAGE) never panics on any ext fields, and what it accepts has a valid topic, the
// queue id the header gave, and properties within the stored record's limit.
func FuzzDecodeSendHeader(f *testing.F) {
	f.Add(false, "")
	f.Add(true, "")
	f.Add(false, "queueId=-1\nsysFlag=99999999999\nbornTimestamp=x")
	f.Add(true, "b=%RETRY%cg\ne=2147483648\ni=DELAY\x01x\x02")
	f.Add(false, "topic\nproperties=a")
	f.Fuzz(func(t *testing.T, v2 bool, edits string) {
		names, ext := &sendNames, sendExt(fuzzTopic, "1", map[string]string{codec.PropTags: "TagA"})
		if v2 {
			names, ext = &sendNamesV2, batchExt(fuzzTopic, 1, "")
		}
		ext = applyExtEdits(maps.Clone(ext), edits)
		h, err := decodeSendHeader(codec.NewRequest(codec.ReqSendMessage, ext, nil), names)
		if err != nil {
			return
		}
		if validTopic(h.topic) != nil || h.topic != ext[names.topic] {
			t.Fatalf("accepted topic %q from %q", h.topic, ext[names.topic])
		}
		if q, err := strconv.ParseInt(ext[names.queueID], 10, 64); err != nil || q != h.queueID {
			t.Fatalf("accepted queue id %d from %q", h.queueID, ext[names.queueID])
		}
		if len(h.properties) > codec.MaxPropertiesBytes || h.properties != ext[names.properties] {
			t.Fatalf("accepted properties of %d bytes, header had %d", len(h.properties), len(ext[names.properties]))
		}
	})
}
