// Package brokernode is the broker node: it serves producers (send), consumers (pull with long
// polling, offsets, heartbeats, consumer lists) and admins (create topic) over the RocketMQ
// remoting protocol, stores messages through package store, and registers its topics with the
// name servers. It is a deterministic state machine (see package node): it does no I/O of its
// own beyond the node.Env it is handed, and never lets map order leak into behaviour.
//
// Durability: in sync-flush mode a send is acknowledged only after the fsync that covers it
// (group commit: one fsync in flight, every send that arrived meanwhile covered by the next),
// and consumers see a message only once it is durable, so nothing a client has seen can
// disappear in a crash. In async-flush mode sends are acknowledged and visible at once and the
// commit log is synced on a timer. The path from an append to its acknowledgement is acks.go;
// what a replica of a broker group does differently is its role (role.go).
package brokernode

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/metrics"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// FlushMode says when a send is acknowledged.
type FlushMode int

const (
	// SyncFlush acknowledges a send after the fsync that covers it.
	SyncFlush FlushMode = iota
	// AsyncFlush acknowledges a send once it is written; a timer syncs the log.
	AsyncFlush
)

func (m FlushMode) String() string {
	if m == AsyncFlush {
		return "async"
	}
	return "sync"
}

// ParseFlushMode parses "sync" or "async".
func ParseFlushMode(s string) (FlushMode, error) {
	switch s {
	case "sync", "SYNC_FLUSH":
		return SyncFlush, nil
	case "async", "ASYNC_FLUSH":
		return AsyncFlush, nil
	}
	return 0, fmt.Errorf("flush mode %q: want sync or async", s)
}

// Config tunes a broker.
type Config struct {
	ClusterName string
	BrokerName  string
	BrokerID    int64
	// Addr is the address clients reach this broker at (host:port, a literal IP).
	Addr        string
	NameServers []string
	FlushMode   FlushMode
	// AutoCreateTopic creates unknown topics on first send (and advertises TBW102).
	AutoCreateTopic  bool
	DefaultQueueNums int32
	MaxMessageBytes  int
	// EnablePropertyFilter lets consumers subscribe with SQL92 selectors over message
	// properties (Java's enablePropertyFilter); without it their pulls are refused.
	EnablePropertyFilter bool
	// TraceTopic is the topic RocketMQ clients with message tracing on (the official Go
	// client's WithTrace, Java's enableMsgTrace) send their trace records to; the broker
	// creates it at start (1 queue, as Java's broker with traceTopicEnable) so its route
	// resolves: the Go client looks it up and sends nothing when it has no route. "" creates
	// none.
	TraceTopic string

	RegisterInterval    time.Duration
	OffsetFlushInterval time.Duration
	CheckpointInterval  time.Duration
	AsyncFlushInterval  time.Duration
	ClientExpiry        time.Duration
	// LockLease is how long a queue lock for orderly consumption lasts without renewal before
	// another client of the group may take the queue (Java: rocketmq.broker.rebalance.lockMaxLiveTime).
	LockLease time.Duration
	// RecentHeadEntries is how close (in commit-log entries) to the end of the commit log a
	// queue's first message must be for a consumer group with no offset on that queue to be
	// answered offset 0 (Java's "head still in memory" rule; consumer.go youngQueue). 0 means
	// DefaultRecentHeadEntries.
	RecentHeadEntries uint64
	// MaxLongPoll caps how long a pull is parked, whatever the client asks, so the answer
	// always beats the client's 30 s pull timeout.
	MaxLongPoll time.Duration
	// MaxParkedPulls bounds parked pulls; beyond it pulls are answered at once.
	MaxParkedPulls int
	// DelayLevels is the delay of each delay level, level 1 first (Java's messageDelayLevel);
	// nil means DefaultDelayLevels.
	DelayLevels []time.Duration

	// StoreReplyMessage stores every reply message (SEND_REPLY_MESSAGE) in its topic besides
	// pushing it to its requester (Java's storeReplyMessageEnable, true by default).
	StoreReplyMessage bool
	// ReplyPushTimeout is how long a reply pushed to its requester waits for the requester's
	// answer before the replier is answered that the push failed; 0 means
	// DefaultReplyPushTimeout.
	ReplyPushTimeout time.Duration

	// TxnCheckInterval is how often unresolved transactional half messages are checked back
	// with their producers; TxnTimeout is how old a half message must be to be checked;
	// TxnCheckMax is how many checks a half message gets before it is discarded.
	TxnCheckInterval time.Duration
	TxnTimeout       time.Duration
	TxnCheckMax      int

	// Broker groups (replica.go). With Controllers (the controller members' addresses) the
	// broker is replica BrokerID (at least 1) of group BrokerName, and the controller makes it
	// master or slave; without, it is a single master. Zero durations and sizes take the
	// defaults (DefaultControllerHeartbeat and the rest).
	Controllers []string
	// ReplicationMode: sync acknowledges a write once the in-sync set holds it durably (the
	// master's own fsync included, whatever FlushMode says); async on the master's flush.
	ReplicationMode ReplicationMode
	// MinInSync is the least size of the in-sync set (the master counted) for a sync-mode
	// master to acknowledge anything; 0 means 1.
	MinInSync                   int
	ControllerHeartbeatInterval time.Duration
	ControllerTimeout           time.Duration
	MasterLease                 time.Duration
	MaxReplicaLag               time.Duration
	ReplicaFetchWait            time.Duration
	ReplicaFetchBytes           int
	// MetaSyncInterval is how often a slave copies its master's topics, consumer groups and
	// offsets (metasync.go); 0 means DefaultMetaSyncInterval, negative never.
	MetaSyncInterval time.Duration

	// Retention and the disk guard (retention.go, diskfull.go), RocketMQ's keys: commit-log
	// segments older than FileReservedTime (0: never by age) are deleted at the hours of
	// DeleteWhen (0-23, local time), and the oldest whatever their age once the data disk is
	// more than DiskMaxUsedSpaceRatio percent full (0: never); above DiskFullRatio percent
	// (0: never) new messages are refused.
	FileReservedTime      time.Duration
	DeleteWhen            []int
	DiskMaxUsedSpaceRatio int
	DiskFullRatio         int

	// MaxOpenQueueFiles bounds the consume-queue logs the store keeps open at once (idle ones
	// are closed and reopened on demand; package store, queuefiles.go); 0 means
	// store.DefaultMaxOpenQueueFiles. The production runtime derives it from the process's
	// descriptor limit unless it is set.
	MaxOpenQueueFiles int

	// Bugs is the set of bugs planted for the simulator's catalogue (package bugs); empty in
	// production.
	Bugs bugs.Set

	// Metrics records the broker's metrics (metrics.go); nil records nothing.
	Metrics metrics.Recorder

	// Observe, if set, is told of what the broker does that checkers judge (observe.go:
	// acknowledgements, writes, confirmations, truncations, role changes), as it happens. For
	// the simulator's checks; it must not call back into the broker.
	Observe func(Event)
}

