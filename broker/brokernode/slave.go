package brokernode

// The slave's side of replication (see replica.go for the whole picture): it handshakes with
// the master, truncates its log where it differs from the master's, then fetches, appends and
// syncs the master's records and reports them synced in its next fetch.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/replication"
	"github.com/sluicemq/sluice/broker/store"
)

// slaveRole is a replica following the master the controller named. It refuses writes, serves
// pulls of what the master confirmed and it synced (slaveAcks), and copies the master's
// metadata (metasync.go).
type slaveRole struct {
	link    *slaveLink // nil: not connected; a new link is opened at retryAt
	retryAt time.Time
}

// slaveLink is a slave's connection to its master and the request in flight on it.
type slaveLink struct {
	conn       node.ConnID
	opaque     int32 // handshake or fetch in flight (0: none)
	sentAt     time.Time
	handshaken bool
	from       uint64 // the fetch in flight asks from here
	waitSync   bool   // the next fetch waits for the commit log to be synced to its end
}

func (*slaveRole) String() string { return "slave" }

func (*slaveRole) ready(*Broker) { panic("brokernode: a replica is ready before it has a role") }

// synced acknowledges what the master confirmed and is now durable here, and sends the fetch
// that waited for the sync.
func (s *slaveRole) synced(b *Broker) {
	b.settleAcks()
	if l := s.link; l != nil && l.waitSync && b.acks.durable >= b.store.CommitLog().LastIndex() {
		l.waitSync = false
		if l.opaque == 0 {
			s.sendFetch(b)
		}
	}
}

// tick copies the master's metadata when due, reconnects, and gives up on a master that does
// not answer.
func (s *slaveRole) tick(b *Broker) {
	b.metaSyncTick()
	now, l := b.env.Now(), s.link
	switch {
	case l == nil && !now.Before(s.retryAt):
		s.startFollowing(b)
	case l != nil && l.opaque != 0 && now.Sub(l.sentAt) > b.cfg.ReplicaFetchWait+b.cfg.ControllerTimeout:
		s.retryLater(b, slog.LevelWarn, "master does not answer; reconnecting", "master", b.repl.masterAddr)
	}
}

func (s *slaveRole) onResponse(b *Broker, c node.ConnID, resp *codec.Command) bool {
	if l := s.link; l != nil && resp.Opaque == l.opaque && c == l.conn {
		l.opaque = 0
		if l.handshaken {
			s.onFetchAnswer(b, resp)
		} else {
			s.onHandshakeAnswer(b, resp)
		}
		return true
	}
	return b.onReplicaResponse(c, resp)
}

func (s *slaveRole) connClosed(b *Broker, c node.ConnID) {
	b.replicaConnClosed(c)
	if s.link != nil && c == s.link.conn {
		s.link = nil
		s.retryAt = b.env.Now().Add(replicaRetryDelay)
	}
}

func (*slaveRole) writable(*Broker) bool { return false }

// refuseRead serves every pull: a slave serves what the master confirmed, as RocketMQ's slaves
// do for consumers while the master is gone.
func (*slaveRole) refuseRead(*Broker, *codec.Command) *codec.Command { return nil }

func (*slaveRole) suggestedBrokerID(b *Broker) int64 { return b.followerSuggestion() }

func (s *slaveRole) leave(b *Broker) {
	s.stopFollowing(b, 0)
	b.resetMetaSync()
}

// startFollowing opens a link to the master and handshakes.
func (s *slaveRole) startFollowing(b *Broker) {
	g := b.repl
	s.stopFollowing(b, 0)
	s.link = &slaveLink{conn: b.env.Dial(g.masterAddr)}
	req := codec.NewRequest(codec.ReqReplicaHandshake, codec.EncodeHeader(&codec.ReplicaHeader{BrokerID: b.cfg.BrokerID, MasterEpoch: g.epoch}), nil)
	s.sendToMaster(b, req)
}

