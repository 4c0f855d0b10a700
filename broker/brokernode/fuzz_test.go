package brokernode

import (
	"bytes"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// The broker's request surface under fuzzing: every request a client can send reaches OnFrame
// with whatever header fields and body the client chose. FuzzBrokerRequest feeds one request
// per input to a broker holding some messages and checks what must hold whatever arrives.

// fuzzTopic is the topic a fuzzed broker holds messages in; fuzzGroup consumes it.
const (
	fuzzTopic  = "FuzzT"
	fuzzGroup  = "cg"
	fuzzClient = "127.0.9.8@1"
	fuzzStored = 5 // messages in queue 0 of fuzzTopic
	// fuzzBroker's last write is a transactional half message of producer group "pg".
	fuzzHalfIndex   = fuzzStored + 1
	fuzzHalfUniqKey = "C0A8000100002A9F00000000000000AA"
	// fuzzRequester is a producer client (group "rpg") on its own connection, waiting for
	// replies: the templates of SEND_REPLY_MESSAGE address it.
	fuzzRequester = "127.0.9.6@2"
)

// fuzzRequest is a request as the official Go client writes it: the starting point the fuzzer
// mutates.
type fuzzRequest struct {
	ext  map[string]string
	body []byte
}

// fuzzRequests holds a template for every request code the broker serves (and for the ones
// the official client sends that it may serve later). TestFuzzTemplatesCoverServedCodes fails
// when a served code has none: add one here when you teach OnFrame a new code.
func fuzzRequests() map[int16]fuzzRequest {
	queue := func(extra ...string) map[string]string {
		ext := map[string]string{"consumerGroup": fuzzGroup, "topic": fuzzTopic, "queueId": "0", "bname": "broker-a"}
		for i := 0; i+1 < len(extra); i += 2 {
			ext[extra[i]] = extra[i+1]
		}
		return ext
	}
	originID := codec.OffsetMsgID(netip.MustParseAddrPort(testConfig().Addr), 1)
	send := sendExt(fuzzTopic, "1", map[string]string{codec.PropTags: "TagA", codec.PropKeys: "k1 k2",
		codec.PropUniqKey: "C0A8000100002A9F0000000000000001"})
	// A reply as consumer.CreateReplyMessage builds it, to the requester fuzzBroker registered.
	reply := sendExt(ReplyTopic("DefaultCluster"), "0", map[string]string{codec.PropMsgType: codec.MsgTypeReply,
		codec.PropCorrelationID: "9f0c1d2e-corr", codec.PropReplyToClient: fuzzRequester, codec.PropMessageTTL: "3",
		codec.PropUniqKey: "C0A8000100002A9F0000000000000002"})
	return map[int16]fuzzRequest{
		codec.ReqSendMessage: {send, []byte("hello")},
		// At the end of queue 0 with the suspend bit: the broker parks it.
		codec.ReqPullMessage: {pullExt(fuzzTopic, 0, fuzzStored, "sysFlag", "7", "commitOffset", "2",
			"suspendTimeoutMillis", "20000", "subscription", "TagA || TagB"), nil},
		codec.ReqQueryConsumerOffset:     {queue(), nil},
		codec.ReqUpdateConsumerOffset:    {queue("commitOffset", "3"), nil},
		codec.ReqGetMaxOffset:            {queue(), nil},
		codec.ReqGetMinOffset:            {queue(), nil},
		codec.ReqSearchOffsetByTimestamp: {queue("timestamp", strconv.FormatInt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), 10)), nil},
		codec.ReqHeartBeat:               {nil, heartbeat(fuzzClient, fuzzGroup)},
		codec.ReqCheckClientConfig: {nil, []byte(`{"clientId":"` + fuzzClient + `","group":"` + fuzzGroup +
			`","subscriptionData":{"topic":"` + fuzzTopic + `","subString":"a > 5 AND TAGS IN ('TagA')","expressionType":"SQL92"}}`)},
		codec.ReqUnregisterClient:          {map[string]string{"clientID": fuzzClient, "consumerGroup": fuzzGroup, "producerGroup": "pg"}, nil},
		codec.ReqGetConsumerListByGroup:    {map[string]string{"consumerGroup": fuzzGroup}, nil},
		codec.ReqGetConsumerConnectionList: {map[string]string{"consumerGroup": fuzzGroup}, nil},
		codec.ReqGetProducerConnectionList: {map[string]string{"producerGroup": "rpg"}, nil},
		codec.ReqInvokeBrokerToResetOffset: {map[string]string{"group": fuzzGroup, "topic": fuzzTopic, "timestamp": "0",
			"isForce": "true", "queueId": "-1"}, nil},
		codec.ReqUpdateAndCreateTopic: {map[string]string{"topic": "FuzzNew", "defaultTopic": "TBW102", "readQueueNums": "8",
			"writeQueueNums": "8", "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}, nil},
		codec.ReqLockBatchMQ:   {nil, mustJSON(lockBatchRequest{ConsumerGroup: fuzzGroup, ClientID: fuzzClient, MQSet: []lockMQ{{fuzzTopic, "broker-a", 0}, {fuzzTopic, "broker-a", 1}}})},
		codec.ReqUnlockBatchMQ: {nil, mustJSON(lockBatchRequest{ConsumerGroup: fuzzGroup, ClientID: fuzzClient, MQSet: []lockMQ{{fuzzTopic, "broker-a", 0}}})},
		codec.ReqConsumerSendMsgBack: {map[string]string{"group": fuzzGroup, "offset": "1", "delayLevel": "0", "originMsgId": originID,
			"originTopic": fuzzTopic, "unitMode": "false", "maxReconsumeTimes": "16", "bname": "broker-a"}, nil},
		// Commits the half message fuzzBroker stored.
		codec.ReqEndTransaction: {map[string]string{"producerGroup": "pg", "tranStateTableOffset": "0",
			"commitLogOffset": strconv.Itoa(fuzzHalfIndex), "commitOrRollback": "8", "fromTransactionCheck": "false",
			"msgId": fuzzHalfUniqKey, "transactionId": fuzzHalfUniqKey, "bname": "broker-a"}, nil},
		// Finds the half message fuzzBroker stored, by its UNIQ_KEY.
		codec.ReqQueryMessage: {map[string]string{"topic": HalfTopic, "key": fuzzHalfUniqKey, "maxNum": "32", "beginTimestamp": "0",
			"endTimestamp": "9223372036854775807"}, nil},
		codec.ReqViewMessageByID:         {map[string]string{"offset": "1"}, nil},
		codec.ReqGetAllSubscriptionGroup: {nil, nil},
		codec.ReqGetAllTopicConfig:       {nil, nil},
		codec.ReqGetAllConsumerOffset:    {nil, nil},
		codec.ReqGetAllDelayOffset:       {nil, nil},
		codec.ReqDeleteTopicInBroker:     {map[string]string{"topic": fuzzTopic}, nil},
		codec.ReqSendBatchMessage: {batchExt(fuzzTopic, 2, ""), fuzzBatchBody(
			codec.BatchMessage{Flag: 1, Body: []byte("one"), Properties: codec.EncodeProperties(map[string]string{codec.PropTags: "TagA"})},
			codec.BatchMessage{Body: []byte("two")})},
		codec.ReqSendMessageV2:      {v2Letters(send), []byte("hello, short names")},
		codec.ReqSendReplyMessage:   {reply, []byte("reply")},
		codec.ReqSendReplyMessageV2: {v2Letters(reply), []byte("reply, short names")},
	}
}

// fuzzBatchBody is a SEND_BATCH_MESSAGE body of msgs.
func fuzzBatchBody(msgs ...codec.BatchMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = codec.AppendBatchRecord(b, m); err != nil {
			panic(err)
		}
	}
	return b
}

