package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// Seeds shared by the fuzz targets; testdata/fuzz/<FuzzName>/ holds more in the corpus format.

func frameSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	add := func(frame []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, frame[4:])
	}
	add(Encode(NewRequest(ReqGetRouteInfoByTopic, map[string]string{"topic": "TopicTest"}, nil)))
	add(Encode(NewRequest(ReqSendMessage, map[string]string{"topic": "T", "queueId": "1"}, []byte("hello"))))
	add(Encode(&Command{Code: SystemBusy, Flag: FlagResponse, Remark: "busy", Opaque: 3}))
	bin := AppendBinaryFrame(nil, &Command{Code: 0, Language: "JAVA", Version: 401, Opaque: 2, Flag: 1,
		Remark: "r", ExtFields: map[string]string{"msgId": "7F000001000051AF0000000000000000", "queueId": "0"}, Body: []byte{1, 2}})
	seeds = append(seeds, bin[4:])
	seeds = append(seeds,
		jsonFrame(`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"TopicTest"}}`, ""),
		jsonFrame(`{"code":0,"flag":1,"language":"JAVA","opaque":3,"serializeTypeCurrentRPC":"JSON","version":401}`, "body"),
		jsonFrame(`{"extFields":{"queueId":1}}`, ""),
		jsonFrame(aliOnsSend, "body"),
		jsonFrame(`{"code":40000,"version":70000,"extFields":{"a":1.5e3,"b":null,"c":[true]}}`, ""),
		jsonFrame(`null`, ""),
		rawFrame(2<<24, ""),
		[]byte{0, 0, 0},
	)
	return seeds
}

// FuzzDecodeFrame: Decode never panics, and a decoded command survives a re-encode: through
// AppendFrame (JSON) always when its strings are valid UTF-8 (JSON cannot carry anything else),
// and through AppendBinaryFrame always.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := Decode(frame)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("Decode error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if validUTF8(c) {
			enc, err := Encode(c)
			if err != nil {
				t.Fatalf("Encode of a decoded command: %v", err)
			}
			again, err := Decode(enc[4:])
			if err != nil {
				t.Fatalf("decode after JSON re-encode: %v", err)
			}
			if diff := cmp.Diff(c, again, equateCommands); diff != "" {
				t.Fatalf("JSON re-encode changed the command (-first +second):\n%s", diff)
			}
		}
		if c.WideCode != 0 || c.Version != int32(int16(c.Version)) {
			return // a binary header has 16 bits for the code and the version
		}
		bin := AppendBinaryFrame(nil, c)
		again, err := Decode(bin[4:])
		if err != nil {
			t.Fatalf("decode after binary re-encode: %v", err)
		}
		want := *c
		if !knownLanguage(want.Language) {
			want.Language = "OTHER"
		}
		if diff := cmp.Diff(&want, again, equateCommands); diff != "" {
			t.Fatalf("binary re-encode changed the command (-first +second):\n%s", diff)
		}
	})
}

func validUTF8(c *Command) bool {
	if !utf8.ValidString(c.Language) || !utf8.ValidString(c.Remark) {
		return false
	}
	for k, v := range c.ExtFields {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// FuzzReadFrame: ReadFrame never panics or over-reads, returns exactly the declared content,
// and fails only with ErrBadFrame, ErrFrameTooLarge or an EOF.
func FuzzReadFrame(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(binary.BigEndian.AppendUint32(nil, uint32(len(s)))[:4:4], s, uint16(1024))
	}
	f.Add([]byte{0, 0, 0, 3}, []byte("abc"), uint16(1024))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{}, uint16(65535))
	f.Add([]byte{0, 0}, []byte{}, uint16(8))
	f.Fuzz(func(t *testing.T, lenWord, rest []byte, maxBytes uint16) {
		stream := append(append([]byte(nil), lenWord...), rest...)
		r := bytes.NewReader(stream)
		got, err := ReadFrame(r, int(maxBytes))
		if err != nil {
			switch {
			case errors.Is(err, ErrBadFrame), errors.Is(err, ErrFrameTooLarge),
				errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			default:
				t.Fatalf("unexpected error class: %v", err)
			}
			if errors.Is(err, io.EOF) && len(stream) != 0 {
				t.Fatalf("clean EOF reported for a non-empty stream of %d bytes", len(stream))
			}
			return
		}
		n := int(binary.BigEndian.Uint32(stream))
		if n < 4 || n > int(maxBytes) {
			t.Fatalf("frame of declared length %d accepted with limit %d", n, maxBytes)
		}
		if !bytes.Equal(got, stream[4:4+n]) {
			t.Fatalf("content differs from the stream")
		}
		if r.Len() != len(stream)-4-n {
			t.Fatalf("ReadFrame consumed %d bytes, frame is %d", len(stream)-r.Len(), 4+n)
		}
	})
}

