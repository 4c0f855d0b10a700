package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"

	"github.com/sluicemq/sluice/broker/codec"
)

// SEND_MESSAGE_V2 (310) is what the Java client and the Node.js client ali-ons send for every
// ordinary message; the official Go client never does. These tests send it from a raw
// connection with Sluice's codec, headers written as ali-ons writes them (numbers and booleans
// as JSON numbers and booleans), and consume with the official Go client.

// rawConn is one connection to a broker that writes frames as given and reads the answers.
type rawConn struct {
	t      *testing.T
	nc     net.Conn
	br     *bufio.Reader
	opaque int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// callJSON sends a request with the JSON header text header (its "opaque":0 replaced by the
// connection's next opaque) and body, and returns the answer.
func (r *rawConn) callJSON(header string, body []byte) *codec.Command {
	r.t.Helper()
	r.opaque++
	if !strings.Contains(header, `"opaque":0`) {
		r.t.Fatalf("test bug: header without \"opaque\":0: %s", header)
	}
	header = strings.Replace(header, `"opaque":0`, `"opaque":`+strconv.Itoa(int(r.opaque)), 1)
	return r.call(framed(uint32(codec.SerializeJSON)<<24|uint32(len(header)), header+string(body)))
}

// callBinary sends cmd with the ROCKETMQ binary header and returns the answer.
func (r *rawConn) callBinary(cmd *codec.Command) *codec.Command {
	r.t.Helper()
	r.opaque++
	cmd.Opaque = r.opaque
	return r.call(codec.AppendBinaryFrame(nil, cmd))
}

// call writes frame and reads the answer with the current opaque.
func (r *rawConn) call(frame []byte) *codec.Command {
	r.t.Helper()
	if err := r.nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.nc.Write(frame); err != nil {
		r.t.Fatalf("write request: %v", err)
	}
	got, err := codec.ReadFrame(r.br, codec.DefaultMaxFrameBytes)
	if err != nil {
		r.t.Fatalf("read the answer to request %d: %v (the broker closed the connection?)", r.opaque, err)
	}
	resp, err := codec.Decode(got)
	if err != nil || !resp.IsResponse() || resp.Opaque != r.opaque {
		r.t.Fatalf("answer to request %d: %+v %v", r.opaque, resp, err)
	}
	return resp
}

// v2Send is one SEND_MESSAGE_V2 as ali-ons writes it.
type v2Send struct {
	topic   string
	queue   int
	sysFlag int
	props   map[string]string
	body    string
	bornMs  int64
}

func (s v2Send) header() string {
	props, err := json.Marshal(codec.EncodeProperties(s.props))
	if err != nil {
		panic(err)
	}
	topic, _ := json.Marshal(s.topic)
	return fmt.Sprintf(`{"code":310,"extFields":{"a":"pg_v2","b":%s,"c":"TBW102","d":4,"e":%d,"f":%d,"g":%d,"h":7,"i":%s,`+
		`"j":0,"k":false,"l":16,"m":false},"flag":0,"language":"JAVA","opaque":0,"serializeTypeCurrentRPC":"JSON","version":373}`,
		topic, s.queue, s.sysFlag, s.bornMs, props)
}

// mustSend sends s with JSON and checks it is stored where asked; it returns the answer.
func (r *rawConn) mustSend(s v2Send) *codec.Command {
	r.t.Helper()
	resp := r.callJSON(s.header(), []byte(s.body))
	if resp.Code != codec.Success || resp.Ext("queueId") != strconv.Itoa(s.queue) {
		r.t.Fatalf("SEND_MESSAGE_V2 of %q: code %d (%s), ext %v", s.body, resp.Code, resp.Remark, resp.ExtFields)
	}
	if _, _, err := codec.ParseOffsetMsgID(resp.Ext("msgId")); err != nil {
		r.t.Fatalf("SEND_MESSAGE_V2 of %q: msgId %q: %v", s.body, resp.Ext("msgId"), err)
	}
	return resp
}

// Messages sent with SEND_MESSAGE_V2 from a raw connection (JSON headers with numeric and
// boolean values, and one binary header) reach an official push consumer exactly once, as
// sent: queue, flag, born timestamp, tags, user properties (non-ASCII included), body and
// message id. On the same connection, request codes the broker does not serve (a code beyond
// int16, PUSH_REPLY_MESSAGE_TO_CLIENT, which goes from broker to client) are answered
// REQUEST_CODE_NOT_SUPPORTED and logged, and the connection stays open.
func TestCompatSendV2FromARawClient(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 4)
	cb, snap := recordDeliveries()
	pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, cb); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}

	raw := dialRaw(t, c.Broker)
	for _, tc := range []struct{ header, code string }{
		{`{"code":40000,"flag":0,"language":"JAVA","opaque":0,"version":373}`, "40000"},
		{strings.Replace(v2Send{topic: topic, bornMs: 1}.header(), `"code":310`, `"code":326`, 1), "326"},
	} {
		resp := raw.callJSON(tc.header, nil)
		if resp.Code != codec.RequestCodeNotSupported || !strings.Contains(resp.Remark, "request code "+tc.code+" ") {
			t.Fatalf("request code %s answered %d %q, want REQUEST_CODE_NOT_SUPPORTED naming the code", tc.code, resp.Code, resp.Remark)
		}
	}

	now := time.Now().UnixMilli()
	sends := []v2Send{
		{topic: topic, queue: 0, body: "v2-0", bornMs: now, props: map[string]string{"TAGS": "TagA", "UNIQ_KEY": "AC11000100002A9F00000000000000A0", "user": "u0"}},
		{topic: topic, queue: 1, body: "v2-1", bornMs: now + 1, props: map[string]string{"TAGS": "TagB", "UNIQ_KEY": "AC11000100002A9F00000000000000A1", "user": "é \"日本\" ok"}},
		{topic: topic, queue: 2, body: "v2-2", bornMs: now + 2, props: map[string]string{"TAGS": "TagA", "UNIQ_KEY": "AC11000100002A9F00000000000000A2", "KEYS": "k1 k2"}},
	}
	for _, s := range sends {
		raw.mustSend(s)
	}
	// The same send with a binary (ROCKETMQ) header, as a Java client configured for it writes.
	bin := v2Send{topic: topic, queue: 3, body: "v2-bin", bornMs: now + 3,
		props: map[string]string{"TAGS": "TagB", "UNIQ_KEY": "AC11000100002A9F00000000000000A3", "user": "binary"}}
	resp := raw.callBinary(&codec.Command{Code: codec.ReqSendMessageV2, Language: "JAVA", Version: 373, Body: []byte(bin.body),
		ExtFields: map[string]string{"a": "pg_v2", "b": topic, "c": "TBW102", "d": "4", "e": "3", "f": "0",
			"g": strconv.FormatInt(bin.bornMs, 10), "h": "7", "i": codec.EncodeProperties(bin.props), "j": "0", "k": "false",
			"l": "16", "m": "false"}})
	if resp.Code != codec.Success || resp.Ext("queueId") != "3" {
		t.Fatalf("binary SEND_MESSAGE_V2: code %d (%s), ext %v", resp.Code, resp.Remark, resp.ExtFields)
	}
	sends = append(sends, bin)

	waitFor(t, 30*time.Second, "every SEND_MESSAGE_V2 message consumed", func() bool { return len(snap()) == len(sends) })
	time.Sleep(300 * time.Millisecond) // a duplicate would show up here
	got := snap()
	for _, s := range sends {
		d := got[s.body]
		if len(d) != 1 {
			t.Errorf("%s delivered %d times, want once", s.body, len(d))
			continue
		}
		m := d[0].msg
		if m.Topic != topic || m.Queue.QueueId != s.queue || m.Flag != 7 || m.BornTimestamp != s.bornMs || m.MsgId != s.props["UNIQ_KEY"] {
			t.Errorf("%s: topic %s queue %d flag %d born %d msgId %s; sent to %s/%d with flag 7, born %d, UNIQ_KEY %s",
				s.body, m.Topic, m.Queue.QueueId, m.Flag, m.BornTimestamp, m.MsgId, topic, s.queue, s.bornMs, s.props["UNIQ_KEY"])
		}
		for k, v := range s.props {
			if got := m.GetProperty(k); got != v {
				t.Errorf("%s: property %s = %q, sent %q", s.body, k, got, v)
			}
		}
	}
	if log := c.proc.stderr.String(); !strings.Contains(log, "request code not supported") || !strings.Contains(log, "code=40000") {
		t.Errorf("the unsupported request codes were not logged:\n%s", log)
	}
}

