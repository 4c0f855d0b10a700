package brokernode

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/sluicemq/sluice/broker/metrics"
)

// The broker's metrics (docs/metrics.md lists them all). Counters and histograms are recorded
// as things happen, through handles cached per topic and per reason so that a message costs a
// map lookup and an add; gauges of the broker's state are set when metrics are read
// (ReportMetrics).
var (
	mMessagesIn  = metrics.New("sluice_broker_messages_in_total", "Messages stored from producers' sends, by the topic they were sent to.", metrics.KindCounter, "topic")
	mBytesIn     = metrics.New("sluice_broker_bytes_in_total", "Body bytes of the messages stored from producers' sends, by topic.", metrics.KindCounter, "topic")
	mMessagesOut = metrics.New("sluice_broker_messages_out_total", "Messages served to consumers' pulls, by topic.", metrics.KindCounter, "topic")
	mBytesOut    = metrics.New("sluice_broker_bytes_out_total", "Bytes of stored records served to consumers' pulls, by topic.", metrics.KindCounter, "topic")
	mRefusals    = metrics.New("sluice_broker_refusals_total", "Sends refused, by reason: disk_full (the disk guard or a failing sync), no_space (an append failed with ENOSPC), no_files (out of file descriptors), not_master (a replica that may not write), recovering (the store is not recovered yet).", metrics.KindCounter, "reason")
	mRetained    = metrics.New("sluice_broker_retention_deleted_entries_total", "Commit-log entries deleted by retention, by cause: age (older than fileReservedTime) or disk (the disk over diskMaxUsedSpaceRatio).", metrics.KindCounter, "cause")
	mRetainedSeg = metrics.New("sluice_broker_retention_deleted_segments_total", "Commit-log segment files deleted by retention.", metrics.KindCounter)
	mOffsetMoved = metrics.New("sluice_broker_pull_offset_moved_total", "Pulls below a queue's oldest message (removed by retention) answered with the queue's min offset.", metrics.KindCounter)
	mRoleChanges = metrics.New("sluice_broker_role_changes_total", "Roles this replica took, by role (master, slave, none): a failover shows as a master change on the new master.", metrics.KindCounter, "role")
	mTruncated   = metrics.New("sluice_broker_truncated_entries_total", "Commit-log entries a slave cut because its new master's log differs.", metrics.KindCounter)

	mEpoch       = metrics.New("sluice_broker_epoch", "The master epoch this replica knows (0 without a group).", metrics.KindGauge)
	mIsMaster    = metrics.New("sluice_broker_master", "1 if this broker accepts writes (a single broker, or the master of its group with its lease), else 0.", metrics.KindGauge)
	mMinIndex    = metrics.New("sluice_broker_commitlog_min_index", "First index of the commit log (raised by retention).", metrics.KindGauge)
	mMaxIndex    = metrics.New("sluice_broker_commitlog_max_index", "Last index of the commit log.", metrics.KindGauge)
	mConfirmed   = metrics.New("sluice_broker_commitlog_confirmed_index", "Highest commit-log index consumers may see.", metrics.KindGauge)
	mParked      = metrics.New("sluice_broker_pulls_parked", "Long-polling pulls waiting for messages.", metrics.KindGauge)
	mInSync      = metrics.New("sluice_broker_insync_replicas", "Size of the in-sync set the controller confirmed, the master counted (a master only).", metrics.KindGauge)
	mReplLag     = metrics.New("sluice_broker_replica_lag_entries", "Commit-log entries a slave lacks of its master's log (reported by the master, per slave id).", metrics.KindGauge, "slave")
	mReplLagSec  = metrics.New("sluice_broker_replica_lag_seconds", "How long a slave has lacked some of its master's entries (0 when it holds all; reported by the master, per slave id).", metrics.KindGauge, "slave")
	mSlaveBehind = metrics.New("sluice_broker_slave_behind_entries", "Commit-log entries this slave lacks of what its master last said was confirmed (a slave only).", metrics.KindGauge)
	mTopics      = metrics.New("sluice_broker_topics", "Topics on this broker.", metrics.KindGauge)
	mConsumerLag = metrics.New("sluice_broker_consumer_lag_messages", "Messages of a queue past a consumer group's committed offset: the queue's max offset minus the group's offset.", metrics.KindGauge, "group", "topic", "queue")
	mConsumerOff = metrics.New("sluice_broker_consumer_offset", "A consumer group's committed offset on a queue.", metrics.KindGauge, "group", "topic", "queue")
	mQueueMax    = metrics.New("sluice_broker_queue_max_offset", "A queue's max offset (the offset its next message gets).", metrics.KindGauge, "topic", "queue")
	mQueueMin    = metrics.New("sluice_broker_queue_min_offset", "A queue's min offset (its oldest message still stored).", metrics.KindGauge, "topic", "queue")
	mRegistered  = metrics.New("sluice_broker_registered", "1 once a name server has accepted this broker's registration, else 0.", metrics.KindGauge)
	mReadyDesc   = metrics.New("sluice_broker_ready", "1 when /readyz answers 200: recovered, registered, and a writable master or a caught-up slave.", metrics.KindGauge)
)