// Fuzz input flags.
const (
	fuzzTemplateExt  = 1 << 0 // start from the template's ext fields (else from none)
	fuzzTemplateBody = 1 << 1 // send the template's body (else the fuzzed one)
	fuzzAsyncFlush   = 1 << 2
	fuzzOneway       = 1 << 3 // set the oneway flag bit
	fuzzNotReady     = 1 << 4 // deliver the request before the broker's recovery fsync completes
	fuzzOddRemote    = 1 << 5 // the connection's remote address is not ip:port
)

// replyPushFailed reports whether resp is a reply's answer saying its push to the requester
// failed; Java stores such a reply anyway (ReplyMessageProcessor), so it may grow the log.
func replyPushFailed(code int16, resp *codec.Command) bool {
	return (code == codec.ReqSendReplyMessage || code == codec.ReqSendReplyMessageV2) && resp.Code == codec.SystemError &&
		(strings.HasPrefix(resp.Remark, "push reply message") || strings.HasPrefix(resp.Remark, "reply message properties["))
}

// noAnswerCodes are requests the official client sends without waiting for an answer, which a
// broker may leave unanswered (Java answers END_TRANSACTION with nothing).
var noAnswerCodes = map[int16]bool{codec.ReqEndTransaction: true}

// okCodes are answers that report an outcome rather than a refusal.
var okCodes = map[int16]bool{codec.Success: true, codec.PullNotFound: true, codec.PullRetryImmediately: true,
	codec.PullOffsetMoved: true, codec.QueryNotFound: true}

