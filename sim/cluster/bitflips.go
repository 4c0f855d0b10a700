package cluster

// Bit flips: silent corruption of a stored commit-log entry (faults.BitFlip). What the broker
// promises, and what the checks hold it to:
//
//   - A corrupt entry is never served. The disk checks every entry's CRC32C on every read
//     (package logentry: the simulated disk stores entries in the production form and checks
//     them with the production decoder), and a consumer checks what it gets independently of
//     the broker: every payload carries its producer's checksum (body), and the client rejects
//     a record whose body checksum or framing fails. Either failing is a violation, "served
//     corrupt".
//   - An entry the broker cannot read is skipped: its queue offset stays taken (recovery keeps
//     it, see broker/store/holes.go) and reads move past it. The broker has no way to repair
//     it: a single broker holds no other copy, and a replica of a group does not fetch a
//     damaged entry again from another (not built). So the message is lost; the harness
//     counts it (lost-unreadable) rather than reporting it, but only when it recorded the flip
//     that destroyed that very message: every flip is noted as it strikes (onFlip: node, log,
//     index, and the message the entry held), and a lost message with no flip behind it is
//     still a violation. The drain may skip exactly the offsets of destroyed messages.
//
// In a broker group a flipped entry is not repaired either: a replica never fetches a damaged
// entry again from another, and a master whose copy of an entry is damaged cannot send it to a
// slave that lacks it, so that slave's replication stalls there (the read fails). So the
// groups topology flips only entries all three replicas have confirmed, and none while one is
// down (groupFlipUpTo): an in-sync slave then holds each durably, and the group keeps enough
// replicas in sync whichever copy is damaged; a replica that was behind may still stall on
// one. What is checked is that a damaged copy is never served and the others are: a lost
// message is excused only if the flip struck the copy of a replica that answered the final
// drain of its queue, and the replicas' logs are compared at every other index.
//
// Flips strike the commit log only. Consume queues and the key index are derived from it and
// could be rebuilt from it, but the broker does not do that yet: a flipped consume-queue entry
// stalls its queue (the read fails), which the checks would report as a liveness failure.
// A flip of a log's last entry is kept when the broker next opens it, not dropped as a torn
// write (the simulated disk tears only what a crash cut short; the production disk keeps
// every whole entry), and recovery places it like any unreadable record. A record recovery
// cannot place (its one flipped bit leaves its header one bit from two queues' next offsets,
// see broker/store/holes.go) would give its queue offset to the next message again; a sweep
// would report that.

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/logentry"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim"
	"github.com/sluicemq/sluice/sim/checks"
)

// KindServedCorrupt: a consumer got a message that fails its checksum (the producer's, in the
// payload, or the record's own body checksum and framing).
const KindServedCorrupt = "served corrupt"

// flipRecord is one bit flip that struck, and the message it destroyed.
type flipRecord struct {
	at    time.Duration
	addr  string
	log   string
	index uint64
	// ok: the entry held a readable commit-log record, of msgID at queue/offset (records
	// without a UNIQ_KEY, which the harness's clients never write, are left out).
	ok     bool
	queue  linearizability.QueueKey
	offset int64
	msgID  string
	// parked: the record was a message parked for later (a delay level's, a transaction's
	// half message), destroyed before it reached the queue it was meant for.
	parked bool
}

// onFlip notes a flip about to strike entry index of log on node addr (faults.Injector.OnFlip).
func (r *run) onFlip(addr, log string, index uint64) {
	f := flipRecord{at: r.w.Now(), addr: addr, log: log, index: index}
	if payload, err := r.w.Node(addr).Disk.Peek(log, index); err == nil && log == store.CommitLogName {
		if m, _, err := codec.DecodeRecord(payload); err == nil && codec.Property(m.Properties, codec.PropUniqKey) != "" {
			f.ok = true
			f.queue = linearizability.QueueKey{Broker: r.brokerNameOf(addr), Topic: m.Topic, QueueID: m.QueueID}
			f.offset = m.QueueOffset
			// A message parked for later (a delay level's, a transaction's half message) is
			// destroyed where it was to be delivered: REAL_TOPIC.
			topic := m.Topic
			parked := m.Topic == brokernode.ScheduleTopic || m.Topic == brokernode.HalfTopic
			if parked {
				topic = codec.Property(m.Properties, codec.PropRealTopc)
			}
			f.msgID = historyID(topic, codec.Property(m.Properties, codec.PropUniqKey), m.ReconsumeTimes)
			f.parked = parked
			r.h.AddUnreadable(f.queue, f.offset)
			if r.gr == nil && !parked {
				r.witness(f, m)
			}
		}
	}
	r.flips = append(r.flips, f)
	r.report.BitFlips++
}

