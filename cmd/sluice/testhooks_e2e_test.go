package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
)

// SLUICE_TEST_CLOCK_OFFSET shifts the broker's clock, which stamps what it stores, and not the
// client's; SLUICE_TEST_CLOCK_FILE jumps it while the process runs. Both are announced.
func TestClockOffsetShiftsTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	clockFile := filepath.Join(t.TempDir(), "offset")
	nsAddr, brokerAddr := freePort(t), freePort(t)
	p := startDevBinary(t, sluiceBinary(t), []string{envTestClockOffset + "=-2h", envTestClockFile + "=" + clockFile},
		t.TempDir(), nsAddr, brokerAddr)
	if !strings.Contains(p.stderr.String(), "TEST HOOK ACTIVE: this process's clock is shifted") {
		t.Errorf("the shifted clock is not announced:\n%s", p.stderr)
	}
	cli, err := clientrt.Start(client.DefaultConfig(nsAddr), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const topic = "ClockTopic"
	waitSendable(t, cli, topic)

	// sendAndStamp sends a message with key id and returns how far the broker's store
	// timestamp and the client's born timestamp are from the real time.
	sendAndStamp := func(id string) (store, born time.Duration) {
		t.Helper()
		if _, err := cli.Send(client.Message{Topic: topic, Body: []byte(id), Properties: map[string]string{codec.PropUniqKey: id}}); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		m, ok := readTopic(t, nsAddr, topic, "clock-"+id)[id]
		if !ok {
			t.Fatalf("message %s not found", id)
		}
		return time.UnixMilli(m.msg.StoreTimestamp).Sub(now), time.UnixMilli(m.msg.BornTimestamp).Sub(now)
	}
	near := func(what string, got, want time.Duration) {
		t.Helper()
		if got < want-time.Minute || got > want+time.Minute {
			t.Errorf("%s is %v from the real time, want about %v", what, got, want)
		}
	}
	store, born := sendAndStamp("before-jump")
	near("the store timestamp", store, -2*time.Hour)
	near("the client's born timestamp", born, 0)

	if err := os.WriteFile(clockFile, []byte("3h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the clock jump announced", func() bool {
		return strings.Contains(p.stderr.String(), "TEST CLOCK: offset changed")
	})
	store, _ = sendAndStamp("after-jump")
	near("the store timestamp after the jump", store, 3*time.Hour)
}

// A malformed test hook stops a server role before it starts, with status 2.
func TestBadTestHookRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	for _, env := range []string{envTestClockOffset + "=soon", envTestDiskFaults + "=fail-fsync=2"} {
		cmd := exec.Command(sluiceBinary(t), "broker")
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), strings.SplitN(env, "=", 2)[0]) {
			t.Errorf("%s: %v, want exit status 2 naming the variable\n%s", env, err, out)
		}
	}
}
