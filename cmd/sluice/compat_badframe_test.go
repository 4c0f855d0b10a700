package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/sluicemq/sluice/broker/codec"
)

// badFrame is bytes a misbehaving peer writes on a fresh connection, and what the server must
// say about it when it closes that connection.
type badFrame struct {
	name   string
	bytes  []byte
	reason string // a substring of the logged error
	// leadingRequest: the bytes start with one well-formed request (opaque 4242). The server may
	// or may not answer it before it reads the bad frame and closes the connection.
	leadingRequest bool
}

// lengthWord prefixes content with a frame-length word of n (which need not match).
func lengthWord(n uint32, content []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, n), content...)
}

// framed builds a frame whose length word is right, with the given header-length word.
func framed(headerWord uint32, content string) []byte {
	body := binary.BigEndian.AppendUint32(nil, headerWord)
	body = append(body, content...)
	return lengthWord(uint32(len(body)), body)
}

// jsonFramed builds a frame with a JSON header of the given text.
func jsonFramed(header string) []byte {
	return framed(uint32(codec.SerializeJSON)<<24|uint32(len(header)), header)
}

func badFrames(t *testing.T) []badFrame {
	t.Helper()
	// Random bytes inside a well-formed length word: a fixed seed, so the case is the same in
	// every run; it must not decode by accident (checked here, not assumed).
	rng := rand.New(rand.NewPCG(7, 7))
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	if _, err := codec.Decode(garbage); err == nil {
		t.Fatal("test bug: the random garbage decodes as a frame")
	}
	valid, err := codec.Encode(&codec.Command{Code: codec.ReqGetRouteInfoByTopic, Language: "GO", Version: 317,
		Opaque: 4242, ExtFields: map[string]string{"topic": "TBW102"}})
	if err != nil {
		t.Fatal(err)
	}
	return []badFrame{
		{name: "length above the maximum", reason: "exceeds limit",
			bytes: lengthWord(codec.DefaultMaxFrameBytes+1, []byte{0, 0, 0, 2, '{', '}'})},
		{name: "negative length (-1 as int32)", reason: "frame length 4294967295 exceeds limit",
			bytes: lengthWord(0xFFFFFFFF, []byte{0, 0, 0, 2, '{', '}'})},
		{name: "most negative length", reason: "frame length 2147483648 exceeds limit",
			bytes: lengthWord(0x80000000, nil)},
		{name: "zero length", reason: "frame length 0 is shorter than its header-length word",
			bytes: lengthWord(0, nil)},
		{name: "length shorter than the header-length word", reason: "frame length 3 is shorter",
			bytes: lengthWord(3, []byte{0, 0, 0})},
		{name: "header length beyond the frame", reason: "header length 16 exceeds frame of 4 bytes",
			bytes: lengthWord(4, []byte{0, 0, 0, 16})},
		{name: "unknown serialize type", reason: "unknown serialize type 2",
			bytes: framed(2<<24|2, "{}")},
		{name: "truncated JSON header", reason: "json header",
			bytes: jsonFramed(`{"code":105,"language":"GO","version":317,"opa`)},
		{name: "garbled JSON header", reason: "json header",
			bytes: jsonFramed(`{"code":105 "opaque":1,"extFields":{"topic":"T"}}`)},
		// Numbers and booleans as ext values are fine (the Java broker reads them as strings,
		// and ali-ons writes them); extFields that is not an object is not.
		{name: "extFields not an object", reason: "json header: extFields is a JSON array",
			bytes: jsonFramed(`{"code":10,"language":"GO","version":317,"opaque":9,"flag":0,"extFields":["topic","T"]}`)},
		{name: "code beyond int32", reason: "code: 2147483648 is not a 32-bit integer",
			bytes: jsonFramed(`{"code":2147483648,"language":"GO","version":317,"opaque":9,"flag":0}`)},
		{name: "truncated binary header", reason: "binary header of 5 bytes",
			bytes: framed(uint32(codec.SerializeRocketMQ)<<24|5, "\x00\x0a\x09\x01\x3d")},
		{name: "random garbage in a frame", reason: "bad frame",
			bytes: lengthWord(uint32(len(garbage)), garbage)},
		{name: "an HTTP request", reason: "exceeds limit",
			bytes: []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")},
		{name: "a valid request, then garbage", reason: "exceeds limit", leadingRequest: true,
			bytes: append(valid, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3)},
	}
}

// sendBadFrame writes bf on a new connection to addr and checks that the server closes it
// without answering it (an answer to a leading valid request is allowed). It returns the local
// address of the connection, which the server logs as the peer.
func sendBadFrame(t *testing.T, addr string, bf badFrame) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", bf.name, addr, err)
	}
	defer nc.Close()
	local := nc.LocalAddr().String()
	// The server may close the connection before it has read all of it: a failed write is
	// fine, what counts is that the connection ends.
	_, _ = nc.Write(bf.bytes)
	if err := nc.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	if _, err := br.Peek(1); bf.leadingRequest && err == nil {
		frame, err := codec.ReadFrame(br, codec.DefaultMaxFrameBytes)
		if err != nil {
			t.Fatalf("%s to %s: reading the answer to the valid request: %v", bf.name, addr, err)
		}
		resp, err := codec.Decode(frame)
		if err != nil || !resp.IsResponse() || resp.Opaque != 4242 {
			t.Fatalf("%s to %s: the answer to the valid request is %+v (%v), want a response with opaque 4242", bf.name, addr, resp, err)
		}
	}
	var buf [512]byte
	n, err := br.Read(buf[:])
	switch {
	case n > 0:
		t.Errorf("%s to %s: the server answered a bad frame with %q", bf.name, addr, buf[:n])
	case errors.Is(err, io.EOF) || isConnReset(err):
		// closed by the server, as it must be
	default:
		t.Errorf("%s to %s: the connection was not closed by the server: %v", bf.name, addr, err)
	}
	return local
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout() && strings.Contains(op.Err.Error(), "connection reset")
}