// Refusal reasons (sluice_broker_refusals_total's reason label).
const (
	refusedDiskFull = iota
	refusedNoSpace
	refusedNoFiles
	refusedNotMaster
	refusedRecovering
	refusalReasons
)

var refusalNames = [refusalReasons]string{"disk_full", "no_space", "no_files", "not_master", "recovering"}

// brokerMetrics holds the broker's recorder and the handles it records through.
type brokerMetrics struct {
	rec      metrics.Recorder
	on       bool // rec records something (not Nop)
	topics   map[string]*topicSeries
	refusals [refusalReasons]metrics.Counter
}

// topicSeries are one topic's counters.
type topicSeries struct {
	msgsIn, bytesIn, msgsOut, bytesOut metrics.Counter
}

func newBrokerMetrics(rec metrics.Recorder) brokerMetrics {
	m := brokerMetrics{rec: metrics.Or(rec), on: metrics.Is(rec), topics: map[string]*topicSeries{}}
	for i := range m.refusals {
		m.refusals[i] = m.rec.Counter(mRefusals, refusalNames[i])
	}
	return m
}

// topic returns topic's counters, made the first time.
func (m *brokerMetrics) topic(topic string) *topicSeries {
	if t, ok := m.topics[topic]; ok {
		return t
	}
	t := &topicSeries{
		msgsIn: m.rec.Counter(mMessagesIn, topic), bytesIn: m.rec.Counter(mBytesIn, topic),
		msgsOut: m.rec.Counter(mMessagesOut, topic), bytesOut: m.rec.Counter(mBytesOut, topic),
	}
	m.topics[topic] = t
	return t
}

// stored counts n messages of bodyBytes stored from a send to topic.
func (m *brokerMetrics) stored(topic string, n, bodyBytes int) {
	if !m.on {
		return
	}
	t := m.topic(topic)
	t.msgsIn.Add(float64(n))
	t.bytesIn.Add(float64(bodyBytes))
}

// served counts n records of recordBytes served from topic to a pull.
func (m *brokerMetrics) served(topic string, n, recordBytes int) {
	if !m.on {
		return
	}
	t := m.topic(topic)
	t.msgsOut.Add(float64(n))
	t.bytesOut.Add(float64(recordBytes))
}

// refused counts a refused send.
func (m *brokerMetrics) refused(reason int) { m.refusals[reason].Add(1) }

// event records what the broker reports to its observer (observe.go), for the rare events
// the metrics count.
func (m *brokerMetrics) event(e Event) {
	if !m.on {
		return
	}
	switch e := e.(type) {
	case Retained:
		cause := "age"
		if e.Forced {
			cause = "disk"
		}
		m.rec.Counter(mRetained, cause).Add(float64(e.To - e.From))
		m.rec.Counter(mRetainedSeg).Add(float64(e.Segments))
	case RoleChanged:
		m.rec.Counter(mRoleChanges, e.Role).Add(1)
	case Truncated:
		m.rec.Counter(mTruncated).Add(float64(e.Dropped))
	case OffsetMoved:
		m.rec.Counter(mOffsetMoved).Add(1)
	case SendRefused:
		if e.NoSpace {
			m.refused(refusedNoSpace)
		} else {
			m.refused(refusedDiskFull)
		}
	}
}

