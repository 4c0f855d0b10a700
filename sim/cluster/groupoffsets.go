package cluster

// Consumer offsets in broker groups. What a group promises (broker/brokernode
// metasync.go, broker/store sync.go), and how the harness checks it from what it observes on
// the wire, never from the merge rules themselves:
//
//   - One master's reign: while replica X is master at epoch E its offsets change only by the
//     commits it receives (and by raising offsets it had clamped, which only raises). A
//     committed offset read back from X at E never goes backwards, unless a commit of that
//     lower value reached X in between (nothing here resets offsets; a consumer may commit a
//     lower offset after resuming from a slave's older copy). A read-back offset is durable
//     (the broker flushes before it answers), so a crash of X inside its reign changes nothing.
//   - A slave's copy: while replica S follows the master M of epoch E it takes M's offsets
//     every round, clamped to its own queue ends but never below an offset of its own that M
//     has passed. Once S has completed a round at E, an offset read back from S never goes
//     backwards, unless M's own offset went down in between (a commit of a lower value reached
//     M, or M crashed and came back at E with what it had flushed), or a consumer committed to
//     S directly since S's round before (rounds overwrite those, as in Java, and where such a
//     commit is above M's offset, M's offset is clamped to S's queue ends, which on a slave
//     just restarted are its checkpoint's).
//   - A failover: the new master Y of epoch E2 keeps the offsets it copied in the last round it
//     completed as a slave (from master X at epoch E1), plus any committed to it directly
//     since. So the first offset Y answers at E2 is at least what X is known to have held when
//     it built the answer of that round: the last read-back from X at E1 before then, lowered
//     by any lower commit X received after it. When Y followed X to the end, that round is at
//     most MetaSyncInterval plus a round trip older than the failover, which is the
//     time-based promise of metasync.go; when Y missed rounds (down, cut off, paused) it holds
//     an older copy, and the bound is that older round's, as metasync.go says ("a replica
//     elected after missing rounds has the offsets of its last round"). In async replication
//     a new master may lack messages a consumer already consumed and committed past; its
//     offsets are then clamped to what it holds. Those queues lose the messages too and are
//     counted (lost-observed) and left out, as from the other checks.
//
// Observations: every UPDATE_CONSUMER_OFFSET delivered to a replica (applied when delivered),
// every QUERY_CONSUMER_OFFSET answer a replica sends (with its role and epoch when it answered,
// which is when it read the offset), and the metadata rounds of the slaves: a round has
// applied the master's offsets when the slave, having received the answer to
// GET_ALL_CONSUMER_OFFSET, sends the round's next request (GET_ALL_DELAY_OFFSET), which it
// does only after it persisted them; the round copied the master's offsets as of the moment
// the master sent that answer. An auditor client besides the consumers reads every replica's
// offsets about every second, as a monitoring tool would.

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/linearizability"
)

// replicaRef names one replica of the groups topology: group index and replica id (1..3).
type replicaRef struct{ group, id int }

// offsetEvent is one observation of a committed offset on one replica.
type offsetEvent struct {
	seq     uint64 // observations are numbered in the order made (many share an instant)
	at      time.Duration
	replica int
	commit  bool // a commit delivered (else a read answered)
	value   int64
	// Reads only.
	found bool
	role  string
	epoch int64
}

// metaRound is one metadata round a slave completed: it applied the offsets its master (of
// epoch) had when it built the answer (built), at applied.
type metaRound struct {
	built, applied       time.Duration
	builtSeq, appliedSeq uint64
	master               int
	epoch                int64
}

// wireKey names a request in flight: the replica serving it, the node that sent it, its opaque.
type wireKey struct {
	server, client string
	opaque         int32
}

// groupOffsets is what the harness observed of the offsets of every broker group.
type groupOffsets struct {
	byAddr map[string]replicaRef
	seq    uint64 // numbers the observations
	// events, by group index and offset (consumer group and queue), in the order observed.
	events []map[groupQueue][]offsetEvent
	// rounds, by group index and slave id, in order.
	rounds []map[int][]metaRound
	// queries and roundAsks are the requests in flight; answered the round answer a slave
	// received last (by slave address).
	queries   map[wireKey]groupQueue
	roundAsks map[wireKey]*metaRound
	answered  map[string]*metaRound
	// Slave progress (slaveprogress.go): the first report ahead of its disk, per replica.
	reportedAhead map[string]bool
}

