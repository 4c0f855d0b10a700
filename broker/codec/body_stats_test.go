package codec

import (
	"reflect"
	"testing"
)

func TestTopicStatsTableShape(t *testing.T) {
	tab := TopicStatsTable{Offsets: []QueueTopicOffset{
		{Queue: MessageQueue{BrokerName: "b", QueueID: 1, Topic: "T"}, TopicOffset: TopicOffset{LastUpdateTimestamp: 7, MaxOffset: 5, MinOffset: 1}},
		{Queue: MessageQueue{BrokerName: "b", QueueID: 0, Topic: "T"}, TopicOffset: TopicOffset{MaxOffset: 3}},
	}}
	want := `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":0,"maxOffset":3,"minOffset":0},` +
		`{"brokerName":"b","queueId":1,"topic":"T"}:{"lastUpdateTimestamp":7,"maxOffset":5,"minOffset":1}}}`
	if got := string(tab.Encode()); got != want {
		t.Fatalf("encode:\n got %s\nwant %s", got, want)
	}
	back, err := DecodeTopicStatsTable(tab.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.Offsets[0].Queue.QueueID != 0 || back.Offsets[1].MaxOffset != 5 || len(back.Offsets) != 2 {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestConsumeStatsShape(t *testing.T) {
	s := ConsumeStats{ConsumeTps: 1.5, Offsets: []QueueOffsetWrapper{
		{Queue: MessageQueue{BrokerName: "b", QueueID: 0, Topic: "T"}, OffsetWrapper: OffsetWrapper{BrokerOffset: 10, ConsumerOffset: 4, LastTimestamp: 99}},
	}}
	want := `{"consumeTps":1.5,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":10,"consumerOffset":4,"lastTimestamp":99}}}`
	if got := string(s.Encode()); got != want {
		t.Fatalf("encode:\n got %s\nwant %s", got, want)
	}
	back, err := DecodeConsumeStats(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip: %+v, want %+v", back, s)
	}
}

// The decoders read what Java and other writers send, and refuse what is not a table.
func TestDecodeStatsBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		queues     int
		ok         bool
	}{
		{"empty table", `{"offsetTable":{}}`, 0, true},
		{"spaces and unknown members", ` { "x" : [1,{"a":"}"}] , "offsetTable" : { {"topic":"T","brokerName":"b","queueId":2} : {"maxOffset":1,"extra":true} } } `, 1, true},
		{"string keys holding the queue", `{"offsetTable":{"{\"topic\":\"T\",\"brokerName\":\"b\",\"queueId\":0}":{"maxOffset":1}}}`, 1, true},
		{"null table", `{"offsetTable":null}`, 0, true},
		{"no table", `{}`, 0, true},
		{"not an object", `[]`, 0, false},
		{"truncated", `{"offsetTable":{{"topic":"T"}:{"maxOffset":1}`, 0, false},
		{"key not a queue", `{"offsetTable":{"T":{"maxOffset":1}}}`, 0, false},
		{"value of the wrong type", `{"offsetTable":{{"topic":"T"}:{"maxOffset":"x"}}}`, 0, false},
		{"trailing bytes", `{"offsetTable":{}}x`, 0, false},
		{"unterminated string", `{"offsetTable`, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := DecodeTopicStatsTable([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if len(tab.Offsets) != tc.queues {
				t.Fatalf("%d queues, want %d", len(tab.Offsets), tc.queues)
			}
		})
	}
}

func TestConfigProperties(t *testing.T) {
	in := "# comment\n\nbrokerName=broker-a\nfileReservedTime = 72\nflag\nk:v=w\nbrokerName=b\n"
	got := DecodeConfigProperties([]byte(in))
	want := []ConfigProperty{{"brokerName", "b"}, {"fileReservedTime", "72"}, {"flag", ""}, {"k", "v=w"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode: %q, want %q", got, want)
	}
	if s := string(EncodeConfigProperties(want[:2])); s != "brokerName=b\nfileReservedTime=72\n" {
		t.Fatalf("encode: %q", s)
	}
}

func TestSubscriptionGroupDefaults(t *testing.T) {
	c, err := DecodeSubscriptionGroup([]byte(`{"groupName":"g","retryMaxTimes":3}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSubscriptionGroup("g")
	want.RetryMaxTimes = 3
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if _, err := DecodeSubscriptionGroup([]byte(`{"retryMaxTimes":"x"}`)); err == nil {
		t.Fatal("a malformed body decoded")
	}
}

func TestDeleteSubscriptionGroupHeaderSpellings(t *testing.T) {
	for _, key := range []string{"cleanOffset", "removeOffset"} {
		h, err := DecodeHeader[DeleteSubscriptionGroupHeader](NewRequest(ReqDeleteSubscriptionGroup, map[string]string{"groupName": "g", key: "true"}, nil))
		if err != nil || !h.CleanOffset || h.GroupName != "g" {
			t.Fatalf("%s: %+v %v", key, h, err)
		}
	}
	if _, err := DecodeHeader[DeleteSubscriptionGroupHeader](NewRequest(ReqDeleteSubscriptionGroup, nil, nil)); err == nil {
		t.Fatal("a header without groupName decoded")
	}
}

// FuzzStatsBodies: the decoders of bodies adminclient reads from brokers never panic, and
// what they decode re-encodes to a body that decodes to the same.
func FuzzStatsBodies(f *testing.F) {
	f.Add([]byte(`{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"maxOffset":3}}}`))
	f.Add([]byte(`{"consumeTps":1.5,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":10}}}`))
	f.Add([]byte(`{"table":{"a":"b"}}`))
	f.Add([]byte("a=b\n#c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if tab, err := DecodeTopicStatsTable(b); err == nil {
			again, err := DecodeTopicStatsTable(tab.Encode())
			if err != nil || !reflect.DeepEqual(again.Offsets, tab.Offsets) {
				t.Fatalf("topic stats re-encode: %v %+v %+v", err, again, tab)
			}
		}
		if s, err := DecodeConsumeStats(b); err == nil {
			if _, err := DecodeConsumeStats(s.Encode()); err != nil {
				t.Fatalf("consume stats re-encode: %v", err)
			}
		}
		DecodeKVTable(b)
		DecodeSubscriptionGroup(b)
		DecodeConfigProperties(b)
	})
}
