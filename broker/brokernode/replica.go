package brokernode

// Broker groups (docs/architecture.md). A broker configured with controllers (Config.Controllers) is one
// replica of the group Config.BrokerName, with id Config.BrokerID (at least 1). It heartbeats
// to the controller, which tells it the group's master, master epoch and in-sync set, and it
// takes the role it is given:
//
//   - master (master.go): before its first write at epoch E it appends (E, last+1) to its
//     epoch table (package replication, kept in epochs.json); it serves its slaves' handshakes
//     and fetches, only ever from what it has made durable itself; in sync replication it
//     acknowledges (makes visible and answers SEND_OK for) index i only when every member of
//     the controller-confirmed in-sync set, and of a change it asked for, has synced i, and
//     the set has MinInSync members; it asks the controller to drop lagging slaves and to add
//     caught-up ones. A master that has not renewed its mastership with the controller within
//     MasterLease accepts no writes and acknowledges nothing.
//   - slave (slave.go): it handshakes with the master (their epoch tables give the last index
//     their logs share), truncates its log after that index, then fetches the master's
//     records, appends them at the same indexes, syncs them, and only then reports them synced
//     in its next fetch. It refuses sends (SERVICE_NOT_AVAILABLE, as Java's slave) and serves
//     pulls of what the master has confirmed and it has synced. Every MetaSyncInterval it also
//     copies the master's topics, consumer groups and offsets (metasync.go).
//   - none: the controller named no master (or has not answered yet): no writes.
//
// The broker registers with the name servers as brokerId 0 while it is master and as its own
// id otherwise. Without controllers none of this exists and the broker is a single master.
//
// Each role is an object (role.go) that owns its state and is installed whole; this file holds
// what every replica keeps whatever its role, controller.go the link to the controller.

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
)

// ReplicationMode says when a master of a broker group acknowledges a write.
type ReplicationMode int

const (
	// SyncReplication acknowledges a write once the in-sync replicas hold it durably.
	SyncReplication ReplicationMode = iota
	// AsyncReplication acknowledges a write on the master's own flush policy; slaves copy it
	// later (a failover may lose acknowledged writes).
	AsyncReplication
)

func (m ReplicationMode) String() string {
	if m == AsyncReplication {
		return "async"
	}
	return "sync"
}

// ParseReplicationMode parses "sync" or "async".
func ParseReplicationMode(s string) (ReplicationMode, error) {
	switch s {
	case "sync", "SYNC_MASTER":
		return SyncReplication, nil
	case "async", "ASYNC_MASTER":
		return AsyncReplication, nil
	}
	return 0, fmt.Errorf("replication mode %q: want sync or async", s)
}

// Defaults of the group settings (Config fields left zero take them).
const (
	// DefaultControllerHeartbeat is well under the controller's MasterTimeout (3 s).
	DefaultControllerHeartbeat = 500 * time.Millisecond
	// DefaultMasterLease: a master stops writing this long after sending the last heartbeat
	// the controller confirmed it with. It must stay below the controller's MasterTimeout,
	// which counts from the controller's receipt of that heartbeat.
	DefaultMasterLease = 2 * time.Second
	// DefaultMaxReplicaLag: a slave of the in-sync set that has lacked some of the master's
	// entries for this long is dropped from the set.
	DefaultMaxReplicaLag = 2 * time.Second
	// DefaultReplicaFetchWait is how long a master parks a fetch that finds nothing new.
	DefaultReplicaFetchWait = 3 * time.Second
	// DefaultReplicaFetchBytes bounds the records of one fetch answer.
	DefaultReplicaFetchBytes = 4 << 20
	// DefaultControllerTimeout: a controller request unanswered for this long is given up
	// (and the next member tried).
	DefaultControllerTimeout = 2 * time.Second

	replicaTickInterval = 100 * time.Millisecond
	replicaRetryDelay   = 300 * time.Millisecond
)

// groupMode reports whether the broker is a replica of a broker group.
func (c *Config) replicated() bool { return len(c.Controllers) > 0 }

// checkReplicaSettings validates the group settings and fills in defaults.
func (c *Config) checkReplicaSettings() error {
	if !c.replicated() {
		return nil
	}
	if c.BrokerID < 1 {
		return fmt.Errorf("a replica of a broker group needs a broker id of at least 1 (got %d)", c.BrokerID)
	}
	if c.MinInSync < 0 {
		return fmt.Errorf("min in-sync replicas %d is negative", c.MinInSync)
	}
	c.MinInSync = max(c.MinInSync, 1)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ControllerHeartbeatInterval, DefaultControllerHeartbeat)
	def(&c.MasterLease, DefaultMasterLease)
	def(&c.MaxReplicaLag, DefaultMaxReplicaLag)
	def(&c.ReplicaFetchWait, DefaultReplicaFetchWait)
	def(&c.ControllerTimeout, DefaultControllerTimeout)
	if c.MetaSyncInterval == 0 {
		c.MetaSyncInterval = DefaultMetaSyncInterval
	}
	if c.ReplicaFetchBytes <= 0 {
		c.ReplicaFetchBytes = DefaultReplicaFetchBytes
	}
	if c.ReplicationMode == SyncReplication {
		// Slaves copy only what the master made durable, so a master in sync replication
		// acknowledges after its own fsync whatever the flush mode says.
		c.FlushMode = SyncFlush
	}
	return nil
}

