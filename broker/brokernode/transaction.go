package brokernode

// Transactional messages (docs/protocol.md, "Transactions"), kept the way the Java 4.x broker keeps them:
//
//   - A half message (SEND_MESSAGE with TRAN_MSG=true) is stored in RMQ_SYS_TRANS_HALF_TOPIC
//     queue 0 with REAL_TOPIC and REAL_QID: consumers of the real topic never see it.
//   - END_TRANSACTION resolves it. Commit writes a copy to the real topic and queue (TRAN_MSG
//     removed, sysFlag transaction type commit) and then an op mark; rollback writes only the
//     op mark. An op mark is a message in RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0 whose body is the
//     half's queue offset. It makes a decision durable and lets a repeated decision be
//     recognised (a second commit delivers nothing).
//   - A pass every TxnCheckInterval asks a producer of the half's group (CHECK_TRANSACTION_STATE,
//     on a connection known from its heartbeats) about every unresolved half older than
//     TxnTimeout, up to TxnCheckMax times; then it gives up and discards the half (an op mark,
//     nothing delivered).
//
// Everything durable lives in the store: the two queues, plus two offsets of the group
// CID_SYS_RMQ_TRANS. On the half queue the offset is the progress: every half below it is
// resolved by a synced op mark. On the op queue it is where a restart starts reading op marks:
// every op mark below it resolves a half below the progress. Recovery reads the op queue from
// there and so knows every decision taken on halves at or above the progress.
//
// A crash between the two writes of a commit: the copy and its op mark are appended back to back
// in one event, and a crash keeps a prefix of the commit log, so an op mark can be lost while its
// copy survives only if the copy is the last entry of the recovered commit log. Recovery looks at
// that entry (a committed message's PreparedTransactionOffset points at its half) and writes the
// missing op mark, so the half is not checked back and delivered a second time.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// The transaction system topics (Java TopicValidator) and the group whose offsets record the
// progress through them (Java MixAll.CID_SYS_RMQ_TRANS).
const (
	HalfTopic = "RMQ_SYS_TRANS_HALF_TOPIC"
	OpTopic   = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	txnGroup  = "CID_SYS_RMQ_TRANS"

	// propResolution is set on every op mark: commit, rollback or discard.
	propResolution = "TXN_RESOLUTION"
	// maxCheckScan bounds the half messages one check pass reads.
	maxCheckScan = 10000
)

// Defaults of the transaction settings, Java's transactionCheckInterval, transactionTimeOut and
// transactionCheckMax.
const (
	DefaultTxnCheckInterval = 60 * time.Second
	DefaultTxnTimeout       = 6 * time.Second
	DefaultTxnCheckMax      = 15
)

type txnCheckTimer struct{}

// resolution is how a half message ended.
type resolution int8

const (
	resolveCommit resolution = iota + 1
	resolveRollback
	// resolveDiscard: nobody resolved it within TxnCheckMax checks; nothing is delivered.
	resolveDiscard
)

var resolutionNames = map[resolution]string{resolveCommit: "commit", resolveRollback: "rollback", resolveDiscard: "discard"}

func (r resolution) String() string { return resolutionNames[r] }

func parseResolution(s string) (resolution, bool) {
	for r, name := range resolutionNames {
		if name == s {
			return r, true
		}
	}
	return 0, false
}

// resolved is the decision on one half message at or above the progress.
type resolved struct {
	how resolution
	// opIndex is the commit-log index of the op mark; 0 while it could not be written (the
	// check pass retries it).
	opIndex uint64
}

// opRef is one op mark in the op queue: its own offset and the half offset it resolves.
type opRef struct {
	opOffset int64
	half     int64
}

// transactions is the broker's transaction bookkeeping; the durable part is in the store (see
// the comment at the top of this file).
type transactions struct {
	// progress: every half below it is resolved by a synced op mark.
	progress int64
	// opProgress: every op mark below it resolves a half below progress.
	opProgress int64
	// ops lists, in op-queue order, the op marks from opProgress on.
	ops []opRef
	// resolved holds the decisions on halves at or above progress.
	resolved map[int64]resolved
	// checks counts, per unresolved half, the check passes that found it due (not persisted:
	// a restart gives every half TxnCheckMax more).
	checks map[int64]int
	// producers tracks the live clients of every producer group, with the bookkeeping of
	// consumer groups (without subscriptions), to pick a connection for check-backs.
	producers *consumerGroups
	// picks rotates check-backs over a group's producers.
	picks int
}

