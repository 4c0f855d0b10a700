package codec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// jsonHeader is the JSON header as encoding/json writes it: the reference for the encoder.
type jsonHeader struct {
	Code      int16             `json:"code"`
	Language  string            `json:"language"`
	Version   int32             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
}

// aliOnsSend is a SEND_MESSAGE_V2 header as the Node.js client ali-ons writes it: numbers and
// booleans as JSON numbers and booleans, fastjson's key order.
const aliOnsSend = `{"code":310,"extFields":{"a":"pg","b":"TopicTest","c":"TBW102","d":4,"e":1,"f":0,` +
	`"g":1767225600000,"h":0,"i":"UNIQ_KEY\u0001AC11000100002A9F0000000000000001\u0002","j":0,"k":false,"l":16,"m":false},` +
	`"flag":0,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":373}`

var headerSamples = []string{
	`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"TopicTest"}}`,
	`{"code":0,"extFields":{"a":"1","b":"2"},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":401}`,
	`{"code":17,"language":"GO","version":317,"opaque":3,"flag":1,"remark":null,"extFields":null}`,
	` { "code" : -1 , "opaque" : -2147483648 , "flag" : 2147483647 } `,
	`{}`,
	aliOnsSend,
	`{"code":10,"extFields":{"queueId":-1,"big":123456789012345678901234567890,"unitMode":true,"gone":null}}`,
	`{"code":40000,"version":70000}`,
	`{"code":1,"remark":"has \"escapes\" \u00e9"}`,
	`{"code":1.5}`,
	`{"code":2147483648}`,
	`{"Code":1}`,
	`{"code":1,"extFields":{"a":1.0,"b":1e3,"c":-0.0,"d":1E-7}}`,
	`{"code":1,"extFields":{"a":{"x":[1, 2]}}}`,
	`{"code":1,"extFields":{"a":"x","a":null}}`,
	`{"code":1,"extFields":{"a":"x"},"extFields":{"b":"y"}}`,
	`{"code":1,"unknown":{"nested":true}}`,
	`{"code":1,"unknown":[1,2]}`,
	`{"code":1,"unknown":true,"other":null,"n":-12,"big":1e400}`,
	`{"code":"10","language":0}`,
	`{"code":01}`,
	`{"code":1}x`,
	`{"code":1,}`,
	`{"language":"\xff"}`,
	`{"extFields":{"k":"\xff\xfe"}}`,
	`null`,
}

func TestJSONHeaderFastPathAgreesWithGeneralDecoder(t *testing.T) {
	fastHits := 0
	for _, in := range headerSamples {
		checkFastPath(t, []byte(in))
		if _, ok := decodeJSONHeaderFast([]byte(in)); ok {
			fastHits++
		}
	}
	// The shapes real clients send must take the fast path: the Go client's, a Java peer's,
	// and ali-ons's numbers and booleans.
	for _, in := range headerSamples[:7] {
		if _, ok := decodeJSONHeaderFast([]byte(in)); !ok {
			t.Errorf("client header took the slow path: %s", in)
		}
	}
	if fastHits == len(headerSamples) {
		t.Error("the fast path accepted every sample, including ones it must leave to the general decoder")
	}
}

func checkFastPath(t *testing.T, in []byte) {
	fast, ok := decodeJSONHeaderFast(in)
	if !ok {
		return
	}
	slow, err := decodeJSONHeaderGeneral(in)
	if err != nil {
		t.Fatalf("fast path accepted %q, the general decoder rejects it: %v", in, err)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Fatalf("fast path disagrees with the general decoder on %q (-general +fast):\n%s", in, diff)
	}
}

