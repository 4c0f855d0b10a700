// Package controller is the controller node: one member of a 1- or 3-member raft group
// (go.etcd.io/raft/v3, driven through RawNode only) that holds, per broker group, the
// registered replicas, the master, the master epoch and the in-sync replica set, and elects a
// new master from the in-sync set when the master stops heartbeating (RocketMQ 5's controller
// mode).
//
// It owns the replicated state machine (state.go), the leader's liveness view and election
// decisions (elect.go), the raft log on the node's disk (storage.go), the raft transport
// between members (remoting frames carrying protobuf raft messages) and the requests brokers,
// name servers and admins send (requests.go). Like every node it is a deterministic state
// machine: no goroutines, clock, randomness, files or sockets except through node.Env. Raft's
// own randomized election timeout draws from crypto/rand, a process global that a simulator
// running many worlds at once could not seed per world, so the member times its elections
// itself, jittered by its Env.Rand (electionTimer), and raft's timeout never decides anything.
package controller

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/metrics"
	"github.com/sluicemq/sluice/broker/node"
)

// Config configures one controller member.
type Config struct {
	// ID is this member's raft id (at least 1); it must be a key of Peers.
	ID uint64
	// Peers maps every member's id, this one's included, to the address it listens on (for
	// raft messages and for requests alike). Membership is fixed: 1 or 3 members.
	Peers map[uint64]string
	// TickInterval is one raft tick.
	TickInterval time.Duration
	// ElectionTicks and HeartbeatTicks are raft's election timeout and leader heartbeat
	// interval, in ticks.
	ElectionTicks, HeartbeatTicks int
	// MasterTimeout: a master the leader has not heard from for this long is replaced.
	MasterTimeout time.Duration
	// NewLeaderGrace: a member that has just become leader has heard from nobody yet, and
	// brokers need time to find it; it replaces no master until this long after it took over.
	NewLeaderGrace time.Duration
	// CheckInterval is how often the leader looks for silent masters.
	CheckInterval time.Duration
	// ProposalTimeout: a request whose command is not applied by then is answered SystemBusy
	// (the command may still be applied later; every request is safe to retry).
	ProposalTimeout time.Duration
	// RedialDelay is how long a member waits before dialling a peer again after its
	// connection closed.
	RedialDelay time.Duration

	// Bugs is the set of planted bugs (package bugs) the controller honours:
	// ElectOutsideInSyncSet lets an election pick a live replica outside the in-sync set, and
	// ElectKeepsEpoch lets it keep the master epoch. Empty in production.
	Bugs bugs.Set

	// OnElection, if set, observes every election this member applies (from its log, replays
	// after a restart included): the group, the master it names (0: masterless) and its new
	// master epoch. For the simulator, which keeps the controllers' own record of who was
	// master when, independent of what the brokers believe; it must not call back into the
	// controller.
	OnElection func(k GroupKey, masterID, epoch int64)

	// Metrics records the member's metrics (metrics.go); nil records nothing.
	Metrics metrics.Recorder
}

// DefaultConfig returns the timing Sluice uses, for member id of peers.
func DefaultConfig(id uint64, peers map[uint64]string) Config {
	return Config{
		ID:              id,
		Peers:           peers,
		TickInterval:    100 * time.Millisecond,
		ElectionTicks:   10,
		HeartbeatTicks:  1,
		MasterTimeout:   3 * time.Second,
		NewLeaderGrace:  6 * time.Second,
		CheckInterval:   500 * time.Millisecond,
		ProposalTimeout: 3 * time.Second,
		RedialDelay:     300 * time.Millisecond,
	}
}

func (c Config) validate() error {
	if _, ok := c.Peers[c.ID]; !ok || c.ID == 0 {
		return fmt.Errorf("controller id %d is not one of the peers %v", c.ID, c.Peers)
	}
	if n := len(c.Peers); n != 1 && n != 3 {
		return fmt.Errorf("a controller group has 1 or 3 members, not %d", n)
	}
	for id, addr := range c.Peers {
		if id == 0 || addr == "" {
			return fmt.Errorf("controller peer %d=%q: ids start at 1 and need an address", id, addr)
		}
	}
	if c.TickInterval <= 0 || c.MasterTimeout <= 0 || c.NewLeaderGrace < 0 || c.CheckInterval <= 0 || c.ProposalTimeout <= 0 {
		return errors.New("controller intervals and timeouts must be positive")
	}
	return nil
}

