package main

// Issue 4's reads from slaves as real processes: a controller, a name server and a broker group
// of three 'sluice broker' processes in sync replication. Messages are acknowledged, then the
// controller is stopped (so no new master can be elected) and the master killed with SIGKILL:
// a consumer on the project's client must still read every acknowledged message, from a slave.

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

func TestSlavesServeReadsWithoutAMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Parallel()
	testStart := time.Now()
	c, ctl := startFoGroup(t)
	var info struct{ master int64 }
	waitFor(t, 30*time.Second, "a master with all three replicas in sync", func() bool {
		g, err := foGroupInfo(c.ctl)
		info.master = g.MasterID
		return err == nil && g.MasterID != 0 && len(g.InSync) == 3
	})
	master := info.master
	// Acknowledged sends (sync replication: each is on at least two replicas).
	prod, err := clientrt.Start(client.DefaultConfig(c.ns), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	acks := map[string]foAck{}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; len(acks) < 200; n++ {
		if n > 2000 {
			t.Fatalf("only %d of 2000 sends acknowledged", len(acks))
		}
		id := fmt.Sprintf("s-%04d", n)
		body := foBody(id, rng)
		res, err := prod.Send(client.Message{Topic: foTopic, Body: body})
		if err == nil {
			acks[id] = foAck{res.Queue, res.QueueOffset, crc32.ChecksumIEEE(body)}
		}
	}
	// The consumer reads a little from the master first: its client then holds a route that
	// names the master, as a running consumer's does when the master dies.
	cons, err := clientrt.Start(client.DefaultConfig(c.ns), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	queues, err := cons.Queues(foTopic)
	if err != nil {
		t.Fatal(err)
	}
	first, err := cons.Pull(client.PullRequest{Queue: queues[0], Group: "slave-read", MaxMsgs: 1})
	if err != nil || first.Addr != c.brokerAddr[master] {
		t.Fatalf("first pull (from the master %s): %+v, %v", c.brokerAddr[master], first, err)
	}

	// The slaves copy the topic from the master (metadata sync) and register it: routes keep
	// the group's queues once the master is gone.
	waitFor(t, 20*time.Second, "the name server to route the topic to all three replicas", func() bool {
		resp, err := controllerCall(c.ns, codec.ReqGetRouteInfoByTopic, map[string]string{"topic": foTopic}, nil)
		if err != nil || resp.Code != codec.Success {
			return false
		}
		rd, err := route.DecodeTopicRouteData(resp.Body)
		return err == nil && len(rd.BrokerDatas) == 1 && len(rd.BrokerDatas[0].BrokerAddrs) == 3
	})

	// A slave shows what the master confirmed as it last heard: a slave learns that the last
	// acknowledged entries are confirmed from its next fetch answer, which an idle master sends
	// within ReplicaFetchWait.
	time.Sleep(brokernode.DefaultReplicaFetchWait + 500*time.Millisecond)

	// No controller, then no master: nothing can be elected.
	if err := ctl.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ctl.exited
	old := c.brokers[master]
	if err := old.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-old.exited
	killedAt := time.Now()

	// Read every queue from offset 0 to its end. Pulls of a dead master fail at first (the
	// client then looks its route up again); they must reach a slave within a few seconds.
	got := map[client.MessageQueue][]stored{}
	slaveAnswers := map[string]int{}
	for _, q := range queues {
		var off int64
		for {
			var res client.PullResult
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				res, err = cons.Pull(client.PullRequest{Queue: q, Group: "slave-read", Offset: off, MaxMsgs: 64})
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a pull of %s at %d still fails 15 s on: %v", q, off, err)
				}
			}
			if res.Addr == c.brokerAddr[master] {
				t.Fatalf("pull of %s at %d answered by the killed master %s", q, off, res.Addr)
			}
			slaveAnswers[res.Addr]++
			if res.Status != codec.Success {
				break
			}
			for _, m := range res.Msgs {
				if m.QueueOffset != off {
					t.Fatalf("%s: expected offset %d, got %d", q, off, m.QueueOffset)
				}
				got[q] = append(got[q], stored{foID(m.Body), crc32.ChecksumIEEE(m.Body)})
				off++
			}
		}
	}
	t.Logf("read %d queues from slaves %v %v after the kill", len(queues), slaveAnswers, time.Since(killedAt).Round(time.Millisecond))
	for id, a := range acks {
		list := got[a.queue]
		if a.offset >= int64(len(list)) {
			t.Errorf("acknowledged %s at %s offset %d is not readable from a slave (the queue shows %d)", id, a.queue, a.offset, len(list))
			continue
		}
		if s := list[a.offset]; s.id != id || s.crc != a.crc {
			t.Errorf("%s offset %d: acknowledged %s (crc %08x), a slave shows %s (crc %08x)", a.queue, a.offset, id, a.crc, s.id, s.crc)
		}
	}

	// A consumer group's offsets are read and committed at a slave as well.
	q := queues[0]
	cons.CommitOffset("slave-read", q, 3)
	waitFor(t, 10*time.Second, "the committed offset read back from a slave", func() bool {
		off, found, err := cons.QueryOffset("slave-read", q)
		return err == nil && found && off == 3
	})
	t.Logf("test took %v", time.Since(testStart).Round(time.Millisecond))
}

// stored is one message as a read found it.
type stored struct {
	id  string
	crc uint32
}
