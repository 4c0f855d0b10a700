package main

// The broker semantics clients rely on, as a Java 4.x broker has them, driven with the
// official Go client against real 'sluice dev' processes: a new consumer group on a young
// topic starts at its first message whatever its consumeFromWhere; a topic the admin created
// can be subscribed to the moment CreateTopic returns; the broker's VIP channel (listen
// port - 2) serves the same node; the name server answers GET_BROKER_CLUSTER_INFO.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// A new consumer group with CONSUME_FROM_LAST_OFFSET on a young topic receives the messages
// already there: QUERY_CONSUMER_OFFSET answers 0 for a group without an offset while the
// queue's head is recent (Java's ConsumerManageProcessor.queryConsumerOffset), so the client
// never asks for the max offset.
func TestCompatNewGroupOnYoungTopic(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := map[string]*primitive.Message{}
	for i := range 8 {
		m := userMessage(topic, i)
		res, err := p.SendSync(ctx, m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		sent[res.MsgID] = m
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{}, consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	expectExactly(t, in, sent, 30*time.Second)
}

// The admin's CreateTopic returns only once the name server has the topic's route (the broker
// answers after its registration is answered, as Java's registerBrokerAll waits), so a
// consumer that subscribes a millisecond later starts (Start fails on a topic without a
// route) and a producer sends at once.
func TestCompatCreateThenSubscribeAtOnce(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	a := c.newAdmin(t)
	p := c.newProducer(t)
	for round := range 5 {
		topic := uniqueName(t, "T")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := a.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.Broker),
			admin.WithReadQueueNums(2), admin.WithWriteQueueNums(2)); err != nil {
			t.Fatalf("round %d: CreateTopic: %v", round, err)
		}
		time.Sleep(time.Millisecond)
		in := newInbox()
		pc := c.newPushConsumer(t, uniqueName(t, "cg"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		if err := pc.Subscribe(topic, consumer.MessageSelector{}, in.consume); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(); err != nil {
			t.Fatalf("round %d: consumer Start right after CreateTopic: %v", round, err)
		}
		m := userMessage(topic, round)
		res, err := p.SendSync(ctx, m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("round %d: send: %v %v", round, res, err)
		}
		expectExactly(t, in, map[string]*primitive.Message{res.MsgID: m}, 30*time.Second)
		_ = pc.Shutdown()
		cancel()
	}
}

// freePortPair finds a loopback port P such that P and P-2 are both free (a broker and its
// VIP channel).
func freePortPair(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := freePort(t)
		vip, ok := vipChannelAddr(addr)
		if !ok {
			continue
		}
		if ln, err := net.Listen("tcp", vip); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port pair")
	return ""
}

// The broker listens on its VIP channel, listen port - 2, as a Java broker does for Java
// clients with vipChannelEnabled: the official admin creates a topic through it, the official
// producer sends through the routed address, and requests on the VIP channel see the same
// node (the max offset of what was sent).
func TestCompatVIPChannel(t *testing.T) {
	t.Parallel()
	c := &compatCluster{NameServer: freePort(t), Broker: freePortPair(t), Data: t.TempDir()}
	c.proc = startDev(t, c.Data, c.NameServer, c.Broker)
	vip, _ := vipChannelAddr(c.Broker)
	topic := uniqueName(t, "T")
	a := c.newAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(vip),
		admin.WithReadQueueNums(1), admin.WithWriteQueueNums(1)); err != nil {
		t.Fatalf("CreateTopic through the VIP channel: %v", err)
	}
	mqs, err := a.FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(mqs) != 1 {
		t.Fatalf("route of the topic created through the VIP channel: %v (%d queues)", err, len(mqs))
	}
	p := c.newProducer(t)
	for i := range 3 {
		if res, err := p.SendSync(ctx, userMessage(topic, i)); err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
	}
	resp := rawRequest(t, vip, codec.NewRequest(codec.ReqGetMaxOffset, map[string]string{"topic": topic, "queueId": "0"}, nil))
	if resp.Code != codec.Success || resp.Ext("offset") != "3" {
		t.Errorf("GET_MAX_OFFSET through the VIP channel: %d offset %q, want 3", resp.Code, resp.Ext("offset"))
	}
	// A client of the VIP channel heartbeats and sends like any other.
	send := codec.NewRequest(codec.ReqSendMessage, map[string]string{"producerGroup": "pg", "topic": topic, "queueId": "0",
		"sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "flag": "0", "properties": "",
		"reconsumeTimes": "0", "unitMode": "false", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4"}, []byte("via vip"))
	if resp := rawRequest(t, vip, send); resp.Code != codec.Success || resp.Ext("queueOffset") != "3" {
		t.Errorf("send through the VIP channel: %d %q queueOffset %q, want offset 3", resp.Code, resp.Remark, resp.Ext("queueOffset"))
	}
}

// GET_BROKER_CLUSTER_INFO (106), as Java's admin tools ask it (mqadmin clusterList): the
// broker under its group and cluster, in Java's ClusterInfo shape.
func TestCompatBrokerClusterInfo(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	resp := rawRequest(t, c.NameServer, codec.NewRequest(codec.ReqGetBrokerClusterInfo, nil, nil))
	var ci route.ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); resp.Code != codec.Success || err != nil {
		t.Fatalf("cluster info: %d %s (%v)", resp.Code, resp.Body, err)
	}
	want := fmt.Sprintf(`{"brokerAddrTable":{"broker-a":{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":%q}}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}`, c.Broker)
	if string(resp.Body) != want {
		t.Errorf("cluster info\n%s\nwant\n%s", resp.Body, want)
	}
}
