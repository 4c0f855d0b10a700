package brokernode

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// batchExt is SEND_BATCH_MESSAGE's V2 header as the Go client writes it (docs/protocol.md, "Batch sends").
func batchExt(topic string, queueID int, props string) map[string]string {
	return map[string]string{
		"a": "pg", "b": topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(queueID), "f": "0",
		"g": "1767225600000", "h": "0", "i": props, "j": "0", "k": "false", "l": "0", "m": "true", "n": "broker-a",
	}
}

func batchBody(t *testing.T, msgs ...codec.BatchMessage) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = codec.AppendBatchRecord(b, m); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (h *brokerHarness) sendBatch(c node.ConnID, ext map[string]string, body []byte) int32 {
	return h.request(c, codec.ReqSendBatchMessage, ext, body)
}

// A batch lands in its queue in order, each message with its own flag, body and properties;
// the answer names every message (comma-joined offset msgIds), the queue and the first queue
// offset, and comes only once the whole batch is durable.
func TestBatchSendStoresEachMessageAndAnswersOnceDurable(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	c := h.env.accept(h.b, "127.0.9.8:50001")
	h.send(p, "Orders", 2, "before", nil) // the batch starts at queue offset 1
	h.syncAll()

	sent := []codec.BatchMessage{
		{Flag: 1, Body: []byte("one"), Properties: codec.EncodeProperties(map[string]string{codec.PropTags: "TagA", codec.PropKeys: "k1 order-7"})},
		{Flag: 2, Body: []byte(""), Properties: codec.EncodeProperties(map[string]string{codec.PropTags: "TagB", codec.PropUniqKey: "C0A8000100002A9F0000000000000009"})},
		{Flag: 3, Body: []byte("three"), Properties: "user\x01x"},
	}
	op := h.sendBatch(p, batchExt("Orders", 2, ""), batchBody(t, sent...))
	if resp := h.answer(p, op); resp != nil {
		t.Fatalf("batch answered before its fsync: %+v", resp)
	}
	h.syncAll()
	resp := h.mustAnswer(p, op)
	if resp.Code != codec.Success {
		t.Fatalf("batch send: code %d (%s)", resp.Code, resp.Remark)
	}
	if resp.Ext("queueId") != "2" || resp.Ext("queueOffset") != "1" {
		t.Errorf("answer queueId %q queueOffset %q, want 2 and 1 (the first message's)", resp.Ext("queueId"), resp.Ext("queueOffset"))
	}
	ids := strings.Split(resp.Ext("msgId"), ",")
	if len(ids) != len(sent) {
		t.Fatalf("msgId %q names %d messages, want %d", resp.Ext("msgId"), len(ids), len(sent))
	}

	pulled := decodeBody(t, h.mustAnswer(c, h.pull(c, "Orders", 2, 1)).Body)
	if len(pulled) != len(sent) {
		t.Fatalf("pulled %d messages after the batch, want %d", len(pulled), len(sent))
	}
	for i, m := range pulled {
		want := sent[i]
		// Each message's own properties, then the CLUSTER the broker adds to every message.
		wantProps := codec.SetProperty(want.Properties, codec.PropCluster, "DefaultCluster")
		if m.Flag != want.Flag || !bytes.Equal(m.Body, want.Body) || m.Properties != wantProps {
			t.Errorf("message %d: flag %d body %q props %q; sent flag %d body %q props %q, want props %q",
				i, m.Flag, m.Body, m.Properties, want.Flag, want.Body, want.Properties, wantProps)
		}
		if m.QueueOffset != int64(1+i) || m.QueueID != 2 || m.Topic != "Orders" || m.BornTimestamp != 1767225600000 {
			t.Errorf("message %d: topic %q queue %d offset %d born %d", i, m.Topic, m.QueueID, m.QueueOffset, m.BornTimestamp)
		}
		host, phys, err := codec.ParseOffsetMsgID(ids[i])
		if err != nil || host != netip.MustParseAddrPort(h.cfg.Addr) || phys != m.PhysicalOffset {
			t.Errorf("msgId %d %q names %v offset %d (%v), want the record at %d", i, ids[i], host, phys, err, m.PhysicalOffset)
		}
	}
	// The consume queue carries each message's own tag hash, so tag filtering sees them.
	filtered := decodeBody(t, h.mustAnswer(c, h.pull(c, "Orders", 2, 1, "sysFlag", "4", "subscription", "TagB")).Body)
	if len(filtered) != 1 || codec.Property(filtered[0].Properties, codec.PropTags) != "TagB" {
		t.Errorf("pull filtered by TagB returned %d messages, want the one TagB message", len(filtered))
	}
}

// The header's properties (empty from the Go client) are added to every message of the batch,
// and so is the broker's CLUSTER, as Java does.
func TestBatchHeaderPropertiesApplyToEveryMessage(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	op := h.sendBatch(p, batchExt("Orders", 0, "region\x01eu\x02"), batchBody(t,
		codec.BatchMessage{Body: []byte("a"), Properties: "TAGS\x01A"},
		codec.BatchMessage{Body: []byte("b")}))
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("batch: code %d (%s)", resp.Code, resp.Remark)
	}
	msgs := decodeBody(t, h.mustAnswer(p, h.pull(p, "Orders", 0, 0)).Body)
	want := []string{"TAGS\x01A\x02region\x01eu\x02CLUSTER\x01DefaultCluster\x02", "region\x01eu\x02CLUSTER\x01DefaultCluster\x02"}
	if len(msgs) != len(want) {
		t.Fatalf("pulled %d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if m.Properties != want[i] {
			t.Errorf("message %d properties %q, want %q", i, m.Properties, want[i])
		}
	}
}