func newGroupOffsets(gr *groupsRun) *groupOffsets {
	o := &groupOffsets{byAddr: map[string]replicaRef{}, queries: map[wireKey]groupQueue{},
		roundAsks: map[wireKey]*metaRound{}, answered: map[string]*metaRound{}, reportedAhead: map[string]bool{}}
	for gi, g := range gr.groups {
		for id := 1; id <= groupReplicas; id++ {
			o.byAddr[g.nodes[id-1].Addr] = replicaRef{gi, id}
		}
		o.events = append(o.events, map[groupQueue][]offsetEvent{})
		o.rounds = append(o.rounds, map[int][]metaRound{})
	}
	return o
}

// offsetOf is the consumer group and queue an offset request names (err: its header's error).
func offsetOf(group string, h codec.QueryConsumerOffsetHeader, err error) (groupQueue, bool) {
	if err != nil || h.ConsumerGroup == "" {
		return groupQueue{}, false
	}
	return groupQueue{h.ConsumerGroup, linearizability.QueueKey{Broker: group, Topic: h.Topic, QueueID: int32(h.QueueID)}}, true
}

// observeGroups installs the world's observers for the offset and slave-progress checks.
func (r *run) observeGroups() {
	o := newGroupOffsets(r.gr)
	r.gr.offsets = o
	r.tap(func(from, to string, cmd *codec.Command) { r.onGroupSent(o, from, to, cmd) },
		func(from, to string, cmd *codec.Command) { r.onGroupDelivered(o, from, to, cmd) })
}

// onGroupSent sees every command a node sends.
func (r *run) onGroupSent(o *groupOffsets, from, to string, cmd *codec.Command) {
	src, ok := o.byAddr[from]
	if !ok {
		return
	}
	g := r.gr.groups[src.group]
	now := r.w.Now()
	if cmd.IsResponse() {
		k := wireKey{from, to, cmd.Opaque}
		if gq, ok := o.queries[k]; ok {
			delete(o.queries, k)
			b := g.broker(src.id)
			if b == nil || (cmd.Code != codec.Success && cmd.Code != codec.QueryNotFound) {
				return
			}
			role, epoch, _ := b.Role()
			o.seq++
			ev := offsetEvent{seq: o.seq, at: now, replica: src.id, role: role, epoch: epoch, found: cmd.Code == codec.Success}
			if ev.found {
				h, err := codec.DecodeHeader[codec.OffsetResponseHeader](cmd)
				if err != nil {
					return
				}
				ev.value = h.Offset
			}
			o.events[src.group][gq] = append(o.events[src.group][gq], ev)
		}
		if m, ok := o.roundAsks[k]; ok {
			if cmd.Code != codec.Success {
				delete(o.roundAsks, k)
				return
			}
			o.seq++
			m.built, m.builtSeq = now, o.seq
		}
		return
	}
	dst, toReplica := o.byAddr[to]
	if !toReplica || dst.group != src.group {
		return
	}
	switch cmd.Code {
	case codec.ReqReplicaFetch:
		r.checkSlaveReport(o, from, src, cmd)
	case codec.ReqGetAllConsumerOffset:
		h, err := codec.DecodeHeader[codec.ReplicaHeader](cmd)
		if err == nil && h.MasterEpoch != codec.NoMasterEpoch {
			o.roundAsks[wireKey{to, from, cmd.Opaque}] = &metaRound{built: -1, master: dst.id, epoch: h.MasterEpoch}
		}
	case codec.ReqGetAllDelayOffset:
		// Sent right after the slave applied and persisted the offsets of the answer it
		// received last, in the same round.
		h, err := codec.DecodeHeader[codec.ReplicaHeader](cmd)
		if m := o.answered[from]; m != nil && m.master == dst.id && err == nil && h.MasterEpoch == m.epoch {
			o.seq++
			m.applied, m.appliedSeq = now, o.seq
			o.rounds[src.group][src.id] = append(o.rounds[src.group][src.id], *m)
		}
		delete(o.answered, from)
	}
}

