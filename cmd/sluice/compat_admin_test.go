package main

// Admin and message lookup: the official client's admin package creates, lists and deletes
// topics and lists subscription groups against a real 'sluice dev'; messages sent with the
// official producer are found by 'sluice admin msg id' and 'sluice admin msg key' run as real
// processes, also after the broker was killed and restarted.

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// topicListed reports whether the name server's topic list (through the official admin
// client) holds topic.
func topicListed(t *testing.T, a admin.Admin, topic string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tl, err := a.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatalf("FetchAllTopicList: %v", err)
	}
	if !slices.IsSorted(tl.TopicList) {
		t.Errorf("topic list is not sorted: %v", tl.TopicList)
	}
	return slices.Contains(tl.TopicList, topic)
}

// CreateTopic makes a topic that the topic list shows and producers and consumers use with
// the queue count given; GetAllSubscriptionGroup lists a consumer group that heartbeated;
// DeleteTopic takes the topic out of the list and the routes, and the old messages are never
// served again: the producer's next send (its route still cached) lands in a fresh queue the
// broker auto-creates, and a new consumer of the topic sees only that message.
func TestCompatAdminCreateListDeleteTopic(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic, group := uniqueName(t, "T"), uniqueName(t, "cg")
	a := c.newAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if err := a.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.Broker),
		admin.WithReadQueueNums(3), admin.WithWriteQueueNums(3)); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	waitFor(t, 10*time.Second, "the new topic in the topic list", func() bool { return topicListed(t, a, topic) })
	c.waitRouted(t, topic, 3)

	p := c.newProducer(t)
	sent := map[string]*primitive.Message{}
	queues := map[int]bool{}
	for i := range 6 {
		m := userMessage(topic, i)
		res, err := p.SendSync(ctx, m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		queues[res.MessageQueue.QueueId] = true
		sent[res.MsgID] = m
	}
	if len(queues) != 3 {
		t.Errorf("sends used queues %v, want the 3 the topic was created with", queues)
	}
	in := newInbox()
	pc := c.newPushConsumer(t, group, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, in.consume); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	expectExactly(t, in, sent, 30*time.Second)

	groups, err := a.GetAllSubscriptionGroup(ctx, c.Broker, 3*time.Second)
	if err != nil {
		t.Fatalf("GetAllSubscriptionGroup: %v", err)
	}
	if g, ok := groups.SubscriptionGroupTable[group]; !ok || g.GroupName != group || !g.ConsumeEnable || groups.DataVersion.Counter < 1 {
		t.Errorf("subscription groups lack %s (or its settings): %+v", group, groups)
	}
	if err := pc.Shutdown(); err != nil {
		t.Fatal(err)
	}

	if err := a.DeleteTopic(ctx, admin.WithTopicDelete(topic), admin.WithBrokerAddrDelete(c.Broker),
		admin.WithNameSrvAddr([]string{c.NameServer})); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if topicListed(t, a, topic) {
		t.Error("the deleted topic is still in the topic list")
	}
	fresh := c.newAdmin(t) // the first admin client caches routes
	if mqs, err := fresh.FetchPublishMessageQueues(ctx, topic); err == nil {
		t.Errorf("the deleted topic still has a route: %d queues", len(mqs))
	}
	// A consumer cannot start on a topic without a route.
	late := c.newPushConsumer(t, uniqueName(t, "cg"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err := late.Subscribe(topic, consumer.MessageSelector{}, newInbox().consume); err != nil {
		t.Fatal(err)
	}
	if err := late.Start(); err == nil || !strings.Contains(err.Error(), "route") {
		t.Errorf("consumer Start on the deleted topic: %v, want a route-not-found error", err)
	}

	// The producer still has the old route (3 queues) cached; its send reaches the broker,
	// which auto-creates the topic afresh: the message lands at offset 0 of a new queue.
	after := userMessage(topic, 100)
	res, err := p.SendSync(ctx, after)
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send after the delete: %v %v", res, err)
	}
	if res.QueueOffset != 0 {
		t.Errorf("send after the delete landed at queue offset %d of queue %d: an old queue, not a fresh one", res.QueueOffset, res.MessageQueue.QueueId)
	}
	c.waitRouted(t, topic, 4) // auto-created with the producer's default of 4 queues
	in2 := c.startConsumer(t, topic, consumer.MessageSelector{})
	expectExactly(t, in2, map[string]*primitive.Message{res.MsgID: after}, 30*time.Second)
}

// runAdmin runs 'sluice admin args...' against c as a separate process and returns its
// standard output and exit code.
func (c *compatCluster) runAdmin(t *testing.T, args ...string) (string, int) {
	t.Helper()
	args = append([]string{"admin"}, args...)
	args = append(args, "--namesrv", c.NameServer)
	cmd := exec.Command(sluiceBinary(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sluice %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	if code != 0 && code != 1 {
		t.Fatalf("sluice %v exited %d:\n%s%s", args, code, out, stderr.String())
	}
	return string(out), code
}

// field returns the value of "name:" lines in a 'sluice admin msg' output, in order.
func fields(out, name string) []string {
	var vals []string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

// Messages sent with the official producer (with keys) are found by 'sluice admin msg id'
// with the OffsetMsgID of their SendResult and by 'sluice admin msg key' with each key and
// with their UNIQ_KEY, before and after the broker is killed (kill -9) and restarted.
func TestCompatAdminMessageLookup(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 2)
	p := c.newProducer(t)
	type sentMsg struct {
		body, uniq, offsetID, keys string
		queue                      int
		queueOffset                int64
	}
	var sent []sentMsg
	for i := range 8 {
		m := userMessage(topic, i) // keys key-<i> and all
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		sent = append(sent, sentMsg{string(m.Body), res.MsgID, res.OffsetMsgID, m.GetKeys(), res.MessageQueue.QueueId, res.QueueOffset})
	}

	if out, _ := c.runAdmin(t, "topic", "list"); !slices.Contains(strings.Split(out, "\n"), topic) {
		t.Errorf("sluice admin topic list does not show %s:\n%s", topic, out)
	}
	check := func(when string) {
		t.Helper()
		for _, s := range sent[:3] {
			out, code := c.runAdmin(t, "msg", "id", s.offsetID)
			if code != 0 {
				t.Fatalf("%s: msg id %s exited %d:\n%s", when, s.offsetID, code, out)
			}
			want := map[string]string{"msgId": s.uniq, "offsetMsgId": s.offsetID, "topic": topic, "broker": c.Broker,
				"queue": fmt.Sprint(s.queue), "queue offset": fmt.Sprint(s.queueOffset), "keys": s.keys}
			for name, v := range want {
				if got := fields(out, name); len(got) != 1 || got[0] != v {
					t.Errorf("%s: msg id %s: %s = %v, want %q\n%s", when, s.offsetID, name, got, v, out)
				}
			}
			if !strings.Contains(out, "text):\n  "+s.body+"\n") {
				t.Errorf("%s: msg id %s does not show the body %q:\n%s", when, s.offsetID, s.body, out)
			}
		}
		out, code := c.runAdmin(t, "msg", "key", "--topic", topic, "key-5")
		if got := fields(out, "msgId"); code != 0 || len(got) != 1 || got[0] != sent[5].uniq {
			t.Errorf("%s: msg key key-5 exited %d, found %v, want %s:\n%s", when, code, got, sent[5].uniq, out)
		}
		out, _ = c.runAdmin(t, "msg", "key", "--topic", topic, sent[6].uniq)
		if got := fields(out, "offsetMsgId"); len(got) != 1 || got[0] != sent[6].offsetID {
			t.Errorf("%s: msg key by UNIQ_KEY found %v, want %s:\n%s", when, got, sent[6].offsetID, out)
		}
		out, _ = c.runAdmin(t, "msg", "key", "all", "--topic", topic)
		var want []string
		for _, s := range sent {
			want = append(want, s.uniq)
		}
		if got := fields(out, "msgId"); !slices.Equal(got, want) {
			t.Errorf("%s: msg key all found %v, want every message in send order %v", when, got, want)
		}
		if out, code := c.runAdmin(t, "msg", "key", "--topic", topic, "no-such-key"); code != 1 || !strings.HasPrefix(out, "0 message(s)") {
			t.Errorf("%s: msg key of an absent key exited %d:\n%s", when, code, out)
		}
	}
	check("before the restart")

	if err := c.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.proc.exited
	c.proc = startDev(t, c.Data, c.NameServer, c.Broker, c.extra...)
	c.waitRouted(t, topic, 2)
	check("after kill -9 and a restart")
}