// Malformed and oversized frames, sent on their own connections to the broker port and to the
// name server port of a running 'sluice dev': each such connection is closed by the server with
// a warning naming the peer and the reason, while the official client's producer and push
// consumer keep working on their own connections, the process stays up, and every stored
// message reads back unchanged afterwards.
func TestCompatBadFramesCloseOnlyTheirConnection(t *testing.T) {
	t.Parallel()
	c := startCompat(t)
	topic := uniqueName(t, "T")
	c.createTopic(t, topic, 4)
	p := c.newProducer(t)

	var mu sync.Mutex
	sent := map[string]string{} // msgId -> body
	send := func(body string) error {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
		if err == nil && res.Status != primitive.SendOK {
			err = fmt.Errorf("status %v", res.Status)
		}
		if err != nil {
			return fmt.Errorf("send %s: %w", body, err)
		}
		mu.Lock()
		sent[res.MsgID] = body
		mu.Unlock()
		return nil
	}
	start := time.Now()
	step := func(what string) { t.Logf("%6.2fs %s", time.Since(start).Seconds(), what) }
	for i := range 20 {
		if err := send(fmt.Sprintf("before-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	// An official push consumer and producer at work while the bad frames arrive.
	live := newCollector(t, c, topic)
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := send(fmt.Sprintf("during-%d", i)); err != nil {
				done <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	step("stored 20 messages, consumer and producer started")
	cases := badFrames(t)
	for _, target := range []struct{ name, addr string }{{"broker", c.Broker}, {"name server", c.NameServer}} {
		for _, bf := range cases {
			local := sendBadFrame(t, target.addr, bf)
			waitFor(t, 10*time.Second, fmt.Sprintf("a warning about %q from %s on the %s", bf.name, local, target.name), func() bool {
				return hasCloseWarning(c.proc.stderr.String(), local, bf.reason)
			})
		}
	}
	step("bad frames sent")
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("the producer running alongside failed: %v", err)
	}
	select {
	case err := <-c.proc.exited:
		t.Fatalf("sluice dev exited: %v\n%s", err, c.proc.stderr)
	default:
	}
	mu.Lock()
	want := len(sent)
	mu.Unlock()
	if want < 25 {
		t.Fatalf("only %d messages sent; the producer alongside sent almost nothing", want)
	}
	// The name server still routes the topic (the broker's registration survived).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if mqs, err := c.newAdmin(t).FetchPublishMessageQueues(ctx, topic); err != nil || len(mqs) != 4 {
		t.Fatalf("route of %s after the bad frames: %d queues, %v", topic, len(mqs), err)
	}
	step("route checked")
	live.waitAll(t, sent, &mu)
	step("the consumer alongside got everything")
	// A new group reads the topic from its first offset: exactly what was sent, unchanged.
	newCollector(t, c, topic).waitAll(t, sent, &mu)
	step("a new group read everything back")
}

// hasCloseWarning reports whether log holds a warning that the server closed the connection
// from peer, with reason in its error.
func hasCloseWarning(log, peer, reason string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "closing connection") &&
			strings.Contains(line, "remote="+peer+" ") && strings.Contains(line, reason) {
			return true
		}
	}
	return false
}

// collector is an official push consumer in a group of its own, reading a topic from its
// first offset and keeping every message by msgId.
type collector struct {
	mu  sync.Mutex
	got map[string][]string // msgId -> bodies received
}

func newCollector(t *testing.T, c *compatCluster, topic string) *collector {
	t.Helper()
	col := &collector{got: map[string][]string{}}
	pc := c.newPushConsumer(t, uniqueName(t, "cg"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	err := pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, m := range msgs {
			col.got[m.MsgId] = append(col.got[m.MsgId], string(m.Body))
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	return col
}

// waitAll waits until the collector holds every message of sent, then checks it holds exactly
// those, each once, with the body sent.
func (col *collector) waitAll(t *testing.T, sent map[string]string, sentMu *sync.Mutex) {
	t.Helper()
	sentMu.Lock()
	defer sentMu.Unlock()
	waitFor(t, 30*time.Second, fmt.Sprintf("all %d messages consumed", len(sent)), func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		return len(col.got) >= len(sent)
	})
	col.mu.Lock()
	defer col.mu.Unlock()
	for id, bodies := range col.got {
		want, ok := sent[id]
		switch {
		case !ok:
			t.Errorf("received message %s (%q) that nobody sent", id, bodies)
		case len(bodies) != 1 || bodies[0] != want:
			t.Errorf("message %s: received %q, sent %q once", id, bodies, want)
		}
	}
}
