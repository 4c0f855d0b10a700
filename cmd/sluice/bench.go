package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
)

// runBench drives a running cluster from this process: producers send fixed-size messages with
// a window of requests in flight, then one consumer reads them all back. It reports the
// acknowledged send rate, send latency percentiles, and the consume rate. With --rate it runs
// the steady-rate mode instead (bench_rate.go): that many messages a second for --duration,
// with a consumer group reading along and a report line every --report-every.
func runBench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	ns := fs.String("namesrv", "127.0.0.1:9876", "name server address")
	topic := fs.String("topic", fmt.Sprintf("Bench%d", time.Now().UnixNano()%1e6), "topic (new by default)")
	n := fs.Int("messages", 200000, "messages to send (without --rate)")
	size := fs.Int("size", 1024, "message body bytes")
	clients := fs.Int("clients", 4, "client connections (each its own event loop)")
	inflight := fs.Int("inflight", 512, "sends in flight per client")
	consume := fs.Bool("consume", true, "read every message back after sending (with --rate: a consumer group reads along)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to this file")
	rate := fs.Float64("rate", 0, "steady-rate mode: send this many messages a second, open loop, for --duration (instead of --messages)")
	duration := fs.Duration("duration", time.Minute, "with --rate: how long to send")
	every := fs.Duration("report-every", 10*time.Second, "with --rate: print a report line this often")
	group := fs.String("group", "", "with --rate: the consumer group reading along (default: bench-<topic>)")
	brokerPID := fs.Int("broker-pid", 0, "with --rate: sample this process's resident memory (/proc/PID/status VmRSS) into the report")
	dataDir := fs.String("data-dir", "", "with --rate: sample the disk use of this data directory (and its file system) and count the files deleted from it")
	var progressOn progressFlag
	fs.Var(&progressOn, "progress", "a live progress line on stderr, once a second: elapsed time, messages, rate, latency p50 and p99, errors (default: when stderr is a terminal)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *rate < 0 || (*rate > 0 && (*duration <= 0 || *every <= 0)) {
		fmt.Fprintln(os.Stderr, "sluice bench: --rate wants a positive rate, --duration and --report-every")
		return 2
	}
	if *clients < 1 || *inflight < 1 || *size < 1 {
		fmt.Fprintln(os.Stderr, "sluice bench: --clients, --inflight and --size must be at least 1")
		return 2
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice bench:", err)
			return 1
		}
		defer stop()
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var cls []*clientrt.Client
	for i := 0; i < *clients; i++ {
		cfg := client.DefaultConfig(*ns)
		cfg.ClientID = fmt.Sprintf("bench-%d@%d", i, os.Getpid())
		c, err := clientrt.Start(cfg, quiet)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice bench:", err)
			return 1
		}
		defer c.Close()
		cls = append(cls, c)
	}
	// Create the topic and warm the routes.
	for _, c := range cls {
		var err error
		for try := 0; try < 50; try++ {
			if _, err = c.Send(client.Message{Topic: *topic, Body: []byte("warm-up")}); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice bench: warm-up send:", err)
			return 1
		}
	}
	terminal := isTerminal(os.Stderr)
	prog := startProgress(os.Stderr, terminal, progressOn.enabled(terminal))
	defer prog.stop()
	out := prog.above(os.Stdout)
	if *rate > 0 {
		o := rateOptions{topic: *topic, rate: *rate, duration: *duration, every: *every, size: *size,
			inflight: *clients * *inflight, consume: *consume, group: *group, brokerPID: *brokerPID,
			dataDir: *dataDir, drain: 15 * time.Second, progress: prog}
		if o.group == "" {
			o.group = "bench-" + *topic
		}
		return runRateBench(o, cls, out)
	}
	body := make([]byte, *size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, *n)
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	per := *n / *clients
	for _, c := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := make(chan struct{}, *inflight)
			var inner sync.WaitGroup
			for i := 0; i < per; i++ {
				sem <- struct{}{}
				inner.Add(1)
				t0 := time.Now()
				c.SendAsync(client.Message{Topic: *topic, Body: body}, func(_ client.SendResult, err error) {
					d := time.Since(t0)
					prog.sendDone(d, err)
					mu.Lock()
					if err != nil {
						errs++
					} else {
						lat = append(lat, d)
					}
					mu.Unlock()
					<-sem
					inner.Done()
				})
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	fmt.Fprintf(out, "send: %d acknowledged, %d failed in %v: %.0f msgs/s, %.1f MB/s; latency p50 %v p99 %v max %v\n",
		len(lat), errs, el.Round(time.Millisecond), float64(len(lat))/el.Seconds(),
		float64(len(lat)**size)/el.Seconds()/1e6, pct(0.50), pct(0.99), pct(1))
	if !*consume {
		return 0
	}
	queues, err := cls[0].Queues(*topic)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice bench: queues:", err)
		return 1
	}
	start = time.Now()
	var got int64
	var cwg sync.WaitGroup
	for i, q := range queues {
		c := cls[i%len(cls)]
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			var off int64
			for {
				res, err := c.Pull(client.PullRequest{Queue: q, Group: "bench", Offset: off, MaxMsgs: 256})
				if err != nil || res.Status != codec.Success {
					return
				}
				off = res.NextBeginOffset
				mu.Lock()
				got += int64(len(res.Msgs))
				mu.Unlock()
				prog.readDone(int64(len(res.Msgs)))
			}
		}()
	}
	cwg.Wait()
	el = time.Since(start)
	prog.stop()
	fmt.Printf("consume: %d messages in %v: %.0f msgs/s\n", got, el.Round(time.Millisecond), float64(got)/el.Seconds())
	return 0
}
