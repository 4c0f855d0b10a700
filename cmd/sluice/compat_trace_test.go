package main

// Message traces: the official Go client's producer and push consumer created WithTrace send
// their trace records (Pub; SubBefore and SubAfter) to RMQ_SYS_TRACE_TOPIC, which the broker
// creates at start so its route resolves; 'sluice admin msg trace', run as a real process,
// finds them by the message id (and through a key of the message) and shows them decoded.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// traceLine is one row of the 'sluice admin msg trace' table.
type traceLine struct {
	typ, group, clientHost, at, cost, status string
	details                                  map[string]string
}

// traceLines parses the table rows of a 'sluice admin msg trace' output.
func traceLines(out string) []traceLine {
	var rows []traceLine
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || (f[0] != "Pub" && f[0] != "SubBefore" && f[0] != "SubAfter" && f[0] != "EndTransaction") {
			continue
		}
		r := traceLine{typ: f[0], group: f[1], clientHost: f[2], at: f[3], cost: f[4], status: f[5], details: map[string]string{}}
		for _, d := range f[6:] {
			if k, v, ok := strings.Cut(d, "="); ok {
				r.details[k] = v
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func TestCompatMessageTrace(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 2)
	// The trace topic exists from the start, with Java's one queue.
	c.waitRouted(t, "RMQ_SYS_TRACE_TOPIC", 1)

	pgroup, cgroup := uniqueName(t, "pg"), uniqueName(t, "cg")
	traceCfg := func(group string) *primitive.TraceConfig {
		return &primitive.TraceConfig{GroupName: group, Access: primitive.Local, NamesrvAddrs: []string{c.NameServer}}
	}
	p := c.newProducer(t, producer.WithGroupName(pgroup), producer.WithTrace(traceCfg(pgroup)))
	type sent struct {
		msgID, offsetID, keys, tags string
	}
	var msgs []sent
	for i := range 3 {
		m := userMessage(topic, i) // keys key-<i> and all
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		msgs = append(msgs, sent{res.MsgID, res.OffsetMsgID, m.GetKeys(), m.GetTags()})
	}

	in := newInbox()
	pc := c.newPushConsumer(t, cgroup, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithTrace(traceCfg(cgroup)))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, in.consume); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "3 messages consumed", func() bool { return in.distinct() == 3 })

	// check runs 'sluice admin msg trace args' until it shows a Pub, a SubBefore and a
	// SubAfter of msg (the clients send traces asynchronously), then checks them.
	check := func(msg sent, args ...string) {
		t.Helper()
		var out string
		var rows []traceLine
		waitFor(t, 30*time.Second, "the trace of "+msg.msgID, func() bool {
			out, _ = c.runAdmin(t, append([]string{"msg", "trace"}, args...)...)
			rows = traceLines(out)
			return len(rows) >= 3
		})
		if !strings.HasPrefix(out, "3 trace record(s) of message "+msg.msgID+" in RMQ_SYS_TRACE_TOPIC") {
			t.Errorf("msg trace %v: header wrong:\n%s", args, out)
		}
		if len(rows) != 3 {
			t.Fatalf("msg trace %v: %d rows, want Pub, SubBefore, SubAfter:\n%s", args, len(rows), out)
		}
		pub, before, after := rows[0], rows[1], rows[2]
		if pub.typ != "Pub" || before.typ != "SubBefore" || after.typ != "SubAfter" {
			t.Fatalf("msg trace %v: rows %s %s %s, want Pub SubBefore SubAfter:\n%s", args, pub.typ, before.typ, after.typ, out)
		}
		want := map[string]string{"topic": topic, "tags": msg.tags, "offsetMsgId": msg.offsetID, "storeHost": c.Broker,
			"msgType": "Normal_Msg", "bodyLength": "6"}
		for k, v := range want {
			if pub.details[k] != v {
				t.Errorf("msg trace %v: Pub %s = %q, want %q:\n%s", args, k, pub.details[k], v, out)
			}
		}
		// KEYS are space-separated, so the keys field shows only its first word in fields.
		if !strings.Contains(out, "keys="+msg.keys) {
			t.Errorf("msg trace %v: Pub does not show keys %q:\n%s", args, msg.keys, out)
		}
		if pub.group != pgroup || pub.status != "success" || pub.clientHost == "-" || pub.at == "-" {
			t.Errorf("msg trace %v: Pub row %+v, want group %s, success, a client host and a time", args, pub, pgroup)
		}
		if before.group != cgroup || before.details["retryTimes"] != "0" || before.details["requestId"] == "" || before.at == "-" {
			t.Errorf("msg trace %v: SubBefore row %+v, want group %s, retryTimes 0, a request id and a time", args, before, cgroup)
		}
		if after.group != cgroup || after.status != "success" || after.details["consumeResult"] != "SUCCESS" ||
			after.details["requestId"] != before.details["requestId"] {
			t.Errorf("msg trace %v: SubAfter row %+v, want group %s, success, SUCCESS, SubBefore's request id", args, after, cgroup)
		}
	}
	check(msgs[0], msgs[0].msgID)
	// A key every message carries: the three traces, one after the other.
	if out, code := c.runAdmin(t, "msg", "trace", "--topic", topic, "all"); code != 0 ||
		strings.Count(out, "3 trace record(s) of message") != 3 || len(traceLines(out)) != 9 {
		t.Errorf("msg trace --topic %s all exited %d, want the three traces:\n%s", topic, code, out)
	}
	check(msgs[1], "--topic", topic, "key-1") // through a key of the message
	check(msgs[2], msgs[2].msgID, "--topic", topic)

	// An id nothing traced: exit 1, no rows.
	if out, code := c.runAdmin(t, "msg", "trace", "0A0000000000000000000000000000FF"); code != 1 || len(traceLines(out)) != 0 ||
		!strings.HasPrefix(out, "0 trace record(s)") {
		t.Errorf("msg trace of an untraced id exited %d:\n%s", code, out)
	}
}