// DefaultConfig is a single master with RocketMQ's timings.
func DefaultConfig() Config {
	return Config{
		ClusterName:          "DefaultCluster",
		BrokerName:           "broker-a",
		BrokerID:             route.MasterID,
		Addr:                 "127.0.0.1:10911",
		NameServers:          []string{"127.0.0.1:9876"},
		FlushMode:            SyncFlush,
		AutoCreateTopic:      true,
		EnablePropertyFilter: true,
		TraceTopic:           DefaultTraceTopic,
		DefaultQueueNums:     4,
		MaxMessageBytes:      4 << 20,
		RegisterInterval:     30 * time.Second,
		OffsetFlushInterval:  5 * time.Second,
		CheckpointInterval:   10 * time.Second,
		AsyncFlushInterval:   500 * time.Millisecond,
		ClientExpiry:         120 * time.Second,
		LockLease:            60 * time.Second,
		MaxLongPoll:          15 * time.Second,
		MaxParkedPulls:       100000,
		DelayLevels:          defaultDelayLevels(),
		StoreReplyMessage:    true,
		ReplyPushTimeout:     DefaultReplyPushTimeout,
		TxnCheckInterval:     DefaultTxnCheckInterval,
		TxnTimeout:           DefaultTxnTimeout,
		TxnCheckMax:          DefaultTxnCheckMax,

		FileReservedTime:      DefaultFileReservedTime,
		DeleteWhen:            DefaultDeleteWhen(),
		DiskMaxUsedSpaceRatio: DefaultDiskMaxUsedSpaceRatio,
		DiskFullRatio:         DefaultDiskFullRatio,
	}
}

// DefaultTraceTopic is RocketMQ's system topic for message traces (Java's msgTraceTopicName).
const DefaultTraceTopic = "RMQ_SYS_TRACE_TOPIC"

// DefaultRecentHeadEntries is the default of Config.RecentHeadEntries.
const DefaultRecentHeadEntries = 1 << 20

