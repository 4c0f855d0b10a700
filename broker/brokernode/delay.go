package brokernode

// Delay levels, as RocketMQ 4.x's ScheduleMessageService does them. A message written with
// property DELAY=n (1..levels; larger is clamped to the last level) is stored in
// SCHEDULE_TOPIC_XXXX queue n-1 with REAL_TOPIC and REAL_QID naming where it belongs, so
// consumers of the real topic cannot see it. Each level is a FIFO (one delay per level, store
// timestamps in append order), so a level only ever waits on its head: when the head is due
// (store timestamp + the level's delay) it is re-put to the real topic and queue without DELAY,
// and the level moves on.
//
// Progress: each level's next schedule-queue offset is kept in memory (what has been re-put)
// and in the store's offset table under a reserved group (what is known delivered). The
// persisted value advances only once the commit log is durable past the re-put message, so a
// crash can make a delayed message be delivered twice, never lost. After a restart every level
// resumes from its persisted progress; due messages go at once, the rest when due.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// ScheduleTopic holds delayed messages, queue level-1 for each delay level (Java's name).
const ScheduleTopic = "SCHEDULE_TOPIC_XXXX"

// delayProgressGroup is the reserved offset-table group under which each level's delivery
// progress (the next schedule-queue offset to deliver) is persisted, with topic ScheduleTopic
// and queue level-1.
const delayProgressGroup = "%SCHEDULE_PROGRESS%"

// DefaultDelayLevels is RocketMQ's default messageDelayLevel table.
const DefaultDelayLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// maxRePutsPerTurn bounds the messages one level re-puts per event, so a backlog (after a
// long downtime) cannot hold the event loop; the level continues on a zero timer.
const maxRePutsPerTurn = 64

// delayRetryInterval is how long a level waits after a failed read or write before trying
// again.
const delayRetryInterval = time.Second

// ParseDelayLevels parses a delay table: space-separated durations, level 1 first, each
// either Java's form (an integer with unit s, m, h or d) or a Go duration ("500ms", "1.5s").
// Every delay must be positive; there must be 1..store.MaxQueueNums of them.
func ParseDelayLevels(s string) ([]time.Duration, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("delay levels %q: want at least one duration, e.g. %q", s, DefaultDelayLevels)
	}
	if len(fields) > store.MaxQueueNums {
		return nil, fmt.Errorf("delay levels: %d levels, at most %d allowed", len(fields), store.MaxQueueNums)
	}
	out := make([]time.Duration, 0, len(fields))
	for i, f := range fields {
		var d time.Duration
		var err error
		if days, ok := strings.CutSuffix(f, "d"); ok {
			var n int64
			n, err = strconv.ParseInt(days, 10, 32)
			d = time.Duration(n) * 24 * time.Hour
		} else {
			d, err = time.ParseDuration(f)
		}
		if err != nil {
			return nil, fmt.Errorf("delay level %d %q: not a duration (want e.g. 1s, 500ms, 2m, 1h, 1d)", i+1, f)
		}
		if d <= 0 {
			return nil, fmt.Errorf("delay level %d %q: must be positive", i+1, f)
		}
		out = append(out, d)
	}
	return out, nil
}

// FormatDelayLevels writes a delay table in the form ParseDelayLevels reads.
func FormatDelayLevels(levels []time.Duration) string {
	parts := make([]string, len(levels))
	for i, d := range levels {
		parts[i] = d.String()
	}
	return strings.Join(parts, " ")
}

// delayLevelTimer fires when a level's head may be due (or to continue a backlog).
type delayLevelTimer struct{ queueID int32 }

// delayLevel is one schedule queue's delivery state.
type delayLevel struct {
	queueID int32
	// next is the next schedule-queue offset to re-put; everything before it has been re-put
	// (not necessarily durably: see delayState.unsynced).
	next  int64
	armed bool // a delayLevelTimer is set
	timer node.TimerID
}

// delayProgress is progress waiting for durability: once the commit log is durable up to
// index, level queueID has delivered everything before next.
type delayProgress struct {
	index   uint64
	queueID int32
	next    int64
}

// delayState is the broker's delay-level machinery.
type delayState struct {
	table []time.Duration
	// levels has one entry per schedule queue: len(table), or more if the schedule topic was
	// created under a longer table (those extra levels use the last delay).
	levels []*delayLevel
	// unsynced is progress in commit-log order, released by OnSynced.
	unsynced []delayProgress
}

// delayOf is the delay of schedule queue q.
func (d *delayState) delayOf(q int32) time.Duration {
	return d.table[min(int(q), len(d.table)-1)]
}

