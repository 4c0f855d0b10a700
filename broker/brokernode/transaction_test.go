package brokernode

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// txnConfig checks back every second, halves older than 3 s, at most 3 times.
func txnConfig() Config {
	cfg := testConfig()
	cfg.TxnCheckInterval = time.Second
	cfg.TxnTimeout = 3 * time.Second
	cfg.TxnCheckMax = 3
	return cfg
}

// producerHeartbeat is the HEART_BEAT body of a client with producers only.
func producerHeartbeat(clientID string, groups ...string) []byte {
	var set []any
	for _, g := range groups {
		set = append(set, map[string]any{"groupName": g})
	}
	b, _ := json.Marshal(map[string]any{"clientID": clientID, "producerDataSet": set, "consumerDataSet": []any{}})
	return b
}

// producerConn opens a connection that heartbeats as a producer of the groups.
func (h *brokerHarness) producerConn(remote, clientID string, groups ...string) node.ConnID {
	h.t.Helper()
	c := h.env.accept(h.b, remote)
	if resp := h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, producerHeartbeat(clientID, groups...))); resp.Code != codec.Success {
		h.t.Fatalf("producer heartbeat: code %d (%s)", resp.Code, resp.Remark)
	}
	return c
}

// halfSent is where a half message went, as the client learns it from the send response.
type halfSent struct {
	uniq        string
	clOffset    int64 // parsed out of the response msgId, as the client does
	queueOffset int64
}

// sendHalf sends a transactional half message the way the official client does (sysFlag 4,
// TRAN_MSG and PGROUP), completes its fsync and returns where it went.
func (h *brokerHarness) sendHalf(c node.ConnID, group, topic string, queue int, body, uniq string) halfSent {
	h.t.Helper()
	ext := sendExt(topic, strconv.Itoa(queue), map[string]string{
		"TRAN_MSG": "true", "PGROUP": group, "UNIQ_KEY": uniq, "TAGS": "TagT", "user": "u-" + uniq})
	ext["producerGroup"] = group
	ext["sysFlag"] = "4"
	op := h.request(c, codec.ReqSendMessage, ext, []byte(body))
	h.syncAll()
	resp := h.mustAnswer(c, op)
	if resp.Code != codec.Success {
		h.t.Fatalf("send half %s: code %d (%s)", uniq, resp.Code, resp.Remark)
	}
	_, off, err := codec.ParseOffsetMsgID(resp.Ext("msgId"))
	if err != nil {
		h.t.Fatalf("send half %s: the response msgId %q does not parse (the official client would panic): %v", uniq, resp.Ext("msgId"), err)
	}
	qo, err := strconv.ParseInt(resp.Ext("queueOffset"), 10, 64)
	if err != nil {
		h.t.Fatalf("send half %s: queueOffset %q", uniq, resp.Ext("queueOffset"))
	}
	return halfSent{uniq: uniq, clOffset: off, queueOffset: qo}
}

// endTxn sends END_TRANSACTION as the official client does: kind 0, 8 (commit) or 12 (rollback).
func (h *brokerHarness) endTxn(c node.ConnID, group string, hs halfSent, kind int, fromCheck bool) int32 {
	return h.request(c, codec.ReqEndTransaction, map[string]string{
		"producerGroup": group, "tranStateTableOffset": strconv.FormatInt(hs.queueOffset, 10),
		"commitLogOffset": strconv.FormatInt(hs.clOffset, 10), "commitOrRollback": strconv.Itoa(kind),
		"fromTransactionCheck": strconv.FormatBool(fromCheck), "msgId": hs.uniq, "transactionId": "", "bname": "broker-a",
	}, nil)
}

// endTxnAnswer sends END_TRANSACTION, completes the fsyncs and returns the answer.
func (h *brokerHarness) endTxnAnswer(c node.ConnID, group string, hs halfSent, kind int, fromCheck bool) *codec.Command {
	h.t.Helper()
	op := h.endTxn(c, group, hs, kind, fromCheck)
	h.syncAll()
	return h.mustAnswer(c, op)
}

