package main

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// SIGTERM in the middle of a stream of sends from the official Go client: the process answers
// or refuses what is in flight, flushes, and exits 0 within seconds (a push consumer's parked
// pulls do not hold it up), and every send it acknowledged is there after a restart, at its
// acknowledged offset, intact. Under async flush too: a clean stop flushes what the disk held
// in memory, which a stop without the flush would lose although it was acknowledged.
func TestSIGTERMDuringSendsLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	for _, flush := range []string{"sync", "async"} {
		t.Run(flush, func(t *testing.T) {
			c := startCompat(t, "--flush", flush)
			topic := uniqueName(t, "topic")
			c.createTopic(t, topic, 4)

			// A push consumer long-polls the topic, so pulls are parked when SIGTERM comes.
			pc := c.newPushConsumer(t, uniqueName(t, "cg"))
			if err := pc.Subscribe(topic, consumer.MessageSelector{}, func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				return consumer.ConsumeSuccess, nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := pc.Start(); err != nil {
				t.Fatal(err)
			}
			p := c.newProducer(t, producer.WithRetry(0), producer.WithSendMsgTimeout(3*time.Second))

			type ackedSend struct {
				queue  int
				offset int64
				crc    uint32
			}
			var mu sync.Mutex
			ack := map[string]ackedSend{}
			failed := 0
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						body := make([]byte, 512)
						for j := range body {
							body[j] = byte(rng.Uint32())
						}
						res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body))
						mu.Lock()
						if err == nil && res.Status == primitive.SendOK {
							ack[res.MsgID] = ackedSend{res.MessageQueue.QueueId, res.QueueOffset, crc32.ChecksumIEEE(body)}
						} else {
							failed++
						}
						mu.Unlock()
						if err != nil {
							time.Sleep(20 * time.Millisecond)
						}
					}
				}()
			}
			waitFor(t, 20*time.Second, "500 acknowledged sends", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(ack) >= 500
			})
			start := time.Now()
			if err := c.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-c.proc.exited:
				if err != nil {
					t.Fatalf("sluice dev exited with %v after SIGTERM, want 0\n%s", err, c.proc.stderr)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("sluice dev still running 15s after SIGTERM\n%s", c.proc.stderr)
			}
			stopped := time.Since(start)
			close(stop)
			wg.Wait()
			mu.Lock()
			t.Logf("%s flush: %d sends acknowledged, %d failed or refused; exited 0 %v after SIGTERM", flush, len(ack), failed, stopped.Round(time.Millisecond))
			if stopped > 5*time.Second {
				t.Errorf("shutdown took %v: parked pulls or sends held it up", stopped)
			}
			mu.Unlock()

			c.proc = startDev(t, c.Data, c.NameServer, c.Broker, c.extra...)
			stored := map[string]ackedSend{}
			for id, sm := range readTopic(t, c.NameServer, topic, "sigterm-check") {
				stored[id] = ackedSend{int(sm.queue.QueueID), sm.msg.QueueOffset, crc32.ChecksumIEEE(sm.msg.Body)}
			}
			lost := 0
			for id, a := range ack {
				if got, ok := stored[id]; !ok || got != a {
					lost++
					if lost <= 5 {
						t.Errorf("acknowledged %s (queue %d offset %d) after restart: %+v (present %v)", id, a.queue, a.offset, got, ok)
					}
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d acknowledged sends lost or changed", lost, len(ack))
			}
			c.Stop(t)
		})
	}
}

// sluice dev --replicas 3 runs a controller and a group of three in one process: it says which
// replica is master, and after 'kill N' on stdin, that another one is.
func TestDevReplicasFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	ns, br := freePortBlock(t, 2, devControllerPort), freePortBlock(t, 3, devReplicaPortStep)
	cmd := exec.Command(sluiceBinary(t), "dev", "--replicas", "3", "--data", t.TempDir(), "--namesrv-addr", ns,
		"--broker-addr", br, "--log-level", "warn")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	lines := startLines(t, cmd)
	// Kill the master only once both slaves are in sync: one that is not cannot take over.
	var master string
	for master == "" {
		m := waitLines(t, lines, `broker-a master is replica (\d) \(.*\), in sync: \[(.*)\]`, 60*time.Second)
		if len(strings.Fields(m[2])) == 3 {
			master = m[1]
		}
	}
	if _, err := fmt.Fprintf(stdin, "kill %s\n", master); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, `replica `+master+` stopped`, 10*time.Second)
	for {
		next := waitLine(t, lines, `broker-a master is replica (\d)`, 30*time.Second)
		if next != master {
			t.Logf("master moved from replica %s to replica %s", master, next)
			break
		}
	}
	out, err := exec.Command(sluiceBinary(t), "admin", "cluster", "list", "--namesrv", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("admin cluster list: %v\n%s", err, out)
	}
	t.Logf("admin cluster list:\n%s", out)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, `sluice: stopped`, 15*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sluice dev --replicas 3 exited with %v after SIGTERM", err)
	}
}

// freePortBlock finds a loopback address whose port and the n-1 ports step apart above it are
// all free (sluice dev --replicas puts its controller and replicas there).
func freePortBlock(t *testing.T, n, step int) string {
	t.Helper()
	for try := 0; try < 200; try++ {
		base := 20000 + rand.IntN(30000)
		var lns []net.Listener
		for i := 0; i < n; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i*step))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return fmt.Sprintf("127.0.0.1:%d", base)
		}
	}
	t.Fatal("no block of free ports found")
	return ""
}

// startLines starts cmd and returns its stdout's lines; stderr is kept for failures. The
// process is killed when the test ends if it still runs.
func startLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	return startLinesTo(t, cmd, &logBuffer{})
}

// startLinesTo is startLines with the process's stderr collected in stderr.
func startLinesTo(t *testing.T, cmd *exec.Cmd, stderr *logBuffer) <-chan string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("stderr of %v:\n%s", cmd.Args, stderr)
		}
	})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// waitLine reads lines until one matches pattern and returns its first group ("" if none).
func waitLine(t *testing.T, lines <-chan string, pattern string, timeout time.Duration) string {
	t.Helper()
	m := waitLines(t, lines, pattern, timeout)
	if len(m) > 1 {
		return m[1]
	}
	return ""
}

// waitLines reads lines until one matches pattern and returns the match and its groups.
func waitLines(t *testing.T, lines <-chan string, pattern string, timeout time.Duration) []string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line matching %q", pattern)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %q within %v", pattern, timeout)
		}
	}
}
