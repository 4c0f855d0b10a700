package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// --print-config shows each setting with its source: the default, the file's line, or the
// flag that overrode the file (the retention flags too, whose values the keys can hold). Its output is itself a configuration file that yields the same
// settings. Every file of deploy/ prints (so the compose example's files stay loadable by the
// commands that mount them, not only by the parser).
func TestPrintConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sluice binary")
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(sluiceBinary(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("sluice %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	deploy := filepath.Join("..", "..", "deploy", "conf")
	out := run("broker", "--config", filepath.Join(deploy, "broker-n0.conf"), "--flush", "async",
		"--file-reserved-time", "90m", "--delete-when", "01;13", "--disk-max-used-space-ratio", "0", "--disk-full-ratio", "85",
		"--print-config")
	golden(t, "print-config-broker.golden", []byte(out))
	for _, want := range []string{
		"# flag --flush\nflushDiskType=ASYNC_FLUSH\n",
		"# flag --file-reserved-time\nfileReservedTime=1h30m0s\n",
		"# flag --delete-when\ndeleteWhen=01;13\n",
		"# flag --disk-max-used-space-ratio\ndiskMaxUsedSpaceRatio=0\n",
		"# flag --disk-full-ratio\ndiskSpaceWarningLevelRatio=85\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("a flag did not override the file's key: no %q in\n%s", want, out)
		}
	}
	// Printed back in as a file, it gives the same settings (sources aside).
	path := filepath.Join(t.TempDir(), "effective.conf")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	again := run("broker", "--config", path, "--print-config")
	sources := regexp.MustCompile(`(?m)^# .*\n`)
	if a, b := sources.ReplaceAllString(out, ""), sources.ReplaceAllString(again, ""); a != b {
		t.Errorf("printed configuration does not load back to itself:\n--- first\n%s\n--- again\n%s", a, b)
	}
	for _, f := range []string{"namesrv-n0.conf", "namesrv-n1.conf", "namesrv-n2.conf", "broker-n1.conf", "broker-n2.conf"} {
		role := strings.SplitN(f, "-", 2)[0]
		run(role, "--config", filepath.Join(deploy, f), "--print-config")
	}
}

// A broker started from a real RocketMQ broker.conf (flags overriding its addresses) reports
// the RocketMQ keys it ignores once, in one line (none as read but not acted on: retention acts
// on its keys), then serves; SIGTERM stops it with exit 0.
func TestBrokerReportsIgnoredKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	conf := filepath.Join("..", "..", "broker", "config", "testdata", "rocketmq-broker.conf")
	p := startProcess(t, "listening", "broker", "--config", conf, "--addr", freePort(t), "--vip-addr", "off",
		"--namesrv", "127.0.0.1:1", "--data", t.TempDir(), "--log-level", "warn")
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-p.exited; err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, p.stderr)
	}
	logs := p.stderr.String()
	ignored := `keys=storePathCommitLog,mapedFileSizeCommitLog,mappedFileSizeCommitLog,autoCreateSubscriptionGroup,` +
		`sendMessageThreadPoolNums,pullMessageThreadPoolNums,useReentrantLockWhenPutMessage,waitTimeMillsInSendQueue`
	if n := strings.Count(logs, "RocketMQ keys Sluice does not use are ignored"); n != 1 || !strings.Contains(logs, ignored) {
		t.Errorf("ignored keys reported %d times, want once with %s:\n%s", n, ignored, logs)
	}
	if strings.Contains(logs, "not yet acted on") {
		t.Errorf("keys reported as not acted on (retention acts on its keys):\n%s", logs)
	}
}
