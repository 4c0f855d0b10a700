package runtime

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

// BenchmarkEchoLoopback measures the runtime's cost per request: client goroutines on real
// loopback TCP send requests to an echo node, each keeping inflight requests outstanding,
// and the node decodes each one, answers it on the loop and encodes the response. The
// clients are kept cheap (one pre-encoded request, responses skipped unparsed) so the
// figure is mostly the runtime's.
func BenchmarkEchoLoopback(b *testing.B) {
	for _, bc := range []struct{ clients, inflight int }{
		{1, 1}, {1, 64}, {16, 1}, {16, 64}, {64, 16},
	} {
		b.Run(fmt.Sprintf("clients=%d/inflight=%d", bc.clients, bc.inflight), func(b *testing.B) {
			benchEcho(b, bc.clients, bc.inflight)
		})
	}
}

func benchEcho(b *testing.B, clients, inflight int) {
	r := startNode(b, Config{ListenAddr: "127.0.0.1:0"}, &testNode{})
	req := codec.NewRequest(codec.ReqSendMessage, map[string]string{"topic": "bench", "queueId": "3"}, make([]byte, 128))
	req.Opaque = 42
	frame, err := codec.Encode(req)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]net.Conn, clients)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", r.Addr().String()); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, nc := range conns {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoClient(nc, frame, n, inflight); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// echoClient sends n copies of frame, inflight at a time, and reads a response for each.
func echoClient(nc net.Conn, frame []byte, n, inflight int) error {
	bw := bufio.NewWriterSize(nc, 64<<10)
	br := bufio.NewReaderSize(nc, 64<<10)
	var lw [4]byte
	for n > 0 {
		k := min(n, inflight)
		for range k {
			bw.Write(frame)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		for range k {
			if _, err := io.ReadFull(br, lw[:]); err != nil {
				return fmt.Errorf("read response: %w", err)
			}
			if _, err := br.Discard(int(binary.BigEndian.Uint32(lw[:]))); err != nil {
				return fmt.Errorf("read response: %w", err)
			}
		}
		n -= k
	}
	return nil
}

// BenchmarkEchoLoopbackBaseline is the same load against the simplest possible server: a
// goroutine per connection that decodes, encodes and writes back inline, with no event loop.
// The gap to BenchmarkEchoLoopback is the price of the loop and its goroutine handoffs.
func BenchmarkEchoLoopbackBaseline(b *testing.B) {
	for _, bc := range []struct{ clients, inflight int }{
		{1, 1}, {1, 64}, {16, 1}, {16, 64}, {64, 16},
	} {
		b.Run(fmt.Sprintf("clients=%d/inflight=%d", bc.clients, bc.inflight), func(b *testing.B) {
			benchEchoBaseline(b, bc.clients, bc.inflight)
		})
	}
}

func benchEchoBaseline(b *testing.B, clients, inflight int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReaderSize(nc, 64<<10)
				bw := bufio.NewWriterSize(nc, 64<<10)
				var out []byte
				for {
					frame, err := codec.ReadFrame(br, codec.DefaultMaxFrameBytes)
					if err != nil {
						return
					}
					cmd, err := codec.Decode(frame)
					if err != nil {
						return
					}
					resp := codec.NewResponse(cmd, codec.Success, "")
					resp.Body = cmd.Body
					out, _ = codec.AppendFrame(out[:0], resp)
					bw.Write(out)
					if br.Buffered() == 0 {
						if bw.Flush() != nil {
							return
						}
					}
				}
			}()
		}
	}()
	req := codec.NewRequest(codec.ReqSendMessage, map[string]string{"topic": "bench", "queueId": "3"}, make([]byte, 128))
	req.Opaque = 42
	frame, err := codec.Encode(req)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]net.Conn, clients)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	start := time.Now()
	var cwg sync.WaitGroup
	for i, nc := range conns {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := echoClient(nc, frame, n, inflight); err != nil {
				b.Error(err)
			}
		}()
	}
	cwg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