// onGroupDelivered sees every command delivered to a node.
func (r *run) onGroupDelivered(o *groupOffsets, from, to string, cmd *codec.Command) {
	dst, ok := o.byAddr[to]
	if !ok {
		return
	}
	group := r.gr.groups[dst.group].name
	if cmd.IsResponse() {
		k := wireKey{from, to, cmd.Opaque}
		if m, ok := o.roundAsks[k]; ok {
			delete(o.roundAsks, k)
			if m.built >= 0 {
				o.answered[to] = m
			}
		}
		return
	}
	switch cmd.Code {
	case codec.ReqUpdateConsumerOffset:
		h, err := codec.DecodeHeader[codec.UpdateConsumerOffsetHeader](cmd)
		gq, ok := offsetOf(group, codec.QueryConsumerOffsetHeader{ConsumerGroup: h.ConsumerGroup, Topic: h.Topic, QueueID: h.QueueID}, err)
		if v := h.CommitOffset; ok && v >= 0 {
			o.seq++
			o.events[dst.group][gq] = append(o.events[dst.group][gq], offsetEvent{seq: o.seq, at: r.w.Now(), replica: dst.id, commit: true, value: v})
		}
	case codec.ReqQueryConsumerOffset:
		h, err := codec.DecodeHeader[codec.QueryConsumerOffsetHeader](cmd)
		if gq, ok := offsetOf(group, h, err); ok {
			o.queries[wireKey{to, from, cmd.Opaque}] = gq
		}
	}
}

// auditorAddr is the offset auditor's client address.
const auditorAddr = "127.0.5.1:1"

// startOffsetAuditor reads the plain consumers' committed offset of every queue of the run's
// topic from every replica, about every second.
func (r *run) startOffsetAuditor() {
	cli := r.addClient(auditorAddr, "offset-auditor")
	var queues []client.MessageQueue
	var tick, discover func()
	discover = func() {
		cli.Queues(r.cfg.Topic, func(qs []client.MessageQueue, err error) {
			if err != nil || len(qs) == 0 {
				cli.InvalidateRoute(r.cfg.Topic)
				r.w.After(500*time.Millisecond, discover)
				return
			}
			queues = qs
			tick()
		})
	}
	tick = func() {
		for _, q := range queues {
			for gi, g := range r.gr.groups {
				if g.name != q.BrokerName {
					continue
				}
				for id := 1; id <= groupReplicas; id++ {
					cli.QueryOffsetAt(ReplicaAddr(gi, id), consumerGroup, q, func(int64, bool, error) {})
				}
			}
		}
		r.w.After(time.Duration(800+r.w.Rand().IntN(400))*time.Millisecond, tick)
	}
	r.w.After(300*time.Millisecond, discover)
}

// checkGroupOffsets checks the offsets observed against the promises at the top of this file;
// lossy lists the queues left out (async replication: messages lost at a failover).
func (r *run) checkGroupOffsets(lossy map[linearizability.QueueKey]bool) {
	o := r.gr.offsets
	for gi, g := range r.gr.groups {
		keys := make([]groupQueue, 0, len(o.events[gi]))
		for k := range o.events[gi] {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, groupQueue.compare)
		for _, k := range keys {
			c := offsetChecker{r: r, g: g, rounds: o.rounds[gi], evs: o.events[gi][k], key: k}
			c.reigns()
			c.slaveCopies()
			if !lossy[k.queue] {
				c.failovers()
			}
		}
	}
}

// offsetChecker checks the observations of one offset of one group.
type offsetChecker struct {
	r      *run
	g      *groupState
	rounds map[int][]metaRound
	evs    []offsetEvent
	key    groupQueue
}

// violate reports a violation shown by the read at at.
func (c *offsetChecker) violate(at time.Duration, kind, format string, args ...any) {
	c.r.violateAt(at, kind, "group %s, consumer group %s, queue %s: %s", c.g.name, c.key.group, c.key.queue, fmt.Sprintf(format, args...))
}

// committed reports whether replica id received a commit of a value in [lo, hi] between the
// observations numbered from and to.
func (c *offsetChecker) committed(id int, lo, hi int64, from, to uint64) bool {
	for _, e := range c.evs {
		if e.commit && e.replica == id && e.seq > from && e.seq < to && e.value >= lo && e.value <= hi {
			return true
		}
	}
	return false
}

// crashed reports whether replica id crashed in [from, to].
func (c *offsetChecker) crashed(id int, from, to time.Duration) bool {
	for _, at := range c.g.nodes[id-1].CrashTimes {
		if at >= from && at <= to {
			return true
		}
	}
	return false
}

// lastRound is the last round slave id completed before observation seq (at epoch, or any
// epoch if epoch < 0).
func (c *offsetChecker) lastRound(id int, epoch int64, seq uint64) (metaRound, bool) {
	var last metaRound
	ok := false
	for _, m := range c.rounds[id] {
		if m.appliedSeq > seq {
			break
		}
		if epoch < 0 || m.epoch == epoch {
			last, ok = m, true
		}
	}
	return last, ok
}

