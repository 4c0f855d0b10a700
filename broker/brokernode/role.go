package brokernode

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
)

// role is what the broker does in its group, installed whole (with its ack policy) by
// becomeMaster, becomeSlave and becomeIdle: a single broker is a soloRole for good; a replica
// of a broker group starts as an idleRole and is made masterRole (master.go) or slaveRole
// (slave.go) by the controller. Each role owns its state and answers the events that differ
// between roles; the rest of the broker asks the role instead of testing which one it is.
type role interface {
	// String names the role in logs and for Broker.Role ("" for a single broker).
	String() string
	// ready: the recovered commit log is durable and the broker starts serving.
	ready(b *Broker)
	// synced: the commit log is durable further (b.acks.durable).
	synced(b *Broker)
	// tick is the role's part of the replica's periodic work (replicaTick).
	tick(b *Broker)
	// onResponse handles the answer to a request the broker sent as a replica; false if it is
	// none of those.
	onResponse(b *Broker, c node.ConnID, resp *codec.Command) bool
	// connClosed forgets what the role tied to connection c.
	connClosed(b *Broker, c node.ConnID)
	// writable: the broker may append writes now.
	writable(b *Broker) bool
	// refuseRead is the answer to a pull the role must not serve now; nil: serve it.
	refuseRead(b *Broker, req *codec.Command) *codec.Command
	// suggestedBrokerID is a pull answer's suggestWhichBrokerId (see Broker.suggestBrokerID).
	suggestedBrokerID(b *Broker) int64
	// leave stops what the role does; the next role is installed right after.
	leave(b *Broker)
}

// soloRole is a broker without a group: it writes, serves and acknowledges on its own flush.
type soloRole struct{}

func (soloRole) String() string { return "" }

// ready confirms what recovery found (its first sync made it durable) and starts the broker's
// own writers, which read confirmed messages only.
func (soloRole) ready(b *Broker) {
	b.acknowledgeTo(b.acks.durable)
	b.startDelay()
	b.recoverTransactions()
}

func (soloRole) synced(b *Broker) { b.settleAcks() }

func (soloRole) tick(*Broker) { panic("brokernode: a broker without a group has no replica tick") }

func (soloRole) onResponse(*Broker, node.ConnID, *codec.Command) bool { return false }
func (soloRole) connClosed(*Broker, node.ConnID)                      {}
func (soloRole) writable(*Broker) bool                                { return true }
func (soloRole) refuseRead(*Broker, *codec.Command) *codec.Command    { return nil }
func (soloRole) suggestedBrokerID(*Broker) int64                      { return 0 }
func (soloRole) leave(*Broker)                                        { panic("brokernode: a broker without a group has no role to leave") }

// idleRole is a replica the controller named no role (or has not answered yet): it refuses
// writes, serves what it confirmed, and acknowledges nothing.
type idleRole struct{}

func (idleRole) String() string { return "none" }

// ready starts the replica's talk with the controller (a replica is idle until it answers).
func (idleRole) ready(b *Broker) { b.replicaReady() }

func (idleRole) synced(*Broker) {}
func (idleRole) tick(*Broker)   {}

func (idleRole) onResponse(b *Broker, c node.ConnID, resp *codec.Command) bool {
	return b.onReplicaResponse(c, resp)
}

func (idleRole) connClosed(b *Broker, c node.ConnID)               { b.replicaConnClosed(c) }
func (idleRole) writable(*Broker) bool                             { return false }
func (idleRole) refuseRead(*Broker, *codec.Command) *codec.Command { return nil }
func (idleRole) suggestedBrokerID(b *Broker) int64                 { return b.followerSuggestion() }
func (idleRole) leave(b *Broker)                                   { b.resetMetaSync() }

// master is the broker's master role, nil unless it is one.
func (b *Broker) master() *masterRole {
	m, _ := b.role.(*masterRole)
	return m
}

// slave is the broker's slave role, nil unless it is one.
func (b *Broker) slave() *slaveRole {
	s, _ := b.role.(*slaveRole)
	return s
}

// install takes role r with its ack policy, the previous role left.
func (b *Broker) install(r role, policy ackPolicy) {
	b.role, b.acks.policy = r, policy
	b.observe(RoleChanged{Role: r.String(), Epoch: b.repl.epoch, MasterID: b.repl.masterID})
}