// peer is the outbound side of the connection to another member: this member sends its raft
// messages on it; the peer sends its own on a connection it dials.
type peer struct {
	id      uint64
	addr    string
	conn    node.ConnID // 0: none
	retryAt time.Time   // no dial before this, after a close
}

// seenReplica is the leader-local record of one replica's last heartbeat.
type seenReplica struct {
	at time.Time
	liveReplica
}

type replicaKey struct {
	GroupKey
	id int64
}

// proposal is a request waiting for its command to be applied.
type proposal struct {
	conn  node.ConnID
	req   *codec.Command
	timer node.TimerID
}

type electAttempt struct {
	epoch int64
	at    time.Time
}

type (
	tickTimer     struct{}
	checkTimer    struct{}
	proposalTimer struct{ id uint64 }
)

// Controller is one controller member.
type Controller struct {
	env node.Env
	cfg Config
	log *slog.Logger
	// unsupported answers and logs the requests the controller does not serve.
	unsupported node.Unsupported

	rn      *raft.RawNode
	storage storage
	wal     node.Log
	peers   map[uint64]*peer
	peerIDs []uint64 // sorted, this member excluded

	state        *State
	appliedIndex uint64
	appliedTerm  uint64

	// unsynced is a Ready whose entries are written but not yet durable: nothing of it is
	// sent or applied, and no other Ready is taken, until OnSynced covers syncTo.
	unsynced *raft.Ready
	syncTo   uint64
	// failed is set by a disk error: raft cannot go on safely, so the member stops taking
	// part and refuses requests until it is restarted.
	failed error

	isLeader bool
	// ticked is the time elapsed as the tick timer counts it (TickInterval per tick). Master
	// silence, the new-leader grace and election attempts are measured on it, never on Env.Now:
	// a controller whose clock steps forward would otherwise find a master silent at once and
	// elect another while the old one still holds its lease (it may still serve reads and
	// acknowledge until MasterLease after its last confirmed heartbeat), and one stepped back
	// would not replace a dead master for as long as the step. Ticks fire late, never early,
	// so this errs towards electing later.
	ticked      time.Duration
	election    electionTimer
	leaderSince time.Time
	seen        map[replicaKey]seenReplica
	electing    map[GroupKey]electAttempt
	warned      map[GroupKey]int64 // masterless epoch already logged
	proposals   map[uint64]*proposal
	rec         metrics.Recorder
	// groupBodies holds, by group, the last group answer body encoded and what it encodes:
	// replicas heartbeat every few seconds and the answer seldom changes (groupBody).
	groupBodies map[GroupKey]encodedGroup
}

// New opens a member's raft log and state on env's disk. The state machine is rebuilt by
// replaying the committed log once raft hands the entries back.
func New(env node.Env, cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	voters := slices.Sorted(maps.Keys(cfg.Peers))
	st, wal, err := loadStorage(env.Disk(), voters)
	if err != nil {
		return nil, err
	}
	log := env.Logger().With("controller", cfg.ID)
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   cfg.HeartbeatTicks,
		Storage:         st,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// Bounds what a leader without a quorum accumulates before it steps down.
		MaxUncommittedEntriesSize: 1 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{log.With("raft", cfg.ID)},
	})
	if err != nil {
		return nil, fmt.Errorf("start raft member %d: %w", cfg.ID, err)
	}
	c := &Controller{
		env: env, cfg: cfg, log: log, unsupported: node.Unsupported{What: "controller"},
		rn: rn, storage: st, wal: wal,
		peers:     map[uint64]*peer{},
		state:     &State{groups: map[GroupKey]*Group{}, keepEpoch: cfg.Bugs.Has(bugs.ElectKeepsEpoch)},
		seen:      map[replicaKey]seenReplica{},
		electing:  map[GroupKey]electAttempt{},
		warned:    map[GroupKey]int64{},
		proposals: map[uint64]*proposal{},
		rec:       metrics.Or(cfg.Metrics),

		groupBodies: map[GroupKey]encodedGroup{},
	}
	for _, id := range voters {
		if id != cfg.ID {
			c.peers[id] = &peer{id: id, addr: cfg.Peers[id]}
			c.peerIDs = append(c.peerIDs, id)
		}
	}
	return c, nil
}

