package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/sluicemq/sluice/faults/realdisk"
)

// TestDiskFullProcess runs 'sluice dev' on a full disk: sends are refused with
// SERVICE_NOT_AVAILABLE saying the disk is full (the official client's retriable error) while
// pulls go on; once space is back, sends resume by themselves; after a restart every
// acknowledged message is there. Forced retention is off (disk-max-used-space-ratio 0), so
// nothing acknowledged may go. The disk is a 40 MiB tmpfs the test fills (when it runs as
// root), and, always, the usual file system with ENOSPC injected under the real files (a
// binary built with -tags faultinject: every log write fails as a short write with ENOSPC while
// a trigger file exists), and the same through the ordinary binary's test hook
// SLUICE_TEST_DISK_FAULTS (nospace-write, armed while a file exists: docs/testing-flags.md).
func TestDiskFullProcess(t *testing.T) {
	t.Run("tmpfs", func(t *testing.T) {
		small := realdisk.MountT(t, 40)
		c := &compatCluster{NameServer: freePort(t), Broker: freePort(t), Data: filepath.Join(small.Dir, "data"),
			extra: []string{"--disk-max-used-space-ratio=0", "--log-level=info"}}
		testDiskFull(t, c, func() {
			if err := small.Fill(0); err != nil {
				t.Fatal(err)
			}
		}, small.Release)
	})
	t.Run("injected", func(t *testing.T) {
		testInjectedDiskFull(t, faultBinary(t), func(trigger string) string { return "SLUICE_FAULT_NOSPACE_TRIGGER=" + trigger })
	})
	t.Run("test-hook", func(t *testing.T) {
		testInjectedDiskFull(t, sluiceBinary(t), func(trigger string) string {
			return envTestDiskFaults + "=seed=3,nospace-write=1,while=" + trigger
		})
	})
}

// testInjectedDiskFull is testDiskFull with bin on the usual file system, whose writes fail
// as short writes with ENOSPC while a trigger file exists; env names the trigger to the process.
func testInjectedDiskFull(t *testing.T, bin string, env func(trigger string) string) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	trigger := filepath.Join(t.TempDir(), "disk-full")
	c := &compatCluster{NameServer: freePort(t), Broker: freePort(t), Data: filepath.Join(t.TempDir(), "data"),
		extra: []string{"--disk-max-used-space-ratio=0", "--log-level=info"}, bin: bin, env: []string{env(trigger)}}
	testDiskFull(t, c, func() {
		if err := os.WriteFile(trigger, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}, func() error { return os.Remove(trigger) })
}

// testDiskFull is TestDiskFullProcess on cluster c (not started yet), whose disk fill fills
// and free frees.
func testDiskFull(t *testing.T, c *compatCluster, fill func(), free func() error) {
	c.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", c.proc.stderr.String())
		}
	})
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 1)
	p := c.newProducer(t)
	ctx := context.Background()
	var acked []string
	send := func(body string) error {
		res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
		if err == nil && res.Status == primitive.SendOK {
			acked = append(acked, body)
		} else if err == nil {
			return fmt.Errorf("send status %v", res.Status)
		}
		return err
	}
	for i := range 20 {
		if err := send(fmt.Sprintf("before-%d", i)); err != nil {
			t.Fatalf("send before the disk fills: %v", err)
		}
	}

	fill()
	var refusal error
	for i := 0; refusal == nil; i++ {
		if i > 20 {
			t.Fatal("sends are still accepted on a full disk")
		}
		err := send(fmt.Sprintf("full-%d", i))
		if err != nil && strings.Contains(err.Error(), "CODE: 14") && strings.Contains(err.Error(), "disk is full") {
			refusal = err
		}
	}
	t.Logf("refused as: %v", refusal)
	pull := c.newPullConsumer(t, uniqueName(t, "probe"), topic, consumer.MessageSelector{})
	mq := &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}
	if res, err := pull.PullFrom(ctx, mq, 0, 8); err != nil || res.Status != primitive.PullFound {
		t.Fatalf("pull on a full disk: %v %v", res, err)
	}

	if err := free(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "sends to resume once space is freed", func() bool {
		return send(fmt.Sprintf("after-%d", time.Now().UnixNano())) == nil
	})

	firstLog := c.proc.stderr.String()
	c.Restart(t)
	c.waitRoute(t, topic, 1)
	pull2 := c.newPullConsumer(t, uniqueName(t, "probe"), topic, consumer.MessageSelector{})
	msgs, _, _ := pullQueue(t, pull2, mq)
	got := map[string]bool{}
	for _, m := range msgs {
		got[string(m.Body)] = true
	}
	for _, b := range acked {
		if !got[b] {
			t.Errorf("acknowledged message %q missing after the restart", b)
		}
	}
	if os.Getenv("SLUICE_TEST_SHOW_LOG") != "" {
		t.Logf("log before the restart:\n%s\nafter:\n%s", firstLog, c.proc.stderr.String())
	}
	if stderr := c.proc.stderr.String(); strings.Contains(stderr, "corrupt") {
		t.Errorf("the broker reports corruption after the restart:\n%s", stderr)
	}
}