// queueMessages pulls every message of a queue.
func (h *brokerHarness) queueMessages(topic string, queue int) []*codec.Message {
	h.t.Helper()
	c := h.env.accept(h.b, "127.0.9.9:40000")
	resp := h.mustAnswer(c, h.pull(c, topic, queue, 0, "maxMsgNums", "1024"))
	if resp.Code != codec.Success {
		return nil
	}
	return decodeBody(h.t, resp.Body)
}

// checks lists the CHECK_TRANSACTION_STATE requests sent on c.
func (h *brokerHarness) checks(c node.ConnID) []*codec.Command {
	var out []*codec.Command
	for _, f := range h.framesTo(c) {
		if f.Code == codec.ReqCheckTransactionState {
			out = append(out, f)
		}
	}
	return out
}

// A committed transaction is delivered once, exactly as sent, and only after the commit; the
// answer to END_TRANSACTION waits for the fsync; repeating the commit (by the producer or from
// a check) delivers nothing more, and a later rollback is refused.
func TestTxnCommitDeliversOnceAsSent(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	hs := h.sendHalf(p, "pg", "Orders", 1, "order-1", "U1")
	if hs.queueOffset != 0 {
		t.Errorf("first half message: queueOffset %d, want 0 (its offset in the half queue)", hs.queueOffset)
	}
	if got := h.queueMessages("Orders", 1); len(got) != 0 {
		t.Fatalf("a half message is visible to consumers before its commit: %d messages", len(got))
	}

	op := h.endTxn(p, "pg", hs, 8, false)
	if h.answer(p, op) != nil {
		t.Fatal("END_TRANSACTION commit was answered before the fsync that makes it durable")
	}
	if got := h.queueMessages("Orders", 1); len(got) != 0 {
		t.Fatal("the committed message is visible before its fsync")
	}
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("commit: code %d (%s)", resp.Code, resp.Remark)
	}
	got := h.queueMessages("Orders", 1)
	if len(got) != 1 {
		t.Fatalf("after the commit queue 1 holds %d messages, want 1", len(got))
	}
	m := got[0]
	props := codec.ParseProperties(m.Properties)
	switch {
	case m.Topic != "Orders" || m.QueueID != 1 || string(m.Body) != "order-1":
		t.Errorf("committed message: topic %s queue %d body %q", m.Topic, m.QueueID, m.Body)
	case props["UNIQ_KEY"] != "U1" || props["TAGS"] != "TagT" || props["user"] != "u-U1" || props["PGROUP"] != "pg":
		t.Errorf("committed message lost properties: %q", props)
	case props["TRAN_MSG"] != "" || props["REAL_TOPIC"] != "" || props["REAL_QID"] != "":
		t.Errorf("committed message still carries half-message properties: %q", props)
	case m.SysFlag&codec.SysFlagTransactionMask != codec.SysFlagTxnCommit:
		t.Errorf("committed message sysFlag %#x, want transaction type commit (8)", m.SysFlag)
	case m.PreparedTransactionOffset != hs.clOffset:
		t.Errorf("committed message PreparedTransactionOffset %d, want the half's index %d", m.PreparedTransactionOffset, hs.clOffset)
	}

	if resp := h.endTxnAnswer(p, "pg", hs, 8, false); resp.Code != codec.Success {
		t.Errorf("second commit: code %d (%s), want success (idempotent)", resp.Code, resp.Remark)
	}
	if resp := h.endTxnAnswer(p, "pg", hs, 8, true); resp.Code != codec.Success {
		t.Errorf("commit from a check: code %d (%s), want success (idempotent)", resp.Code, resp.Remark)
	}
	if resp := h.endTxnAnswer(p, "pg", hs, 12, false); resp.Code != codec.SystemError || !strings.Contains(resp.Remark, "already resolved (commit)") {
		t.Errorf("rollback after commit: code %d (%s), want SYSTEM_ERROR saying it was committed", resp.Code, resp.Remark)
	}
	h.env.advance(h.b, 10*time.Second) // check passes, progress recorded
	if resp := h.endTxnAnswer(p, "pg", hs, 8, false); resp.Code != codec.Success {
		t.Errorf("commit after the progress moved past it: code %d (%s)", resp.Code, resp.Remark)
	}
	if got := h.queueMessages("Orders", 1); len(got) != 1 {
		t.Errorf("after repeated commits queue 1 holds %d messages, want 1", len(got))
	}
	if n := len(h.checks(p)); n != 0 {
		t.Errorf("a resolved transaction was checked back %d times", n)
	}
	if off, _ := h.b.store.QueryOffset(txnGroup, HalfTopic, 0); off != 1 {
		t.Errorf("transaction progress %d after the only half was resolved, want 1", off)
	}
}

