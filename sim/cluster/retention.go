package cluster

// Retention in the simulator (Config.DiskCapacity, Config.Retention): the brokers run
// RocketMQ's retention and disk guard (brokernode's retention.go and diskfull.go) on the
// simulated clock against a simulated disk with a capacity and segments, and this checker
// judges every deletion they report (brokernode.Retained):
//
//   - a message may vanish only by retention: each removed message, or one after it in the
//     commit log (RocketMQ judges a segment by its newest message), was stored (by its
//     broker's clock, the store time in its record) more than FileReservedTime before the
//     deletion, or the deletion was forced by disk pressure (the broker found the simulated
//     disk more than DiskMaxUsedSpaceRatio percent full at the check);
//   - so a message some consumer group had not yet passed is never removed while the disk
//     had room unless it had expired (RocketMQ's rule: retention does not wait for consumers;
//     a consumer left below the new min offset is moved forward with PULL_OFFSET_MOVED).
//
// A legal deletion's messages are excused from the drain's loss checks (retainedIDs) and
// their offsets are skipped by the drain (History.Retained); everything else still holds:
// no other acknowledged or observed message lost, one offset per message, order, and pulls
// answered PULL_OFFSET_MOVED tell the log model nothing (recorded Unknown). What it does not
// check: that retention removes everything it may (liveness of deletion), nor that a master
// keeps what its slaves have not fetched (a slave's later loss shows as a lost message).
//
// It learns each message's store time and position when its writer appends it
// (brokernode.Wrote: the record is read back from the writer's store) and forgets it when
// retention removes it, so its memory is bounded by what the brokers hold.

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
)

// KindRetainedUnexpired: retention removed a message that had not expired while the disk had
// room.
const KindRetainedUnexpired = "retained unexpired message"

// retentionOn reports whether the run gives the brokers a finite disk or a retention time.
func (c Config) retentionOn() bool { return c.DiskCapacity > 0 || c.Retention > 0 }

// plantRetention is the brokers' FileReservedTime in the runs of a planted bug that lives in
// retention (Plant.Retention): longer than a default run, so nothing may expire in it.
const plantRetention = 10 * time.Minute

// segmentBytes is the simulated commit log's segment size: a thirty-second of the disk
// (RocketMQ's 1 GiB segments on a disk of tens of GiB), 64 KiB without a capacity.
func (c Config) segmentBytes() uint64 {
	if c.DiskCapacity > 0 {
		return max(c.DiskCapacity/32, 4096)
	}
	return 64 << 10
}

// retentionConfig sets a broker's retention from the run's config (nothing without it, so
// runs without the retention flags keep their traces).
func (r *run) retentionConfig(b *brokernode.Config) {
	if !r.cfg.retentionOn() {
		return
	}
	if r.cfg.Retention > 0 {
		b.FileReservedTime = r.cfg.Retention
	}
	b.DeleteWhen = r.cfg.deleteWhen()
}

// deleteWhen is Config.DeleteWhen, every hour when unset.
func (c Config) deleteWhen() []int {
	if c.DeleteWhen != nil {
		return c.DeleteWhen
	}
	hours := make([]int, 24)
	for h := range hours {
		hours[h] = h
	}
	return hours
}

// retentionDisk gives a broker's simulated disk its capacity and segments.
func (r *run) retentionDisk(n *sim.Node) {
	if !r.cfg.retentionOn() {
		return
	}
	n.Disk.SetCapacity(r.cfg.DiskCapacity)
	n.Disk.SetSegmentBytes(r.cfg.segmentBytes())
}

// retainedRec is what the checker knows of one stored message.
type retainedRec struct {
	id      string // its id in the history (historyID; "" for a record without a UNIQ_KEY)
	queue   linearizability.QueueKey
	offset  int64
	storeMs int64 // the broker's store time
	size    uint64
}

