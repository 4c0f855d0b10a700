package brokernode

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// A producer sends one message; once the fsync covering it completes it is acknowledged, and
// a consumer pulling the queue gets it back in the exact 4.x stored-record layout, at the queue
// offset the send reported, with an offset msgId that names this broker and the record.
func TestSendThenPullReturnsTheStoredRecord(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	producer := h.env.accept(h.b, "127.0.9.7:50000")
	consumer := h.env.accept(h.b, "127.0.9.8:50001")

	props := map[string]string{codec.PropTags: "TagA", codec.PropUniqKey: "C0A8000100002A9F0000000000000001"}
	var ops []int32
	for i := 0; i < 3; i++ {
		ops = append(ops, h.send(producer, "Orders", 1, "order-"+strconv.Itoa(i), props))
		h.syncAll()
	}
	for i, op := range ops {
		resp := h.mustAnswer(producer, op)
		if resp.Code != codec.Success {
			t.Fatalf("send %d: code %d (%s)", i, resp.Code, resp.Remark)
		}
		if got := resp.Ext("queueOffset"); got != strconv.Itoa(i) {
			t.Errorf("send %d: queueOffset %q, want %d", i, got, i)
		}
		if got := resp.Ext("queueId"); got != "1" {
			t.Errorf("send %d: queueId %q, want 1", i, got)
		}
	}
	last := h.mustAnswer(producer, ops[2])

	resp := h.mustAnswer(consumer, h.pull(consumer, "Orders", 1, 2))
	if resp.Code != codec.Success {
		t.Fatalf("pull at 2: code %d (%s)", resp.Code, resp.Remark)
	}
	msgs := decodeBody(t, resp.Body)
	if len(msgs) != 1 {
		t.Fatalf("pull at 2 returned %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Topic != "Orders" || m.QueueID != 1 || m.QueueOffset != 2 || string(m.Body) != "order-2" {
		t.Errorf("record: topic %q queue %d offset %d body %q", m.Topic, m.QueueID, m.QueueOffset, m.Body)
	}
	// Byte for byte as sent, then CLUSTER, which the broker adds as Java's does.
	if want := codec.EncodeProperties(props) + "CLUSTER\x01DefaultCluster\x02"; m.Properties != want {
		t.Errorf("properties %q, want them byte for byte as sent, then the broker's CLUSTER: %q", m.Properties, want)
	}
	if want := netip.MustParseAddrPort("127.0.9.7:50000"); m.BornHost != want {
		t.Errorf("born host %v, want the producer's connection %v", m.BornHost, want)
	}
	if want := netip.MustParseAddrPort(h.cfg.Addr); m.StoreHost != want {
		t.Errorf("store host %v, want %v", m.StoreHost, want)
	}
	if m.BornTimestamp != 1767225600000 || m.StoreTimestamp != h.env.Now().UnixMilli() {
		t.Errorf("born %d store %d, want 1767225600000 and %d", m.BornTimestamp, m.StoreTimestamp, h.env.Now().UnixMilli())
	}
	// The layout itself: docs/protocol.md, "Stored message records": IPv4 total = 91 + body + topic + properties.
	rec := resp.Body
	if got, want := int(binary.BigEndian.Uint32(rec)), 91+len("order-2")+len("Orders")+len(m.Properties); got != want || len(rec) != want {
		t.Errorf("TOTALSIZE %d, body of %d bytes, want both %d", got, len(rec), want)
	}
	if magic := binary.BigEndian.Uint32(rec[4:]); magic != codec.MessageMagic {
		t.Errorf("MAGICCODE %#x, want the 4.x magic %#x", magic, codec.MessageMagic)
	}

	host, phys, err := codec.ParseOffsetMsgID(last.Ext("msgId"))
	if err != nil {
		t.Fatalf("msgId %q: %v", last.Ext("msgId"), err)
	}
	if host != netip.MustParseAddrPort(h.cfg.Addr) || phys != m.PhysicalOffset {
		t.Errorf("msgId %q names %v offset %d, want %s offset %d", last.Ext("msgId"), host, phys, h.cfg.Addr, m.PhysicalOffset)
	}
}

// In sync-flush mode a send is answered only by the fsync that covers it, and group commit
// covers every send that arrived while one fsync was in flight with the next single fsync.
func TestSyncFlushAcksAfterTheCoveringFsyncWithGroupCommit(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	before := h.env.commitLogSyncs()

	first := h.send(p, "Orders", 0, "m1", nil)
	if h.answer(p, first) != nil {
		t.Fatal("m1 was acknowledged before any fsync")
	}
	if got := h.env.commitLogSyncs() - before; got != 1 {
		t.Fatalf("m1 asked for %d fsyncs, want 1", got)
	}
	// Two more sends while that fsync is in flight: no new fsync yet, no answers.
	second := h.send(p, "Orders", 0, "m2", nil)
	third := h.send(p, "Orders", 0, "m3", nil)
	if got := h.env.commitLogSyncs() - before; got != 1 {
		t.Fatalf("sends during an fsync in flight asked for %d fsyncs in all, want still 1", got)
	}

	// The first fsync completes: it covers m1 only.
	h.completeSyncs()
	if h.answer(p, first) == nil {
		t.Fatal("m1 not acknowledged after the fsync covering it")
	}
	if h.answer(p, second) != nil || h.answer(p, third) != nil {
		t.Fatal("m2 or m3 acknowledged by an fsync that did not cover them")
	}
	// One more fsync covers both.
	if got := h.env.commitLogSyncs() - before; got != 2 {
		t.Fatalf("after the first fsync: %d fsyncs in all, want 2 (one for m2 and m3 together)", got)
	}
	if s := h.env.Syncs()[len(h.env.Syncs())-1]; s.UpTo != 3 {
		t.Fatalf("the group fsync covers up to %d, want 3", s.UpTo)
	}
	h.completeSyncs()
	for _, op := range []int32{second, third} {
		if resp := h.answer(p, op); resp == nil || resp.Code != codec.Success {
			t.Fatalf("send %d after the group fsync: %+v", op, resp)
		}
	}
	if got := h.env.commitLogSyncs() - before; got != 2 {
		t.Fatalf("three sends took %d fsyncs, want 2", got)
	}
}

// A consumer never sees a message before its fsync: the queue looks empty until then.
func TestPullDoesNotSeeAMessageBeforeItsFsync(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	c := h.env.accept(h.b, "127.0.9.8:50001")

	h.send(p, "Orders", 0, "m1", nil)
	resp := h.mustAnswer(c, h.pull(c, "Orders", 0, 0))
	if resp.Code != codec.PullNotFound || len(resp.Body) != 0 || resp.Ext("maxOffset") != "0" {
		t.Fatalf("pull before the fsync: code %d maxOffset %q body %d bytes; want 19, 0, empty",
			resp.Code, resp.Ext("maxOffset"), len(resp.Body))
	}
	h.syncAll()
	resp = h.mustAnswer(c, h.pull(c, "Orders", 0, 0))
	if resp.Code != codec.Success || len(decodeBody(t, resp.Body)) != 1 {
		t.Fatalf("pull after the fsync: code %d (%s)", resp.Code, resp.Remark)
	}
}

var errIO = &ioError{}

type ioError struct{}

func (*ioError) Error() string { return "simulated EIO" }

// In async-flush mode a send is answered at once and is visible at once.
func TestAsyncFlushAcksAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMode = AsyncFlush
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	op := h.send(p, "Orders", 0, "m1", nil)
	if resp := h.answer(p, op); resp == nil || resp.Code != codec.Success {
		t.Fatalf("async send not acknowledged at once: %+v", resp)
	}
	if max := h.b.Store().MaxOffset("Orders", 0); max != 1 {
		t.Fatalf("async send not visible at once: max offset %d", max)
	}
}