func newTransactions() *transactions {
	return &transactions{resolved: map[int64]resolved{}, checks: map[int64]int{}, producers: newConsumerGroups()}
}

// CheckTxnSettings says what is wrong with the transaction settings of c, if anything.
func (c Config) CheckTxnSettings() error {
	switch {
	case c.TxnCheckInterval <= 0:
		return fmt.Errorf("transaction check interval %v must be positive", c.TxnCheckInterval)
	case c.TxnTimeout <= 0:
		return fmt.Errorf("transaction timeout %v must be positive", c.TxnTimeout)
	case c.TxnCheckMax < 1:
		return fmt.Errorf("transaction check maximum %d must be at least 1", c.TxnCheckMax)
	}
	return nil
}

// isHalfMessage applies the Java broker's rule (TRAN_MSG=true), and also takes a prepared
// transaction type in sysFlag as one: stored as a normal message it would be delivered at once.
func isHalfMessage(m *codec.Message) bool {
	tran, _ := strconv.ParseBool(codec.Property(m.Properties, codec.PropTranMsg))
	return tran || m.SysFlag&codec.SysFlagTransactionMask == codec.SysFlagTxnPrepared
}

// isTxnTopic reports whether clients may not send to topic: only the broker writes there.
func isTxnTopic(topic string) bool { return topic == HalfTopic || topic == OpTopic }

// prepareHalf turns m, addressed to its real topic and queue, into the half message to store:
// topic HalfTopic queue 0, with REAL_TOPIC, REAL_QID, TRAN_MSG and PGROUP set (PGROUP from the
// send header when the producer did not set it) and sysFlag type prepared.
func (b *Broker) prepareHalf(m *codec.Message, headerGroup string) error {
	group := codec.Property(m.Properties, codec.PropProducerGroup)
	if group == "" {
		group = headerGroup
	}
	if group == "" || strings.ContainsAny(group, "\x01\x02") {
		return fmt.Errorf("transactional message needs a producer group (PGROUP property or producerGroup header), got %q", group)
	}
	props := codec.SetProperty(m.Properties, codec.PropRealTopc, m.Topic)
	props = codec.SetProperty(props, codec.PropRealQID, strconv.Itoa(int(m.QueueID)))
	props = codec.SetProperty(props, codec.PropTranMsg, "true")
	props = codec.SetProperty(props, codec.PropProducerGroup, group)
	if len(props) > codec.MaxPropertiesBytes {
		return fmt.Errorf("transactional message properties are longer than %d bytes with REAL_TOPIC and REAL_QID added", codec.MaxPropertiesBytes)
	}
	if err := b.ensureTxnTopic(HalfTopic); err != nil {
		return err
	}
	m.Topic, m.QueueID = HalfTopic, 0
	m.SysFlag = m.SysFlag&^codec.SysFlagTransactionMask | codec.SysFlagTxnPrepared
	m.Properties = props
	return nil
}

// ensureTxnTopic creates a transaction system topic (1 queue) if it does not exist yet.
func (b *Broker) ensureTxnTopic(name string) error {
	if _, ok := b.store.Topic(name); ok {
		return nil
	}
	err := b.store.CreateTopic(store.TopicConfig{Name: name, ReadQueueNums: 1, WriteQueueNums: 1, Perm: route.PermRead | route.PermWrite})
	if err != nil {
		return fmt.Errorf("create transaction topic %s: %w", name, err)
	}
	return nil
}

