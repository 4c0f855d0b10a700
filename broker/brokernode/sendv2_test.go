package brokernode

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// sendV2Header is a SEND_MESSAGE_V2 JSON header as ali-ons writes it: numbers and booleans as
// JSON numbers and booleans. props is the encoded properties; extra ext members are appended
// verbatim (`"j":2`).
func sendV2Header(topic string, queueID, sysFlag int, props string, extra ...string) string {
	ext := []string{`"a":"pg"`, `"b":` + strconv.Quote(topic), `"c":"TBW102"`, `"d":4`, `"e":` + strconv.Itoa(queueID),
		`"f":` + strconv.Itoa(sysFlag), `"g":1767225600000`, `"h":0`, `"i":` + jsonString(props), `"j":0`, `"k":false`,
		`"l":16`, `"m":false`}
	ext = append(ext, extra...)
	return `{"code":310,"extFields":{` + strings.Join(ext, ",") + `},"flag":0,"language":"JAVA","opaque":0,` +
		`"serializeTypeCurrentRPC":"JSON","version":373}`
}

// jsonString quotes s for JSON (properties hold \x01 and \x02, which strconv.Quote writes
// as Go escapes).
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteString(strconv.FormatInt(int64(r>>4), 16))
			b.WriteString(strconv.FormatInt(int64(r&0xF), 16))
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// requestJSON decodes a JSON header with the codec, as a frame from the wire would be, and
// delivers it on c with body; it returns the opaque.
func (h *brokerHarness) requestJSON(c node.ConnID, header string, body []byte) int32 {
	h.t.Helper()
	frame := binary.BigEndian.AppendUint32(nil, uint32(codec.SerializeJSON)<<24|uint32(len(header)))
	frame = append(append(frame, header...), body...)
	req, err := codec.Decode(frame)
	if err != nil {
		h.t.Fatalf("decode %s: %v", header, err)
	}
	h.opaque++
	req.Opaque = h.opaque
	h.b.OnFrame(c, req)
	return h.opaque
}

