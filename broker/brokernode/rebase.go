package brokernode

import (
	"fmt"

	"github.com/sluicemq/sluice/broker/replication"
)

// A slave below its master's first index. Retention on a master removes old commit-log
// segments; it keeps what the slaves it hears from have not fetched (retentionKeepFrom), but a
// slave that was away long enough, a new slave, or one whose own retention removed the index
// where its log and its master's part ways, may find that the master no longer holds the next
// entry it needs. It cannot continue its log, and fetching below the master's first index
// would be refused for ever. As a RocketMQ slave does, it starts over from the master's start
// instead: the master's handshake answer says where its log starts, and the slave drops its
// whole log and restarts it there (store.Rebase), its consume queues' min offsets moving up to
// the master's as their records arrive, then catches up as usual.
//
// It never claims what it lacks: after the rebase its log holds nothing below the restart
// index, which is also below everything the master holds, so what it reports synced (the
// restart index minus one at first) covers only entries that no replica of the group serves
// any more; it joins the in-sync set only once it holds everything the master acknowledged, by
// the usual rule (replication.InSync.Wanted).
//
// The epoch table follows the log, crash-safely: it is emptied (and saved) before the store
// rebases, so that a crash in between leaves a table that claims nothing (the next handshake
// then finds nothing shared and rebases again); once the log restarts at index r, the table
// becomes the master's entries that start before r, which describe the records to come.

// Rebased: a slave dropped its whole commit log (Dropped entries) and restarted it at First,
// its master's first index (or where its log and its master's part ways, if later).
type Rebased struct {
	Epoch   int64
	First   uint64
	Dropped uint64
}

func (Rebased) event() {}

// rebaseTarget says where a slave whose log ends at last, whose own first index is first, and
// which shares its log with the master up to p, must restart its log, if it must: when the
// truncation to p would cut below its own first index, or when what it holds after it ends
// below the master's first index masterFirst.
func rebaseTarget(first, last, p, masterFirst uint64) (uint64, bool) {
	next := min(p, last) + 1
	if p+1 < first || next < masterFirst {
		return max(p+1, masterFirst), true
	}
	return 0, false
}

// rebaseReplica restarts the slave's log at target, adopting mt, its master's epoch table, for
// what precedes it.
func (b *Broker) rebaseReplica(target uint64, mt *replication.Table) error {
	g := b.repl
	cl := b.store.CommitLog()
	first, last := cl.FirstIndex(), cl.LastIndex()
	empty, _ := replication.NewTable(nil)
	if err := empty.Save(b.env.Disk()); err != nil {
		return fmt.Errorf("empty the epoch table before the rebase: %w", err)
	}
	g.table = empty
	if err := b.store.Rebase(target); err != nil {
		return err
	}
	b.acks.rebased(target)
	b.delay.unsynced = b.delay.unsynced[:0]
	b.ckptPending = nil // the store abandoned the checkpoint in flight
	adopted, _ := replication.NewTable(mt.Entries())
	adopted.TruncateAfter(target - 1)
	if err := adopted.Save(b.env.Disk()); err != nil {
		return fmt.Errorf("save the master's epoch table after the rebase: %w", err)
	}
	g.table = adopted
	dropped := uint64(0)
	if last >= first {
		dropped = last - first + 1
	}
	b.log.Warn("the master no longer holds the entries this replica lacks: dropped its log and restarted it at the master's first index",
		"master", g.masterAddr, "first", target, "was", fmt.Sprintf("%d..%d", first, last), "dropped", dropped)
	b.observe(Rebased{Epoch: g.epoch, First: target, Dropped: dropped})
	return nil
}

// rebased forgets the writes of a log that restarted empty at first: it is durable, and holds
// nothing, up to first-1.
func (a *ackPipeline) rebased(first uint64) {
	a.pending = a.pending[:0]
	a.durable = first - 1
	if a.syncInFlight {
		a.discardSync = true
	}
}