// A transactional half message and a delayed message sent with SEND_MESSAGE_V2: the half is
// delivered only once committed (END_TRANSACTION from the same raw connection, its offsets as
// JSON numbers), a rolled-back one never; the delayed one (level 2, 2 s here) only once due.
func TestCompatSendV2TransactionAndDelay(t *testing.T) {
	t.Parallel()
	c := startCompat(t, "--delay-levels", shortDelayLevels)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	c.createTopic(t, topic, 2)
	cb, snap := recordDeliveries()
	pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, cb); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	raw := dialRaw(t, c.Broker)

	half := func(body, uniq string) *codec.Command {
		return raw.mustSend(v2Send{topic: topic, queue: 0, sysFlag: codec.SysFlagTxnPrepared, body: body, bornMs: time.Now().UnixMilli(),
			props: map[string]string{"TRAN_MSG": "true", "PGROUP": "pg_v2", "UNIQ_KEY": uniq, "TAGS": "TagT", "user": "u-" + body}})
	}
	end := func(resp *codec.Command, uniq string, kind int) {
		t.Helper()
		_, clOffset, err := codec.ParseOffsetMsgID(resp.Ext("msgId"))
		if err != nil {
			t.Fatal(err)
		}
		hdr := fmt.Sprintf(`{"code":37,"extFields":{"producerGroup":"pg_v2","tranStateTableOffset":%s,"commitLogOffset":%d,`+
			`"commitOrRollback":%d,"fromTransactionCheck":false,"msgId":%q,"transactionId":%q},"flag":0,"language":"JAVA","opaque":0,"version":373}`,
			resp.Ext("queueOffset"), clOffset, kind, uniq, uniq)
		if r := raw.callJSON(hdr, nil); r.Code != codec.Success {
			t.Fatalf("END_TRANSACTION %d of %s: code %d (%s)", kind, uniq, r.Code, r.Remark)
		}
	}
	committed := half("txn-commit", "AC11000100002A9F00000000000000B0")
	rolledBack := half("txn-rollback", "AC11000100002A9F00000000000000B1")
	time.Sleep(500 * time.Millisecond)
	if got := snap(); len(got) != 0 {
		t.Fatalf("half messages delivered before their commit: %v", got)
	}
	end(committed, "AC11000100002A9F00000000000000B0", codec.SysFlagTxnCommit)
	end(rolledBack, "AC11000100002A9F00000000000000B1", codec.SysFlagTxnRollback)

	delayed := delayedSend{body: "v2-delayed", level: 2, queue: 1, sentAt: time.Now()}
	raw.mustSend(v2Send{topic: topic, queue: 1, body: delayed.body, bornMs: delayed.sentAt.UnixMilli(),
		props: map[string]string{"DELAY": "2", "TAGS": "Delayed", "level": "2", "UNIQ_KEY": "AC11000100002A9F00000000000000B2"}})

	waitFor(t, 2*time.Second+delayLate+5*time.Second, "the committed and the delayed message consumed", func() bool {
		got := snap()
		return len(got["txn-commit"]) > 0 && len(got["v2-delayed"]) > 0
	})
	time.Sleep(500 * time.Millisecond) // a duplicate or the rolled-back message would show up here
	got := snap()
	checkDelivery(t, delayed, got[delayed.body], topic, delayed.sentAt.Add(2*time.Second+delayLate))
	if d := got["txn-commit"]; len(d) != 1 {
		t.Errorf("the committed message was delivered %d times, want once", len(d))
	} else if m := d[0].msg; m.Queue.QueueId != 0 || m.GetProperty("user") != "u-txn-commit" || m.GetTags() != "TagT" ||
		m.GetProperty("TRAN_MSG") != "" || m.MsgId != "AC11000100002A9F00000000000000B0" {
		t.Errorf("committed message: queue %d tags %q user %q TRAN_MSG %q msgId %s", m.Queue.QueueId, m.GetTags(),
			m.GetProperty("user"), m.GetProperty("TRAN_MSG"), m.MsgId)
	}
	if d := got["txn-rollback"]; len(d) != 0 {
		t.Errorf("the rolled-back message was delivered %d times", len(d))
	}
	if len(got) != 2 {
		t.Errorf("delivered %d distinct bodies, want 2", len(got))
	}
}