func (c Config) recentHeadEntries() uint64 {
	if c.RecentHeadEntries == 0 {
		return DefaultRecentHeadEntries
	}
	return c.RecentHeadEntries
}

func defaultDelayLevels() []time.Duration {
	levels, err := ParseDelayLevels(DefaultDelayLevels)
	if err != nil {
		panic("brokernode: the default delay table does not parse: " + err.Error())
	}
	return levels
}

type (
	registerTimer    struct{}
	offsetFlushTimer struct{}
	checkpointTimer  struct{}
	asyncFlushTimer  struct{}
	retrySyncTimer   struct{}
	clientScanTimer  struct{}
)

// Broker is the broker node.
type Broker struct {
	env       node.Env
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	storeHost netip.AddrPort

	// ready is false until the recovered commit log has been synced once.
	ready bool

	// acks are the writes waiting to be acknowledged and the commit log's syncs (acks.go).
	acks ackPipeline
	// role is what the broker does in its group (role.go): soloRole without a group.
	role role

	// fatal is why the broker stopped for good (syncLost); nil while it runs.
	fatal error

	// Checkpoint state: consume-queue logs still being synced.
	ckptPending map[string]bool
	ckptUpTo    uint64

	// Name-server connections by address.
	nsConns map[string]node.ConnID
	opaque  int32
	// reg tracks registration rounds that answers wait for, and the registered data's version
	// (register.go).
	reg registrations

	parked *parkedPulls
	groups *consumerGroups
	locks  *queueLocks
	delay  *delayState
	// remotes holds the remote address of inbound connections (the born host of their sends).
	remotes map[node.ConnID]netip.AddrPort
	// groupsVersion versions the consumer groups admins list (admin.go).
	groupsVersion groupsVersion
	// topicsVersion versions the topics GET_ALL_TOPIC_CONFIG serves (metasync.go).
	topicsVersion metaVersion
	// txn is the transactional-message bookkeeping (transaction.go).
	txn *transactions
	// repl is the broker's state as a replica of a broker group (replica.go); nil without
	// controllers.
	repl *replica
	// replies are the reply messages pushed to their requesters and waiting for their
	// answers, by the push's opaque (reply.go).
	replies map[int32]*replyPush
	// unsupported answers and logs the requests the broker does not serve.
	unsupported node.Unsupported
	// retention is retention's and the disk guard's state (retention.go, diskfull.go).
	retention retentionState
	// metrics holds the recorder and its cached handles (metrics.go).
	metrics brokerMetrics
}

// New opens the broker's store (recovering it after a crash) and returns the node.
func New(env node.Env, cfg Config) (*Broker, error) {
	if cfg.LockLease <= 0 {
		return nil, fmt.Errorf("queue lock lease %v must be positive", cfg.LockLease)
	}
	if cfg.DelayLevels == nil {
		cfg.DelayLevels = defaultDelayLevels()
	}
	if err := checkDelayLevels(cfg.DelayLevels); err != nil {
		return nil, err
	}
	host, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("broker address %q must be a literal ip:port: %w", cfg.Addr, err)
	}
	if err := cfg.CheckTxnSettings(); err != nil {
		return nil, fmt.Errorf("broker %s: %w", cfg.BrokerName, err)
	}
	if err := cfg.checkReplicaSettings(); err != nil {
		return nil, fmt.Errorf("broker %s: %w", cfg.BrokerName, err)
	}
	st, err := store.Open(env.Disk(), store.Options{Logger: env.Logger(), ConfirmCheckpointedOnly: cfg.replicated(),
		MaxOpenQueueFiles: cfg.MaxOpenQueueFiles, Bugs: cfg.Bugs})
	if err != nil {
		return nil, fmt.Errorf("open store of broker %s: %w", cfg.BrokerName, err)
	}
	b := &Broker{
		env: env, cfg: cfg, log: env.Logger(), store: st, storeHost: host,
		nsConns: map[string]node.ConnID{},
		parked:  newParkedPulls(),
		groups:  newConsumerGroups(),
		locks:   newQueueLocks(cfg.LockLease, cfg.Bugs.Has(bugs.LockRenewalKeepsLease)),
		remotes: map[node.ConnID]netip.AddrPort{},
		txn:     newTransactions(),
		metrics: newBrokerMetrics(cfg.Metrics),

		unsupported: node.Unsupported{What: "broker"},
	}
	if cfg.AutoCreateTopic {
		if _, ok := st.Topic(route.DefaultTopic); !ok {
			err := st.CreateTopic(store.TopicConfig{Name: route.DefaultTopic, ReadQueueNums: 8, WriteQueueNums: 8,
				Perm: route.PermRead | route.PermWrite | route.PermInherit})
			if err != nil {
				return nil, fmt.Errorf("create %s: %w", route.DefaultTopic, err)
			}
		}
	}
	if cfg.TraceTopic != "" {
		if err := validTopic(cfg.TraceTopic); err != nil {
			st.Close()
			return nil, fmt.Errorf("trace topic: %w", err)
		}
		if _, ok := st.Topic(cfg.TraceTopic); !ok {
			// Java's TopicConfigManager with traceTopicEnable: one read and one write queue,
			// perm read and write.
			err := st.CreateTopic(store.TopicConfig{Name: cfg.TraceTopic, ReadQueueNums: 1, WriteQueueNums: 1,
				Perm: route.PermRead | route.PermWrite})
			if err != nil {
				st.Close()
				return nil, fmt.Errorf("create %s: %w", cfg.TraceTopic, err)
			}
		}
	}
	if err := ensureReplyTopic(st, cfg.ClusterName); err != nil {
		st.Close()
		return nil, fmt.Errorf("create %s: %w", ReplyTopic(cfg.ClusterName), err)
	}
	b.initDelay()
	b.role, b.acks.policy = soloRole{}, flushAcks{}
	if cfg.replicated() {
		if err := b.initReplica(); err != nil {
			st.Close()
			return nil, err
		}
	}
	return b, nil
}

