package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
)

// adminCluster is a running 'sluice dev' (one broker, or a group of three replicas) that the
// admin commands' end-to-end tests run against.
type adminCluster struct {
	NameServer string
	Replicas   int
	Stdin      interface{ Write([]byte) (int, error) } // dev's console: "kill N", "status"...
	lines      <-chan string
}

// startAdminCluster starts 'sluice dev --replicas replicas' on free loopback ports, waits until
// the name server routes every replica (and, for a group, a master with all in sync), and
// stops it with SIGTERM when the test ends.
func startAdminCluster(t *testing.T, replicas int) *adminCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real processes")
	}
	ns, br := freePortBlock(t, 2, devControllerPort), freePortBlock(t, replicas, devReplicaPortStep)
	cmd := exec.Command(sluiceBinary(t), "dev", "--replicas", itoa(replicas), "--data", t.TempDir(),
		"--namesrv-addr", ns, "--broker-addr", br, "--log-level", "warn", "--metrics-addr", "")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &adminCluster{NameServer: ns, Replicas: replicas, Stdin: stdin}
	c.lines = startLines(t, cmd)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
	})
	if replicas > 1 {
		for {
			m := waitLines(t, c.lines, `broker-a master is replica (\d) \(.*\), in sync: \[(.*)\]`, 60*time.Second)
			if len(strings.Fields(m[2])) == replicas {
				break
			}
		}
	}
	cli := adminclient.New([]string{ns}, 2*time.Second)
	defer cli.Close()
	waitFor(t, 30*time.Second, "every replica routed by the name server", func() bool {
		brokers, err := cli.ClusterList()
		masters := 0
		for _, b := range brokers {
			if b.Master() {
				masters++
			}
		}
		return err == nil && len(brokers) == replicas && masters == 1
	})
	return c
}

// admin runs 'sluice admin args... --namesrv' against the cluster, in this process, and returns
// its standard output, standard error and exit code.
func (c *adminCluster) admin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = adminMain(append(args, "--namesrv", c.NameServer), &o, &e)
	return o.String(), e.String(), code
}

// mustAdmin is admin that fails the test unless the command exits 0.
func (c *adminCluster) mustAdmin(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := c.admin(t, args...)
	if code != 0 {
		t.Fatalf("sluice admin %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// adminMask replaces what changes from run to run in an admin command's output.
type adminMask struct {
	re   *regexp.Regexp
	with string
}

// volatileMasks are masked in every admin golden comparison: loopback ports, times, message
// ids (32 hex digits) and commit-log offset ids, host names of this machine.
var volatileMasks = []adminMask{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?`), "TIME"},
	{regexp.MustCompile(`\b[0-9A-F]{32}\b`), "MSGID"},
	{regexp.MustCompile(`\b1[6-9]\d{11}\b`), "EPOCHMS"},
}

// adminGolden compares an admin command's text output with testdata/admin/name.golden after
// masking volatile fields (volatileMasks), collapsing runs of spaces to two (a masked value's
// width would otherwise move the columns after it) and then masking extra (written against
// the collapsed text); -update rewrites the file.
func adminGolden(t *testing.T, name, out string, extra ...adminMask) {
	t.Helper()
	for _, m := range volatileMasks {
		out = m.re.ReplaceAllString(out, m.with)
	}
	out = regexp.MustCompile(` {2,}`).ReplaceAllString(out, "  ")
	for _, m := range extra {
		out = m.re.ReplaceAllString(out, m.with)
	}
	golden(t, "admin/"+name+".golden", []byte(out))
}

// adminJSON parses an admin command's --json output, failing the test if it does not parse.
func adminJSON(t *testing.T, out string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	return v
}

// The cluster and topic listings against one broker and against a group of three.
func TestAdminClusterAndTopicList(t *testing.T) {
	for _, replicas := range []int{1, 3} {
		t.Run(itoa(replicas), func(t *testing.T) {
			c := startAdminCluster(t, replicas)
			// Which replicas are slaves (their ids) depends on the election.
			slaveID := adminMask{regexp.MustCompile(`  [1-9]  (127.0.0.1:PORT  slave)`), "  N  $1"}
			adminGolden(t, "clusterList-"+itoa(replicas), c.mustAdmin(t, "clusterList"), slaveID)
			v := adminJSON(t, c.mustAdmin(t, "clusterList", "--json"))
			if got := len(v.(map[string]any)["brokers"].([]any)); got != replicas {
				t.Errorf("clusterList --json: %d brokers, want %d", got, replicas)
			}
			c.mustAdmin(t, "updateTopic", "AdminTopic", "--queues", "2")
			if out := c.mustAdmin(t, "topicList"); !strings.Contains(out, "AdminTopic\n") {
				t.Errorf("topicList does not list AdminTopic:\n%s", out)
			}
		})
	}
}