// applyExtEdits edits ext by lines of edits: "k=v" sets k, a line without '=' deletes it.
func applyExtEdits(ext map[string]string, edits string) map[string]string {
	for _, line := range strings.Split(edits, "\n") {
		if line == "" {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			ext[k] = v
		} else {
			delete(ext, line)
		}
	}
	return ext
}

// fuzzBroker starts a broker holding fuzzStored messages in queue 0 of fuzzTopic, a consumer
// group with a committed offset and a queue lock, unless flags ask for one still recovering.
func fuzzBroker(t *testing.T, flags uint8) *brokerHarness {
	cfg := testConfig()
	if flags&fuzzAsyncFlush != 0 {
		cfg.FlushMode = AsyncFlush
	}
	if flags&fuzzNotReady != 0 {
		h := &brokerHarness{t: t, env: newBrokerEnv(t, simdisk.New()), cfg: cfg}
		b, err := New(h.env, cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		h.b = b
		b.Start()
		return h
	}
	h := startBroker(t, cfg, nil)
	setup := h.env.accept(h.b, "127.0.9.7:50000")
	op := h.request(setup, codec.ReqUpdateAndCreateTopic, map[string]string{"topic": fuzzTopic,
		"readQueueNums": "4", "writeQueueNums": "4", "perm": "6"}, nil)
	h.nameServersAnswer()
	if r := h.mustAnswer(setup, op); r.Code != codec.Success {
		t.Fatalf("create %s: %d %s", fuzzTopic, r.Code, r.Remark)
	}
	for i := range fuzzStored {
		h.send(setup, fuzzTopic, 0, "m"+strconv.Itoa(i), map[string]string{codec.PropTags: "Tag" + strconv.Itoa(i%2)})
	}
	half := sendExt(fuzzTopic, "1", map[string]string{codec.PropTranMsg: "true", codec.PropProducerGroup: "pg", codec.PropUniqKey: fuzzHalfUniqKey})
	half["sysFlag"] = strconv.Itoa(codec.SysFlagTxnPrepared)
	h.request(setup, codec.ReqSendMessage, half, []byte("half"))
	h.syncAll()
	if last := h.b.Store().CommitLog().LastIndex(); last != fuzzHalfIndex {
		t.Fatalf("setup wrote %d commit-log entries, want %d", last, fuzzHalfIndex)
	}
	h.request(setup, codec.ReqHeartBeat, nil, heartbeat(fuzzClient, fuzzGroup))
	requester := h.env.accept(h.b, "127.0.9.6:50000")
	h.request(requester, codec.ReqHeartBeat, nil, producerHeartbeat(fuzzRequester, "rpg"))
	h.request(setup, codec.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": fuzzGroup, "topic": fuzzTopic,
		"queueId": "0", "commitOffset": "2"}, nil)
	h.request(setup, codec.ReqLockBatchMQ, nil, fuzzRequests()[codec.ReqLockBatchMQ].body)
	h.syncAll()
	return h
}

// commitLog reads every entry of the broker's commit log.
func commitLog(t *testing.T, b *Broker) [][]byte {
	cl := b.Store().CommitLog()
	var out [][]byte
	for i := cl.FirstIndex(); i <= cl.LastIndex(); i++ {
		e, err := cl.Read(i)
		if err != nil {
			t.Fatalf("read commit log entry %d: %v", i, err)
		}
		out = append(out, bytes.Clone(e))
	}
	return out
}

