package cluster

// What ASYNC_FLUSH promises, told to the checker. In async-flush mode the broker acknowledges
// a write once it is in its commit log and syncs the log every AsyncFlushInterval, so a crash
// may lose the unsynced tail, and new messages then reuse the lost offsets. The promise is a
// bound: a write appended more than the flush interval plus a slack (and the broker's stalls)
// before a crash was synced and survives it. The harness records each crash of the broker as
// it strikes, with that loss window, in the history (linearizability.Crash); the log model and
// the invariants accept losses inside a window and nothing else, and the report counts them
// (LostUnflushed).
//
// The window is narrowed further by what the disk did: a sync of the commit log that completed
// before the crash made everything the log held when it was asked for durable, whatever the
// promise would allow, and a log with nothing unsynced as the broker crashes loses nothing
// (sim.Node.OnDurable; the disk's word, not the broker's). The crash carries the latest such
// instant (Crash.Synced). So the window is the shorter of the two, and it is wide only when the broker really went without a sync:
// a broker that syncs too seldom still loses more than the promise allows, and one that loses
// what its disk made durable loses what no window covers.

import (
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/store"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
)

// maxFsync is the simulated disks' fsync latency bound in the single topology.
const maxFsync = 3 * time.Millisecond

// brokerCrash is one crash of the broker: when it struck, and how much of the commit log its
// disk had made durable by then (everything the log held at synced; 0: nothing known).
type brokerCrash struct{ at, synced time.Duration }

// watchCrashes notes when each planned crash of the broker strikes (a crash of a node already
// down is skipped), and how far its disk had synced the commit log by then. Call it after the
// plan is scheduled: a check scheduled for the same instant then runs right after the fault.
func (r *run) watchCrashes(broker *sim.Node) {
	broker.OnDurable = func(log string, through time.Duration) {
		if log == store.CommitLogName {
			r.syncedThrough = max(r.syncedThrough, through)
		}
	}
	seen := 0
	for _, f := range r.plan {
		if f.Kind != faults.Crash || f.Node != BrokerAddr && !slices.Contains(f.Nodes, BrokerAddr) {
			continue
		}
		r.w.At(f.At, func() {
			if broker.Crashes > seen {
				seen = broker.Crashes
				r.crashes = append(r.crashes, brokerCrash{at: r.w.Now(), synced: r.syncedThrough})
			}
		})
	}
}

// flushSlack is what the bound adds to the flush interval when the broker's disk and process
// run normally: the timer's sync may have to wait for one already in flight, then takes as long
// again (each at most the simulated disks' fsync latency bound), and a millisecond for the
// event that acknowledged the write.
func (r *run) flushSlack() time.Duration { return 2*maxFsync + time.Millisecond }

// lossWindow is how long before a crash at c an appended write may still be unsynced, as the
// promise bounds it: the flush interval and its slack, plus every stall of the broker (paused,
// its disk failing or slow: each can hold up a sync; a failed sync is retried after 100 ms)
// that overlaps the window, widened until no further stall reaches into it. Clock faults do
// not count: the flush timer and the fsyncs run on durations, never on the broker's clock.
func (r *run) lossWindow(c time.Duration) time.Duration {
	w := r.flushInterval() + r.flushSlack()
	for {
		grown := r.flushInterval() + r.flushSlack()
		for _, f := range r.plan {
			if f.Kind != faults.Crash && !slices.Contains(faults.ClockKinds, f.Kind) && stallsBroker(f) && f.At <= c && f.At+f.Duration >= c-w {
				grown += f.Duration + f.Delta.Abs() + 100*time.Millisecond
			}
		}
		if grown <= w {
			return w
		}
		w = grown
	}
}

// flushInterval is the broker's AsyncFlushInterval, as configured for the run.
func (r *run) flushInterval() time.Duration {
	if r.asyncFlushInterval > 0 {
		return r.asyncFlushInterval
	}
	return brokernode.DefaultConfig().AsyncFlushInterval
}

// crashHistory records the crashes in the history when acknowledged writes may be unsynced
// (async flush; in sync-flush mode everything acknowledged or visible is synced, and a crash
// may lose nothing).
func (r *run) crashHistory() {
	if r.cfg.FlushMode != brokernode.AsyncFlush {
		return
	}
	r.h.StoreTimeSlack = int64(time.Millisecond)
	r.h.BrokerClock = brokerClock(r.plan, r.healedAt)
	for _, c := range r.crashes {
		r.h.Crashes = append(r.h.Crashes, linearizability.Crash{
			At: int64(c.at), LossFrom: int64(c.at - r.lossWindow(c.at)), Synced: int64(c.synced)})
	}
}

// mayLose reports whether a record the broker appended between call and ret may have been lost
// at a crash (always false in sync-flush mode). Valid once crashHistory has run.
func (r *run) mayLose(call, ret time.Duration) bool { return r.h.MayLose(int64(call), int64(ret)) }
