package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/sluicemq/sluice/broker/codec"
)

// abuseRSSBoundBytes is the most the broker process may hold (its peak resident set) while it
// is abused as TestAbuseLeavesGoodClientsServed does: about 110 MB is the broker at rest, and
// the abuse may add the partly read frames' budget and the bytes queued for peers that do not
// read (64 MiB each in that test), the loop's inbox (64 MiB) and thousands of connections'
// goroutines and buffers. The broker runs with GOMEMLIMIT=abuseMemLimit, as an operator sets
// a JVM's -Xmx: without a limit Go's collector lets the heap reach twice what is live before
// it collects, so the peak would follow the machine's load rather than the budgets.
const (
	abuseRSSBoundBytes = 400 << 20
	abuseMemLimit      = "256MiB"
)

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the broker's memory from: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// dialFrom dials addr from the loopback address src (127.0.0.0/8 is all loopback on Linux), so
// the abuse comes from other addresses than the good client's 127.0.0.1.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.Dial("tcp", addr)
}

// A broker and name server under abuse (idle connections by the thousand, slow-loris senders,
// clients that never read their answers, random bytes, oversized and half-sent frames) close
// the abusive connections by their limits and go on serving: a well-behaved official client
// sends and consumes throughout with nothing lost, and the broker's memory stays bounded.
func TestAbuseLeavesGoodClientsServed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes and opens thousands of connections")
	}
	dir := t.TempDir()
	nsAddr, brAddr := freePort(t), freePort(t)
	_, nsPort, _ := net.SplitHostPort(nsAddr)
	_, brPort, _ := net.SplitHostPort(brAddr)
	// The broker closes idle connections after 25 s: longer than the official consumer's
	// long polls (20 s), during which its connection is quiet. The name server keeps Java's
	// 120 s: a broker registers every 30 s, and a name server drops the routes of a broker
	// whose connection closes.
	limits := "frameReadTimeoutMillis=2000\nwriteStallTimeoutMillis=2000\nmaxPartialFrameBytes=67108864\nmaxOutboundBytesTotal=67108864\nmaxConnectionsPerAddress=1000\n"
	nsConf, brConf := filepath.Join(dir, "namesrv.conf"), filepath.Join(dir, "broker.conf")
	os.WriteFile(nsConf, []byte("bindAddress=127.0.0.1\nlistenPort="+nsPort+"\n"+limits), 0o644)
	os.WriteFile(brConf, []byte("brokerName=broker-a\nbrokerIP1=127.0.0.1\nlistenPort="+brPort+"\nnamesrvAddr="+nsAddr+
		"\nstorePathRootDir="+filepath.Join(dir, "broker")+"\nserverChannelMaxIdleTimeSeconds=25\n"+limits), 0o644)
	startProcess(t, "listening on", "namesrv", "--config", nsConf, "--log-level", "error")
	br := startProcessEnv(t, []string{"GOMEMLIMIT=" + abuseMemLimit}, "listening on", "broker", "--config", brConf, "--log-level", "error")
	c := &compatCluster{NameServer: nsAddr, Broker: brAddr}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var opened, refused, cut atomic.Int64
	abuse := func(name string, f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	// 2,500 idle connections from two addresses: 1,000 each are let in (the per-address
	// limit) and closed after the idle timeout; the rest are refused at once.
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		abuse("idle", func() {
			var idle sync.WaitGroup
			for range 1250 {
				nc, err := dialFrom(src, brAddr)
				if err != nil {
					continue
				}
				opened.Add(1)
				at := time.Now()
				idle.Add(1)
				go func() {
					defer idle.Done()
					defer nc.Close()
					nc.SetReadDeadline(at.Add(40 * time.Second))
					_, err := nc.Read(make([]byte, 1))
					switch {
					case err == nil || isTimeoutErr(err):
					case time.Since(at) < 10*time.Second: // closed at accept
						refused.Add(1)
					default: // closed when idle for 25 s
						cut.Add(1)
					}
				}()
			}
			idle.Wait()
		})
	}
	// Slow loris: a frame begun and trickled a byte a second.
	for i := range 20 {
		abuse("slowloris", func() {
			nc, err := dialFrom("127.0.0.4", []string{brAddr, nsAddr}[i%2])
			if err != nil {
				return
			}
			defer nc.Close()
			nc.Write(lengthPrefix(4096))
			for ctx.Err() == nil {
				if _, err := nc.Write([]byte{0}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	// Clients that never read: route and topic-config requests by the ten thousand.
	for i := range 5 {
		abuse("nonreader", func() {
			nc, err := dialFrom("127.0.0.5", []string{brAddr, nsAddr}[i%2])
			if err != nil {
				return
			}
			defer nc.Close()
			code := []int16{codec.ReqGetAllTopicConfig, codec.ReqGetBrokerClusterInfo}[i%2]
			for n := int32(0); ctx.Err() == nil; n++ {
				frame, _ := codec.Encode(&codec.Command{Code: code, Opaque: n, Language: "GO", Version: 317})
				nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := nc.Write(frame); err != nil {
					return // the node closed it
				}
			}
		})
	}
	// Random bytes, oversized length words, and frames half sent then abandoned.
	for i := range 60 {
		abuse("garbage", func() {
			nc, err := dialFrom("127.0.0.6", []string{brAddr, nsAddr}[i%2])
			if err != nil {
				return
			}
			defer nc.Close()
			switch i % 3 {
			case 0:
				junk := make([]byte, 64<<10)
				for j := range junk {
					junk[j] = byte(rand.IntN(256))
				}
				nc.Write(junk)
			case 1:
				nc.Write(lengthPrefix(0x7fffffff))
			case 2:
				nc.Write(append(lengthPrefix(16<<20-1), make([]byte, 8<<20)...))
			}
			nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			nc.Read(make([]byte, 1))
		})
	}

	// Meanwhile, the good client.
	topic := uniqueName(t, "abuse")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)
	sent := map[string]*primitive.Message{}
	start := time.Now()
	for i := 0; time.Since(start) < 12*time.Second || i < 200; i++ {
		m := userMessage(topic, i)
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.SendSync(sctx, m)
		scancel()
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d during the abuse (after %v): %v %v", i, time.Since(start), res, err)
		}
		sent[res.MsgID] = m
		time.Sleep(20 * time.Millisecond)
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
	expectExactly(t, in, sent, 60*time.Second)
	cancel()
	wg.Wait()

	rss := peakRSS(t, br.cmd.Process.Pid)
	t.Logf("%d messages sent and consumed during the abuse; idle connections: %d opened, %d refused at once, %d closed once idle; broker peak RSS %d MiB (bound %d MiB)",
		len(sent), opened.Load(), refused.Load(), cut.Load(), rss>>20, abuseRSSBoundBytes>>20)
	if refused.Load() == 0 {
		t.Error("no idle connection was refused: the per-address limit did not hold")
	}
	if cut.Load()+refused.Load() < opened.Load()*9/10 || cut.Load() < 1000 {
		t.Errorf("of %d idle connections, %d were refused and %d closed once idle; want every one closed, and the first 1,000 of each address idle for 25 s", opened.Load(), refused.Load(), cut.Load())
	}
	if rss > abuseRSSBoundBytes {
		t.Errorf("broker peak RSS %d MiB, bound %d MiB", rss>>20, abuseRSSBoundBytes>>20)
	}
}

func lengthPrefix(n uint32) []byte {
	return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
