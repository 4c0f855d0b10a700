package brokernode

// Admin statistics (mqadmin's brokerStatus, clusterList, topicStatus and consumerProgress):
// GET_BROKER_RUNTIME_INFO (28), GET_TOPIC_STATS_INFO (202) and GET_CONSUME_STATS (208), in the
// Java broker's body shapes (codec's KVTable, TopicStatsTable, ConsumeStats). The counters
// behind them are kept here, in memory: they start at zero when the broker starts, as Java's.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// rateBuckets is how many seconds a rateMeter remembers (RocketMQ's longest TPS window, 10 min).
const rateBuckets = 600

// rateMeter counts events per second of the node's clock over the last rateBuckets seconds.
type rateMeter struct {
	secs   [rateBuckets]int64 // the second bucket i counts (Unix seconds)
	counts [rateBuckets]uint64
}

func (m *rateMeter) add(now time.Time, n uint64) {
	s := now.Unix()
	i := int(((s % rateBuckets) + rateBuckets) % rateBuckets)
	if m.secs[i] != s {
		m.secs[i], m.counts[i] = s, 0
	}
	m.counts[i] += n
}

// rate is the mean events per second over the window whole seconds before now's.
func (m *rateMeter) rate(now time.Time, window int) float64 {
	s := now.Unix()
	var sum uint64
	for k := int64(1); k <= int64(window); k++ {
		t := s - k
		i := int(((t % rateBuckets) + rateBuckets) % rateBuckets)
		if m.secs[i] == t {
			sum += m.counts[i]
		}
	}
	return float64(sum) / float64(window)
}

// tps is RocketMQ's TPS text: the rates over 10 s, 1 min and 10 min.
func (m *rateMeter) tps(now time.Time) string {
	return fmt.Sprintf("%.2f %.2f %.2f", m.rate(now, 10), m.rate(now, 60), m.rate(now, 600))
}

