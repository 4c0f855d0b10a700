package codec

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wireCase is a header as a client or node writes it on the wire and the typed value it
// decodes to: decoding wire must give want, and encoding want must give wire back exactly.
type wireCase struct {
	name string
	wire map[string]string
	// roundTrip decodes wire and encodes the result; it returns the decoded value and the
	// encoding.
	roundTrip func(wire map[string]string) (any, map[string]string, error)
	want      any
}

// typed builds the round trip of header type H.
func typed[H any, P interface {
	*H
	Header
}](name string, wire map[string]string, want H) wireCase {
	return wireCase{name: name, wire: wire, want: want, roundTrip: func(wire map[string]string) (any, map[string]string, error) {
		h, err := DecodeHeader[H, P](&Command{ExtFields: wire})
		return h, EncodeHeader(P(&h)), err
	}}
}

// sendV2 is the round trip of a V2 send header (code ReqSendMessageV2, EncodeSendHeaderV2).
func sendV2(name string, wire map[string]string, want SendHeader) wireCase {
	return wireCase{name: name, wire: wire, want: want, roundTrip: func(wire map[string]string) (any, map[string]string, error) {
		h, err := DecodeSendHeader(&Command{Code: ReqSendMessageV2, ExtFields: wire})
		return h, EncodeSendHeaderV2(h), err
	}}
}

var sendWant = SendHeader{ProducerGroup: "pg", Topic: "Orders", DefaultTopic: "TBW102", DefaultTopicQueueNums: 4, QueueID: 3,
	SysFlag: 4, BornTimestamp: 1767225600000, Flag: 5, Properties: "TAGS\x01a\x02", ReconsumeTimes: 2, UnitMode: false,
	MaxReconsumeTimes: 0, Batch: true, BrokerName: "broker-a"}