// handleEndTransaction serves END_TRANSACTION (37): commit (8), rollback (12) or unknown (0,
// ignored: the check pass asks again). The official client does not wait for the answer; it
// is sent anyway, once the decision is durable in sync-flush mode.
func (b *Broker) handleEndTransaction(c node.ConnID, req *codec.Command) *codec.Command {
	if !b.ready {
		return codec.NewResponse(req, codec.ServiceNotAvailable, "broker is recovering its store")
	}
	h, err := codec.DecodeHeader[codec.EndTransactionHeader](req)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "end transaction: "+err.Error())
	}
	group, tranOffset, clOffset, kind := h.ProducerGroup, h.TranStateTableOffset, h.CommitLogOffset, h.CommitOrRollback
	if b.cfg.Bugs.Has(bugs.RollbackAsCommit) && kind&codec.SysFlagTxnCommit != 0 {
		kind = codec.SysFlagTxnCommit // the planted bug: the commit bit tested, not the type compared
	}
	var how resolution
	switch kind {
	case 0:
		b.log.Debug("transaction state unknown; it will be checked back", "group", group, "commitLogOffset", clOffset,
			"fromCheck", h.FromTransactionCheck, "remark", req.Remark)
		return codec.NewResponse(req, codec.Success, "transaction state unknown; the broker will check back")
	case codec.SysFlagTxnCommit:
		how = resolveCommit
	case codec.SysFlagTxnRollback:
		how = resolveRollback
	default:
		return codec.NewResponse(req, codec.SystemError,
			fmt.Sprintf("end transaction: commitOrRollback %d must be 0 (unknown), 8 (commit) or 12 (rollback)", kind))
	}
	half, err := b.readHalf(clOffset)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "end transaction: "+err.Error())
	}
	if pg := codec.Property(half.Properties, codec.PropProducerGroup); pg != group {
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf(
			"end transaction: the half message at commitLogOffset %d belongs to producer group %q, not %q", clOffset, pg, group))
	}
	if half.QueueOffset != tranOffset {
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf(
			"end transaction: the half message at commitLogOffset %d has queue offset %d, not tranStateTableOffset %d",
			clOffset, half.QueueOffset, tranOffset))
	}
	// In async-flush mode a crash may lose the half message and let another take both its
	// commit-log index and its queue offset: deciding that one would deliver (or drop) a
	// transaction its producer never decided. The half must be the one named (its UNIQ_KEY).
	if want, got := h.MsgID, codec.Property(half.Properties, codec.PropUniqKey); want != "" && got != "" && want != got {
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf(
			"end transaction: the half message at commitLogOffset %d is %s, not %s (lost in a crash?)", clOffset, got, want))
	}
	t := b.txn
	if half.QueueOffset < t.progress {
		return codec.NewResponse(req, codec.Success, "transaction already resolved; the decision is final")
	}
	if r, ok := t.resolved[half.QueueOffset]; ok {
		if r.how == how {
			return codec.NewResponse(req, codec.Success, "transaction already resolved: "+how.String())
		}
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf(
			"end transaction: the half message at commitLogOffset %d was already resolved (%s); %s refused", clOffset, r.how, how))
	}
	if how == resolveCommit {
		if err := b.putCommitted(half); err != nil {
			b.log.Error("commit transaction", "commitLogOffset", clOffset, "err", err)
			return codec.NewResponse(req, codec.SystemError, "end transaction: write the committed message: "+err.Error())
		}
	}
	opIndex, err := b.writeOpMark(half.QueueOffset, how)
	if err != nil {
		b.log.Error("write transaction op mark", "half", half.QueueOffset, "resolution", how, "err", err)
		if how == resolveCommit {
			// The committed message is written: remember the decision so it is never written
			// twice, and let the check pass retry the mark.
			t.resolved[half.QueueOffset] = resolved{how: how}
		}
		return codec.NewResponse(req, codec.SystemError, "end transaction: record the decision: "+err.Error())
	}
	b.log.Debug("transaction resolved", "half", half.QueueOffset, "resolution", how, "fromCheck", h.FromTransactionCheck)
	return b.answerOnAck(c, opIndex, codec.NewResponse(req, codec.Success, ""))
}

// readHalf returns the half message at commit-log index clOffset.
func (b *Broker) readHalf(clOffset int64) (*codec.Message, error) {
	if clOffset <= 0 {
		return nil, fmt.Errorf("commitLogOffset %d is not a commit-log index", clOffset)
	}
	m, err := b.store.ReadIndex(uint64(clOffset))
	if err != nil {
		return nil, fmt.Errorf("no half message at commitLogOffset %d: %w", clOffset, err)
	}
	if m.Topic != HalfTopic {
		return nil, fmt.Errorf("the message at commitLogOffset %d is not a half message (topic %s)", clOffset, m.Topic)
	}
	return m, nil
}

