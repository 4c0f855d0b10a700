package brokernode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// Every frame the broker sends a client, encoded by the real codec, has ext values that are
// JSON strings: the Go client decodes extFields as map[string]string and drops the whole
// frame when one value is a number, a boolean or an object (docs/protocol.md, "Headers"). Checked over the
// answers to a producer's and a consumer's requests, success and error alike.
func TestEveryExtValueOnTheWireIsAString(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	c := h.env.accept(h.b, "127.0.9.8:50001")

	h.send(p, "Orders", 0, "m0", map[string]string{codec.PropTags: "TagA"})
	h.sendBatch(p, batchExt("Orders", 1, ""), batchBody(t, codec.BatchMessage{Body: []byte("b0")}, codec.BatchMessage{Body: []byte("b1")}))
	h.send(p, "Orders", 9, "x", nil)                                                // queue out of range
	h.sendBatch(p, batchExt("Orders", 0, ""), []byte{1, 2, 3})                      // malformed batch
	h.request(p, codec.ReqSendMessage, sendExt("Orders", "zero", nil), []byte("x")) // bad queue id
	h.syncAll()
	h.request(c, codec.ReqHeartBeat, nil, heartbeat("127.0.9.8@1", "cg"))
	h.request(c, codec.ReqGetConsumerListByGroup, map[string]string{"consumerGroup": "cg"}, nil)
	h.pull(c, "Orders", 0, 0)                                         // found
	h.pull(c, "Orders", 0, 1)                                         // not found
	h.pull(c, "Orders", 0, 7)                                         // offset moved
	h.pull(c, "Orders", 0, 0, "sysFlag", "4", "subscription", "TagZ") // filtered away
	h.request(c, codec.ReqQueryConsumerOffset, offsetExt("cg", "0"), nil)
	upd := offsetExt("cg", "0")
	upd["commitOffset"] = "1"
	h.request(c, codec.ReqUpdateConsumerOffset, upd, nil)
	h.request(c, codec.ReqQueryConsumerOffset, offsetExt("cg", "0"), nil)
	h.request(c, codec.ReqGetMaxOffset, offsetExt("", "0"), nil)
	h.request(c, 999, nil, nil)

	n := 0
	for _, f := range h.env.Sent() {
		if f.Conn != p && f.Conn != c {
			continue
		}
		frame, err := codec.Encode(f.Cmd)
		if err != nil {
			t.Fatalf("encode frame code %d: %v", f.Cmd.Code, err)
		}
		headerLen := int(binary.BigEndian.Uint32(frame[4:]) & 0xFFFFFF)
		header := frame[8 : 8+headerLen]
		var hdr struct {
			ExtFields map[string]json.RawMessage `json:"extFields"`
		}
		if err := json.Unmarshal(header, &hdr); err != nil {
			t.Fatalf("header of frame code %d is not JSON: %v\n%s", f.Cmd.Code, err, header)
		}
		for k, v := range hdr.ExtFields {
			if !bytes.HasPrefix(v, []byte(`"`)) {
				t.Errorf("frame code %d opaque %d: ext %s = %s is not a JSON string\n%s", f.Cmd.Code, f.Cmd.Opaque, k, v, header)
			}
		}
		n += len(hdr.ExtFields)
	}
	if n < 25 {
		t.Fatalf("only %d ext values checked: the requests above did not get their answers", n)
	}
}
