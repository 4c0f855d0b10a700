package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
)

// The connection views, the offset reset and the controller views against one broker and
// against a group of three. A live official-client push consumer consumes the topic's
// messages; resetOffsetByTime to a time before them moves it back, and it receives every one
// of them again; once it has stopped, a reset moves the offsets on the broker alone.
func TestAdminConnectionsAndReset(t *testing.T) {
	for _, replicas := range []int{1, 3} {
		t.Run(itoa(replicas), func(t *testing.T) {
			c := startAdminCluster(t, replicas)
			const topic, group, pgroup, instance = "ConnTopic", "ConnGroup", "ConnProducer", "adminConnConsumer"
			c.mustAdmin(t, "updateTopic", topic, "--queues", "2")
			cli := adminclient.New([]string{c.NameServer}, 2*time.Second)
			defer cli.Close()
			waitFor(t, 20*time.Second, "the topic's route", func() bool {
				r, err := cli.Route(topic)
				return err == nil && len(r.QueueDatas) == 1 && r.QueueDatas[0].ReadQueueNums == 2
			})

			// Six messages, consumed once by a live push consumer, offsets committed.
			cc := &compatCluster{NameServer: c.NameServer}
			p := cc.newProducer(t, producer.WithGroupName(pgroup))
			before := time.Now().Add(-time.Second)
			bodies := numbered("conn", 6)
			sendBodies(t, p, topic, bodies, nil)
			log := newDeliveryLog()
			pc := cc.newPushConsumer(t, group, consumer.WithInstance(instance), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
			if err := pc.Subscribe(topic, consumer.MessageSelector{}, log.listener("c")); err != nil {
				t.Fatal(err)
			}
			if err := pc.Start(); err != nil {
				t.Fatal(err)
			}
			log.waitAll(t, 60*time.Second, "the first delivery of every message", bodies)
			master := masterAddr(t, cli)
			waitFor(t, 30*time.Second, "the consumer's offsets committed", func() bool {
				return committed(cli, master, group, topic, 0)+committed(cli, master, group, topic, 1) == 6
			})

			// Who is connected.
			clientID := adminMask{regexp.MustCompile(`\S+@` + instance + `\S*`), "CLIENTID"}
			version := adminMask{regexp.MustCompile(`GO  \d+`), "GO  VERSION"}
			adminGolden(t, "consumerConnection-"+itoa(replicas), c.mustAdmin(t, "consumerConnection", "-g", group), clientID, version)
			v := adminJSON(t, c.mustAdmin(t, "consumerConnection", "-g", group, "--json")).(map[string]any)
			if conns := v["connectionSet"].([]any); len(conns) != 1 || !strings.Contains(conns[0].(map[string]any)["clientId"].(string), instance) ||
				v["messageModel"] != "CLUSTERING" || v["consumeFromWhere"] != "CONSUME_FROM_FIRST_OFFSET" || v["subscriptionTable"].(map[string]any)[topic] == nil {
				t.Errorf("consumerConnection --json: %v", v)
			}
			adminGolden(t, "producerConnection-"+itoa(replicas), c.mustAdmin(t, "producerConnection", "-g", pgroup, "-t", topic),
				adminMask{regexp.MustCompile(`  \S+@\S+  `), "  CLIENTID  "}, version)
			v = adminJSON(t, c.mustAdmin(t, "producerConnection", "-g", pgroup, "-t", topic, "--json")).(map[string]any)
			if conns := v["connectionSet"].([]any); len(conns) != 1 || conns[0].(map[string]any)["language"] != "GO" {
				t.Errorf("producerConnection --json: %v", v)
			}
			if out, _, code := c.admin(t, "consumerConnection", "-g", "NobodyGroup"); code != 1 || out != "" {
				t.Errorf("consumerConnection of a group nobody runs: exit %d, output %q", code, out)
			}

			// Back to before the messages: the live consumer receives all six again.
			for _, b := range bodies {
				if n := len(log.deliveries(b)); n != 1 {
					t.Fatalf("%s delivered %d times before the reset, want once", b, n)
				}
			}
			out := c.mustAdmin(t, "resetOffsetByTime", "-g", group, "-t", topic, "-s", strconv.FormatInt(before.UnixMilli(), 10))
			adminGolden(t, "resetOffsetByTime-"+itoa(replicas), out)
			log.waitAll2(t, 90*time.Second, "every message delivered again after the reset", bodies)

			// The consumer gone, a reset moves the offsets on the broker alone.
			pc.Shutdown()
			waitFor(t, 30*time.Second, "the consumer's offsets committed again", func() bool {
				return committed(cli, master, group, topic, 0)+committed(cli, master, group, topic, 1) == 6
			})
			v = adminJSON(t, c.mustAdmin(t, "resetOffsetByTime", "-g", group, "-t", topic, "-s", strings.Replace(before.Format("2006-01-02#15:04:05.000"), ".", ":", 1), "--json")).(map[string]any)
			table := v["offsetTable"].([]any)
			if len(table) != 2 {
				t.Fatalf("resetOffsetByTime --json: %v", v)
			}
			for _, e := range table {
				e := e.(map[string]any)
				if e["offset"] != 0.0 || e["oldOffset"] != 3.0 || e["brokerName"] != "broker-a" {
					t.Errorf("resetOffsetByTime --json: queue %v, want broker-a from 3 to 0", e)
				}
			}
			if got := committed(cli, master, group, topic, 0) + committed(cli, master, group, topic, 1); got != 0 {
				t.Errorf("after a reset with no consumer online: committed offsets sum to %d, want 0", got)
			}
			// One queue to an offset, on the broker group named.
			v = adminJSON(t, c.mustAdmin(t, "resetOffsetByTime", "-g", group, "-t", topic, "-s", "now", "-b", "broker-a", "-q", "1", "-o", "2", "--json")).(map[string]any)
			if table := v["offsetTable"].([]any); len(table) != 1 || table[0].(map[string]any)["queueId"] != 1.0 || table[0].(map[string]any)["offset"] != 2.0 ||
				committed(cli, master, group, topic, 1) != 2 || committed(cli, master, group, topic, 0) != 0 {
				t.Errorf("reset of queue 1 to offset 2: %v", v)
			}
			if _, errOut, code := c.admin(t, "resetOffsetByTime", "-g", "NobodyGroup", "-t", topic, "-s", "now"); code != 1 || !strings.Contains(errOut, "does not exist") {
				t.Errorf("reset of an unknown group: exit %d, %s", code, errOut)
			}
			if _, _, code := c.admin(t, "resetOffsetByTime", "-g", group, "-t", topic, "-s", "yesterday"); code != 2 {
				t.Errorf("reset to a time that does not parse: exit %d, want 2", code)
			}

			// The controller: only the group of three has one.
			if replicas == 1 {
				for _, args := range [][]string{{"getControllerMetaData"}, {"getSyncStateSet", "-b", "broker-a"}} {
					if out, errOut, code := c.admin(t, args...); code != 1 || out != "" || !strings.Contains(errOut, "connect") {
						t.Errorf("%s without a controller: exit %d, %q %q", args[0], code, out, errOut)
					}
				}
				return
			}
			term := adminMask{regexp.MustCompile(`#RaftTerm  \d+`), "#RaftTerm  N"}
			adminGolden(t, "getControllerMetaData-3", c.mustAdmin(t, "getControllerMetaData"), term)
			ctl, _ := adminclient.ControllerBesideNameServer(c.NameServer)
			v = adminJSON(t, c.mustAdmin(t, "getControllerMetaData", "-a", ctl, "--json")).(map[string]any)
			if v["isLeader"] != true || v["controllerLeaderAddress"] != ctl || v["raftTerm"].(float64) < 1 {
				t.Errorf("getControllerMetaData --json: %v", v)
			}
			// Which replica is master, and how many times the set changed, depend on the run.
			ids := adminMask{regexp.MustCompile(`broker-a  \d  127.0.0.1:PORT  \d+  \d+  \[1 2 3\]`), "broker-a  M  127.0.0.1:PORT  E  SE  [1 2 3]"}
			adminGolden(t, "getSyncStateSet-3", c.mustAdmin(t, "getSyncStateSet", "-a", ctl, "-b", "broker-a"), ids)
			v = adminJSON(t, c.mustAdmin(t, "getSyncStateSet", "-c", "DefaultCluster", "--json")).(map[string]any)
			groups := v["replicasInfo"].([]any)
			if len(groups) != 1 || len(groups[0].(map[string]any)["inSyncReplicas"].([]any)) != 3 {
				t.Errorf("getSyncStateSet --json: %v", v)
			}
			if out, _, code := c.admin(t, "getSyncStateSet", "-b", "broker-z"); code != 1 || !strings.Contains(out, "no broker group broker-z") {
				t.Errorf("getSyncStateSet of an unknown group: exit %d, %q", code, out)
			}
			gs, err := cli.GroupSyncState(ctl, "broker-a")
			if err != nil || len(gs.InSync) != 3 || gs.MasterAddr != master || gs.MasterEpoch < 1 {
				t.Errorf("GroupSyncState: %+v, %v (master %s)", gs, err, master)
			}
		})
	}
}

// waitAll2 waits until every body has been delivered at least twice.
func (l *deliveryLog) waitAll2(t *testing.T, timeout time.Duration, what string, bodies []string) {
	t.Helper()
	waitFor(t, timeout, what, func() bool {
		for _, b := range bodies {
			if len(l.deliveries(b)) < 2 {
				return false
			}
		}
		return true
	})
}

// masterAddr is the address of broker-a's master.
func masterAddr(t *testing.T, cli *adminclient.Client) string {
	t.Helper()
	brokers, err := cli.ClusterList()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range brokers {
		if b.Master() {
			return b.Addr
		}
	}
	t.Fatalf("no master in %v", brokers)
	return ""
}

// committed is a group's committed offset of a queue on the broker at addr (0 if none).
func committed(cli *adminclient.Client, addr, group, topic string, q int) int64 {
	resp, err := cli.Call(addr, codec.NewRequest(codec.ReqQueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q)}, nil))
	if err != nil || resp.Code != codec.Success {
		return 0
	}
	h, _ := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
	return h.Offset
}