// What the Java broker's RemotingCommand decoding (fastjson into RemotingCommand, extFields a
// HashMap<String,String>) accepts, and what Sluice makes of it. Values are what Java's
// extFields.get(key) returns: numbers as fastjson's StringCodec prints them (an integer as
// written, a BigDecimal for a fraction or exponent), booleans as words, null as absent.
func TestJSONHeaderAcceptsWhatJavaAccepts(t *testing.T) {
	tests := []struct {
		name, header string
		want         *Command
	}{
		{"Go client", `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"TopicTest"}}`,
			&Command{Code: 105, Language: "GO", Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "TopicTest"}}},
		{"ali-ons SEND_MESSAGE_V2: numbers and booleans", aliOnsSend,
			&Command{Code: ReqSendMessageV2, Language: "JAVA", Version: 373, Opaque: 7, ExtFields: map[string]string{
				"a": "pg", "b": "TopicTest", "c": "TBW102", "d": "4", "e": "1", "f": "0", "g": "1767225600000", "h": "0",
				"i": "UNIQ_KEY\x01AC11000100002A9F0000000000000001\x02", "j": "0", "k": "false", "l": "16", "m": "false"}}},
		{"integers keep their literal text, beyond int64 too",
			`{"code":11,"extFields":{"queueOffset":9223372036854775807,"huge":123456789012345678901234567890,"neg":-1,"nz":-0}}`,
			&Command{Code: 11, ExtFields: map[string]string{"queueOffset": "9223372036854775807",
				"huge": "123456789012345678901234567890", "neg": "-1", "nz": "-0"}}},
		{"fractions and exponents as Java's BigDecimal.toString",
			`{"code":1,"extFields":{"a":1.0,"b":1e3,"c":1.5E2,"d":0.0000001,"e":1E-3,"f":-0.0,"g":12.50,"h":10e2,"i":0e5,"j":-2.5e-1}}`,
			&Command{Code: 1, ExtFields: map[string]string{"a": "1.0", "b": "1E+3", "c": "1.5E+2", "d": "1E-7",
				"e": "0.001", "f": "0.0", "g": "12.50", "h": "1.0E+3", "i": "0E+5", "j": "-0.25"}}},
		{"booleans", `{"code":1,"extFields":{"unitMode":true,"batch":false}}`,
			&Command{Code: 1, ExtFields: map[string]string{"unitMode": "true", "batch": "false"}}},
		{"null is absent, also when it repeats a key", `{"code":1,"extFields":{"a":null,"b":"x","b":null,"c":"y"}}`,
			&Command{Code: 1, ExtFields: map[string]string{"c": "y"}}},
		{"objects and arrays as compact JSON", `{"code":1,"extFields":{"o":{"x": [1, 2]},"a":[ ]}}`,
			&Command{Code: 1, ExtFields: map[string]string{"o": `{"x":[1,2]}`, "a": `[]`}}},
		{"fields in any order, unknown fields of any shape",
			`{"extFields":{"k":"v"},"future":{"x":[1,{"y":null}]},"opaque":5,"serializeTypeCurrentRPC":"JSON","code":12}`,
			&Command{Code: 12, Opaque: 5, ExtFields: map[string]string{"k": "v"}}},
		{"only a code", `{"code":34}`, &Command{Code: 34}},
		{"escapes and non-ASCII", `{"code":1,"remark":"\u00e9\t\"q\"","extFields":{"k\u00e9":"日本\n\/","s":"\ud83d\ude00"}}`,
			&Command{Code: 1, Remark: "é\t\"q\"", ExtFields: map[string]string{"ké": "日本\n/", "s": "😀"}}},
		{"code beyond int16 is kept for the not-supported answer", `{"code":40000,"opaque":3}`,
			&Command{Code: CodeOutOfRange, WideCode: 40000, Opaque: 3}},
		{"most negative int code", `{"code":-2147483648}`, &Command{Code: CodeOutOfRange, WideCode: -2147483648}},
		{"version beyond int16", `{"code":1,"version":70000}`, &Command{Code: 1, Version: 70000}},
		{"int fields as quoted integers (fastjson reads them)", `{"code":"310","opaque":"8","flag":"2","version":"401"}`,
			&Command{Code: 310, Opaque: 8, Flag: 2, Version: 401}},
		{"int fields null", `{"code":null,"opaque":null}`, &Command{}},
		{"language as a LanguageCode ordinal", `{"code":1,"language":9}`, &Command{Code: 1, Language: "GO"}},
		{"remark as a number", `{"code":1,"remark":5}`, &Command{Code: 1, Remark: "5"}},
		{"whitespace everywhere", " {\n\t\"code\" : 10 ,\r\n \"extFields\" : { \"e\" : 1 , \"k\" : true } } ",
			&Command{Code: 10, ExtFields: map[string]string{"e": "1", "k": "true"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFastPath(t, []byte(tc.header))
			got, err := decodeJSONHeader([]byte(tc.header))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, equateCommands); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// What Sluice writes back has strings only among the ext values (docs/protocol.md, "Headers").
			var h struct {
				ExtFields map[string]string `json:"extFields"`
			}
			if enc := appendJSONHeader(nil, got); json.Unmarshal(enc, &h) != nil {
				t.Errorf("re-encoded header is not what the Go client reads: %s", enc)
			}
		})
	}
}

