package brokernode

import (
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/nodetest"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// brokerEnv is the nodetest.Env a broker test drives, with the shorthands the tests use.
type brokerEnv struct {
	*nodetest.Env
	t *testing.T
}

func newBrokerEnv(t *testing.T, disk *simdisk.Disk) brokerEnv {
	return brokerEnv{nodetest.New(t, disk), t}
}

// checkInvariants fails the test if h is a broker whose invariants are broken.
func (e brokerEnv) checkInvariants(h node.Handler) {
	e.t.Helper()
	if b, ok := h.(*Broker); ok && b != nil {
		if err := b.CheckInvariants(); err != nil {
			e.t.Fatalf("invariant broken: %v", err)
		}
	}
}

// accept opens an inbound connection from remote.
func (e brokerEnv) accept(h node.Handler, remote string) node.ConnID { return e.Accept(h, remote) }

// advance moves time forward by d, firing due timers in time order (then in the order set).
func (e brokerEnv) advance(h node.Handler, d time.Duration) {
	e.t.Helper()
	e.Advance(h, d)
	e.checkInvariants(h)
}

// liveTimers lists the timers neither fired nor cancelled whose tag satisfies match.
func (e brokerEnv) liveTimers(match func(tag any) bool) []*nodetest.Timer {
	var out []*nodetest.Timer
	for _, t := range e.LiveTimers() {
		if match(t.Tag) {
			out = append(out, t)
		}
	}
	return out
}

// commitLogSyncs counts the fsyncs requested for the commit log so far.
func (e brokerEnv) commitLogSyncs() int {
	n := 0
	for _, s := range e.Syncs() {
		if s.Log.Name() == "commitlog" {
			n++
		}
	}
	return n
}

// brokerHarness is one broker on a brokerEnv, with helpers to speak to it.
type brokerHarness struct {
	t      *testing.T
	env    brokerEnv
	b      *Broker
	cfg    Config
	disk   *simdisk.Disk
	opaque int32
	// registered lists the REGISTER_BROKER requests nameServersAnswer answered, by connection
	// and opaque.
	registered map[[2]int64]bool
	// pushesAnswered lists the PUSH_REPLY_MESSAGE_TO_CLIENT requests clientsAnswerReplyPushes
	// answered, by connection and opaque.
	pushesAnswered map[[2]int64]bool
}

// clientsAnswerReplyPushes has every client answer SUCCESS to each reply the broker pushed it
// (PUSH_REPLY_MESSAGE_TO_CLIENT) that was not answered yet, as the Go client does; it returns
// how many it answered.
func (h *brokerHarness) clientsAnswerReplyPushes() int {
	if h.pushesAnswered == nil {
		h.pushesAnswered = map[[2]int64]bool{}
	}
	n := 0
	for _, f := range h.env.Sent() {
		k := [2]int64{int64(f.Conn), int64(f.Cmd.Opaque)}
		if f.Cmd.IsResponse() || f.Cmd.Code != codec.ReqPushReplyMessageToClient || h.pushesAnswered[k] || h.env.Closed(f.Conn) {
			continue
		}
		h.pushesAnswered[k] = true
		h.b.OnFrame(f.Conn, codec.NewResponse(f.Cmd, codec.Success, ""))
		n++
	}
	return n
}

// nameServersAnswer has every name server answer SUCCESS to each REGISTER_BROKER the broker
// sent it and that was not answered yet; it returns how many it answered.
func (h *brokerHarness) nameServersAnswer() int {
	h.t.Helper()
	if h.registered == nil {
		h.registered = map[[2]int64]bool{}
	}
	dials := h.env.Dials()
	n := 0
	for _, f := range h.env.Sent() {
		k := [2]int64{int64(f.Conn), int64(f.Cmd.Opaque)}
		if f.Cmd.IsResponse() || f.Cmd.Code != codec.ReqRegisterBroker || h.registered[k] || !slices.Contains(h.cfg.NameServers, dials[f.Conn]) {
			continue
		}
		h.registered[k] = true
		h.b.OnFrame(f.Conn, codec.NewResponse(f.Cmd, codec.Success, ""))
		n++
	}
	return n
}

// testConfig is the default broker with the name server at a known address.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.NameServers = []string{"127.0.0.1:9876"}
	return cfg
}

// startBroker opens a broker on disk (a fresh one if nil), starts it and completes the
// recovery fsync, so it is ready to serve.
func startBroker(t *testing.T, cfg Config, disk *simdisk.Disk) *brokerHarness {
	t.Helper()
	return startBrokerAt(t, cfg, disk, nodetest.Start)
}