// SEND_MESSAGE_V2 is SEND_MESSAGE with one-letter names: the same message sent both ways (the
// V2 header with numbers and booleans, as ali-ons writes it) is stored the same, and answered
// the same.
func TestSendV2StoresWhatSendStores(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	props := map[string]string{codec.PropTags: "TagA", codec.PropKeys: "k1 k2", codec.PropUniqKey: "C0A8000100002A9F0000000000000001"}
	ext := sendExt("Orders", "2", props)
	ext["flag"], ext["sysFlag"] = "5", "0"
	v1 := h.request(p, codec.ReqSendMessage, ext, []byte("hello"))
	v2 := h.requestJSON(p, strings.Replace(sendV2Header("Orders", 2, 0, codec.EncodeProperties(props)), `"h":0`, `"h":5`, 1), []byte("hello"))
	h.syncAll()
	r1, r2 := h.mustAnswer(p, v1), h.mustAnswer(p, v2)
	if r1.Code != codec.Success || r2.Code != codec.Success {
		t.Fatalf("SEND_MESSAGE %d %s, SEND_MESSAGE_V2 %d %s", r1.Code, r1.Remark, r2.Code, r2.Remark)
	}
	if r2.Ext("queueId") != "2" || r2.Ext("queueOffset") != "1" || r2.Ext("msgId") == r1.Ext("msgId") {
		t.Errorf("SEND_MESSAGE_V2 answer %v after SEND_MESSAGE's %v", r2.ExtFields, r1.ExtFields)
	}
	if !slicesEqual(sortedKeys(r1.ExtFields), sortedKeys(r2.ExtFields)) {
		t.Errorf("answers differ in shape: %v and %v", r1.ExtFields, r2.ExtFields)
	}
	got := h.queue("Orders", 2)
	if len(got) != 2 {
		t.Fatalf("queue 2 holds %d messages, want 2", len(got))
	}
	a, b := *got[0], *got[1]
	b.QueueOffset, b.PhysicalOffset, b.StoreTimestamp = a.QueueOffset, a.PhysicalOffset, a.StoreTimestamp
	ra, errA := codec.AppendRecord(nil, &a)
	rb, errB := codec.AppendRecord(nil, &b)
	if errA != nil || errB != nil || string(ra) != string(rb) {
		t.Errorf("stored differently:\n SEND_MESSAGE    %+v\n SEND_MESSAGE_V2 %+v", a, b)
	}
	if a.Flag != 5 || a.BornTimestamp != 1767225600000 || string(a.Body) != "hello" {
		t.Errorf("stored flag %d born %d body %q", a.Flag, a.BornTimestamp, a.Body)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// A transactional half message sent with SEND_MESSAGE_V2 (sysFlag f = 4, TRAN_MSG) is held
// like one sent with SEND_MESSAGE, takes the producer group from header field a, and is
// delivered on commit.
func TestSendV2HalfMessageThenCommit(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	props := codec.EncodeProperties(map[string]string{"TRAN_MSG": "true", "UNIQ_KEY": "U1", "TAGS": "TagT"})
	op := h.requestJSON(p, sendV2Header("Orders", 1, 4, props), []byte("order-1"))
	h.syncAll()
	resp := h.mustAnswer(p, op)
	if resp.Code != codec.Success {
		t.Fatalf("half message over SEND_MESSAGE_V2: %d %s", resp.Code, resp.Remark)
	}
	if got := h.queueMessages("Orders", 1); len(got) != 0 {
		t.Fatalf("a half message is visible before its commit: %d messages", len(got))
	}
	half := h.queue(HalfTopic, 0)
	if len(half) != 1 || codec.Property(half[0].Properties, codec.PropProducerGroup) != "pg" ||
		codec.Property(half[0].Properties, codec.PropRealTopc) != "Orders" {
		t.Fatalf("half topic holds %d messages, want the one with PGROUP from header field a", len(half))
	}
	_, off, err := codec.ParseOffsetMsgID(resp.Ext("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	qo, _ := strconv.ParseInt(resp.Ext("queueOffset"), 10, 64)
	if r := h.endTxnAnswer(p, "pg", halfSent{uniq: "U1", clOffset: off, queueOffset: qo}, 8, false); r.Code != codec.Success {
		t.Fatalf("commit: %d %s", r.Code, r.Remark)
	}
	got := h.queueMessages("Orders", 1)
	if len(got) != 1 || string(got[0].Body) != "order-1" || got[0].SysFlag&codec.SysFlagTransactionMask != codec.SysFlagTxnCommit {
		t.Fatalf("after the commit queue 1 holds %v", bodies(got))
	}
}

// A delay level on a SEND_MESSAGE_V2 (property DELAY in field i) holds the message in the
// schedule topic until it is due, as for SEND_MESSAGE.
func TestSendV2DelayLevel(t *testing.T) {
	h := startBroker(t, delayConfig(time.Second, 5*time.Second), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	props := codec.EncodeProperties(map[string]string{codec.PropDelay: "2", codec.PropUniqKey: "U2"})
	op := h.requestJSON(p, sendV2Header("Orders", 0, 0, props), []byte("late"))
	h.settle()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("delayed SEND_MESSAGE_V2: %d %s", resp.Code, resp.Remark)
	}
	if got := h.queue("Orders", 0); len(got) != 0 {
		t.Fatalf("the real queue shows %v before the delay", bodies(got))
	}
	if held := h.queue(ScheduleTopic, 1); len(held) != 1 {
		t.Fatalf("schedule queue of level 2 holds %d messages, want 1", len(held))
	}
	h.wait(5 * time.Second)
	if got := h.queue("Orders", 0); len(got) != 1 || string(got[0].Body) != "late" {
		t.Fatalf("after the delay the real queue holds %v", bodies(got))
	}
}

// A SEND_MESSAGE_V2 to a retry topic follows the dead-letter rule with fields j
// (reconsumeTimes) and l (maxReconsumeTimes), as SEND_MESSAGE does with its long names.
func TestSendV2RetryTopicDeadLetters(t *testing.T) {
	h := startBroker(t, retryConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.b.ensureRetryTopic("cg")
	props := codec.EncodeProperties(map[string]string{codec.PropRetryTopic: "Orders", codec.PropOriginMessageID: "ID"})
	hdr := strings.Replace(sendV2Header("%RETRY%cg", 0, 0, props), `"j":0`, `"j":2`, 1)
	hdr = strings.Replace(hdr, `"l":16`, `"l":2`, 1)
	op := h.requestJSON(p, hdr, []byte("dead"))
	h.settle()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("SEND_MESSAGE_V2 to the retry topic: %d %s", resp.Code, resp.Remark)
	}
	if dlq := h.queue("%DLQ%cg", 0); len(dlq) != 1 || string(dlq[0].Body) != "dead" || dlq[0].ReconsumeTimes != 2 {
		t.Fatalf("DLQ holds %v, want [dead] with reconsumeTimes 2", bodies(dlq))
	}
}

// Codes the broker does not serve, PUSH_REPLY_MESSAGE_TO_CLIENT (broker to client) among them,
// and a code beyond int16 (which the codec keeps in WideCode) are answered
// REQUEST_CODE_NOT_SUPPORTED with the code in the remark; the connection stays.
func TestUnsupportedCodesAreAnswered(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	for _, tc := range []struct {
		header string
		code   string
	}{
		// PUSH_REPLY_MESSAGE_TO_CLIENT goes from broker to client; a broker does not serve it.
		{`{"code":326,"extFields":{"producerGroup":"pg","topic":"T","queueId":1}}`, "326"},
		{`{"code":40000,"opaque":5}`, "40000"},
		{`{"code":-70000}`, "-70000"},
	} {
		resp := h.mustAnswer(p, h.requestJSON(p, tc.header, nil))
		if resp.Code != codec.RequestCodeNotSupported || !strings.HasPrefix(resp.Remark, "request code "+tc.code+" ") ||
			!strings.HasSuffix(resp.Remark, " is not supported by this broker") {
			t.Errorf("code %s answered %d %q", tc.code, resp.Code, resp.Remark)
		}
	}
	if h.env.Closed(p) {
		t.Error("the broker closed the connection")
	}
}

// In a broker group only the master takes SEND_MESSAGE_V2: a slave refuses it as it refuses
// SEND_MESSAGE, and what the master stores reaches the slaves.
func TestGroupSendV2MasterOnly(t *testing.T) {
	gw := newGroupWorld(t, 3, 3, nil)
	gw.runUntil(20*time.Second, "a master with all three in sync", func() bool {
		m := gw.master()
		return m != 0 && len(gw.inSync(m)) == 3
	})
	m := gw.master()
	slave := m%3 + 1
	v2 := v2Letters(sendExt("T", "0", nil))
	ok := gw.cli.call(gw.addrs[m-1], codec.ReqSendMessageV2, v2, []byte("v2"))
	refused := gw.cli.call(gw.addrs[slave-1], codec.ReqSendMessageV2, v2, []byte("refused"))
	gw.w.RunFor(time.Second)
	if r := gw.cli.got[ok]; r == nil || r.Code != codec.Success {
		t.Fatalf("SEND_MESSAGE_V2 to the master: %+v", r)
	}
	if r := gw.cli.got[refused]; r == nil || r.Code != codec.ServiceNotAvailable {
		t.Fatalf("SEND_MESSAGE_V2 to a slave: %+v, want SERVICE_NOT_AVAILABLE", r)
	}
	gw.runUntil(5*time.Second, "the message on every replica", func() bool {
		for id := 1; id <= 3; id++ {
			if got := gw.bodies(id); len(got) != 1 || got[0] != "v2" {
				return false
			}
		}
		return true
	})
}

// v2Letters turns long send names into V2 letters (SendMessageRequestHeaderV2's), keeping
// other fields as they are.
func v2Letters(ext map[string]string) map[string]string {
	letters := map[string]string{"producerGroup": "a", "topic": "b", "defaultTopic": "c", "defaultTopicQueueNums": "d",
		"queueId": "e", "sysFlag": "f", "bornTimestamp": "g", "flag": "h", "properties": "i", "reconsumeTimes": "j",
		"unitMode": "k", "maxReconsumeTimes": "l", "batch": "m", "bname": "n"}
	out := map[string]string{}
	for k, v := range ext {
		if l, ok := letters[k]; ok {
			k = l
		}
		out[k] = v
	}
	return out
}