// State is the member's applied state machine. The caller must not modify it.
func (c *Controller) State() *State { return c.state }

// Failed is the disk error that stopped this member (nil while it takes part): a supervisor
// restarts such a member. The production runtime (broker/runtime) stops a node whose Failed
// reports an error, so `sluice controller` and `sluice namesrv --controller` exit 1; the
// simulator restarts the member (sim/cluster superviseControllers).
func (c *Controller) Failed() error { return c.failed }

// IsLeader reports whether this member is the raft leader.
func (c *Controller) IsLeader() bool { return c.isLeader }

// Leader returns the raft leader's id and address as this member knows them (0, "" if none).
func (c *Controller) Leader() (uint64, string) {
	lead := c.rn.BasicStatus().Lead
	return lead, c.cfg.Peers[lead]
}

// Start implements node.Handler.
func (c *Controller) Start() {
	c.restartElectionTimer()
	c.env.SetTimer(c.cfg.TickInterval, tickTimer{})
	c.env.SetTimer(c.cfg.CheckInterval, checkTimer{})
	if len(c.cfg.Peers) == 1 {
		// Alone, there is nobody to wait for.
		if err := c.rn.Campaign(); err != nil {
			c.log.Warn("campaign", "err", err)
		}
	}
	c.pump()
}

// OnAccepted implements node.Handler: members and brokers dial in; nothing to do until they
// send.
func (c *Controller) OnAccepted(node.ConnID, string) {}

// OnDialed implements node.Handler.
func (c *Controller) OnDialed(node.ConnID) {}