// canonicalHost reports whether a decoded host re-encodes to the same bytes (an IPv4-mapped
// IPv6 address is written back as IPv4).
func canonicalHost(ap netip.AddrPort) bool { return !ap.Addr().Is4In6() }

// FuzzDecodeRecord: DecodeRecord and RecordProperties never panic and agree on the properties; a decoded record re-encodes to the input bytes
// when its hosts are canonical and its topic fits the writer's limit, and decode(encode(m)) is
// always a fixed point.
func FuzzDecodeRecord(f *testing.F) {
	hello := helloMessage()
	v6 := helloMessage()
	v6.BornHost = netip.MustParseAddrPort("[2001:db8::1]:10911")
	v6.StoreHost = netip.MustParseAddrPort("[::1]:20911")
	empty := &Message{BornHost: hello.BornHost, StoreHost: hello.StoreHost}
	for _, m := range []*Message{hello, v6, empty} {
		b, err := AppendRecord(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(b, 0xDA))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		props, propsErr := RecordProperties(b)
		m, n, err := DecodeRecord(b)
		if err != nil {
			if m != nil || n != 0 {
				t.Fatalf("error %v with a message or a length", err)
			}
			return
		}
		// RecordProperties checks less (no magic, no checksum), never more.
		if propsErr != nil || props != m.Properties {
			t.Fatalf("RecordProperties = %q, %v; DecodeRecord found %q", props, propsErr, m.Properties)
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("DecodeRecord consumed %d of %d bytes", n, len(b))
		}
		enc, err := AppendRecord(nil, m)
		if len(m.Topic) > MaxTopicBytes {
			// The 1-byte topic length reaches 255; the writer keeps Java's 127.
			if err == nil {
				t.Fatalf("AppendRecord accepted a topic of %d bytes", len(m.Topic))
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendRecord of a decoded message: %v", err)
		}
		if len(enc) != RecordSize(m) {
			t.Fatalf("record of %d bytes, RecordSize %d", len(enc), RecordSize(m))
		}
		if canonicalHost(m.BornHost) && canonicalHost(m.StoreHost) && !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoded record differs from the input:\n in  %x\n out %x", b[:n], enc)
		}
		m2, n2, err := DecodeRecord(enc)
		if err != nil || n2 != len(enc) {
			t.Fatalf("decode of a re-encoded record: %d bytes, %v", n2, err)
		}
		enc2, err := AppendRecord(nil, m2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encode(decode(encode(m))) is not a fixed point: %v", err)
		}
	})
}

// FuzzParseProperties: parsing never panics, Property agrees with ParseProperties, and the
// parsed map survives EncodeProperties.
func FuzzParseProperties(f *testing.F) {
	f.Add(helloProps, "TAGS")
	f.Add("TAGS\x01TagA\x02KEYS\x01k1 k2", "KEYS")
	f.Add("a\x01b\x01c\x02a\x01d", "a")
	f.Add("\x02\x01\x02\x01\x01", "")
	f.Add("TAGS\x01x\x02TAGS\x01y\x02", "TAGS")
	f.Fuzz(func(t *testing.T, s, key string) {
		props := ParseProperties(s)
		if got, want := Property(s, key), props[key]; got != want {
			t.Fatalf("Property(%q) = %q, ParseProperties has %q", key, got, want)
		}
		enc := EncodeProperties(props)
		if again := ParseProperties(enc); !cmp.Equal(props, again) {
			t.Fatalf("EncodeProperties round trip:\n first  %q\n second %q", props, again)
		}
		for k, v := range props {
			if Property(enc, k) != v {
				t.Fatalf("Property(%q) on the re-encoded block = %q, want %q", k, Property(enc, k), v)
			}
		}
	})
}
