package main

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
)

// A disk whose fsync starts failing with EIO (a real file system's error, injected under the
// real files): the broker acknowledges nothing the failed fsync covered, logs one ERROR line
// naming the file in its data directory and the error, and exits non-zero at once for its
// supervisor (rather than refusing sends for ever, since a later fsync would prove nothing);
// restarted on the same data directory, it serves every message it acknowledged, at its
// acknowledged offset, intact, and takes sends again.
//
// The fault comes from a binary built with -tags faultinject (its fsyncs fail while a trigger
// file exists), and from the ordinary binary's test hook SLUICE_TEST_DISK_FAULTS
// (docs/testing-flags.md), armed by the same kind of file, with slow fsyncs drawn as well.
func TestFsyncEIOStopsTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Run("faultinject", func(t *testing.T) {
		trigger := filepath.Join(t.TempDir(), "fail-fsync")
		testFsyncEIO(t, faultBinary(t), []string{"SLUICE_FAULT_FSYNC_TRIGGER=" + trigger}, trigger)
	})
	t.Run("test-hook", func(t *testing.T) {
		trigger := filepath.Join(t.TempDir(), "fail-fsync")
		testFsyncEIO(t, sluiceBinary(t), []string{"SLUICE_TEST_DISK_FAULTS=seed=7,slow-fsync=5ms@0.5,fail-fsync=1,while=" + trigger}, trigger)
	})
}

// testFsyncEIO is TestFsyncEIOStopsTheBroker with binary bin, started with env, whose fsyncs
// fail while the file trigger exists.
func testFsyncEIO(t *testing.T, bin string, env []string, trigger string) {
	data := filepath.Join(t.TempDir(), "data")
	nsAddr, brokerAddr := freePort(t), freePort(t)
	const topic = "FsyncTopic"
	p := startDevBinary(t, bin, env, data, nsAddr, brokerAddr)

	cli, err := clientrt.Start(client.DefaultConfig(nsAddr), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	waitSendable(t, cli, topic)

	var mu sync.Mutex
	ack := map[string]acked{}
	var ackedAfter []string // acknowledged after the trigger was created
	var failures []error
	triggered := false
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%06d", w, i)
				body := []byte(strings.Repeat(id, 32))
				res, err := cli.Send(client.Message{Topic: topic, Body: body, Properties: map[string]string{codec.PropUniqKey: id}})
				mu.Lock()
				if err == nil {
					ack[id] = acked{res.Queue, res.QueueOffset, crc32.ChecksumIEEE(body)}
					if triggered {
						ackedAfter = append(ackedAfter, id)
					}
				} else if triggered {
					failures = append(failures, err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	waitFor(t, 20*time.Second, "200 acknowledged sends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ack) >= 200
	})
	mu.Lock()
	triggered = true
	before := len(ack)
	mu.Unlock()
	if err := os.WriteFile(trigger, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case err := <-p.exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("sluice dev exited with %v after its fsync failed, want a non-zero status\n%s", err, p.stderr)
		}
		t.Logf("exited with status %d %v after the fsync failures began", exit.ExitCode(), time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatalf("sluice dev still running 15s after its fsyncs began to fail\n%s", p.stderr)
	}
	close(stop)
	wg.Wait()

	var errLine string
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "input/output error") {
			errLine = line
			break
		}
	}
	if errLine == "" || !strings.Contains(errLine, data) || !strings.Contains(errLine, "fsync") {
		t.Fatalf("no ERROR line naming the data directory %s, the fsync and its error:\n%s", data, p.stderr)
	}
	if n := strings.Count(p.stderr.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d ERROR lines, want one:\n%s", n, p.stderr)
	}
	t.Logf("the broker said: %s", errLine)
	if os.Getenv("SLUICE_TEST_SHOW_LOG") != "" {
		t.Logf("log:\n%s", p.stderr)
	}
	mu.Lock()
	t.Logf("%d sends acknowledged before the fault, %d after it began (their fsyncs had completed), %d failed after it", before, len(ackedAfter), len(failures))
	if len(failures) == 0 {
		t.Errorf("no send failed once fsyncs failed")
	}
	mu.Unlock()

	if err := os.Remove(trigger); err != nil {
		t.Fatal(err)
	}
	p = startDev(t, data, nsAddr, brokerAddr)
	stored := map[string]acked{}
	for id, sm := range readTopic(t, nsAddr, topic, "fsync-check") {
		stored[id] = acked{sm.queue, sm.msg.QueueOffset, crc32.ChecksumIEEE(sm.msg.Body)}
	}
	lost := 0
	for id, a := range ack {
		if got, ok := stored[id]; !ok || got != a {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged %s (%v offset %d) after the restart: %+v (present %v)", id, a.queue, a.offset, got, ok)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged sends lost or changed", lost, len(ack))
	}
	if _, err := cli.Send(client.Message{Topic: topic, Body: []byte("after"), Properties: map[string]string{codec.PropUniqKey: "after"}}); err != nil {
		t.Errorf("send after the restart: %v", err)
	}
	if strings.Contains(p.stderr.String(), "corrupt") {
		t.Errorf("the restarted broker reports corruption:\n%s", p.stderr)
	}
}
