// Package client is Sluice's own client core: route lookup, queue choice, send with retry
// (plain, batch, delayed, transactional), pull, consumer offsets, send-back for retries, queue
// locks for orderly consumption, offset search by time, and heartbeats, speaking the RocketMQ
// remoting protocol. It answers the one broker-initiated request a producer must
// (CHECK_TRANSACTION_STATE) through a callback the application supplies. Like the nodes it is
// sans-I/O (see package node): it runs on a node.Env, so the simulator drives it in virtual
// time and the production runtime drives it on real sockets. Calls take a callback that is
// invoked exactly once, from the node's event loop.
//
// Outcomes are reported precisely because the simulator's checkers depend on it: an error for
// which Definite(err) is true means the broker did not store the message; any other error
// (timeout, connection lost) means the outcome is unknown. A send is retried only after a
// definite failure, so a retry never duplicates a message.
package client

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

// Config tunes a client.
type Config struct {
	NameServers    []string
	ClientID       string
	ProducerGroup  string
	RequestTimeout time.Duration
	// RouteTTL is how long a looked-up route is reused (RocketMQ refreshes every 30 s).
	RouteTTL        time.Duration
	MaxSendAttempts int
	// LockTimeout bounds LOCK_BATCH_MQ and UNLOCK_BATCH_MQ (the official client uses 1 s).
	LockTimeout time.Duration
	// HeartbeatInterval is how often HEART_BEAT goes to every known broker (the official client:
	// 30 s, the first 1 s after start); 0 sends heartbeats only when Heartbeat is called.
	HeartbeatInterval time.Duration
	// CheckTransaction decides the outcome of a half message a broker asks about
	// (CHECK_TRANSACTION_STATE); nil ignores such checks. See TransactionCheck.
	CheckTransaction func(check TransactionCheck, reply func(state TransactionState, done func(error)))
	// Bugs is the set of planted bugs (package bugs) the client honours: RetryUnknownSends,
	// LockTrustsRequest and CommitFetchPosition. Tests only; empty in production.
	Bugs bugs.Set
}

// DefaultConfig returns RocketMQ's defaults for the given name servers.
func DefaultConfig(nameServers ...string) Config {
	return Config{
		NameServers:     nameServers,
		ClientID:        "sluice-client",
		ProducerGroup:   "DEFAULT_PRODUCER",
		RequestTimeout:  3 * time.Second,
		RouteTTL:        30 * time.Second,
		MaxSendAttempts: 3,
		LockTimeout:     time.Second,
	}
}

// ErrTimeout and ErrConnClosed leave a request's outcome unknown; ErrConnRefused is definite:
// the connection never came up, so the request never left.
var (
	ErrTimeout     = errors.New("request timed out")
	ErrConnClosed  = errors.New("connection closed before the response")
	ErrConnRefused = errors.New("connection could not be established")
)

// BrokerError is a response with a non-success code: a definite answer.
type BrokerError struct {
	Code   int16
	Remark string
}

func (e *BrokerError) Error() string { return fmt.Sprintf("CODE: %d, DESC: %s", e.Code, e.Remark) }

// Definite reports whether err is a definite failure: the request had no effect.
func Definite(err error) bool {
	var be *BrokerError
	if errors.As(err, &be) {
		// A flush timeout is an acknowledgement whose durability is unknown.
		return be.Code != codec.FlushDiskTimeout
	}
	return errors.Is(err, errNoRoute) || errors.Is(err, ErrConnRefused) || errors.Is(err, errNotSent)
}

// ErrCorruptMessage is wrapped by a pull whose answer held a message that does not decode (its
// body checksum or its framing fails): the broker served a corrupt record.
var ErrCorruptMessage = errors.New("pulled message does not decode")

var (
	errNoRoute = errors.New("no route")
	// errNotSent: the client refused the call before sending anything (bad arguments).
	errNotSent = errors.New("request not sent")
)