// initDelay loads each level's persisted progress. It runs in New, before the broker is ready;
// delivery starts in startDelay.
func (b *Broker) initDelay() {
	b.delay = &delayState{table: b.cfg.DelayLevels}
	n := int32(len(b.cfg.DelayLevels))
	if tc, ok := b.store.Topic(ScheduleTopic); ok {
		n = max(n, tc.WriteQueueNums, tc.ReadQueueNums)
	}
	for q := range n {
		lv := &delayLevel{queueID: q}
		b.loadDelayProgress(lv)
		b.delay.levels = append(b.delay.levels, lv)
	}
}

// loadDelayProgress sets the level's next offset from the store, kept inside its queue.
func (b *Broker) loadDelayProgress(lv *delayLevel) {
	q := lv.queueID
	lo, hi := b.store.MinOffset(ScheduleTopic, q), b.store.MaxOffset(ScheduleTopic, q)
	lv.next = 0
	if off, ok := b.store.QueryOffset(delayProgressGroup, ScheduleTopic, q); ok {
		lv.next = off
	}
	if lv.next < lo || lv.next > hi {
		// Above hi only if the commit log lost messages the progress had covered (a disk
		// fault); below lo only if old messages were removed. Either way resume in range.
		b.log.Warn("delay level progress outside its schedule queue; clamped",
			"level", q+1, "progress", lv.next, "min", lo, "max", hi)
		lv.next = min(max(lv.next, lo), hi)
	}
}

// reloadDelayProgress reloads every level's progress from the store when a replica of a group
// becomes master: as a slave it copied the master's progress (metasync.go), and what it
// remembers from an earlier mastership is stale, except its own re-puts still waiting for
// their fsync (they survived the truncation, so they are in the log the group shares). Levels
// the schedule topic gained meanwhile are added.
func (b *Broker) reloadDelayProgress() {
	n := int32(len(b.delay.levels))
	if tc, ok := b.store.Topic(ScheduleTopic); ok {
		n = max(n, tc.WriteQueueNums, tc.ReadQueueNums)
	}
	for q := int32(len(b.delay.levels)); q < n; q++ {
		b.delay.levels = append(b.delay.levels, &delayLevel{queueID: q})
	}
	for _, lv := range b.delay.levels {
		b.loadDelayProgress(lv)
	}
	for _, p := range b.delay.unsynced {
		lv := b.delay.levels[p.queueID]
		lv.next = max(lv.next, p.next)
	}
}

// startDelay starts every level once the broker is ready.
func (b *Broker) startDelay() {
	for _, lv := range b.delay.levels {
		b.kickDelayLevel(lv)
	}
}

// kickDelayLevel makes an idle level look at its queue on the next turn of the event loop. A
// level with a timer set needs no kick: its head is not due yet, and everything appended
// behind the head of a level is due later.
func (b *Broker) kickDelayLevel(lv *delayLevel) {
	if lv.armed {
		return
	}
	lv.armed = true
	lv.timer = b.env.SetTimer(0, delayLevelTimer{queueID: lv.queueID})
}

// delayQueueGrew is told that schedule queue q has new readable messages.
func (b *Broker) delayQueueGrew(q int32) {
	if !b.ready || int(q) >= len(b.delay.levels) {
		return
	}
	b.kickDelayLevel(b.delay.levels[q])
}

func (b *Broker) onDelayTimer(t delayLevelTimer) {
	if int(t.queueID) >= len(b.delay.levels) {
		panic(fmt.Sprintf("brokernode: delay timer for schedule queue %d, only %d levels", t.queueID, len(b.delay.levels)))
	}
	lv := b.delay.levels[t.queueID]
	lv.armed = false
	b.deliverDue(lv)
}

func (b *Broker) armDelayLevel(lv *delayLevel, d time.Duration) {
	lv.armed = true
	lv.timer = b.env.SetTimer(d, delayLevelTimer{queueID: lv.queueID})
}