// A rolled-back transaction is never delivered and never checked back.
func TestTxnRollbackNeverDelivers(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	hs := h.sendHalf(p, "pg", "Orders", 2, "gone", "U1")
	if resp := h.endTxnAnswer(p, "pg", hs, 12, false); resp.Code != codec.Success {
		t.Fatalf("rollback: code %d (%s)", resp.Code, resp.Remark)
	}
	if resp := h.endTxnAnswer(p, "pg", hs, 8, false); resp.Code != codec.SystemError || !strings.Contains(resp.Remark, "already resolved (rollback)") {
		t.Errorf("commit after rollback: code %d (%s), want SYSTEM_ERROR saying it was rolled back", resp.Code, resp.Remark)
	}
	h.env.advance(h.b, 20*time.Second)
	for q := range 4 {
		if got := h.queueMessages("Orders", q); len(got) != 0 {
			t.Errorf("queue %d holds %d messages after a rollback", q, len(got))
		}
	}
	if n := len(h.checks(p)); n != 0 {
		t.Errorf("a rolled-back transaction was checked back %d times", n)
	}
	// Once the progress has moved past it, only "resolved" is known, not how: a late commit
	// is still not delivered.
	h.endTxnAnswer(p, "pg", hs, 8, false)
	if got := h.queueMessages("Orders", 2); len(got) != 0 {
		t.Errorf("a commit after the rollback delivered %d messages", len(got))
	}
}

// END_TRANSACTION that does not match its half message is refused with a remark saying why,
// and delivers nothing; state 0 (unknown) is accepted and changes nothing.
func TestTxnEndTransactionRejectsMismatches(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	hs := h.sendHalf(p, "pg", "Orders", 0, "x", "U1")
	plain := h.send(p, "Orders", 3, "plain", nil)
	h.syncAll()
	_, plainOff, _ := codec.ParseOffsetMsgID(h.mustAnswer(p, plain).Ext("msgId"))

	tests := []struct {
		name   string
		edit   func(ext map[string]string)
		remark string
	}{
		{"other producer group", func(e map[string]string) { e["producerGroup"] = "other" }, `belongs to producer group "pg", not "other"`},
		{"wrong tranStateTableOffset", func(e map[string]string) { e["tranStateTableOffset"] = "7" }, "not tranStateTableOffset 7"},
		// Another transaction's half at the place of the one named (async flush: the named one
		// lost in a crash, its commit-log index and queue offset reused).
		{"another half message there", func(e map[string]string) { e["msgId"] = "U0" }, "is U1, not U0"},
		{"commitLogOffset of a normal message", func(e map[string]string) { e["commitLogOffset"] = strconv.FormatInt(plainOff, 10) }, "is not a half message"},
		{"commitLogOffset beyond the log", func(e map[string]string) { e["commitLogOffset"] = "999" }, "no half message at commitLogOffset 999"},
		{"commitLogOffset zero", func(e map[string]string) { e["commitLogOffset"] = "0" }, "not a commit-log index"},
		{"non-numeric offset", func(e map[string]string) { e["tranStateTableOffset"] = "x" }, `header field "tranStateTableOffset": "x" is not an integer`},
		{"missing commitOrRollback", func(e map[string]string) { delete(e, "commitOrRollback") }, `missing header field "commitOrRollback"`},
		{"unknown decision", func(e map[string]string) { e["commitOrRollback"] = "4" }, "must be 0 (unknown), 8 (commit) or 12 (rollback)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ext := map[string]string{"producerGroup": "pg", "tranStateTableOffset": "0",
				"commitLogOffset": strconv.FormatInt(hs.clOffset, 10), "commitOrRollback": "8", "fromTransactionCheck": "false"}
			tc.edit(ext)
			op := h.request(p, codec.ReqEndTransaction, ext, nil)
			h.syncAll()
			resp := h.mustAnswer(p, op)
			if resp.Code != codec.SystemError || !strings.Contains(resp.Remark, tc.remark) {
				t.Errorf("code %d remark %q, want SYSTEM_ERROR containing %q", resp.Code, resp.Remark, tc.remark)
			}
		})
	}
	if resp := h.endTxnAnswer(p, "pg", hs, 0, false); resp.Code != codec.Success {
		t.Errorf("state unknown: code %d (%s), want success", resp.Code, resp.Remark)
	}
	if got := h.queueMessages("Orders", 0); len(got) != 0 {
		t.Errorf("refused decisions delivered %d messages", len(got))
	}
	// The half is still open: a good commit works.
	if resp := h.endTxnAnswer(p, "pg", hs, 8, false); resp.Code != codec.Success {
		t.Fatalf("commit after the refused ones: code %d (%s)", resp.Code, resp.Remark)
	}
	if got := h.queueMessages("Orders", 0); len(got) != 1 {
		t.Errorf("queue 0 holds %d messages after the commit, want 1", len(got))
	}
	// Clients cannot write the transaction topics.
	for _, topic := range []string{HalfTopic, OpTopic} {
		op := h.send(p, topic, 0, "forged", nil)
		h.syncAll()
		if resp := h.mustAnswer(p, op); resp.Code != codec.NoPermission {
			t.Errorf("send to %s: code %d (%s), want NO_PERMISSION", topic, resp.Code, resp.Remark)
		}
	}
}

