package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// equateCommands treats nil and empty maps and bodies as equal: the JSON header omits an empty
// extFields and Decode leaves an empty body nil.
var equateCommands = cmpopts.EquateEmpty()

// jsonFrame builds frame content (without the length word) around a literal JSON header.
func jsonFrame(header string, body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(SerializeJSON)<<24|uint32(len(header)))
	b = append(b, header...)
	return append(b, body...)
}

// rawFrame builds frame content with an arbitrary header-length word.
func rawFrame(word uint32, rest string) []byte {
	b := binary.BigEndian.AppendUint32(nil, word)
	return append(b, rest...)
}

// content strips and checks the length word of a whole frame.
func content(t *testing.T, frame []byte) []byte {
	t.Helper()
	if len(frame) < 4 {
		t.Fatalf("frame of %d bytes has no length word", len(frame))
	}
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("length word %d, frame carries %d bytes after it", n, len(frame)-4)
	}
	return frame[4:]
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  *Command
	}{
		{"request with ext and body", NewRequest(ReqSendMessage, map[string]string{
			"producerGroup": "pg", "topic": "TopicTest", "queueId": "1",
			"properties": "TAGS\x01TagA\x02KEYS\x01k1 k2\x02",
		}, []byte("hello"))},
		{"response with remark", &Command{Code: SystemError, Language: "GO", Version: 317, Opaque: 42,
			Flag: FlagResponse, Remark: "store is <full> & \"busy\""}},
		{"oneway, no ext, no body", &Command{Code: ReqUpdateConsumerOffset, Language: "JAVA", Version: 401,
			Opaque: -7, Flag: FlagOneway}},
		{"empty ext map", &Command{Code: ReqHeartBeat, Language: "GO", ExtFields: map[string]string{}}},
		{"binary body", &Command{Code: ReqPullMessage, Body: []byte{0, 1, 2, 0xff, 0xfe}}},
		{"unicode ext", &Command{Code: 17, ExtFields: map[string]string{"k\u00e9y": "v\u2603", "": ""}}},
		{"extreme numbers", &Command{Code: -32768, Version: 32767, Opaque: -2147483648, Flag: 2147483647}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame, err := Encode(tc.cmd)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if word := binary.BigEndian.Uint32(frame[4:]); word>>24 != SerializeJSON {
				t.Fatalf("AppendFrame wrote serialize type %d, want JSON", word>>24)
			}
			got, err := Decode(content(t, frame))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.cmd, got, equateCommands); diff != "" {
				t.Errorf("JSON round trip (-want +got):\n%s", diff)
			}

			bin := AppendBinaryFrame(nil, tc.cmd)
			if word := binary.BigEndian.Uint32(bin[4:]); word>>24 != SerializeRocketMQ {
				t.Fatalf("AppendBinaryFrame wrote serialize type %d, want ROCKETMQ", word>>24)
			}
			got, err = Decode(content(t, bin))
			if err != nil {
				t.Fatalf("Decode binary: %v", err)
			}
			want := *tc.cmd
			if !knownLanguage(want.Language) {
				want.Language = "OTHER" // the binary header carries a language code, not a name
			}
			if diff := cmp.Diff(&want, got, equateCommands); diff != "" {
				t.Errorf("binary round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func knownLanguage(name string) bool {
	for _, n := range languageNames {
		if n == name {
			return true
		}
	}
	return false
}

func TestAppendFrameAppends(t *testing.T) {
	prefix := []byte("previous frame")
	out, err := AppendFrame(append([]byte(nil), prefix...), NewRequest(ReqGetRouteInfoByTopic, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("AppendFrame clobbered dst: %q", out)
	}
	if _, err := Decode(content(t, out[len(prefix):])); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeClientHeaders(t *testing.T) {
	tests := []struct {
		name   string
		header string
		body   string
		want   *Command
	}{
		{
			name:   "Go client route request",
			header: `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"TopicTest"}}`,
			want: &Command{Code: 105, Language: "GO", Version: 317, Opaque: 1,
				ExtFields: map[string]string{"topic": "TopicTest"}},
		},
		{
			name: "Java fastjson response with serializeTypeCurrentRPC",
			header: `{"code":0,"extFields":{"msgId":"7F000001000051AF0000000000000000","queueId":"1","queueOffset":"0"},` +
				`"flag":1,"language":"JAVA","opaque":3,"serializeTypeCurrentRPC":"JSON","version":401}`,
			body: "ok",
			want: &Command{Code: 0, Language: "JAVA", Version: 401, Opaque: 3, Flag: FlagResponse,
				ExtFields: map[string]string{"msgId": "7F000001000051AF0000000000000000", "queueId": "1", "queueOffset": "0"},
				Body:      []byte("ok")},
		},
		{
			name:   "null remark and extFields",
			header: `{"code":34,"language":"GO","version":317,"opaque":9,"flag":0,"remark":null,"extFields":null}`,
			want:   &Command{Code: 34, Language: "GO", Version: 317, Opaque: 9},
		},
		{
			name:   "unknown keys and whitespace",
			header: " {\n \"code\" : 11 , \"future\" : [1, {\"x\": true}], \"opaque\": 5 }\n",
			want:   &Command{Code: 11, Opaque: 5},
		},
		{
			name:   "empty body is nil",
			header: `{"code":0,"flag":1}`,
			want:   &Command{Code: 0, Flag: FlagResponse},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(jsonFrame(tc.header, tc.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// binaryHeader assembles a ROCKETMQ header field by field so tests can cut it anywhere.
func binaryHeader(lang byte, remark string, ext []byte) []byte {
	var h []byte
	h = binary.BigEndian.AppendUint16(h, 10)
	h = append(h, lang)
	h = binary.BigEndian.AppendUint16(h, 317)
	h = binary.BigEndian.AppendUint32(h, 77)
	h = binary.BigEndian.AppendUint32(h, 0)
	h = binary.BigEndian.AppendUint32(h, uint32(len(remark)))
	h = append(h, remark...)
	h = binary.BigEndian.AppendUint32(h, uint32(len(ext)))
	return append(h, ext...)
}

func extEntry(k, v string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(k)))
	b = append(b, k...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func binFrame(h []byte, body string) []byte {
	return rawFrame(uint32(SerializeRocketMQ)<<24|uint32(len(h)), string(h)+body)
}

func TestDecodeBinaryHeader(t *testing.T) {
	ext := append(extEntry("topic", "TopicTest"), extEntry("queueId", "3")...)
	got, err := Decode(binFrame(binaryHeader(9, "hi", ext), "body"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 10, Language: "GO", Version: 317, Opaque: 77, Remark: "hi",
		ExtFields: map[string]string{"topic": "TopicTest", "queueId": "3"}, Body: []byte("body")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	got, err = Decode(binFrame(binaryHeader(200, "", nil), ""))
	if err != nil {
		t.Fatal(err)
	}
	if got.Language != "OTHER" {
		t.Errorf("language code 200 decoded as %q, want OTHER", got.Language)
	}
}

func TestDecodeErrors(t *testing.T) {
	full := binaryHeader(9, "remark", extEntry("key", "value"))
	tests := []struct {
		name  string
		frame []byte
	}{
		{"empty", nil},
		{"short frame", []byte{0, 0, 0}},
		{"header length beyond frame", rawFrame(12, `{"code":1}`)},
		{"header length beyond frame (24 bits)", rawFrame(0x00FFFFFF, `{}`)},
		{"unknown serialize type", rawFrame(2<<24|2, `{}`)},
		{"serialize type 0xFF", rawFrame(0xFF<<24|2, `{}`)},
		{"not JSON", jsonFrame(`{"code":`, "")},
		{"JSON array", jsonFrame(`[1,2]`, "")},
		{"JSON null", jsonFrame(`null`, "")},
		{"extFields is an array", jsonFrame(`{"code":10,"extFields":["a"]}`, "")},
		{"code out of int32 range", jsonFrame(`{"code":2147483648}`, "")},
		{"code with a fraction", jsonFrame(`{"code":10.5}`, "")},
		{"binary fixed part truncated", binFrame(full[:12], "")},
		{"binary remark length truncated", binFrame(full[:15], "")},
		{"binary remark truncated", binFrame(full[:19], "")},
		{"binary ext length missing", binFrame(full[:23], "")},
		{"binary ext length beyond header", binFrame(full[:len(full)-1], "")},
		{"binary ext key length truncated", binFrame(binaryHeader(9, "", []byte{0}), "")},
		{"binary ext key beyond ext", binFrame(binaryHeader(9, "", []byte{0, 9, 'k'}), "")},
		{"binary ext value length truncated", binFrame(binaryHeader(9, "", []byte{0, 1, 'k', 0, 0}), "")},
		{"binary ext value beyond ext", binFrame(binaryHeader(9, "", []byte{0, 1, 'k', 0, 0, 0, 5, 'v'}), "")},
		{"binary trailing bytes in header", binFrame(append(append([]byte(nil), full...), 0), "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(tc.frame)
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", c)
			}
			if !errors.Is(err, ErrBadFrame) {
				t.Errorf("error %v does not wrap ErrBadFrame", err)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	good, err := Encode(NewRequest(ReqHeartBeat, map[string]string{"a": "b"}, []byte("xyz")))
	if err != nil {
		t.Fatal(err)
	}
	lengthWord := func(n uint32) string { return string(binary.BigEndian.AppendUint32(nil, n)) }
	tests := []struct {
		name    string
		stream  string
		max     int
		want    []byte // content on success
		wantErr error  // errors.Is target; nil means success
	}{
		{"whole frame", string(good), DefaultMaxFrameBytes, good[4:], nil},
		{"exactly at the limit", string(good), len(good) - 4, good[4:], nil},
		{"minimal frame", lengthWord(4) + "\x00\x00\x00\x00", 16, []byte{0, 0, 0, 0}, nil},
		{"over the limit", string(good), len(good) - 5, nil, ErrFrameTooLarge},
		{"huge length", lengthWord(0xFFFFFFFF), DefaultMaxFrameBytes, nil, ErrFrameTooLarge},
		{"length 0", lengthWord(0), DefaultMaxFrameBytes, nil, ErrBadFrame},
		{"length 3", lengthWord(3) + "abc", DefaultMaxFrameBytes, nil, ErrBadFrame},
		{"clean EOF", "", DefaultMaxFrameBytes, nil, io.EOF},
		{"EOF inside length word", "\x00\x00", DefaultMaxFrameBytes, nil, io.ErrUnexpectedEOF},
		{"EOF inside frame", string(good[:len(good)-1]), DefaultMaxFrameBytes, nil, io.ErrUnexpectedEOF},
		// A connection closed right after a length word is a truncated frame, not a clean close.
		{"EOF after length word", lengthWord(10), DefaultMaxFrameBytes, nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFrame(strings.NewReader(tc.stream), tc.max)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadFrame error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("ReadFrame = %q, want %q", got, tc.want)
			}
		})
	}
}

// A frame larger than the first allocation step arrives whole; a length word announcing the
// maximum, followed by a few bytes and the end of the stream, costs an allocation of the order
// of what arrived, not of what was announced.
func TestReadFrameGrowsWithWhatArrives(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 300_001) // several growth steps, not a power of two
	frame, err := Encode(NewRequest(ReqSendMessage, map[string]string{"topic": "T"}, body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(bytes.NewReader(frame), DefaultMaxFrameBytes)
	if err != nil || !bytes.Equal(got, frame[4:]) {
		t.Fatalf("ReadFrame of a %d-byte frame: %v (content equal: %v)", len(frame), err, bytes.Equal(got, frame[4:]))
	}

	stream := append(binary.BigEndian.AppendUint32(nil, DefaultMaxFrameBytes), "only ten b"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ReadFrame(bytes.NewReader(stream), DefaultMaxFrameBytes)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated maximal frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*frameAllocStepBytes {
		t.Errorf("a length word of %d and 10 bytes allocated %d bytes", DefaultMaxFrameBytes, alloc)
	}
}

// TestReadFrameStream reads back-to-back frames of both header types until a clean EOF.
func TestReadFrameStream(t *testing.T) {
	cmds := []*Command{
		NewRequest(ReqSendMessage, map[string]string{"topic": "T"}, []byte("one")),
		{Code: Success, Language: "JAVA", Flag: FlagResponse, Opaque: 2},
		NewRequest(ReqPullMessage, nil, nil),
	}
	var stream []byte
	for i, c := range cmds {
		if i == 1 {
			stream = AppendBinaryFrame(stream, c)
			continue
		}
		var err error
		if stream, err = AppendFrame(stream, c); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(stream)
	for i, want := range cmds {
		frame, err := ReadFrame(r, DefaultMaxFrameBytes)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		got, err := Decode(frame)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if diff := cmp.Diff(want, got, equateCommands); diff != "" {
			t.Errorf("frame %d (-want +got):\n%s", i, diff)
		}
	}
	if _, err := ReadFrame(r, DefaultMaxFrameBytes); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestCommandHelpers(t *testing.T) {
	req := NewRequest(ReqPullMessage, nil, nil)
	req.Opaque = 12
	if req.IsResponse() {
		t.Error("a request reports IsResponse")
	}
	if req.Ext("missing") != "" {
		t.Error("missing ext field is not empty")
	}
	req.setExt("queueId", "3")
	if req.Ext("queueId") != "3" {
		t.Errorf("setExt/Ext: %q", req.Ext("queueId"))
	}
	resp := NewResponse(req, PullNotFound, "no new message")
	want := &Command{Code: PullNotFound, Language: "GO", Version: 317, Opaque: 12, Flag: FlagResponse, Remark: "no new message"}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("NewResponse (-want +got):\n%s", diff)
	}
	if !resp.IsResponse() {
		t.Error("a response does not report IsResponse")
	}
}
