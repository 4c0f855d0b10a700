package main

// The harness for the compatibility tests (compat_*_test.go): each test starts its own
// 'sluice dev' process on free loopback ports and drives it with the unmodified official Go
// client, github.com/apache/rocketmq-client-go/v2. Everything a test creates (topics, groups,
// client instance names) is named after the test, because the official client keeps one client
// instance per client id in a process-wide table: two tests sharing an instance name would
// share connections and name servers.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func init() {
	rlog.SetLogLevel("error")
	// Broadcasting consumers keep their offsets in files under $HOME; keep them out of the
	// developer's home directory.
	// The go command finds its build and module caches through $HOME unless told, and the
	// tests build the sluice binary with it: pin them first, or that build starts from empty
	// caches (minutes on a loaded machine, and module downloads).
	if home, err := os.UserHomeDir(); err == nil {
		pinEnv("GOCACHE", func() (string, error) {
			dir, err := os.UserCacheDir()
			return filepath.Join(dir, "go-build"), err
		})
		pinEnv("GOPATH", func() (string, error) { return filepath.Join(home, "go"), nil })
		pinEnv("GOMODCACHE", func() (string, error) { return filepath.Join(os.Getenv("GOPATH"), "pkg", "mod"), nil })
	}
	if dir, err := os.MkdirTemp("", "sluice-compat-home-"); err == nil {
		os.Setenv("HOME", dir)
	}
}

// pinEnv sets the environment variable key to def() unless it is already set.
func pinEnv(key string, def func() (string, error)) {
	if os.Getenv(key) != "" {
		return
	}
	if v, err := def(); err == nil {
		os.Setenv(key, v)
	}
}

// compatCluster is one 'sluice dev' process (a name server and a broker) on free ports.
type compatCluster struct {
	NameServer string // literal ip:port, as the official client requires
	Broker     string
	Data       string
	extra      []string
	wrap       []string // runs the process through this command (e.g. prlimit); nil: none
	proc       *devProcess
	bin        string   // the sluice binary ("": sluiceBinary)
	env        []string // added to the process's environment
}

// startCompat starts 'sluice dev' with extra flags appended to its command line.
func startCompat(t *testing.T, extra ...string) *compatCluster {
	t.Helper()
	c := &compatCluster{NameServer: freePort(t), Broker: freePort(t), Data: filepath.Join(t.TempDir(), "data"), extra: extra}
	c.Start(t)
	return c
}

// Start starts the process (c.bin, or the usual build) with c.extra on c's ports and data.
func (c *compatCluster) Start(t *testing.T) {
	t.Helper()
	bin := c.bin
	if bin == "" {
		bin = sluiceBinary(t)
	}
	c.proc = startDevCmd(t, c.wrap, bin, c.env, c.Data, c.NameServer, c.Broker, c.extra...)
}

// Restart stops the process cleanly (SIGINT) and starts it again on the same ports and data.
func (c *compatCluster) Restart(t *testing.T) {
	t.Helper()
	c.Stop(t)
	c.Start(t)
}

// Stop stops the process with SIGINT and waits for it to exit.
func (c *compatCluster) Stop(t *testing.T) {
	t.Helper()
	if err := c.proc.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("signal sluice dev: %v", err)
	}
	select {
	case <-c.proc.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("sluice dev did not stop within 20s of SIGINT\n%s", c.proc.stderr)
	}
}

var instanceSeq atomic.Int64

// uniqueName makes a topic, group or instance name that no other test uses.
func uniqueName(t *testing.T, kind string) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return fmt.Sprintf("%s_%s_%d", kind, name, instanceSeq.Add(1))
}

// newProducer starts an official producer against c; it is shut down when the test ends.
func (c *compatCluster) newProducer(t *testing.T, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	base := []producer.Option{
		producer.WithNameServer([]string{c.NameServer}),
		producer.WithInstanceName(uniqueName(t, "inst")),
		producer.WithGroupName(uniqueName(t, "pg")),
		producer.WithRetry(2),
	}
	p, err := rocketmq.NewProducer(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start producer: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// newPushConsumer makes an official push consumer against c, not yet subscribed or started.
// The caller subscribes and starts it; it is shut down when the test ends (Shutdown twice is
// harmless).
func (c *compatCluster) newPushConsumer(t *testing.T, group string, opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	base := []consumer.Option{
		consumer.WithNameServer([]string{c.NameServer}),
		consumer.WithInstance(uniqueName(t, "inst")),
		consumer.WithGroupName(group),
	}
	pc, err := rocketmq.NewPushConsumer(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new push consumer: %v", err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	return pc
}

// newAdmin returns an official admin client against c.
func (c *compatCluster) newAdmin(t *testing.T) admin.Admin {
	t.Helper()
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.NameServer})))
	if err != nil {
		t.Fatalf("new admin: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// createTopic creates a topic with the official admin client and waits until the name server
// routes it, so consumers can start.
func (c *compatCluster) createTopic(t *testing.T, topic string, queues int) {
	t.Helper()
	a := c.newAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.Broker),
		admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues))
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mqs, err := a.FetchPublishMessageQueues(ctx, topic)
		if err == nil && len(mqs) == queues {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not routed with %d queues after 10s: %v (%d queues)", topic, queues, err, len(mqs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