// An unresolved half message older than the timeout is checked back with a producer of its
// group, carrying what the official client needs; "unknown" gets it checked again, a commit
// from the check delivers it, and then the checks stop.
func TestTxnCheckBackAfterTimeout(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	hs := h.sendHalf(p, "pg", "Orders", 1, "order-1", "U1")

	h.env.advance(h.b, 2500*time.Millisecond)
	if n := len(h.checks(p)); n != 0 {
		t.Fatalf("checked back %d times before the 3 s timeout", n)
	}
	h.env.advance(h.b, time.Second)
	checks := h.checks(p)
	if len(checks) != 1 {
		t.Fatalf("%d checks after the timeout, want 1", len(checks))
	}
	chk := checks[0]
	wantExt := map[string]string{
		"tranStateTableOffset": strconv.FormatInt(hs.queueOffset, 10), "commitLogOffset": strconv.FormatInt(hs.clOffset, 10),
		"msgId": "U1", "transactionId": "U1", "offsetMsgId": codec.OffsetMsgID(h.b.storeHost, hs.clOffset),
	}
	for k, v := range wantExt {
		if chk.Ext(k) != v {
			t.Errorf("check ext %s = %q, want %q", k, chk.Ext(k), v)
		}
	}
	if chk.Flag&codec.FlagOneway == 0 {
		t.Errorf("check flag %#x: want the oneway bit (no answer expected)", chk.Flag)
	}
	msgs := decodeBody(t, chk.Body)
	if len(msgs) != 1 {
		t.Fatalf("check body holds %d records, want 1", len(msgs))
	}
	if m := msgs[0]; m.Topic != "Orders" || m.QueueID != 1 || string(m.Body) != "order-1" ||
		codec.Property(m.Properties, "PGROUP") != "pg" || codec.Property(m.Properties, "UNIQ_KEY") != "U1" {
		t.Errorf("check body: topic %s queue %d body %q props %q; want the real topic and queue, PGROUP and UNIQ_KEY",
			m.Topic, m.QueueID, m.Body, m.Properties)
	}

	// The producer does not know yet: asked again at the next pass.
	h.endTxnAnswer(p, "pg", hs, 0, true)
	h.env.advance(h.b, time.Second)
	if n := len(h.checks(p)); n != 2 {
		t.Fatalf("%d checks after an unknown answer and one more pass, want 2", n)
	}
	if resp := h.endTxnAnswer(p, "pg", hs, 8, true); resp.Code != codec.Success {
		t.Fatalf("commit from the check: code %d (%s)", resp.Code, resp.Remark)
	}
	h.env.advance(h.b, 10*time.Second)
	if n := len(h.checks(p)); n != 2 {
		t.Errorf("%d checks in all; a committed transaction must not be checked again", n)
	}
	if got := h.queueMessages("Orders", 1); len(got) != 1 || string(got[0].Body) != "order-1" {
		t.Errorf("after the commit from a check queue 1 holds %d messages, want order-1 once", len(got))
	}
}

