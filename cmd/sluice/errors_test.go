package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// What a newcomer sees when a command is given something wrong: each case runs the sluice
// binary and compares its exit code, stdout and stderr with testdata/errors/NAME.golden
// (go test -run TestErrorOutput -update rewrites them). Every error is one short message that
// names what is wrong; -h is not an error.
func TestErrorOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sluice binary")
	}
	conf := func(name string) string { return filepath.Join("testdata", "conf", name) }
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no-command", nil},
		{"unknown-command", []string{"serve"}},
		{"sim-seeds-0", []string{"sim", "--seeds", "0"}},
		{"sim-seed-abc", []string{"sim", "--seed", "abc"}},
		{"sim-unknown-flag", []string{"sim", "--seedz", "1"}},
		{"bench-bad-flag", []string{"bench", "--messages", "many"}},
		{"broker-help", []string{"broker", "-h"}},
		{"broker-bad-flush", []string{"broker", "--flush", "sometimes"}},
		{"broker-misspelt-key", []string{"broker", "--config", conf("misspelt-broker.conf")}},
		{"broker-bad-value", []string{"broker", "--config", conf("bad-value-broker.conf")}},
		{"broker-slave-without-controllers", []string{"broker", "--config", conf("slave-broker.conf")}},
		{"broker-bad-delay-levels", []string{"broker", "--config", conf("bad-delay-broker.conf")}},
		{"broker-missing-config", []string{"broker", "--config", conf("nonexistent.conf")}},
		{"broker-config-without-file", []string{"broker", "--config"}},
		{"broker-data-in-proc", []string{"broker", "--data", "/proc/sluice-no-such-dir", "--addr", "127.0.0.1:1"}},
		{"dev-data-in-proc", []string{"dev", "--data", "/proc/sluice-no-such-dir"}},
		{"dev-replicas-9", []string{"dev", "--replicas", "9"}},
		{"namesrv-bad-self", []string{"namesrv", "--config", conf("namesrv-bad-self.conf")}},
		{"controller-bad-peers", []string{"controller", "--peers", "1=127.0.0.1:9878,x"}},
		{"controller-id-not-a-peer", []string{"controller", "--id", "2"}},
		{"admin-no-name-server", []string{"admin", "topic", "create", "--namesrv", "127.0.0.1:1", "T"}},
		{"admin-cluster-list-no-name-server", []string{"admin", "cluster", "list", "--namesrv", "127.0.0.1:1"}},
		{"admin-unknown", []string{"admin", "topic", "rename", "A", "B"}},
		{"admin-help", []string{"admin", "-h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(sluiceBinary(t), tc.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString("$ sluice " + strings.Join(tc.args, " ") + "\n")
			b.WriteString("exit " + itoa(code) + "\n--- stdout\n" + stdout.String() + "--- stderr\n" + stderr.String())
			golden(t, filepath.Join("errors", tc.name+".golden"), []byte(b.String()))
			if tc.name == "broker-help" || tc.name == "admin-help" {
				if code != 0 {
					t.Errorf("-h exited %d, want 0", code)
				}
			} else if code == 0 {
				t.Errorf("exited 0 on an error")
			}
			if n := strings.Count(stderr.String(), "\n"); n > 3 && tc.name != "no-command" {
				t.Errorf("%d lines on stderr: an error should be a line or two", n)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
