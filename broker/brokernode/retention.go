package brokernode

import (
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store"
)

// Retention, RocketMQ's rules (DefaultMessageStore.CleanCommitLogService): commit-log segments
// whose messages are all older than Config.FileReservedTime are deleted at the hours listed in
// Config.DeleteWhen, and at any hour once the data directory's file system is more than
// Config.DiskMaxUsedSpaceRatio percent full, when the oldest segments go whatever their age.
// The store (store.Retain) keeps what is still needed; the broker adds what only it knows: the
// entries a slave of its group has not fetched, the delayed messages not yet due and the
// transaction halves not yet resolved.
//
// The check runs with the checkpoint timer (no timer of its own, so a broker whose retention
// never triggers delivers exactly the events it did before). store.Retain's work on the event
// loop is binary searches and in-memory truncations: the production disk removes and rewrites
// segment files on its next sync, on the disk worker (diskfile.Log.TruncateFront).

// RocketMQ's defaults.
const (
	DefaultFileReservedTime      = 72 * time.Hour
	DefaultDiskMaxUsedSpaceRatio = 75
	DefaultDiskFullRatio         = 90
	// maxForcedRounds bounds the segments one check removes under disk pressure (RocketMQ's
	// deleteFileBatchMax is 10 files a run).
	maxForcedRounds = 10
)

// DefaultDeleteWhen is RocketMQ's deleteWhen: 04, the hour of least traffic.
func DefaultDeleteWhen() []int { return []int{4} }

// RetentionStats counts what retention and the disk guard did since the broker started.
type RetentionStats struct {
	Runs           uint64 // checks that removed something
	RemovedEntries uint64 // commit-log entries removed
	ForcedRuns     uint64 // removals forced by disk pressure
	OffsetsMoved   uint64 // pulls below a queue's min offset moved to it (pull.go)
	SendsRefused   uint64 // sends refused because the disk is full (diskfull.go)
}

// RetentionStats returns the counters.
func (b *Broker) RetentionStats() RetentionStats { return b.retention.stats }

// retentionState is the broker's retention and disk-guard state.
type retentionState struct {
	stats RetentionStats
	full  diskFullState // diskfull.go
}

// diskSpace returns the data disk's use in percent; ok false when the disk cannot tell.
func (b *Broker) diskSpace() (percent int, ok bool) {
	sr, is := b.env.Disk().(node.SpaceReporter)
	if !is {
		return 0, false
	}
	used, capacity, err := sr.Space()
	if err != nil {
		b.retention.full.report(b, "disk space query failed", err)
		return 0, false
	}
	if capacity == 0 {
		return 0, false
	}
	return int(used * 100 / capacity), true
}

// checkRetention is the periodic check: the disk guard first, then retention if it is due.
func (b *Broker) checkRetention() {
	percent, known := b.diskSpace()
	b.updateDiskFull(percent, known)
	if !b.ready || b.store.Failed() {
		return
	}
	force := known && b.cfg.DiskMaxUsedSpaceRatio > 0 && percent > b.cfg.DiskMaxUsedSpaceRatio
	atHour := slices.Contains(b.cfg.DeleteWhen, b.env.Now().Hour())
	if !force && (!atHour || b.cfg.FileReservedTime <= 0) {
		return
	}
	p := store.RetentionPolicy{
		KeepFrom: b.retentionKeepFrom(),
		Protected: []store.ProtectedQueues{
			{Group: delayProgressGroup, Topic: ScheduleTopic},
			{Group: txnGroup, Topic: HalfTopic},
			{Group: txnGroup, Topic: OpTopic},
		},
		Force: force,
	}
	if b.cfg.FileReservedTime > 0 {
		p.ExpireBeforeMs = b.env.Now().Add(-b.cfg.FileReservedTime).UnixMilli()
		if b.cfg.Bugs.Has(bugs.RetainUnexpired) {
			p.ExpireBeforeMs = b.env.Now().Add(b.cfg.FileReservedTime).UnixMilli()
		}
	}
	rounds := 1
	if force {
		rounds = maxForcedRounds
	}
	for range rounds {
		res, err := b.store.Retain(p)
		if err != nil {
			b.log.Error("retention failed", "err", err)
			return
		}
		if res.Removed() == 0 {
			return
		}
		b.retention.stats.Runs++
		b.retention.stats.RemovedEntries += res.Removed()
		if force {
			b.retention.stats.ForcedRuns++
		}
		b.log.Info("retention removed old messages", "fromIndex", res.From, "toIndex", res.To-1,
			"segments", res.Segments, "forced", force, "diskUsedPercent", percent)
		b.observe(Retained{Epoch: b.epoch(), From: res.From, To: res.To, Segments: res.Segments, Forced: force,
			UsedPercent: percent, ExpireBeforeMs: p.ExpireBeforeMs})
	}
}

// retentionKeepFrom is the lowest commit-log index a slave of the group still needs: a master
// keeps everything above what its live slaves reported synced: the slaves of its in-sync set,
// and every slave that fetched within liveSlaveWindow (one catching up, outside the set). A
// slave not heard from for longer is not waited for: a disk must not fill up for a replica
// that may never come back; when it does, it restarts its log at this master's first index
// (rebase.go). 0: no bound.
func (b *Broker) retentionKeepFrom() uint64 {
	m := b.master()
	if m == nil || m.inSync == nil {
		return 0
	}
	set, _ := m.inSync.Confirmed()
	set = append(set, m.inSync.HeardSince(b.env.Now().Add(-b.liveSlaveWindow()))...)
	keep := uint64(0)
	for _, id := range set {
		if id == b.cfg.BrokerID {
			continue
		}
		need := m.inSync.Synced(id) + 1
		if keep == 0 || need < keep {
			keep = need
		}
	}
	return keep
}

// liveSlaveWindow is how recently a slave must have fetched for retention to keep what it has
// not fetched yet: a slave following its master fetches at least every ReplicaFetchWait (a
// parked fetch is answered then) and gives up on one unanswered for ControllerTimeout more;
// twice that rides out a reconnection.
func (b *Broker) liveSlaveWindow() time.Duration {
	return 2 * (b.cfg.ReplicaFetchWait + b.cfg.ControllerTimeout)
}

// noteOffsetMoved logs and counts a pull moved up to a queue's min offset.
func (b *Broker) noteOffsetMoved(group, topic string, queueID int32, from, to int64) {
	b.retention.stats.OffsetsMoved++
	b.observe(OffsetMoved{Group: group, Topic: topic, QueueID: queueID, From: from, To: to})
	b.log.Warn("consumer behind the queue's oldest message moved forward", "group", group, "topic", topic,
		"queue", queueID, "from", from, "to", to, "skipped", to-from)
}