// putCommitted writes the committed copy of half to its real topic and queue.
func (b *Broker) putCommitted(half *codec.Message) error {
	topic := codec.Property(half.Properties, codec.PropRealTopc)
	qid, err := strconv.ParseInt(codec.Property(half.Properties, codec.PropRealQID), 10, 32)
	if err != nil {
		return fmt.Errorf("half message at index %d has no valid REAL_QID: %w", half.PhysicalOffset, err)
	}
	tc, ok := b.store.Topic(topic)
	if !ok {
		return fmt.Errorf("the real topic %q of the half message at index %d does not exist", topic, half.PhysicalOffset)
	}
	if qid < 0 || qid >= int64(tc.WriteQueueNums) {
		return fmt.Errorf("the real queue %d of the half message at index %d is out of range for topic %s", qid, half.PhysicalOffset, topic)
	}
	props := codec.DeleteProperty(half.Properties, codec.PropTranMsg)
	props = codec.DeleteProperty(props, codec.PropRealTopc)
	props = codec.DeleteProperty(props, codec.PropRealQID)
	m := b.restamped(half)
	m.Topic, m.QueueID = topic, int32(qid)
	m.SysFlag = half.SysFlag&^codec.SysFlagTransactionMask | codec.SysFlagTxnCommit
	m.PreparedTransactionOffset = half.PhysicalOffset
	m.Properties = props
	_, err = b.putMessage(m)
	return err
}

// writeOpMark records the decision on the half at queue offset half and returns the mark's
// commit-log index.
func (b *Broker) writeOpMark(half int64, how resolution) (uint64, error) {
	if err := b.ensureTxnTopic(OpTopic); err != nil {
		return 0, err
	}
	now := b.env.Now().UnixMilli()
	m := &codec.Message{
		Topic:          OpTopic,
		BornTimestamp:  now,
		BornHost:       b.storeHost,
		StoreTimestamp: now,
		StoreHost:      b.storeHost,
		Body:           []byte(strconv.FormatInt(half, 10)),
		Properties:     codec.EncodeProperties(map[string]string{codec.PropTags: "d", propResolution: how.String()}),
	}
	res, err := b.putMessage(m)
	if err != nil {
		return 0, err
	}
	t := b.txn
	t.resolved[half] = resolved{how: how, opIndex: res.Index}
	delete(t.checks, half)
	t.ops = append(t.ops, opRef{opOffset: res.QueueOffset, half: half})
	return res.Index, nil
}

// noteOpMark takes in an op mark read back from the op queue (recovery).
func (b *Broker) noteOpMark(m *codec.Message) {
	half, err := strconv.ParseInt(string(m.Body), 10, 64)
	how, ok := parseResolution(codec.Property(m.Properties, propResolution))
	if err != nil || !ok || half < 0 {
		b.log.Warn("skipping an entry of the transaction op queue that is not an op mark",
			"opOffset", m.QueueOffset, "index", m.PhysicalOffset)
		return
	}
	t := b.txn
	if half >= t.progress {
		t.resolved[half] = resolved{how: how, opIndex: uint64(m.PhysicalOffset)}
	}
	t.ops = append(t.ops, opRef{opOffset: m.QueueOffset, half: half})
}

// advanceTxnProgress moves the progress over every half resolved by a synced op mark, and the
// op-queue offset over every op mark below the progress, and stores both (consumer offsets,
// flushed on their timer).
func (b *Broker) advanceTxnProgress() {
	t := b.txn
	for {
		r, ok := t.resolved[t.progress]
		if !ok || r.opIndex == 0 || r.opIndex > b.acks.durable {
			break
		}
		delete(t.resolved, t.progress)
		delete(t.checks, t.progress)
		t.progress++
	}
	n := 0
	for n < len(t.ops) && t.ops[n].half < t.progress {
		t.opProgress = t.ops[n].opOffset + 1
		n++
	}
	t.ops = t.ops[n:]
	b.store.CommitOffset(txnGroup, HalfTopic, 0, t.progress)
	b.store.CommitOffset(txnGroup, OpTopic, 0, t.opProgress)
}

// txnOffset is the stored offset of txnGroup on topic's queue 0, kept inside the queue.
func (b *Broker) txnOffset(topic string) int64 {
	off, _ := b.store.QueryOffset(txnGroup, topic, 0)
	return min(max(off, b.store.MinOffset(topic, 0)), b.store.MaxOffset(topic, 0))
}

// recoverTransactions rebuilds the bookkeeping from the store once the broker is ready (every
// recovered entry synced and confirmed), and starts the check timer.
func (b *Broker) recoverTransactions() {
	b.rebuildTransactions()
	b.env.SetTimer(b.cfg.TxnCheckInterval, txnCheckTimer{})
}

