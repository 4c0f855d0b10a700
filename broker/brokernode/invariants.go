package brokernode

import (
	"errors"
	"fmt"

	"github.com/sluicemq/sluice/broker/node"
)

// CheckInvariants reports what is broken in the broker's state between events, or nil: the
// ack pipeline's order and bounds, the role and its ack policy agreeing, the master's and the
// slave's own state, the checkpoint and the caps. It reads only, so the simulator calls it
// after every event and the production runtime on a sample. Some hold only once the broker is
// ready (before, the store's recovered state has not been synced yet). It implements
// node.InvariantChecker.
func (b *Broker) CheckInvariants() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	a := &b.acks
	if b.store.Failed() {
		// A failed store's log says nothing until it is reopened (a slave reopens it at its
		// next handshake, which may fail again): check only what does not compare with it.
		return errors.Join(append(b.pipelineOrder(0), b.roleInvariants()...)...)
	}
	confirmed, last := b.store.Confirmed(), b.store.CommitLog().LastIndex()

	// The ack pipeline.
	errs = append(errs, b.pipelineOrder(confirmed)...)
	if n := len(a.pending); n > 0 && a.pending[n-1].index > last {
		fail("pending write at index %d is beyond the commit log's last index %d", a.pending[n-1].index, last)
	}
	if a.durable > last {
		fail("durable index %d is beyond the commit log's last index %d", a.durable, last)
	}
	if confirmed > last {
		fail("confirmed index %d is beyond the commit log's last index %d", confirmed, last)
	}
	if b.ready && b.cfg.FlushMode == SyncFlush && confirmed > a.durable {
		// In async-flush mode writes are confirmed as they are appended, before any fsync.
		fail("confirmed index %d is beyond the durable index %d in sync-flush mode", confirmed, a.durable)
	}
	if a.discardSync && !a.syncInFlight {
		fail("a sync to discard, but none in flight")
	}
	if cp := b.store.Checkpoint(); cp > confirmed {
		fail("checkpoint %d is beyond the confirmed index %d", cp, confirmed)
	}
	if b.ckptPending != nil && b.ckptUpTo > confirmed {
		fail("checkpoint in flight up to %d is beyond the confirmed index %d", b.ckptUpTo, confirmed)
	}
	prev := uint64(0)
	for _, p := range b.delay.unsynced {
		if p.index < prev || p.index > last {
			fail("delay progress at index %d is out of order (after %d) or beyond the log's last index %d", p.index, prev, last)
		}
		prev = p.index
	}

	// Caps.
	if b.parked.count > b.cfg.MaxParkedPulls {
		fail("%d parked pulls, more than MaxParkedPulls %d", b.parked.count, b.cfg.MaxParkedPulls)
	}

	errs = append(errs, b.roleInvariants()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("broker %s/%d (%s): %w", b.cfg.BrokerName, b.cfg.BrokerID, b.role, err)
	}
	return nil
}

// pipelineOrder checks that the pending writes' indexes increase from above confirmed.
func (b *Broker) pipelineOrder(confirmed uint64) []error {
	var errs []error
	prev := confirmed
	for i, p := range b.acks.pending {
		if p.index <= prev {
			errs = append(errs, fmt.Errorf("pending write %d at index %d is not above %d (the confirmed index or the write before)", i, p.index, prev))
		}
		prev = p.index
	}
	return errs
}

// roleInvariants checks that the role, its ack policy and its own state agree.
func (b *Broker) roleInvariants() []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	owesAnswers := false
	for _, p := range b.acks.pending {
		owesAnswers = owesAnswers || p.resp != nil
	}
	if b.repl == nil {
		if _, ok := b.role.(soloRole); !ok {
			fail("a broker without a group has role %T", b.role)
		}
		if _, ok := b.acks.policy.(flushAcks); !ok {
			fail("a broker without a group acknowledges by %T", b.acks.policy)
		}
		return errs
	}
	g := b.repl
	if b.master() == nil {
		if owesAnswers {
			fail("a replica that is not master owes answers to writes")
		}
		if g.meta.conn != 0 && b.slave() == nil {
			fail("a replica that is not a slave keeps a metadata connection to a master")
		}
	}
	switch r := b.role.(type) {
	case *masterRole:
		if p, ok := b.acks.policy.(inSyncAcks); !ok || p.inSync != r.inSync {
			fail("a master acknowledges by %T, not by its in-sync set", b.acks.policy)
		}
		if r.inSync == nil {
			fail("a master without an in-sync set")
		}
		if g.masterID != b.cfg.BrokerID {
			fail("a master whose group names master %d", g.masterID)
		}
		if r.servable > b.acks.durable {
			fail("a master serving up to %d, beyond its durable index %d", r.servable, b.acks.durable)
		}
		if r.leaseFrom > g.ctl.hbSeq {
			fail("a lease from heartbeat %d, beyond the last sent (%d)", r.leaseFrom, g.ctl.hbSeq)
		}
		for _, pf := range r.fetches {
			if pf.done {
				fail("a parked fetch already answered is still parked")
			}
		}
	case *slaveRole:
		if _, ok := b.acks.policy.(slaveAcks); !ok {
			fail("a slave acknowledges by %T", b.acks.policy)
		}
		if g.masterID == 0 || g.masterID == b.cfg.BrokerID || g.masterAddr == "" {
			fail("a slave following master %d at %q", g.masterID, g.masterAddr)
		}
	case idleRole:
		if _, ok := b.acks.policy.(holdAcks); !ok {
			fail("a replica without a role acknowledges by %T", b.acks.policy)
		}
	default:
		fail("a replica has role %T", b.role)
	}
	return errs
}

var _ node.InvariantChecker = (*Broker)(nil)
