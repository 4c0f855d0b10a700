package brokernode

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

func TestDecodeLockBatch(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		want    lockBatchRequest
		wantErr string
	}{
		{
			name: "as the Go client writes it",
			body: `{"consumerGroup":"cg","clientId":"10.0.0.1@42","mqSet":[{"topic":"T","brokerName":"broker-a","queueId":1}]}`,
			want: lockBatchRequest{ConsumerGroup: "cg", ClientID: "10.0.0.1@42", MQSet: []lockMQ{{"T", "broker-a", 1}}},
		},
		{
			name: "queues sorted, duplicates merged, unknown keys ignored",
			body: `{"consumerGroup":"cg","clientId":"c","extra":1,"mqSet":[{"topic":"T","brokerName":"b","queueId":2},
				{"topic":"A","brokerName":"b","queueId":0},{"topic":"T","brokerName":"b","queueId":2},{"topic":"T","brokerName":"a","queueId":3}]}`,
			want: lockBatchRequest{ConsumerGroup: "cg", ClientID: "c", MQSet: []lockMQ{{"A", "b", 0}, {"T", "a", 3}, {"T", "b", 2}}},
		},
		{
			name: "an empty or missing set locks nothing",
			body: `{"consumerGroup":"cg","clientId":"c"}`,
			want: lockBatchRequest{ConsumerGroup: "cg", ClientID: "c"},
		},
		{name: "not JSON", body: `lock please`, wantErr: "not a lock batch"},
		{name: "empty body", body: ``, wantErr: "not a lock batch"},
		{name: "queueId as a string", body: `{"consumerGroup":"cg","clientId":"c","mqSet":[{"topic":"T","queueId":"1"}]}`, wantErr: "not a lock batch"},
		{name: "no group", body: `{"clientId":"c","mqSet":[]}`, wantErr: "consumerGroup is required"},
		{name: "no client", body: `{"consumerGroup":"cg","mqSet":[]}`, wantErr: "clientId is required"},
		{name: "bad topic", body: `{"consumerGroup":"cg","clientId":"c","mqSet":[{"topic":"a b","queueId":0}]}`, wantErr: "illegal character"},
		{name: "negative queue", body: `{"consumerGroup":"cg","clientId":"c","mqSet":[{"topic":"T","queueId":-1}]}`, wantErr: "out of range"},
		{name: "queue past the bound", body: `{"consumerGroup":"cg","clientId":"c","mqSet":[{"topic":"T","queueId":100000}]}`, wantErr: "out of range"},
		{name: "queueId beyond int32", body: `{"consumerGroup":"cg","clientId":"c","mqSet":[{"topic":"T","queueId":4294967296}]}`, wantErr: "not a lock batch"},
		{name: "too many queues", body: `{"consumerGroup":"cg","clientId":"c","mqSet":[` +
			strings.TrimSuffix(strings.Repeat(`{"topic":"T","queueId":0},`, maxLockBatch+1), ",") + `]}`, wantErr: "at most"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeLockBatch([]byte(tc.body))
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

// FuzzDecodeLockBatch: the decoder never panics; what it accepts is valid, sorted, without
// duplicates, within bounds, and survives a round trip through the broker's own encoding.
func FuzzDecodeLockBatch(f *testing.F) {
	f.Add([]byte(`{"consumerGroup":"cg","clientId":"10.0.0.1@42","mqSet":[{"topic":"T","brokerName":"broker-a","queueId":1}]}`))
	f.Add([]byte(`{"consumerGroup":"cg","clientId":"c","mqSet":[{"topic":"T","brokerName":"b","queueId":2},{"topic":"T","brokerName":"b","queueId":2}]}`))
	f.Add([]byte(`{"consumerGroup":"cg","clientId":"c","mqSet":null}`))
	f.Add([]byte(`{"consumerGroup":"cg","clientId":"c","mqSet":[{"topic":"%RETRY%cg","queueId":-1}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeLockBatch(body)
		if err != nil {
			return
		}
		if req.ConsumerGroup == "" || req.ClientID == "" || len(req.MQSet) > maxLockBatch {
			t.Fatalf("accepted %+v", req)
		}
		for i, mq := range req.MQSet {
			if validTopic(mq.Topic) != nil || mq.QueueID < 0 {
				t.Fatalf("accepted queue %+v", mq)
			}
			if i > 0 && compareLockMQ(req.MQSet[i-1], mq) >= 0 {
				t.Fatalf("queues not strictly sorted: %+v then %+v", req.MQSet[i-1], mq)
			}
		}
		again, err := decodeLockBatch(mustJSON(req))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", req, err)
		}
		if diff := cmp.Diff(req, again); diff != "" && !(len(req.MQSet) == 0 && len(again.MQSet) == 0) {
			t.Fatalf("round trip changed the request (-first +second):\n%s", diff)
		}
	})
}

func lockBody(group, client string, queues ...int32) []byte {
	mqs := make([]lockMQ, len(queues))
	for i, q := range queues {
		mqs[i] = lockMQ{Topic: "Orders", BrokerName: "broker-a", QueueID: q}
	}
	return mustJSON(lockBatchRequest{ConsumerGroup: group, ClientID: client, MQSet: mqs})
}

// lock sends LOCK_BATCH_MQ and returns the queue ids granted.
func lock(t *testing.T, h *brokerHarness, c node.ConnID, group, client string, queues ...int32) []int32 {
	t.Helper()
	resp := h.mustAnswer(c, h.request(c, codec.ReqLockBatchMQ, nil, lockBody(group, client, queues...)))
	var body struct {
		LockOKMQSet []lockMQ `json:"lockOKMQSet"`
	}
	if resp.Code != codec.Success || json.Unmarshal(resp.Body, &body) != nil || body.LockOKMQSet == nil {
		t.Fatalf("lock: code %d (%s) body %q", resp.Code, resp.Remark, resp.Body)
	}
	got := []int32{}
	for _, mq := range body.LockOKMQSet {
		if mq.Topic != "Orders" || mq.BrokerName != "broker-a" {
			t.Fatalf("lock answer names %+v: the client matches queues by topic, broker name and id", mq)
		}
		got = append(got, mq.QueueID)
	}
	return got
}

func unlock(t *testing.T, h *brokerHarness, c node.ConnID, group, client string, queues ...int32) {
	t.Helper()
	if resp := h.mustAnswer(c, h.request(c, codec.ReqUnlockBatchMQ, nil, lockBody(group, client, queues...))); resp.Code != codec.Success {
		t.Fatalf("unlock: code %d (%s)", resp.Code, resp.Remark)
	}
}

// Queue locks as orderly consumers use them: a free queue goes to whoever asks, a held one
// stays with its holder (who may renew it) until it is unlocked or its lease runs out;
// unlocking releases only the caller's own locks; groups do not share locks.
func TestQueueLocks(t *testing.T) {
	cfg := testConfig()
	cfg.LockLease = 60 * time.Second
	h := startBroker(t, cfg, nil)
	c1 := h.env.accept(h.b, "127.0.9.8:50001")
	c2 := h.env.accept(h.b, "127.0.9.9:50002")

	if got := lock(t, h, c1, "cg", "A", 0, 1); !cmp.Equal(got, []int32{0, 1}) {
		t.Fatalf("A locking free queues 0,1 got %v", got)
	}
	if got := lock(t, h, c2, "cg", "B", 1, 2); !cmp.Equal(got, []int32{2}) {
		t.Fatalf("B asking for 1 (A's) and 2 (free) got %v, want [2]", got)
	}
	if got := lock(t, h, c2, "other-group", "B", 0, 1); !cmp.Equal(got, []int32{0, 1}) {
		t.Fatalf("B in another group got %v, want both (locks are per group)", got)
	}
	if got := lock(t, h, c1, "cg", "A", 1, 0); !cmp.Equal(got, []int32{0, 1}) {
		t.Fatalf("A re-locking its own queues got %v", got)
	}

	// B unlocking A's queue changes nothing; A's lease is renewed at 40 s, so at 70 s B still
	// cannot take it; at 101 s (61 s after the renewal) it can.
	unlock(t, h, c2, "cg", "B", 0, 1)
	if got := lock(t, h, c2, "cg", "B", 0); len(got) != 0 {
		t.Fatalf("B took A's queue 0 after unlocking it itself: %v", got)
	}
	h.env.advance(h.b, 40*time.Second)
	lock(t, h, c1, "cg", "A", 0)
	h.env.advance(h.b, 30*time.Second)
	if got := lock(t, h, c2, "cg", "B", 0, 1); !cmp.Equal(got, []int32{1}) {
		t.Fatalf("at 70 s B got %v, want [1] (queue 0 was renewed at 40 s, queue 1 expired at 60 s)", got)
	}
	h.env.advance(h.b, 31*time.Second)
	if got := lock(t, h, c2, "cg", "B", 0); !cmp.Equal(got, []int32{0}) {
		t.Fatalf("B could not take queue 0 61 s after A last renewed it: %v", got)
	}
	if got := lock(t, h, c1, "cg", "A", 0); len(got) != 0 {
		t.Fatalf("A got queue 0 back while B holds it: %v", got)
	}

	// A's own unlock frees its queue at once.
	unlock(t, h, c2, "cg", "B", 0, 1, 2)
	if got := lock(t, h, c1, "cg", "A", 0, 1, 2); !cmp.Equal(got, []int32{0, 1, 2}) {
		t.Fatalf("after B unlocked everything A got %v", got)
	}

	// A malformed body is refused with a reason, and locks nothing.
	resp := h.mustAnswer(c1, h.request(c1, codec.ReqLockBatchMQ, nil, []byte(`{"clientId":"A"}`)))
	if resp.Code != codec.SystemError || !strings.Contains(resp.Remark, "consumerGroup") {
		t.Fatalf("lock without a group: code %d remark %q", resp.Code, resp.Remark)
	}
}

// Locks nobody renews are dropped by the periodic scan, so the table does not grow forever.
func TestQueueLocksExpire(t *testing.T) {
	cfg := testConfig()
	h := startBroker(t, cfg, nil)
	c := h.env.accept(h.b, "127.0.9.8:50001")
	lock(t, h, c, "cg", "A", 0, 1, 2, 3)
	if n := len(h.b.locks.byGroup["cg"]); n != 4 {
		t.Fatalf("%d locks held, want 4", n)
	}
	h.env.advance(h.b, cfg.LockLease+cfg.ClientExpiry/4+time.Second)
	if len(h.b.locks.byGroup) != 0 {
		t.Fatalf("expired locks still held: %v", h.b.locks.byGroup)
	}
}
