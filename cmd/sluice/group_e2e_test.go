package main

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/controller"
)

// groupInfo asks the controller for group G of cluster C.
func groupInfo(t *testing.T, ctl string) (controller.GroupInfo, bool) {
	t.Helper()
	resp, err := controllerCall(ctl, codec.ReqControllerGetReplicaInfo, map[string]string{"clusterName": "C", "brokerName": "G"}, nil)
	if err != nil || resp.Code != codec.Success {
		return controller.GroupInfo{}, false
	}
	var body controller.ReplicaInfoBody
	if json.Unmarshal(resp.Body, &body) != nil || len(body.Groups) != 1 {
		return controller.GroupInfo{}, false
	}
	return body.Groups[0], true
}

// A controller, a name server and a broker group of three real processes on loopback, in
// sync replication with at least two in sync. Sync sends stream in; the slaves are stopped
// (SIGSTOP) for a moment so the master holds a tail nobody acknowledged; then the master is
// killed with -9 mid-stream. A slave becomes master within 10 s and sends succeed again;
// every acknowledged message is read back at its acknowledged offset; the old master
// restarts, rejoins as a slave, truncates its unacknowledged tail and is back in sync.
func TestGroupFailoverWithRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Parallel()
	data := t.TempDir()
	ctl, ns := freePort(t), freePort(t)
	startProcess(t, "listening on", "controller", "--id", "1", "--peers", "1="+ctl, "--data", data, "--log-level", "warn")
	startProcess(t, "listening on", "namesrv", "--addr", ns, "--log-level", "warn")
	addrs := map[int64]string{}
	procs := map[int64]*devProcess{}
	startReplica := func(id int64) *devProcess {
		return startProcess(t, "listening on", "broker", "--data", data, "--addr", addrs[id], "--namesrv", ns,
			"--cluster", "C", "--group", "G", "--id", strconv.FormatInt(id, 10), "--controllers", ctl,
			"--min-insync", "2", "--log-level", "info")
	}
	for id := int64(1); id <= 3; id++ {
		addrs[id] = freePort(t)
		procs[id] = startReplica(id)
	}
	waitFor(t, 20*time.Second, "a master with all three in sync", func() bool {
		g, ok := groupInfo(t, ctl)
		return ok && g.MasterID != 0 && len(g.InSync) == 3
	})

	const topic = "GroupFailover"
	ccfg := client.DefaultConfig(ns)
	ccfg.RouteTTL = time.Second
	cli, err := clientrt.Start(ccfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	waitSendable(t, cli, topic)

	var mu sync.Mutex
	ack := map[string]acked{}
	var lastAck time.Time
	stop := make(chan struct{})
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	go func() {
		rng := rand.New(rand.NewPCG(4, 2))
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case sem <- struct{}{}:
			}
			id := fmt.Sprintf("g-%06d", n)
			body := make([]byte, 512)
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			copy(body, id)
			crc := crc32.ChecksumIEEE(body)
			wg.Add(1)
			cli.SendAsync(client.Message{Topic: topic, Body: body, Properties: map[string]string{codec.PropUniqKey: id}},
				func(res client.SendResult, err error) {
					if err == nil {
						mu.Lock()
						ack[id] = acked{res.Queue, res.QueueOffset, crc}
						lastAck = time.Now()
						mu.Unlock()
					} else {
						time.Sleep(20 * time.Millisecond) // a failover: do not spin
					}
					<-sem
					wg.Done()
				})
		}
	}()
	acks := func() int { mu.Lock(); defer mu.Unlock(); return len(ack) }
	waitFor(t, 20*time.Second, "1000 acknowledged sends", func() bool { return acks() >= 1000 })

	before, _ := groupInfo(t, ctl)
	old := before.MasterID
	var slaves []int64
	for id := range procs {
		if id != old {
			slaves = append(slaves, id)
		}
	}
	// The slaves stall: the master goes on appending (and syncing) what it cannot acknowledge.
	for _, id := range slaves {
		if err := procs[id].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := procs[old].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-procs[old].exited
	killed := time.Now()
	for _, id := range slaves {
		if err := procs[id].cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	atKill := acks()
	var newMaster int64
	waitFor(t, 10*time.Second, "a slave elected master", func() bool {
		g, ok := groupInfo(t, ctl)
		newMaster = g.MasterID
		return ok && g.MasterID != 0 && g.MasterID != old
	})
	elected := time.Since(killed)
	waitFor(t, 20*time.Second, "sends acknowledged by the new master", func() bool { return acks() >= atKill+200 })
	mu.Lock()
	resumed := lastAck.Sub(killed)
	mu.Unlock()
	t.Logf("master %d killed; replica %d elected after %v; sends acknowledged again %v after the kill", old, newMaster, elected.Round(time.Millisecond), resumed.Round(time.Millisecond))
	close(stop)
	wg.Wait()

	procs[old] = startReplica(old)
	waitFor(t, 20*time.Second, "the old master back in the in-sync set", func() bool {
		g, ok := groupInfo(t, ctl)
		return ok && slices.Contains(g.InSync, old) && g.MasterID == newMaster
	})
	logs := procs[old].stderr.String()
	if !strings.Contains(logs, "following master") || !strings.Contains(logs, "truncated the log where it differs from the master's") {
		t.Errorf("the old master did not rejoin as a slave truncating its unacknowledged tail:\n%s", logs)
	}

	reader, err := clientrt.Start(ccfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	queues, err := reader.Queues(topic)
	if err != nil {
		t.Fatal(err)
	}
	got := map[client.MessageQueue][]acked{}
	for _, q := range queues {
		for off := int64(0); ; {
			res, err := reader.Pull(client.PullRequest{Queue: q, Group: "group-check", Offset: off, MaxMsgs: 256})
			if err != nil {
				t.Fatalf("pull %s at %d: %v", q, off, err)
			}
			if res.Status != codec.Success {
				break
			}
			for _, m := range res.Msgs {
				if m.QueueOffset != off {
					t.Fatalf("%s: expected offset %d, got %d", q, off, m.QueueOffset)
				}
				got[q] = append(got[q], acked{q, off, crc32.ChecksumIEEE(m.Body)})
				off++
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, a := range ack {
		list := got[a.queue]
		if a.offset >= int64(len(list)) || list[a.offset].crc != a.crc {
			t.Errorf("acknowledged %s at %s offset %d is not there after the failover", id, a.queue, a.offset)
		}
	}
	t.Logf("%d acknowledged (%d before the kill), all read back from the new master", len(ack), atKill)
}
