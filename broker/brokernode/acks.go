package brokernode

// The ack pipeline: from a write appended to the commit log to the answer its sender waits for.
//
// putMessage appends a write and hands its index to the pipeline (ackPipeline), which keeps the
// writes not yet acknowledged (pending, in index order), how far the commit log is durable
// (durable), and at most one fsync in flight (group commit: every write that arrives meanwhile
// is covered by the next). To acknowledge index i (acknowledge) is to confirm the log up to i
// in the store, so readers see it, to answer the sends waiting for entries up to i, and to wake
// the queues they wrote to. When a write may be acknowledged is the ack policy's rule
// (ackPolicy), installed with the broker's role (role.go):
//
//   - flushAcks, a single broker: what its own fsync made durable;
//   - inSyncAcks, a replicated master: what every member of the in-sync set has synced (sync
//     replication) or its own fsync (async replication);
//   - slaveAcks, a slave: what its master confirmed, capped by what it made durable itself;
//   - holdAcks, a replica without a role: nothing.
//
// In async-flush mode a write is acknowledged as it is appended, and the log synced on a timer.

import (
	"errors"
	"fmt"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
)

// pendingAck is a write waiting to be acknowledged: a send to answer (resp) or an internal
// write (resp nil) whose queue is woken.
type pendingAck struct {
	index uint64
	conn  node.ConnID
	resp  *codec.Command
	queue queueKey
}

type queueKey struct {
	topic string
	queue int32
}

// ackPolicy is the rule saying how far writes may be acknowledged, the commit log being durable
// up to durable; ok is false when it allows nothing now. It decides only: the pipeline
// acknowledges.
type ackPolicy interface {
	ackable(durable uint64) (upTo uint64, ok bool)
}

// flushAcks is a single broker's rule: a write is acknowledged once durable (in async-flush
// mode putMessage acknowledges it earlier, as it is appended).
type flushAcks struct{}

func (flushAcks) ackable(durable uint64) (uint64, bool) { return durable, true }

// inSyncAcks is a replicated master's rule: in sync replication, what every member of the
// in-sync set has synced, the master's own fsync included (replication.InSync.AckIndex); in
// async replication, the master's own fsync. A master whose lease lapsed applies none of it
// (masterRole.updateAcks).
type inSyncAcks struct {
	mode   ReplicationMode
	inSync *replication.InSync
}

func (p inSyncAcks) ackable(durable uint64) (uint64, bool) {
	if p.mode == AsyncReplication {
		return durable, true
	}
	return p.inSync.AckIndex(durable)
}

// slaveAcks is a slave's rule: what its master confirmed (the highest confirmed index a
// master's fetch answer carried), as far as the slave has made it durable itself.
type slaveAcks struct{ repl *replica }

func (p slaveAcks) ackable(durable uint64) (uint64, bool) {
	return min(p.repl.masterConfirmed, durable), true
}

// holdAcks is the rule of a replica with no role: nothing is acknowledged.
type holdAcks struct{}

func (holdAcks) ackable(uint64) (uint64, bool) { return 0, false }

// ackPipeline is the state between an append and its acknowledgement.
type ackPipeline struct {
	policy ackPolicy
	// pending are the writes not yet acknowledged, in index order, all above the store's
	// confirmed index.
	pending []pendingAck
	// durable: the commit log is durable up to here (raised by fsync completions, lowered by
	// truncations); never beyond its last index.
	durable uint64
	// syncInFlight: a commit-log fsync was asked for and has not completed; syncWanted:
	// another is wanted when it does.
	syncInFlight bool
	syncWanted   bool
	// discardSync: a truncation happened while the sync in flight was, whose completion then
	// says nothing certain about the entries now at those indexes.
	discardSync bool
}

// add queues the write at index; indexes must increase.
func (a *ackPipeline) add(p pendingAck) {
	if n := len(a.pending); n > 0 && a.pending[n-1].index >= p.index {
		panic(fmt.Sprintf("brokernode: write at index %d queued for acknowledgement after index %d", p.index, a.pending[n-1].index))
	}
	a.pending = append(a.pending, p)
}

// answerAt makes resp, complete, the answer to send on c when the write at index (the last
// queued) is acknowledged.
func (a *ackPipeline) answerAt(index uint64, c node.ConnID, resp *codec.Command) {
	n := len(a.pending)
	if n == 0 || a.pending[n-1].index != index {
		panic(fmt.Sprintf("brokernode: an answer for index %d, which is not the last write waiting", index))
	}
	a.pending[n-1].conn, a.pending[n-1].resp = c, resp
}

// take removes and returns the writes up to upTo.
func (a *ackPipeline) take(upTo uint64) []pendingAck {
	n := 0
	for n < len(a.pending) && a.pending[n].index <= upTo {
		n++
	}
	done := a.pending[:n]
	a.pending = a.pending[n:]
	return done
}

// orphan forgets the answers owed: the writes stay queued (their queues are woken when they
// are acknowledged) but nobody is answered.
func (a *ackPipeline) orphan() {
	for i := range a.pending {
		a.pending[i].resp = nil
	}
}

// truncateAfter forgets everything past index p (the commit log was cut after p).
func (a *ackPipeline) truncateAfter(p uint64) {
	n := len(a.pending)
	for n > 0 && a.pending[n-1].index > p {
		n--
	}
	a.pending = a.pending[:n]
	a.durable = min(a.durable, p)
	if a.syncInFlight {
		a.discardSync = true
	}
}