// applyView takes the role the controller's view gives. A view answering heartbeat hb renews
// the lease of the master it confirms (see masterRole.leaseValid).
func (b *Broker) applyView(v replicaView, hb heartbeatSent) {
	renew := hb.seq != 0
	g := b.repl
	if v.epoch < g.epoch {
		return // an older view (a member lagging behind)
	}
	switch {
	case v.masterID == b.cfg.BrokerID:
		m := b.master()
		if m == nil || g.epoch != v.epoch {
			if !renew {
				return // only a heartbeat makes a master
			}
			b.becomeMaster(v, hb)
			return
		}
		if renew {
			m.renewLease(b, hb.seq, hb.sentAt)
			if m.leaseWarned && m.leaseValid(b) {
				m.leaseWarned = false
				b.log.Info("mastership renewed; accepting writes again", "epoch", g.epoch)
				b.registerAll()
			}
		}
		m.noteInSync(b, v)
		m.updateAcks(b)
	case v.masterID == 0:
		if _, idle := b.role.(idleRole); !idle || g.epoch != v.epoch {
			b.log.Warn("broker group has no master", "epoch", v.epoch, "was", b.role.String())
			b.becomeIdle(&v)
		}
	default:
		if b.slave() == nil || g.epoch != v.epoch || g.masterAddr != v.masterAddr {
			b.becomeSlave(v)
		}
	}
}

// becomeIdle leaves the current role for none, with the group v describes (no master), or as
// b.repl describes it with v nil.
func (b *Broker) becomeIdle(v *replicaView) {
	b.role.leave(b)
	if v != nil {
		b.repl.epoch, b.repl.masterID, b.repl.masterAddr = v.epoch, 0, ""
	}
	b.install(idleRole{}, holdAcks{})
	b.registerAll()
}

// becomeMaster takes the master role at v.epoch: its epoch-table entry is durable before
// anything is written at that epoch.
func (b *Broker) becomeMaster(v replicaView, hb heartbeatSent) {
	g := b.repl
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
	b.role.leave(b)
	g.epoch, g.masterID, g.masterAddr = v.epoch, b.cfg.BrokerID, b.cfg.Addr
	m := &masterRole{
		inSync:   replication.NewInSync(b.cfg.BrokerID, b.cfg.MinInSync, b.cfg.MaxReplicaLag, v.set, v.setEpoch, b.env.Now()),
		servable: b.acks.durable,
		// Delay delivery and transaction checks read confirmed messages only: they start once
		// everything inherited from earlier epochs is acknowledged at this one.
		dutiesDue: true, dutiesFrom: last,
		inherited: last,
	}
	m.renewLease(b, hb.seq, hb.sentAt)
	b.install(m, inSyncAcks{mode: b.cfg.ReplicationMode, inSync: m.inSync})
	b.log.Info("became master", "group", b.cfg.BrokerName, "epoch", v.epoch, "firstIndex", last+1,
		"inSync", v.set, "replication", b.cfg.ReplicationMode.String())
	b.registerAll()
	m.updateAcks(b)
}

// becomeSlave follows the master v names.
func (b *Broker) becomeSlave(v replicaView) {
	g := b.repl
	wasSlave := b.slave() != nil
	b.role.leave(b)
	g.epoch, g.masterID, g.masterAddr = v.epoch, v.masterID, v.masterAddr
	s := &slaveRole{}
	b.install(s, slaveAcks{repl: g})
	b.log.Info("following master", "group", b.cfg.BrokerName, "master", v.masterID, "addr", v.masterAddr, "epoch", v.epoch)
	if !wasSlave {
		b.registerAll()
	}
	s.startFollowing(b)
}

// followerSuggestion is the pull suggestion of a replica that is not master: the master (0)
// while the controller's last word names one, this replica otherwise.
func (b *Broker) followerSuggestion() int64 {
	if b.repl.masterID != 0 {
		return 0
	}
	return b.cfg.BrokerID
}

// Role reports the broker's role in its group ("master", "slave" or "none"; "" for a broker
// without a group), the master epoch it knows, and whether it may write now (a master whose
// lease holds). For tools and the simulator.
func (b *Broker) Role() (role string, epoch int64, writable bool) {
	if m := b.master(); m != nil {
		return b.role.String(), b.epoch(), m.leaseValid(b)
	}
	return b.role.String(), b.epoch(), b.role == soloRole{}
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
func (b *Broker) suggestBrokerID() int64 { return b.role.suggestedBrokerID(b) }

// nameServerID is the brokerId the broker registers with: 0 for a master whose lease holds
// (a lapsed master may have been replaced: routes should not send clients to it).
func (b *Broker) nameServerID() int64 {
	if m := b.master(); m != nil && !m.leaseWarned {
		return 0
	}
	return b.cfg.BrokerID
}

// refuseWrite answers a write request to a replica that may not write, as Java answers a send
// to a slave: SERVICE_NOT_AVAILABLE, which the clients retry on another broker.
func (b *Broker) refuseWrite(req *codec.Command) *codec.Command {
	b.metrics.refused(refusedNotMaster)
	why := "it is a " + b.role.String()
	if b.master() != nil {
		why = "its mastership lapsed (no word from the controller)"
	}
	return codec.NewResponse(req, codec.ServiceNotAvailable, fmt.Sprintf(
		"service not available now: broker %s/%d is not the master of its group (%s); messages are put to the master", b.cfg.BrokerName, b.cfg.BrokerID, why))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