// FuzzBrokerRequest delivers one request, its code and flags, ext fields and body chosen by the
// fuzzer, to a broker holding messages, and checks: the broker does not panic; a request that
// expects an answer gets exactly one, with its opaque, on its connection (a long-polling pull
// may be parked instead, and is then answered when its time runs out); the commit log keeps
// every entry it held, byte for byte; and a request the broker refuses leaves the commit log
// as it was (but for a reply whose push failed, which Java stores too). Replies pushed to the
// requester fuzzBroker registered are answered SUCCESS by it.
func FuzzBrokerRequest(f *testing.F) {
	templates := fuzzRequests()
	for _, code := range slices.Sorted(maps.Keys(templates)) {
		f.Add(code, uint8(fuzzTemplateExt|fuzzTemplateBody), "", []byte(nil))
		f.Add(code, uint8(fuzzTemplateExt|fuzzTemplateBody|fuzzAsyncFlush), "", []byte(nil))
		f.Add(code, uint8(fuzzTemplateExt|fuzzTemplateBody|fuzzNotReady), "", []byte(nil))
		f.Add(code, uint8(fuzzTemplateExt), "topic\nqueueId=x", []byte("{"))
	}
	f.Add(codec.ReqSendMessage, uint8(fuzzTemplateExt|fuzzOddRemote), "queueId=-1\nsysFlag=4", []byte("body"))
	f.Add(codec.ReqSendMessage, uint8(fuzzTemplateExt), "topic=%RETRY%cg\nqueueId=0\nproperties=DELAY\x013\x02", []byte("again"))
	f.Add(codec.ReqSendMessage, uint8(fuzzTemplateExt), "topic=NewTopic\nqueueId=7\ndefaultTopicQueueNums=-3", []byte("b"))
	f.Add(codec.ReqPullMessage, uint8(fuzzTemplateExt), "queueOffset=-1\nmaxMsgNums=0", []byte(nil))
	f.Add(codec.ReqPullMessage, uint8(fuzzTemplateExt), "queueOffset=1\nsysFlag=0", []byte(nil))
	f.Add(codec.ReqPullMessage, uint8(fuzzTemplateExt|fuzzAsyncFlush), "queueId=3\nqueueOffset=0\nsuspendTimeoutMillis=99999999999", []byte(nil))
	f.Add(codec.ReqUpdateAndCreateTopic, uint8(fuzzTemplateExt), "readQueueNums=100000\ntopic=%DLQ%cg", []byte(nil))
	f.Add(codec.ReqPullMessage, uint8(fuzzTemplateExt), "queueOffset=0\nsysFlag=4\nexpressionType=SQL92\nsubscription=TAGS = 'TagA' AND a IS NULL", []byte(nil))
	f.Add(codec.ReqPullMessage, uint8(fuzzTemplateExt), "queueOffset=0\nsysFlag=5\nexpressionType=SQL92\nsubscription=a >", []byte(nil))
	f.Add(codec.ReqHeartBeat, uint8(0), "", []byte(`{"clientID":"x","consumerDataSet":[{"groupName":"cg","subscriptionDataSet":[{"topic":"FuzzT","subString":"a > 1","expressionType":"SQL92"}]}]}`))
	f.Add(codec.ReqHeartBeat, uint8(0), "", []byte(`{"clientID":"x","consumerDataSet":[{"groupName":"g","messageModel":"BROADCASTING","subscriptionDataSet":[{"topic":"","subString":"||"}]}]}`))
	f.Add(codec.ReqLockBatchMQ, uint8(0), "", []byte(`{"consumerGroup":"cg","clientId":"other","mqSet":[{"topic":"FuzzT","queueId":0}]}`))
	f.Add(codec.ReqSendReplyMessage, uint8(fuzzTemplateExt), "properties=REPLY_TO_CLIENT\x01nobody\x02MSG_TYPE\x01reply", []byte("x"))
	f.Add(codec.ReqSendReplyMessageV2, uint8(fuzzTemplateExt|fuzzAsyncFlush), "e=-1\nf=1", []byte("not zlib"))
	f.Add(int16(-1), uint8(fuzzOneway), "", []byte(nil))
	f.Add(int16(9999), uint8(0), "a=b", []byte("x"))
	f.Fuzz(func(t *testing.T, code int16, flags uint8, edits string, body []byte) {
		h := fuzzBroker(t, flags)
		tmpl := templates[code]
		ext := map[string]string{}
		if flags&fuzzTemplateExt != 0 {
			for k, v := range tmpl.ext {
				ext[k] = v
			}
		}
		ext = applyExtEdits(ext, edits)
		if flags&fuzzTemplateBody != 0 {
			body = tmpl.body
		}
		remote := "127.0.9.9:50002"
		if flags&fuzzOddRemote != 0 {
			remote = "@pipe"
		}
		c := h.env.accept(h.b, remote)
		before := commitLog(t, h.b)
		parkedBefore := h.b.parked.count

		h.opaque = 7777
		req := codec.NewRequest(code, ext, body)
		req.Opaque = h.opaque
		if flags&fuzzOneway != 0 {
			req.Flag |= codec.FlagOneway
		}
		h.b.OnFrame(c, req)
		h.env.checkInvariants(h.b)
		h.clientsAnswerReplyPushes()
		h.syncAll()
		h.nameServersAnswer()

		resp := h.answer(c, req.Opaque)
		if resp == nil && h.b.parked.count == parkedBefore+1 {
			if code != codec.ReqPullMessage {
				t.Fatalf("request code %d was parked like a long-polling pull", code)
			}
			h.env.advance(h.b, h.cfg.MaxLongPoll+time.Second)
			h.syncAll()
			if resp = h.answer(c, req.Opaque); resp == nil {
				t.Fatalf("a parked pull was not answered after its longest poll of %v", h.cfg.MaxLongPoll)
			}
		}
		if resp == nil && flags&fuzzOneway == 0 && !noAnswerCodes[code] {
			t.Fatalf("request code %d with ext %q and a body of %d bytes got no answer", code, ext, len(body))
		}
		for _, s := range h.env.Sent() {
			if s.Conn == c && s.Cmd.IsResponse() && s.Cmd.Opaque != req.Opaque {
				t.Fatalf("a response with opaque %d on a connection that sent only request %d", s.Cmd.Opaque, req.Opaque)
			}
		}
		after := commitLog(t, h.b)
		if len(after) < len(before) {
			t.Fatalf("the commit log shrank from %d to %d entries", len(before), len(after))
		}
		if diff := cmp.Diff(before, after[:len(before)]); diff != "" {
			t.Fatalf("stored entries changed (-before +after):\n%s", diff)
		}
		if resp != nil && !okCodes[resp.Code] && !replyPushFailed(code, resp) && len(after) != len(before) {
			t.Fatalf("request code %d was refused (%d %s) but the commit log grew from %d to %d entries",
				code, resp.Code, resp.Remark, len(before), len(after))
		}
	})
}