// Store exposes the broker's store to tools and tests.
func (b *Broker) Store() *store.Store { return b.store }

// Ready reports whether the broker serves sends and pulls.
func (b *Broker) Ready() bool { return b.ready }

// Start implements node.Handler: sync what recovery found, then start the timers.
func (b *Broker) Start() {
	cl := b.store.CommitLog()
	b.acks.syncInFlight = true
	b.env.Sync(cl, cl.LastIndex())
	b.env.SetTimer(b.cfg.OffsetFlushInterval, offsetFlushTimer{})
	b.env.SetTimer(b.cfg.CheckpointInterval, checkpointTimer{})
	b.env.SetTimer(b.cfg.ClientExpiry/4, clientScanTimer{})
	if b.cfg.FlushMode == AsyncFlush {
		b.env.SetTimer(b.cfg.AsyncFlushInterval, asyncFlushTimer{})
	}
}

// OnAccepted implements node.Handler.
func (b *Broker) OnAccepted(c node.ConnID, remote string) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		b.remotes[c] = ap
	}
}

// OnDialed implements node.Handler.
func (b *Broker) OnDialed(node.ConnID) {}

// isNameServerConn reports whether c is the broker's connection to a name server.
func (b *Broker) isNameServerConn(c node.ConnID) bool {
	for _, nc := range b.nsConns {
		if nc == c {
			return true
		}
	}
	return false
}

// OnConnClosed forgets everything tied to the connection: parked pulls, consumer clients,
// and name-server connections (redialled at the next registration).
func (b *Broker) OnConnClosed(c node.ConnID) {
	delete(b.remotes, c)
	b.parked.dropConn(b.env, c)
	b.txn.producers.dropConn(c)
	b.replyConnClosed(c)
	for _, group := range b.groups.dropConn(c) {
		b.notifyGroupChanged(group)
	}
	for _, addr := range slices.Sorted(maps.Keys(b.nsConns)) {
		if b.nsConns[addr] == c {
			delete(b.nsConns, addr)
		}
	}
	b.registrationConnClosed(c)
	b.role.connClosed(b, c)
	// Acks owed on c are dropped when their fsync completes (Send on a closed conn is a no-op).
}

// OnStop implements node.Stopper: a clean stop persists the consumer offsets committed since
// the last periodic flush (messages are durable already; offsets are flushed every
// OffsetFlushInterval), so consumers resume exactly where they stopped after a restart.
func (b *Broker) OnStop() {
	if err := b.store.FlushOffsets(); err != nil {
		b.log.Error("flush consumer offsets at stop", "err", err)
	}
}

