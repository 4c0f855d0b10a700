// Package namesrv is the name server node: brokers register their topics and heartbeat, clients
// look up topic routes. It is a deterministic state machine (see package node): it keeps no
// state on disk, and it never iterates a map where order could leak into behaviour.
package namesrv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/metrics"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

// Config tunes a name server.
type Config struct {
	// BrokerExpiry drops a broker that has not re-registered for this long (Java: 120 s).
	BrokerExpiry time.Duration
	// ScanInterval is how often expired brokers are looked for (Java: 10 s).
	ScanInterval time.Duration

	// Bugs is the set of planted bugs (package bugs) the name server honours:
	// NeverExpireBrokers (the expiry scan measures silence with its operands swapped, so a
	// broker that stops heartbeating while its connection stays open is never dropped) and
	// StaleRegistration (a re-registration is matched to the cached one by address alone).
	// Empty in production.
	Bugs bugs.Set

	// Metrics records the name server's metrics (metrics.go); nil records nothing.
	Metrics metrics.Recorder
}

// DefaultConfig is RocketMQ's timing.
func DefaultConfig() Config {
	return Config{BrokerExpiry: 120 * time.Second, ScanInterval: 10 * time.Second}
}

type liveBroker struct {
	addr       string
	cluster    string
	brokerName string
	brokerID   int64
	// epoch is the master epoch the broker last registered with (0 without a group).
	epoch      int64
	lastUpdate time.Time
	conn       node.ConnID
	// haServerAddr is where the broker's slaves replicate from (Java brokers' HA service).
	haServerAddr string
	// topics this broker registered, by name.
	topics map[string]route.TopicConfig
}

// registration is a broker's last uncompressed REGISTER_BROKER body and what it decoded to.
type registration struct {
	body   []byte
	topics map[string]route.TopicConfig
	epoch  int64
}

// Server is the name server node.
type Server struct {
	env node.Env
	cfg Config
	log *slog.Logger
	// brokers by address.
	brokers map[string]*liveBroker
	// registered holds, by broker address, the last registration body decoded: a registration
	// with the same bytes (every heartbeat while the broker's topics stay as they are, and a
	// return after it expired) has nothing new to decode. Its topics map is the one the broker
	// holds, so whatever changes those forgets the entry. It outlives expiry, bounded by
	// maxRegistered.
	registered map[string]registration
	// routes holds, by topic, the route body routeInfo last encoded, while nothing a route is
	// built from has changed since (which brokers are registered, their groups, ids, epochs,
	// clusters and topic tables): brokers heartbeat far more often than that changes, and
	// clients ask for routes all the time. forgetRoutes empties it on every such change.
	// A body in it is shared by the responses that carry it and never modified.
	routes map[string][]byte
	// unsupported answers and logs the requests the name server does not serve.
	unsupported node.Unsupported
	rec         metrics.Recorder
}

// New creates a name server on env.
func New(env node.Env, cfg Config) *Server {
	return &Server{env: env, cfg: cfg, log: env.Logger(), brokers: map[string]*liveBroker{},
		registered: map[string]registration{}, routes: map[string][]byte{}, unsupported: node.Unsupported{What: "name server"},
		rec: metrics.Or(cfg.Metrics)}
}

type scanTimer struct{}

// Start implements node.Handler.
func (s *Server) Start() { s.env.SetTimer(s.cfg.ScanInterval, scanTimer{}) }

// OnAccepted implements node.Handler.
func (s *Server) OnAccepted(node.ConnID, string) {}

// OnDialed implements node.Handler; a name server dials nobody.
func (s *Server) OnDialed(node.ConnID) {}

// OnConnClosed drops every broker registered over c: a broker whose connection is gone is
// treated as gone, as the Java name server does on channel close.
func (s *Server) OnConnClosed(c node.ConnID) {
	for _, addr := range slices.Sorted(maps.Keys(s.brokers)) {
		if b := s.brokers[addr]; b.conn == c {
			s.log.Info("broker connection closed, dropping it from routes", "broker", addr)
			delete(s.brokers, addr)
			s.forgetRoutes()
			s.rec.Counter(mDropped, "closed").Add(1)
		}
	}
}

