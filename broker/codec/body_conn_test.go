package codec

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestEncodeResetOffsetBodyWritesFastjsonKeys(t *testing.T) {
	got := string(EncodeResetOffsetBody([]QueueOffset{
		{MessageQueue{"broker-a", 1, "T"}, 7},
		{MessageQueue{"broker-a", 0, "T"}, 5},
	}))
	want := `{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:5,{"brokerName":"broker-a","queueId":1,"topic":"T"}:7}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(EncodeResetOffsetBody(nil)); got != `{"offsetTable":{}}` {
		t.Fatalf("empty table: %s", got)
	}
}

func TestDecodeResetOffsetBody(t *testing.T) {
	a0 := QueueOffset{MessageQueue{"broker-a", 0, "T"}, 5}
	a1 := QueueOffset{MessageQueue{"broker-a", 1, "T"}, 7}
	for _, tc := range []struct {
		name, body string
		want       []QueueOffset
		bad        bool
	}{
		{"fastjson", `{"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:7,{"brokerName":"broker-a","queueId":0,"topic":"T"}:5}}`, []QueueOffset{a0, a1}, false},
		{"fastjson spaced", ` { "offsetTable" : { { "topic":"T","queueId":0,"brokerName":"broker-a" } : 5 } } `, []QueueOffset{a0}, false},
		{"string keys", `{"offsetTable":{"{\"brokerName\":\"broker-a\",\"queueId\":0,\"topic\":\"T\"}":5}}`, []QueueOffset{a0}, false},
		{"gson pairs", `{"offsetTable":[[{"brokerName":"broker-a","queueId":1,"topic":"T"},7],[{"brokerName":"broker-a","queueId":0,"topic":"T"},5]]}`, []QueueOffset{a0, a1}, false},
		{"other fields", `{"x":{"a":[1,"}"]},"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:5},"y":null}`, []QueueOffset{a0}, false},
		{"empty", `{"offsetTable":{}}`, nil, false},
		{"null table", `{"offsetTable":null}`, nil, false},
		{"no table", `{}`, nil, false},
		{"negative offset", `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:-1}}`, []QueueOffset{{MessageQueue{"b", 0, "T"}, -1}}, false},
		{"not an object", `[]`, nil, true},
		{"truncated", `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5`, nil, true},
		{"bad offset", `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:"x"}}`, nil, true},
		{"bad queue", `{"offsetTable":{{"brokerName":1}:5}}`, nil, true},
		{"missing colon", `{"offsetTable" {}}`, nil, true},
		{"table a number", `{"offsetTable":5}`, nil, true},
		{"unterminated string", `{"offsetTable":{"abc:5}}`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeResetOffsetBody([]byte(tc.body))
			if tc.bad {
				if err == nil {
					t.Fatalf("decoded %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewSubscriptionDataDerivesTags(t *testing.T) {
	for _, tc := range []struct {
		typ, expr string
		tags      []string
		codes     []int32
	}{
		{"TAG", "*", []string{}, []int32{}},
		{"", "", []string{}, []int32{}},
		{"TAG", "TagA || TagB||TagA", []string{"TagA", "TagB"}, []int32{2598919, 2598920}},
		{"SQL92", "a > 1", []string{}, []int32{}},
	} {
		sd := NewSubscriptionData("T", tc.typ, tc.expr, 3)
		if !slices.Equal(sd.TagsSet, tc.tags) || !slices.Equal(sd.CodeSet, tc.codes) || sd.SubVersion != 3 || sd.Topic != "T" {
			t.Errorf("%s %q: %+v", tc.typ, tc.expr, sd)
		}
	}
}

func TestConnectionBodiesInJavaFieldOrder(t *testing.T) {
	cc := ConsumerConnection{
		ConnectionSet:     []Connection{{ClientAddr: "127.0.0.1:5000", ClientID: "c1", Language: "GO", Version: 317}},
		ConsumeFromWhere:  "CONSUME_FROM_LAST_OFFSET",
		ConsumeType:       "CONSUME_PASSIVELY",
		MessageModel:      "CLUSTERING",
		SubscriptionTable: map[string]SubscriptionData{"T": NewSubscriptionData("T", "TAG", "*", 1)},
	}
	b, err := json.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"connectionSet":[{"clientAddr":"127.0.0.1:5000","clientId":"c1","language":"GO","version":317}],` +
		`"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING",` +
		`"subscriptionTable":{"T":{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	ri := BrokerReplicasInfo{ReplicasInfoTable: map[string]ReplicasInfo{"broker-a": {
		InSyncReplicas: []ReplicaIdentity{{Alive: true, BrokerAddress: "a:1", BrokerID: 1, BrokerName: "broker-a"}},
		MasterAddress:  "a:1", MasterBrokerID: 1, MasterEpoch: 2, NotInSyncReplicas: []ReplicaIdentity{}, SyncStateSetEpoch: 3,
	}}}
	b, _ = json.Marshal(ri)
	want = `{"replicasInfoTable":{"broker-a":{"inSyncReplicas":[{"alive":true,"brokerAddress":"a:1","brokerId":1,"brokerName":"broker-a"}],` +
		`"masterAddress":"a:1","masterBrokerId":1,"masterEpoch":2,"notInSyncReplicas":[],"syncStateSetEpoch":3}}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestResetOffsetHeaderRoundTrip(t *testing.T) {
	in := ResetOffsetHeader{Group: "g", Topic: "T", TimestampMs: 1700000000000, IsForce: true, QueueID: -1, Offset: -1}
	ext := EncodeHeader(&in)
	if _, ok := ext["offset"]; ok {
		t.Errorf("offset -1 written: %v", ext)
	}
	got, err := DecodeHeader[ResetOffsetHeader](&Command{ExtFields: ext})
	if err != nil || got != in {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, in)
	}
	push := EncodeHeader(&ResetOffsetHeader{Group: "g", Topic: "T", TimestampMs: 5, Push: true})
	if len(push) != 3 || push["timestamp"] != "5" || push["group"] != "g" || push["topic"] != "T" {
		t.Errorf("push header %v: want topic, group and timestamp only", push)
	}
	if _, err := DecodeHeader[ResetOffsetHeader](&Command{ExtFields: map[string]string{"group": "g", "topic": "T"}}); err == nil {
		t.Error("a header without timestamp decoded")
	}
}

// FuzzDecodeResetOffsetBody: any bytes decode or fail without panicking, and whatever
// decodes re-encodes to a body that decodes to the same table.
func FuzzDecodeResetOffsetBody(f *testing.F) {
	f.Add([]byte(`{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:5}}`))
	f.Add([]byte(`{"offsetTable":[[{"brokerName":"b","queueId":1,"topic":"T"},7]]}`))
	f.Add([]byte(`{"offsetTable":{"{\"brokerName\":\"b\"}":1},"x":[1,{"y":"}"}]}`))
	f.Add([]byte(`{"offsetTable":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		table, err := DecodeResetOffsetBody(b)
		if err != nil {
			return
		}
		again, err := DecodeResetOffsetBody(EncodeResetOffsetBody(table))
		if err != nil {
			t.Fatalf("re-encoded table does not decode: %v", err)
		}
		if !slices.Equal(again, table) {
			t.Fatalf("round trip: %v, want %v", again, table)
		}
	})
}