// rebuildTransactions rebuilds the bookkeeping from the store: the progress offsets and the op
// marks from the op progress on. A replica of a group does it each time it becomes master, as
// its log then holds the op marks other masters wrote (check counts start afresh: they are
// kept in memory only).
func (b *Broker) rebuildTransactions() {
	t := b.txn
	clear(t.resolved)
	clear(t.checks)
	t.ops = nil
	t.progress = b.txnOffset(HalfTopic)
	t.opProgress = b.txnOffset(OpTopic)
	if err := b.scanQueue(OpTopic, t.opProgress, -1, func(m *codec.Message) bool { b.noteOpMark(m); return true }); err != nil {
		// Decisions that cannot be read may be asked again; a producer then answers the same.
		b.log.Error("read transaction op marks; some resolved transactions may be checked back again", "err", err)
	}
	b.repairLastCommit()
	open := 0
	if maxOff := b.store.MaxOffset(HalfTopic, 0); maxOff > t.progress {
		open = int(maxOff-t.progress) - len(t.resolved)
	}
	if open > 0 || len(t.resolved) > 0 {
		b.log.Info("transactions recovered", "progress", t.progress, "unresolved", open, "resolved", len(t.resolved))
	}
}

// repairLastCommit writes the op mark of a committed message that ends the commit log without
// it (a crash between the two writes of a commit; see the top of this file).
func (b *Broker) repairLastCommit() {
	last := b.store.CommitLog().LastIndex()
	if last == 0 || last < b.store.CommitLog().FirstIndex() {
		return
	}
	m, err := b.store.ReadIndex(last)
	if err != nil {
		b.log.Error("read the last commit-log entry for transaction recovery", "index", last, "err", err)
		return
	}
	if m.SysFlag&codec.SysFlagTransactionMask != codec.SysFlagTxnCommit || m.PreparedTransactionOffset <= 0 || isTxnTopic(m.Topic) {
		return
	}
	half, err := b.readHalf(m.PreparedTransactionOffset)
	if err != nil {
		return
	}
	t := b.txn
	if _, done := t.resolved[half.QueueOffset]; done || half.QueueOffset < t.progress {
		return
	}
	b.log.Warn("committed transactional message without its op mark (crash between the two writes); recording the commit",
		"half", half.QueueOffset, "index", last)
	if _, err := b.writeOpMark(half.QueueOffset, resolveCommit); err != nil {
		b.log.Error("write transaction op mark", "half", half.QueueOffset, "err", err)
		t.resolved[half.QueueOffset] = resolved{how: resolveCommit}
	}
}

// scanQueue calls fn on the confirmed messages of topic's queue 0 from offset from on, until
// fn returns false, the queue ends or limit messages were read (limit < 0: no limit).
func (b *Broker) scanQueue(topic string, from int64, limit int, fn func(*codec.Message) bool) error {
	off, read := from, 0
	for limit < 0 || read < limit {
		res, err := b.store.Get(topic, 0, off, 64, nil)
		if err != nil {
			return fmt.Errorf("read %s at offset %d: %w", topic, off, err)
		}
		if res.Status != store.Found {
			switch res.Status {
			case store.OffsetTooSmall, store.OffsetFoundNull, store.MessageWasRemoving:
				if res.NextOffset > off {
					off = res.NextOffset // skip what is gone
					continue
				}
			}
			return nil
		}
		for _, rec := range res.Records {
			m, _, err := codec.DecodeRecord(rec)
			if err != nil {
				return fmt.Errorf("decode %s at offset %d: %w", topic, off, err)
			}
			read++
			if !fn(m) {
				return nil
			}
		}
		if res.NextOffset <= off {
			panic(fmt.Sprintf("brokernode: store.Get on %s found messages at offset %d without moving past it", topic, off))
		}
		off = res.NextOffset
	}
	return nil
}

// checkTransactions is the timer-driven pass: record progress, retry op marks that could not
// be written, and check back every unresolved half older than TxnTimeout (the halves are in
// store order, so the pass stops at the first that is too young).
func (b *Broker) checkTransactions() {
	if !b.role.writable(b) {
		return // a replica that is not the master
	}
	t := b.txn
	for _, half := range slices.Sorted(maps.Keys(t.resolved)) {
		if r := t.resolved[half]; r.opIndex == 0 {
			if _, err := b.writeOpMark(half, r.how); err != nil {
				b.log.Error("retry transaction op mark", "half", half, "resolution", r.how, "err", err)
			}
		}
	}
	b.advanceTxnProgress()
	now := b.env.Now().UnixMilli()
	timeoutMs := b.cfg.TxnTimeout.Milliseconds()
	unasked := map[string]int{} // due halves whose group has no producer connected, by group
	next := t.progress
	err := b.scanQueue(HalfTopic, t.progress, maxCheckScan, func(m *codec.Message) bool {
		b.discardUnreadableHalves(next, m.QueueOffset)
		next = m.QueueOffset + 1
		if _, done := t.resolved[m.QueueOffset]; done {
			return true
		}
		if now-m.StoreTimestamp < timeoutMs {
			return false
		}
		if group, asked := b.checkHalf(m); !asked {
			unasked[group]++
		}
		return true
	})
	if err != nil {
		b.log.Error("transaction check pass", "err", err)
	}
	for _, group := range slices.Sorted(maps.Keys(unasked)) {
		b.log.Info("no producer of the group is connected to check its transactions", "group", group, "halves", unasked[group])
	}
}