// OnTimer implements node.Handler.
func (s *Server) OnTimer(_ node.TimerID, tag any) {
	if _, ok := tag.(scanTimer); !ok {
		return
	}
	now := s.env.Now()
	for _, addr := range slices.Sorted(maps.Keys(s.brokers)) {
		b := s.brokers[addr]
		silent := now.Sub(b.lastUpdate)
		if s.cfg.Bugs.Has(bugs.NeverExpireBrokers) {
			silent = b.lastUpdate.Sub(now)
		}
		if silent > s.cfg.BrokerExpiry {
			s.log.Warn("broker expired, dropping it from routes", "broker", addr, "silentFor", silent)
			delete(s.brokers, addr)
			s.forgetRoutes()
			s.rec.Counter(mDropped, "expired").Add(1)
		}
	}
	s.env.SetTimer(s.cfg.ScanInterval, scanTimer{})
}

// OnSynced implements node.Handler; a name server keeps nothing on disk.
func (s *Server) OnSynced(string, uint64, error) {}

// OnFrame answers one request.
func (s *Server) OnFrame(c node.ConnID, req *codec.Command) {
	if req.IsResponse() {
		return
	}
	var resp *codec.Command
	switch req.Code {
	case codec.ReqRegisterBroker:
		resp = s.register(c, req)
		s.countRegistration(resp)
	case codec.ReqUnregisterBroker:
		h, _ := codec.DecodeHeader[codec.UnregisterBrokerHeader](req) // only the address is read
		if _, ok := s.brokers[h.BrokerAddr]; ok {
			delete(s.brokers, h.BrokerAddr)
			s.forgetRoutes()
			s.rec.Counter(mDropped, "unregistered").Add(1)
		}
		resp = codec.NewResponse(req, codec.Success, "")
	case codec.ReqGetRouteInfoByTopic:
		resp = s.routeInfo(req)
	case codec.ReqGetAllTopicListFromNS:
		resp = codec.NewResponse(req, codec.Success, "")
		body, _ := json.Marshal(route.TopicList{TopicList: s.topicNames()})
		resp.Body = body
	case codec.ReqGetBrokerClusterInfo:
		resp = codec.NewResponse(req, codec.Success, "")
		resp.Body = s.clusterInfo()
	case codec.ReqDeleteTopicInNamesrv:
		resp = s.deleteTopic(req)
	default:
		resp = s.unsupported.Answer(s.env, c, "", req)
	}
	s.env.Send(c, resp)
}

func (s *Server) register(c node.ConnID, req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.RegisterBrokerHeader](req)
	addr, name, id := h.BrokerAddr, h.BrokerName, h.BrokerID
	if addr == "" || name == "" || err != nil {
		return codec.NewResponse(req, codec.SystemError, "register broker: brokerAddr, brokerName and brokerId are required")
	}
	if err := checkBrokerAddr(addr); err != nil {
		return codec.NewResponse(req, codec.SystemError, "register broker: "+err.Error())
	}
	if !utf8.ValidString(name) {
		return codec.NewResponse(req, codec.SystemError, "register broker "+addr+": brokerName is not valid UTF-8")
	}
	if crc := h.BodyCRC32; crc != 0 && int64(route.BodyCRC32(req.Body)) != crc {
		// As Java's DefaultRequestProcessor.checksum: a body that does not match its CRC is refused.
		return codec.NewResponse(req, codec.SystemError, "register broker "+addr+": crc32 not match")
	}
	var body route.RegisterBody
	if prev, ok := s.registered[addr]; ok && !h.Compressed && (bytes.Equal(prev.body, req.Body) || s.cfg.Bugs.Has(bugs.StaleRegistration)) {
		body.TopicConfigTable, body.DataVersion.StateVersion = prev.topics, prev.epoch
	} else {
		s.forgetRoutes() // a new topic table
		delete(s.registered, addr)
		if h.Compressed {
			// A Java broker with compressedRegister=true (RegisterBrokerBody.encode(true)).
			body, err = route.DecodeCompressedRegisterBody(req.Body)
		} else {
			body, err = route.DecodeRegisterBody(req.Body)
		}
		if err != nil {
			return codec.NewResponse(req, codec.SystemError, "register broker "+addr+": "+err.Error())
		}
		if !h.Compressed {
			if len(s.registered) >= maxRegistered(len(s.brokers)) {
				clear(s.registered)
			}
			// A copy: the frame's buffer is not ours to keep.
			s.registered[addr] = registration{body: bytes.Clone(req.Body), topics: body.TopicConfigTable, epoch: body.DataVersion.StateVersion}
		}
	}
	b := s.brokers[addr]
	if b == nil {
		s.log.Info("broker registered", "broker", addr, "group", name, "id", id)
		b = &liveBroker{addr: addr}
		s.brokers[addr] = b
		s.forgetRoutes()
	} else if b.cluster != h.ClusterName || b.brokerName != name || b.brokerID != id || b.epoch != body.DataVersion.StateVersion {
		s.forgetRoutes()
	}
	b.cluster = h.ClusterName
	b.brokerName = name
	b.brokerID = id
	b.conn = c
	b.lastUpdate = s.env.Now()
	b.topics = body.TopicConfigTable
	b.haServerAddr = h.HAServerAddr
	b.epoch = body.DataVersion.StateVersion
	resp := codec.NewResponse(req, codec.Success, "")
	// As Java's RouteInfoManager.registerBroker, a slave is told its group's master and where
	// that master's HA service listens (a Java slave replicates from them); a master gets
	// empty values. Sluice brokers take their master from the controller instead.
	// Of two replicas claiming the master's id, the one with the higher epoch (as in routes).
	master, ha, epoch := "", "", int64(-1)
	if id != route.MasterID {
		for _, other := range slices.Sorted(maps.Keys(s.brokers)) {
			if m := s.brokers[other]; m.brokerName == name && m.brokerID == route.MasterID && m.epoch >= epoch {
				master, ha, epoch = m.addr, m.haServerAddr, m.epoch
			}
		}
	}
	resp.SetHeader(&codec.RegisterBrokerResponseHeader{MasterAddr: master, HAServerAddr: ha})
	return resp
}

