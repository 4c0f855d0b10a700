// Package adminclient is the client behind 'sluice admin': topic administration and message
// lookup over the RocketMQ remoting protocol, speaking to name servers and brokers over plain
// TCP as any RocketMQ client does (JSON headers, one connection per address, requests matched
// to responses by opaque). It is a blocking tool client, not node code: it dials, reads and
// waits itself, one request at a time per Client.
//
// The official Go client sends neither QUERY_MESSAGE (12) nor VIEW_MESSAGE_BY_ID (33); this
// package is how Sluice's lookup by key and by offset message id is reached.
package adminclient

import (
	"cmp"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// MaxResponseBytes bounds one response frame (a QUERY_MESSAGE answer is at most a few MiB).
const MaxResponseBytes = 64 << 20

// Client talks to a cluster through its name servers. It is safe for concurrent use; requests
// are serialised.
type Client struct {
	nameServers []string
	timeout     time.Duration
	tls         bool // dial with TLS (WithTLS)

	mu     sync.Mutex
	conns  map[string]net.Conn
	opaque int32
	sign   func(*codec.Command) *codec.Command
}

// SetSigner makes the client sign every request with sign (package acl's Credentials.Sign),
// for a cluster with aclEnable=true.
func (c *Client) SetSigner(sign func(*codec.Command) *codec.Command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sign = sign
}

// New returns a client of the cluster behind nameServers (literal ip:port each); every request
// (dial included) must complete within timeout.
func New(nameServers []string, timeout time.Duration) *Client {
	return &Client{nameServers: nameServers, timeout: timeout, conns: map[string]net.Conn{}}
}

// WithTLS makes the client dial every node with TLS, for a cluster whose ports enforce it. Like
// RocketMQ's clients by default (tls.client.authServer=false), it encrypts without verifying
// the server's certificate. It returns c, and must be called before the first request.
func (c *Client) WithTLS() *Client {
	c.tls = true
	return c
}

// Close closes every connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, conn := range c.conns {
		conn.Close()
		delete(c.conns, addr)
	}
}

// ResponseError is an answer with a code other than SUCCESS.
type ResponseError struct {
	Addr   string
	Code   int16
	Remark string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("%s answered code %d: %s", e.Addr, e.Code, e.Remark)
}

// Call sends req to addr and returns the response with its opaque, whatever its code. A
// connection that fails is closed, and the next call redials.
func (c *Client) Call(addr string, req *codec.Command) (*codec.Command, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.conn(addr)
	if err != nil {
		return nil, err
	}
	resp, err := c.roundTrip(conn, req)
	if err != nil {
		conn.Close()
		delete(c.conns, addr)
		return nil, fmt.Errorf("%s (code %d): %w", addr, req.Code, err)
	}
	return resp, nil
}