// dayTotals is a running total with its values at the start of today and of yesterday (the
// node clock's local midnight), RocketMQ's msgPutTotalTodayMorning and the others.
type dayTotals struct {
	now, todayMorning, yesterdayMorning uint64
	day                                 time.Time // midnight of the day todayMorning belongs to
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// roll moves the mornings on when now is on a later day than the last event.
func (d *dayTotals) roll(now time.Time) {
	today := midnight(now)
	switch {
	case d.day.IsZero():
		d.day = today
	case today.After(d.day):
		if d.day.AddDate(0, 0, 1).Equal(today) {
			d.yesterdayMorning = d.todayMorning
		} else {
			d.yesterdayMorning = d.now // nothing happened yesterday
		}
		d.todayMorning, d.day = d.now, today
	}
}

func (d *dayTotals) add(now time.Time, n uint64) {
	d.roll(now)
	d.now += n
}

// brokerStats are the counters of the admin statistics.
type brokerStats struct {
	boot       time.Time
	put, got   dayTotals // messages stored from sends; messages served to pulls
	putRate    rateMeter
	gotRate    rateMeter
	groupRates map[string]*groupRate // messages served to each consumer group
}

// groupRate is one consumer group's consume rate, over its last minute.
type groupRate struct {
	secs   [60]int64
	counts [60]uint64
}

// stored counts n messages stored from a send.
func (b *Broker) countStored(n int) {
	now := b.env.Now()
	b.stats.put.add(now, uint64(n))
	b.stats.putRate.add(now, uint64(n))
}

// countServed counts n messages served to a pull of group.
func (b *Broker) countServed(group string, n int) {
	now := b.env.Now()
	b.stats.got.add(now, uint64(n))
	b.stats.gotRate.add(now, uint64(n))
	if b.stats.groupRates == nil {
		b.stats.groupRates = map[string]*groupRate{}
	}
	g := b.stats.groupRates[group]
	if g == nil {
		g = &groupRate{}
		b.stats.groupRates[group] = g
	}
	s := now.Unix()
	i := int(((s % 60) + 60) % 60)
	if g.secs[i] != s {
		g.secs[i], g.counts[i] = s, 0
	}
	g.counts[i] += uint64(n)
}

// consumeTps is group's mean messages per second served over the last minute.
func (b *Broker) consumeTps(group string) float64 {
	g := b.stats.groupRates[group]
	if g == nil {
		return 0
	}
	s := b.env.Now().Unix()
	var sum uint64
	for k := int64(1); k <= 60; k++ {
		t := s - k
		if i := int(((t % 60) + 60) % 60); g.secs[i] == t {
			sum += g.counts[i]
		}
	}
	return float64(sum) / 60
}

// forgetGroupRate drops a deleted group's rate.
func (b *Broker) forgetGroupRate(group string) { delete(b.stats.groupRates, group) }

// RuntimeInfo is GET_BROKER_RUNTIME_INFO's table: RocketMQ's keys (BrokerController's
// prepareRuntimeInfo) for the figures Sluice has, and Sluice's own for its group and disk:
//
//	brokerVersionDesc, brokerVersion   "Sluice", the remoting version it answers with
//	msgPut/GetTotal{TodayNow,TodayMorning,YesterdayMorning}
//	                                   messages stored from sends / served to pulls since the
//	                                   broker started, now and at the last two midnights
//	putTps, getTransferedTps           "10s 1min 10min" rates of the same
//	commitLogMinOffset, commitLogMaxOffset
//	                                   the commit log's first index and one past its last
//	                                   (Sluice's commit-log offsets are entry indexes, as its
//	                                   offset message ids carry)
//	dispatchBehindBytes                0: consume queues are written with each append
//	earliestMessageTimeStamp           store time (ms) of the oldest message held
//	bootTimestamp, runtime             when the broker started, and for how long it has run
//	commitLogDiskRatio, commitLogDirCapacity
//	                                   the data disk's use (a fraction) and its size, as Java
//	                                   writes them, when the disk can tell
//	diskUsedBytes, diskCapacityBytes, diskFull
//	                                   the same in bytes, and whether the disk guard refuses sends
//	retentionRuns, retentionDeletedEntries, retentionForcedRuns, pullOffsetsMoved,
//	sendsRefusedDiskFull               retention's counters (RetentionStats)
//	brokerRole                         ASYNC_MASTER, SYNC_MASTER or SLAVE
//	brokerId, replicaRole, writable    the replica's id and role in its group (single without one)
//	masterEpoch                        the master epoch the replica knows (RocketMQ 5's name)
//	syncStateSet, syncStateSetEpoch    a master's in-sync set (ids, comma-separated) and its epoch
func (b *Broker) RuntimeInfo() map[string]string {
	now := b.env.Now()
	t := map[string]string{}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	t["brokerVersionDesc"] = "Sluice"
	t["brokerVersion"] = i(int64(codec.NewResponse(&codec.Command{}, codec.Success, "").Version))
	for _, c := range []struct {
		name string
		d    *dayTotals
	}{{"msgPutTotal", &b.stats.put}, {"msgGetTotal", &b.stats.got}} {
		c.d.roll(now)
		t[c.name+"TodayNow"] = u(c.d.now)
		t[c.name+"TodayMorning"] = u(c.d.todayMorning)
		t[c.name+"YesterdayMorning"] = u(c.d.yesterdayMorning)
	}
	t["putTps"] = b.stats.putRate.tps(now)
	t["getTransferedTps"] = b.stats.gotRate.tps(now)

	cl := b.store.CommitLog()
	t["commitLogMinOffset"] = u(cl.FirstIndex())
	t["commitLogMaxOffset"] = u(cl.LastIndex() + 1)
	t["dispatchBehindBytes"] = "0"
	if first := cl.FirstIndex(); first <= b.store.Confirmed() {
		if m, err := b.store.ReadIndex(first); err == nil {
			t["earliestMessageTimeStamp"] = i(m.StoreTimestamp)
		}
	}
	t["bootTimestamp"] = i(b.stats.boot.UnixMilli())
	up := now.Sub(b.stats.boot).Truncate(time.Second)
	t["runtime"] = fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]",
		int(up.Hours())/24, int(up.Hours())%24, int(up.Minutes())%60, int(up.Seconds())%60)

	if sr, ok := b.env.Disk().(node.SpaceReporter); ok {
		if used, capacity, err := sr.Space(); err == nil && capacity > 0 {
			t["diskUsedBytes"] = u(used)
			t["diskCapacityBytes"] = u(capacity)
			t["commitLogDiskRatio"] = strconv.FormatFloat(float64(used)/float64(capacity), 'f', 4, 64)
			t["commitLogDirCapacity"] = fmt.Sprintf("Total : %s, Free : %s.", humanBytes(capacity), humanBytes(capacity-min(used, capacity)))
		}
	}
	t["diskFull"] = strconv.FormatBool(b.diskRefusing())
	rs := b.retention.stats
	t["retentionRuns"] = u(rs.Runs)
	t["retentionDeletedEntries"] = u(rs.RemovedEntries)
	t["retentionForcedRuns"] = u(rs.ForcedRuns)
	t["pullOffsetsMoved"] = u(rs.OffsetsMoved)
	t["sendsRefusedDiskFull"] = u(rs.SendsRefused)

	role, epoch, writable := b.Role()
	t["brokerId"] = i(b.cfg.BrokerID)
	t["writable"] = strconv.FormatBool(writable)
	switch {
	case role == "":
		t["replicaRole"] = "single"
		t["brokerRole"] = "ASYNC_MASTER"
	case role == "master":
		t["replicaRole"] = role
		t["brokerRole"] = "ASYNC_MASTER"
		if b.cfg.ReplicationMode == SyncReplication {
			t["brokerRole"] = "SYNC_MASTER"
		}
	default:
		t["replicaRole"] = role
		t["brokerRole"] = "SLAVE"
	}
	if b.repl != nil {
		t["masterEpoch"] = i(epoch)
	}
	if m := b.master(); m != nil && m.inSync != nil {
		set, setEpoch := m.inSync.Confirmed()
		ids := make([]string, len(set))
		for k, id := range set {
			ids[k] = i(id)
		}
		t["syncStateSet"] = strings.Join(ids, ",")
		t["syncStateSetEpoch"] = i(setEpoch)
	}
	return t
}