// What the Java broker rejects (its decoder throws, and Netty closes the connection): Sluice
// rejects it too, with an error that says what is wrong.
func TestJSONHeaderRejectsWhatJavaRejects(t *testing.T) {
	tests := []struct{ name, header, reason string }{
		{"empty", ``, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"array", `[1]`, "not a JSON object"},
		{"truncated", `{"code":105,"language":"GO","opa`, "unexpected end"},
		{"missing comma", `{"code":105 "opaque":1}`, "invalid character"},
		{"trailing text", `{"code":1}x`, "invalid character"},
		{"code beyond int32", `{"code":2147483648}`, "code: 2147483648 is not a 32-bit integer"},
		{"opaque not a number", `{"code":1,"opaque":"abc"}`, "opaque"},
		{"flag a boolean", `{"code":1,"flag":true}`, "flag"},
		{"extFields an array", `{"code":1,"extFields":["a"]}`, "extFields"},
		{"extFields a string", `{"code":1,"extFields":"a=b"}`, "extFields"},
		{"ext value beyond BigDecimal", `{"code":1,"extFields":{"x":1e99999999999}}`, `extFields["x"]`},
		{"language ordinal out of range", `{"code":1,"language":99}`, "language"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(jsonFrame(tc.header, ""))
			if err == nil {
				t.Fatalf("decoded %+v", c)
			}
			if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "json header") {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}

// Where Sluice is stricter than fastjson, on purpose: fastjson's non-standard syntax, which no
// RocketMQ client writes, and int fields written as fractions (fastjson truncates them).
func TestJSONHeaderStricterThanFastjson(t *testing.T) {
	for _, in := range []string{
		`{'code':10}`,
		`{code:10}`,
		`{"code":10,,"opaque":1}`,
		`{"code":10,"extFields":{"a":"\x41"}}`,
		`{"code":10.0}`,
		`{"code":10,"extFields":{"e":1L}}`,
	} {
		if c, err := decodeJSONHeader([]byte(in)); err == nil {
			t.Errorf("%s decoded as %+v; the package documentation says it is refused", in, c)
		}
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
	// A code beyond int16 goes back out as it came in.
	if got := string(appendJSONHeader(nil, &Command{Code: CodeOutOfRange, WideCode: 40000})); !strings.HasPrefix(got, `{"code":40000,`) {
		t.Errorf("wide code encoded as %s", got)
	}
}

func FuzzJSONHeaderFastPath(f *testing.F) {
	for _, s := range headerSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkFastPath(t, in)
		c, err := decodeJSONHeader(in)
		if err != nil {
			return
		}
		if c.WideCode != 0 && (c.Code != CodeOutOfRange || c.WideCode >= -1<<15 && c.WideCode < 1<<15) {
			t.Fatalf("code %d with wide code %d", c.Code, c.WideCode)
		}
		enc := appendJSONHeader(nil, c)
		again, err := decodeJSONHeader(enc)
		if err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if diff := cmp.Diff(normalize(c), normalize(again)); diff != "" {
			t.Fatalf("round trip changed the header:\n%s", diff)
		}
		// What Sluice writes carries strings only among the ext values: it decodes as
		// encoding/json's map[string]string, as the Go client reads it.
		var h struct {
			ExtFields map[string]string `json:"extFields"`
		}
		if err := json.Unmarshal(enc, &h); err != nil {
			t.Fatalf("re-encoded header %s is not what the Go client reads: %v", enc, err)
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
	b.Run("decode/fast-numbers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeJSONHeaderFast([]byte(aliOnsSend)); !ok {
				b.Fatal("slow path")
			}
		}
	})
	b.Run("decode/general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSONHeaderGeneral(hdr); err != nil {
				b.Fatal(err)
			}
		}
	})
}