// MessageQueue names one queue of a topic on one broker group.
type MessageQueue struct {
	Topic      string
	BrokerName string
	QueueID    int32
}

func (q MessageQueue) String() string {
	return fmt.Sprintf("%s@%s#%d", q.Topic, q.BrokerName, q.QueueID)
}

type call struct {
	conn  node.ConnID
	timer node.TimerID
	done  func(*codec.Command, error)
}

type cachedRoute struct {
	data    *route.TopicRouteData
	fetched time.Time
	// refreshAt, when set, ends the route's life before RouteTTL: a read went to a slave
	// because the route names no master for a group (see readFrom).
	refreshAt time.Time
	// writeQs caches writeQueues(data), computed on first use.
	writeQs []MessageQueue
}

// Client is the client core. It implements node.Handler.
type Client struct {
	env    node.Env
	cfg    Config
	log    *slog.Logger
	conns  map[string]node.ConnID
	addrOf map[node.ConnID]string
	// dialed holds the connections known to be established.
	dialed map[node.ConnID]bool
	calls  map[int32]*call
	opaque int32
	routes map[string]*cachedRoute
	// routeBodies holds, by topic, the last few route bodies decoded (oldest first, at most
	// keptRouteBodies) and what they decoded to: a lookup that brings the same bytes as one of
	// them (nearly every one; name servers that disagree for a while, asked in turn, alternate
	// between a few) copies that instead of parsing them again. Unlike routes, it outlives
	// invalidation.
	routeBodies map[string][]decodedRoute
	nsNext      int
	rr          int
	// brokers holds every broker address seen in a route, by group and broker id: heartbeats
	// go to them.
	brokers map[string]map[string]string
	// consumers holds the consumer groups heartbeats announce, by name.
	consumers map[string]ConsumerGroup
	// pullFrom is the broker id the last pull answer of each queue suggested for the next
	// pull (suggestWhichBrokerId; the official client's pullFromWhichNodeTable). Absent: 0.
	pullFrom map[MessageQueue]int64
}

// New creates a client core on env.
func New(env node.Env, cfg Config) *Client {
	return &Client{
		env: env, cfg: cfg, log: env.Logger(),
		conns:  map[string]node.ConnID{},
		addrOf: map[node.ConnID]string{},
		dialed: map[node.ConnID]bool{},
		calls:  map[int32]*call{},
		routes: map[string]*cachedRoute{}, routeBodies: map[string][]decodedRoute{},

		brokers:   map[string]map[string]string{},
		consumers: map[string]ConsumerGroup{},
		pullFrom:  map[MessageQueue]int64{},
	}
}

type heartbeatTimer struct{}

// Start implements node.Handler: it starts the heartbeat schedule, if any.
func (c *Client) Start() {
	if c.cfg.HeartbeatInterval > 0 {
		c.env.SetTimer(min(time.Second, c.cfg.HeartbeatInterval), heartbeatTimer{})
	}
}

// OnAccepted implements node.Handler; a client accepts nothing.
func (c *Client) OnAccepted(conn node.ConnID, _ string) { c.env.Close(conn) }

// OnSynced implements node.Handler; a client has no disk.
func (c *Client) OnSynced(string, uint64, error) {}

// OnDialed records that conn is up: from now on a call lost with it has an unknown outcome.
func (c *Client) OnDialed(conn node.ConnID) { c.dialed[conn] = true }