// retryLater logs why the slave gives up on its link to the master, and drops the link; a new
// one is opened after replicaRetryDelay (tick).
func (s *slaveRole) retryLater(b *Broker, level slog.Level, msg string, args ...any) {
	b.log.Log(context.Background(), level, msg, args...)
	s.stopFollowing(b, replicaRetryDelay)
}

// stopFollowing closes the link to the master; with retry > 0 a new one is opened after it.
func (s *slaveRole) stopFollowing(b *Broker, retry time.Duration) {
	if s.link != nil {
		b.env.Close(s.link.conn)
		s.link = nil
	}
	s.retryAt = b.env.Now().Add(retry)
}

func (s *slaveRole) sendToMaster(b *Broker, req *codec.Command) {
	l := s.link
	req.Opaque = b.nextOpaque()
	l.opaque, l.sentAt = req.Opaque, b.env.Now()
	b.env.Send(l.conn, req)
}

// epochsBody is the body of a handshake answer: the master's epoch table, and once its
// retention removed messages, where its queues start (for a slave restarting its log at the
// master's first index: rebase.go).
type epochsBody struct {
	Epochs []replication.Epoch `json:"epochs"`
	// FirstIndex is the master's commit log's first index (absent: 1), QueueStarts its
	// queues' min offsets then.
	FirstIndex  uint64             `json:"firstIndex,omitempty"`
	QueueStarts []store.QueueStart `json:"queueStarts,omitempty"`
}

// decodeEpochs reads a handshake answer's body.
func decodeEpochs(body []byte) (*replication.Table, epochsBody, error) {
	var doc epochsBody
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, doc, fmt.Errorf("epoch table: %w", err)
	}
	doc.FirstIndex = max(doc.FirstIndex, 1)
	t, err := replication.NewTable(doc.Epochs)
	return t, doc, err
}

func (s *slaveRole) onHandshakeAnswer(b *Broker, resp *codec.Command) {
	g := b.repl
	if resp.Code != codec.Success {
		s.retryLater(b, slog.LevelInfo, "master refused the handshake; retrying", "master", g.masterAddr, "code", resp.Code, "remark", resp.Remark)
		return
	}
	mt, doc, err := decodeEpochs(resp.Body)
	hs, errL := codec.DecodeHeader[codec.HandshakeResponseHeader](resp)
	masterLast, masterFirst, starts := hs.LastIndex, int64(doc.FirstIndex), doc.QueueStarts
	if err != nil || errL != nil || masterLast < 0 || masterFirst < 1 || masterFirst > masterLast+1 {
		s.retryLater(b, slog.LevelError, "master's handshake answer does not decode", "err", errors.Join(err, errL),
			"firstIndex", masterFirst, "lastIndex", masterLast)
		return
	}
	if b.store.Failed() {
		// A disk error (say during an earlier truncation) failed the store: recover it as
		// after a crash, which completes or undoes what was interrupted; the divergence
		// below then truncates again from what recovery left.
		if err := b.store.Reopen(); err != nil {
			s.retryLater(b, slog.LevelError, "reopen the failed store", "err", err)
			return
		}
		b.log.Warn("reopened the store after a disk error")
		b.resetAfterReopen()
	}
	last := b.store.CommitLog().LastIndex()
	p := replication.Divergence(g.table, last, mt, uint64(masterLast))
	target, rebase := rebaseTarget(b.store.CommitLog().FirstIndex(), last, p, uint64(masterFirst))
	if rebase {
		// What this replica lacks is gone from the master (rebase.go).
		if err := b.rebaseReplica(target, mt); err != nil {
			s.retryLater(b, slog.LevelError, "restarting the log at the master's first index failed", "first", target, "err", err)
			return
		}
	}
	if cl := b.store.CommitLog(); cl.LastIndex()+1 == cl.FirstIndex() && cl.FirstIndex() == uint64(masterFirst) && b.store.Rebased() == cl.FirstIndex() {
		// Restarted at the master's first index and nothing replicated since: the queues start
		// where the master's do (again, after a crash since).
		if err := b.store.StartQueuesAt(starts); err != nil {
			s.retryLater(b, slog.LevelError, "start the queues at the master's offsets", "err", err)
			return
		}
	}
	if rebase {
		s.link.handshaken = true
		b.log.Info("replicating from master", "master", g.masterAddr, "epoch", g.epoch, "from", target, "sharedUpTo", p)
		s.sendFetch(b)
		return
	}
	if p < last {
		if b.cfg.Bugs.Has(bugs.SkipTruncation) {
			b.log.Warn("planted SkipTruncation: keeping a log that differs from the master's after index", "index", p, "last", last)
		} else if err := b.truncateReplica(p); err != nil {
			s.retryLater(b, slog.LevelError, "truncating the log to the master's failed", "after", p, "err", err)
			return
		}
	}
	if !b.cfg.Bugs.Has(bugs.SkipTruncation) && g.table.TruncateAfter(p) {
		if err := g.table.Save(b.env.Disk()); err != nil {
			s.retryLater(b, slog.LevelError, "save the epoch table", "err", err)
			return
		}
	}
	s.link.handshaken = true
	b.log.Info("replicating from master", "master", g.masterAddr, "epoch", g.epoch, "from", b.store.CommitLog().LastIndex()+1, "sharedUpTo", p)
	s.sendFetch(b)
}

