package brokernode

import (
	"encoding/json"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// registeredTopics is the topic table of the broker's last registration with the name server.
func (h *brokerHarness) registeredTopics() map[string]route.TopicConfig {
	h.t.Helper()
	frames := h.framesTo(h.nameServerConn())
	for i := len(frames) - 1; i >= 0; i-- {
		if frames[i].Code == codec.ReqRegisterBroker {
			var body route.RegisterBody
			if err := json.Unmarshal(frames[i].Body, &body); err != nil {
				h.t.Fatalf("registration body %q: %v", frames[i].Body, err)
			}
			return body.TopicConfigTable
		}
	}
	h.t.Fatal("the broker never registered")
	return nil
}

// The trace topic exists from the start with Java's one queue and is registered, so a traced
// client (which looks its route up and has no TBW102 fallback for it) can send trace records;
// they are indexed by their keys, the traced messages' ids, as 'msg trace' looks them up.
// With no trace topic configured (and auto-create off) there is none.
func TestTraceTopicCreatedAtStart(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	tc, ok := h.registeredTopics()[DefaultTraceTopic]
	if !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 || tc.Perm != route.PermRead|route.PermWrite {
		t.Fatalf("registered %s as %+v (present %v), want 1/1 queues, perm 6", DefaultTraceTopic, tc, ok)
	}
	p := h.env.accept(h.b, "127.0.9.7:50000")
	ext := sendExt(DefaultTraceTopic, "0", map[string]string{codec.PropKeys: "MSGID1 order-7"})
	ext["producerGroup"] = "_INNER_TRACE_PRODUCER"
	op := h.request(p, codec.ReqSendMessage, ext, []byte("Pub\x011700000000000\x02"))
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("send to the trace topic: code %d %s", resp.Code, resp.Remark)
	}
	q := h.mustAnswer(p, h.request(p, codec.ReqQueryMessage, map[string]string{"topic": DefaultTraceTopic, "key": "MSGID1",
		"maxNum": "64", "beginTimestamp": "0", "endTimestamp": "9223372036854775807"}, nil))
	if q.Code != codec.Success {
		t.Fatalf("query the trace topic by the traced message's id: code %d %s", q.Code, q.Remark)
	}
	m, _, err := codec.DecodeRecord(q.Body)
	if err != nil || string(m.Body) != "Pub\x011700000000000\x02" {
		t.Fatalf("query answered %v %q", err, q.Body)
	}

	cfg := testConfig()
	cfg.TraceTopic, cfg.AutoCreateTopic = "", false
	h2 := startBroker(t, cfg, nil)
	if tc, ok := h2.registeredTopics()[DefaultTraceTopic]; ok {
		t.Errorf("no trace topic configured, yet %s is registered: %+v", DefaultTraceTopic, tc)
	}
	p2 := h2.env.accept(h2.b, "127.0.9.7:50000")
	if resp := h2.mustAnswer(p2, h2.send(p2, DefaultTraceTopic, 0, "x", nil)); resp.Code != codec.TopicNotExist {
		t.Errorf("send to the trace topic when none is configured: code %d, want 17", resp.Code)
	}
}