// retentionCheck is the checker's state.
type retentionCheck struct {
	// recs, by log (the single broker's, or a group's), by commit-log index: the messages
	// written there and not yet removed; in a group more than one when a deposed master wrote
	// at an index its successor also wrote at (one of them is then truncated, and which one
	// a replica held when it removed the index is not known here).
	recs map[string]map[uint64][]retainedRec
	// retained is the ids legal deletions removed.
	retained map[string]bool
	// removedTo, by log, is one past the highest commit-log index a deletion removed (each
	// judged here, so an index below it missing from every replica was retention's).
	removedTo map[string]uint64
	// lastPull is, by client and queue, the index in the history of the last pull (addPull).
	lastPull map[pullChain]int
}

// onRetentionEvent is the observer's part for retention: log names the commit log (the
// broker's name: a group's replicas share it), n the reporting broker's node.
func (r *run) onRetentionEvent(log string, n *sim.Node, e brokernode.Event) {
	if !r.cfg.retentionOn() {
		return
	}
	rc := &r.retention
	if rc.recs == nil {
		rc.recs, rc.retained, rc.removedTo = map[string]map[uint64][]retainedRec{}, map[string]bool{}, map[string]uint64{}
	}
	if rc.recs[log] == nil {
		rc.recs[log] = map[uint64][]retainedRec{}
	}
	b, _ := n.Handler().(*brokernode.Broker)
	switch e := e.(type) {
	case brokernode.Wrote:
		if b == nil {
			return
		}
		recs, err := b.Store().ReadRecords(e.Index, e.Index, 1<<30)
		if err != nil || len(recs) != 1 {
			r.violate("retention", "%s: the entry just written at index %d cannot be read back: %v", n.Addr, e.Index, err)
			return
		}
		m, _, err := codec.DecodeRecordUnchecked(recs[0])
		if err != nil {
			return // a flipped header: the bit-flip checks judge it
		}
		rec := retainedRec{id: historyID(m.Topic, codec.Property(m.Properties, codec.PropUniqKey), m.ReconsumeTimes),
			queue:  linearizability.QueueKey{Broker: log, Topic: m.Topic, QueueID: m.QueueID},
			offset: m.QueueOffset, storeMs: m.StoreTimestamp, size: uint64(len(recs[0]))}
		if r.gr == nil {
			rc.recs[log][e.Index] = []retainedRec{rec} // one writer: a rewrite replaces what a crash lost
			return
		}
		rc.recs[log][e.Index] = append(rc.recs[log][e.Index], rec)
	case brokernode.Retained:
		r.report.RetentionRuns++
		r.report.SegmentsDeleted += e.Segments
		if e.Forced {
			r.report.ForcedRuns++
		}
		r.judgeRetained(log, n, e)
	case brokernode.OffsetMoved:
		r.report.OffsetsMoved++
	case brokernode.SendRefused:
		r.report.SendsRefusedSpace++
	}
}

