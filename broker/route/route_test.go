package route

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sluiceRegisterBody is a REGISTER_BROKER body as a Sluice broker sends it.
const sluiceRegisterBody = `{"topicConfigTable":{"Orders":{"topicName":"Orders","readQueueNums":4,"writeQueueNums":4,"perm":6},` +
	`"TBW102":{"topicName":"TBW102","readQueueNums":8,"writeQueueNums":8,"perm":7}}}`

func TestDecodeRegisterBody(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		want    RegisterBody
		wantErr string
	}{
		{name: "as a Sluice broker sends it", body: sluiceRegisterBody, want: RegisterBody{TopicConfigTable: map[string]TopicConfig{
			"Orders": {TopicName: "Orders", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6},
			"TBW102": {TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7},
		}}},
		{name: "empty body: no topics", body: ``, want: RegisterBody{TopicConfigTable: map[string]TopicConfig{}}},
		{name: "null table: no topics", body: `{"topicConfigTable":null}`, want: RegisterBody{TopicConfigTable: map[string]TopicConfig{}}},
		{name: "unknown keys ignored", body: `{"filterServerList":[],"topicConfigTable":{"A":{"topicName":"A","readQueueNums":1,"order":false}}}`,
			want: RegisterBody{TopicConfigTable: map[string]TopicConfig{"A": {TopicName: "A", ReadQueueNums: 1}}}},
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

// FuzzDecodeRegisterBody: the decoder never panics, always returns a usable table when it
// accepts, and what it accepts survives a round trip through JSON unchanged.
func FuzzDecodeRegisterBody(f *testing.F) {
	f.Add([]byte(sluiceRegisterBody))
	f.Add([]byte(``))
	f.Add([]byte(`{"topicConfigTable":{"":{"topicName":"other","readQueueNums":-1,"writeQueueNums":2147483647,"perm":255}}}`))
	f.Add([]byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4}},"dataVersion":{"timestamp":1,"counter":2}},"filterServerList":[]}`))
	f.Add([]byte(`null`))
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
