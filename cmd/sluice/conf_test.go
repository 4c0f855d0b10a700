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
// flag that overrode the file. Its output is itself a configuration file that yields the same
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
	out := run("broker", "--config", filepath.Join(deploy, "broker-n0.conf"), "--flush", "async", "--print-config")
	golden(t, "print-config-broker.golden", []byte(out))
	if !strings.Contains(out, "# flag --flush\nflushDiskType=ASYNC_FLUSH\n") {
		t.Errorf("the --flush flag did not override the file's flushDiskType:\n%s", out)
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
