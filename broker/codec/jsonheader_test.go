package codec

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// slowDecode is the reference: encoding/json alone.
func slowDecode(hdr []byte) (*Command, error) {
	var h jsonHeader
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, err
	}
	return &Command{Code: h.Code, Language: h.Language, Version: h.Version, Opaque: h.Opaque,
		Flag: h.Flag, Remark: h.Remark, ExtFields: h.ExtFields}, nil
}

var headerSamples = []string{
	`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"TopicTest"}}`,
	`{"code":0,"extFields":{"a":"1","b":"2"},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":401}`,
	`{"code":17,"language":"GO","version":317,"opaque":3,"flag":1,"remark":null,"extFields":null}`,
	` { "code" : -1 , "opaque" : -2147483648 , "flag" : 2147483647 } `,
	`{}`,
	`{"code":1,"remark":"has \"escapes\" \u00e9"}`,
	`{"code":1.5}`,
	`{"code":40000}`,
	`{"Code":1}`,
	`{"code":1,"extFields":{"a":1}}`,
	`{"code":1,"extFields":{"a":null}}`,
	`{"code":1,"extFields":{"a":"x"},"extFields":{"b":"y"}}`,
	`{"code":1,"unknown":{"nested":true}}`,
	`{"code":1,"unknown":[1,2]}`,
	`{"code":1,"unknown":true,"other":null,"n":-12}`,
	`{"code":01}`,
	`{"code":1}x`,
	`{"code":1,}`,
	`{"language":"\xff"}`,
}

func TestJSONHeaderFastPathAgreesWithEncodingJSON(t *testing.T) {
	fastHits := 0
	for _, in := range headerSamples {
		checkFastPath(t, []byte(in))
		if _, ok := decodeJSONHeaderFast([]byte(in)); ok {
			fastHits++
		}
	}
	// The shapes real clients send must take the fast path.
	for _, in := range headerSamples[:5] {
		if _, ok := decodeJSONHeaderFast([]byte(in)); !ok {
			t.Errorf("client header took the slow path: %s", in)
		}
	}
	if fastHits == len(headerSamples) {
		t.Error("the fast path accepted every sample, including ones it must leave to encoding/json")
	}
}

func checkFastPath(t *testing.T, in []byte) {
	fast, ok := decodeJSONHeaderFast(in)
	if !ok {
		return
	}
	slow, err := slowDecode(in)
	if err != nil {
		t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", in, err)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Fatalf("fast path disagrees with encoding/json on %q (-json +fast):\n%s", in, diff)
	}
}

// The hand-written encoder writes what encoding/json writes.
func TestJSONHeaderEncoderMatchesEncodingJSON(t *testing.T) {
	cmds := []*Command{
		{Code: 105, Language: "GO", Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "T", "a": "<&>\u2028\"\\\n\x01\xff"}},
		{Code: -3, Flag: 3, Remark: "remark with é and \t"},
		{},
	}
	for _, c := range cmds {
		want, err := json.Marshal(jsonHeader{Code: c.Code, Language: c.Language, Version: c.Version, Opaque: c.Opaque,
			Flag: c.Flag, Remark: c.Remark, ExtFields: c.ExtFields})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONHeader(nil, c); string(got) != string(want) {
			t.Errorf("encoder:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzJSONHeaderFastPath(f *testing.F) {
	for _, s := range headerSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkFastPath(t, in)
		if c, err := decodeJSONHeader(in); err == nil {
			again, err := decodeJSONHeader(appendJSONHeader(nil, c))
			if err != nil {
				t.Fatalf("re-encoded header does not decode: %v", err)
			}
			if diff := cmp.Diff(normalize(c), normalize(again)); diff != "" {
				t.Fatalf("round trip changed the header:\n%s", diff)
			}
		}
	})
}

// normalize maps an empty ext map to nil (the encoder omits both).
func normalize(c *Command) *Command {
	out := *c
	if len(out.ExtFields) == 0 {
		out.ExtFields = nil
	}
	return &out
}

func BenchmarkJSONHeader(b *testing.B) {
	c := &Command{Code: 10, Language: "GO", Version: 317, Opaque: 12345, ExtFields: map[string]string{
		"producerGroup": "pg", "topic": "TopicTest", "queueId": "3", "sysFlag": "0", "bornTimestamp": "1764300000000",
		"flag": "0", "properties": "UNIQ_KEY\x01C00002021F38000000007b6e38880001\x02", "reconsumeTimes": "0",
		"unitMode": "false", "maxReconsumeTimes": "0", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4", "batch": "false"}}
	hdr := appendJSONHeader(nil, c)
	b.Run("encode/fast", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = appendJSONHeader(buf[:0], c)
		}
	})
	b.Run("encode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(jsonHeader{Code: c.Code, Language: c.Language, Version: c.Version, Opaque: c.Opaque, ExtFields: c.ExtFields})
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeJSONHeaderFast(hdr); !ok {
				b.Fatal("slow path")
			}
		}
	})
	b.Run("decode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := slowDecode(hdr); err != nil {
				b.Fatal(err)
			}
		}
	})
}