// startBrokerAt is startBroker with the broker's clock starting at now (a restart later on).
func startBrokerAt(t *testing.T, cfg Config, disk *simdisk.Disk, now time.Time) *brokerHarness {
	t.Helper()
	if disk == nil {
		disk = simdisk.New()
	}
	env := newBrokerEnv(t, disk)
	env.Advance(nil, now.Sub(nodetest.Start)) // no timers yet: nothing is delivered to the nil handler
	b, err := New(env, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &brokerHarness{t: t, env: env, b: b, cfg: cfg, disk: disk}
	b.Start()
	if b.Ready() {
		t.Fatal("broker is ready before its recovery fsync completed")
	}
	h.env.checkInvariants(b)
	h.completeSyncs()
	if !b.Ready() {
		t.Fatal("broker is not ready after its recovery fsync")
	}
	return h
}

// completeSyncs completes, in order, every fsync requested so far and not yet completed;
// fsyncs the broker requests meanwhile stay pending. It returns how many it completed.
func (h *brokerHarness) completeSyncs() int {
	h.t.Helper()
	n := h.env.CompleteSyncs(h.b, nil)
	h.env.checkInvariants(h.b)
	return n
}

// syncAll completes fsyncs until the broker asks for no more.
func (h *brokerHarness) syncAll() {
	for i := 0; h.completeSyncs() > 0; i++ {
		if i > 100 {
			h.t.Fatal("the broker keeps asking for fsyncs")
		}
	}
}

// request delivers a request on c and returns its opaque.
func (h *brokerHarness) request(c node.ConnID, code int16, ext map[string]string, body []byte) int32 {
	h.opaque++
	req := codec.NewRequest(code, ext, body)
	req.Opaque = h.opaque
	h.b.OnFrame(c, req)
	h.env.checkInvariants(h.b)
	return h.opaque
}

// answer is the response sent on c to the request with opaque op, or nil if none was sent.
// It fails the test if more than one was sent.
func (h *brokerHarness) answer(c node.ConnID, op int32) *codec.Command {
	h.t.Helper()
	var got *codec.Command
	for _, f := range h.env.Sent() {
		if f.Conn == c && f.Cmd.IsResponse() && f.Cmd.Opaque == op {
			if got != nil {
				h.t.Fatalf("request %d on conn %d was answered twice: %+v then %+v", op, c, got, f.Cmd)
			}
			got = f.Cmd
		}
	}
	return got
}

func (h *brokerHarness) mustAnswer(c node.ConnID, op int32) *codec.Command {
	h.t.Helper()
	resp := h.answer(c, op)
	if resp == nil {
		h.t.Fatalf("request %d on conn %d has no answer", op, c)
	}
	return resp
}

// send is SEND_MESSAGE as the Go client writes it.
func (h *brokerHarness) send(c node.ConnID, topic string, queueID int, body string, props map[string]string) int32 {
	return h.request(c, codec.ReqSendMessage, sendExt(topic, strconv.Itoa(queueID), props), []byte(body))
}

func sendExt(topic, queueID string, props map[string]string) map[string]string {
	ext := map[string]string{
		"producerGroup": "pg", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"sysFlag": "0", "bornTimestamp": "1767225600000", "flag": "0",
		"properties": codec.EncodeProperties(props), "reconsumeTimes": "0", "unitMode": "false",
		"maxReconsumeTimes": "0", "batch": "false", "bname": "broker-a",
	}
	if queueID != "" {
		ext["queueId"] = queueID
	}
	return ext
}

// pull is PULL_MESSAGE as a pull consumer writes it, without long polling unless the caller
// adds sysFlag and suspendTimeoutMillis.
func pullExt(topic string, queueID int, offset int64, extra ...string) map[string]string {
	ext := map[string]string{
		"consumerGroup": "cg", "topic": topic, "queueId": strconv.Itoa(queueID),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": "32", "sysFlag": "4",
		"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0",
		"expressionType": "TAG", "bname": "broker-a",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ext[extra[i]] = extra[i+1]
	}
	return ext
}

func (h *brokerHarness) pull(c node.ConnID, topic string, queueID int, offset int64, extra ...string) int32 {
	return h.request(c, codec.ReqPullMessage, pullExt(topic, queueID, offset, extra...), nil)
}

// framesTo lists the requests the broker sent on c (not its responses), in order.
func (h *brokerHarness) framesTo(c node.ConnID) []*codec.Command {
	var out []*codec.Command
	for _, f := range h.env.Sent() {
		if f.Conn == c && !f.Cmd.IsResponse() {
			out = append(out, f.Cmd)
		}
	}
	return out
}

// nameServerConn is the connection the broker dialled to the name server.
func (h *brokerHarness) nameServerConn() node.ConnID {
	h.t.Helper()
	var ids []node.ConnID
	for id, addr := range h.env.Dials() {
		if addr == h.cfg.NameServers[0] {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) == 0 {
		h.t.Fatal("the broker never dialled its name server")
	}
	return ids[len(ids)-1]
}

// decodeBody splits a pull body into its records.
func decodeBody(t *testing.T, body []byte) []*codec.Message {
	t.Helper()
	var out []*codec.Message
	for len(body) > 0 {
		m, n, err := codec.DecodeRecord(body)
		if err != nil {
			t.Fatalf("pull body does not decode as 4.x records: %v", err)
		}
		out = append(out, m)
		body = body[n:]
	}
	return out
}