// In async-flush mode the batch is answered at once, with every message visible.
func TestBatchSendAsyncFlush(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMode = AsyncFlush
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	op := h.sendBatch(p, batchExt("Orders", 1, ""), batchBody(t,
		codec.BatchMessage{Body: []byte("a")}, codec.BatchMessage{Body: []byte("b")}))
	resp := h.answer(p, op)
	if resp == nil || resp.Code != codec.Success || resp.Ext("queueOffset") != "0" {
		t.Fatalf("async batch answer: %+v", resp)
	}
	if max := h.b.Store().MaxOffset("Orders", 1); max != 2 {
		t.Fatalf("async batch: max offset %d, want 2", max)
	}
}

// A bad batch is refused with MESSAGE_ILLEGAL (or the topic's error) and a remark naming the
// problem, and stores nothing: the whole batch is checked before the first append.
func TestBadBatchStoresNothing(t *testing.T) {
	good := []codec.BatchMessage{{Body: []byte("ok-1")}, {Body: []byte("ok-2")}}
	goodBody := func(t *testing.T) []byte { return batchBody(t, good...) }
	cut := func(t *testing.T) []byte { b := goodBody(t); return b[:len(b)-1] }
	badSecondSize := func(t *testing.T) []byte {
		b := goodBody(t)
		binary.BigEndian.PutUint32(b[26:], 9999) // totalSize of the second record
		return b
	}
	withExt := func(k, v string) map[string]string {
		ext := batchExt("Orders", 0, "")
		ext[k] = v
		return ext
	}
	cases := []struct {
		name     string
		ext      map[string]string
		body     func(*testing.T) []byte
		wantCode int16
		remark   string
	}{
		{"empty body", batchExt("Orders", 0, ""), func(*testing.T) []byte { return nil }, codec.MessageIllegal, "empty"},
		{"second record cut short", batchExt("Orders", 0, ""), cut, codec.MessageIllegal, "record 1"},
		{"second record's size is wrong", batchExt("Orders", 0, ""), badSecondSize, codec.MessageIllegal, "totalSize 9999"},
		{"a message with a delay level", batchExt("Orders", 0, ""), func(t *testing.T) []byte {
			return batchBody(t, good[0], codec.BatchMessage{Body: []byte("x"), Properties: "DELAY\x013\x02"})
		}, codec.MessageIllegal, "message 1 carries a delay level"},
		{"a delay level in the header", batchExt("Orders", 0, "DELAY\x012\x02"), goodBody, codec.MessageIllegal, "delay"},
		{"a transaction sysFlag", withExt("f", "4"), goodBody, codec.MessageIllegal, "transaction"},
		{"a body over MaxMessageBytes", batchExt("Orders", 0, ""), func(t *testing.T) []byte {
			return batchBody(t, good[0], codec.BatchMessage{Body: make([]byte, 1024)})
		}, codec.MessageIllegal, "exceeds the limit of 1024"},
		{"no queue id", withExt("e", ""), goodBody, codec.MessageIllegal, `header field "e" (queueId): "" is not an integer`},
		{"a bad topic", withExt("b", "a b"), goodBody, codec.MessageIllegal, "illegal character"},
		{"queue out of range", withExt("e", "4"), goodBody, codec.SystemError, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxMessageBytes = 1024
			h := startBroker(t, cfg, nil)
			p := h.env.accept(h.b, "127.0.9.7:50000")
			h.send(p, "Orders", 0, "seed", nil) // Orders exists with 4 queues
			h.syncAll()
			last := h.b.Store().CommitLog().LastIndex()

			resp := h.mustAnswer(p, h.sendBatch(p, tc.ext, tc.body(t)))
			if resp.Code != tc.wantCode || !strings.Contains(resp.Remark, tc.remark) {
				t.Errorf("code %d remark %q, want code %d with a remark containing %q", resp.Code, resp.Remark, tc.wantCode, tc.remark)
			}
			h.syncAll()
			if got := h.b.Store().CommitLog().LastIndex(); got != last {
				t.Errorf("a refused batch stored something: commit log grew from %d to %d", last, got)
			}
		})
	}
}

// A single send keeps what the Go client puts in it: the zlib-compressed body of a message of
// 4 KiB or more exactly as received with sysFlag bit 0 (the consumer inflates by that bit), the
// user flag, and the properties (tags, keys, user properties) byte for byte.
func TestSendKeepsCompressedBodyFlagAndProperties(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	var zbuf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zbuf, 5)
	_, _ = zw.Write(bytes.Repeat([]byte("large body "), 1000))
	_ = zw.Close()
	compressed := zbuf.Bytes()
	props := codec.EncodeProperties(map[string]string{codec.PropTags: "Big", codec.PropKeys: "k1 k2", "user": "u",
		codec.PropUniqKey: "C0A8000100002A9F0000000000000003"})
	ext := sendExt("Orders", "3", nil)
	ext["sysFlag"], ext["flag"], ext["properties"] = "1", "77", props
	op := h.request(p, codec.ReqSendMessage, ext, compressed)
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("send: code %d (%s)", resp.Code, resp.Remark)
	}
	msgs := decodeBody(t, h.mustAnswer(p, h.pull(p, "Orders", 3, 0)).Body)
	if len(msgs) != 1 {
		t.Fatalf("pulled %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.SysFlag&codec.SysFlagCompressed == 0 || !bytes.Equal(m.Body, compressed) {
		t.Errorf("sysFlag %#x, body of %d bytes; want bit 0 set and the %d compressed bytes as sent", m.SysFlag, len(m.Body), len(compressed))
	}
	if want := props + "CLUSTER\x01DefaultCluster\x02"; m.Flag != 77 || m.Properties != want {
		t.Errorf("flag %d properties %q; want 77 and %q", m.Flag, m.Properties, want)
	}
}
