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
//   - slave (this file): it handshakes with the master (their epoch tables give the last index
//     their logs share), truncates its log after that index, then fetches the master's
//     records, appends them at the same indexes, syncs them, and only then reports them synced
//     in its next fetch. It refuses sends (SERVICE_NOT_AVAILABLE, as Java's slave) and serves
//     pulls of what the master has confirmed and it has synced. Every MetaSyncInterval it also
//     copies the master's topics, consumer groups and offsets (metasync.go).
//   - none: the controller named no master (or has not answered yet): no writes.
//
// The broker registers with the name servers as brokerId 0 while it is master and as its own
// id otherwise. Without controllers none of this exists and the broker is a single master.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
	"github.com/sluicemq/sluice/broker/store"
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

	groupTick         = 100 * time.Millisecond
	replicaRetryDelay = 300 * time.Millisecond
)

// groupMode reports whether the broker is a replica of a broker group.
func (c *Config) groupMode() bool { return len(c.Controllers) > 0 }

// checkGroupSettings validates the group settings and fills in defaults.
func (c *Config) checkGroupSettings() error {
	if !c.groupMode() {
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

type replicaRole int

const (
	roleNone replicaRole = iota
	roleMaster
	roleSlave
)

func (r replicaRole) String() string {
	return [...]string{"none", "master", "slave"}[r]
}

// group is a replica's state in its broker group.
type group struct {
	table *replication.Table
	role  replicaRole
	// The group as the controller last described it.
	epoch      int64
	masterID   int64
	masterAddr string

	ctl ctlLink

	// Master (master.go). The lease holds while Env.Now is before leaseUntil and the lease
	// timer of the heartbeat that granted it (leaseFrom) has not fired (see leaseValid).
	leaseUntil    time.Time
	leaseFrom     uint64 // the heartbeat whose confirmation granted the lease (hbSeq numbering)
	leaseExpired  uint64 // the latest heartbeat whose leaseTimer fired
	leaseWarned   bool
	inSync        *replication.InSync
	alter         *alterCall
	fetches       []*parkedFetch
	dutiesStarted bool // recoverTransactions ran (it sets the check timer, once)
	dutiesDue     bool // delay levels and transaction checks wait for dutiesFrom confirmed
	dutiesFrom    uint64
	servable      uint64 // b.synced when the master last looked: what slaves may fetch
	// inherited is the last index of the log this master took over: entries up to it may
	// have been acknowledged by an earlier master, so a slave joins the in-sync set (becomes
	// electable) only once it holds them, whatever this master has confirmed itself.
	inherited uint64

	// Slave.
	link            *slaveLink
	retryAt         time.Time
	masterConfirmed uint64
	// discardSync: a truncation happened while a commit-log sync was in flight, whose
	// completion then says nothing certain about the entries now at those indexes.
	discardSync bool
	// meta copies the master's topics, groups and offsets (metasync.go).
	meta metaSync
}

// ctlLink is the connection to the controller member believed to lead.
type ctlLink struct {
	idx        int    // position in Config.Controllers of the member tried last
	addr       string // the member asked
	conn       node.ConnID
	hbOpaque   int32 // the heartbeat in flight (0: none)
	hbSentAt   time.Time
	hbSeq      uint64 // numbers the heartbeats sent; the one in flight is hbSeq
	lastHbSent time.Time
}

// slaveLink is a slave's connection to its master and the request in flight on it.
type slaveLink struct {
	conn       node.ConnID
	opaque     int32 // handshake or fetch in flight (0: none)
	sentAt     time.Time
	handshaken bool
	from       uint64 // the fetch in flight asks from here
	waitSync   bool   // the next fetch waits for the commit log to be synced to its end
}

type groupTickTimer struct{}

// leaseTimer fires MasterLease after heartbeat seq was sent: a lease that heartbeat granted
// ends then, whatever Env.Now reads.
type leaseTimer struct{ seq uint64 }

// groupView is the group as a controller answer describes it.
type groupView struct {
	masterID   int64
	masterAddr string
	epoch      int64
	set        []int64
	setEpoch   int64
}

// decodeGroupView reads the group from a controller answer's header.
func decodeGroupView(resp *codec.Command) (groupView, error) {
	h, err := codec.DecodeHeader[codec.GroupResponseHeader](resp)
	if err != nil {
		return groupView{}, err
	}
	v := groupView{masterID: h.MasterBrokerID, masterAddr: h.MasterAddress, epoch: h.MasterEpoch, set: h.SyncStateSet, setEpoch: h.SyncStateSetEpoch}
	if len(v.set) > replication.MaxEpochs {
		return v, fmt.Errorf("syncStateSet of %d ids", len(v.set))
	}
	if v.masterID < 0 || v.epoch < 0 || v.setEpoch < 0 || (v.masterID > 0 && (v.masterAddr == "" || !slices.Contains(v.set, v.masterID))) {
		return v, fmt.Errorf("master %d at %q, epoch %d, set %v (epoch %d) is not a valid group", v.masterID, v.masterAddr, v.epoch, v.set, v.setEpoch)
	}
	return v, nil
}

// initGroup loads the epoch table; the broker starts with no role.
func (b *Broker) initGroup() error {
	t, err := replication.Load(b.env.Disk(), b.store.CommitLog().LastIndex())
	if err != nil {
		return fmt.Errorf("broker %s: %w", b.cfg.BrokerName, err)
	}
	b.grp = &group{table: t, ctl: ctlLink{idx: -1}}
	return nil
}

// groupReady runs once the recovered commit log is synced: the replica starts talking to the
// controller. Delay delivery and transaction checks wait for the master role.
func (b *Broker) groupReady() {
	b.grp.servable = b.synced
	b.sendHeartbeat()
	b.env.SetTimer(groupTick, groupTickTimer{})
}

// writable reports whether the broker accepts writes: always without a group; as a master
// whose lease holds otherwise (or whatever the lease, with the planted bugs
// bugs.StaleMasterAcks and bugs.LeaseFreeMaster).
func (b *Broker) writable() bool {
	g := b.grp
	if g == nil {
		return true
	}
	return g.role == roleMaster && (b.leaseValid() || b.cfg.Bugs.Has(bugs.StaleMasterAcks) || b.cfg.Bugs.Has(bugs.LeaseFreeMaster))
}

// leaseValid: the master may still write and serve reads. The lease runs MasterLease from the
// sending of the heartbeat the controller confirmed it with, and the controller replaces a
// master only after MasterTimeout (> MasterLease) without its heartbeats; so two masters never
// both hold a lease, provided the lease is measured in real elapsed time. Env.Now is a wall
// clock that may step (a VM restored from a snapshot, a misconfigured NTP; the simulator's
// clock faults), and a step back would stretch a lease read off it by the size of the step, so
// the lease also ends when the lease timer of its heartbeat fires: timers count elapsed time,
// not clock readings. The Now check stays for a timer delivered late.
func (b *Broker) leaseValid() bool {
	g := b.grp
	return g.leaseFrom > g.leaseExpired && b.env.Now().Before(g.leaseUntil)
}

// renewLease extends the lease with the confirmation of heartbeat seq, sent at sentAt.
func (b *Broker) renewLease(seq uint64, sentAt time.Time) {
	g := b.grp
	g.leaseUntil = later(g.leaseUntil, sentAt.Add(b.cfg.MasterLease))
	g.leaseFrom = max(g.leaseFrom, seq)
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

// refuseWrite answers a write request to a replica that may not write, as Java answers a send
// to a slave: SERVICE_NOT_AVAILABLE, which the clients retry on another broker.
func (b *Broker) refuseWrite(req *codec.Command) *codec.Command {
	g := b.grp
	why := "it is a " + g.role.String()
	if g.role == roleMaster {
		why = "its mastership lapsed (no word from the controller)"
	}
	return codec.NewResponse(req, codec.ServiceNotAvailable, fmt.Sprintf(
		"service not available now: broker %s/%d is not the master of its group (%s); messages are put to the master", b.cfg.BrokerName, b.cfg.BrokerID, why))
}

// nameServerID is the brokerId the broker registers with: 0 for a master whose lease holds
// (a lapsed master may have been replaced: routes should not send clients to it).
func (b *Broker) nameServerID() int64 {
	if b.grp == nil {
		return b.cfg.BrokerID
	}
	if b.grp.role == roleMaster && !b.grp.leaseWarned {
		return 0
	}
	return b.cfg.BrokerID
}

// onGroupTimer handles the group's timers.
func (b *Broker) onGroupTimer(tag any) {
	if b.grp == nil {
		return
	}
	switch t := tag.(type) {
	case groupTickTimer:
		b.groupTickNow()
		b.env.SetTimer(groupTick, groupTickTimer{})
	case leaseTimer:
		b.grp.leaseExpired = max(b.grp.leaseExpired, t.seq)
	case *parkedFetch:
		b.fetchParkExpired(t)
	}
}

// groupTickNow does the periodic work: heartbeats and their timeouts, the master's lease and
// in-sync set, the slave's reconnects and request timeouts.
func (b *Broker) groupTickNow() {
	g, now := b.grp, b.env.Now()
	// A negative interval is a clock stepped back: count it as overdue, or a step back of a
	// minute would silence the heartbeats (and so lapse a master's lease) for that minute.
	if g.ctl.hbOpaque != 0 && overdue(now.Sub(g.ctl.hbSentAt), b.cfg.ControllerTimeout) {
		b.log.Warn("controller heartbeat unanswered; trying another member", "controller", g.ctl.addr)
		b.dropControllerConn()
	}
	if g.ctl.hbOpaque == 0 && overdue(now.Sub(g.ctl.lastHbSent), b.cfg.ControllerHeartbeatInterval) {
		b.sendHeartbeat()
	}
	switch g.role {
	case roleMaster:
		b.masterTick()
	case roleSlave:
		b.metaSyncTick()
		l := g.link
		switch {
		case l == nil && !now.Before(g.retryAt):
			b.startFollowing()
		case l != nil && l.opaque != 0 && now.Sub(l.sentAt) > b.cfg.ReplicaFetchWait+b.cfg.ControllerTimeout:
			b.log.Warn("master does not answer; reconnecting", "master", g.masterAddr)
			b.stopFollowing(replicaRetryDelay)
		}
	}
}

// overdue reports whether since, the time from an event to now on Env.Now, reached limit; a
// negative since (the clock stepped back past the event) counts as overdue.
func overdue(since, limit time.Duration) bool { return since < 0 || since >= limit }

// --- the controller ---

func (b *Broker) controllerConn() node.ConnID {
	g := b.grp
	if g.ctl.addr == "" {
		g.ctl.idx = (g.ctl.idx + 1) % len(b.cfg.Controllers)
		g.ctl.addr = b.cfg.Controllers[g.ctl.idx]
	}
	if g.ctl.conn == 0 {
		g.ctl.conn = b.env.Dial(g.ctl.addr)
	}
	return g.ctl.conn
}

// dropControllerConn closes the controller connection and forgets the member; the requests in
// flight on it are lost.
func (b *Broker) dropControllerConn() {
	g := b.grp
	if g.ctl.conn != 0 {
		b.env.Close(g.ctl.conn)
	}
	g.ctl.conn, g.ctl.addr, g.ctl.hbOpaque = 0, "", 0
	if g.alter != nil {
		g.alter.lost = true
	}
}

func (b *Broker) sendHeartbeat() {
	g := b.grp
	req := codec.NewRequest(codec.ReqControllerBrokerHeartbeat, codec.EncodeHeader(&codec.BrokerHeartbeatHeader{
		ClusterName: b.cfg.ClusterName, BrokerName: b.cfg.BrokerName, BrokerID: b.cfg.BrokerID, BrokerAddr: b.cfg.Addr,
		MasterEpoch: g.table.LastEpoch(), MaxOffset: int64(b.synced),
	}), nil)
	req.Opaque = b.nextOpaque()
	g.ctl.hbOpaque = req.Opaque
	g.ctl.hbSentAt = b.env.Now()
	g.ctl.lastHbSent = g.ctl.hbSentAt
	g.ctl.hbSeq++
	b.env.SetTimer(b.cfg.MasterLease, leaseTimer{g.ctl.hbSeq})
	b.env.Send(b.controllerConn(), req)
}

// redirect follows a controller's "not the leader" answer.
func (b *Broker) redirect(resp *codec.Command) {
	g := b.grp
	nl, _ := codec.DecodeHeader[codec.NotLeaderResponseHeader](resp) // no field can be malformed
	leader := nl.LeaderAddr
	if g.ctl.conn != 0 {
		b.env.Close(g.ctl.conn)
		g.ctl.conn = 0
	}
	if leader != "" && slices.Contains(b.cfg.Controllers, leader) && leader != g.ctl.addr {
		g.ctl.addr = leader
		g.ctl.idx = slices.Index(b.cfg.Controllers, leader)
	} else {
		g.ctl.addr = "" // try the next member
	}
}

// onGroupResponse handles the answer to a request the group code sent; false if it is not one.
func (b *Broker) onGroupResponse(c node.ConnID, resp *codec.Command) bool {
	g := b.grp
	switch {
	case g.ctl.hbOpaque != 0 && resp.Opaque == g.ctl.hbOpaque && c == g.ctl.conn:
		sentAt, seq := g.ctl.hbSentAt, g.ctl.hbSeq
		g.ctl.hbOpaque = 0
		b.onHeartbeatAnswer(resp, seq, sentAt)
	case g.alter != nil && resp.Opaque == g.alter.opaque && c == g.ctl.conn:
		b.onAlterAnswer(resp)
	case g.meta.opaque != 0 && resp.Opaque == g.meta.opaque && c == g.meta.conn:
		b.onMetaSyncAnswer(resp)
	case g.link != nil && resp.Opaque == g.link.opaque && c == g.link.conn:
		g.link.opaque = 0
		if g.link.handshaken {
			b.onFetchAnswer(resp)
		} else {
			b.onHandshakeAnswer(resp)
		}
	default:
		return false
	}
	return true
}

func (b *Broker) onHeartbeatAnswer(resp *codec.Command, seq uint64, sentAt time.Time) {
	switch resp.Code {
	case codec.Success:
	case codec.ControllerNotLeader:
		prev := b.grp.ctl.addr
		b.redirect(resp)
		if b.grp.ctl.addr != "" && b.grp.ctl.addr != prev {
			b.sendHeartbeat() // straight to the leader named
		}
		return
	default:
		b.log.Warn("controller refused the heartbeat", "code", resp.Code, "remark", resp.Remark)
		return
	}
	v, err := decodeGroupView(resp)
	if err != nil {
		b.log.Error("controller heartbeat answer does not decode", "err", err)
		return
	}
	b.applyGroupView(v, heartbeatSent{seq, sentAt})
}

// heartbeatSent names a heartbeat whose answer carried a group view; the zero value means the
// view came with another answer (it renews no lease).
type heartbeatSent struct {
	seq    uint64 // ctlLink.hbSeq when it was sent (from 1)
	sentAt time.Time
}

// applyGroupView takes the role the controller's view gives. A view answering heartbeat hb
// renews the lease of the master it confirms (see leaseValid).
func (b *Broker) applyGroupView(v groupView, hb heartbeatSent) {
	renew := hb.seq != 0
	g := b.grp
	if v.epoch < g.epoch {
		return // an older view (a member lagging behind)
	}
	switch {
	case v.masterID == b.cfg.BrokerID:
		if g.role != roleMaster || g.epoch != v.epoch {
			if !renew {
				return // only a heartbeat makes a master
			}
			b.becomeMaster(v, hb)
			return
		}
		if renew {
			b.renewLease(hb.seq, hb.sentAt)
			if g.leaseWarned && b.leaseValid() {
				g.leaseWarned = false
				b.log.Info("mastership renewed; accepting writes again", "epoch", g.epoch)
				b.registerAll()
			}
		}
		b.noteInSync(v)
		b.updateAcks()
	case v.masterID == 0:
		if g.role != roleNone || g.epoch != v.epoch {
			b.log.Warn("broker group has no master", "epoch", v.epoch, "was", g.role.String())
			b.leaveRole()
			g.role, g.epoch, g.masterID, g.masterAddr = roleNone, v.epoch, 0, ""
			b.registerAll()
		}
	default:
		if g.role != roleSlave || g.epoch != v.epoch || g.masterAddr != v.masterAddr {
			b.becomeSlave(v)
		}
	}
}

// leaveRole stops what the current role does.
func (b *Broker) leaveRole() {
	if b.grp.role == roleMaster {
		b.stepDown()
	}
	b.stopFollowing(0)
	b.resetMetaSync()
}

// becomeMaster takes the master role at v.epoch: its epoch-table entry is durable before
// anything is written at that epoch.
func (b *Broker) becomeMaster(v groupView, hb heartbeatSent) {
	g := b.grp
	last := b.store.CommitLog().LastIndex()
	switch le := g.table.LastEpoch(); {
	case le > v.epoch:
		b.log.Error("controller names this broker master at an epoch older than its epoch table's; waiting", "epoch", v.epoch, "tableEpoch", le)
		return
	case le < v.epoch:
		old := g.table.Entries()
		g.table.Append(v.epoch, last+1)
		if err := g.table.Save(b.env.Disk()); err != nil {
			b.log.Error("cannot record the new master epoch; not taking the master role", "epoch", v.epoch, "err", err)
			g.table, _ = replication.NewTable(old)
			return
		}
	}
	b.leaveRole()
	g.role, g.epoch, g.masterID, g.masterAddr = roleMaster, v.epoch, b.cfg.BrokerID, b.cfg.Addr
	g.leaseUntil, g.leaseFrom = time.Time{}, 0
	b.renewLease(hb.seq, hb.sentAt)
	g.leaseWarned = false
	g.inSync = replication.NewInSync(b.cfg.BrokerID, b.cfg.MinInSync, b.cfg.MaxReplicaLag, v.set, v.setEpoch, b.env.Now())
	g.alter = nil
	g.servable = b.synced
	b.log.Info("became master", "group", b.cfg.BrokerName, "epoch", v.epoch, "firstIndex", last+1,
		"inSync", v.set, "replication", b.cfg.ReplicationMode.String())
	b.registerAll()
	// Delay delivery and transaction checks read confirmed messages only: they start once
	// everything inherited from earlier epochs is acknowledged at this one.
	g.dutiesDue, g.dutiesFrom = true, last
	g.inherited = last
	b.updateAcks()
}

// maybeStartDuties starts the master's own writers (delay levels, transaction checks) once
// the log it took over is confirmed.
func (b *Broker) maybeStartDuties() {
	g := b.grp
	if g.role != roleMaster || !g.dutiesDue || b.store.Confirmed() < g.dutiesFrom {
		return
	}
	g.dutiesDue = false
	if !g.dutiesStarted {
		g.dutiesStarted = true
		b.recoverTransactions()
	} else {
		// Master again: while a slave it replicated the other masters' op marks and copied
		// their progress; what it remembers from its last mastership is stale.
		b.rebuildTransactions()
	}
	// Offsets copied from the old master while this replica's queues lagged were clamped; the
	// log is confirmed whole now.
	if n := b.store.RaiseClampedOffsets(); n > 0 {
		b.log.Info("offsets copied from the old master raised to it now that the log is confirmed", "offsets", n)
	}
	if err := b.store.FlushOffsets(); err != nil {
		b.log.Error("persist raised offsets", "err", err)
	}
	b.reloadDelayProgress()
	b.startDelay()
}

// stepDown ends the master role. Sends still waiting for their acknowledgement are never
// answered: whether they survive depends on the new master, so their outcome is unknown, as
// for a lost answer. Their entries stay in the log until the new master's handshake says.
func (b *Broker) stepDown() {
	g := b.grp
	b.log.Warn("no longer master", "group", b.cfg.BrokerName, "epoch", g.epoch, "unacknowledged", len(b.pending))
	for i := range b.pending {
		b.pending[i].resp = nil
	}
	for _, pf := range g.fetches {
		b.env.CancelTimer(pf.timer)
		b.env.Send(pf.conn, codec.NewResponse(pf.req, codec.ServiceNotAvailable, "no longer the master"))
	}
	g.fetches = nil
	g.inSync, g.alter = nil, nil
}

// becomeSlave follows the master v names.
func (b *Broker) becomeSlave(v groupView) {
	g := b.grp
	wasSlave := g.role == roleSlave
	b.leaveRole()
	g.role, g.epoch, g.masterID, g.masterAddr = roleSlave, v.epoch, v.masterID, v.masterAddr
	b.log.Info("following master", "group", b.cfg.BrokerName, "master", v.masterID, "addr", v.masterAddr, "epoch", v.epoch)
	if !wasSlave {
		b.registerAll()
	}
	b.startFollowing()
}

// --- the slave ---

func (b *Broker) startFollowing() {
	g := b.grp
	b.stopFollowing(0)
	g.link = &slaveLink{conn: b.env.Dial(g.masterAddr)}
	req := codec.NewRequest(codec.ReqReplicaHandshake, codec.EncodeHeader(&codec.ReplicaHeader{BrokerID: b.cfg.BrokerID, MasterEpoch: g.epoch}), nil)
	b.sendToMaster(req)
}

// stopFollowing closes the link to the master; with retry > 0 a new one is opened after it.
func (b *Broker) stopFollowing(retry time.Duration) {
	g := b.grp
	if g.link != nil {
		b.env.Close(g.link.conn)
		g.link = nil
	}
	g.retryAt = b.env.Now().Add(retry)
}

func (b *Broker) sendToMaster(req *codec.Command) {
	l := b.grp.link
	req.Opaque = b.nextOpaque()
	l.opaque, l.sentAt = req.Opaque, b.env.Now()
	b.env.Send(l.conn, req)
}

// epochsBody is the body of a handshake answer.
type epochsBody struct {
	Epochs []replication.Epoch `json:"epochs"`
}

// decodeEpochs reads a handshake answer's epoch table.
func decodeEpochs(body []byte) (*replication.Table, error) {
	var doc epochsBody
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("epoch table: %w", err)
	}
	return replication.NewTable(doc.Epochs)
}

func (b *Broker) onHandshakeAnswer(resp *codec.Command) {
	g := b.grp
	if resp.Code != codec.Success {
		b.log.Info("master refused the handshake; retrying", "master", g.masterAddr, "code", resp.Code, "remark", resp.Remark)
		b.stopFollowing(replicaRetryDelay)
		return
	}
	mt, err := decodeEpochs(resp.Body)
	hs, errL := codec.DecodeHeader[codec.HandshakeResponseHeader](resp)
	masterLast := hs.LastIndex
	if err != nil || errL != nil || masterLast < 0 {
		b.log.Error("master's handshake answer does not decode", "err", errors.Join(err, errL))
		b.stopFollowing(replicaRetryDelay)
		return
	}
	if b.store.Failed() {
		// A disk error (say during an earlier truncation) failed the store: recover it as
		// after a crash, which completes or undoes what was interrupted; the divergence
		// below then truncates again from what recovery left.
		if err := b.store.Reopen(); err != nil {
			b.log.Error("reopen the failed store", "err", err)
			b.stopFollowing(replicaRetryDelay)
			return
		}
		b.log.Warn("reopened the store after a disk error")
		b.resetAfterReopen()
	}
	last := b.store.CommitLog().LastIndex()
	p := replication.Divergence(g.table, last, mt, uint64(masterLast))
	if p < last {
		if b.cfg.Bugs.Has(bugs.SkipTruncation) {
			b.log.Warn("planted SkipTruncation: keeping a log that differs from the master's after index", "index", p, "last", last)
		} else if err := b.truncateReplica(p); err != nil {
			b.log.Error("truncating the log to the master's failed", "after", p, "err", err)
			b.stopFollowing(replicaRetryDelay)
			return
		}
	}
	if !b.cfg.Bugs.Has(bugs.SkipTruncation) && g.table.TruncateAfter(p) {
		if err := g.table.Save(b.env.Disk()); err != nil {
			b.log.Error("save the epoch table", "err", err)
			b.stopFollowing(replicaRetryDelay)
			return
		}
	}
	g.link.handshaken = true
	b.log.Info("replicating from master", "master", g.masterAddr, "epoch", g.epoch, "from", b.store.CommitLog().LastIndex()+1, "sharedUpTo", p)
	b.sendFetch()
}

// resetAfterReopen forgets what the broker kept about the store's unsynced tail: the
// reopened store is what recovery left on disk.
func (b *Broker) resetAfterReopen() {
	last := b.store.CommitLog().LastIndex()
	b.pending = b.pending[:0]
	b.delay.unsynced = b.delay.unsynced[:0]
	b.synced = min(b.synced, last)
	if b.syncInFlight {
		b.grp.discardSync = true
	}
	b.ckptPending = nil
}

// truncateReplica cuts the log after p, with everything the broker keeps about what goes.
func (b *Broker) truncateReplica(p uint64) error {
	last := b.store.CommitLog().LastIndex()
	if err := b.store.TruncateAfter(p); err != nil {
		return err
	}
	b.log.Warn("truncated the log where it differs from the master's", "after", p, "dropped", last-p)
	n := len(b.pending)
	for n > 0 && b.pending[n-1].index > p {
		n--
	}
	b.pending = b.pending[:n]
	d := len(b.delay.unsynced)
	for d > 0 && b.delay.unsynced[d-1].index > p {
		d--
	}
	b.delay.unsynced = b.delay.unsynced[:d]
	b.synced = min(b.synced, p)
	if b.syncInFlight {
		b.grp.discardSync = true
	}
	b.ckptPending = nil // the store abandoned the checkpoint in flight
	return nil
}

func (b *Broker) sendFetch() {
	g := b.grp
	last := b.store.CommitLog().LastIndex()
	synced := b.synced
	if b.cfg.Bugs.Has(bugs.SlaveAckBeforeFsync) {
		synced = last
	}
	synced = min(synced, last)
	b.assertReportable(synced)
	g.link.from = last + 1
	req := codec.NewRequest(codec.ReqReplicaFetch, codec.EncodeHeader(&codec.ReplicaFetchHeader{
		BrokerID: b.cfg.BrokerID, MasterEpoch: g.epoch, From: int64(last + 1), Synced: int64(synced),
	}), nil)
	b.sendToMaster(req)
}

// assertReportable panics if a slave is about to report entries synced beyond what its commit
// log has made durable (b.synced, raised only by fsync completions and lowered by
// truncations, so never beyond the log's last index): its master would count them towards acknowledgements that a power loss of
// this replica could then lose. (bugs.SlaveAckBeforeFsync, a planted bug for the simulator's
// own checks, does exactly that; it switches the assertion off so that a semantic check, not
// this panic, has to catch it.)
func (b *Broker) assertReportable(synced uint64) {
	if b.cfg.Bugs.Has(bugs.SlaveAckBeforeFsync) {
		return
	}
	if last := b.store.CommitLog().LastIndex(); synced > b.synced || b.synced > last {
		panic(fmt.Sprintf("brokernode: slave %s/%d would report index %d synced, but its commit log (last index %d) is durable only up to %d",
			b.cfg.BrokerName, b.cfg.BrokerID, synced, last, b.synced))
	}
}

// splitRecords cuts a fetch answer's body into stored records by their size words (each is
// checked whole by the store when appended).
func splitRecords(body []byte) ([][]byte, error) {
	var out [][]byte
	for len(body) > 0 {
		if len(body) < 4 {
			return nil, fmt.Errorf("%d bytes left after %d records, too few for a record", len(body), len(out))
		}
		n := int(binary.BigEndian.Uint32(body))
		if n < 4 || n > len(body) {
			return nil, fmt.Errorf("record %d says %d bytes, %d left", len(out), n, len(body))
		}
		out = append(out, body[:n])
		body = body[n:]
	}
	return out, nil
}

func (b *Broker) onFetchAnswer(resp *codec.Command) {
	g := b.grp
	if resp.Code != codec.Success {
		b.log.Info("master refused the fetch; handshaking again", "master", g.masterAddr, "code", resp.Code, "remark", resp.Remark)
		b.stopFollowing(replicaRetryDelay)
		return
	}
	fh, errH := codec.DecodeHeader[codec.FetchResponseHeader](resp)
	epoch, start, confirmed := fh.Epoch, fh.EpochStart, fh.Confirmed
	recs, errR := splitRecords(resp.Body)
	if err := errors.Join(errH, errR); err != nil || epoch < 0 || start < 0 || confirmed < 0 {
		b.log.Error("master's fetch answer does not decode", "err", err)
		b.stopFollowing(replicaRetryDelay)
		return
	}
	index := g.link.from
	newTopic := false
	for _, rec := range recs {
		if err := b.adoptEpoch(epoch, uint64(start), index); err != nil {
			b.log.Error("replicated records do not fit the epoch table; handshaking again", "index", index, "err", err)
			b.stopFollowing(replicaRetryDelay)
			return
		}
		m, _, derr := codec.DecodeRecord(rec)
		if derr == nil {
			_, known := b.store.Topic(m.Topic)
			newTopic = newTopic || !known
		}
		res, err := b.store.AppendReplica(index, rec)
		if err != nil {
			if errors.Is(err, store.ErrDiverged) {
				// Perhaps a topic deleted and created again on the master, whose tombstone
				// this replica has not adopted yet: copy the master's topics now.
				g.meta.idle = 0
			}
			b.log.Error("append a replicated record; handshaking again", "index", index, "err", err)
			b.stopFollowing(replicaRetryDelay)
			return
		}
		if derr == nil {
			b.pending = append(b.pending, pendingAck{index: res.Index, queue: queueKey{topic: m.Topic, queue: m.QueueID}})
		}
		index++
	}
	if newTopic {
		// A topic first seen in replicated records (created on the master) is registered at
		// once: while the master is gone, consumers find the group's queues only through
		// routes its slaves registered.
		b.registerAll()
	}
	g.masterConfirmed = max(g.masterConfirmed, uint64(confirmed))
	if len(recs) > 0 {
		b.requestSync()
		if !b.cfg.Bugs.Has(bugs.SlaveAckBeforeFsync) {
			g.link.waitSync = true
			return
		}
	}
	b.slaveConfirm()
	b.sendFetch()
}

// adoptEpoch checks that a record for index from the master's epoch (which started at start)
// may follow the local log, and records the epoch in the table first if it is new here.
func (b *Broker) adoptEpoch(epoch int64, start, index uint64) error {
	t := b.grp.table
	switch le := t.LastEpoch(); {
	case epoch == le:
		return nil
	case epoch < le:
		return fmt.Errorf("master's record of epoch %d follows local epoch %d", epoch, le)
	case start != index && !b.cfg.Bugs.Has(bugs.SkipTruncation):
		return fmt.Errorf("master's epoch %d starts at %d, but its first record here would be at %d", epoch, start, index)
	}
	old := t.Entries()
	t.Append(epoch, index)
	if err := t.Save(b.env.Disk()); err != nil {
		b.grp.table, _ = replication.NewTable(old)
		return err
	}
	return nil
}

// slaveConfirm makes visible what the master confirmed and this replica has synced.
func (b *Broker) slaveConfirm() {
	upTo := min(b.grp.masterConfirmed, b.synced, b.store.CommitLog().LastIndex())
	if upTo > b.store.Confirmed() {
		b.acknowledge(upTo)
	}
}

// groupSynced is OnSynced's part for a replica: the commit log is durable up to b.synced.
func (b *Broker) groupSynced() {
	g := b.grp
	switch g.role {
	case roleMaster:
		b.masterSynced()
	case roleSlave:
		b.slaveConfirm()
		if l := g.link; l != nil && l.waitSync && b.synced >= b.store.CommitLog().LastIndex() {
			l.waitSync = false
			if l.opaque == 0 {
				b.sendFetch()
			}
		}
	}
	g.servable = b.synced
}

// groupConnClosed forgets what was tied to a closed connection.
func (b *Broker) groupConnClosed(c node.ConnID) {
	g := b.grp
	if c == g.ctl.conn {
		g.ctl.conn, g.ctl.addr, g.ctl.hbOpaque = 0, "", 0
		if g.alter != nil {
			g.alter.lost = true
		}
	}
	if g.link != nil && c == g.link.conn {
		g.link = nil
		g.retryAt = b.env.Now().Add(replicaRetryDelay)
	}
	if c == g.meta.conn {
		g.meta.conn = 0
		if g.meta.opaque != 0 {
			b.endRound(replicaRetryDelay) // its answer will not come
		}
	}
	g.fetches = slices.DeleteFunc(g.fetches, func(pf *parkedFetch) bool {
		if pf.conn == c {
			b.env.CancelTimer(pf.timer)
			return true
		}
		return false
	})
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Role reports the broker's role in its group ("master", "slave" or "none"; "" for a broker
// without a group), the master epoch it knows, and whether it may write now (a master whose
// lease holds). For tools and the simulator.
func (b *Broker) Role() (role string, epoch int64, writable bool) {
	if b.grp == nil {
		return "", 0, true
	}
	return b.grp.role.String(), b.grp.epoch, b.grp.role == roleMaster && b.leaseValid()
}

// suggestBrokerID is a pull answer's suggestWhichBrokerId: the broker id the consumer's next
// pull of the queue should go to. The rule, RocketMQ 4.x's in spirit (Java suggests the master
// unless slaveReadEnable is set and the consumer lags; a Java slave that knows its group has a
// master sends consumers back to it): every answer suggests the master (0), except a slave's
// (or a replica without a role) while the controller's last word names no master for the
// group; then it suggests its own id, so the consumer stays with this replica rather than
// hop between slaves until a master is elected (a new master registers as 0, and this
// replica, told of it, suggests 0 again). When the suggested 0 is not in a consumer's route
// (the master is gone but the controller has not said so, or cannot), clients fall back to a
// slave anyway (client.readAddr, the official FindBrokerAddressInSubscribe).
func (b *Broker) suggestBrokerID() int64 {
	g := b.grp
	if g == nil || g.role == roleMaster || g.masterID != 0 {
		return 0
	}
	return b.cfg.BrokerID
}

// refuseRead answers a pull that a replica must not serve: a master whose lease lapsed (a new
// master may have acknowledged writes it lacks), or a new master that has not yet confirmed
// the log it took over (it may hold acknowledged messages it cannot show yet). Either would
// answer "nothing there" where a message was acknowledged. Slaves serve what the master
// confirmed, as RocketMQ's slaves do for consumers while the master is gone. nil: serve it.
func (b *Broker) refuseRead(req *codec.Command) *codec.Command {
	g := b.grp
	if g == nil || g.role != roleMaster {
		return nil
	}
	switch {
	case !b.leaseValid() && !b.cfg.Bugs.Has(bugs.StaleMasterAcks) && !b.cfg.Bugs.Has(bugs.DeposedMasterPulls):
		return codec.NewResponse(req, codec.ServiceNotAvailable, "the master's mastership lapsed (no word from the controller); retry later")
	case g.dutiesDue:
		return codec.NewResponse(req, codec.ServiceNotAvailable, "the new master is still confirming the log it took over; retry shortly")
	}
	return nil
}
