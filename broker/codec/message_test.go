package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// helloProps is the 63-byte property block of the captured "hello" send (a capture of the Go client).
const helloProps = "TAGS\x01TagA\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01C00002021F38000000007b6e38880001\x02"

func helloMessage() *Message {
	return &Message{
		Topic:          "TopicTest",
		QueueID:        1,
		QueueOffset:    0,
		PhysicalOffset: 0,
		BornTimestamp:  1700000000000,
		BornHost:       netip.MustParseAddrPort("127.0.8.2:53412"),
		StoreTimestamp: 1700000000007,
		StoreHost:      netip.MustParseAddrPort("127.0.0.1:20911"),
		Body:           []byte("hello"),
		Properties:     helloProps,
	}
}

// compareMessages ignores the difference between a nil and an empty body.
var compareMessages = []cmp.Option{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })}

func mustRecord(t *testing.T, m *Message) []byte {
	t.Helper()
	b, err := AppendRecord(nil, m)
	if err != nil {
		t.Fatalf("AppendRecord: %v", err)
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	v6a := netip.MustParseAddrPort("[2001:db8::1]:10911")
	v6b := netip.MustParseAddrPort("[fe80::1:2:3:4]:65535")
	tests := []struct {
		name     string
		mutate   func(*Message)
		extraLen int // bytes beyond the IPv4 formula
	}{
		{"IPv4 hosts", func(*Message) {}, 0},
		{"IPv6 born host", func(m *Message) { m.BornHost = v6a }, 12},
		{"IPv6 store host", func(m *Message) { m.StoreHost = v6b }, 12},
		{"IPv6 both hosts", func(m *Message) { m.BornHost, m.StoreHost = v6a, v6b }, 24},
		{"empty body, topic, properties", func(m *Message) { m.Body, m.Topic, m.Properties = nil, "", "" }, 0},
		{"every numeric field set", func(m *Message) {
			m.QueueID, m.Flag, m.QueueOffset, m.PhysicalOffset = 7, -1, 1<<40, 1<<62
			m.SysFlag, m.ReconsumeTimes, m.PreparedTransactionOffset = SysFlagMultiTags|8, 16, -5
		}, 0},
		{"longest topic and properties", func(m *Message) {
			m.Topic = strings.Repeat("t", MaxTopicBytes)
			m.Properties = strings.Repeat("p", MaxPropertiesBytes)
		}, 0},
		{"binary body", func(m *Message) { m.Body = bytes.Repeat([]byte{0, 0xff, 0xda, 0xa3}, 300) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := helloMessage()
			tc.mutate(m)
			b := mustRecord(t, m)
			wantLen := 91 + len(m.Body) + len(m.Topic) + len(m.Properties) + tc.extraLen
			if len(b) != wantLen || RecordSize(m) != wantLen {
				t.Fatalf("record is %d bytes, RecordSize %d, want %d", len(b), RecordSize(m), wantLen)
			}
			if got := int(binary.BigEndian.Uint32(b)); got != wantLen {
				t.Errorf("TOTALSIZE field %d, want %d", got, wantLen)
			}
			got, n, err := DecodeRecord(b)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if n != len(b) {
				t.Errorf("DecodeRecord consumed %d of %d bytes", n, len(b))
			}
			want := *m
			if m.BornHost.Addr().Is6() {
				want.SysFlag |= SysFlagBornHostV6
			}
			if m.StoreHost.Addr().Is6() {
				want.SysFlag |= SysFlagStoreHostV6
			}
			if diff := cmp.Diff(&want, got, compareMessages...); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecordHelloGolden pins the captured example: "hello" on TopicTest with 63 bytes of
// properties occupies 168 bytes (docs/protocol.md, "Stored message records"). The whole record is kept as a hex golden.
func TestRecordHelloGolden(t *testing.T) {
	m := helloMessage()
	if len(m.Properties) != 63 {
		t.Fatalf("hello properties are %d bytes, the capture had 63", len(m.Properties))
	}
	b := mustRecord(t, m)
	if len(b) != 168 {
		t.Fatalf("hello record is %d bytes, want 168", len(b))
	}
	got := hexLines(b)
	path := filepath.Join("testdata", "hello_record.hex")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("hello record differs from %s (-want +got):\n%s", path, diff)
	}
}

// hexLines renders b as one field of the record layout per line, so golden diffs name the field.
func hexLines(b []byte) string {
	fields := []struct {
		name string
		n    int
	}{
		{"TOTALSIZE", 4}, {"MAGICCODE", 4}, {"BODYCRC", 4}, {"QUEUEID", 4}, {"FLAG", 4},
		{"QUEUEOFFSET", 8}, {"PHYSICALOFFSET", 8}, {"SYSFLAG", 4}, {"BORNTIMESTAMP", 8},
		{"BORNHOST", 8}, {"STORETIMESTAMP", 8}, {"STOREHOST", 8}, {"RECONSUMETIMES", 4},
		{"PREPARED_TRANSACTION_OFFSET", 8}, {"BODYLEN", 4}, {"BODY", 5}, {"TOPICLEN", 1},
		{"TOPIC", 9}, {"PROPLEN", 2}, {"PROPERTIES", 63},
	}
	var sb strings.Builder
	for _, f := range fields {
		sb.WriteString(f.name)
		sb.WriteString(" ")
		sb.WriteString(hex.EncodeToString(b[:f.n]))
		sb.WriteString("\n")
		b = b[f.n:]
	}
	return sb.String()
}

func TestRecordBackToBack(t *testing.T) {
	a, b := helloMessage(), helloMessage()
	b.QueueOffset, b.PhysicalOffset, b.Body = 1, 168, []byte("world!")
	buf := mustRecord(t, a)
	buf, err := AppendRecord(buf, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []*Message
	for rest := buf; len(rest) > 0; {
		m, n, err := DecodeRecord(rest)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
		rest = rest[n:]
	}
	if diff := cmp.Diff([]*Message{a, b}, got, compareMessages...); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAppendRecordLimits(t *testing.T) {
	m := helloMessage()
	m.Topic = strings.Repeat("t", MaxTopicBytes+1)
	if _, err := AppendRecord(nil, m); err == nil {
		t.Error("topic of 128 bytes accepted")
	}
	m = helloMessage()
	m.Properties = strings.Repeat("p", MaxPropertiesBytes+1)
	if _, err := AppendRecord(nil, m); err == nil {
		t.Error("properties of 32768 bytes accepted")
	}
	// The V6 bits follow the hosts, whatever the caller put in SysFlag.
	m = helloMessage()
	m.SysFlag = SysFlagBornHostV6 | SysFlagStoreHostV6
	got, _, err := DecodeRecord(mustRecord(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.SysFlag != 0 {
		t.Errorf("IPv4 hosts stored with sysflag %#x", got.SysFlag)
	}
	// A host the caller never set encodes as 0.0.0.0:0 rather than panicking.
	m = helloMessage()
	m.BornHost = netip.AddrPort{}
	got, _, err = DecodeRecord(mustRecord(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("0.0.0.0:0"); got.BornHost != want {
		t.Errorf("unset born host decoded as %v, want %v", got.BornHost, want)
	}
}

// corrupt returns a copy of the hello record with f applied.
func corrupt(t *testing.T, f func(b []byte) []byte) []byte {
	b := mustRecord(t, helloMessage())
	return f(b)
}

func put32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b }
}

func TestDecodeRecordErrors(t *testing.T) {
	const (
		bodyLenAt  = 84
		topicLenAt = 88 + 5
		propLenAt  = 89 + 5 + 9
	)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"three bytes", []byte{0, 0, 0}},
		{"total size only", []byte{0, 0, 0, 168}},
		{"bad magic", corrupt(t, put32(4, 0xDAA320AB))},
		{"total size beyond buffer", corrupt(t, put32(0, 169))},
		{"total size smaller than fields", corrupt(t, put32(0, 167))},
		{"total size below 4", corrupt(t, put32(0, 3))},
		{"total size negative", corrupt(t, put32(0, 0xFFFFFFF0))},
		{"total size larger than fields", func() []byte {
			b := append(mustRecord(t, helloMessage()), 0)
			binary.BigEndian.PutUint32(b, 169)
			return b
		}()},
		{"body crc", corrupt(t, func(b []byte) []byte { b[8] ^= 1; return b })},
		{"body byte flipped", corrupt(t, func(b []byte) []byte { b[88] ^= 0x20; return b })},
		{"body length negative", corrupt(t, put32(bodyLenAt, 0xFFFFFFFF))},
		{"body length beyond record", corrupt(t, put32(bodyLenAt, 1000))},
		{"topic length beyond record", corrupt(t, func(b []byte) []byte { b[topicLenAt] = 200; return b })},
		{"properties length negative", corrupt(t, func(b []byte) []byte { b[propLenAt] = 0x80; return b })},
		{"properties length short", corrupt(t, func(b []byte) []byte { b[propLenAt+1]--; return b })},
		{"port above 65535", corrupt(t, put32(52, 0x10000))},
		{"IPv6 flag on an IPv4 record", corrupt(t, put32(36, SysFlagBornHostV6))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, n, err := DecodeRecord(tc.b)
			if err == nil {
				t.Fatalf("DecodeRecord succeeded (%d bytes): %+v", n, m)
			}
			if m != nil || n != 0 {
				t.Errorf("DecodeRecord returned a message or length with error %v", err)
			}
		})
	}
}

// TestDecodeRecordNeverPanics cuts the hello record at every length and flips every bit.
func TestDecodeRecordNeverPanics(t *testing.T) {
	good := mustRecord(t, helloMessage())
	for n := 0; n < len(good); n++ {
		if _, _, err := DecodeRecord(good[:n]); err == nil {
			t.Errorf("record truncated to %d bytes decoded", n)
		}
	}
	for i := 0; i < len(good)*8; i++ {
		b := append([]byte(nil), good...)
		b[i/8] ^= 1 << (i % 8)
		DecodeRecord(b) // may succeed (a flag or timestamp bit), must not panic
	}
}

func TestBodyCRCIsIEEE(t *testing.T) {
	b := mustRecord(t, helloMessage())
	if got, want := binary.BigEndian.Uint32(b[8:]), crc32.ChecksumIEEE([]byte("hello")); got != want {
		t.Errorf("BODYCRC %#x, want %#x", got, want)
	}
	if got := binary.BigEndian.Uint32(b[4:]); got != MessageMagic {
		t.Errorf("MAGICCODE %#x", got)
	}
}

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"Go style trailing separator", "TAGS\x01TagA\x02KEYS\x01k1 k2\x02", map[string]string{"TAGS": "TagA", "KEYS": "k1 k2"}},
		{"Java style no trailing separator", "TAGS\x01TagA\x02KEYS\x01k1 k2", map[string]string{"TAGS": "TagA", "KEYS": "k1 k2"}},
		{"empty value", "WAIT\x01\x02", map[string]string{"WAIT": ""}},
		{"entry without separator ignored", "junk\x02TAGS\x01a", map[string]string{"TAGS": "a"}},
		{"entry with two separators ignored", "a\x01b\x01c\x02TAGS\x01x", map[string]string{"TAGS": "x"}},
		{"empty entries ignored", "\x02\x02TAGS\x01x\x02\x02", map[string]string{"TAGS": "x"}},
		{"duplicate key: last wins", "TAGS\x01a\x02TAGS\x01b\x02", map[string]string{"TAGS": "b"}},
		{"hello block", helloProps, map[string]string{"TAGS": "TagA", "KEYS": "k1 k2", "UNIQ_KEY": "C00002021F38000000007b6e38880001"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseProperties(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseProperties (-want +got):\n%s", diff)
			}
			for k, v := range tc.want {
				if p := Property(tc.in, k); p != v {
					t.Errorf("Property(%q) = %q, ParseProperties says %q", k, p, v)
				}
			}
			if p := Property(tc.in, "ABSENT"); p != "" {
				t.Errorf("Property(ABSENT) = %q", p)
			}
			if again := ParseProperties(EncodeProperties(got)); !cmp.Equal(got, again) {
				t.Errorf("EncodeProperties round trip: %q", again)
			}
		})
	}
	if got := EncodeProperties(map[string]string{"TAGS": "TagA", "KEYS": "k1 k2"}); got != "KEYS\x01k1 k2\x02TAGS\x01TagA\x02" {
		t.Errorf("EncodeProperties = %q (want sorted keys, trailing separator)", got)
	}
}

func TestTagsHash(t *testing.T) {
	// Expected values are Java's String.hashCode, worked by hand: "TagA" = ((84*31+97)*31+103)*31+65.
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"a", 97},
		{"TagA", 2598919},
		{"TagB", 2598920},
		{"hello", 99162322},
		{"Hello World", -862545276},      // wraps around int32
		{"\u00e9", 233},                  // one UTF-16 unit
		{"\U0001F600", 55357*31 + 56832}, // surrogate pair D83D DE00
	}
	for _, tc := range tests {
		if got := TagsHash(tc.in); got != tc.want {
			t.Errorf("TagsHash(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestOffsetMsgID(t *testing.T) {
	tests := []struct {
		host   string
		offset int64
		want   string
	}{
		{"127.0.0.1:20911", 0, "7F000001000051AF0000000000000000"}, // docs/protocol.md, "Message ids"
		{"10.0.0.7:10911", 168, "0A00000700002A9F00000000000000A8"},
		{"255.255.255.255:65535", 1<<63 - 1, "FFFFFFFF0000FFFF7FFFFFFFFFFFFFFF"},
		{"[2001:db8::1]:10911", 4096, "20010DB800000000000000000000000100002A9F0000000000001000"},
	}
	for _, tc := range tests {
		host := netip.MustParseAddrPort(tc.host)
		id := OffsetMsgID(host, tc.offset)
		if id != tc.want {
			t.Errorf("OffsetMsgID(%v, %d) = %s, want %s", host, tc.offset, id, tc.want)
		}
		gotHost, gotOff, err := ParseOffsetMsgID(id)
		if err != nil {
			t.Fatalf("ParseOffsetMsgID(%s): %v", id, err)
		}
		if gotHost != host || gotOff != tc.offset {
			t.Errorf("ParseOffsetMsgID(%s) = %v, %d; want %v, %d", id, gotHost, gotOff, host, tc.offset)
		}
		if h, o, err := ParseOffsetMsgID(strings.ToLower(id)); err != nil || h != host || o != tc.offset {
			t.Errorf("lower-case id %s: %v, %d, %v", id, h, o, err)
		}
	}
	// An IPv4-mapped IPv6 host is written as IPv4.
	if id := OffsetMsgID(netip.MustParseAddrPort("[::ffff:127.0.0.1]:20911"), 0); id != "7F000001000051AF0000000000000000" {
		t.Errorf("IPv4-mapped host: %s", id)
	}
	for _, bad := range []string{
		"",
		"7F000001000051AF000000000000000",    // odd length
		"7F000001000051AF00000000000000",     // 15 bytes
		"7F000001000051AF000000000000000000", // 17 bytes
		"7G000001000051AF0000000000000000",   // not hex
		"7F000001000100000000000000000000",   // port 65536
	} {
		if h, o, err := ParseOffsetMsgID(bad); err == nil {
			t.Errorf("ParseOffsetMsgID(%q) = %v, %d, want an error", bad, h, o)
		}
	}
}

// RecordProperties finds the property block of IPv4 and IPv6 records, and refuses records whose
// lengths do not add up (what it does not check: magic and body checksum).
func TestRecordProperties(t *testing.T) {
	v6 := helloMessage()
	v6.BornHost = netip.MustParseAddrPort("[2001:db8::1]:10911")
	v6.StoreHost = netip.MustParseAddrPort("[::1]:20911")
	noProps := helloMessage()
	noProps.Properties = ""
	for _, m := range []*Message{helloMessage(), v6, noProps} {
		if got, err := RecordProperties(mustRecord(t, m)); err != nil || got != m.Properties {
			t.Errorf("RecordProperties = %q, %v; want %q", got, err, m.Properties)
		}
	}
	good := mustRecord(t, helloMessage())
	bad := map[string][]byte{
		"empty":                      nil,
		"truncated":                  good[:len(good)-1],
		"total size beyond buffer":   corrupt(t, put32(0, 169)),
		"body length beyond record":  corrupt(t, put32(84, 1000)),
		"properties length short":    corrupt(t, func(b []byte) []byte { b[89+5+9+1]--; return b }),
		"IPv6 flag on IPv4 record":   corrupt(t, put32(36, SysFlagStoreHostV6)),
		"total size larger than all": append(corrupt(t, put32(0, 169)), 0),
	}
	for name, b := range bad {
		if got, err := RecordProperties(b); err == nil {
			t.Errorf("%s: RecordProperties succeeded with %q", name, got)
		}
	}
}

// TestLookupProperty: what Java's string2messageProperties (and so the SQL92 filter) sees.
func TestLookupProperty(t *testing.T) {
	for _, c := range []struct {
		block, key, want string
		found            bool
	}{
		{"a\x015\x02b\x01x\x02", "a", "5", true},
		{"a\x015\x02b\x01x", "b", "x", true},
		{"a\x015\x02", "c", "", false},
		{"a\x01\x02", "a", "", false},            // an empty value is missing
		{"a\x01x\x02a\x01\x02", "a", "x", true},  // an empty duplicate does not hide it
		{"a\x01x\x02a\x01y\x02", "a", "y", true}, // last wins
		{"a\x01x\x01y\x02", "a", "x\x01y", true}, // the key ends at the first 0x01
		{"\x01x\x02", "", "", false},             // no empty keys
		{"", "a", "", false},
	} {
		got, found := LookupProperty(c.block, c.key)
		if got != c.want || found != c.found {
			t.Errorf("LookupProperty(%q, %q) = %q, %v; want %q, %v", c.block, c.key, got, found, c.want, c.found)
		}
	}
}