// Checks go to a live producer of the half's group only: not to another group, not to a
// closed connection; with none connected nothing is sent, and after TxnCheckMax passes the
// half is discarded: never delivered, never checked again, a late commit refused.
func TestTxnChecksReachLiveProducersOfTheGroupThenGiveUp(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p1 := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	p2 := h.producerConn("127.0.0.6:40001", "10.0.0.6@1", "pg", "other")
	o := h.producerConn("127.0.0.7:40001", "10.0.0.7@1", "other")
	hs := h.sendHalf(p1, "pg", "Orders", 1, "order-1", "U1")
	h.b.OnConnClosed(p1)

	h.env.advance(h.b, 3*time.Second)
	if n := len(h.checks(p2)); n != 1 {
		t.Fatalf("the live producer of pg got %d checks, want 1", n)
	}
	if n, m := len(h.checks(p1)), len(h.checks(o)); n+m != 0 {
		t.Fatalf("checks went to a closed connection (%d) or another group's producer (%d)", n, m)
	}
	h.b.OnConnClosed(p2)
	h.env.advance(h.b, 2*time.Second) // passes 2 and 3: nobody to ask
	if n := len(h.checks(o)); n != 0 {
		t.Fatalf("another group's producer got %d checks", n)
	}
	opsBefore := len(h.queueMessages(OpTopic, 0))
	h.env.advance(h.b, time.Second) // pass 4: TxnCheckMax (3) reached
	h.syncAll()
	ops := h.queueMessages(OpTopic, 0)
	if len(ops) != opsBefore+1 || codec.Property(ops[len(ops)-1].Properties, propResolution) != "discard" {
		t.Fatalf("after %d checks the half was not discarded (op marks %d → %d)", txnConfig().TxnCheckMax, opsBefore, len(ops))
	}
	p3 := h.producerConn("127.0.0.8:40001", "10.0.0.8@1", "pg")
	if resp := h.endTxnAnswer(p3, "pg", hs, 8, false); resp.Code != codec.SystemError || !strings.Contains(resp.Remark, "already resolved (discard)") {
		t.Errorf("commit after the discard: code %d (%s), want SYSTEM_ERROR", resp.Code, resp.Remark)
	}
	h.env.advance(h.b, 5*time.Second)
	if n := len(h.checks(p3)); n != 0 {
		t.Errorf("a discarded half was checked again %d times", n)
	}
	h.endTxnAnswer(p3, "pg", hs, 8, false)
	if got := h.queueMessages("Orders", 1); len(got) != 0 {
		t.Errorf("a discarded transaction was delivered (%d messages)", len(got))
	}
}

// crashKeeping crashes disk keeping every unsynced entry of every log except the commit log,
// which keeps clKeep of its unsynced entries.
func crashKeeping(disk *simdisk.Disk, clKeep uint64) {
	disk.CrashWith(func(name string, unsynced uint64) (uint64, bool) {
		if name == "commitlog" {
			return clKeep, false
		}
		return unsynced, false
	})
}