// The planted bug must really plant the bug, or the simulator test that hunts it proves
// nothing: with bugs.AckBeforeSync a sync-flush send is answered before its fsync, once.
func TestPlantedUnsafeAckBeforeSyncAcksBeforeTheFsync(t *testing.T) {
	cfg := testConfig()
	cfg.Bugs = cfg.Bugs.With(bugs.AckBeforeSync)
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	op := h.send(p, "Orders", 0, "m1", nil)
	if resp := h.answer(p, op); resp == nil || resp.Code != codec.Success {
		t.Fatalf("with the planted bug the send is not acknowledged before its fsync: %+v", resp)
	}
	h.syncAll() // answer() fails the test if the fsync answers it a second time
	h.answer(p, op)
}

// The first send to an unknown topic creates it with the producer's queue count (capped at
// DefaultQueueNums) and registers it with the name server at once, so clients can find it.
func TestAutoCreateOnFirstSendRegistersWithTheNameServer(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	ns := h.nameServerConn()
	registered := len(h.framesTo(ns))
	p := h.env.accept(h.b, "127.0.9.7:50000")

	op := h.send(p, "NewTopic", 2, "hello", nil)
	frames := h.framesTo(ns)
	if len(frames) != registered+1 || frames[len(frames)-1].Code != codec.ReqRegisterBroker {
		t.Fatalf("after auto-create the broker sent %d frames to the name server (had %d), want one more REGISTER_BROKER", len(frames), registered)
	}
	reg := frames[len(frames)-1]
	if reg.Ext("brokerAddr") != h.cfg.Addr || reg.Ext("brokerName") != "broker-a" || reg.Ext("brokerId") != "0" {
		t.Errorf("registration header %v", reg.ExtFields)
	}
	var body route.RegisterBody
	if err := json.Unmarshal(reg.Body, &body); err != nil {
		t.Fatalf("registration body %q: %v", reg.Body, err)
	}
	tc, ok := body.TopicConfigTable["NewTopic"]
	if !ok || tc.WriteQueueNums != 4 || tc.ReadQueueNums != 4 || tc.Perm != route.PermRead|route.PermWrite {
		t.Fatalf("registered NewTopic as %+v (present %v), want 4/4 queues, perm 6", tc, ok)
	}
	if _, ok := body.TopicConfigTable[route.DefaultTopic]; !ok {
		t.Errorf("registration lacks %s while auto-create is on", route.DefaultTopic)
	}
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("first send to NewTopic: code %d (%s)", resp.Code, resp.Remark)
	}
}

