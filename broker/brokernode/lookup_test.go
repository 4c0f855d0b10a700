package brokernode

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/simdisk"
)

func queryExt(topic, key string) map[string]string {
	return map[string]string{"topic": topic, "key": key, "maxNum": "32", "beginTimestamp": "0",
		"endTimestamp": strconv.FormatInt(1<<62, 10)}
}

// Messages are found by their offset message id (VIEW_MESSAGE_BY_ID with the physical offset
// parsed out of the send response's msgId) and by key (QUERY_MESSAGE on UNIQ_KEY or a word of
// KEYS), before and after a crash and restart.
func TestLookupByIDAndKey(t *testing.T) {
	d := simdisk.New()
	h := startBroker(t, testConfig(), d)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	var ids []string
	for i := range 6 {
		op := h.send(p, "Orders", i%2, "body-"+strconv.Itoa(i), map[string]string{
			codec.PropUniqKey: "UNIQ" + strconv.Itoa(i), codec.PropKeys: "order-" + strconv.Itoa(i%3) + " all"})
		h.syncAll()
		ids = append(ids, h.mustAnswer(p, op).Ext("msgId"))
	}
	admin := h.env.accept(h.b, "127.0.9.5:50000")
	check := func(when string) {
		t.Helper()
		for i, id := range ids {
			_, off, err := codec.ParseOffsetMsgID(id)
			if err != nil {
				t.Fatalf("%s: msgId %q: %v", when, id, err)
			}
			resp := h.mustAnswer(admin, h.request(admin, codec.ReqViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil))
			msgs := decodeBody(t, resp.Body)
			if resp.Code != codec.Success || len(msgs) != 1 || string(msgs[0].Body) != "body-"+strconv.Itoa(i) || msgs[0].PhysicalOffset != off {
				t.Fatalf("%s: view %s: code %d, %d messages", when, id, resp.Code, len(msgs))
			}
		}
		resp := h.mustAnswer(admin, h.request(admin, codec.ReqQueryMessage, queryExt("Orders", "order-1"), nil))
		if resp.Code != codec.Success || resp.Ext("indexLastUpdatePhyoffset") == "" || resp.Ext("indexLastUpdateTimestamp") == "" {
			t.Fatalf("%s: query order-1: code %d ext %v", when, resp.Code, resp.ExtFields)
		}
		var bodies []string
		for _, m := range decodeBody(t, resp.Body) {
			bodies = append(bodies, string(m.Body))
		}
		if len(bodies) != 2 || bodies[0] != "body-1" || bodies[1] != "body-4" {
			t.Fatalf("%s: query order-1 found %v, want body-1 and body-4", when, bodies)
		}
		resp = h.mustAnswer(admin, h.request(admin, codec.ReqQueryMessage, queryExt("Orders", "UNIQ3"), nil))
		if msgs := decodeBody(t, resp.Body); resp.Code != codec.Success || len(msgs) != 1 || string(msgs[0].Body) != "body-3" {
			t.Fatalf("%s: query by UNIQ_KEY: code %d, %d messages", when, resp.Code, len(msgs))
		}
		q := queryExt("Orders", "all")
		q["maxNum"] = "2"
		resp = h.mustAnswer(admin, h.request(admin, codec.ReqQueryMessage, q, nil))
		if msgs := decodeBody(t, resp.Body); len(msgs) != 2 || string(msgs[1].Body) != "body-5" {
			t.Fatalf("%s: query with maxNum 2 returned %d messages", when, len(msgs))
		}
	}
	check("before restart")
	d.Crash(rand.New(rand.NewPCG(1, 1)))
	h = startBroker(t, testConfig(), d)
	admin = h.env.accept(h.b, "127.0.9.5:50000")
	check("after a crash and restart")

	for _, c := range []struct {
		name string
		code int16
		ext  map[string]string
		want int16
	}{
		{"unknown key", codec.ReqQueryMessage, queryExt("Orders", "nope"), codec.QueryNotFound},
		{"key of another topic", codec.ReqQueryMessage, queryExt("Other", "order-1"), codec.QueryNotFound},
		{"no key", codec.ReqQueryMessage, queryExt("Orders", ""), codec.SystemError},
		{"bad topic", codec.ReqQueryMessage, queryExt("../x", "k"), codec.SystemError},
		{"offset beyond the log", codec.ReqViewMessageByID, map[string]string{"offset": "999"}, codec.SystemError},
		{"offset 0", codec.ReqViewMessageByID, map[string]string{"offset": "0"}, codec.SystemError},
		{"no offset", codec.ReqViewMessageByID, nil, codec.SystemError},
		{"negative offset", codec.ReqViewMessageByID, map[string]string{"offset": "-1"}, codec.SystemError},
	} {
		resp := h.mustAnswer(admin, h.request(admin, c.code, c.ext, nil))
		if resp.Code != c.want || resp.Remark == "" || len(resp.Body) != 0 {
			t.Errorf("%s: code %d remark %q body %d bytes, want %d with a remark", c.name, resp.Code, resp.Remark, len(resp.Body), c.want)
		}
	}
}

// After a topic is deleted its messages are found neither by id nor by key.
func TestLookupOfDeletedTopic(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	op := h.send(p, "Gone", 0, "old", map[string]string{codec.PropKeys: "k"})
	h.syncAll()
	_, off, _ := codec.ParseOffsetMsgID(h.mustAnswer(p, op).Ext("msgId"))
	h.mustAnswer(p, h.request(p, codec.ReqDeleteTopicInBroker, map[string]string{"topic": "Gone"}, nil))
	if resp := h.mustAnswer(p, h.request(p, codec.ReqViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)); resp.Code != codec.SystemError {
		t.Errorf("view of a deleted topic's message: code %d, want 1", resp.Code)
	}
	if resp := h.mustAnswer(p, h.request(p, codec.ReqQueryMessage, queryExt("Gone", "k"), nil)); resp.Code != codec.QueryNotFound {
		t.Errorf("query of a deleted topic's key: code %d, want 22", resp.Code)
	}
}
