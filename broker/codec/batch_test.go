package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/google/go-cmp/cmp"
)

// batchOf encodes msgs with AppendBatchRecord.
func batchOf(t testing.TB, msgs ...BatchMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = AppendBatchRecord(b, m); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// The official Go client's batch body decodes into its messages: flag, body and properties
// (the client writes properties in map order, so they are compared parsed).
func TestDecodeBatchOfTheGoClient(t *testing.T) {
	var msgs []*primitive.Message
	for i, body := range []string{"first", "", strings.Repeat("x", 5000)} {
		m := primitive.NewMessage("T", []byte(body))
		m.WithTag("Tag" + string(rune('A'+i)))
		m.WithKeys([]string{"k" + string(rune('0'+i)), "shared"})
		m.WithProperty("user", body[:min(len(body), 3)])
		m.Flag = int32(i * 7)
		msgs = append(msgs, m)
	}
	got, err := DecodeBatch(producer.MarshalMessageBatch(msgs...))
	if err != nil {
		t.Fatalf("DecodeBatch of the client's batch: %v", err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("decoded %d messages, the client sent %d", len(got), len(msgs))
	}
	for i, m := range msgs {
		if got[i].Flag != m.Flag || !bytes.Equal(got[i].Body, m.Body) {
			t.Errorf("message %d: flag %d body %q, sent flag %d body %q", i, got[i].Flag, got[i].Body, m.Flag, m.Body)
		}
		if diff := cmp.Diff(m.GetProperties(), ParseProperties(got[i].Properties)); diff != "" {
			t.Errorf("message %d properties (-sent +decoded):\n%s", i, diff)
		}
	}
}

func TestDecodeBatch(t *testing.T) {
	one := BatchMessage{Flag: 3, Body: []byte("hello"), Properties: "TAGS\x01A\x02"}
	two := BatchMessage{Flag: -1, Body: []byte{}, Properties: ""}
	good := batchOf(t, one, two)
	// withField rewrites the int32 at off (or int16 if size 2) of a copy of b.
	withField := func(b []byte, off, size int, v int64) []byte {
		c := bytes.Clone(b)
		if size == 2 {
			binary.BigEndian.PutUint16(c[off:], uint16(v))
		} else {
			binary.BigEndian.PutUint32(c[off:], uint32(v))
		}
		return c
	}
	firstLen := 22 + 5 + len(one.Properties)
	cases := []struct {
		name string
		body []byte
		want []BatchMessage
		err  string // substring of the error; "" = success
	}{
		{"two records", good, []BatchMessage{one, two}, ""},
		{"one record", batchOf(t, one), []BatchMessage{one}, ""},
		{"magic and crc are ignored", withField(withField(good, 4, 4, 0xDAA320A7), 8, 4, 12345), []BatchMessage{one, two}, ""},
		{"empty body", nil, nil, "empty"},
		{"shorter than a record", good[:21], nil, "at least 22"},
		{"cut in the second record", good[:len(good)-1], nil, "record 1"},
		{"trailing bytes", append(bytes.Clone(good), 0, 0, 0), nil, "record 2 at byte"},
		{"totalSize beyond the body", withField(good, 0, 4, int64(len(good)+1)), nil, "totalSize"},
		{"negative totalSize", withField(good, 0, 4, -1), nil, "totalSize -1"},
		{"totalSize below the fixed part", withField(good, 0, 4, 21), nil, "totalSize 21"},
		{"totalSize too large for its fields", withField(good, 0, 4, int64(firstLen+1)), nil, "22 + body 5"},
		{"body length beyond totalSize", withField(good, 16, 4, 1000), nil, "body length 1000"},
		{"negative body length", withField(good, 16, 4, -5), nil, "body length -5"},
		{"properties length disagrees", withField(good, 20+5, 2, 2), nil, "properties 2"},
		{"negative properties length", withField(good, 20+5, 2, -1), nil, "properties -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBatch(tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadFrame) {
					t.Fatalf("DecodeBatch = %v, %v; want an ErrBadFrame error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Fatalf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppendBatchRecordRefusesOversizedProperties(t *testing.T) {
	if _, err := AppendBatchRecord(nil, BatchMessage{Properties: strings.Repeat("p", MaxPropertiesBytes+1)}); err == nil {
		t.Fatal("AppendBatchRecord accepted properties its int16 length cannot carry")
	}
}

// FuzzDecodeBatch: DecodeBatch never panics, fails only with ErrBadFrame, and what it accepts
// is exactly the concatenation of its records: re-encoding gives the input back, except for the
// magic and bodyCRC words, which it ignores.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(batchOf(f, BatchMessage{Flag: 3, Body: []byte("hello"), Properties: "TAGS\x01A\x02KEYS\x01k1 k2\x02"}))
	f.Add(batchOf(f, BatchMessage{Body: []byte("a")}, BatchMessage{Body: []byte("bb"), Properties: "x\x01y"}))
	f.Add([]byte{0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := DecodeBatch(body)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if len(msgs) == 0 {
			t.Fatal("DecodeBatch accepted a batch without messages")
		}
		again := batchOf(t, msgs...)
		want := bytes.Clone(body)
		for off := 0; off < len(want); off += int(binary.BigEndian.Uint32(want[off:])) {
			copy(want[off+4:off+12], make([]byte, 8))
		}
		if !bytes.Equal(again, want) {
			t.Fatalf("re-encoded batch differs from the input (magic and crc zeroed)\n got %x\nwant %x", again, want)
		}
	})
}