// After a restart, decisions taken before it stand (no check, no second delivery) and a half
// left open is checked back with the producer that reconnects, then delivered once.
func TestTxnRestartKeepsDecisionsAndChecksOpenHalves(t *testing.T) {
	cfg := txnConfig()
	disk := simdisk.New()
	h := startBroker(t, cfg, disk)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	a := h.sendHalf(p, "pg", "Orders", 1, "a", "UA")
	b := h.sendHalf(p, "pg", "Orders", 1, "b", "UB")
	h.endTxnAnswer(p, "pg", a, 8, false)
	h.endTxnAnswer(p, "pg", b, 12, false)
	h.env.advance(h.b, cfg.OffsetFlushInterval) // progress 2 recorded and flushed
	c := h.sendHalf(p, "pg", "Orders", 1, "c", "UC")
	d := h.sendHalf(p, "pg", "Orders", 1, "d", "UD")
	h.endTxnAnswer(p, "pg", d, 8, false) // resolved above the flushed progress: found in the op queue
	crashKeeping(disk, 0)

	h = startBroker(t, cfg, disk)
	if off, _ := h.b.store.QueryOffset(txnGroup, HalfTopic, 0); off != 2 {
		t.Errorf("transaction progress after the restart %d, want the flushed 2", off)
	}
	p = h.producerConn("127.0.0.5:40002", "10.0.0.5@1", "pg")
	// The new Env's clock starts over at nodetest.Start: c was stored about 5 s after it.
	h.env.advance(h.b, cfg.OffsetFlushInterval+cfg.TxnTimeout)
	checks := h.checks(p)
	if len(checks) != 1 || checks[0].Ext("tranStateTableOffset") != strconv.FormatInt(c.queueOffset, 10) {
		t.Fatalf("checks after the restart: %d, want exactly one, for the open half c at %d", len(checks), c.queueOffset)
	}
	if resp := h.endTxnAnswer(p, "pg", c, 8, true); resp.Code != codec.Success {
		t.Fatalf("commit c from the check: code %d (%s)", resp.Code, resp.Remark)
	}
	for _, hs := range []halfSent{a, d} {
		if resp := h.endTxnAnswer(p, "pg", hs, 8, false); resp.Code != codec.Success {
			t.Errorf("repeated commit of %s after the restart: code %d (%s)", hs.uniq, resp.Code, resp.Remark)
		}
	}
	var bodies []string
	for _, m := range h.queueMessages("Orders", 1) {
		bodies = append(bodies, string(m.Body))
	}
	if strings.Join(bodies, ",") != "a,d,c" {
		t.Errorf("queue 1 after the restart holds %q, want a, d and c once each (b was rolled back)", bodies)
	}
}

// A crash between the two writes of a commit (the committed message survives, its op mark does
// not) must not deliver the message twice: recovery records the commit. If both are lost, the
// half is open again and the check-back commits it.
func TestTxnCrashBetweenCommittedMessageAndOpMark(t *testing.T) {
	for _, tc := range []struct {
		name          string
		keep          uint64 // unsynced commit-log entries (message, op mark) that survive
		wantDelivered int    // right after the restart
		wantChecks    int
	}{
		{"message survives, op mark lost", 1, 1, 0},
		{"both lost", 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := txnConfig()
			disk := simdisk.New()
			h := startBroker(t, cfg, disk)
			p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
			hs := h.sendHalf(p, "pg", "Orders", 1, "a", "UA")
			h.endTxn(p, "pg", hs, 8, false) // appended, never synced
			crashKeeping(disk, tc.keep)

			h = startBroker(t, cfg, disk)
			h.syncAll()
			if got := h.queueMessages("Orders", 1); len(got) != tc.wantDelivered {
				t.Fatalf("after the restart queue 1 holds %d messages, want %d", len(got), tc.wantDelivered)
			}
			p = h.producerConn("127.0.0.5:40002", "10.0.0.5@1", "pg")
			h.env.advance(h.b, cfg.TxnTimeout)
			if n := len(h.checks(p)); n != tc.wantChecks {
				t.Fatalf("%d checks after the restart, want %d", n, tc.wantChecks)
			}
			if resp := h.endTxnAnswer(p, "pg", hs, 8, tc.wantChecks > 0); resp.Code != codec.Success {
				t.Fatalf("commit after the restart: code %d (%s)", resp.Code, resp.Remark)
			}
			h.env.advance(h.b, cfg.TxnTimeout)
			if got := h.queueMessages("Orders", 1); len(got) != 1 {
				t.Errorf("queue 1 holds %d messages in the end, want 1", len(got))
			}
			if n := len(h.checks(p)); n != tc.wantChecks {
				t.Errorf("%d checks in the end, want %d", n, tc.wantChecks)
			}
		})
	}
}

// A half message whose producer left PGROUP out gets the send header's group, so it can still
// be checked back; without either it is refused.
func TestTxnHalfTakesTheHeaderGroup(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	ext := sendExt("Orders", "0", map[string]string{"TRAN_MSG": "true", "UNIQ_KEY": "U1"})
	ext["producerGroup"] = "pg"
	ext["sysFlag"] = "4"
	op := h.request(p, codec.ReqSendMessage, ext, []byte("x"))
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("send: code %d (%s)", resp.Code, resp.Remark)
	}
	h.env.advance(h.b, 3*time.Second)
	checks := h.checks(p)
	if len(checks) != 1 || codec.Property(decodeBody(t, checks[0].Body)[0].Properties, "PGROUP") != "pg" {
		t.Fatalf("checks: %d, want one whose message carries PGROUP pg", len(checks))
	}
	ext["producerGroup"] = ""
	op = h.request(p, codec.ReqSendMessage, ext, []byte("x"))
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.MessageIllegal || !strings.Contains(resp.Remark, "producer group") {
		t.Errorf("half without any group: code %d (%s), want MESSAGE_ILLEGAL", resp.Code, resp.Remark)
	}
}