// servedCodes probes a broker with an empty request of every code 0..1023 and returns those it
// does not refuse as unsupported.
func servedCodes(t *testing.T) []int16 {
	h := fuzzBroker(t, 0)
	c := h.env.accept(h.b, "127.0.9.9:50002")
	var served []int16
	for code := int16(0); code < 1024; code++ {
		op := h.request(c, code, nil, nil)
		h.syncAll()
		if r := h.answer(c, op); r == nil || r.Code != codec.RequestCodeNotSupported {
			served = append(served, code)
		}
	}
	return served
}

// Every code the broker serves has a template in fuzzRequests, so FuzzBrokerRequest starts
// from a well-formed request of each (and reaches past the header checks).
func TestFuzzTemplatesCoverServedCodes(t *testing.T) {
	served := servedCodes(t)
	templates := fuzzRequests()
	for _, code := range served {
		if _, ok := templates[code]; !ok {
			t.Errorf("the broker serves request code %d but FuzzBrokerRequest has no template for it: add one to fuzzRequests in %s",
				code, "broker/brokernode/fuzz_test.go")
		}
	}
	for _, want := range []int16{codec.ReqSendMessage, codec.ReqPullMessage, codec.ReqHeartBeat} {
		if !slices.Contains(served, want) {
			t.Errorf("the probe missed code %d, which the broker serves: served = %v", want, served)
		}
	}
	// Each served template, as is, is accepted (or parked, for the long-polling pull).
	for _, code := range served {
		tmpl, ok := templates[code]
		if !ok {
			continue
		}
		h := fuzzBroker(t, 0)
		c := h.env.accept(h.b, "127.0.9.9:50002")
		op := h.request(c, code, maps.Clone(tmpl.ext), tmpl.body)
		h.clientsAnswerReplyPushes()
		h.syncAll()
		h.nameServersAnswer()
		resp := h.answer(c, op)
		switch {
		case resp == nil && code == codec.ReqPullMessage && h.b.parked.count == 1:
		case resp == nil && noAnswerCodes[code]:
		case resp == nil:
			t.Errorf("template of code %d: no answer", code)
		case resp.Code != codec.Success:
			t.Errorf("template of code %d: answered %d %s; the fuzzer should start from a request the broker accepts", code, resp.Code, resp.Remark)
		}
	}
}
