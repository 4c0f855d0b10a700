package brokernode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
)

// The master's side of replication (see replica.go for the whole picture).

// masterRole is a replica the controller named master: it writes, serves its slaves' handshakes
// and fetches, keeps the in-sync set with the controller, and acknowledges by inSyncAcks while
// its lease holds.
type masterRole struct {
	// The lease holds while Env.Now is before leaseUntil and the lease timer of the heartbeat
	// that granted it (leaseFrom) has not fired (see leaseValid).
	leaseUntil  time.Time
	leaseFrom   uint64 // the heartbeat whose confirmation granted the lease (hbSeq numbering)
	leaseWarned bool
	inSync      *replication.InSync
	alter       *alterCall
	fetches     []*parkedFetch
	dutiesDue   bool // delay levels and transaction checks wait for dutiesFrom confirmed
	dutiesFrom  uint64
	servable    uint64 // b.acks.durable when the master last looked: what slaves may fetch
	// inherited is the last index of the log this master took over: entries up to it may
	// have been acknowledged by an earlier master, so a slave joins the in-sync set (becomes
	// electable) only once it holds them, whatever this master has confirmed itself.
	inherited uint64
}

func (*masterRole) String() string { return "master" }

func (*masterRole) ready(*Broker) { panic("brokernode: a replica is ready before it has a role") }

func (m *masterRole) onResponse(b *Broker, c node.ConnID, resp *codec.Command) bool {
	if m.alter != nil && resp.Opaque == m.alter.opaque && c == b.repl.ctl.conn {
		m.onAlterAnswer(b, resp)
		return true
	}
	return b.onReplicaResponse(c, resp)
}

func (m *masterRole) connClosed(b *Broker, c node.ConnID) {
	if c == b.repl.ctl.conn {
		m.controllerLost()
	}
	b.replicaConnClosed(c)
	m.fetches = slices.DeleteFunc(m.fetches, func(pf *parkedFetch) bool {
		if pf.conn == c {
			b.env.CancelTimer(pf.timer)
			return true
		}
		return false
	})
}

// controllerLost: the controller connection closed; an in-sync change in flight is lost.
func (m *masterRole) controllerLost() {
	if m.alter != nil {
		m.alter.lost = true
	}
}

// writable: whose lease holds (or whatever the lease, with the planted bugs
// bugs.StaleMasterAcks and bugs.LeaseFreeMaster).
func (m *masterRole) writable(b *Broker) bool {
	return m.leaseValid(b) || b.cfg.Bugs.Has(bugs.StaleMasterAcks) || b.cfg.Bugs.Has(bugs.LeaseFreeMaster)
}

// refuseRead refuses pulls while the lease lapsed (a new master may have acknowledged writes
// this one lacks), or while a new master has not yet confirmed the log it took over (it may hold
// acknowledged messages it cannot show yet). Either would answer "nothing there" where a
// message was acknowledged.
func (m *masterRole) refuseRead(b *Broker, req *codec.Command) *codec.Command {
	switch {
	case !m.leaseValid(b) && !b.cfg.Bugs.Has(bugs.StaleMasterAcks) && !b.cfg.Bugs.Has(bugs.DeposedMasterPulls):
		return codec.NewResponse(req, codec.ServiceNotAvailable, "the master's mastership lapsed (no word from the controller); retry later")
	case m.dutiesDue:
		return codec.NewResponse(req, codec.ServiceNotAvailable, "the new master is still confirming the log it took over; retry shortly")
	}
	return nil
}

func (*masterRole) suggestedBrokerID(*Broker) int64 { return 0 }

// leaseValid: the master may still write and serve reads. The lease runs MasterLease from the
// sending of the heartbeat the controller confirmed it with, and the controller replaces a
// master only after MasterTimeout (> MasterLease) without its heartbeats; so two masters never
// both hold a lease, provided the lease is measured in real elapsed time. Env.Now is a wall
// clock that may step (a VM restored from a snapshot, a misconfigured NTP; the simulator's
// clock faults), and a step back would stretch a lease read off it by the size of the step, so
// the lease also ends when the lease timer of its heartbeat fires: timers count elapsed time,
// not clock readings. The Now check stays for a timer delivered late.
func (m *masterRole) leaseValid(b *Broker) bool {
	return m.leaseFrom > b.repl.leaseExpired && b.env.Now().Before(m.leaseUntil)
}

// renewLease extends the lease with the confirmation of heartbeat seq, sent at sentAt.
func (m *masterRole) renewLease(b *Broker, seq uint64, sentAt time.Time) {
	m.leaseUntil = later(m.leaseUntil, sentAt.Add(b.cfg.MasterLease))
	m.leaseFrom = max(m.leaseFrom, seq)
}