// ReportMetrics implements metrics.Reporter: it sets the gauges of the broker's state through
// r. It changes nothing in the broker (it reads Env.Now for the slaves' lag in seconds).
func (b *Broker) ReportMetrics(r metrics.Recorder) {
	cl := b.store.CommitLog()
	r.Gauge(mEpoch).Set(float64(b.epoch()))
	r.Gauge(mIsMaster).Set(metrics.Bool(b.role.writable(b)))
	r.Gauge(mMinIndex).Set(float64(cl.FirstIndex()))
	r.Gauge(mMaxIndex).Set(float64(cl.LastIndex()))
	r.Gauge(mConfirmed).Set(float64(b.store.Confirmed()))
	r.Gauge(mParked).Set(float64(b.parked.count))
	r.Gauge(mRegistered).Set(metrics.Bool(b.reg.accepted))
	r.Gauge(mReadyDesc).Set(metrics.Bool(b.Health() == nil))
	topics := b.store.Topics()
	r.Gauge(mTopics).Set(float64(len(topics)))

	r.Reset(mQueueMax)
	r.Reset(mQueueMin)
	for _, tc := range topics {
		for q := range tc.WriteQueueNums {
			qs := strconv.Itoa(int(q))
			r.Gauge(mQueueMax, tc.Name, qs).Set(float64(b.store.MaxOffset(tc.Name, q)))
			r.Gauge(mQueueMin, tc.Name, qs).Set(float64(b.store.MinOffset(tc.Name, q)))
		}
	}
	r.Reset(mConsumerLag)
	r.Reset(mConsumerOff)
	for _, o := range b.store.Offsets() {
		qs := strconv.Itoa(int(o.QueueID))
		r.Gauge(mConsumerOff, o.Group, o.Topic, qs).Set(float64(o.Offset))
		r.Gauge(mConsumerLag, o.Group, o.Topic, qs).Set(float64(max(0, b.store.MaxOffset(o.Topic, o.QueueID)-o.Offset)))
	}

	r.Reset(mReplLag)
	r.Reset(mReplLagSec)
	r.Reset(mInSync)
	r.Reset(mSlaveBehind)
	if m := b.master(); m != nil && m.inSync != nil {
		set, _ := m.inSync.Confirmed()
		r.Gauge(mInSync).Set(float64(len(set)))
		for _, l := range m.inSync.Lags(cl.LastIndex(), b.env.Now()) {
			id := strconv.FormatInt(l.ID, 10)
			r.Gauge(mReplLag, id).Set(float64(l.Entries))
			r.Gauge(mReplLagSec, id).Set(l.Behind.Seconds())
		}
	}
	if b.slave() != nil {
		behind := uint64(0)
		if mc := b.repl.masterConfirmed; mc > b.acks.durable {
			behind = mc - b.acks.durable
		}
		r.Gauge(mSlaveBehind).Set(float64(behind))
	}
}

// Health reports why the broker is not ready to serve its part of the cluster (nil when it
// is): its store is recovered, a name server accepted its registration, and it is a writable
// master (a single broker, or its group's master with a valid lease) or a slave that holds what
// its master last said was confirmed. Read-only, like ReportMetrics.
func (b *Broker) Health() error {
	switch {
	case !b.ready:
		return errors.New("recovering its store")
	case !b.reg.accepted:
		return errors.New("no name server has accepted its registration yet")
	case b.repl == nil:
		return nil
	}
	switch {
	case b.master() != nil:
		if !b.role.writable(b) {
			return errors.New("master whose lease lapsed (no word from the controller)")
		}
		return nil
	case b.slave() != nil:
		s := b.slave()
		if s.link == nil || !s.link.handshaken {
			return errors.New("slave not connected to its master")
		}
		if mc := b.repl.masterConfirmed; b.acks.durable < mc {
			return fmt.Errorf("slave catching up: durable to index %d, master confirmed %d", b.acks.durable, mc)
		}
		return nil
	}
	return errors.New("replica without a role yet (waiting for the controller)")
}