func (c *Client) conn(addr string) (net.Conn, error) {
	if conn, ok := c.conns[addr]; ok {
		return conn, nil
	}
	var conn net.Conn
	var err error
	if c.tls {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: c.timeout}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = net.DialTimeout("tcp", addr, c.timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c.conns[addr] = conn
	return conn, nil
}

func (c *Client) roundTrip(conn net.Conn, req *codec.Command) (*codec.Command, error) {
	c.opaque++
	req.Opaque = c.opaque
	if c.sign != nil {
		req = c.sign(req)
	}
	frame, err := codec.Encode(req)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	if _, err := conn.Write(frame); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	for {
		f, err := codec.ReadFrame(conn, MaxResponseBytes)
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		resp, err := codec.Decode(f)
		if err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
		// Requests from the peer and late answers to abandoned requests are not ours.
		if resp.IsResponse() && resp.Opaque == req.Opaque {
			return resp, nil
		}
	}
}

// callOK is Call that turns a non-success code into a *ResponseError.
func (c *Client) callOK(addr string, req *codec.Command) (*codec.Command, error) {
	resp, err := c.Call(addr, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != codec.Success {
		return resp, &ResponseError{Addr: addr, Code: resp.Code, Remark: resp.Remark}
	}
	return resp, nil
}

// askNameServers sends a request to each name server in turn until one answers SUCCESS.
func (c *Client) askNameServers(code int16, ext map[string]string) (*codec.Command, error) {
	if len(c.nameServers) == 0 {
		return nil, errors.New("no name server given")
	}
	var errs []error
	for _, ns := range c.nameServers {
		resp, err := c.callOK(ns, codec.NewRequest(code, ext, nil))
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Route returns a topic's route (GET_ROUTEINFO_BY_TOPIC).
func (c *Client) Route(topic string) (*route.TopicRouteData, error) {
	resp, err := c.askNameServers(codec.ReqGetRouteInfoByTopic, codec.EncodeHeader(&codec.TopicHeader{Topic: topic}))
	if err != nil {
		return nil, fmt.Errorf("route of topic %s: %w", topic, err)
	}
	return route.DecodeTopicRouteData(resp.Body)
}

// Broker is one broker of a route.
type Broker struct {
	Name string // broker group
	Addr string
}

// masters returns the master of each broker group in r (any address if a group has none),
// sorted by group name.
func masters(r *route.TopicRouteData) []Broker {
	var out []Broker
	for _, bd := range r.BrokerDatas {
		if addr, ok := r.MasterAddr(bd.BrokerName); ok {
			out = append(out, Broker{bd.BrokerName, addr})
			continue
		}
		ids := make([]string, 0, len(bd.BrokerAddrs))
		for id := range bd.BrokerAddrs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if len(ids) > 0 {
			out = append(out, Broker{bd.BrokerName, bd.BrokerAddrs[ids[0]]})
		}
	}
	slices.SortFunc(out, func(a, b Broker) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// TopicBrokers returns the masters hosting topic, sorted by broker group.
func (c *Client) TopicBrokers(topic string) ([]Broker, error) {
	r, err := c.Route(topic)
	if err != nil {
		return nil, err
	}
	bs := masters(r)
	if len(bs) == 0 {
		return nil, fmt.Errorf("route of topic %s names no broker", topic)
	}
	return bs, nil
}

// CreateTargets returns the brokers a topic is created on when the caller names none: those
// already hosting it, else those advertising the auto-create template topic TBW102 (every
// broker with auto-create on).
func (c *Client) CreateTargets(topic string) ([]Broker, error) {
	bs, err := c.TopicBrokers(topic)
	if err == nil {
		return bs, nil
	}
	var answered *ResponseError
	var netErr net.Error
	if errors.As(err, &netErr) && !errors.As(err, &answered) {
		// No name server answered at all: that, not the topic, is the problem.
		return nil, fmt.Errorf("no name server answered: %w", unwrapRoute(err))
	}
	bs, err = c.TopicBrokers(route.DefaultTopic)
	if err != nil {
		return nil, fmt.Errorf("no broker hosts %s or %s to create it on; name one: %w", topic, route.DefaultTopic, err)
	}
	return bs, nil
}

// TopicList returns every topic the name server knows (GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
// sorted.
func (c *Client) TopicList() ([]string, error) {
	resp, err := c.askNameServers(codec.ReqGetAllTopicListFromNS, nil)
	if err != nil {
		return nil, fmt.Errorf("topic list: %w", err)
	}
	var tl route.TopicList
	if err := json.Unmarshal(resp.Body, &tl); err != nil {
		return nil, fmt.Errorf("topic list: bad body: %w", err)
	}
	slices.Sort(tl.TopicList)
	return tl.TopicList, nil
}

// TopicSpec is what CreateTopic creates.
type TopicSpec struct {
	Name           string
	ReadQueueNums  int
	WriteQueueNums int
	Perm           int // route.PermRead|route.PermWrite when 0
}

// CreateTopic creates (or updates) a topic on a broker with UPDATE_AND_CREATE_TOPIC, with the
// header the official admin client sends; the broker registers it with the name servers.
func (c *Client) CreateTopic(brokerAddr string, spec TopicSpec) error {
	perm := spec.Perm
	if perm == 0 {
		perm = route.PermRead | route.PermWrite
	}
	_, err := c.callOK(brokerAddr, codec.NewRequest(codec.ReqUpdateAndCreateTopic, codec.EncodeHeader(&codec.CreateTopicHeader{
		Topic: spec.Name, DefaultTopic: route.DefaultTopic, ReadQueueNums: int64(spec.ReadQueueNums),
		WriteQueueNums: int64(spec.WriteQueueNums), Perm: int64(perm), TopicFilterType: "SINGLE_TAG",
	}), nil))
	if err != nil {
		return fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	return nil
}

// DeleteResult says where a delete took effect.
type DeleteResult struct {
	Brokers     []string // brokers that deleted the topic
	NameServers []string // name servers that dropped it from their routes
}

// DeleteTopic deletes a topic as the official admin client does: DELETE_TOPIC_IN_BROKER on each
// master of its route, then DELETE_TOPIC_IN_NAMESRV on every name server. A topic without a
// route is still removed from the name servers (a broker that has it re-registers it).
func (c *Client) DeleteTopic(topic string) (DeleteResult, error) {
	var res DeleteResult
	var errs []error
	brokers, err := c.TopicBrokers(topic)
	var re *ResponseError
	if err != nil && !(errors.As(err, &re) && re.Code == codec.TopicNotExist) {
		return res, fmt.Errorf("delete topic %s: %w", topic, err)
	}
	for _, b := range brokers {
		if _, err := c.callOK(b.Addr, codec.NewRequest(codec.ReqDeleteTopicInBroker, codec.EncodeHeader(&codec.TopicHeader{Topic: topic}), nil)); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Brokers = append(res.Brokers, b.Addr)
	}
	for _, ns := range c.nameServers {
		if _, err := c.callOK(ns, codec.NewRequest(codec.ReqDeleteTopicInNamesrv, codec.EncodeHeader(&codec.TopicHeader{Topic: topic}), nil)); err != nil {
			errs = append(errs, err)
			continue
		}
		res.NameServers = append(res.NameServers, ns)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return res, nil
}

// Found is one message found by a lookup, with the broker that holds it.
type Found struct {
	Broker string // address asked
	Msg    *codec.Message
}

// ViewMessage looks a message up by its offset message id (the 4.x id of a send result's
// OffsetMsgID): the id names the broker (its store host) and the commit-log offset, and that
// broker is asked with VIEW_MESSAGE_BY_ID.
func (c *Client) ViewMessage(offsetMsgID string) (Found, error) {
	host, off, err := codec.ParseOffsetMsgID(offsetMsgID)
	if err != nil {
		return Found{}, err
	}
	addr := host.String()
	resp, err := c.callOK(addr, codec.NewRequest(codec.ReqViewMessageByID, codec.EncodeHeader(&codec.ViewMessageHeader{Offset: off}), nil))
	if err != nil {
		return Found{}, fmt.Errorf("message %s: %w", offsetMsgID, err)
	}
	msgs, err := DecodeRecords(resp.Body)
	if err != nil {
		return Found{}, fmt.Errorf("message %s: %w", offsetMsgID, err)
	}
	if len(msgs) != 1 || msgs[0].PhysicalOffset != off {
		return Found{}, fmt.Errorf("message %s: %s answered %d records, want the one at offset %d", offsetMsgID, addr, len(msgs), off)
	}
	return Found{Broker: addr, Msg: msgs[0]}, nil
}

// KeyQuery is a lookup by key.
type KeyQuery struct {
	Topic, Key     string
	MaxNum         int   // per broker; 0 means 64, the most a broker returns
	BeginMs, EndMs int64 // store time range; EndMs 0 means no end
}

// QueryByKey asks every broker of the topic's route with QUERY_MESSAGE and returns what they
// found, ordered by store time (then broker and offset). A broker that finds nothing answers
// QUERY_NOT_FOUND, which is no error.
func (c *Client) QueryByKey(q KeyQuery) ([]Found, error) {
	brokers, err := c.TopicBrokers(q.Topic)
	if err != nil {
		return nil, fmt.Errorf("query key %q: %w", q.Key, err)
	}
	end := q.EndMs
	if end == 0 {
		end = 1<<63 - 1
	}
	maxNum := q.MaxNum
	if maxNum <= 0 {
		maxNum = 64
	}
	var out []Found
	var errs []error
	for _, b := range brokers {
		resp, err := c.Call(b.Addr, codec.NewRequest(codec.ReqQueryMessage, codec.EncodeHeader(&codec.QueryMessageHeader{
			Topic: q.Topic, Key: q.Key, MaxNum: int64(maxNum), BeginTimestampMs: q.BeginMs, EndTimestampMs: end,
		}), nil))
		switch {
		case err != nil:
			errs = append(errs, err)
			continue
		case resp.Code == codec.QueryNotFound:
			continue
		case resp.Code != codec.Success:
			errs = append(errs, &ResponseError{Addr: b.Addr, Code: resp.Code, Remark: resp.Remark})
			continue
		}
		msgs, err := DecodeRecords(resp.Body)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Addr, err))
			continue
		}
		for _, m := range msgs {
			out = append(out, Found{Broker: b.Addr, Msg: m})
		}
	}
	slices.SortStableFunc(out, func(a, b Found) int {
		switch {
		case a.Msg.StoreTimestamp != b.Msg.StoreTimestamp:
			return cmp.Compare(a.Msg.StoreTimestamp, b.Msg.StoreTimestamp)
		case a.Broker != b.Broker:
			return cmp.Compare(a.Broker, b.Broker)
		}
		return cmp.Compare(a.Msg.PhysicalOffset, b.Msg.PhysicalOffset)
	})
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("query key %q in topic %s: %w", q.Key, q.Topic, err)
	}
	return out, nil
}

// DecodeRecords splits a body of stored records (a QUERY_MESSAGE or VIEW_MESSAGE_BY_ID answer)
// into messages. Bodies and properties alias b.
func DecodeRecords(b []byte) ([]*codec.Message, error) {
	var out []*codec.Message
	for len(b) > 0 {
		m, n, err := codec.DecodeRecord(b)
		if err != nil {
			return out, fmt.Errorf("record %d of the answer: %w", len(out), err)
		}
		out = append(out, m)
		b = b[n:]
	}
	return out, nil
}

// MsgID is the message id a RocketMQ client shows: the UNIQ_KEY property if set, else the
// offset message id.
func MsgID(m *codec.Message) string {
	if id := codec.Property(m.Properties, codec.PropUniqKey); id != "" {
		return id
	}
	return OffsetMsgID(m)
}

// OffsetMsgID is the message's 4.x offset message id (store host and physical offset).
func OffsetMsgID(m *codec.Message) string {
	host := m.StoreHost
	if !host.IsValid() {
		host = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return codec.OffsetMsgID(host, m.PhysicalOffset)
}

// unwrapRoute drops the "route of topic T:" context of a route lookup's error when no name
// server could be reached, leaving the name servers' own errors.
func unwrapRoute(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		if _, multi := u.(interface{ Unwrap() []error }); multi {
			return u
		}
		err = u
	}
}
