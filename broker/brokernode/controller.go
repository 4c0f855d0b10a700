package brokernode

// The replica's link to the controller: heartbeats (whose answers describe the group and renew
// a master's lease), and the group view they carry.

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
)

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

// leaseTimer fires MasterLease after heartbeat seq was sent: a lease that heartbeat granted
// ends then, whatever Env.Now reads.
type leaseTimer struct{ seq uint64 }

// replicaView is the group as a controller answer describes it.
type replicaView struct {
	masterID   int64
	masterAddr string
	epoch      int64
	set        []int64
	setEpoch   int64
}

// decodeReplicaView reads the group from a controller answer's header.
func decodeReplicaView(resp *codec.Command) (replicaView, error) {
	h, err := codec.DecodeHeader[codec.GroupResponseHeader](resp)
	if err != nil {
		return replicaView{}, err
	}
	v := replicaView{masterID: h.MasterBrokerID, masterAddr: h.MasterAddress, epoch: h.MasterEpoch, set: h.SyncStateSet, setEpoch: h.SyncStateSetEpoch}
	if len(v.set) > replication.MaxEpochs {
		return v, fmt.Errorf("syncStateSet of %d ids", len(v.set))
	}
	if v.masterID < 0 || v.epoch < 0 || v.setEpoch < 0 || (v.masterID > 0 && (v.masterAddr == "" || !slices.Contains(v.set, v.masterID))) {
		return v, fmt.Errorf("master %d at %q, epoch %d, set %v (epoch %d) is not a valid group", v.masterID, v.masterAddr, v.epoch, v.set, v.setEpoch)
	}
	return v, nil
}

func (b *Broker) controllerConn() node.ConnID {
	g := b.repl
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
	g := b.repl
	if g.ctl.conn != 0 {
		b.env.Close(g.ctl.conn)
	}
	g.ctl.conn, g.ctl.addr, g.ctl.hbOpaque = 0, "", 0
	if m := b.master(); m != nil {
		m.controllerLost()
	}
}

func (b *Broker) sendHeartbeat() {
	g := b.repl
	req := codec.NewRequest(codec.ReqControllerBrokerHeartbeat, codec.EncodeHeader(&codec.BrokerHeartbeatHeader{
		ClusterName: b.cfg.ClusterName, BrokerName: b.cfg.BrokerName, BrokerID: b.cfg.BrokerID, BrokerAddr: b.cfg.Addr,
		MasterEpoch: g.table.LastEpoch(), MaxOffset: int64(b.acks.durable),
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
	g := b.repl
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

func (b *Broker) onHeartbeatAnswer(resp *codec.Command, seq uint64, sentAt time.Time) {
	switch resp.Code {
	case codec.Success:
	case codec.ControllerNotLeader:
		prev := b.repl.ctl.addr
		b.redirect(resp)
		if b.repl.ctl.addr != "" && b.repl.ctl.addr != prev {
			b.sendHeartbeat() // straight to the leader named
		}
		return
	default:
		b.log.Warn("controller refused the heartbeat", "code", resp.Code, "remark", resp.Remark)
		return
	}
	v, err := decodeReplicaView(resp)
	if err != nil {
		b.log.Error("controller heartbeat answer does not decode", "err", err)
		return
	}
	b.applyView(v, heartbeatSent{seq, sentAt})
}

// heartbeatSent names a heartbeat whose answer carried a group view; the zero value means the
// view came with another answer (it renews no lease).
type heartbeatSent struct {
	seq    uint64 // ctlLink.hbSeq when it was sent (from 1)
	sentAt time.Time
}

// applyView takes the role the controller's view gives. A view answering heartbeat hb
// renews the lease of the master it confirms (see leaseValid).
