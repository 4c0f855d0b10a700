package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// childNofile is the descriptor limit the many-queues test gives the broker process.
const childNofile = 1024

// nofileWrap returns a command prefix that runs a command with its descriptor limit (soft and
// hard) lowered to n, for the child only: prlimit if present, else a shell's ulimit.
func nofileWrap(n int) []string {
	if p, err := exec.LookPath("prlimit"); err == nil {
		return []string{p, fmt.Sprintf("--nofile=%d:%d", n, n)}
	}
	return []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$@"`, n), "sh"}
}

// fastDataDir is a directory for a test's data on a memory file system when there is one
// (the test creates tens of thousands of logs, each with its directory fsyncs), else a
// temporary directory.
func fastDataDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "sluice-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// openFiles counts the descriptors process pid holds (-1 if /proc cannot tell).
func openFiles(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(entries)
}

// TestManyQueuesUnderDescriptorLimit runs 'sluice dev' with a descriptor limit of 1,024 (for
// the child process only) and gives it 20,480 consume queues (40 topics of 512 queues, a
// message in each): a broker that kept every consume-queue log open would need two
// descriptors per queue. The broker keeps serving: sends to old queues and to new topics
// (created by the admin and auto-created: topic-metadata writes) succeed, sampled queues read
// back, and after a restart under the same limit the queues and their messages are there.
func TestManyQueuesUnderDescriptorLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 20,480 queues")
	}
	const topics, queuesPerTopic = 40, 512
	started := time.Now()
	c := &compatCluster{NameServer: freePort(t), Broker: freePort(t), Data: filepath.Join(fastDataDir(t), "data"),
		wrap: nofileWrap(childNofile)}
	c.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", c.proc.stderr.String())
		}
	})
	names := make([]string, topics)
	for i := range names {
		names[i] = uniqueName(t, fmt.Sprintf("Many%02d", i))
		c.createTopic(t, names[i], queuesPerTopic)
	}

	p := c.newProducer(t, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	send := func(topic string, queue int, body string) error {
		m := primitive.NewMessage(topic, []byte(body))
		m.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: queue}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := p.SendSync(ctx, m)
		if err == nil && res.Status != primitive.SendOK {
			err = fmt.Errorf("status %v", res.Status)
		}
		if err != nil {
			return fmt.Errorf("send %q to %s/%d: %w", body, topic, queue, err)
		}
		return nil
	}
	body := func(round, topic, queue int) string { return fmt.Sprintf("r%d-t%d-q%d", round, topic, queue) }

	// One message in every queue, from a few senders at once.
	var failed atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	work := make(chan [2]int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tq := range work {
				if err := send(names[tq[0]], tq[1], body(1, tq[0], tq[1])); err != nil {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("%v", err) })
				}
			}
		}()
	}
	for q := range queuesPerTopic {
		for ti := range topics {
			work <- [2]int{ti, q}
		}
	}
	close(work)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d sends failed", n, topics*queuesPerTopic)
	}
	fds := openFiles(c.proc.cmd.Process.Pid)
	t.Logf("%d queues written in %v; the broker holds %d descriptors (limit %d)",
		topics*queuesPerTopic, time.Since(started).Round(time.Millisecond), fds, childNofile)

	// It keeps serving: a second round to a sample of old queues, a new topic created by the
	// admin and one auto-created by a send (both rewrite the topic metadata).
	type tq struct{ topic, queue int }
	var sample []tq
	for i := 0; i < topics*queuesPerTopic; i += 211 {
		sample = append(sample, tq{i % topics, (i / topics) % queuesPerTopic})
	}
	for _, s := range sample {
		if err := send(names[s.topic], s.queue, body(2, s.topic, s.queue)); err != nil {
			t.Fatal(err)
		}
	}
	created := uniqueName(t, "ManyNew")
	c.createTopic(t, created, 4)
	if err := send(created, 3, "created"); err != nil {
		t.Fatal(err)
	}
	auto := uniqueName(t, "ManyAuto")
	ap := c.newProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	res, err := ap.SendSync(ctx, primitive.NewMessage(auto, []byte("auto")))
	cancel()
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send to the auto-created topic %s: %v %v", auto, res, err)
	}

	check := func(when string) {
		t.Helper()
		pull := c.newPullConsumer(t, uniqueName(t, "probe"), names[0], consumer.MessageSelector{})
		for _, s := range sample {
			mq := &primitive.MessageQueue{Topic: names[s.topic], BrokerName: "broker-a", QueueId: s.queue}
			msgs, _, _ := pullQueue(t, pull, mq)
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.Body))
			}
			want := body(1, s.topic, s.queue) + "," + body(2, s.topic, s.queue)
			if strings.Join(got, ",") != want {
				t.Fatalf("%s: queue %s/%d holds %v, want %s", when, names[s.topic], s.queue, got, want)
			}
		}
		mq := &primitive.MessageQueue{Topic: created, BrokerName: "broker-a", QueueId: 3}
		if msgs, _, _ := pullQueue(t, pull, mq); len(msgs) != 1 || string(msgs[0].Body) != "created" {
			t.Fatalf("%s: the created topic's queue 3 holds %d messages", when, len(msgs))
		}
	}
	check("before the restart")
	if log := c.proc.stderr.String(); strings.Contains(log, "too many open files") {
		t.Fatalf("the broker ran out of descriptors:\n%s", log)
	}

	c.Restart(t)
	c.waitRoute(t, names[topics-1], queuesPerTopic)
	check("after the restart")
	if err := send(names[0], 0, "after-restart"); err != nil {
		t.Fatal(err)
	}
	if log := c.proc.stderr.String(); strings.Contains(log, "too many open files") {
		t.Fatalf("the broker ran out of descriptors after the restart:\n%s", log)
	}
	t.Logf("done in %v; the restarted broker holds %d descriptors", time.Since(started).Round(time.Millisecond),
		openFiles(c.proc.cmd.Process.Pid))
}