// diskRefusing reports whether the disk guard refuses sends now (diskfull.go).
func (b *Broker) diskRefusing() bool {
	f := &b.retention.full
	return f.byRatio || f.noSpace || f.noFiles || f.syncErr != nil
}

// humanBytes writes a size as Java's MixAll.humanReadableByteCount (binary units) does.
func humanBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	exp, v := 0, float64(n)
	for v >= 1024 && exp < 6 {
		v /= 1024
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp-1])
}

// handleRuntimeInfo serves GET_BROKER_RUNTIME_INFO (28).
func (b *Broker) handleRuntimeInfo(req *codec.Command) *codec.Command {
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(codec.KVTable{Table: b.RuntimeInfo()}) // keys sorted by encoding/json
	return resp
}

// handleTopicStats serves GET_TOPIC_STATS_INFO (202): each write queue's min and max offset
// and the store time of its last message, as Java's AdminBrokerProcessor.getTopicStatsInfo.
func (b *Broker) handleTopicStats(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.TopicHeader](req) // no field can be malformed
	tc, ok := b.store.Topic(h.Topic)
	if !ok {
		return codec.NewResponse(req, codec.TopicNotExist, "topic["+h.Topic+"] not exist")
	}
	var tab codec.TopicStatsTable
	for q := range tc.WriteQueueNums {
		o := codec.TopicOffset{MinOffset: b.store.MinOffset(tc.Name, q), MaxOffset: b.store.MaxOffset(tc.Name, q)}
		if o.MaxOffset > o.MinOffset {
			ts, ok, err := b.store.StoreTime(tc.Name, q, o.MaxOffset-1)
			if err != nil {
				return codec.NewResponse(req, codec.SystemError, fmt.Sprintf("topic stats of %s queue %d: %v", tc.Name, q, err))
			}
			if ok {
				o.LastUpdateTimestamp = ts
			}
		}
		tab.Offsets = append(tab.Offsets, codec.QueueTopicOffset{
			Queue: codec.MessageQueue{BrokerName: b.cfg.BrokerName, QueueID: q, Topic: tc.Name}, TopicOffset: o})
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = tab.Encode()
	return resp
}

// handleConsumeStats serves GET_CONSUME_STATS (208): a group's committed offset against each
// queue's max offset, on the one topic asked or on every topic it has offsets on, as Java's
// AdminBrokerProcessor.getConsumeStats (a topic this broker lacks is skipped; lastTimestamp is
// the store time of the last message the group consumed).
func (b *Broker) handleConsumeStats(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.ConsumeStatsHeader](req)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "consume stats: "+err.Error())
	}
	topics := []string{h.Topic}
	if h.Topic == "" {
		set := map[string]bool{}
		for _, o := range b.store.Offsets() {
			if o.Group == h.ConsumerGroup {
				set[o.Topic] = true
			}
		}
		topics = slices.Sorted(maps.Keys(set))
	}
	stats := codec.ConsumeStats{ConsumeTps: b.consumeTps(h.ConsumerGroup)}
	for _, topic := range topics {
		tc, ok := b.store.Topic(topic)
		if !ok {
			continue
		}
		for q := range tc.WriteQueueNums {
			w := codec.OffsetWrapper{BrokerOffset: max(0, b.store.MaxOffset(topic, q))}
			if off, ok := b.store.QueryOffset(h.ConsumerGroup, topic, q); ok && off > 0 {
				w.ConsumerOffset = off
				ts, ok, err := b.store.StoreTime(topic, q, off-1)
				if err != nil {
					return codec.NewResponse(req, codec.SystemError, fmt.Sprintf("consume stats of %s on %s queue %d: %v", h.ConsumerGroup, topic, q, err))
				}
				if ok {
					w.LastTimestamp = ts
				}
			}
			stats.Offsets = append(stats.Offsets, codec.QueueOffsetWrapper{
				Queue: codec.MessageQueue{BrokerName: b.cfg.BrokerName, QueueID: q, Topic: topic}, OffsetWrapper: w})
		}
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = stats.Encode()
	return resp
}