// parkedFetch is a slave's fetch waiting for the master to make new entries durable.
type parkedFetch struct {
	conn  node.ConnID
	req   *codec.Command
	id    int64
	from  uint64
	timer node.TimerID
	done  bool
}

// alterCall is a change of the in-sync set asked of the controller.
type alterCall struct {
	opaque int32
	sentAt time.Time
	set    []int64
	base   int64 // the in-sync epoch the change is based on
	// fence: this request asks for the confirmed set again, to settle whether an earlier
	// request whose answer was lost was applied (if it was, this one is refused as stale and
	// the answer shows the set; if not, this one fences it off for good).
	fence bool
	// lost: the answer will not come (the connection closed or it timed out).
	lost bool
}

// masterCheck refuses a replication request unless this broker is the master at the epoch
// the slave asks about (from the request's header; codec.NoMasterEpoch if it named none or a
// malformed one).
func (b *Broker) masterCheck(req *codec.Command, epoch int64) *codec.Command {
	g := b.repl
	if g == nil {
		return codec.NewResponse(req, codec.RequestCodeNotSupported, "this broker is not a replica of a broker group")
	}
	if epoch == codec.NoMasterEpoch {
		return codec.NewResponse(req, codec.SystemError, "replication request without masterEpoch")
	}
	if b.master() == nil || epoch != g.epoch {
		return codec.NewResponse(req, codec.ServiceNotAvailable, fmt.Sprintf("not the master at epoch %d (this broker is a %s at epoch %d)", epoch, b.role, g.epoch))
	}
	return nil
}

// handleReplicaHandshake answers a slave's handshake with the master's epoch table, the end
// of what it may serve (its durable index) and, once retention removed entries, where its log
// and its queues start.
func (b *Broker) handleReplicaHandshake(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.ReplicaHeader](req) // a malformed epoch is NoMasterEpoch
	if resp := b.masterCheck(req, h.MasterEpoch); resp != nil {
		return resp
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&codec.HandshakeResponseHeader{LastIndex: int64(b.acks.durable), Epoch: b.repl.epoch})
	doc := epochsBody{Epochs: b.repl.table.Entries()}
	if first := b.store.CommitLog().FirstIndex(); first > 1 {
		// For a slave that must restart its log at the first index (rebase.go).
		doc.FirstIndex, doc.QueueStarts = first, b.store.QueueStarts()
	}
	body, err := json.Marshal(doc)
	if err != nil {
		panic("brokernode: encode epoch table: " + err.Error())
	}
	resp.Body = body
	return resp
}

// handleReplicaFetch serves a slave's fetch: it notes what the slave reports synced (which may
// acknowledge writes), then answers the durable entries from `from` on, within one epoch, or
// parks the fetch until there are some.
func (b *Broker) handleReplicaFetch(c node.ConnID, req *codec.Command) *codec.Command {
	h, hdrErr := codec.DecodeHeader[codec.ReplicaFetchHeader](req)
	if resp := b.masterCheck(req, h.MasterEpoch); resp != nil {
		return resp
	}
	m, durable := b.master(), b.acks.durable
	id, from, synced := h.BrokerID, h.From, h.Synced
	switch {
	case hdrErr != nil:
		return codec.NewResponse(req, codec.SystemError, "fetch: "+hdrErr.Error())
	case id < 1 || id == b.cfg.BrokerID:
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf("fetch from broker id %d", id))
	case from < 1 || uint64(from) > durable+1 || synced < 0 || synced >= from:
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf(
			"fetch from %d with %d synced does not follow this master's log (durable up to %d): handshake again", from, synced, durable))
	}
	if first := b.store.CommitLog().FirstIndex(); uint64(from) < first {
		// Retention removed it: the slave's next handshake learns where this log starts, and
		// restarts its own there (rebase.go).
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf(
			"fetch from %d: this master's commit log starts at %d (retention removed what precedes it): handshake again", from, first))
	}
	m.inSync.Fetched(id, uint64(synced), durable, b.env.Now())
	m.updateAcks(b)
	if b.role != role(m) {
		panic(fmt.Sprintf("brokernode: %s/%d stopped being master while acknowledging a fetch", b.cfg.BrokerName, b.cfg.BrokerID))
	}
	if uint64(from) > b.acks.durable {
		pf := &parkedFetch{conn: c, req: req, id: id, from: uint64(from)}
		pf.timer = b.env.SetTimer(b.cfg.ReplicaFetchWait, pf)
		m.fetches = append(m.fetches, pf)
		return nil
	}
	return m.fetchAnswer(b, req, id, uint64(from))
}