// OnTimer implements node.Handler.
func (b *Broker) OnTimer(_ node.TimerID, tag any) {
	switch t := tag.(type) {
	case registerTimer:
		b.registerAll()
		b.env.SetTimer(b.cfg.RegisterInterval, registerTimer{})
	case offsetFlushTimer:
		if err := b.store.FlushOffsets(); err != nil {
			b.log.Error("flush consumer offsets", "err", err)
		}
		b.env.SetTimer(b.cfg.OffsetFlushInterval, offsetFlushTimer{})
	case checkpointTimer:
		b.checkRetention()
		b.beginCheckpoint()
		b.env.SetTimer(b.cfg.CheckpointInterval, checkpointTimer{})
	case asyncFlushTimer:
		b.requestSync()
		if !b.cfg.Bugs.Has(bugs.AsyncFlushOnce) {
			b.env.SetTimer(b.cfg.AsyncFlushInterval, asyncFlushTimer{})
		}
	case retrySyncTimer:
		b.requestSync()
	case noSpaceTimer:
		b.retryAfterNoSpace()
	case delayLevelTimer:
		b.onDelayTimer(t)
	case clientScanTimer:
		for _, group := range b.groups.expire(b.env.Now().Add(-b.cfg.ClientExpiry)) {
			b.notifyGroupChanged(group)
		}
		b.locks.expire(b.env.Now())
		b.txn.producers.expire(b.env.Now().Add(-b.cfg.ClientExpiry))
		b.env.SetTimer(b.cfg.ClientExpiry/4, clientScanTimer{})
	case txnCheckTimer:
		b.checkTransactions()
		b.env.SetTimer(b.cfg.TxnCheckInterval, txnCheckTimer{})
	case registrationTimeout:
		b.registrationTimedOut(t)
	case *replyPush:
		b.replyPushTimedOut(t)
	case *parkedPull:
		if !t.done {
			b.parked.expire(t)
			b.retryPull(t)
		}
	default:
		b.onReplicaTimer(tag)
	}
}

func (b *Broker) beginCheckpoint() {
	if b.ckptPending != nil || b.fatal != nil {
		return // one at a time; none once a sync was lost (syncLost)
	}
	logs, upTo := b.store.BeginCheckpoint()
	if len(logs) == 0 {
		return
	}
	b.ckptPending = map[string]bool{}
	b.ckptUpTo = upTo
	for _, l := range logs {
		b.ckptPending[l.Name()] = true
		b.env.Sync(l, l.LastIndex())
	}
}

func (b *Broker) checkpointSynced(logName string, err error) {
	if b.ckptPending == nil || !b.ckptPending[logName] {
		return
	}
	if errors.Is(err, node.ErrSyncLost) {
		b.ckptPending = nil
		b.syncLost(logName, err)
		return
	}
	if err != nil {
		b.log.Error("consume queue fsync failed; checkpoint abandoned", "log", logName, "err", err)
		b.ckptPending = nil
		return
	}
	delete(b.ckptPending, logName)
	if len(b.ckptPending) == 0 {
		b.ckptPending = nil
		if err := b.store.FinishCheckpoint(b.ckptUpTo); err != nil {
			b.log.Error("write checkpoint", "err", err)
		}
	}
}