// OnConnClosed fails every call waiting on conn, in opaque order: with ErrConnClosed if the
// connection had come up (the request may have been delivered), else ErrConnRefused.
func (c *Client) OnConnClosed(conn node.ConnID) {
	lostErr := ErrConnRefused
	if c.dialed[conn] {
		lostErr = ErrConnClosed
	}
	delete(c.dialed, conn)
	if addr, ok := c.addrOf[conn]; ok {
		delete(c.addrOf, conn)
		if c.conns[addr] == conn {
			delete(c.conns, addr)
		}
	}
	var lost []int32
	for op, cl := range c.calls {
		if cl.conn == conn {
			lost = append(lost, op)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	for _, op := range lost {
		cl := c.calls[op]
		delete(c.calls, op)
		c.env.CancelTimer(cl.timer)
		cl.done(nil, lostErr)
	}
}

// OnFrame completes the call a response answers, and serves the broker-initiated requests a
// client core must: CHECK_TRANSACTION_STATE. Others (NOTIFY_CONSUMER_IDS_CHANGED, ...) are
// ignored: this core rebalances only when its user asks.
func (c *Client) OnFrame(conn node.ConnID, cmd *codec.Command) {
	if !cmd.IsResponse() {
		if cmd.Code == codec.ReqCheckTransactionState {
			c.onCheckTransaction(conn, cmd)
		}
		return
	}
	cl, ok := c.calls[cmd.Opaque]
	if !ok {
		return // a late response to a call that timed out, or to a oneway request
	}
	delete(c.calls, cmd.Opaque)
	c.env.CancelTimer(cl.timer)
	cl.done(cmd, nil)
}

type callTimeout struct{ opaque int32 }

// OnTimer times out a call, or sends the periodic heartbeat.
func (c *Client) OnTimer(_ node.TimerID, tag any) {
	switch t := tag.(type) {
	case callTimeout:
		if cl, ok := c.calls[t.opaque]; ok {
			delete(c.calls, t.opaque)
			cl.done(nil, ErrTimeout)
		}
	case heartbeatTimer:
		c.Heartbeat(func(error) {}) // failures are retried at the next beat
		c.env.SetTimer(c.cfg.HeartbeatInterval, heartbeatTimer{})
	}
}

func (c *Client) connTo(addr string) node.ConnID {
	if conn, ok := c.conns[addr]; ok {
		return conn
	}
	conn := c.env.Dial(addr)
	c.conns[addr] = conn
	c.addrOf[conn] = addr
	return conn
}

// invoke sends req to addr and calls done with the response or an error.
func (c *Client) invoke(addr string, req *codec.Command, done func(*codec.Command, error)) {
	c.invokeOn(c.connTo(addr), req, c.cfg.RequestTimeout, done)
}

// invokeOn sends req on conn, an open connection, and calls done with the response or an
// error once timeout has passed without one.
func (c *Client) invokeOn(conn node.ConnID, req *codec.Command, timeout time.Duration, done func(*codec.Command, error)) {
	c.opaque++
	req.Opaque = c.opaque
	cl := &call{conn: conn, done: done}
	cl.timer = c.env.SetTimer(timeout, callTimeout{opaque: req.Opaque})
	c.calls[req.Opaque] = cl
	c.env.Send(conn, req)
}

// oneway sends req without waiting for an answer.
func (c *Client) oneway(addr string, req *codec.Command) {
	c.opaque++
	req.Opaque = c.opaque
	c.env.Send(c.connTo(addr), req)
}

// Route returns topic's route, from the cache while it is fresh.
func (c *Client) Route(topic string, done func(*route.TopicRouteData, error)) {
	if r, ok := c.routes[topic]; ok && c.fresh(r) {
		done(r.data, nil)
		return
	}
	if len(c.cfg.NameServers) == 0 {
		done(nil, fmt.Errorf("route %s: no name servers configured: %w", topic, errNoRoute))
		return
	}
	ns := c.cfg.NameServers[c.nsNext%len(c.cfg.NameServers)]
	c.nsNext++
	req := codec.NewRequest(codec.ReqGetRouteInfoByTopic, codec.EncodeHeader(&codec.TopicHeader{Topic: topic}), nil)
	c.invoke(ns, req, func(resp *codec.Command, err error) {
		if err != nil {
			done(nil, fmt.Errorf("route %s from %s: %w", topic, ns, err))
			return
		}
		if resp.Code != codec.Success {
			done(nil, fmt.Errorf("route %s: %w: %w", topic, errNoRoute, &BrokerError{resp.Code, resp.Remark}))
			return
		}
		rd, err := c.decodeRoute(topic, resp.Body)
		if err != nil {
			done(nil, err)
			return
		}
		c.routes[topic] = &cachedRoute{data: rd, fetched: c.env.Now()}
		c.learnBrokers(rd)
		done(rd, nil)
	})
}

// decodedRoute is a route body and what it decodes to (see Client.routeBodies).
type decodedRoute struct {
	body []byte
	data *route.TopicRouteData
}

// decodeRoute decodes topic's route body b, or copies what the same bytes decoded to last time.
func (c *Client) decodeRoute(topic string, b []byte) (*route.TopicRouteData, error) {
	kept := c.routeBodies[topic]
	for _, prev := range kept {
		if bytes.Equal(prev.body, b) {
			return prev.data.Clone(), nil
		}
	}
	rd, err := route.DecodeTopicRouteData(b)
	if err != nil {
		return nil, err
	}
	if len(kept) >= keptRouteBodies {
		kept = slices.Delete(kept, 0, 1)
	}
	// Kept apart from what the caller gets (the frame's buffer is not ours to keep either).
	c.routeBodies[topic] = append(kept, decodedRoute{body: bytes.Clone(b), data: rd.Clone()})
	return rd, nil
}

// keptRouteBodies bounds Client.routeBodies per topic.
const keptRouteBodies = 4

// fresh reports whether a cached route may still be used.
func (c *Client) fresh(r *cachedRoute) bool {
	now := c.env.Now()
	if !r.refreshAt.IsZero() && !now.Before(r.refreshAt) {
		return false
	}
	return now.Sub(r.fetched) < c.cfg.RouteTTL
}

// masterlessRefresh is how long a route that sent a read to a slave (its group had no master)
// is reused: a new master registers as brokerId 0 within seconds of its election, and reads
// should go back to it soon after.
const masterlessRefresh = time.Second

// refreshSoon shortens the life of topic's cached route rd to masterlessRefresh.
func (c *Client) refreshSoon(topic string, rd *route.TopicRouteData) {
	cr, ok := c.routes[topic]
	if !ok || cr.data != rd {
		return
	}
	at := c.env.Now().Add(masterlessRefresh)
	if cr.refreshAt.IsZero() || at.Before(cr.refreshAt) {
		cr.refreshAt = at
	}
}

// InvalidateRoute drops a cached route so the next call looks it up again.
func (c *Client) InvalidateRoute(topic string) { delete(c.routes, topic) }

// writableQueues is writeQueues(topic, rd), cached with the route when rd is the cached one.
func (c *Client) writableQueues(topic string, rd *route.TopicRouteData) []MessageQueue {
	cr, ok := c.routes[topic]
	if !ok || cr.data != rd {
		return writeQueues(topic, rd)
	}
	if cr.writeQs == nil {
		cr.writeQs = writeQueues(topic, rd)
	}
	return cr.writeQs
}

// writeQueues lists the queues of masters that accept writes, sorted.
func writeQueues(topic string, rd *route.TopicRouteData) []MessageQueue {
	var out []MessageQueue
	for _, qd := range rd.QueueDatas {
		if qd.Perm&route.PermWrite == 0 {
			continue
		}
		if _, ok := rd.MasterAddr(qd.BrokerName); !ok {
			continue
		}
		for i := int32(0); i < qd.WriteQueueNums; i++ {
			out = append(out, MessageQueue{Topic: topic, BrokerName: qd.BrokerName, QueueID: i})
		}
	}
	sortQueues(out)
	return out
}

// ReadQueues lists the readable queues of a route, sorted.
func ReadQueues(topic string, rd *route.TopicRouteData) []MessageQueue {
	var out []MessageQueue
	for _, qd := range rd.QueueDatas {
		if qd.Perm&route.PermRead == 0 {
			continue
		}
		for i := int32(0); i < qd.ReadQueueNums; i++ {
			out = append(out, MessageQueue{Topic: topic, BrokerName: qd.BrokerName, QueueID: i})
		}
	}
	sortQueues(out)
	return out
}

func sortQueues(qs []MessageQueue) {
	sort.Slice(qs, func(i, j int) bool {
		if qs[i].BrokerName != qs[j].BrokerName {
			return qs[i].BrokerName < qs[j].BrokerName
		}
		return qs[i].QueueID < qs[j].QueueID
	})
}

// masterAddr is brokerName's master in rd, topic's route. A cached route that names no master
// for the group is dropped, so the next call asks the name server again instead of keeping it
// for RouteTTL: after a failover the new master registers as brokerId 0 within seconds.
func (c *Client) masterAddr(topic string, rd *route.TopicRouteData, brokerName string) (string, error) {
	addr, err := brokerAddr(rd, brokerName)
	if err != nil {
		c.dropMasterlessRoute(topic)
	}
	return addr, err
}

// dropMasterlessRoute drops the cached routes a call on topic used when one named no master:
// topic's, and TBW102's, which sends use while the name server does not route topic yet.
func (c *Client) dropMasterlessRoute(topic string) {
	c.InvalidateRoute(topic)
	c.InvalidateRoute(route.DefaultTopic)
}

func brokerAddr(rd *route.TopicRouteData, brokerName string) (string, error) {
	addr, ok := rd.MasterAddr(brokerName)
	if !ok {
		return "", fmt.Errorf("broker group %s has no master in the route: %w", brokerName, errNoRoute)
	}
	return addr, nil
}

// readAddr is the broker of group brokerName in rd that a read (pull, offset query or commit)
// goes to when want is the broker id asked for: the official client's
// FindBrokerAddressInSubscribe(brokerName, want, false), made deterministic. It takes the
// broker with id want; for a slave id the route lacks, the next id; then the master; then the
// slave with the lowest id (the official client takes any address, in map order). id is the
// chosen broker's id (0: the master).
func readAddr(rd *route.TopicRouteData, brokerName string, want int64) (addr string, id int64, err error) {
	var addrs map[string]string
	for _, bd := range rd.BrokerDatas {
		if bd.BrokerName == brokerName {
			addrs = bd.BrokerAddrs
			break
		}
	}
	at := func(id int64) (string, bool) {
		a, ok := addrs[strconv.FormatInt(id, 10)]
		return a, ok && a != ""
	}
	if a, ok := at(want); ok {
		return a, want, nil
	}
	if want != route.MasterID {
		if a, ok := at(want + 1); ok {
			return a, want + 1, nil
		}
	}
	if a, ok := at(route.MasterID); ok {
		return a, route.MasterID, nil
	}
	best := int64(-1)
	for k, a := range addrs {
		n, perr := strconv.ParseInt(k, 10, 64)
		if perr != nil || n <= route.MasterID || a == "" {
			continue // not a broker id: the route came from outside
		}
		if best < 0 || n < best {
			best = n
		}
	}
	if best < 0 {
		return "", 0, fmt.Errorf("broker group %s has no broker in the route: %w", brokerName, errNoRoute)
	}
	a, _ := at(best)
	return a, best, nil
}

// readFrom is readAddr for a call on topic's route rd. A read that goes to a slave because rd
// names no master for the group shortens rd's life in the cache (refreshSoon), so reads move
// back to a new master soon after it registers; a route without the group at all is dropped.
func (c *Client) readFrom(topic string, rd *route.TopicRouteData, brokerName string, want int64) (string, error) {
	addr, id, err := readAddr(rd, brokerName, want)
	if err != nil {
		c.InvalidateRoute(topic)
		return "", err
	}
	if id != route.MasterID {
		if _, ok := rd.MasterAddr(brokerName); !ok {
			c.refreshSoon(topic, rd)
		}
	}
	return addr, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