// fetchAnswer builds the answer of a fetch from `from`: records up to the master's durable
// index and the end of from's epoch, at most ReplicaFetchBytes (but at least one), with the
// epoch, its start and the master's confirmed index.
func (m *masterRole) fetchAnswer(b *Broker, req *codec.Command, id int64, from uint64) *codec.Command {
	t := b.repl.table
	durable := b.acks.durable
	upTo := durable
	var e replication.Epoch
	if cur, ok := t.EpochOf(from); ok {
		e = cur
		end, _ := t.EndOf(cur.Epoch, durable)
		upTo = min(upTo, end-1)
	} else if t.Len() > 0 {
		// Before the first epoch: entries written before the group existed.
		upTo = min(upTo, t.Entries()[0].Start-1)
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&codec.FetchResponseHeader{Epoch: e.Epoch, EpochStart: int64(e.Start), Confirmed: int64(b.store.Confirmed())})
	if from <= upTo {
		recs, err := b.store.ReadRecords(from, upTo, b.cfg.ReplicaFetchBytes)
		if err != nil {
			b.log.Error("read records for a slave", "from", from, "err", err)
			return codec.NewResponse(req, codec.SystemError, "read records: "+err.Error())
		}
		resp.Body = bytes.Join(recs, nil)
	}
	m.inSync.Answered(id, durable, b.env.Now())
	return resp
}

// fetchParkExpired answers a parked fetch that found nothing new in time.
func (m *masterRole) fetchParkExpired(b *Broker, pf *parkedFetch) {
	if pf.done {
		panic("brokernode: the timer of a parked fetch already answered fired (answering cancels it)")
	}
	pf.done = true
	m.fetches = slices.DeleteFunc(m.fetches, func(x *parkedFetch) bool { return x == pf })
	b.env.Send(pf.conn, m.fetchAnswer(b, pf.req, pf.id, pf.from))
}

// synced: slaves waiting for the entries now durable are answered, and writes may be
// acknowledged.
func (m *masterRole) synced(b *Broker) {
	if durable := b.acks.durable; durable > m.servable {
		// A slave that held everything servable was caught up until now.
		m.inSync.Appending(m.servable, b.env.Now())
		m.servable = durable
		parked := m.fetches
		m.fetches = nil
		for _, pf := range parked {
			b.env.CancelTimer(pf.timer)
			pf.done = true
			b.env.Send(pf.conn, m.fetchAnswer(b, pf.req, pf.id, pf.from))
		}
	}
	m.updateAcks(b)
	m.servable = b.acks.durable
}

// updateAcks acknowledges every write the policy (inSyncAcks) allows while the lease holds. A
// master whose lease lapsed acknowledges nothing (with the planted bug bugs.StaleMasterAcks: on
// its own fsync, without the in-sync set; with bugs.LeaseFreeMaster: by the policy, as if the
// lease held).
func (m *masterRole) updateAcks(b *Broker) {
	if !m.leaseValid(b) && !b.cfg.Bugs.Has(bugs.LeaseFreeMaster) {
		if !m.leaseWarned {
			m.leaseWarned = true
			b.log.Warn("mastership lapsed: no word from the controller; refusing writes", "epoch", b.repl.epoch, "leaseUntil", m.leaseUntil)
			b.registerAll() // no longer brokerId 0: clients look for the master elsewhere
		}
		if !b.cfg.Bugs.Has(bugs.StaleMasterAcks) {
			return
		}
		b.acknowledgeTo(b.acks.durable)
	} else {
		ack, ok := b.acks.policy.ackable(b.acks.durable)
		if !ok {
			return // the duties wait too
		}
		b.acknowledgeTo(ack)
	}
	m.maybeStartDuties(b)
}

// tick keeps the in-sync set (in both replication modes): it asks the controller to drop
// lagging slaves and add caught-up ones, and settles requests whose answers were lost.
func (m *masterRole) tick(b *Broker) {
	m.updateAcks(b) // notices a lapsed lease
	if a := m.alter; a != nil {
		since := b.env.Now().Sub(a.sentAt)
		if !a.lost && since > b.cfg.ControllerTimeout {
			a.lost = true
		}
		if a.lost && since >= replicaRetryDelay {
			m.sendAlter(b, nil)
		}
		return
	}
	if !m.leaseValid(b) {
		return
	}
	// Kept in async replication too: the controller elects only from the in-sync set. A slave
	// must hold what this master inherited, not only what it confirmed since: a new master
	// confirms its inherited log only once the in-sync set holds it, so its confirmed index
	// can lag far behind what earlier masters acknowledged, and a slave let in on it could be
	// elected next and truncate those acknowledged entries away.
	want, changed := m.inSync.Wanted(b.acks.durable, max(b.store.Confirmed(), m.inherited), b.env.Now())
	if changed {
		set, _ := m.inSync.Confirmed()
		b.log.Info("asking the controller to change the in-sync set", "from", set, "to", want)
		m.inSync.Propose(want)
		m.sendAlter(b, want)
	}
}