// OnFrame dispatches one request.
func (b *Broker) OnFrame(c node.ConnID, req *codec.Command) {
	if req.IsResponse() {
		if req.Code == codec.Success && !b.reg.accepted && b.isNameServerConn(c) {
			b.reg.accepted = true // the broker sends name servers nothing but registrations
		}
		if b.role.onResponse(b, c, req) {
			return
		}
		if b.onRegisterResponse(c, req) {
			return
		}

		if b.onReplyPushResponse(c, req) {
			return
		}
		if req.Code != codec.Success {
			b.log.Warn("request answered with an error", "code", req.Code, "remark", req.Remark)
		}
		return
	}
	if isWriteRequest(req.Code) && !b.role.writable(b) {
		b.env.Send(c, b.refuseWrite(req))
		return
	}
	var resp *codec.Command
	switch req.Code {
	case codec.ReqSendMessage:
		resp = b.handleSend(c, req)
	case codec.ReqSendMessageV2:
		// The Java client's and ali-ons's default for one message: the same send, short names.
		resp = b.handleSend(c, req)
	case codec.ReqSendBatchMessage:
		resp = b.handleSendBatch(c, req)
	case codec.ReqSendReplyMessage:
		resp = b.handleSendReply(c, req)
	case codec.ReqSendReplyMessageV2:
		resp = b.handleSendReply(c, req)
	case codec.ReqPullMessage:
		resp = b.handlePull(c, req, true)
	case codec.ReqQueryConsumerOffset:
		resp = b.handleQueryOffset(req)
	case codec.ReqUpdateConsumerOffset:
		resp = b.handleUpdateOffset(req)
	case codec.ReqGetMaxOffset, codec.ReqGetMinOffset:
		resp = b.handleMinMaxOffset(req)
	case codec.ReqSearchOffsetByTimestamp:
		resp = b.handleSearchOffset(req)
	case codec.ReqHeartBeat:
		resp = b.handleHeartbeat(c, req)
	case codec.ReqCheckClientConfig:
		resp = b.handleCheckClientConfig(req)
	case codec.ReqUnregisterClient:
		resp = b.handleUnregisterClient(req)
	case codec.ReqConsumerSendMsgBack:
		resp = b.handleSendBack(c, req)
	case codec.ReqEndTransaction:
		resp = b.handleEndTransaction(c, req)
	case codec.ReqGetConsumerListByGroup:
		resp = b.handleConsumerList(req)
	case codec.ReqGetConsumerConnectionList:
		resp = b.handleConsumerConnections(req)
	case codec.ReqGetProducerConnectionList:
		resp = b.handleProducerConnections(req)
	case codec.ReqInvokeBrokerToResetOffset:
		resp = b.handleResetOffset(req)
	case codec.ReqUpdateAndCreateTopic:
		resp = b.handleCreateTopic(c, req)
	case codec.ReqLockBatchMQ:
		resp = b.handleLockBatch(req)
	case codec.ReqUnlockBatchMQ:
		resp = b.handleUnlockBatch(req)
	case codec.ReqDeleteTopicInBroker:
		resp = b.handleDeleteTopic(req)
	case codec.ReqViewMessageByID:
		resp = b.handleViewMessageByID(req)
	case codec.ReqQueryMessage:
		resp = b.handleQueryMessage(req)
	case codec.ReqGetAllSubscriptionGroup:
		resp = b.handleAllSubscriptionGroups(req)
	case codec.ReqGetAllTopicConfig:
		resp = b.handleAllTopics(req)
	case codec.ReqGetAllConsumerOffset:
		resp = b.handleAllOffsets(req)
	case codec.ReqGetAllDelayOffset:
		resp = b.handleDelayOffsets(req)
	case codec.ReqReplicaHandshake:
		resp = b.handleReplicaHandshake(req)
	case codec.ReqReplicaFetch:
		resp = b.handleReplicaFetch(c, req)
	default:
		remote := ""
		if ap, ok := b.remotes[c]; ok {
			remote = ap.String()
		}
		resp = b.unsupported.Answer(b.env, c, remote, req)
	}
	if resp != nil {
		b.env.Send(c, resp)
	}
}

func (b *Broker) nextOpaque() int32 {
	b.opaque++
	return b.opaque
}

func (b *Broker) handleCreateTopic(c node.ConnID, req *codec.Command) *codec.Command {
	h, hdrErr := codec.DecodeHeader[codec.CreateTopicHeader](req)
	topic := h.Topic
	if err := validTopic(topic); err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	r, w, perm := h.ReadQueueNums, h.WriteQueueNums, h.Perm
	if hdrErr != nil || r < 1 || w < 1 || r > store.MaxQueueNums || w > store.MaxQueueNums {
		return codec.NewResponse(req, codec.SystemError,
			fmt.Sprintf("readQueueNums and writeQueueNums must be 1..%d", store.MaxQueueNums))
	}
	if err := b.store.CreateTopic(store.TopicConfig{Name: topic, ReadQueueNums: int32(r), WriteQueueNums: int32(w), Perm: int32(perm)}); err != nil {
		return codec.NewResponse(req, codec.SystemError, "create topic "+topic+": "+err.Error())
	}
	// Java registers the new topic with every name server and waits for their answers before
	// answering the admin (AdminBrokerProcessor.updateAndCreateTopic, registerIncrementBrokerData),
	// so a client that looks the topic up right after finds its route. So does this broker:
	// the answer goes out when the registration round is answered (register.go).
	b.answerAfterRegistration(c, codec.NewResponse(req, codec.Success, ""), b.registerAll())
	return nil
}

// validTopic applies the store's topic rule and says what is wrong with a name it refuses.
func validTopic(t string) error {
	switch {
	case store.ValidTopicName(t):
		return nil
	case t == "":
		return fmt.Errorf("topic is empty")
	case len(t) > codec.MaxTopicBytes:
		return fmt.Errorf("topic %q is longer than %d bytes", t, codec.MaxTopicBytes)
	}
	return fmt.Errorf("topic %q has an illegal character (allowed: letters, digits, %%, |, _ and -)", t)
}