// OnConnClosed forgets a peer connection (raft learns the peer is unreachable and the next
// message redials after RedialDelay) and drops the requests waiting on c.
func (c *Controller) OnConnClosed(conn node.ConnID) {
	for _, id := range c.peerIDs {
		if p := c.peers[id]; p.conn == conn {
			p.conn = 0
			p.retryAt = c.env.Now().Add(c.cfg.RedialDelay)
			if c.failed == nil {
				c.rn.ReportUnreachable(id)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.proposals)) {
		if p := c.proposals[id]; p.conn == conn {
			c.env.CancelTimer(p.timer)
			delete(c.proposals, id)
		}
	}
	c.pump()
}

// OnTimer implements node.Handler.
func (c *Controller) OnTimer(_ node.TimerID, tag any) {
	switch t := tag.(type) {
	case tickTimer:
		c.env.SetTimer(c.cfg.TickInterval, tickTimer{})
		c.ticked += c.cfg.TickInterval
		if c.failed == nil {
			c.tick()
		}
	case checkTimer:
		c.env.SetTimer(c.cfg.CheckInterval, checkTimer{})
		c.checkMasters()
	case proposalTimer:
		if p := c.proposals[t.id]; p != nil {
			delete(c.proposals, t.id)
			c.env.Send(p.conn, codec.NewResponse(p.req, codec.SystemBusy, "controller: the command was not applied in time; retry"))
		}
	}
	c.pump()
}

// OnSynced continues the Ready that waited for its entries to be durable.
func (c *Controller) OnSynced(logName string, upTo uint64, err error) {
	if logName != raftLogName || c.unsynced == nil || c.failed != nil {
		return
	}
	if err != nil {
		c.fail(fmt.Errorf("sync controller log up to %d: %w", upTo, err))
		return
	}
	if upTo < c.syncTo {
		return
	}
	rd := *c.unsynced
	c.unsynced = nil
	c.finishReady(rd)
	c.pump()
}

// OnFrame handles a raft message from a peer or a request.
func (c *Controller) OnFrame(conn node.ConnID, req *codec.Command) {
	if req.IsResponse() {
		return
	}
	if req.Code == codec.ReqControllerRaftMessage {
		c.stepPeer(req)
		c.pump()
		return
	}
	resp := c.serve(conn, req)
	if resp != nil {
		c.env.Send(conn, resp)
	}
	c.pump()
}

// stepPeer feeds one raft message from a peer to raft.
func (c *Controller) stepPeer(req *codec.Command) {
	if c.failed != nil {
		return
	}
	m := &pb.Message{}
	if err := proto.Unmarshal(req.Body, m); err != nil {
		c.log.Warn("dropping an undecodable raft message", "err", err)
		return
	}
	if m.GetTo() != c.cfg.ID || c.peers[m.GetFrom()] == nil {
		c.log.Warn("dropping a raft message not from a peer to this member", "from", m.GetFrom(), "to", m.GetTo())
		return
	}
	if m.GetType() == pb.MsgSnap || m.Snapshot != nil && !raft.IsEmptySnap(m.Snapshot) {
		// Members never compact their logs, so no snapshot is ever due.
		c.log.Warn("dropping a raft snapshot message", "from", m.GetFrom())
		return
	}
	if err := c.rn.Step(m); err != nil {
		c.log.Debug("raft refused a message", "from", m.GetFrom(), "type", m.GetType().String(), "err", err)
	}
	c.noteHeard(m)
}

// pump hands raft's Ready to the disk, the network and the state machine until raft has
// nothing more or a Ready waits for a sync. As raft requires, messages are sent and
// committed entries applied only once the Ready's entries and hard state are durable.
func (c *Controller) pump() {
	for c.unsynced == nil && c.failed == nil && c.rn.HasReady() {
		rd := c.rn.Ready()
		if !raft.IsEmptySnap(rd.Snapshot) {
			panic("controller: raft produced a snapshot, but members never compact their logs")
		}
		if rd.SoftState != nil {
			c.noteSoftState(rd.SoftState)
		}
		if len(rd.Entries) > 0 {
			if err := appendEntries(c.wal, rd.Entries); err != nil {
				c.fail(err)
				return
			}
			c.unsynced = &rd
			c.syncTo = rd.Entries[len(rd.Entries)-1].GetIndex()
			c.env.Sync(c.wal, c.syncTo)
			return
		}
		c.finishReady(rd)
	}
}

// finishReady completes a Ready whose entries are durable: hard state, in-memory log,
// messages, committed entries, Advance.
func (c *Controller) finishReady(rd raft.Ready) {
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := writeHardState(c.env.Disk(), rd.HardState); err != nil {
			c.fail(err)
			return
		}
		_ = c.storage.SetHardState(rd.HardState)
	}
	if len(rd.Entries) > 0 {
		if err := c.storage.Append(rd.Entries); err != nil {
			panic(fmt.Sprintf("controller: in-memory raft log refused entries raft produced: %v", err))
		}
	}
	for _, m := range rd.Messages {
		c.noteSent(m)
		c.send(m)
	}
	for _, e := range rd.CommittedEntries {
		c.apply(e)
	}
	c.rn.Advance(rd)
}

// fail stops the member after a disk error: raft's guarantees need its log and hard state,
// so it takes no further part until restarted.
func (c *Controller) fail(err error) {
	c.log.Error("controller disk failed; this member stops taking part until it is restarted", "err", err)
	c.failed = err
	c.unsynced = nil
	c.isLeader = false
}

func (c *Controller) noteSoftState(ss *raft.SoftState) {
	leader := ss.RaftState == raft.StateLeader
	if leader && !c.isLeader {
		c.leaderSince = c.clock()
		c.log.Info("became the controller leader", "term", c.rn.BasicStatus().GetTerm())
	}
	if !leader && c.isLeader {
		c.log.Info("no longer the controller leader", "leader", ss.Lead)
		clear(c.electing)
	}
	c.isLeader = leader
}