// reopened forgets what was kept about the store's unsynced tail: the reopened store is what
// recovery left on disk, ending at last.
func (a *ackPipeline) reopened(last uint64) {
	a.pending = a.pending[:0]
	a.durable = min(a.durable, last)
	if a.syncInFlight {
		a.discardSync = true
	}
}

// OnSynced implements node.Handler: a commit-log fsync completed (checkpoint syncs go to
// checkpointSynced). The role acknowledges what its policy allows.
func (b *Broker) OnSynced(logName string, upTo uint64, err error) {
	cl := b.store.CommitLog()
	if logName != cl.Name() {
		b.checkpointSynced(logName, err)
		return
	}
	a := &b.acks
	a.syncInFlight = false
	if a.discardSync {
		// A truncation came between this sync's request and its completion: what it made
		// durable at the indexes now reused is unknown. Sync again.
		a.discardSync = false
		b.requestSync()
		return
	}
	if err != nil && b.cfg.Bugs.Has(bugs.SlaveSyncedOnFsyncError) && b.slave() != nil {
		b.log.Error("commit log fsync failed; planted SlaveSyncedOnFsyncError counts it synced", "upTo", upTo, "err", err)
		err = nil // the planted bug
	}
	if errors.Is(err, node.ErrSyncLost) {
		b.syncLost(logName, err)
		return
	}
	if err != nil {
		b.syncFailed(upTo, err)
		return
	}
	a.durable = max(a.durable, upTo)
	b.syncSucceeded()
	if !b.ready {
		b.ready = true
		b.log.Info("broker ready", "addr", b.cfg.Addr, "commitLogLast", cl.LastIndex(), "flush", b.cfg.FlushMode.String())
		b.registerAll()
		b.env.SetTimer(b.cfg.RegisterInterval, registerTimer{})
		b.role.ready(b)
	}
	b.delayDurable(upTo)
	b.role.synced(b)
	if a.syncWanted || len(a.pending) > 0 {
		a.syncWanted = false
		b.requestSync()
	}
}

// syncFailed handles a failed commit-log fsync. It leaves the state of the written pages
// unknown: the sends that were waiting stay unanswered until a later sync succeeds (never
// FLUSH_DISK_TIMEOUT, which tells a client its message was stored), new sends are refused
// meanwhile (diskfull.go), and the sync is retried; nothing unsynced is ever confirmed.
func (b *Broker) syncFailed(upTo uint64, err error) {
	b.noteSyncFailed(upTo, err)
	b.env.SetTimer(syncRetryDelay(err), retrySyncTimer{})
}

// settleAcks acknowledges what the policy allows now.
func (b *Broker) settleAcks() {
	if upTo, ok := b.acks.policy.ackable(b.acks.durable); ok {
		b.acknowledgeTo(upTo)
	}
}

// acknowledgeTo acknowledges up to upTo if that confirms more than is (and no more than the
// log holds).
func (b *Broker) acknowledgeTo(upTo uint64) {
	if upTo > b.store.Confirmed() && upTo <= b.store.CommitLog().LastIndex() {
		b.acknowledge(upTo)
	}
}

// acknowledge makes the writes up to upTo visible and answers the sends waiting for them.
func (b *Broker) acknowledge(upTo uint64) {
	if upTo > b.store.Confirmed() {
		b.store.Confirm(upTo)
		b.observe(Confirmed{Epoch: b.epoch(), Index: upTo})
	}
	woken := map[queueKey]bool{}
	for _, p := range b.acks.take(upTo) {
		if p.resp != nil && !b.cfg.Bugs.Has(bugs.AckBeforeSync) {
			b.env.Send(p.conn, p.resp)
			b.observe(Acknowledged{Epoch: b.epoch(), Index: p.index})
		}
		woken[p.queue] = true
	}
	for _, k := range sortedQueueKeys(woken) {
		b.messagesVisible(k)
	}
}

// requestSync asks for an fsync of the commit log, or notes that another is wanted once the
// one in flight completes (group commit).
func (b *Broker) requestSync() {
	a := &b.acks
	if b.fatal != nil {
		return // the disk cannot sync again (syncLost)
	}
	if a.syncInFlight {
		a.syncWanted = true
		return
	}
	cl := b.store.CommitLog()
	if b.ready && cl.LastIndex() <= a.durable {
		return // nothing new; before ready, the startup sync must complete even on an empty log
	}
	a.syncInFlight = true
	b.env.Sync(cl, cl.LastIndex())
}

// queueWrite hands the write just appended at index (to queue k) to the pipeline: in
// async-flush mode it is acknowledged at once; otherwise it waits for the fsync that covers
// it, and for the policy.
func (b *Broker) queueWrite(index uint64, k queueKey) {
	b.acks.add(pendingAck{index: index, queue: k})
	if b.cfg.FlushMode == AsyncFlush {
		b.acknowledge(index)
		return
	}
	b.requestSync()
}

// answerOnAck returns resp, complete, to be sent now (async-flush mode, or the planted bug
// bugs.AckBeforeSync), or queues it to go out on c when the write at index, the last put, is
// acknowledged (nil is returned).
func (b *Broker) answerOnAck(c node.ConnID, index uint64, resp *codec.Command) *codec.Command {
	if b.cfg.FlushMode == AsyncFlush {
		return resp
	}
	b.acks.answerAt(index, c, resp)
	if b.cfg.Bugs.Has(bugs.AckBeforeSync) {
		return resp
	}
	return nil
}
