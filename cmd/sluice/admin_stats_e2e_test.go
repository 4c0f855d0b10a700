package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
)

// maskKeys masks the values of a key/value table's keys (after adminGolden collapses spaces).
func maskKeys(keys ...string) adminMask {
	return adminMask{regexp.MustCompile(`(?m)^(` + strings.Join(keys, "|") + `)  .*$`), "$1  X"}
}

// statsJSON runs an admin command with --json and decodes its output into v.
func statsJSON(t *testing.T, c *adminCluster, v any, args ...string) {
	t.Helper()
	out := c.mustAdmin(t, append(args, "--json")...)
	adminJSON(t, out)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s --json: %v\n%s", args[0], err, out)
	}
}

// The statistics and configuration commands against one broker and a group of three: each
// command's table matches its golden file and its --json parses, and the figures follow what
// a producer and a consumer did.
func TestAdminStats(t *testing.T) {
	for _, replicas := range []int{1, 3} {
		t.Run(itoa(replicas), func(t *testing.T) {
			c := startAdminCluster(t, replicas)
			n := itoa(replicas)
			cli := adminclient.New([]string{c.NameServer}, 5*time.Second)
			defer cli.Close()
			var master string
			var slaves []string
			brokers, err := cli.ClusterList()
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range brokers {
				if b.Master() {
					master = b.Addr
				} else {
					slaves = append(slaves, b.Addr)
				}
			}

			// One queue, so that every figure is the same from run to run.
			const topic, group, sent, committed = "StatsTopic", "StatsGroup", 10, 4
			c.mustAdmin(t, "updateTopic", topic, "--queues", "1")
			rt, err := clientrt.Start(client.DefaultConfig(c.NameServer), quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			for i := range sent {
				if _, err := rt.Send(client.Message{Topic: topic, Body: []byte(fmt.Sprintf("m%d", i))}); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			queues, err := rt.Queues(topic)
			if err != nil || len(queues) != 1 {
				t.Fatalf("queues of %s: %v %v", topic, queues, err)
			}
			if got := len(readQueue(t, rt, queues[0], group)); got != sent {
				t.Fatalf("read %d messages back, sent %d", got, sent)
			}
			rt.CommitOffset(group, queues[0], committed)

			// topicStatus: the queue's max offset is what was sent.
			adminGolden(t, "topicStatus-"+n, c.mustAdmin(t, "topicStatus", "-t", topic))
			var ts topicStatusOut
			statsJSON(t, c, &ts, "topicStatus", "-t", topic)
			if len(ts.Queues) != 1 || ts.Queues[0].MaxOffset != sent || ts.Queues[0].MinOffset != 0 || ts.Queues[0].LastUpdateTimestamp == 0 {
				t.Errorf("topicStatus --json: %+v, want one queue with max offset %d", ts, sent)
			}
			if _, errOut, code := c.admin(t, "topicStatus", "-t", "NoSuchTopic"); code != 1 || errOut == "" {
				t.Errorf("topicStatus of an unknown topic: exit %d %q", code, errOut)
			}

			// consumerProgress: the lag is what was sent less what was committed.
			var gp groupProgressOut
			waitFor(t, 10*time.Second, "the committed offset in consumerProgress", func() bool {
				gp = groupProgressOut{}
				statsJSON(t, c, &gp, "consumerProgress", "-g", group, "-t", topic)
				return len(gp.Queues) == 1 && gp.Queues[0].ConsumerOffset == committed
			})
			if q := gp.Queues[0]; q.BrokerOffset != sent || q.Diff != sent-committed || gp.DiffTotal != sent-committed || q.LastTimestamp == 0 {
				t.Errorf("consumerProgress --json: %+v, want broker offset %d, diff %d", gp, sent, sent-committed)
			}
			if out, _, code := c.admin(t, "consumerProgress", "-g", "NoSuchGroup"); code != 1 || !strings.Contains(out, "no consume progress") {
				t.Errorf("consumerProgress of an unknown group: exit %d\n%s", code, out)
			}
			tps := adminMask{regexp.MustCompile(`Consume TPS: .*`), "Consume TPS: X"}
			adminGolden(t, "consumerProgress-"+n, c.mustAdmin(t, "consumerProgress", "-g", group), tps)
			var all allProgressOut
			statsJSON(t, c, &all, "consumerProgress")
			found := false
			for _, g := range all.Groups {
				if g.Group == group {
					found = g.DiffTotal == sent-committed
				}
			}
			if !found {
				t.Errorf("consumerProgress of every group: %+v, want %s with diff %d", all, group, sent-committed)
			}
			groupTps := adminMask{regexp.MustCompile(`(?m)^(` + group + `  1  )\S+`), "${1}X"}
			adminGolden(t, "consumerProgress-all-"+n, c.mustAdmin(t, "consumerProgress"), groupTps)

			// brokerStatus: the master counted every message stored and served.
			volatile := maskKeys("bootTimestamp", "runtime", "putTps", "getTransferedTps", "commitLogMinOffset", "commitLogMaxOffset",
				"commitLogDiskRatio", "commitLogDirCapacity", "diskUsedBytes", "diskCapacityBytes", "earliestMessageTimeStamp",
				"brokerId", "masterEpoch", "syncStateSet", "syncStateSetEpoch")
			adminGolden(t, "brokerStatus-"+n, c.mustAdmin(t, "brokerStatus", "-b", master), volatile)
			var bs brokerStatusOut
			statsJSON(t, c, &bs, "brokerStatus")
			if len(bs.Brokers) != replicas {
				t.Fatalf("brokerStatus of every broker: %d brokers, want %d", len(bs.Brokers), replicas)
			}
			for _, b := range bs.Brokers {
				r := adminclient.SummarizeRuntime(b.Addr, b.Table)
				if b.Addr == master {
					if r.PutTotal != sent || r.GetTotal < sent || !r.Writable || r.DiskCapacityBytes == 0 {
						t.Errorf("master's runtime: %+v, want %d stored and served", r, sent)
					}
					if replicas > 1 && (r.Role != "master" || r.MasterEpoch < 1 || len(r.SyncStateSet) != replicas) {
						t.Errorf("master's runtime: %+v, want role master, an epoch and %d in sync", r, replicas)
					}
				} else if r.Role != "slave" || r.BrokerRole != "SLAVE" || r.Writable {
					t.Errorf("slave %s's runtime: %+v", b.Addr, r)
				}
			}

			// clusterList with -m: today's messages in on the master are those sent.
			var cl clusterListOut
			statsJSON(t, c, &cl, "clusterList", "-m")
			for _, b := range cl.Brokers {
				if b.Addr == master && (b.InTotalToday == nil || *b.InTotalToday != sent || b.Version != "Sluice") {
					t.Errorf("clusterList -m of the master: %+v", b)
				}
			}
			if out := c.mustAdmin(t, "clusterList", "-m"); !strings.Contains(out, "IN TODAY") {
				t.Errorf("clusterList -m lacks the totals:\n%s", out)
			}

			// updateSubGroup / deleteSubGroup: a disabled group cannot pull; slaves copy the group.
			adminGolden(t, "updateSubGroup-"+n, c.mustAdmin(t, "updateSubGroup", "-g", group, "-b", master, "-s", "false", "-r", "3"))
			var sg subGroupOut
			statsJSON(t, c, &sg, "updateSubGroup", "-g", group, "-c", "DefaultCluster", "-q", "2")
			if sg.Config.ConsumeEnable || sg.Config.RetryMaxTimes != 3 || sg.Config.RetryQueueNums != 2 || len(sg.Brokers) != 1 {
				t.Errorf("updateSubGroup kept the settings not given? %+v", sg)
			}
			res, err := rt.Pull(client.PullRequest{Queue: queues[0], Group: group, Offset: 0, MaxMsgs: 1})
			if err == nil && res.Status == codec.Success {
				t.Errorf("a disabled group pulled: %+v", res)
			}
			for _, s := range slaves {
				waitFor(t, 15*time.Second, "slave "+s+" to copy the group", func() bool {
					resp, err := cli.Call(s, codec.NewRequest(codec.ReqGetAllSubscriptionGroup, nil, nil))
					if err != nil {
						return false
					}
					var doc struct {
						SubscriptionGroupTable map[string]codec.SubscriptionGroupConfig `json:"subscriptionGroupTable"`
					}
					json.Unmarshal(resp.Body, &doc)
					return doc.SubscriptionGroupTable[group] == sg.Config
				})
			}
			adminGolden(t, "deleteSubGroup-"+n, c.mustAdmin(t, "deleteSubGroup", "-g", group, "-b", master, "-r", "true"))
			statsJSON(t, c, &gp, "consumerProgress", "-g", group, "-t", topic)
			if len(gp.Queues) != 1 || gp.Queues[0].ConsumerOffset != 0 || gp.DiffTotal != sent {
				t.Errorf("consumerProgress after deleteSubGroup -r true: %+v, want the offset gone", gp)
			}
			if got := len(readQueue(t, rt, queues[0], group)); got != sent {
				t.Errorf("the deleted group read %d messages, want %d (it may consume again)", got, sent)
			}

			// getBrokerConfig / updateBrokerConfig: a live key changes; a fixed or unknown one is refused.
			machine := maskKeys("listenPort", "maxOpenQueueFiles", "brokerId")
			adminGolden(t, "updateBrokerConfig-"+n, c.mustAdmin(t, "updateBrokerConfig", "-b", master, "-k", "fileReservedTime", "-v", "48"))
			adminGolden(t, "getBrokerConfig-"+n, c.mustAdmin(t, "getBrokerConfig", "-b", master), machine)
			var bc brokerConfigOut
			statsJSON(t, c, &bc, "getBrokerConfig", "-c", "DefaultCluster")
			if len(bc.Brokers) != replicas {
				t.Fatalf("getBrokerConfig -c: %d brokers, want %d", len(bc.Brokers), replicas)
			}
			for _, b := range bc.Brokers {
				want := "72"
				if b.Addr == master {
					want = "48"
				}
				if b.Config["fileReservedTime"] != want || b.Config["brokerName"] != "broker-a" {
					t.Errorf("config of %s: fileReservedTime %q, want %s", b.Addr, b.Config["fileReservedTime"], want)
				}
			}
			for key, value := range map[string]string{"brokerName": "other", "noSuchKey": "1", "maxMessageSize": "-5"} {
				_, errOut, code := c.admin(t, "updateBrokerConfig", "-b", master, "-k", key, "-v", value)
				if code != 1 || !strings.Contains(errOut, key) {
					t.Errorf("updateBrokerConfig %s=%s: exit %d, stderr %q; want 1 and an error naming the key", key, value, code, errOut)
				}
			}
		})
	}
}