// send sends one raft message to its peer, dialling it if needed.
func (c *Controller) send(m *pb.Message) {
	p := c.peers[m.GetTo()]
	if p == nil {
		panic(fmt.Sprintf("controller: raft addressed a message to %d, not a peer", m.GetTo()))
	}
	if p.conn == 0 {
		if c.env.Now().Before(p.retryAt) {
			c.rn.ReportUnreachable(p.id)
			return
		}
		p.conn = c.env.Dial(p.addr)
	}
	body, err := marshal.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("controller: encode raft message: %v", err))
	}
	cmd := codec.NewRequest(codec.ReqControllerRaftMessage, nil, body)
	cmd.Flag |= codec.FlagOneway
	c.env.Send(p.conn, cmd)
}

// apply applies one committed entry and answers the request that proposed it, if it waits
// here.
func (c *Controller) apply(e *pb.Entry) {
	if e.GetIndex() != c.appliedIndex+1 {
		panic(fmt.Sprintf("controller: applying entry %d after %d", e.GetIndex(), c.appliedIndex))
	}
	c.appliedIndex, c.appliedTerm = e.GetIndex(), e.GetTerm()
	if e.GetType() != pb.EntryNormal {
		panic(fmt.Sprintf("controller: entry %d is a configuration change, but membership is fixed", e.GetIndex()))
	}
	if len(e.GetData()) == 0 {
		return // a new leader's empty entry
	}
	cmd, err := decodeCommand(e.GetData())
	if err != nil {
		// Only members write entries; this one cannot be applied anywhere, so skipping it
		// keeps every member identical.
		c.log.Error("skipping an undecodable committed command", "index", e.GetIndex(), "err", err)
		return
	}
	res := c.state.Apply(cmd)
	c.logApplied(cmd, res)
	if cmd.Op == OpElect && res.Code == codec.Success {
		c.countElection(res.Group.Key, res.Group.MasterID)
	}
	if cmd.Op == OpElect && res.Code == codec.Success && c.cfg.OnElection != nil {
		c.cfg.OnElection(res.Group.Key, res.Group.MasterID, res.Group.MasterEpoch)
	}
	p := c.proposals[cmd.ProposalID]
	if cmd.ProposalID == 0 || p == nil {
		return
	}
	delete(c.proposals, cmd.ProposalID)
	c.env.CancelTimer(p.timer)
	code, remark := res.Code, res.Remark
	if cmd.Op == OpElect {
		// Only a heartbeat waits on an election; it is answered with the group as it is now,
		// whether or not this election won.
		code, remark = codec.Success, ""
	}
	c.env.Send(p.conn, c.groupResponse(p.req, code, remark, res.Group))
}

func (c *Controller) logApplied(cmd Command, res Result) {
	if res.Code != codec.Success {
		c.log.Debug("command refused", "op", cmd.Op, "group", cmd.key().String(), "code", res.Code, "why", res.Remark)
		return
	}
	g := res.Group
	switch cmd.Op {
	case OpElect:
		if g.MasterID == 0 {
			c.log.Warn("broker group is masterless: its master is gone and no in-sync replica is live", "group", g.Key.String(), "epoch", g.MasterEpoch, "inSync", g.InSync)
		} else {
			c.log.Info("master elected", "group", g.Key.String(), "master", g.MasterID, "epoch", g.MasterEpoch, "unclean", cmd.Unclean)
		}
	case OpAlterInSync:
		c.log.Info("in-sync set changed", "group", g.Key.String(), "inSync", g.InSync, "inSyncEpoch", g.InSyncEpoch)
	case OpRegister:
		c.log.Debug("replica registered", "group", g.Key.String(), "broker", cmd.BrokerID, "addr", cmd.Addr)
	}
}

// propose proposes cmd; once applied, the answer goes to req on conn. It returns a response
// to send at once if the proposal failed.
func (c *Controller) propose(conn node.ConnID, req *codec.Command, cmd Command) *codec.Command {
	if req != nil {
		cmd.ProposalID = c.newProposalID()
	}
	if err := c.rn.Propose(encodeCommand(cmd)); err != nil {
		if req == nil {
			c.log.Debug("proposal dropped", "op", cmd.Op, "err", err)
			return nil
		}
		return codec.NewResponse(req, codec.SystemBusy, "controller: proposal dropped: "+err.Error())
	}
	if req != nil {
		c.proposals[cmd.ProposalID] = &proposal{conn: conn, req: req,
			timer: c.env.SetTimer(c.cfg.ProposalTimeout, proposalTimer{cmd.ProposalID})}
	}
	return nil
}