// deliverDue re-puts the level's due messages, in order, then sets a timer for the first one
// not yet due (or goes idle when the queue is drained).
func (b *Broker) deliverDue(lv *delayLevel) {
	if !b.role.writable(b) {
		return // a replica that is not the master; becoming master starts the levels again
	}
	for range maxRePutsPerTurn {
		if lv.next >= b.store.MaxOffset(ScheduleTopic, lv.queueID) {
			return // drained: delayQueueGrew kicks it again
		}
		res, err := b.store.Get(ScheduleTopic, lv.queueID, lv.next, 1, nil)
		if err != nil {
			if errors.Is(err, node.ErrCorrupt) || errors.Is(err, store.ErrCorrupt) {
				// Java skips a message it cannot read; it is lost either way, and the level
				// must not stall behind it.
				b.log.Error("delayed message unreadable; skipped", "level", lv.queueID+1, "offset", lv.next, "err", err)
				b.skipDelayed(lv, lv.next+1)
				continue
			}
			b.log.Error("read delayed message", "level", lv.queueID+1, "offset", lv.next, "err", err)
			b.armDelayLevel(lv, delayRetryInterval)
			return
		}
		if res.Status != store.Found {
			// The offset is no longer held (or its record is gone): move to where the store says.
			b.log.Warn("delayed message not found; moving on", "level", lv.queueID+1, "offset", lv.next,
				"status", res.Status.String(), "next", res.NextOffset)
			if res.NextOffset <= lv.next {
				b.armDelayLevel(lv, delayRetryInterval)
				return
			}
			b.skipDelayed(lv, res.NextOffset)
			continue
		}
		m, n, err := codec.DecodeRecord(res.Records[0])
		if err != nil || n != len(res.Records[0]) {
			b.log.Error("delayed message does not decode; skipped", "level", lv.queueID+1, "offset", lv.next, "err", err)
			b.skipDelayed(lv, lv.next+1)
			continue
		}
		delay := b.delay.delayOf(lv.queueID)
		if b.cfg.Bugs.Has(bugs.DelayLevelOffByOne) {
			delay = b.delay.delayOf(max(lv.queueID-1, 0)) // the planted bug: one table entry down
		}
		due := time.UnixMilli(m.StoreTimestamp).Add(delay)
		now := b.env.Now()
		if due.After(now.Add(delay)) {
			// Stored later than now: the clock was ahead when it was stored, or has been
			// stepped back since. Waiting for the clock to catch up would hold the message,
			// and every message of the level behind it, for as long as the step; deliver it
			// now instead, as Java's correctDeliverTimestamp does.
			b.log.Warn("delayed message stored in the future (the clock moved back); delivered now",
				"level", lv.queueID+1, "offset", lv.next, "stored", time.UnixMilli(m.StoreTimestamp), "now", now)
			due = now
		}
		if due.After(now) {
			b.armDelayLevel(lv, due.Sub(now))
			return
		}
		if !b.rePut(lv, m) {
			b.armDelayLevel(lv, delayRetryInterval)
			return
		}
	}
	b.armDelayLevel(lv, 0) // a backlog: continue on the next turn
}

// rePut writes a due message to its real topic and queue. It reports false if the write failed
// (the level retries later); a message that cannot be delivered at all is dropped with an
// error log and reported true, so the level moves on.
func (b *Broker) rePut(lv *delayLevel, m *codec.Message) bool {
	topic := codec.Property(m.Properties, codec.PropRealTopc)
	qid, err := strconv.ParseInt(codec.Property(m.Properties, codec.PropRealQID), 10, 32)
	if topic == "" || err != nil || qid < 0 {
		b.log.Error("delayed message without a valid REAL_TOPIC/REAL_QID; dropped", "level", lv.queueID+1,
			"offset", lv.next, "realTopic", topic, "realQueue", codec.Property(m.Properties, codec.PropRealQID))
		b.skipDelayed(lv, lv.next+1)
		return true
	}
	tc, ok := b.store.Topic(topic)
	if !ok && strings.HasPrefix(topic, retryTopicPrefix) {
		b.ensureRetryTopic(strings.TrimPrefix(topic, retryTopicPrefix))
		tc, ok = b.store.Topic(topic)
	}
	if !ok {
		b.log.Error("delayed message for a topic that no longer exists; dropped", "level", lv.queueID+1,
			"offset", lv.next, "topic", topic)
		b.skipDelayed(lv, lv.next+1)
		return true
	}
	if qid >= int64(tc.WriteQueueNums) {
		b.log.Warn("delayed message for a queue the topic no longer has; re-queued", "topic", topic,
			"queue", qid, "queues", tc.WriteQueueNums)
		qid %= int64(tc.WriteQueueNums)
	}
	out := b.restamped(m)
	out.Topic, out.QueueID = topic, int32(qid)
	out.Properties = codec.DeleteProperty(m.Properties, codec.PropDelay)
	res, err := b.putMessage(out)
	if err != nil {
		b.log.Error("re-put delayed message", "level", lv.queueID+1, "offset", lv.next, "topic", topic, "err", err)
		return false
	}
	lv.next++
	b.delay.unsynced = append(b.delay.unsynced, delayProgress{index: res.Index, queueID: lv.queueID, next: lv.next})
	return true
}

