package main

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
)

// A slave is down while its master's retention deletes commit-log segments it never fetched
// (sluice dev --replicas 3, a retention of 2 s). Started again, it does not fetch below the
// master's first index for ever: it restarts its log at that index, catches up and rejoins
// the in-sync set. It then holds the group's messages: with the other slave stopped and the
// master killed, it is elected master and serves every message the old master still held and
// everything sent since, each at the offset it was acknowledged at.
func TestSlaveRejoinsAfterMastersRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	ns, br := freePortBlock(t, 2, devControllerPort), freePortBlock(t, 3, devReplicaPortStep)
	cmd := exec.Command(sluiceBinary(t), "dev", "--replicas", "3", "--data", t.TempDir(), "--namesrv-addr", ns,
		"--broker-addr", br, "--log-level", "info", "--file-reserved-time", "2s", "--delete-when", everyHour(),
		"--disk-max-used-space-ratio", "0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &logBuffer{}
	lines := startLinesTo(t, cmd, stderr)
	say := func(format string, args ...any) {
		t.Helper()
		if _, err := fmt.Fprintf(stdin, format+"\n", args...); err != nil {
			t.Fatal(err)
		}
	}
	allInSync := func(timeout time.Duration) string {
		t.Helper()
		for {
			m := waitLines(t, lines, `broker-a master is replica (\d) \(.*\), in sync: \[(.*)\]`, timeout)
			if len(strings.Fields(m[2])) == 3 {
				return m[1]
			}
		}
	}
	master := allInSync(60 * time.Second)
	var slave, other string
	for _, id := range []string{"1", "2", "3"} {
		switch {
		case id == master:
		case slave == "":
			slave = id
		default:
			other = id
		}
	}
	say("kill %s", slave)
	waitLine(t, lines, `replica `+slave+` stopped`, 10*time.Second)

	cli, err := clientrt.Start(client.DefaultConfig(ns), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const topic = "RejoinTopic"
	waitSendable(t, cli, topic)
	type sent struct {
		queue  client.MessageQueue
		offset int64
	}
	acked := map[string]sent{}
	rng := rand.New(rand.NewPCG(3, 4))
	send := func(id string, size int) {
		t.Helper()
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		copy(body, id)
		res, err := cli.Send(client.Message{Topic: topic, Body: body, Properties: map[string]string{codec.PropUniqKey: id}})
		if err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
		acked[id] = sent{res.Queue, res.QueueOffset}
	}
	// Three segments' worth (4 MiB each) while the slave is away, then they expire.
	for i := range 120 {
		send(fmt.Sprintf("old-%03d", i), 100<<10)
	}
	time.Sleep(2500 * time.Millisecond)
	for i := range 20 {
		send(fmt.Sprintf("fresh-%03d", i), 1<<10)
	}
	waitFor(t, 40*time.Second, "the master's retention to remove old segments", func() bool {
		return strings.Contains(stderr.String(), "retention removed old messages")
	})

	say("start %s", slave)
	waitFor(t, 30*time.Second, "the returning slave to restart its log at the master's first index", func() bool {
		return strings.Contains(stderr.String(), "dropped its log and restarted it at the master's first index")
	})
	allInSync(60 * time.Second)
	for i := range 20 {
		send(fmt.Sprintf("after-%03d", i), 1<<10)
	}

	// Only the returning slave can take over now.
	say("stop %s", other)
	waitLine(t, lines, `replica `+other+` stopped`, 20*time.Second)
	// A write the stopped replica lacks makes it lag, and the master drops it from the set (the
	// send may time out meanwhile; it is not counted).
	_, _ = cli.Send(client.Message{Topic: topic, Body: []byte("lag"), Properties: map[string]string{codec.PropUniqKey: "lag"}})
	for {
		m := waitLines(t, lines, `broker-a master is replica (\d) .*in sync: \[(.*)\]`, 30*time.Second)
		t.Logf("after stopping replica %s: %s", other, m[0])
		if set := strings.Fields(m[2]); m[1] == master && len(set) == 2 && !slices.Contains(set, other) {
			break
		}
	}
	say("kill %s", master)
	waitLine(t, lines, `replica `+master+` stopped`, 10*time.Second)
	waitLine(t, lines, `broker-a master is replica (`+slave+`)`, 30*time.Second)

	reader, err := clientrt.Start(client.DefaultConfig(ns), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	stored := map[string]sent{}
	var queues []client.MessageQueue
	waitFor(t, 30*time.Second, "the topic's route from the new master", func() bool {
		queues, err = reader.Queues(topic)
		return err == nil
	})
	for _, q := range queues {
		for _, m := range readQueueFrom(t, reader, q, "rejoin-check", true) {
			stored[codec.Property(m.Properties, codec.PropUniqKey)] = sent{q, m.QueueOffset}
		}
	}
	for id, a := range acked {
		got, ok := stored[id]
		if strings.HasPrefix(id, "old-") {
			if ok && got != a {
				t.Errorf("%s served at %v offset %d, acknowledged at %v offset %d", id, got.queue, got.offset, a.queue, a.offset)
			}
			continue
		}
		if !ok || got != a {
			t.Errorf("%s (acknowledged at %v offset %d) from the new master: %+v (present %v)", id, a.queue, a.offset, got, ok)
		}
	}
	old := 0
	for id := range stored {
		if strings.HasPrefix(id, "old-") {
			old++
		}
	}
	t.Logf("the new master (the slave that returned) serves %d messages, %d of the 120 old ones", len(stored), old)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, `sluice: stopped`, 20*time.Second)
}
