package codec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodedCopy is what a peer decodes from c's frame.
func decodedCopy(t testing.TB, c *Command) *Command {
	t.Helper()
	frame, err := Encode(c)
	if err != nil {
		t.Fatalf("encode %+v: %v", c, err)
	}
	got, err := Decode(frame[4:])
	if err != nil {
		t.Fatalf("decode %q: %v", frame, err)
	}
	return got
}

// checkTransfer checks that Transfer(c) is what decoding c's frame yields, or declines, and
// that the copy has a body of its own.
func checkTransfer(t testing.TB, c *Command) {
	t.Helper()
	got, ok := Transfer(c)
	if !ok {
		return
	}
	if diff := cmp.Diff(decodedCopy(t, c), got); diff != "" {
		t.Fatalf("Transfer(%+v) differs from the decoded frame (-decoded +transfer):\n%s", c, diff)
	}
	if len(got.Body) > 0 && &got.Body[0] == &c.Body[0] {
		t.Fatalf("Transfer shares its body with the command")
	}
}

func TestTransferIsWhatAPeerDecodes(t *testing.T) {
	for _, c := range []*Command{
		{},
		NewRequest(ReqGetRouteInfoByTopic, map[string]string{"topic": "TopicTest"}, nil),
		NewRequest(ReqSendMessage, map[string]string{"topic": "T", "queueId": "1", "": "empty key"}, []byte("hello")),
		{Code: SystemBusy, Flag: FlagResponse, Remark: "busy <&> \"quoted\"\n", Opaque: -3, Version: 1 << 20},
		{Code: CodeOutOfRange, WideCode: 70000, ExtFields: map[string]string{}, Body: []byte{}},
		{Code: 5, WideCode: 12, Language: "JAVA"},
		{Language: "\u2028é", ExtFields: map[string]string{"k\u2029": "v\t\x01"}},
	} {
		checkTransfer(t, c)
	}
	if _, ok := Transfer(&Command{Remark: "bad \xff"}); ok {
		t.Fatal("Transfer vouches for a remark that is not UTF-8, which encoding replaces")
	}
	if _, ok := Transfer(&Command{ExtFields: map[string]string{"k": "\xc3"}}); ok {
		t.Fatal("Transfer vouches for an ext value that is not UTF-8, which encoding replaces")
	}
}

func FuzzTransfer(f *testing.F) {
	f.Add(int32(10), "GO", int32(317), int32(1), int32(0), "", "topic", "T", []byte("body"))
	f.Add(int32(-70000), "", int32(-1), int32(-5), int32(3), "r\xff", "", "\x00", []byte(nil))
	f.Fuzz(func(t *testing.T, code int32, lang string, version, opaque, flag int32, remark, k, v string, body []byte) {
		c := &Command{Language: lang, Version: version, Opaque: opaque, Flag: flag, Remark: remark, Body: body}
		c.Code, c.WideCode = splitCode(int64(code))
		if k != "" || v != "" {
			c.ExtFields = map[string]string{k: v, "queueId": "1"}
		}
		checkTransfer(t, c)
	})
}
