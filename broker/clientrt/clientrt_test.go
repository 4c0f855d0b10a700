package clientrt

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/namesrv"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/runtime"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startCluster starts a name server and a broker in this process, on loopback, and returns
// the name server's address.
func startCluster(t *testing.T) string {
	t.Helper()
	ns := runtime.New(runtime.Config{ListenAddr: "127.0.0.1:0", Logger: quiet}, nil,
		func(env node.Env) (node.Handler, error) { return namesrv.New(env, namesrv.DefaultConfig()), nil })
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	brokerAddr := ln.Addr().String()
	ln.Close()
	disk, err := diskfile.Open(t.TempDir(), diskfile.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg := brokernode.DefaultConfig()
	cfg.Addr, cfg.NameServers = brokerAddr, []string{ns.Addr().String()}
	cfg.RegisterInterval = time.Second
	b := runtime.New(runtime.Config{ListenAddr: brokerAddr, Logger: quiet}, disk,
		func(env node.Env) (node.Handler, error) { return brokernode.New(env, cfg) })
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return ns.Addr().String()
}

// Many goroutines share one client: synchronous and asynchronous sends, pulls, route lookups
// and offset commits at once, then a Close while calls may still be in flight. Every
// acknowledged send is pulled back. Run under -race (make test does), this is the client
// runtime's race check.
func TestConcurrentCallsShareOneClient(t *testing.T) {
	nsAddr := startCluster(t)
	c, err := Start(client.DefaultConfig(nsAddr), quiet)
	if err != nil {
		t.Fatal(err)
	}
	const topic = "ClientRTTopic"
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.Send(client.Message{Topic: topic, Body: []byte("probe")}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no send accepted in 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var mu sync.Mutex
	acked := map[string]bool{"probe": true}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var async sync.WaitGroup
			for i := range 40 {
				id := fmt.Sprintf("w%d-%d", w, i)
				m := client.Message{Topic: topic, Body: []byte(id), Properties: map[string]string{codec.PropUniqKey: id}}
				record := func(_ client.SendResult, err error) {
					if err == nil {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
					}
				}
				if i%2 == 0 {
					record(c.Send(m))
					continue
				}
				async.Add(1)
				c.SendAsync(m, func(r client.SendResult, err error) { record(r, err); async.Done() })
				if qs, err := c.Queues(topic); err == nil && len(qs) > 0 {
					q := qs[i%len(qs)]
					if _, err := c.Pull(client.PullRequest{Queue: q, Group: "g", Offset: 0, MaxMsgs: 8}); err != nil {
						t.Errorf("pull: %v", err)
					}
					c.CommitOffset("g", q, int64(i))
					if _, _, err := c.QueryOffset("g", q); err != nil {
						t.Errorf("query offset: %v", err)
					}
				}
			}
			async.Wait()
		}()
	}
	wg.Wait()

	qs, err := c.Queues(topic)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, q := range qs {
		for off := int64(0); ; {
			r, err := c.Pull(client.PullRequest{Queue: q, Group: "check", Offset: off, MaxMsgs: 64})
			if err != nil {
				t.Fatalf("pull %v at %d: %v", q, off, err)
			}
			if r.Status != codec.Success {
				break
			}
			for _, m := range r.Msgs {
				id := codec.Property(m.Properties, codec.PropUniqKey)
				if id == "" {
					id = string(m.Body)
				}
				got[id] = true
			}
			off = r.NextBeginOffset
		}
	}
	mu.Lock()
	for id := range acked {
		if !got[id] {
			t.Errorf("acknowledged %s not pulled back", id)
		}
	}
	if len(acked) < 200 {
		t.Errorf("only %d of 241 sends acknowledged", len(acked))
	}
	mu.Unlock()

	// Close while calls are in flight: each returns (an error or a result), none hangs.
	var inflight sync.WaitGroup
	for range 4 {
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			for range 20 {
				c.Send(client.Message{Topic: topic, Body: []byte("late")})
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	c.Close()
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("calls still blocked 30s after Close")
	}
}
