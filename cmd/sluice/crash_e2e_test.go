package main

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
)

// sluiceBuild is one build of cmd/sluice, made once per test run.
type sluiceBuild struct {
	once sync.Once
	path string
	err  error
}

// builds are the builds tests use, by build tags.
var builds = map[string]*sluiceBuild{"": {}, "faultinject": {}}

// sluiceBinary builds cmd/sluice once per test run.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	return buildSluice(t, "")
}

// faultBinary builds cmd/sluice with -tags faultinject (broker/diskfile/faultinject.go), whose
// disk fails on demand: see there.
func faultBinary(t *testing.T) string {
	t.Helper()
	return buildSluice(t, "faultinject")
}

// buildSluice builds cmd/sluice with the build tags once per test run.
func buildSluice(t *testing.T, tags string) string {
	t.Helper()
	b := builds[tags]
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-tags", tags, "-o", b.path, ".").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build -tags %q: %v\n%s", tags, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// devProcess is a running 'sluice dev'.
type devProcess struct {
	cmd    *exec.Cmd
	stderr *logBuffer
	exited chan error
}

// logBuffer collects a process's stderr; tests may read it while the process writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDev starts 'sluice dev' and waits until it says it listens; extra flags are appended.
func startDev(t *testing.T, data, nsAddr, brokerAddr string, extra ...string) *devProcess {
	t.Helper()
	return startDevCmd(t, nil, sluiceBinary(t), nil, data, nsAddr, brokerAddr, extra...)
}

// startDevBinary is startDev with another build of sluice, and env added to its environment.
func startDevBinary(t *testing.T, bin string, env []string, data, nsAddr, brokerAddr string, extra ...string) *devProcess {
	t.Helper()
	return startDevCmd(t, nil, bin, env, data, nsAddr, brokerAddr, extra...)
}

// startDevCmd starts bin's 'sluice dev' through the command wrap (nil: none), with env added
// to its environment, and waits until it says it listens.
func startDevCmd(t *testing.T, wrap []string, bin string, env []string, data, nsAddr, brokerAddr string, extra ...string) *devProcess {
	t.Helper()
	// No metrics or console on their default ports, which parallel tests would contend for (a
	// test that wants them passes its own --metrics-addr or --console-addr, which wins).
	args := append([]string{"dev", "--data", data, "--namesrv-addr", nsAddr, "--broker-addr", brokerAddr, "--log-level", "warn",
		"--metrics-addr", "", "--console-addr", "off"}, extra...)
	argv := append(append(append([]string(nil), wrap...), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, stderr: &logBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var seen strings.Builder
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "press Ctrl-C") {
				ready <- seen.String()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.exited <- cmd.Wait()
	}()
	select {
	case out := <-ready:
		if !strings.Contains(out, brokerAddr) || !strings.Contains(out, nsAddr) {
			t.Fatalf("sluice dev did not say where it listens:\n%s", out)
		}
	case err := <-p.exited:
		t.Fatalf("sluice dev exited early: %v\n%s", err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice dev not ready after 30s\n%s", p.stderr)
	}
	return p
}

// waitSendable sends probes until the broker has registered and accepts sends.
func waitSendable(t *testing.T, c *clientrt.Client, topic string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.Send(client.Message{Topic: topic, Body: []byte("probe"), Properties: map[string]string{codec.PropUniqKey: "probe"}})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not accepting sends after 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type acked struct {
	queue  client.MessageQueue
	offset int64
	crc    uint32
}

// Sends under sync flush are acknowledged only after their fsync, so a kill -9 in the middle of
// a stream loses none of them: all come back, at their acknowledged offsets, in order, intact.
func TestKillDashNineLosesNoAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	data := t.TempDir()
	nsAddr, brokerAddr := freePort(t), freePort(t)
	const topic = "CrashTopic"
	p := startDev(t, data, nsAddr, brokerAddr)

	cli, err := clientrt.Start(client.DefaultConfig(nsAddr), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	waitSendable(t, cli, topic)

	var mu sync.Mutex
	ack := map[string]acked{}
	unknown := 0
	stop := make(chan struct{})
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(1, 2))
	go func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case sem <- struct{}{}:
			}
			id := fmt.Sprintf("m-%06d", n)
			body := make([]byte, 1024)
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			copy(body, id)
			crc := crc32.ChecksumIEEE(body)
			wg.Add(1)
			cli.SendAsync(client.Message{Topic: topic, Body: body, Properties: map[string]string{codec.PropUniqKey: id}},
				func(res client.SendResult, err error) {
					mu.Lock()
					if err == nil {
						ack[id] = acked{res.Queue, res.QueueOffset, crc}
					} else if !client.Definite(err) {
						unknown++
					}
					mu.Unlock()
					<-sem
					wg.Done()
				})
		}
	}()
	// Let a stream build up, then kill the broker in the middle of it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(ack)
		mu.Unlock()
		if n >= 3000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("acknowledged before kill -9: %d; outcome unknown: %d", len(ack), unknown)
	if len(ack) < 100 {
		t.Fatalf("only %d sends acknowledged before the kill", len(ack))
	}
	mu.Unlock()

	// Restart on the same data and read everything back.
	p2 := startDev(t, data, nsAddr, brokerAddr)
	reader, err := clientrt.Start(client.DefaultConfig(nsAddr), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var queues []client.MessageQueue
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if queues, err = reader.Queues(topic); err == nil {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no route for %s after restart: %v", topic, err)
		}
	}
	type stored struct {
		id  string
		crc uint32
	}
	got := map[client.MessageQueue][]stored{}
	for _, q := range queues {
		for _, m := range readQueue(t, reader, q, "crash-check") {
			got[q] = append(got[q], stored{codec.Property(m.Properties, codec.PropUniqKey), crc32.ChecksumIEEE(m.Body)})
		}
	}
	missing := 0
	for id, a := range ack {
		list := got[a.queue]
		if a.offset >= int64(len(list)) {
			missing++
			t.Errorf("acknowledged %s at %s offset %d is gone (queue now holds %d)", id, a.queue, a.offset, len(list))
			continue
		}
		s := list[a.offset]
		if s.id != id || s.crc != a.crc {
			t.Errorf("%s offset %d: acknowledged %s (crc %08x), read back %s (crc %08x)", a.queue, a.offset, id, a.crc, s.id, s.crc)
		}
	}
	total := 0
	for _, l := range got {
		total += len(l)
	}
	t.Logf("after restart: %d messages stored, %d acknowledged all present: %v", total, len(ack), missing == 0)

	// Ctrl-C stops it cleanly.
	if err := p2.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p2.exited:
		if err != nil {
			t.Fatalf("sluice dev did not exit cleanly on SIGINT: %v\n%s", err, p2.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sluice dev did not stop within 15s of SIGINT")
	}
}

// readQueue reads queue q from offset 0 to its end, failing the test if an offset is skipped.
func readQueue(t *testing.T, reader *clientrt.Client, q client.MessageQueue, group string) []*codec.Message {
	t.Helper()
	return readQueueFrom(t, reader, q, group, false)
}

// readQueueFrom reads queue q from offset 0, or if fromMin from its min offset (the first pull
// is moved there), to its end, failing the test if an offset is skipped. A new master may
// refuse pulls for a while (it confirms the log it took over): a failed pull is retried.
func readQueueFrom(t *testing.T, reader *clientrt.Client, q client.MessageQueue, group string, fromMin bool) []*codec.Message {
	t.Helper()
	var out []*codec.Message
	off := int64(0)
	for tries := 0; ; tries++ {
		res, err := reader.Pull(client.PullRequest{Queue: q, Group: group, Offset: off, MaxMsgs: 256})
		if err != nil {
			if tries < 50 {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			t.Fatalf("pull %s at %d: %v", q, off, err)
		}
		if fromMin && res.Status == codec.PullOffsetMoved && len(out) == 0 && res.NextBeginOffset > off {
			off = res.NextBeginOffset
			continue
		}
		if res.Status != codec.Success {
			return out
		}
		for _, m := range res.Msgs {
			if m.QueueOffset != off {
				t.Fatalf("%s: expected offset %d, got %d (order broken)", q, off, m.QueueOffset)
			}
			out = append(out, m)
			off++
		}
	}
}

// storedMsg is a message read back from a queue.
type storedMsg struct {
	queue client.MessageQueue
	msg   *codec.Message
}

// readTopic reads every queue of topic back (from offset 0) through the name server at ns,
// once its route is there, and returns the messages by UNIQ_KEY.
func readTopic(t *testing.T, ns, topic, group string) map[string]storedMsg {
	t.Helper()
	reader, err := clientrt.Start(client.DefaultConfig(ns), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var queues []client.MessageQueue
	waitFor(t, 20*time.Second, "the topic's route", func() bool {
		queues, err = reader.Queues(topic)
		return err == nil
	})
	out := map[string]storedMsg{}
	for _, q := range queues {
		for _, m := range readQueue(t, reader, q, group) {
			out[codec.Property(m.Properties, codec.PropUniqKey)] = storedMsg{q, m}
		}
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