// judgeRetained checks one deletion and records what it legally removed.
func (r *run) judgeRetained(log string, n *sim.Node, e brokernode.Retained) {
	rc := &r.retention
	recs := rc.recs[log]
	rc.removedTo[log] = max(rc.removedTo[log], e.To)
	// Disk pressure as the broker measured it at the check (the simulated disk's Space): more
	// than DiskMaxUsedSpaceRatio percent full.
	pressure := e.Forced && e.UsedPercent > brokernode.DefaultDiskMaxUsedSpaceRatio
	nowMs := sim.Epoch.Add(r.w.Now() + n.ClockOffset()).UnixMilli()
	deadline := nowMs - r.fileReservedTime().Milliseconds()
	// lastExpired is the highest index from From on, up to the end of what the log holds, of a
	// message stored before the deadline: a message before it may go, as RocketMQ judges a
	// segment by its newest message (and the broker's search for the first unexpired message
	// lands around a step back of its clock).
	// A deposed master's record at an index counts as well as its successor's (either may be
	// the one the replica held).
	lastExpired := uint64(0)
	for j := e.From; ; j++ {
		cands, ok := recs[j]
		if !ok && j >= e.To {
			break
		}
		for _, rec := range cands {
			if rec.storeMs < deadline {
				lastExpired = j
			}
		}
	}
	bad := 0
	for i := e.From; i < e.To; i++ {
		cands, ok := recs[i]
		if !ok {
			continue // written before a crash lost it, or a broker's own entry without a record here
		}
		delete(recs, i)
		if pressure || i <= lastExpired && lastExpired != 0 {
			for _, rec := range cands {
				if rec.id != "" {
					rc.retained[rec.id] = true
					r.h.AddRetained(rec.queue, rec.offset+1)
				}
			}
			r.report.RetainedMsgs++
			continue
		}
		rec := cands[len(cands)-1]
		if bad++; bad <= 3 {
			r.violate(KindRetainedUnexpired, "%s removed %s (%s offset %d, index %d) stored at %v, %v before the deletion at %v (fileReservedTime %v); forced=%v with the disk %d%% full",
				n.Addr, rec.id, rec.queue, rec.offset, i, time.UnixMilli(rec.storeMs).UTC().Format(time.RFC3339Nano),
				time.Duration(nowMs-rec.storeMs)*time.Millisecond, time.UnixMilli(nowMs).UTC().Format(time.RFC3339Nano),
				r.fileReservedTime(), e.Forced, e.UsedPercent)
		}
	}
	if bad > 3 {
		r.violate(KindRetainedUnexpired, "%s: %d more unexpired messages removed at indexes %d..%d", n.Addr, bad-3, e.From, e.To-1)
	}
}

// pullChain is one client's pulls of one queue (addPull).
type pullChain struct {
	client int
	queue  linearizability.QueueKey
}

// addPull records a pull in the history. In a long run with retention and sync flush, a pull
// answered OK and empty at the same offset as the same client's previous pull of the queue,
// also OK and empty, replaces it: the queue's log in the model only grows (no crash may cut
// it), so the later of the two, which began after the earlier returned, holds whenever the
// earlier fails, and the earlier adds nothing to the check. A consumer idling on a quiet
// queue would otherwise grow the history by a pull per poll for the whole run.
func (r *run) addPull(op linearizability.PullOp) {
	if !r.cfg.retentionOn() || r.cfg.FlushMode != brokernode.SyncFlush {
		r.h.AddPull(op)
		return
	}
	if r.retention.lastPull == nil {
		r.retention.lastPull = map[pullChain]int{}
	}
	k := pullChain{op.Client, op.Queue}
	empty := func(p linearizability.PullOp) bool { return p.Outcome == linearizability.OK && len(p.Msgs) == 0 }
	if i, ok := r.retention.lastPull[k]; ok && empty(op) && empty(r.h.Pulls[i]) && r.h.Pulls[i].Offset == op.Offset {
		r.h.Pulls[i] = op
		r.report.PullsCompacted++
		return
	}
	r.retention.lastPull[k] = len(r.h.Pulls)
	r.h.AddPull(op)
}

// fileReservedTime is the brokers' FileReservedTime.
func (r *run) fileReservedTime() time.Duration {
	if r.cfg.Retention > 0 {
		return r.cfg.Retention
	}
	return brokernode.DefaultFileReservedTime
}

// retentionSummary is the summary line's part for runs with retention (empty without).
func (rep *Report) retentionSummary() string {
	if !rep.Retention {
		return ""
	}
	return fmt.Sprintf(" retention=runs:%d,forced:%d,segments-deleted:%d,msgs-deleted:%d sends-refused-for-space=%d consumers-moved=%d pulls-compacted=%d",
		rep.RetentionRuns, rep.ForcedRuns, rep.SegmentsDeleted, rep.RetainedMsgs, rep.SendsRefusedSpace, rep.OffsetsMoved, rep.PullsCompacted)
}
