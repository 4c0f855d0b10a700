package codec

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzHeaderKind decodes ext fields as one header kind and decodes again what the decoded
// value encodes to.
type fuzzHeaderKind struct {
	name string
	// decode returns the decoded header, what it encodes to, and the decoding error.
	decode func(ext map[string]string) (h any, enc map[string]string, err error)
	// again decodes enc as the same kind.
	again func(enc map[string]string) (any, error)
}

func fuzzKind[H any, P interface {
	*H
	Header
}](name string) fuzzHeaderKind {
	return fuzzHeaderKind{name: name,
		decode: func(ext map[string]string) (any, map[string]string, error) {
			h, err := DecodeHeader[H, P](&Command{ExtFields: ext})
			return h, EncodeHeader(P(&h)), err
		},
		again: func(enc map[string]string) (any, error) { return DecodeHeader[H, P](&Command{ExtFields: enc}) },
	}
}

func fuzzSendKind(name string, code int16) fuzzHeaderKind {
	enc := func(h SendHeader) map[string]string { return EncodeHeader(&h) }
	if IsSendV2(code) {
		enc = EncodeSendHeaderV2
	}
	return fuzzHeaderKind{name: name,
		decode: func(ext map[string]string) (any, map[string]string, error) {
			h, err := DecodeSendHeader(&Command{Code: code, ExtFields: ext})
			return h, enc(h), err
		},
		again: func(e map[string]string) (any, error) { return DecodeSendHeader(&Command{Code: code, ExtFields: e}) },
	}
}

// fuzzHeaderKinds is every header decoder.
var fuzzHeaderKinds = []fuzzHeaderKind{
	fuzzSendKind("send", ReqSendMessage), fuzzSendKind("send V2", ReqSendMessageV2), fuzzSendKind("send batch", ReqSendBatchMessage),
	fuzzKind[SendResponseHeader]("send answer"), fuzzKind[ReplyPushHeader]("reply push"),
	fuzzKind[PullHeader]("pull"), fuzzKind[PullResponseHeader]("pull answer"),
	fuzzKind[QueryConsumerOffsetHeader]("query offset"), fuzzKind[UpdateConsumerOffsetHeader]("update offset"),
	fuzzKind[QueueOffsetHeader]("min/max offset"), fuzzKind[SearchOffsetHeader]("search offset"),
	fuzzKind[OffsetResponseHeader]("offset answer"), fuzzKind[ConsumerGroupHeader]("consumer group"),
	fuzzKind[UnregisterClientHeader]("unregister client"), fuzzKind[SendBackHeader]("send back"),
	fuzzKind[EndTransactionHeader]("end transaction"), fuzzKind[CheckTransactionStateHeader]("check transaction"),
	fuzzKind[TopicHeader]("topic"), fuzzKind[CreateTopicHeader]("create topic"), fuzzKind[ViewMessageHeader]("view message"),
	fuzzKind[QueryMessageHeader]("query message"), fuzzKind[QueryMessageResponseHeader]("query message answer"),
	fuzzKind[RegisterBrokerHeader]("register broker"), fuzzKind[RegisterBrokerResponseHeader]("register broker answer"),
	fuzzKind[UnregisterBrokerHeader]("unregister broker"), fuzzKind[ReplicaHeader]("replica"),
	fuzzKind[ReplicaFetchHeader]("replica fetch"), fuzzKind[HandshakeResponseHeader]("handshake answer"),
	fuzzKind[FetchResponseHeader]("fetch answer"), fuzzKind[BrokerGroupHeader]("broker group"),
	fuzzKind[BrokerHeartbeatHeader]("broker heartbeat"), fuzzKind[AlterInSyncSetHeader]("alter in-sync set"),
	fuzzKind[GroupResponseHeader]("group answer"), fuzzKind[NotLeaderResponseHeader]("not leader"),
}

// FuzzDecodeHeaders: no header decoder panics on any ext fields. A decoding error is a
// *HeaderError naming a field that is missing (absent, or empty where it must not be) or holds
// the value received. What decodes without error encodes to ext fields that decode, without
// error, to the same value: the encoding is the decoder's normal form.
func FuzzDecodeHeaders(f *testing.F) {
	f.Add(uint8(0), "topic=T\nqueueId=1")
	f.Add(uint8(1), "b=T\ne=1\nl=x\ntopic=U")
	f.Add(uint8(5), "queueId=-1\nqueueOffset=99999999999999999999\nmaxMsgNums=")
	f.Add(uint8(32), "masterBrokerId=1\nmasterEpoch=2\nsyncStateSetEpoch=3\nsyncStateSet=1,,2")
	f.Add(uint8(3), "msgId=\nqueueOffset=0\nqueueId=4294967297")
	f.Fuzz(func(t *testing.T, kind uint8, edits string) {
		k := fuzzHeaderKinds[int(kind)%len(fuzzHeaderKinds)]
		ext := map[string]string{}
		for _, line := range strings.Split(edits, "\n") {
			if key, v, ok := strings.Cut(line, "="); ok {
				ext[key] = v
			}
		}
		h, enc, err := k.decode(ext)
		if err != nil {
			var he *HeaderError
			if !errors.As(err, &he) {
				t.Fatalf("%s: error %v is not a *HeaderError", k.name, err)
			}
			v, present := ext[he.Field]
			if he.Missing && v != "" || !he.Missing && (!present || v != he.Value) {
				t.Fatalf("%s: error %v does not describe field %q (present %v, value %q)", k.name, err, he.Field, present, v)
			}
			return
		}
		again, err := k.again(enc)
		if err != nil {
			t.Fatalf("%s: %v encodes to %v, which does not decode: %v", k.name, h, enc, err)
		}
		if diff := cmp.Diff(h, again); diff != "" {
			t.Fatalf("%s: decode(encode(h)) differs from h (-h +again):\n%s", k.name, diff)
		}
	})
}