func (c *Controller) newProposalID() uint64 {
	for {
		if id := c.env.Rand().Uint64(); id != 0 && c.proposals[id] == nil {
			return id
		}
	}
}

// ready reports whether this member may act as the leader: it leads and has applied every
// entry of earlier terms (its own term's first entry is applied), so its state is current.
func (c *Controller) ready() bool {
	return c.failed == nil && c.isLeader && c.appliedTerm == c.rn.BasicStatus().GetTerm()
}

// checkMasters runs on the leader: it proposes an election for every group whose master has
// gone silent.
func (c *Controller) checkMasters() {
	if !c.ready() {
		return
	}
	for _, k := range c.state.Keys() {
		c.checkGroup(k, 0, nil)
	}
	// Forget replicas long silent (heartbeats of groups that never registered included), so
	// the view stays bounded.
	for k, s := range c.seen {
		if c.clock().Sub(s.at) > 10*c.cfg.MasterTimeout {
			delete(c.seen, k)
		}
	}
}

// checkGroup proposes an election for group k if one is due, and reports whether it did.
// With req, the answer to req (a heartbeat) waits for the election to be applied; resp is
// an answer to send at once if the proposal failed.
func (c *Controller) checkGroup(k GroupKey, conn node.ConnID, req *codec.Command) (proposed bool, resp *codec.Command) {
	g := c.state.Group(k)
	now := c.clock()
	if c.electionInFlight(k, g) {
		return false, nil // an election for this epoch is in flight
	}
	masterAlive := g.MasterID != 0 && c.presumedAlive(replicaKey{k, g.MasterID})
	elect, ok := decideElection(g, masterAlive, c.liveReplicas(g), c.cfg.Bugs.Has(bugs.ElectOutsideInSyncSet))
	if !ok {
		if g.MasterID == 0 && c.warned[k] != g.MasterEpoch+1 {
			c.warned[k] = g.MasterEpoch + 1
			c.log.Warn("broker group stays masterless: no live in-sync replica", "group", k.String(), "epoch", g.MasterEpoch, "inSync", g.InSync)
		}
		return false, nil
	}
	if g.MasterID != 0 {
		c.log.Warn("master silent, electing", "group", k.String(), "master", g.MasterID, "epoch", g.MasterEpoch,
			"newMaster", elect.NewMaster, "unclean", elect.Unclean)
	}
	c.electing[k] = electAttempt{epoch: g.MasterEpoch, at: now}
	return true, c.propose(conn, req, elect)
}

// electionInFlight reports whether this leader proposed an election for group k at g's
// current epoch that may still be applied.
func (c *Controller) electionInFlight(k GroupKey, g *Group) bool {
	a, ok := c.electing[k]
	return ok && a.epoch == g.MasterEpoch && c.clock().Sub(a.at) < c.cfg.ProposalTimeout
}

// clock is the time on the tick count (see ticked), as an instant.
func (c *Controller) clock() time.Time { return time.Time{}.Add(c.ticked) }

// presumedAlive: the replica heartbeated within MasterTimeout, or this member became leader
// less than NewLeaderGrace ago (a new leader gives every master time to find it).
func (c *Controller) presumedAlive(k replicaKey) bool {
	now := c.clock()
	if now.Sub(c.leaderSince) <= c.cfg.NewLeaderGrace {
		return true
	}
	s, ok := c.seen[k]
	return ok && now.Sub(s.at) <= c.cfg.MasterTimeout
}

// liveReplicas lists the replicas of g that heartbeated to this leader within MasterTimeout.
func (c *Controller) liveReplicas(g *Group) map[int64]liveReplica {
	live := map[int64]liveReplica{}
	now := c.clock()
	for id := range g.Replicas {
		if s, ok := c.seen[replicaKey{g.Key, id}]; ok && !s.at.Before(c.leaderSince) && now.Sub(s.at) <= c.cfg.MasterTimeout {
			live[id] = s.liveReplica
		}
	}
	return live
}
