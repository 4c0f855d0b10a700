package route

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sluiceRegisterBody is a REGISTER_BROKER body as a Sluice broker sends it.
const sluiceRegisterBody = `{"topicConfigTable":{"Orders":{"topicName":"Orders","readQueueNums":4,"writeQueueNums":4,"perm":6},` +
	`"TBW102":{"topicName":"TBW102","readQueueNums":8,"writeQueueNums":8,"perm":7}}}`

// javaRegisterBody is a REGISTER_BROKER body as a Java 4.9.8 broker sends it (fastjson of
// RegisterBrokerBody), and as Sluice brokers now send it too.
const javaRegisterBody = `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"timestamp":1767225600000},` +
	`"topicConfigTable":{"Orders":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"Orders","topicSysFlag":0,"writeQueueNums":4},` +
	`"%RETRY%cg":{"order":false,"perm":6,"readQueueNums":1,"topicFilterType":"SINGLE_TAG","topicName":"%RETRY%cg","topicSysFlag":0,"writeQueueNums":1}}}}`

var javaRegistered = RegisterBody{
	TopicConfigTable: map[string]TopicConfig{
		"Orders":    {TopicName: "Orders", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG"},
		"%RETRY%cg": {TopicName: "%RETRY%cg", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, TopicFilterType: "SINGLE_TAG"},
	},
	DataVersion:      DataVersion{Timestamp: 1767225600000, Counter: 3},
	FilterServerList: []string{},
}

func TestDecodeRegisterBody(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		want    RegisterBody
		wantErr string
	}{
		{name: "as a Java broker sends it", body: javaRegisterBody, want: javaRegistered},
		{name: "flat, as Sluice brokers sent it before", body: sluiceRegisterBody, want: RegisterBody{TopicConfigTable: map[string]TopicConfig{
			"Orders": {TopicName: "Orders", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6},
			"TBW102": {TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7},
		}, FilterServerList: []string{}}},
		{name: "the wrapper wins over a flat table", body: `{"topicConfigTable":{"Flat":{"topicName":"Flat"}},"topicConfigSerializeWrapper":{"topicConfigTable":{"W":{"topicName":"W","readQueueNums":2}}}}`,
			want: RegisterBody{TopicConfigTable: map[string]TopicConfig{"W": {TopicName: "W", ReadQueueNums: 2}}, FilterServerList: []string{}}},
		{name: "a wrapper without a table: no topics", body: `{"topicConfigSerializeWrapper":{"dataVersion":{"timestamp":5,"counter":1}},"filterServerList":["10.0.0.1:1"]}`,
			want: RegisterBody{TopicConfigTable: map[string]TopicConfig{}, DataVersion: DataVersion{Timestamp: 5, Counter: 1}, FilterServerList: []string{"10.0.0.1:1"}}},
		{name: "empty body: no topics", body: ``, want: RegisterBody{TopicConfigTable: map[string]TopicConfig{}, FilterServerList: []string{}}},
		{name: "null table: no topics", body: `{"topicConfigTable":null}`, want: RegisterBody{TopicConfigTable: map[string]TopicConfig{}, FilterServerList: []string{}}},
		{name: "unknown keys ignored", body: `{"filterServerList":[],"brokerId":1,"topicConfigTable":{"A":{"topicName":"A","readQueueNums":1,"order":false,"x":1}}}`,
			want: RegisterBody{TopicConfigTable: map[string]TopicConfig{"A": {TopicName: "A", ReadQueueNums: 1}}, FilterServerList: []string{}}},
		{name: "a wrapper that is a list", body: `{"topicConfigSerializeWrapper":[]}`, wantErr: "decode register body"},
		{name: "a queue count beyond int32 in the wrapper", body: `{"topicConfigSerializeWrapper":{"topicConfigTable":{"A":{"writeQueueNums":2147483648}}}}`, wantErr: "decode register body"},
		{name: "not JSON", body: `{`, wantErr: "decode register body"},
		{name: "a queue count as a string", body: `{"topicConfigTable":{"A":{"readQueueNums":"4"}}}`, wantErr: "decode register body"},
		{name: "a queue count beyond int32", body: `{"topicConfigTable":{"A":{"readQueueNums":4294967296}}}`, wantErr: "decode register body"},
		{name: "a table that is a list", body: `{"topicConfigTable":[]}`, wantErr: "decode register body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRegisterBody([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

// Sluice brokers write Java's shape, which decodes to what was encoded.
func TestRegisterBodyEncodesJavaShape(t *testing.T) {
	enc, err := json.Marshal(javaRegistered)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"topicConfigSerializeWrapper":{"topicConfigTable":{"%RETRY%cg":{"topicName":"%RETRY%cg","readQueueNums":1,"writeQueueNums":1,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false},` +
		`"Orders":{"topicName":"Orders","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false}},` +
		`"dataVersion":{"timestamp":1767225600000,"counter":3}},"filterServerList":[]}`
	if string(enc) != want {
		t.Errorf("encoded\n%s\nwant\n%s", enc, want)
	}
	if empty, _ := json.Marshal(RegisterBody{}); string(empty) != `{"topicConfigSerializeWrapper":{"topicConfigTable":{},"dataVersion":{"timestamp":0,"counter":0}},"filterServerList":[]}` {
		t.Errorf("an empty body encodes as %s", empty)
	}
}

// compressedParts builds a compressed registration from raw inflated parts, to write the
// malformed ones Java's encoder never does.
func compressedParts(parts ...[]byte) []byte {
	var raw bytes.Buffer
	for _, p := range parts {
		raw.Write(p)
	}
	var out bytes.Buffer
	zw := zlib.NewWriter(&out)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

func lenPrefixed(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

func be32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// The compressed registration of a Java broker with compressedRegister=true
// (RegisterBrokerBody.encode(true)) decodes to the same topics as its JSON form.
func TestDecodeCompressedRegisterBody(t *testing.T) {
	got, err := DecodeCompressedRegisterBody(javaRegistered.EncodeCompressed())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(javaRegistered, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	dv := lenPrefixed(`{"timestamp":1,"counter":2}`)
	cases := []struct {
		name    string
		body    []byte
		want    RegisterBody
		wantErr string
	}{
		{name: "one topic, by hand", body: compressedParts(dv, be32(1), lenPrefixed("T 2 3 6 MULTI_TAG"), lenPrefixed(`["10.0.0.1:1"]`)),
			want: RegisterBody{TopicConfigTable: map[string]TopicConfig{"T": {TopicName: "T", ReadQueueNums: 2, WriteQueueNums: 3, Perm: 6, TopicFilterType: "MULTI_TAG"}},
				DataVersion: DataVersion{Timestamp: 1, Counter: 2}, FilterServerList: []string{"10.0.0.1:1"}}},
		{name: "a bad filter list is dropped, as Java does", body: compressedParts(dv, be32(0), lenPrefixed(`nope`)),
			want: RegisterBody{TopicConfigTable: map[string]TopicConfig{}, DataVersion: DataVersion{Timestamp: 1, Counter: 2}, FilterServerList: []string{}}},
		{name: "not zlib", body: []byte(javaRegisterBody), wantErr: "decode compressed register body"},
		{name: "truncated after the count", body: compressedParts(dv, be32(2), lenPrefixed("T 1 1 6 SINGLE_TAG")), wantErr: "topic config length"},
		{name: "a topic with four fields", body: compressedParts(dv, be32(1), lenPrefixed("T 1 1 6"), lenPrefixed(`[]`)), wantErr: "want 5"},
		{name: "a topic with a bad number", body: compressedParts(dv, be32(1), lenPrefixed("T 1 x 6 SINGLE_TAG"), lenPrefixed(`[]`)), wantErr: "invalid syntax"},
		{name: "a bad filter type", body: compressedParts(dv, be32(1), lenPrefixed("T 1 1 6 TAGS"), lenPrefixed(`[]`)), wantErr: "neither"},
		{name: "a length beyond what is left", body: compressedParts(be32(1 << 30)), wantErr: "at most"},
		{name: "a negative length", body: compressedParts(be32(0xFFFFFFFF)), wantErr: "length -1"},
		{name: "a bad data version", body: compressedParts(lenPrefixed(`[]`), be32(0), lenPrefixed(`[]`)), wantErr: "data version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCompressedRegisterBody(tc.body)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecodeCompressedRegisterBody: the compressed decoder never panics, and what it accepts
// re-encodes (compressed) to a body that decodes to the same registration.
func FuzzDecodeCompressedRegisterBody(f *testing.F) {
	f.Add(javaRegistered.EncodeCompressed())
	f.Add(RegisterBody{}.EncodeCompressed())
	f.Add(compressedParts(lenPrefixed(`{}`), be32(1), lenPrefixed("T 1 1 6 SINGLE_TAG"), lenPrefixed(`null`)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := DecodeCompressedRegisterBody(b)
		if err != nil {
			return
		}
		if body.TopicConfigTable == nil || body.FilterServerList == nil {
			t.Fatal("accepted a body and returned a nil table or list")
		}
		for name, tc := range body.TopicConfigTable {
			if strings.Contains(name, " ") {
				return // a name with a space cannot be written back in Java's line form
			}
			if tc.TopicName != name {
				t.Fatalf("topic %q filed under %q", tc.TopicName, name)
			}
		}
		again, err := DecodeCompressedRegisterBody(body.EncodeCompressed())
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if diff := cmp.Diff(body, again); diff != "" {
			t.Fatalf("round trip changed the body (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeRegisterBody: the decoder never panics, always returns a usable table when it
// accepts, and what it accepts survives a round trip through JSON unchanged.
func FuzzDecodeRegisterBody(f *testing.F) {
	f.Add([]byte(sluiceRegisterBody))
	f.Add([]byte(``))
	f.Add([]byte(`{"topicConfigTable":{"":{"topicName":"other","readQueueNums":-1,"writeQueueNums":2147483647,"perm":255}}}`))
	f.Add([]byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4}},"dataVersion":{"timestamp":1,"counter":2}},"filterServerList":[]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(javaRegisterBody))
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := DecodeRegisterBody(b)
		if err != nil {
			return
		}
		if body.TopicConfigTable == nil {
			t.Fatal("accepted a body and returned a nil table")
		}
		enc, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", body, err)
		}
		again, err := DecodeRegisterBody(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if diff := cmp.Diff(body, again); diff != "" {
			t.Fatalf("round trip changed the body (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeTopicRouteData: decoding a route (what the project's client reads from a name
// server) never panics, and what it accepts encodes to a body that decodes and encodes to the
// same bytes.
func FuzzDecodeTopicRouteData(f *testing.F) {
	f.Add([]byte(`{"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],` +
		`"brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.3:10911"}}],"filterServerTable":{}}`))
	f.Add([]byte(`{"orderTopicConf":"broker-a:4","queueDatas":[],"brokerDatas":[{"brokerName":"b","brokerAddrs":null}]}`))
	f.Add([]byte(`{"brokerDatas":[{"brokerName":"b","brokerAddrs":{"x":"y"}},{"brokerName":"a"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeTopicRouteData(b)
		if err != nil {
			return
		}
		for _, bd := range r.BrokerDatas {
			r.MasterAddr(bd.BrokerName)
		}
		first := r.Encode()
		again, err := DecodeTopicRouteData(first)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", first, err)
		}
		if second := again.Encode(); string(second) != string(first) {
			t.Fatalf("encode is not stable:\n%s\n%s", first, second)
		}
	})
}

// A clone equals what decoding the same body again gives, empty and absent fields alike, and
// shares nothing with the original.
func TestCloneIsADecodeAgain(t *testing.T) {
	for _, body := range []string{
		`{"queueDatas":[{"brokerName":"b","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],` +
			`"brokerDatas":[{"cluster":"c","brokerName":"b","brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.2:10911"}}],"filterServerTable":{}}`,
		`{"queueDatas":[],"brokerDatas":[{"cluster":"c","brokerName":"b","brokerAddrs":null}]}`,
		`{}`,
	} {
		rd, err := DecodeTopicRouteData([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := DecodeTopicRouteData([]byte(body))
		c := rd.Clone()
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("%s: clone %+v, decoded again %+v", body, c, again)
		}
		if len(c.BrokerDatas) > 0 && c.BrokerDatas[0].BrokerAddrs != nil {
			c.BrokerDatas[0].BrokerAddrs["0"] = "changed"
			c.QueueDatas[0].Perm = 0
			if !reflect.DeepEqual(rd, again) {
				t.Fatalf("%s: changing the clone changed the original", body)
			}
		}
	}
}