// backwards reports whether read cur went back from read prev. An answer of 0 binds nothing:
// a broker answers 0 for a group with no stored offset on a young queue (Java's new-group rule)
// and not-found once the queue is no longer young, so only offsets above 0 prove a commit (as
// in checkOffsets of the single topology).
func backwards(prev, cur offsetEvent) bool {
	return prev.found && prev.value > 0 && (!cur.found || cur.value < prev.value)
}

// reigns: reads from one master at one epoch never go backwards but to a value committed to
// it in between.
func (c *offsetChecker) reigns() {
	last := map[int]offsetEvent{}
	for _, e := range c.evs {
		if e.commit || e.role != "master" {
			continue
		}
		if p, ok := last[e.replica]; ok && p.epoch == e.epoch && backwards(p, e) &&
			!(e.found && c.committed(e.replica, e.value, e.value, p.seq, e.seq)) {
			c.violate(e.at, "offset went backwards", "master %d at epoch %d answered %d at %v, then %s at %v, and no consumer committed that in between",
				e.replica, e.epoch, p.value, p.at, describeRead(e), e.at)
		}
		last[e.replica] = e
	}
}

// slaveCopies: once a slave has completed a round at an epoch, reads from it at that epoch
// never go backwards, but where its master's offset did or the higher value was committed to
// the slave directly.
func (c *offsetChecker) slaveCopies() {
	last := map[int]offsetEvent{}
	for _, e := range c.evs {
		if e.commit || e.role != "slave" {
			continue
		}
		p, ok := last[e.replica]
		last[e.replica] = e
		if !ok || p.epoch != e.epoch || !backwards(p, e) {
			continue
		}
		if e.found && c.committed(e.replica, e.value, e.value, p.seq, e.seq) {
			continue // committed to the slave directly
		}
		base, ok := c.lastRound(e.replica, e.epoch, p.seq)
		if !ok {
			continue // p predates the slave's first copy from this master: it takes even lower ones
		}
		if c.committed(e.replica, 0, 1<<62, base.appliedSeq, e.seq) {
			// A commit to the slave directly: the next round overwrites it, and where it is
			// above the master's offset the slave's queue end may clamp that (a restarted
			// slave's, its checkpoint's) below what the slave held before.
			continue
		}
		if c.crashed(base.master, base.built, e.at) {
			continue // the master came back with what it had flushed
		}
		if e.found && c.committed(base.master, e.value, p.value-1, base.builtSeq, e.seq) {
			continue // the master's own offset went down
		}
		c.violate(e.at, "slave offset copy went backwards", "slave %d following master %d at epoch %d answered %d at %v (after copying at %v), then %s at %v; the master's offset did not go down",
			e.replica, base.master, e.epoch, p.value, p.at, base.applied, describeRead(e), e.at)
	}
}

// failovers: the first offset a new master answers at its epoch is at least what its last
// completed round copied, as far as the reads of the master it copied from show.
func (c *offsetChecker) failovers() {
	seen := map[[2]int64]bool{}
	for _, e := range c.evs {
		if e.commit || e.role != "master" {
			continue
		}
		k := [2]int64{int64(e.replica), e.epoch}
		if seen[k] {
			continue
		}
		seen[k] = true
		m, ok := c.lastRound(e.replica, -1, e.seq)
		if !ok || m.epoch >= e.epoch {
			continue
		}
		// What the old master is known to have held when it built that round's answer.
		var known offsetEvent
		for _, x := range c.evs {
			if x.seq > m.builtSeq {
				break
			}
			if !x.commit && x.replica == m.master && x.role == "master" && x.epoch == m.epoch {
				known = x
			}
		}
		if !known.found || known.value == 0 {
			continue // nothing known committed (see backwards)
		}
		bound := known.value
		for _, x := range c.evs {
			// (Up to now rather than to the round: a later round may have been applied but
			// failed to persist, so the round after it saw none.)
			if x.commit && x.replica == m.master && x.seq > known.seq && x.seq < e.seq {
				bound = min(bound, x.value)
			}
		}
		if e.found && e.value >= bound {
			continue
		}
		if e.found && c.committed(e.replica, e.value, e.value, m.builtSeq, e.seq) {
			continue // committed to it directly since
		}
		c.violate(e.at, "new master's offset behind its copy", "replica %d, master at epoch %d from %v, answered %s; its last round (applied at %v) copied master %d of epoch %d at %v, which had answered %d at %v",
			e.replica, e.epoch, e.at, describeRead(e), m.applied, m.master, m.epoch, m.built, known.value, known.at)
	}
}

func describeRead(e offsetEvent) string {
	if !e.found {
		return "no offset"
	}
	return strconv.FormatInt(e.value, 10)
}