// maxRegistered bounds Server.registered: brokers that expired and never came back (a broker
// moved to a new address) are forgotten once their entries outnumber the live brokers'.
func maxRegistered(live int) int { return 2*live + 16 }

// checkBrokerAddr accepts host:port addresses the official Go client can take back out of a
// route: it parses brokerAddrs by hand, splitting the JSON object's text on ',' and each entry
// at its first ':', then stripping '"' (docs/protocol.md, "Routes"), so one address with a comma, a quote,
// whitespace or a character JSON escapes would break the route of every broker sharing a topic
// with it. Hosts are names or IP literals: ASCII letters, digits and ".-_:[]%".
func checkBrokerAddr(addr string) error {
	i := strings.LastIndexByte(addr, ':')
	if i <= 0 {
		return fmt.Errorf("brokerAddr %q is not host:port", addr)
	}
	if port, err := strconv.ParseUint(addr[i+1:], 10, 16); err != nil || port == 0 {
		return fmt.Errorf("brokerAddr %q has no port in 1..65535", addr)
	}
	for _, r := range addr[:i] {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-_:[]%", r)) {
			return fmt.Errorf("brokerAddr %q: host has the character %q, which clients cannot parse back out of a route", addr, r)
		}
	}
	return nil
}

func (s *Server) routeInfo(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.TopicHeader](req) // no field can be malformed
	topic := h.Topic
	if body, ok := s.routes[topic]; ok {
		resp := codec.NewResponse(req, codec.Success, "")
		resp.Body = body
		return resp
	}
	rd := route.TopicRouteData{}
	groups := map[string]*route.BrokerData{}
	queues := map[string]route.QueueData{}
	claims := s.idClaims()
	for _, addr := range slices.Sorted(maps.Keys(s.brokers)) {
		b := s.brokers[addr]
		tc, ok := b.topics[topic]
		if !ok || claims[idClaim{b.brokerName, b.brokerID}] != b {
			continue
		}
		bd := groups[b.brokerName]
		if bd == nil {
			bd = &route.BrokerData{Cluster: b.cluster, BrokerName: b.brokerName, BrokerAddrs: map[string]string{}}
			groups[b.brokerName] = bd
		}
		bd.BrokerAddrs[strconv.FormatInt(b.brokerID, 10)] = addr
		// The master's view of the queues wins; a slave's is used only while no master is known.
		if _, seen := queues[b.brokerName]; !seen || b.brokerID == route.MasterID {
			queues[b.brokerName] = route.QueueData{BrokerName: b.brokerName, ReadQueueNums: tc.ReadQueueNums,
				WriteQueueNums: tc.WriteQueueNums, Perm: tc.Perm, TopicSysFlag: tc.TopicSysFlag}
		}
	}
	if len(groups) == 0 {
		return codec.NewResponse(req, codec.TopicNotExist, "no topic route info in name server for the topic: "+topic)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rd.BrokerDatas = append(rd.BrokerDatas, *groups[n])
		rd.QueueDatas = append(rd.QueueDatas, queues[n])
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = rd.Encode()
	if len(s.routes) >= maxRoutes {
		clear(s.routes) // clients asking for many topics: start over rather than grow
	}
	s.routes[topic] = resp.Body
	return resp
}