// replica is the broker's state as one replica of its broker group, whatever its role.
type replica struct {
	table *replication.Table
	// The group as the controller last described it.
	epoch      int64
	masterID   int64
	masterAddr string

	ctl ctlLink

	// leaseExpired is the latest heartbeat whose leaseTimer fired (masterRole.leaseValid).
	leaseExpired  uint64
	dutiesStarted bool // recoverTransactions ran (it sets the check timer, once)
	// masterConfirmed is the highest confirmed index a master's fetch answer carried
	// (slaveAcks).
	masterConfirmed uint64
	// meta copies the master's topics, groups and offsets while a slave (metasync.go).
	meta metaSync
}

type replicaTickTimer struct{}

// initReplica loads the epoch table; the broker starts with no role.
func (b *Broker) initReplica() error {
	t, err := replication.Load(b.env.Disk(), b.store.CommitLog().LastIndex())
	if err != nil {
		return fmt.Errorf("broker %s: %w", b.cfg.BrokerName, err)
	}
	b.repl = &replica{table: t, ctl: ctlLink{idx: -1}}
	b.role, b.acks.policy = idleRole{}, holdAcks{}
	return nil
}

// replicaReady runs once the recovered commit log is synced: the replica starts talking to the
// controller. Delay delivery and transaction checks wait for the master role.
func (b *Broker) replicaReady() {
	b.sendHeartbeat()
	b.env.SetTimer(replicaTickInterval, replicaTickTimer{})
}

// errNotMaster is returned by putMessage on a replica that may not write.
var errNotMaster = errors.New("this broker is not the master of its group, or its mastership lapsed")

// isWriteRequest lists the requests that append to the commit log.
func isWriteRequest(code int16) bool {
	switch code {
	case codec.ReqSendMessage, codec.ReqSendMessageV2, codec.ReqSendBatchMessage, codec.ReqConsumerSendMsgBack, codec.ReqEndTransaction,
		codec.ReqSendReplyMessage, codec.ReqSendReplyMessageV2:
		return true
	}
	return false
}

// onReplicaTimer handles the replica's timers (a broker without a group sets none).
func (b *Broker) onReplicaTimer(tag any) {
	switch t := tag.(type) {
	case replicaTickTimer:
		b.replicaTick()
		b.env.SetTimer(replicaTickInterval, replicaTickTimer{})
	case leaseTimer:
		b.repl.leaseExpired = max(b.repl.leaseExpired, t.seq)
	case *parkedFetch:
		m := b.master()
		if m == nil {
			panic(fmt.Sprintf("brokernode: %s/%d: a parked fetch's timer fired on a %s (leaving the master role cancels them)",
				b.cfg.BrokerName, b.cfg.BrokerID, b.role))
		}
		m.fetchParkExpired(b, t)
	default:
		panic(fmt.Sprintf("brokernode: timer tag %T is none of the broker's", tag))
	}
}

// replicaTick does the periodic work: heartbeats and their timeouts, then the role's (the
// master's lease and in-sync set, the slave's reconnects and request timeouts).
func (b *Broker) replicaTick() {
	g, now := b.repl, b.env.Now()
	// A negative interval is a clock stepped back: count it as overdue, or a step back of a
	// minute would silence the heartbeats (and so lapse a master's lease) for that minute.
	if g.ctl.hbOpaque != 0 && overdue(now.Sub(g.ctl.hbSentAt), b.cfg.ControllerTimeout) {
		b.log.Warn("controller heartbeat unanswered; trying another member", "controller", g.ctl.addr)
		b.dropControllerConn()
	}
	if g.ctl.hbOpaque == 0 && overdue(now.Sub(g.ctl.lastHbSent), b.cfg.ControllerHeartbeatInterval) {
		b.sendHeartbeat()
	}
	b.role.tick(b)
}

// overdue reports whether since, the time from an event to now on Env.Now, reached limit; a
// negative since (the clock stepped back past the event) counts as overdue.
func overdue(since, limit time.Duration) bool { return since < 0 || since >= limit }

// onReplicaResponse handles the answers every role expects (the controller's to heartbeats,
// the master's to metadata requests); false if it is none of those.
func (b *Broker) onReplicaResponse(c node.ConnID, resp *codec.Command) bool {
	g := b.repl
	switch {
	case g.ctl.hbOpaque != 0 && resp.Opaque == g.ctl.hbOpaque && c == g.ctl.conn:
		sentAt, seq := g.ctl.hbSentAt, g.ctl.hbSeq
		g.ctl.hbOpaque = 0
		b.onHeartbeatAnswer(resp, seq, sentAt)
	case g.meta.opaque != 0 && resp.Opaque == g.meta.opaque && c == g.meta.conn:
		b.onMetaSyncAnswer(resp)
	default:
		return false
	}
	return true
}

// replicaConnClosed forgets what every role tied to a closed connection.
func (b *Broker) replicaConnClosed(c node.ConnID) {
	g := b.repl
	if c == g.ctl.conn {
		g.ctl.conn, g.ctl.addr, g.ctl.hbOpaque = 0, "", 0
	}
	if c == g.meta.conn {
		g.meta.conn = 0
		if g.meta.opaque != 0 {
			b.endRound(replicaRetryDelay) // its answer will not come
		}
	}
}
