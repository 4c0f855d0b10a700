package main

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
)

// The topic and message commands against one broker and against a group of three, as an
// operator would run them in turn: create a topic, look at its route, send three messages
// (two to queue 0, one to queue 1), find them by id, key and queue offset, read them back,
// trace one, delete the topic. Each command's table is compared with its golden file
// (testdata/admin/NAME-REPLICAS.golden) and its --json is parsed and checked.
func TestAdminTopicAndMessageCommands(t *testing.T) {
	for _, replicas := range []int{1, 3} {
		t.Run(itoa(replicas), func(t *testing.T) {
			c := startAdminCluster(t, replicas)
			n := "-" + itoa(replicas)
			const topic = "CliTopic"

			adminGolden(t, "updateTopic"+n, c.mustAdmin(t, "updateTopic", topic, "--queues", "2"))
			// Slaves register the topic once they have copied it from their master.
			waitFor(t, 30*time.Second, "every replica in the route of "+topic, func() bool {
				out, _, code := c.admin(t, "topicRoute", "-t", topic, "--json")
				if code != 0 {
					return false
				}
				bds, _ := adminJSON(t, out).(map[string]any)["brokerDatas"].([]any)
				return len(bds) == 1 && len(bds[0].(map[string]any)["brokerAddrs"].(map[string]any)) == replicas
			})

			// Which replicas are slaves (their ids) depends on the election.
			slaveID := adminMask{regexp.MustCompile(`(?m)^(broker-a  DefaultCluster  )[1-9](  127.0.0.1:PORT)$`), "${1}N$2"}
			adminGolden(t, "topicRoute"+n, c.mustAdmin(t, "topicRoute", "-t", topic), slaveID)
			route := adminJSON(t, c.mustAdmin(t, "topicRoute", topic, "--json")).(map[string]any)
			qd := route["queueDatas"].([]any)[0].(map[string]any)
			if qd["brokerName"] != "broker-a" || qd["readQueueNums"] != 2.0 || qd["writeQueueNums"] != 2.0 || qd["perm"] != 6.0 {
				t.Errorf("topicRoute --json: queueDatas[0] = %v, want broker-a with 2 read and 2 write queues, perm 6", qd)
			}
			if out := c.mustAdmin(t, "topicList"); !strings.Contains(out, topic+"\n") {
				t.Errorf("topicList does not list %s:\n%s", topic, out)
			}
			adminGolden(t, "topicList"+n, c.mustAdmin(t, "topicList"))
			topics := adminJSON(t, c.mustAdmin(t, "topicList", "--json")).(map[string]any)["topics"].([]any)
			if !slices.Contains(topics, any(topic)) {
				t.Errorf("topicList --json: %v does not hold %s", topics, topic)
			}

			// Three messages, each to a queue named, so their queue offsets are known.
			send := func(body, keys, tags, queue string) map[string]any {
				t.Helper()
				args := []string{"sendMessage", "-t", topic, "-p", body, "-b", "broker-a", "-i", queue, "--json"}
				if keys != "" {
					args = append(args, "-k", keys)
				}
				if tags != "" {
					args = append(args, "-c", tags)
				}
				return adminJSON(t, c.mustAdmin(t, args...)).(map[string]any)
			}
			adminGolden(t, "sendMessage"+n, c.mustAdmin(t, "sendMessage", "-t", topic, "-p", "first message", "-k", "order-1 shared",
				"-c", "TagA", "-b", "broker-a", "-i", "0"))
			second := send("second message", "order-2 shared", "TagB", "0")
			third := send("third", "", "", "1")
			for i, r := range []map[string]any{second, third} {
				mq := r["messageQueue"].(map[string]any)
				wantQueue, wantOffset := []float64{0, 1}[i], []float64{1, 0}[i]
				if r["sendStatus"] != "SEND_OK" || mq["topic"] != topic || mq["brokerName"] != "broker-a" ||
					mq["queueId"] != wantQueue || r["queueOffset"] != wantOffset {
					t.Errorf("sendMessage --json: %v, want SEND_OK to %s@broker-a:%v at offset %v", r, topic, wantQueue, wantOffset)
				}
				if !regexp.MustCompile(`^[0-9A-F]{32}$`).MatchString(r["msgId"].(string)) {
					t.Errorf("sendMessage --json: msgId %v is not 32 hex digits", r["msgId"])
				}
			}
			// A queue not named: the result says which one was chosen (of the group named, if one
			// is). A topic without a route is created by the send, with 4 queues.
			for _, args := range [][]string{{"-t", "AnyQueueTopic"}, {"-t", "AnyQueueTopic", "-b", "broker-a"}} {
				r := adminJSON(t, c.mustAdmin(t, append([]string{"sendMessage", "-p", "x", "--json"}, args...)...)).(map[string]any)
				mq := r["messageQueue"].(map[string]any)
				if q := mq["queueId"].(float64); r["sendStatus"] != "SEND_OK" || mq["brokerName"] != "broker-a" || q < 0 || q > 3 {
					t.Errorf("sendMessage %v: %v, want SEND_OK to a queue 0 to 3 of broker-a", args, r)
				}
			}

			// By offset message id, by key, by queue offset.
			offsetMsgID := second["offsetMsgId"].(string)
			adminGolden(t, "queryMsgById"+n, c.mustAdmin(t, "queryMsgById", offsetMsgID))
			byID := adminJSON(t, c.mustAdmin(t, "queryMsgById", offsetMsgID, "--json")).(map[string]any)["messages"].([]any)
			if len(byID) != 1 || byID[0].(map[string]any)["msgId"] != second["msgId"] {
				t.Errorf("queryMsgById --json: %v, want the message %v", byID, second["msgId"])
			}
			adminGolden(t, "queryMsgByKey"+n, c.mustAdmin(t, "queryMsgByKey", "shared", "-t", topic))
			byKey := adminJSON(t, c.mustAdmin(t, "queryMsgByKey", "shared", "-t", topic, "--json")).(map[string]any)["messages"].([]any)
			if len(byKey) != 2 {
				t.Errorf("queryMsgByKey --json: %d messages with key shared, want 2", len(byKey))
			}
			adminGolden(t, "queryMsgByOffset"+n, c.mustAdmin(t, "queryMsgByOffset", "-t", topic, "-b", "broker-a", "-i", "0", "-o", "1"))
			byOffset := adminJSON(t, c.mustAdmin(t, "queryMsgByOffset", "-t", topic, "-b", "broker-a", "-i", "0", "-o", "1", "--json"))
			if m := byOffset.(map[string]any)["messages"].([]any)[0].(map[string]any); m["msgId"] != second["msgId"] || jsonBody(t, m) != "second message" {
				t.Errorf("queryMsgByOffset --json: %v, want the second message", m)
			}
			if out, errOut, code := c.admin(t, "queryMsgByOffset", "-t", topic, "-b", "broker-a", "-i", "0", "-o", "2"); code != 1 ||
				!strings.Contains(errOut, "no message at offset 2") {
				t.Errorf("queryMsgByOffset past the end: exit %d, want 1 with 'no message at offset 2'\n%s%s", code, out, errOut)
			}

			// Reading messages back, whole topic and from a queue offset; nothing is committed.
			adminGolden(t, "consumeMessage"+n, c.mustAdmin(t, "consumeMessage", "-t", topic))
			all := adminJSON(t, c.mustAdmin(t, "consumeMessage", "-t", topic, "--json")).([]any)
			var bodies []string
			for _, m := range all {
				bodies = append(bodies, jsonBody(t, m.(map[string]any)))
			}
			if want := []string{"first message", "second message", "third"}; !slices.Equal(bodies, want) {
				t.Errorf("consumeMessage --json: bodies %q, want %q", bodies, want)
			}
			adminGolden(t, "consumeMessage-offset"+n, c.mustAdmin(t, "consumeMessage", "-t", topic, "-b", "broker-a", "-i", "0", "-o", "1"))
			if got := adminJSON(t, c.mustAdmin(t, "consumeMessage", "-t", topic, "-c", "2", "--json")).([]any); len(got) != 2 {
				t.Errorf("consumeMessage -c 2 --json: %d messages, want 2", len(got))
			}
			future := itoa64(time.Now().Add(time.Hour).UnixMilli())
			if got := adminJSON(t, c.mustAdmin(t, "consumeMessage", "-t", topic, "-s", future, "--json")).([]any); len(got) != 0 {
				t.Errorf("consumeMessage -s in an hour --json: %d messages, want none", len(got))
			}
			since := itoa64(time.Now().Add(-time.Hour).UnixMilli())
			if got := adminJSON(t, c.mustAdmin(t, "consumeMessage", "-t", topic, "-s", since, "-e", future, "--json")).([]any); len(got) != 3 {
				t.Errorf("consumeMessage over the last hour --json: %d messages, want 3", len(got))
			}

			// A trace of the second message, sent to the trace topic as a traced client would:
			// records keyed by the message's id, with fixed times so the table is stable.
			msgID := second["msgId"].(string)
			rec := func(fields ...string) string { return strings.Join(fields, "\x01") + "\x02" }
			traceBody := rec("Pub", "1700000000000", "DefaultRegion", "cli-producer", topic, msgID, "TagB", "order-2 shared",
				"127.0.0.1:10911", "14", "3", "0", offsetMsgID, "true") +
				rec("SubBefore", "1700000000100", "DefaultRegion", "cli-consumer", "REQ1", msgID, "0", "order-2 shared") +
				rec("SubAfter", "REQ1", msgID, "2", "true", "order-2 shared", "0", "1700000000102")
			c.mustAdmin(t, "sendMessage", "-t", adminclient.DefaultTraceTopic, "-p", traceBody, "-k", msgID+" order-2")
			adminGolden(t, "queryMsgTraceById"+n, c.mustAdmin(t, "queryMsgTraceById", msgID))
			traces := adminJSON(t, c.mustAdmin(t, "queryMsgTraceById", msgID, "--json")).(map[string]any)["traces"].([]any)
			if recs := traces[0].(map[string]any)["records"].([]any); len(recs) != 3 {
				t.Errorf("queryMsgTraceById --json: %d records, want 3", len(recs))
			}

			// Deleting: the topic's route is gone.
			adminGolden(t, "deleteTopic"+n, c.mustAdmin(t, "deleteTopic", topic))
			if out, errOut, code := c.admin(t, "topicRoute", "-t", topic); code != 1 {
				t.Errorf("topicRoute of a deleted topic: exit %d, want 1\n%s%s", code, out, errOut)
			}
			up := adminJSON(t, c.mustAdmin(t, "updateTopic", "CliTopic2", "--json")).(map[string]any)
			if up["topic"] != "CliTopic2" || up["queues"] != 4.0 || len(up["brokers"].([]any)) != 1 {
				t.Errorf("updateTopic --json: %v, want CliTopic2 with 4 queues on one broker", up)
			}
			del := adminJSON(t, c.mustAdmin(t, "deleteTopic", "CliTopic2", "--json")).(map[string]any)
			if del["topic"] != "CliTopic2" || len(del["brokers"].([]any)) != 1 || len(del["nameServers"].([]any)) != 1 {
				t.Errorf("deleteTopic --json: %v, want CliTopic2 deleted on one broker and one name server", del)
			}
		})
	}
}

// jsonBody is the text of a message's base64 body in --json output.
func jsonBody(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m["body"].(string))
	if err != nil {
		t.Fatalf("body of %v: %v", m, err)
	}
	return string(b)
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