// flipWitness is the client number of the pulls witness records.
const flipWitness = 997

// witness records what the flip destroyed as an observation: the broker's log held message
// f.msgID at f.offset at some moment from the flip on (the offset stays taken: see
// broker/store/holes.go). No pull may ever see the message, so without it a message nobody had
// pulled yet (a broker write into a retry or dead-letter queue, which only pulls place) would
// be a gap in the log that nothing fills. Only for the single broker, whose durable entries
// (the only ones flipped) are never truncated; a group's replica may truncate what its master
// had not acknowledged, and its queues hold sends only, whose acknowledgements pin their
// offsets anyway. The pull stays open until the end of the run (finishWitnesses).
func (r *run) witness(f flipRecord, m *codec.Message) {
	pm := pulledMsg(m, codec.Property(m.Properties, codec.PropUniqKey))
	r.witnesses = append(r.witnesses, r.h.AddPull(linearizability.PullOp{Client: flipWitness, Queue: f.queue,
		Offset: f.offset, Call: int64(f.at), Outcome: linearizability.OK, Msgs: []linearizability.PulledMsg{pm}}))
}

// finishWitnesses closes the witnesses' pulls at the end of the run.
func (r *run) finishWitnesses() {
	for _, i := range r.witnesses {
		r.h.Pulls[i].Return = int64(r.w.Now())
	}
}

// groupFlipUpTo bounds the entries a flip may strike on the replica at addr: those every
// replica of its group that is up has confirmed (0, none, while a replica is down).
func (r *run) groupFlipUpTo(addr, _ string) uint64 {
	for _, g := range r.gr.groups {
		if !slices.ContainsFunc(g.nodes, func(n *sim.Node) bool { return n.Addr == addr }) {
			continue
		}
		var upTo uint64 = math.MaxUint64
		for id := 1; id <= groupReplicas; id++ {
			b := g.broker(id)
			if b == nil {
				return 0
			}
			upTo = min(upTo, b.Store().Confirmed())
		}
		return upTo
	}
	panic(fmt.Sprintf("cluster: no broker at %s", addr))
}

// brokerNameOf is the broker name (group) of the broker at addr.
func (r *run) brokerNameOf(addr string) string {
	if r.gr == nil {
		return BrokerName
	}
	for _, g := range r.gr.groups {
		for _, n := range g.nodes {
			if n.Addr == addr {
				return g.name
			}
		}
	}
	panic(fmt.Sprintf("cluster: no broker at %s", addr))
}

// destroyed reports whether a flip destroyed a stored copy of message id that the final drain
// read (on a broker that answered the drain of the message's queue), or destroyed it parked,
// before it ever reached its queue.
func (r *run) destroyed(id string) bool {
	for _, f := range r.flips {
		if f.ok && f.msgID == id && (f.parked || r.drainedBy[f.queue][f.addr]) {
			return true
		}
	}
	return false
}

// drainAnswered notes that the broker at addr answered a pull of the final drain of queue q.
func (r *run) drainAnswered(q linearizability.QueueKey, addr string) {
	if r.drainedBy == nil {
		r.drainedBy = map[linearizability.QueueKey]map[string]bool{}
	}
	if r.drainedBy[q] == nil {
		r.drainedBy[q] = map[string]bool{}
	}
	r.drainedBy[q][addr] = true
}