// TestHeadersRoundTrip: every header kind decodes what its writer writes into the typed value
// and encodes that value back to the same ext fields, strings only.
func TestHeadersRoundTrip(t *testing.T) {
	cases := []wireCase{
		typed("send, long names", map[string]string{"producerGroup": "pg", "topic": "Orders", "defaultTopic": "TBW102",
			"defaultTopicQueueNums": "4", "queueId": "3", "sysFlag": "4", "bornTimestamp": "1767225600000", "flag": "5",
			"properties": "TAGS\x01a\x02", "reconsumeTimes": "2", "unitMode": "false", "maxReconsumeTimes": "0", "batch": "true",
			"bname": "broker-a"}, sendWant),
		sendV2("send, V2 letters", map[string]string{"a": "pg", "b": "Orders", "c": "TBW102", "d": "4", "e": "3", "f": "4",
			"g": "1767225600000", "h": "5", "i": "TAGS\x01a\x02", "j": "2", "k": "false", "l": "0", "m": "true", "n": "broker-a"}, sendWant),
		typed("send answer", map[string]string{"msgId": "0A0000010000271100000000000000FF,0A00000100002711000000000000010F",
			"queueId": "1", "queueOffset": "42", "MSG_REGION": "DefaultRegion", "TRACE_ON": "true"},
			NewSendResponseHeader("0A0000010000271100000000000000FF,0A00000100002711000000000000010F", 1, 42)),
		typed("send answer naming no message", map[string]string{"MSG_REGION": "DefaultRegion", "TRACE_ON": "true"},
			SendResponseHeader{NoMessage: true, Region: "DefaultRegion", TraceOn: true}),
		typed("reply push", map[string]string{"producerGroup": "pg", "topic": "c_REPLY_TOPIC", "defaultTopic": "TBW102",
			"defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0", "bornTimestamp": "7", "flag": "0", "properties": "p",
			"reconsumeTimes": "0", "unitMode": "false", "bornHost": "10.0.0.1:5000", "storeHost": "10.0.0.2:10911", "storeTimestamp": "9"},
			ReplyPushHeader{SendHeader: SendHeader{ProducerGroup: "pg", Topic: "c_REPLY_TOPIC", DefaultTopic: "TBW102", DefaultTopicQueueNums: 4,
				Properties: "p", BornTimestamp: 7, MaxReconsumeTimes: DefaultMaxReconsumeTimes},
				BornHost: "10.0.0.1:5000", StoreHost: "10.0.0.2:10911", StoreTimestamp: 9}),
		typed("pull", map[string]string{"consumerGroup": "cg", "topic": "Orders", "queueId": "2", "queueOffset": "10",
			"maxMsgNums": "32", "sysFlag": "6", "commitOffset": "0", "suspendTimeoutMillis": "15000", "subscription": "*",
			"subVersion": "0", "expressionType": "TAG", "bname": "broker-a"},
			PullHeader{ConsumerGroup: "cg", Topic: "Orders", QueueID: 2, QueueOffset: 10, MaxMsgNums: 32, SysFlag: 6,
				SuspendTimeoutMillis: 15000, Subscription: "*", ExpressionType: "TAG", BrokerName: "broker-a"}),
		typed("pull with the group's subscription", map[string]string{"consumerGroup": "cg", "topic": "T", "queueId": "0",
			"queueOffset": "0", "maxMsgNums": "1", "sysFlag": "2", "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subVersion": "0", "expressionType": "TAG", "bname": "b"},
			PullHeader{ConsumerGroup: "cg", Topic: "T", MaxMsgNums: 1, SysFlag: 2, ExpressionType: "TAG", BrokerName: "b"}),
		typed("pull answer", map[string]string{"nextBeginOffset": "11", "minOffset": "0", "maxOffset": "12", "suggestWhichBrokerId": "1"},
			PullResponseHeader{NextBeginOffset: 11, MaxOffset: 12, SuggestWhichBrokerID: 1}),
		typed("query consumer offset", map[string]string{"consumerGroup": "cg", "topic": "T", "queueId": "1", "bname": "b"},
			QueryConsumerOffsetHeader{ConsumerGroup: "cg", Topic: "T", QueueID: 1, BrokerName: "b"}),
		typed("update consumer offset", map[string]string{"consumerGroup": "cg", "topic": "T", "queueId": "1", "commitOffset": "8", "bname": "b"},
			UpdateConsumerOffsetHeader{ConsumerGroup: "cg", Topic: "T", QueueID: 1, CommitOffset: 8, BrokerName: "b"}),
		typed("min or max offset", map[string]string{"topic": "T", "queueId": "3", "bname": ""}, QueueOffsetHeader{Topic: "T", QueueID: 3}),
		typed("search offset", map[string]string{"topic": "T", "queueId": "0", "timestamp": "1767225600000", "bname": "b"},
			SearchOffsetHeader{Topic: "T", TimestampMs: 1767225600000, BrokerName: "b"}),
		typed("offset answer", map[string]string{"offset": "-1"}, OffsetResponseHeader{Offset: -1}),
		typed("consumer group", map[string]string{"consumerGroup": "cg"}, ConsumerGroupHeader{ConsumerGroup: "cg"}),
		typed("unregister client", map[string]string{"clientID": "10.0.0.1@1", "consumerGroup": "cg"},
			UnregisterClientHeader{ClientID: "10.0.0.1@1", ConsumerGroup: "cg"}),
		typed("send back", map[string]string{"group": "cg", "offset": "5", "delayLevel": "0", "originMsgId": "U1",
			"originTopic": "T", "unitMode": "false", "maxReconsumeTimes": "3", "bname": "b"},
			SendBackHeader{Group: "cg", Offset: 5, OriginMsgID: "U1", OriginTopic: "T", MaxReconsumeTimes: 3, BrokerName: "b"}),
		typed("end transaction", map[string]string{"producerGroup": "pg", "tranStateTableOffset": "2", "commitLogOffset": "9",
			"commitOrRollback": "8", "fromTransactionCheck": "true", "msgId": "U1", "transactionId": "X1", "bname": "b"},
			EndTransactionHeader{ProducerGroup: "pg", TranStateTableOffset: 2, CommitLogOffset: 9, CommitOrRollback: SysFlagTxnCommit,
				FromTransactionCheck: true, MsgID: "U1", TransactionID: "X1", BrokerName: "b"}),
		typed("check transaction state", map[string]string{"tranStateTableOffset": "2", "commitLogOffset": "9", "msgId": "U1",
			"transactionId": "X1", "offsetMsgId": "0A"}, CheckTransactionStateHeader{TranStateTableOffset: 2, CommitLogOffset: 9,
			MsgID: "U1", TransactionID: "X1", OffsetMsgID: "0A"}),
		typed("topic", map[string]string{"topic": "T"}, TopicHeader{Topic: "T"}),
		typed("create topic", map[string]string{"topic": "T", "defaultTopic": "TBW102", "readQueueNums": "8", "writeQueueNums": "4",
			"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"},
			CreateTopicHeader{Topic: "T", DefaultTopic: "TBW102", ReadQueueNums: 8, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG"}),
		typed("view message", map[string]string{"offset": "77"}, ViewMessageHeader{Offset: 77}),
		typed("query message", map[string]string{"topic": "T", "key": "k", "maxNum": "64", "beginTimestamp": "1", "endTimestamp": "2"},
			QueryMessageHeader{Topic: "T", Key: "k", MaxNum: 64, BeginTimestampMs: 1, EndTimestampMs: 2}),
		typed("query message answer", map[string]string{"indexLastUpdateTimestamp": "5", "indexLastUpdatePhyoffset": "6"},
			QueryMessageResponseHeader{IndexLastUpdateTimestampMs: 5, IndexLastUpdatePhyoffset: 6}),
		typed("register broker", map[string]string{"brokerName": "broker-a", "brokerAddr": "10.0.0.1:10911", "clusterName": "c",
			"brokerId": "0", "haServerAddr": "10.0.0.1:10911", "compressed": "false", "bodyCrc32": "123"},
			RegisterBrokerHeader{BrokerName: "broker-a", BrokerAddr: "10.0.0.1:10911", ClusterName: "c", HAServerAddr: "10.0.0.1:10911", BodyCRC32: 123}),
		typed("register broker answer", map[string]string{"masterAddr": "", "haServerAddr": ""}, RegisterBrokerResponseHeader{}),
		typed("unregister broker", map[string]string{"brokerName": "broker-a", "brokerAddr": "a:1", "clusterName": "c", "brokerId": "1"},
			UnregisterBrokerHeader{BrokerName: "broker-a", BrokerAddr: "a:1", ClusterName: "c", BrokerID: 1}),
		typed("replica handshake", map[string]string{"brokerId": "2", "masterEpoch": "3"}, ReplicaHeader{BrokerID: 2, MasterEpoch: 3}),
		typed("replica fetch", map[string]string{"brokerId": "2", "masterEpoch": "3", "from": "10", "synced": "9"},
			ReplicaFetchHeader{BrokerID: 2, MasterEpoch: 3, From: 10, Synced: 9}),
		typed("handshake answer", map[string]string{"lastIndex": "10", "epoch": "3"}, HandshakeResponseHeader{LastIndex: 10, Epoch: 3}),
		typed("fetch answer", map[string]string{"epoch": "3", "epochStart": "5", "confirmed": "9"}, FetchResponseHeader{Epoch: 3, EpochStart: 5, Confirmed: 9}),
		typed("replica info", map[string]string{"clusterName": "c", "brokerName": "g", "local": "true"},
			BrokerGroupHeader{ClusterName: "c", BrokerName: "g", Local: true}),
		typed("broker heartbeat", map[string]string{"clusterName": "c", "brokerName": "g", "brokerId": "1", "brokerAddr": "a:1",
			"masterEpoch": "2", "maxOffset": "30"}, BrokerHeartbeatHeader{ClusterName: "c", BrokerName: "g", BrokerID: 1, BrokerAddr: "a:1", MasterEpoch: 2, MaxOffset: 30}),
		typed("alter in-sync set", map[string]string{"clusterName": "c", "brokerName": "g", "masterBrokerId": "1", "masterEpoch": "2"},
			AlterInSyncSetHeader{ClusterName: "c", BrokerName: "g", MasterBrokerID: 1, MasterEpoch: 2}),
		typed("group answer", map[string]string{"masterBrokerId": "1", "masterAddress": "a:1", "masterEpoch": "2", "syncStateSet": "1,3",
			"syncStateSetEpoch": "4"}, GroupResponseHeader{MasterBrokerID: 1, MasterAddress: "a:1", MasterEpoch: 2, SyncStateSet: []int64{1, 3}, SyncStateSetEpoch: 4}),
		typed("group answer without a master", map[string]string{"masterBrokerId": "0", "masterAddress": "", "masterEpoch": "0",
			"syncStateSet": "", "syncStateSetEpoch": "0"}, GroupResponseHeader{}),
		typed("not the leader", map[string]string{"leaderId": "2", "leaderAddr": "c:9878"}, NotLeaderResponseHeader{LeaderID: 2, LeaderAddr: "c:9878"}),
	}
	for _, tc := range cases {
		got, enc, err := tc.roundTrip(tc.wire)
		if err != nil {
			t.Errorf("%s: decode: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: decoded (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.wire, enc); diff != "" {
			t.Errorf("%s: re-encoded (-wire +encoded):\n%s", tc.name, diff)
		}
	}
}

// decodeCase is a header with odd, missing or malformed fields: what it decodes to, or the
// field the error names.
type decodeCase struct {
	name   string
	decode func() (any, error)
	want   any
	// bad is the field the error must name ("" for none), missing whether it is absent.
	bad     string
	missing bool
}

func decodeOf[H any, P interface {
	*H
	Header
}](name string, ext map[string]string, want H, bad string, missing bool) decodeCase {
	return decodeCase{name: name, want: want, bad: bad, missing: missing, decode: func() (any, error) {
		return DecodeHeader[H, P](&Command{ExtFields: ext})
	}}
}

func sendOf(name string, code int16, ext map[string]string, want SendHeader, bad string, missing bool) decodeCase {
	return decodeCase{name: name, want: want, bad: bad, missing: missing, decode: func() (any, error) {
		return DecodeSendHeader(&Command{Code: code, ExtFields: ext})
	}}
}

// TestHeadersDecodeLeniently: a field's default when it is missing or malformed where Sluice
// reads it leniently, and an error naming the field where it must be there and be well formed.
// The other fields are decoded even so.
func TestHeadersDecodeLeniently(t *testing.T) {
	cases := []decodeCase{
		sendOf("send: numbers default when missing or malformed", ReqSendMessage,
			map[string]string{"topic": "T", "queueId": "-1", "sysFlag": "x", "bornTimestamp": "", "unitMode": "TRUE"},
			SendHeader{Topic: "T", QueueID: -1, UnitMode: true, MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "", false),
		sendOf("send: sysFlag keeps its low 32 bits", ReqSendMessage, map[string]string{"topic": "T", "queueId": "0", "sysFlag": "4294967300"},
			SendHeader{Topic: "T", SysFlag: 4, MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "", false),
		sendOf("send: queueId is required", ReqSendMessage, map[string]string{"topic": "T", "flag": "3"},
			SendHeader{Topic: "T", Flag: 3, MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "queueId", true),
		sendOf("send: queueId must be an integer", ReqSendMessage, map[string]string{"topic": "T", "queueId": "1.0"},
			SendHeader{Topic: "T", MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "queueId", false),
		sendOf("send V2: long names are not read", ReqSendMessageV2, map[string]string{"b": "T", "e": "1", "topic": "Other", "queueId": "2", "l": "3"},
			SendHeader{Topic: "T", QueueID: 1, MaxReconsumeTimes: 3}, "", false),
		sendOf("send V2: a letter's error names its long name too", ReqSendBatchMessage, map[string]string{"b": "T", "queueId": "2"},
			SendHeader{Topic: "T", MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "e", true),
		sendOf("reply V2 reads letters", ReqSendReplyMessageV2, map[string]string{"b": "T", "e": "0", "n": "b"},
			SendHeader{Topic: "T", MaxReconsumeTimes: DefaultMaxReconsumeTimes, BrokerName: "b"}, "", false),
		decodeOf("send answer: queueOffset is required with a msgId", map[string]string{"msgId": "X"},
			SendResponseHeader{MsgID: "X"}, "queueOffset", true),
		decodeOf("pull: defaults", map[string]string{"queueId": "1", "queueOffset": "2", "maxMsgNums": "lots"},
			PullHeader{QueueID: 1, QueueOffset: 2, MaxMsgNums: 32, CommitOffset: -1}, "", false),
		decodeOf("pull: the offsets decoded despite a bad queueId", map[string]string{"queueId": "q", "queueOffset": "7", "topic": "T"},
			PullHeader{Topic: "T", QueueOffset: 7, MaxMsgNums: 32, CommitOffset: -1}, "queueId", false),
		decodeOf("pull answer: read leniently", map[string]string{"nextBeginOffset": "x"}, PullResponseHeader{SuggestWhichBrokerID: -1}, "", false),
		decodeOf("update offset: the topic must not be empty", map[string]string{"consumerGroup": "cg", "topic": "", "queueId": "0", "commitOffset": "1"},
			UpdateConsumerOffsetHeader{ConsumerGroup: "cg", CommitOffset: 1}, "topic", true),
		decodeOf("search offset: timestamp is required", map[string]string{"topic": "T", "queueId": "0"},
			SearchOffsetHeader{Topic: "T"}, "timestamp", true),
		decodeOf("send back: group is required", map[string]string{"offset": "1"},
			SendBackHeader{Offset: 1, MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "group", true),
		decodeOf("send back: an empty delayLevel is the default", map[string]string{"group": "g", "offset": "1", "delayLevel": ""},
			SendBackHeader{Group: "g", Offset: 1, MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "", false),
		decodeOf("send back: a malformed delayLevel is an error", map[string]string{"group": "g", "offset": "1", "delayLevel": "soon"},
			SendBackHeader{Group: "g", Offset: 1, MaxReconsumeTimes: DefaultMaxReconsumeTimes}, "delayLevel", false),
		decodeOf("end transaction: commitOrRollback is required", map[string]string{"tranStateTableOffset": "0", "commitLogOffset": "1"},
			EndTransactionHeader{CommitLogOffset: 1}, "commitOrRollback", true),
		decodeOf("create topic: perm defaults to read and write", map[string]string{"topic": "T", "readQueueNums": "1", "writeQueueNums": "1", "perm": "rw"},
			CreateTopicHeader{Topic: "T", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}, "", false),
		decodeOf("query message: defaults", map[string]string{"topic": "T", "key": "k", "maxNum": "-"},
			QueryMessageHeader{Topic: "T", Key: "k", MaxNum: math.MaxInt64, EndTimestampMs: math.MaxInt64}, "", false),
		decodeOf("register broker: brokerId is required", map[string]string{"brokerAddr": "a:1", "bodyCrc32": "x", "compressed": "True"},
			RegisterBrokerHeader{BrokerAddr: "a:1", Compressed: true}, "brokerId", true),
		decodeOf("metadata request of an admin: no masterEpoch", map[string]string{}, ReplicaHeader{MasterEpoch: NoMasterEpoch}, "", false),
		decodeOf("metadata request: a malformed masterEpoch", map[string]string{"masterEpoch": "e"}, ReplicaHeader{MasterEpoch: NoMasterEpoch}, "masterEpoch", false),
		decodeOf("fetch: synced is required", map[string]string{"brokerId": "2", "masterEpoch": "1", "from": "1"},
			ReplicaFetchHeader{BrokerID: 2, MasterEpoch: 1, From: 1}, "synced", true),
		decodeOf("heartbeat: masterEpoch and maxOffset may be empty", map[string]string{"clusterName": "c", "brokerName": "g", "brokerId": "1",
			"brokerAddr": "a:1", "masterEpoch": ""}, BrokerHeartbeatHeader{ClusterName: "c", BrokerName: "g", BrokerID: 1, BrokerAddr: "a:1"}, "", false),
		decodeOf("heartbeat: brokerAddr is required", map[string]string{"clusterName": "c", "brokerName": "g", "brokerId": "1"},
			BrokerHeartbeatHeader{ClusterName: "c", BrokerName: "g", BrokerID: 1}, "brokerAddr", true),
		decodeOf("group answer: a bad id in the set", map[string]string{"masterBrokerId": "1", "masterEpoch": "1", "syncStateSetEpoch": "1", "syncStateSet": "1,0"},
			GroupResponseHeader{MasterBrokerID: 1, MasterEpoch: 1, SyncStateSetEpoch: 1}, "syncStateSet", false),
		decodeOf("replica info: local only when exactly true", map[string]string{"local": "TRUE"}, BrokerGroupHeader{}, "", false),
	}
	for _, tc := range cases {
		got, err := tc.decode()
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: decoded (-want +got):\n%s", tc.name, diff)
		}
		var he *HeaderError
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.bad == "":
		case !errors.As(err, &he):
			t.Errorf("%s: error %v, want a *HeaderError for %q", tc.name, err, tc.bad)
		case he.Field != tc.bad || he.Missing != tc.missing:
			t.Errorf("%s: error names %q (missing %v), want %q (missing %v)", tc.name, he.Field, he.Missing, tc.bad, tc.missing)
		}
	}
}

// TestHeaderErrorText: the error says which field and what is wrong with it, with a V2
// letter's long name.
func TestHeaderErrorText(t *testing.T) {
	_, err := DecodeSendHeader(&Command{Code: ReqSendMessageV2, ExtFields: map[string]string{"b": "T", "e": "one"}})
	if want := `header field "e" (queueId): "one" is not an integer`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	_, err = DecodeHeader[PullHeader](&Command{ExtFields: map[string]string{"queueId": "1"}})
	if want := `missing header field "queueOffset"`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// TestHeaderFromJSONNumbers: a header written with JSON numbers and booleans (as ali-ons
// writes queueId, sysFlag, bornTimestamp and unitMode) decodes as if they were strings.
func TestHeaderFromJSONNumbers(t *testing.T) {
	hdr := `{"code":310,"language":"NODE","version":0,"opaque":1,"flag":0,"extFields":` +
		`{"a":"pg","b":"T","c":"TBW102","d":4,"e":2,"f":0,"g":1767225600000,"h":0,"i":"","j":0,"k":false,"m":false}}`
	frame := append([]byte{0, 0, 0, byte(len(hdr))}, hdr...)
	c, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeSendHeader(c)
	want := SendHeader{ProducerGroup: "pg", Topic: "T", DefaultTopic: "TBW102", DefaultTopicQueueNums: 4, QueueID: 2,
		BornTimestamp: 1767225600000, MaxReconsumeTimes: DefaultMaxReconsumeTimes}
	if diff := cmp.Diff(want, h); err != nil || diff != "" {
		t.Errorf("err %v, decoded (-want +got):\n%s", err, diff)
	}
}