// maxRoutes bounds Server.routes.
const maxRoutes = 1024

// forgetRoutes drops the memoised route bodies: something a route is built from changed.
func (s *Server) forgetRoutes() { clear(s.routes) }

// idClaim is one broker id of one group.
type idClaim struct {
	group string
	id    int64
}

// idClaims picks, for each broker id of each group, the broker a route names: when two
// replicas of a group both register as one id (a new master as 0 while the master it replaced,
// hung or cut off with its connection open, has not yet re-registered as a slave or expired),
// the one with the higher master epoch; the other is left out of routes until it registers
// again under its own id. (Routing the deposed master would send clients to it for up to the
// expiry.) Between equal epochs the later address wins, as before.
func (s *Server) idClaims() map[idClaim]*liveBroker {
	out := map[idClaim]*liveBroker{}
	for _, addr := range slices.Sorted(maps.Keys(s.brokers)) {
		b := s.brokers[addr]
		k := idClaim{b.brokerName, b.brokerID}
		if prev := out[k]; prev == nil || b.epoch >= prev.epoch {
			out[k] = b
		}
	}
	return out
}

// deleteTopic drops a topic from every broker's registration, so it leaves routes and topic
// lists until a broker registers it again (a broker that still has it does so at its next
// registration, as with Java's name server).
func (s *Server) deleteTopic(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.TopicHeader](req) // no field can be malformed
	topic := h.Topic
	if topic == "" {
		return codec.NewResponse(req, codec.SystemError, "delete topic: topic is required")
	}
	n := 0
	for _, addr := range slices.Sorted(maps.Keys(s.brokers)) {
		if _, ok := s.brokers[addr].topics[topic]; ok {
			delete(s.brokers[addr].topics, topic)
			delete(s.registered, addr)
			s.forgetRoutes()
			n++
		}
	}
	s.log.Info("topic deleted from routes", "topic", topic, "brokers", n)
	return codec.NewResponse(req, codec.Success, "")
}

// clusterInfo is the GET_BROKER_CLUSTER_INFO body: every registered broker, whatever its
// topics, under its group, and each cluster's group names, sorted (Java's RouteInfoManager
// brokerAddrTable and clusterAddrTable).
func (s *Server) clusterInfo() []byte {
	ci := route.ClusterInfo{BrokerAddrTable: map[string]route.BrokerData{}, ClusterAddrTable: map[string][]string{}}
	for _, addr := range slices.Sorted(maps.Keys(s.brokers)) {
		b := s.brokers[addr]
		bd, ok := ci.BrokerAddrTable[b.brokerName]
		if !ok {
			bd = route.BrokerData{Cluster: b.cluster, BrokerName: b.brokerName, BrokerAddrs: map[string]string{}}
			if !slices.Contains(ci.ClusterAddrTable[b.cluster], b.brokerName) {
				ci.ClusterAddrTable[b.cluster] = append(ci.ClusterAddrTable[b.cluster], b.brokerName)
			}
		}
		bd.BrokerAddrs[strconv.FormatInt(b.brokerID, 10)] = addr
		ci.BrokerAddrTable[b.brokerName] = bd
	}
	for c := range ci.ClusterAddrTable {
		slices.Sort(ci.ClusterAddrTable[c])
	}
	body, err := json.Marshal(ci)
	if err != nil {
		panic(fmt.Sprintf("namesrv: marshal of plain data failed: %v", err))
	}
	return body
}

func (s *Server) topicNames() []string {
	set := map[string]bool{}
	for _, b := range s.brokers {
		for t := range b.topics {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