// discardUnreadableHalves discards the halves at queue offsets from..to-1, which the check
// pass's scan skipped: their records fail their checksum (or are gone), so they can never be
// committed, and left unresolved they would hold the progress, and with it retention (which
// keeps every half from the progress on), for good: the disk would fill.
func (b *Broker) discardUnreadableHalves(from, to int64) {
	t := b.txn
	for half := from; half < to; half++ {
		if _, done := t.resolved[half]; done {
			continue
		}
		b.log.Warn("transactional message discarded, never delivered: its half message is unreadable", "half", half)
		if _, err := b.writeOpMark(half, resolveDiscard); err != nil {
			b.log.Error("write transaction op mark", "half", half, "resolution", resolveDiscard, "err", err)
			return
		}
	}
}

// checkHalf asks a producer of the half's group about it, or discards it after TxnCheckMax
// passes found it due. It reports the group, and false if no producer of it could be asked.
func (b *Broker) checkHalf(m *codec.Message) (group string, asked bool) {
	t := b.txn
	qo := m.QueueOffset
	group = codec.Property(m.Properties, codec.PropProducerGroup)
	topic := codec.Property(m.Properties, codec.PropRealTopc)
	qid, errQ := strconv.ParseInt(codec.Property(m.Properties, codec.PropRealQID), 10, 32)
	discard := func(why string) {
		b.log.Warn("transactional message discarded, never delivered: "+why, "group", group, "topic", topic,
			"msgId", codec.Property(m.Properties, codec.PropUniqKey), "half", qo)
		if _, err := b.writeOpMark(qo, resolveDiscard); err != nil {
			b.log.Error("write transaction op mark", "half", qo, "err", err)
		}
	}
	if group == "" || topic == "" || errQ != nil {
		discard("the half message lacks PGROUP, REAL_TOPIC or REAL_QID")
		return group, true
	}
	if t.checks[qo] >= b.cfg.TxnCheckMax {
		discard(fmt.Sprintf("unresolved after %d checks", t.checks[qo]))
		return group, true
	}
	t.checks[qo]++
	conn, ok := b.pickProducer(group)
	if !ok {
		return group, false
	}
	shown := *m
	shown.Topic, shown.QueueID = topic, int32(qid)
	body, err := codec.AppendRecord(nil, &shown)
	if err != nil {
		panic(fmt.Sprintf("brokernode: a stored half message does not re-encode: %v", err))
	}
	uniq := codec.Property(m.Properties, codec.PropUniqKey)
	txID := codec.Property(m.Properties, codec.PropTransactionID)
	if txID == "" {
		txID = uniq
	}
	req := codec.NewRequest(codec.ReqCheckTransactionState, codec.EncodeHeader(&codec.CheckTransactionStateHeader{
		TranStateTableOffset: qo, CommitLogOffset: m.PhysicalOffset, MsgID: uniq, TransactionID: txID,
		OffsetMsgID: codec.OffsetMsgID(m.StoreHost, m.PhysicalOffset),
	}), body)
	req.Opaque = b.nextOpaque()
	req.Flag |= codec.FlagOneway
	b.env.Send(conn, req)
	b.log.Debug("transaction checked back", "group", group, "half", qo, "check", t.checks[qo])
	return group, true
}

// pickProducer returns a connection of a live producer of group, rotating over them.
func (b *Broker) pickProducer(group string) (node.ConnID, bool) {
	t := b.txn
	ids := t.producers.members(group)
	if len(ids) == 0 {
		return 0, false
	}
	id := ids[t.picks%len(ids)]
	t.picks++
	return t.producers.byName[group].clients[id].conn, true
}