// With auto-create off, and for %-prefixed system topics always, an unknown topic is 17.
func TestSendToUnknownTopicWithoutAutoCreate(t *testing.T) {
	cfg := testConfig()
	cfg.AutoCreateTopic = false
	h := startBroker(t, cfg, nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	resp := h.mustAnswer(p, h.send(p, "NewTopic", 0, "x", nil))
	if resp.Code != codec.TopicNotExist {
		t.Fatalf("send to an unknown topic with auto-create off: code %d, want 17", resp.Code)
	}
	h2 := startBroker(t, testConfig(), nil)
	p2 := h2.env.accept(h2.b, "127.0.9.7:50000")
	resp = h2.mustAnswer(p2, h2.send(p2, "%RETRY%nobody", 0, "x", nil))
	if resp.Code != codec.TopicNotExist {
		t.Fatalf("send to an unknown %%RETRY%% topic: code %d, want 17 (never auto-created)", resp.Code)
	}
}

// A broker still recovering answers sends with 14, which the client may retry elsewhere.
func TestSendBeforeReadyIsServiceNotAvailable(t *testing.T) {
	env := newBrokerEnv(t, simdisk.New())
	b, err := New(env, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	b.Start()
	h := &brokerHarness{t: t, env: env, b: b}
	p := env.accept(b, "127.0.9.7:50000")
	if resp := h.mustAnswer(p, h.send(p, "Orders", 0, "x", nil)); resp.Code != codec.ServiceNotAvailable {
		t.Fatalf("send before ready: code %d, want 14", resp.Code)
	}
	if resp := h.mustAnswer(p, h.pull(p, "Orders", 0, 0)); resp.Code != codec.SystemBusy || resp.Ext("nextBeginOffset") != "0" {
		t.Fatalf("pull before ready: code %d ext %v, want 2 with offsets", resp.Code, resp.ExtFields)
	}
}

// Bad input gets a clear error code and a remark naming the problem, never a panic and never
// a stored message.
func TestBadInputGetsAClearError(t *testing.T) {
	long := strings.Repeat("x", 128)
	cases := []struct {
		name     string
		code     int16
		ext      map[string]string
		body     []byte
		wantCode int16
		remark   string
	}{
		{"send without queueId", codec.ReqSendMessage, sendExt("Orders", "", nil), []byte("x"), codec.MessageIllegal, `"queueId"`},
		{"send with a non-integer queueId", codec.ReqSendMessage, sendExt("Orders", "one", nil), []byte("x"), codec.MessageIllegal, "not an integer"},
		{"send with a body over MaxMessageBytes", codec.ReqSendMessage, sendExt("Orders", "0", nil), make([]byte, 1025), codec.MessageIllegal, "exceeds the limit of 1024"},
		{"send to a queueId out of range", codec.ReqSendMessage, sendExt("Orders", "4", nil), []byte("x"), codec.SystemError, "out of range"},
		{"send to a topic with a space", codec.ReqSendMessage, sendExt("Or ders", "0", nil), []byte("x"), codec.MessageIllegal, "illegal character"},
		{"send to a topic with a slash", codec.ReqSendMessage, sendExt("../etc", "0", nil), []byte("x"), codec.MessageIllegal, "illegal character"},
		{"send to an empty topic", codec.ReqSendMessage, sendExt("", "0", nil), []byte("x"), codec.MessageIllegal, "empty"},
		{"send to a 128-byte topic", codec.ReqSendMessage, sendExt(long, "0", nil), []byte("x"), codec.MessageIllegal, "longer than 127"},
		{"pull without queueId", codec.ReqPullMessage, map[string]string{"topic": "Orders", "queueOffset": "0"}, nil, codec.SystemError, "queueId"},
		{"pull with a non-integer offset", codec.ReqPullMessage, pullExt("Orders", 0, 0, "queueOffset", "zero"), nil, codec.SystemError, "queueOffset"},
		{"pull from a queueId out of range", codec.ReqPullMessage, pullExt("Orders", 9, 0), nil, codec.SystemError, "out of range"},
		{"query offset with a non-integer queueId", codec.ReqQueryConsumerOffset, map[string]string{"consumerGroup": "cg", "topic": "Orders", "queueId": "x"}, nil, codec.SystemError, "queueId"},
		{"update offset without commitOffset", codec.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": "cg", "topic": "Orders", "queueId": "0"}, nil, codec.SystemError, "commitOffset"},
		{"update offset to a negative offset", codec.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": "cg", "topic": "Orders", "queueId": "0", "commitOffset": "-5"}, nil, codec.SystemError, "negative"},
		{"heartbeat that is not JSON", codec.ReqHeartBeat, nil, []byte("{nope"), codec.SystemError, "bad body"},
		{"heartbeat without clientID", codec.ReqHeartBeat, nil, []byte(`{"consumerDataSet":[]}`), codec.SystemError, "clientID"},
		{"create topic with zero queues", codec.ReqUpdateAndCreateTopic, map[string]string{"topic": "T", "readQueueNums": "0", "writeQueueNums": "4"}, nil, codec.SystemError, "1..1024"},
		{"max offset with a non-integer queueId", codec.ReqGetMaxOffset, map[string]string{"topic": "Orders", "queueId": "?"}, nil, codec.SystemError, "queueId"},
		{"an unsupported request code", 999, nil, nil, codec.RequestCodeNotSupported, "999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxMessageBytes = 1024
			h := startBroker(t, cfg, nil)
			p := h.env.accept(h.b, "127.0.9.7:50000")
			// Orders exists with 4 queues.
			h.send(p, "Orders", 0, "seed", nil)
			h.syncAll()
			last := h.b.Store().CommitLog().LastIndex()

			resp := h.mustAnswer(p, h.request(p, tc.code, tc.ext, tc.body))
			if resp.Code != tc.wantCode || !strings.Contains(resp.Remark, tc.remark) {
				t.Errorf("code %d remark %q, want code %d with a remark containing %q", resp.Code, resp.Remark, tc.wantCode, tc.remark)
			}
			h.syncAll()
			if got := h.b.Store().CommitLog().LastIndex(); got != last {
				t.Errorf("bad input stored something: commit log grew from %d to %d", last, got)
			}
			if tc.code == codec.ReqPullMessage {
				for _, k := range []string{"nextBeginOffset", "minOffset", "maxOffset"} {
					if _, ok := resp.ExtFields[k]; !ok {
						t.Errorf("pull error response lacks %s: %v", k, resp.ExtFields)
					}
				}
			}
		})
	}
}

// The broker's CLUSTER property must fit too: a send whose own properties fit the record but
// leave no room for it is refused as illegal, not stored with a truncated or oversized block.
func TestSendPropertiesWithClusterMustFit(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	ext := sendExt("Orders", "0", nil)
	ext["properties"] = "pad\x01" + strings.Repeat("x", codec.MaxPropertiesBytes-len("pad\x01")-1) + "\x02"
	if len(ext["properties"]) != codec.MaxPropertiesBytes {
		t.Fatalf("test properties of %d bytes, want exactly the limit", len(ext["properties"]))
	}
	op := h.request(p, codec.ReqSendMessage, ext, []byte("m"))
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.MessageIllegal {
		t.Fatalf("send at the properties limit: code %d (%s), want MESSAGE_ILLEGAL: CLUSTER does not fit", resp.Code, resp.Remark)
	}
	if last := h.b.Store().CommitLog().LastIndex(); last != 0 {
		t.Errorf("the refused send was stored: commit log ends at %d", last)
	}
}