// resetAfterReopen forgets what the broker kept about the store's unsynced tail: the
// reopened store is what recovery left on disk.
func (b *Broker) resetAfterReopen() {
	b.acks.reopened(b.store.CommitLog().LastIndex())
	b.delay.unsynced = b.delay.unsynced[:0]
	b.ckptPending = nil
}

// truncateReplica cuts the log after p, with everything the broker keeps about what goes.
func (b *Broker) truncateReplica(p uint64) error {
	last := b.store.CommitLog().LastIndex()
	if err := b.store.TruncateAfter(p); err != nil {
		return err
	}
	b.log.Warn("truncated the log where it differs from the master's", "after", p, "dropped", last-p)
	b.observe(Truncated{Epoch: b.repl.epoch, After: p, Dropped: last - p})
	b.acks.truncateAfter(p)
	d := len(b.delay.unsynced)
	for d > 0 && b.delay.unsynced[d-1].index > p {
		d--
	}
	b.delay.unsynced = b.delay.unsynced[:d]
	b.ckptPending = nil // the store abandoned the checkpoint in flight
	return nil
}

func (s *slaveRole) sendFetch(b *Broker) {
	g := b.repl
	last := b.store.CommitLog().LastIndex()
	synced := b.acks.durable
	if b.cfg.Bugs.Has(bugs.SlaveAckBeforeFsync) {
		synced = last
	}
	synced = min(synced, last)
	b.assertReportable(synced)
	s.link.from = last + 1
	req := codec.NewRequest(codec.ReqReplicaFetch, codec.EncodeHeader(&codec.ReplicaFetchHeader{
		BrokerID: b.cfg.BrokerID, MasterEpoch: g.epoch, From: int64(last + 1), Synced: int64(synced),
	}), nil)
	s.sendToMaster(b, req)
}

// assertReportable panics if a slave is about to report entries synced beyond what its commit
// log has made durable (b.acks.durable, raised only by fsync completions and lowered by
// truncations, so never beyond the log's last index): its master would count them towards
// acknowledgements that a power loss of this replica could then lose. (bugs.SlaveAckBeforeFsync, a planted bug for the simulator's
// own checks, does exactly that; it switches the assertion off so that a semantic check, not
// this panic, has to catch it.)
func (b *Broker) assertReportable(synced uint64) {
	if b.cfg.Bugs.Has(bugs.SlaveAckBeforeFsync) {
		return
	}
	if last := b.store.CommitLog().LastIndex(); synced > b.acks.durable || b.acks.durable > last {
		panic(fmt.Sprintf("brokernode: slave %s/%d would report index %d synced, but its commit log (last index %d) is durable only up to %d",
			b.cfg.BrokerName, b.cfg.BrokerID, synced, last, b.acks.durable))
	}
}

