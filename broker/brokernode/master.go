package brokernode

import (
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
	g := b.grp
	if g == nil {
		return codec.NewResponse(req, codec.RequestCodeNotSupported, "this broker is not a replica of a broker group")
	}
	if epoch == codec.NoMasterEpoch {
		return codec.NewResponse(req, codec.SystemError, "replication request without masterEpoch")
	}
	if g.role != roleMaster || epoch != g.epoch {
		return codec.NewResponse(req, codec.ServiceNotAvailable, fmt.Sprintf("not the master at epoch %d (this broker is a %s at epoch %d)", epoch, g.role, g.epoch))
	}
	return nil
}

// handleReplicaHandshake answers a slave's handshake with the master's epoch table and the end
// of what it may serve (its synced index).
func (b *Broker) handleReplicaHandshake(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.ReplicaHeader](req) // a malformed epoch is NoMasterEpoch
	if resp := b.masterCheck(req, h.MasterEpoch); resp != nil {
		return resp
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&codec.HandshakeResponseHeader{LastIndex: int64(b.synced), Epoch: b.grp.epoch})
	body, err := json.Marshal(epochsBody{Epochs: b.grp.table.Entries()})
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
	id, from, synced := h.BrokerID, h.From, h.Synced
	switch {
	case hdrErr != nil:
		return codec.NewResponse(req, codec.SystemError, "fetch: "+hdrErr.Error())
	case id < 1 || id == b.cfg.BrokerID:
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf("fetch from broker id %d", id))
	case from < 1 || uint64(from) > b.synced+1 || synced < 0 || synced >= from:
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf(
			"fetch from %d with %d synced does not follow this master's log (durable up to %d): handshake again", from, synced, b.synced))
	}
	g := b.grp
	g.inSync.Fetched(id, uint64(synced), b.synced, b.env.Now())
	b.updateAcks()
	if g.role != roleMaster { // updateAcks cannot step down, but stay defensive
		return codec.NewResponse(req, codec.ServiceNotAvailable, "no longer the master")
	}
	if uint64(from) > b.synced {
		pf := &parkedFetch{conn: c, req: req, id: id, from: uint64(from)}
		pf.timer = b.env.SetTimer(b.cfg.ReplicaFetchWait, pf)
		g.fetches = append(g.fetches, pf)
		return nil
	}
	return b.fetchAnswer(req, id, uint64(from))
}

// fetchAnswer builds the answer of a fetch from `from`: records up to the master's synced
// index and the end of from's epoch, at most ReplicaFetchBytes (but at least one), with the
// epoch, its start and the master's confirmed index.
func (b *Broker) fetchAnswer(req *codec.Command, id int64, from uint64) *codec.Command {
	g := b.grp
	upTo := b.synced
	var e replication.Epoch
	if cur, ok := g.table.EpochOf(from); ok {
		e = cur
		end, _ := g.table.EndOf(cur.Epoch, b.synced)
		upTo = min(upTo, end-1)
	} else if g.table.Len() > 0 {
		// Before the first epoch: entries written before the group existed.
		upTo = min(upTo, g.table.Entries()[0].Start-1)
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&codec.FetchResponseHeader{Epoch: e.Epoch, EpochStart: int64(e.Start), Confirmed: int64(b.store.Confirmed())})
	if from <= upTo {
		recs, err := b.store.ReadRecords(from, upTo, b.cfg.ReplicaFetchBytes)
		if err != nil {
			b.log.Error("read records for a slave", "from", from, "err", err)
			return codec.NewResponse(req, codec.SystemError, "read records: "+err.Error())
		}
		size := 0
		for _, r := range recs {
			size += len(r)
		}
		body := make([]byte, 0, size)
		for _, r := range recs {
			body = append(body, r...)
		}
		resp.Body = body
	}
	g.inSync.Answered(id, b.synced, b.env.Now())
	return resp
}

// fetchParkExpired answers a parked fetch that found nothing new in time.
func (b *Broker) fetchParkExpired(pf *parkedFetch) {
	g := b.grp
	if pf.done || g.role != roleMaster {
		return
	}
	pf.done = true
	g.fetches = slices.DeleteFunc(g.fetches, func(x *parkedFetch) bool { return x == pf })
	b.env.Send(pf.conn, b.fetchAnswer(pf.req, pf.id, pf.from))
}

// masterSynced is OnSynced's part for a master: slaves waiting for the entries now durable
// are answered, and writes may be acknowledged.
func (b *Broker) masterSynced() {
	g := b.grp
	if b.synced > g.servable {
		// A slave that held everything servable was caught up until now.
		g.inSync.Appending(g.servable, b.env.Now())
		g.servable = b.synced
		parked := g.fetches
		g.fetches = nil
		for _, pf := range parked {
			b.env.CancelTimer(pf.timer)
			pf.done = true
			b.env.Send(pf.conn, b.fetchAnswer(pf.req, pf.id, pf.from))
		}
	}
	b.updateAcks()
}