// excuseUnreadable drops from vs the lost messages a recorded flip destroyed, counting each
// one once in LostUnreadable.
func (r *run) excuseUnreadable(vs []checks.Violation) []checks.Violation {
	if r.lostUnreadable == nil {
		r.lostUnreadable = map[string]bool{}
	}
	out := vs[:0:0]
	for _, v := range vs {
		switch v.Kind {
		case checks.KindLostAcked, checks.KindLostObserved, checks.KindLostWrite:
			if v.MsgID != "" && r.destroyed(v.MsgID) {
				if !r.lostUnreadable[v.MsgID] {
					r.lostUnreadable[v.MsgID] = true
					r.report.LostUnreadable++
				}
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// payloadSumLen is the producer's checksum at the end of every payload: '|' and 8 hex digits.
const payloadSumLen = 9

// withPayloadSum appends the producer's checksum of b to it.
func withPayloadSum(b []byte) []byte {
	return fmt.Appendf(b, "|%08x", logentry.Checksum(b))
}

// payloadSumOK reports whether b ends with the checksum of what precedes it.
func payloadSumOK(b []byte) bool {
	if len(b) < payloadSumLen {
		return false
	}
	head := b[:len(b)-payloadSumLen]
	return string(b[len(head):]) == fmt.Sprintf("|%08x", logentry.Checksum(head))
}

// servedCorrupt reports a pull whose answer the client rejected as corrupt (once per queue
// and offset: a consumer retries it).
func (r *run) servedCorrupt(req client.PullRequest, err error) {
	at := corruptAt{queueKey(req.Queue), req.Offset}
	if r.corruptSeen[at] {
		return
	}
	if r.corruptSeen == nil {
		r.corruptSeen = map[corruptAt]bool{}
	}
	r.corruptSeen[at] = true
	r.violate(KindServedCorrupt, "pull of %s at offset %d: %v", at.queue, at.offset, err)
}

// corruptAt is where a corrupt answer was served.
type corruptAt struct {
	queue  linearizability.QueueKey
	offset int64
}

// singleFlips draws the single topology's bit flips of the broker's commit log: half the seeds
// have them, every 10 to 40 s on average. From a PRNG of their own, so that the rest of the
// plan stays what it was before they were added.
func singleFlips(seed uint64, d time.Duration) []faults.Fault {
	rng := rand.New(rand.NewPCG(seed, 0xb17f1175))
	if rng.IntN(2) != 0 {
		return nil
	}
	cfg := faults.Config{Targets: []string{BrokerAddr}, FlipLog: store.CommitLogName,
		Rates: map[faults.Kind]faults.Rate{faults.BitFlip: {MeanInterval: time.Duration(10+rng.IntN(30)) * time.Second}}}
	return faults.Plan(rng, cfg, d)
}

// groupsFlipEvery is the mean interval of bit flips on each replica of the groups topology,
// and on each group's current master besides.
const groupsFlipEvery = 120 * time.Second

// groupsFlips draws bit flips of the groups topology's commit logs: on every replica, and
// aimed at each group's master (whose copy is the one consumers read).
func groupsFlips(seed uint64, replicas []string, d time.Duration) []faults.Fault {
	rng := rand.New(rand.NewPCG(seed, 0xb17f1175))
	targets := append([]string(nil), replicas...)
	for _, name := range GroupNames {
		targets = append(targets, "@master:"+name)
	}
	cfg := faults.Config{Targets: targets, FlipLog: store.CommitLogName,
		Rates: map[faults.Kind]faults.Rate{faults.BitFlip: {MeanInterval: groupsFlipEvery}}}
	return faults.Plan(rng, cfg, d)
}

// unreadableEntry stands, in replicaLog's hashes, for an entry a recorded flip destroyed.
const unreadableEntry = 0

// replicaLog hashes every entry of replica id's commit log by index. An entry that fails its
// checksum is unreadableEntry when a recorded flip struck that replica's entry there, and an
// error otherwise.
func (r *run) replicaLog(g *groupState, id int, b *brokernode.Broker) (map[uint64]uint64, error) {
	cl := b.Store().CommitLog()
	addr := g.nodes[id-1].Addr
	m := make(map[uint64]uint64, cl.LastIndex()+1-cl.FirstIndex())
	for idx := cl.FirstIndex(); idx <= cl.LastIndex(); idx++ {
		rec, err := cl.Read(idx)
		if errors.Is(err, node.ErrCorrupt) && r.flipped(addr, idx) {
			m[idx] = unreadableEntry
			continue
		}
		if err != nil {
			return nil, err
		}
		h := fnv.New64a()
		h.Write(rec)
		m[idx] = h.Sum64() | 1 // never unreadableEntry
	}
	return m, nil
}

// flipped reports whether a recorded flip struck commit-log entry index of the node at addr.
func (r *run) flipped(addr string, index uint64) bool {
	for _, f := range r.flips {
		if f.addr == addr && f.log == store.CommitLogName && f.index == index {
			return true
		}
	}
	return false
}