// skipDelayed moves a level past messages it will not deliver. The progress is persisted once
// everything written before it is durable, like a delivery's.
func (b *Broker) skipDelayed(lv *delayLevel, next int64) {
	lv.next = next
	last := b.store.CommitLog().LastIndex()
	b.delay.unsynced = append(b.delay.unsynced, delayProgress{index: last, queueID: lv.queueID, next: next})
	if last <= b.acks.durable {
		b.delayDurable(b.acks.durable) // no sync is coming to release it
	}
}

// messagesVisible is told that queue k has new messages readers may see: parked pulls are
// answered and, for a schedule queue, its level looks at its new head.
func (b *Broker) messagesVisible(k queueKey) {
	b.wakePulls(k)
	if k.topic == ScheduleTopic {
		b.delayQueueGrew(k.queue)
	}
}

// checkDelayLevels validates a delay table given in Config.
func checkDelayLevels(levels []time.Duration) error {
	if len(levels) == 0 || len(levels) > store.MaxQueueNums {
		return fmt.Errorf("delay levels: %d levels, want 1..%d", len(levels), store.MaxQueueNums)
	}
	for i, d := range levels {
		if d <= 0 {
			return fmt.Errorf("delay level %d is %v, must be positive", i+1, d)
		}
	}
	return nil
}

// delayDurable records the progress of every re-put now durable (the commit log is synced up
// to upTo) in the offset table, which the offset-flush timer persists.
func (b *Broker) delayDurable(upTo uint64) {
	n := 0
	for _, p := range b.delay.unsynced {
		if p.index > upTo {
			break
		}
		b.store.CommitOffset(delayProgressGroup, ScheduleTopic, p.queueID, p.next)
		n++
	}
	b.delay.unsynced = b.delay.unsynced[n:]
}

// scheduleIfDelayed moves a message carrying a delay level to the schedule topic, as Java's
// CommitLog does for non-transactional and committed messages: queue level-1, REAL_TOPIC and
// REAL_QID set, a level beyond the table clamped to the last one. Other messages are left
// alone. A DELAY that is not a positive integer means no delay.
func (b *Broker) scheduleIfDelayed(m *codec.Message) error {
	// Only messages of no transaction type or committed ones are delayed.
	if t := m.SysFlag & codec.SysFlagTransactionMask; t != 0 && t != codec.SysFlagTxnCommit {
		return nil
	}
	level, ok := delayLevelOf(m.Properties)
	if !ok || m.Topic == ScheduleTopic {
		return nil
	}
	if level > len(b.delay.levels) {
		level = len(b.delay.levels)
		m.Properties = codec.SetProperty(m.Properties, codec.PropDelay, strconv.Itoa(level))
	}
	if err := b.ensureScheduleTopic(); err != nil {
		return err
	}
	m.Properties = codec.SetProperty(m.Properties, codec.PropRealTopc, m.Topic)
	m.Properties = codec.SetProperty(m.Properties, codec.PropRealQID, strconv.Itoa(int(m.QueueID)))
	if len(m.Properties) > codec.MaxPropertiesBytes {
		return fmt.Errorf("properties of the delayed message exceed %d bytes with REAL_TOPIC and REAL_QID", codec.MaxPropertiesBytes)
	}
	m.Topic = ScheduleTopic
	m.QueueID = int32(level - 1)
	return nil
}

// delayLevelOf reads the DELAY property: ok only for a positive integer.
func delayLevelOf(props string) (int, bool) {
	v := codec.Property(props, codec.PropDelay)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// checkDelayProperty rejects a send whose DELAY property is present but not an integer (Java
// fails such a send too, parsing it).
func checkDelayProperty(props string) error {
	v := codec.Property(props, codec.PropDelay)
	if v == "" {
		return nil
	}
	if _, err := strconv.Atoi(v); err != nil {
		return fmt.Errorf("property DELAY=%q is not a delay level (an integer)", v)
	}
	return nil
}

// ensureScheduleTopic creates the schedule topic with one queue per level.
func (b *Broker) ensureScheduleTopic() error {
	if _, ok := b.store.Topic(ScheduleTopic); ok {
		return nil
	}
	n := int32(len(b.delay.levels))
	if err := b.store.CreateTopic(store.TopicConfig{Name: ScheduleTopic, ReadQueueNums: n, WriteQueueNums: n,
		Perm: route.PermRead | route.PermWrite}); err != nil {
		return fmt.Errorf("create %s: %w", ScheduleTopic, err)
	}
	b.registerAll()
	return nil
}