// updateAcks acknowledges every write the rules allow: in sync replication the in-sync
// rule (replication.InSync.AckIndex over the master's own fsync), in async replication the
// master's own flush. A master whose lease lapsed acknowledges nothing (with the planted bug
// bugs.StaleMasterAcks: on its own fsync, without the in-sync set; with bugs.LeaseFreeMaster:
// by the rules above, as if the lease held).
func (b *Broker) updateAcks() {
	g := b.grp
	if g.role != roleMaster || g.inSync == nil {
		return
	}
	var ack uint64
	switch {
	case !b.leaseValid() && !b.cfg.Bugs.Has(bugs.LeaseFreeMaster):
		if !g.leaseWarned {
			g.leaseWarned = true
			b.log.Warn("mastership lapsed: no word from the controller; refusing writes", "epoch", g.epoch, "leaseUntil", g.leaseUntil)
			b.registerAll() // no longer brokerId 0: clients look for the master elsewhere
		}
		if !b.cfg.Bugs.Has(bugs.StaleMasterAcks) {
			return
		}
		ack = b.synced
	case b.cfg.ReplicationMode == AsyncReplication:
		ack = b.synced
	default:
		idx, ok := g.inSync.AckIndex(b.synced)
		if !ok {
			return
		}
		ack = idx
	}
	if ack > b.store.Confirmed() && ack <= b.store.CommitLog().LastIndex() {
		b.acknowledge(ack)
	}
	b.maybeStartDuties()
}

// masterTick keeps the in-sync set (in both replication modes): it asks the controller to drop
// lagging slaves and add caught-up ones, and settles requests whose answers were lost.
func (b *Broker) masterTick() {
	g := b.grp
	b.updateAcks() // notices a lapsed lease
	if a := g.alter; a != nil {
		since := b.env.Now().Sub(a.sentAt)
		if !a.lost && since > b.cfg.ControllerTimeout {
			a.lost = true
		}
		if a.lost && since >= replicaRetryDelay {
			b.sendAlter(nil)
		}
		return
	}
	if !b.leaseValid() {
		return
	}
	// Kept in async replication too: the controller elects only from the in-sync set. A slave
	// must hold what this master inherited, not only what it confirmed since: a new master
	// confirms its inherited log only once the in-sync set holds it, so its confirmed index
	// can lag far behind what earlier masters acknowledged, and a slave let in on it could be
	// elected next and truncate those acknowledged entries away.
	want, changed := g.inSync.Wanted(b.synced, max(b.store.Confirmed(), g.inherited), b.env.Now())
	if changed {
		set, _ := g.inSync.Confirmed()
		b.log.Info("asking the controller to change the in-sync set", "from", set, "to", want)
		g.inSync.Propose(want)
		b.sendAlter(want)
	}
}

// sendAlter asks the controller for in-sync set `set`; with nil, it sends a fence (the
// confirmed set again) to settle a request whose answer was lost.
func (b *Broker) sendAlter(set []int64) {
	g := b.grp
	confirmed, base := g.inSync.Confirmed()
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
		ClusterName: b.cfg.ClusterName, BrokerName: b.cfg.BrokerName, MasterBrokerID: b.cfg.BrokerID, MasterEpoch: g.epoch,
	}), body)
	req.Opaque = b.nextOpaque()
	g.alter = &alterCall{opaque: req.Opaque, sentAt: b.env.Now(), set: set, base: base, fence: fence}
	b.env.Send(b.controllerConn(), req)
}

func (b *Broker) onAlterAnswer(resp *codec.Command) {
	g := b.grp
	a := g.alter
	v, viewErr := decodeGroupView(resp)
	switch resp.Code {
	case codec.Success, codec.ControllerFencedInSyncEpoch:
		if viewErr != nil {
			b.log.Error("controller's in-sync answer does not decode", "err", viewErr)
			a.lost = true
			return
		}
		g.alter = nil
		b.settleInSync(v)
	case codec.ControllerFencedMasterEpoch, codec.ControllerInvalidMaster:
		b.log.Warn("controller says this broker is not the master it thinks", "epoch", g.epoch, "remark", resp.Remark)
		g.alter = nil
		if viewErr == nil && v.epoch > g.epoch {
			b.applyGroupView(v, heartbeatSent{})
		} else {
			b.leaveRole()
			g.role = roleNone
			b.registerAll()
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
			g.alter = nil
			g.inSync.ProposalFailed()
			return
		}
		a.lost = true
	}
}

// settleInSync takes the set the controller holds; any change asked for is settled by it.
func (b *Broker) settleInSync(v groupView) {
	g := b.grp
	if v.masterID != b.cfg.BrokerID || v.epoch != g.epoch {
		b.applyGroupView(v, heartbeatSent{})
		return
	}
	g.inSync.SetConfirmed(v.set, v.setEpoch)
	b.log.Info("in-sync set", "set", v.set, "epoch", v.setEpoch)
	b.updateAcks()
}

// noteInSync takes the in-sync set of a heartbeat answer that confirms this master. A change
// in flight is settled once the controller's set epoch moved past the one it was based on.
func (b *Broker) noteInSync(v groupView) {
	g := b.grp
	_, epoch := g.inSync.Confirmed()
	if a := g.alter; a != nil {
		if v.setEpoch != a.base {
			g.alter = nil
			b.settleInSync(v)
		}
		return
	}
	if v.setEpoch != epoch {
		b.settleInSync(v)
	}
}