// splitRecords cuts a fetch answer's body into stored records by their size words (each is
// checked whole by the store when appended).
func splitRecords(body []byte) ([][]byte, error) {
	var out [][]byte
	for len(body) > 0 {
		if len(body) < 4 {
			return nil, fmt.Errorf("%d bytes left after %d records, too few for a record", len(body), len(out))
		}
		n := int(binary.BigEndian.Uint32(body))
		if n < 4 || n > len(body) {
			return nil, fmt.Errorf("record %d says %d bytes, %d left", len(out), n, len(body))
		}
		out = append(out, body[:n])
		body = body[n:]
	}
	return out, nil
}

func (s *slaveRole) onFetchAnswer(b *Broker, resp *codec.Command) {
	g := b.repl
	if resp.Code != codec.Success {
		s.retryLater(b, slog.LevelInfo, "master refused the fetch; handshaking again", "master", g.masterAddr, "code", resp.Code, "remark", resp.Remark)
		return
	}
	fh, errH := codec.DecodeHeader[codec.FetchResponseHeader](resp)
	epoch, start, confirmed := fh.Epoch, fh.EpochStart, fh.Confirmed
	recs, errR := splitRecords(resp.Body)
	if err := errors.Join(errH, errR); err != nil || epoch < 0 || start < 0 || confirmed < 0 {
		s.retryLater(b, slog.LevelError, "master's fetch answer does not decode", "err", err)
		return
	}
	index := s.link.from
	newTopic := false
	for _, rec := range recs {
		if err := b.adoptEpoch(epoch, uint64(start), index); err != nil {
			s.retryLater(b, slog.LevelError, "replicated records do not fit the epoch table; handshaking again", "index", index, "err", err)
			return
		}
		m, _, derr := codec.DecodeRecord(rec)
		if derr == nil {
			_, known := b.store.Topic(m.Topic)
			newTopic = newTopic || !known
		}
		res, err := b.store.AppendReplica(index, rec)
		if err != nil {
			if errors.Is(err, store.ErrDiverged) {
				// Perhaps a topic deleted and created again on the master, whose tombstone
				// this replica has not adopted yet: copy the master's topics now.
				g.meta.idle = 0
			}
			s.retryLater(b, slog.LevelError, "append a replicated record; handshaking again", "index", index, "err", err)
			return
		}
		if derr == nil {
			b.acks.add(pendingAck{index: res.Index, queue: queueKey{topic: m.Topic, queue: m.QueueID}})
		}
		index++
	}
	if newTopic {
		// A topic first seen in replicated records (created on the master) is registered at
		// once: while the master is gone, consumers find the group's queues only through
		// routes its slaves registered.
		b.registerAll()
	}
	g.masterConfirmed = max(g.masterConfirmed, uint64(confirmed))
	if len(recs) > 0 {
		b.requestSync()
		if !b.cfg.Bugs.Has(bugs.SlaveAckBeforeFsync) {
			s.link.waitSync = true
			return
		}
	}
	b.settleAcks()
	s.sendFetch(b)
}

// adoptEpoch checks that a record for index from the master's epoch (which started at start)
// may follow the local log, and records the epoch in the table first if it is new here.
func (b *Broker) adoptEpoch(epoch int64, start, index uint64) error {
	t := b.repl.table
	switch le := t.LastEpoch(); {
	case epoch == le:
		return nil
	case epoch < le:
		return fmt.Errorf("master's record of epoch %d follows local epoch %d", epoch, le)
	case start != index && !b.cfg.Bugs.Has(bugs.SkipTruncation):
		return fmt.Errorf("master's epoch %d starts at %d, but its first record here would be at %d", epoch, start, index)
	}
	old := t.Entries()
	t.Append(epoch, index)
	if err := t.Save(b.env.Disk()); err != nil {
		b.repl.table, _ = replication.NewTable(old)
		return err
	}
	return nil
}