// Bad transaction settings are refused with a clear error.
func TestTxnSettingsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.TxnCheckInterval = 0 }, "check interval"},
		{func(c *Config) { c.TxnTimeout = -time.Second }, "timeout"},
		{func(c *Config) { c.TxnCheckMax = 0 }, "check maximum"},
	} {
		cfg := testConfig()
		tc.edit(&cfg)
		if _, err := New(newBrokerEnv(t, simdisk.New()), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with a bad setting: %v, want an error about the %s", err, tc.want)
		}
	}
}

// In async-flush mode END_TRANSACTION is answered at once and the committed message is
// visible at once.
func TestTxnAsyncFlushAnswersAtOnce(t *testing.T) {
	cfg := txnConfig()
	cfg.FlushMode = AsyncFlush
	h := startBroker(t, cfg, nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	hs := h.sendHalf(p, "pg", "Orders", 1, "order-1", "U1")
	resp := h.answer(p, h.endTxn(p, "pg", hs, 8, false))
	if resp == nil || resp.Code != codec.Success {
		t.Fatalf("commit in async-flush mode: %+v, want an immediate success", resp)
	}
	if got := h.queueMessages("Orders", 1); len(got) != 1 {
		t.Fatalf("queue 1 holds %d messages right after the commit, want 1", len(got))
	}
	h.env.advance(h.b, 10*time.Second)
	if n := len(h.checks(p)); n != 0 {
		t.Errorf("a committed transaction was checked back %d times", n)
	}
	if got := h.queueMessages("Orders", 1); len(got) != 1 {
		t.Errorf("queue 1 holds %d messages after the check passes, want 1", len(got))
	}
	if off, _ := h.b.store.QueryOffset(txnGroup, HalfTopic, 0); off != 0 {
		t.Errorf("transaction progress %d before the op mark was synced, want 0", off)
	}
	h.syncAll() // the async flush timer asked for it
	h.env.advance(h.b, cfg.TxnCheckInterval)
	if off, _ := h.b.store.QueryOffset(txnGroup, HalfTopic, 0); off != 1 {
		t.Errorf("transaction progress %d once the async flush synced the op mark, want 1", off)
	}
}

// A half whose record fails its checksum (a flipped bit) is discarded by the check pass, not
// left unresolved: the progress, which retention keeps every half from, moves past it, and
// the halves after it are checked as usual.
func TestTxnUnreadableHalfIsDiscarded(t *testing.T) {
	h := startBroker(t, txnConfig(), nil)
	p := h.producerConn("127.0.0.5:40001", "10.0.0.5@1", "pg")
	bad := h.sendHalf(p, "pg", "Orders", 1, "order-1", "U1")
	h.sendHalf(p, "pg", "Orders", 1, "order-2", "U2")
	if err := h.disk.FlipByte("commitlog", uint64(bad.clOffset)); err != nil {
		t.Fatal(err)
	}
	h.env.advance(h.b, 3500*time.Millisecond)
	checks := h.checks(p)
	if len(checks) != 1 || checks[0].Ext("msgId") != "U2" {
		t.Fatalf("%d checks after the timeout, want one, of U2", len(checks))
	}
	h.syncAll()
	h.env.advance(h.b, time.Second)
	if got := h.b.txn.progress; got <= bad.queueOffset {
		t.Fatalf("transaction progress %d: still at the unreadable half %d", got, bad.queueOffset)
	}
	if r := h.endTxnAnswer(p, "pg", bad, 8, true); r.Code == codec.Success {
		t.Errorf("a commit of the discarded half was accepted")
	}
	if got := h.queueMessages("Orders", 1); len(got) != 0 {
		t.Errorf("queue 1 holds %d messages, want none", len(got))
	}
}