// sendAlter asks the controller for in-sync set `set`; with nil, it sends a fence (the
// confirmed set again) to settle a request whose answer was lost.
func (m *masterRole) sendAlter(b *Broker, set []int64) {
	confirmed, base := m.inSync.Confirmed()
	fence := set == nil
	if fence {
		set = confirmed
	}
	body, err := json.Marshal(struct {
		InSync      []int64 `json:"syncStateSet"`
		InSyncEpoch int64   `json:"syncStateSetEpoch"`
	}{set, base})
	if err != nil {
		panic("brokernode: encode in-sync set: " + err.Error())
	}
	req := codec.NewRequest(codec.ReqControllerAlterInSyncSet, codec.EncodeHeader(&codec.AlterInSyncSetHeader{
		ClusterName: b.cfg.ClusterName, BrokerName: b.cfg.BrokerName, MasterBrokerID: b.cfg.BrokerID, MasterEpoch: b.repl.epoch,
	}), body)
	req.Opaque = b.nextOpaque()
	m.alter = &alterCall{opaque: req.Opaque, sentAt: b.env.Now(), set: set, base: base, fence: fence}
	b.env.Send(b.controllerConn(), req)
}

func (m *masterRole) onAlterAnswer(b *Broker, resp *codec.Command) {
	a := m.alter
	v, viewErr := decodeReplicaView(resp)
	switch resp.Code {
	case codec.Success, codec.ControllerFencedInSyncEpoch:
		if viewErr != nil {
			b.log.Error("controller's in-sync answer does not decode", "err", viewErr)
			a.lost = true
			return
		}
		m.alter = nil
		m.settleInSync(b, v)
	case codec.ControllerFencedMasterEpoch, codec.ControllerInvalidMaster:
		b.log.Warn("controller says this broker is not the master it thinks", "epoch", b.repl.epoch, "remark", resp.Remark)
		m.alter = nil
		if viewErr == nil && v.epoch > b.repl.epoch {
			b.applyView(v, heartbeatSent{})
		} else {
			b.becomeIdle(nil)
		}
		b.sendHeartbeat()
	case codec.ControllerNotLeader:
		b.redirect(resp)
		a.lost = true
	default:
		// Refused before being proposed (or not applied in time). If no earlier request of
		// this change may still be applied, it is over; otherwise fence.
		b.log.Info("controller refused the in-sync change", "set", a.set, "code", resp.Code, "remark", resp.Remark)
		if resp.Code != codec.SystemBusy && !a.fence {
			m.alter = nil
			m.inSync.ProposalFailed()
			return
		}
		a.lost = true
	}
}

// settleInSync takes the set the controller holds; any change asked for is settled by it.
func (m *masterRole) settleInSync(b *Broker, v replicaView) {
	if v.masterID != b.cfg.BrokerID || v.epoch != b.repl.epoch {
		b.applyView(v, heartbeatSent{})
		return
	}
	m.inSync.SetConfirmed(v.set, v.setEpoch)
	b.log.Info("in-sync set", "set", v.set, "epoch", v.setEpoch)
	m.updateAcks(b)
}

// noteInSync takes the in-sync set of a heartbeat answer that confirms this master. A change
// in flight is settled once the controller's set epoch moved past the one it was based on.
func (m *masterRole) noteInSync(b *Broker, v replicaView) {
	_, epoch := m.inSync.Confirmed()
	if a := m.alter; a != nil {
		if v.setEpoch != a.base {
			m.alter = nil
			m.settleInSync(b, v)
		}
		return
	}
	if v.setEpoch != epoch {
		m.settleInSync(b, v)
	}
}

// maybeStartDuties starts the master's own writers (delay levels, transaction checks) once
// the log it took over is confirmed.
func (m *masterRole) maybeStartDuties(b *Broker) {
	if !m.dutiesDue || b.store.Confirmed() < m.dutiesFrom {
		return
	}
	m.dutiesDue = false
	if g := b.repl; !g.dutiesStarted {
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

// leave ends the master role. Sends still waiting for their acknowledgement are never
// answered: whether they survive depends on the new master, so their outcome is unknown, as
// for a lost answer. Their entries stay in the log until the new master's handshake says.
func (m *masterRole) leave(b *Broker) {
	b.log.Warn("no longer master", "group", b.cfg.BrokerName, "epoch", b.repl.epoch, "unacknowledged", len(b.acks.pending))
	b.acks.orphan()
	for _, pf := range m.fetches {
		b.env.CancelTimer(pf.timer)
		pf.done = true
		b.env.Send(pf.conn, codec.NewResponse(pf.req, codec.ServiceNotAvailable, "no longer the master"))
	}
	m.fetches = nil
	b.resetMetaSync()
}
