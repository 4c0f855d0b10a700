package brokernode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store"
)

// Pull sysFlag bits.
const (
	pullCommitOffset = 1 << 0
	pullSuspend      = 1 << 1
	pullSubscription = 1 << 2
)

// maxPullMsgs bounds maxMsgNums whatever the client asks.
const maxPullMsgs = 1024

// parkedPull is a long-polling pull waiting for a message on its queue.
type parkedPull struct {
	conn  node.ConnID
	req   *codec.Command
	hdr   codec.PullHeader
	key   queueKey
	timer node.TimerID
	done  bool
}

// parkedPulls indexes parked pulls by queue, in arrival order.
type parkedPulls struct {
	byQueue map[queueKey][]*parkedPull
	count   int
}

func newParkedPulls() *parkedPulls { return &parkedPulls{byQueue: map[queueKey][]*parkedPull{}} }

func (p *parkedPulls) add(pp *parkedPull) {
	p.byQueue[pp.key] = append(p.byQueue[pp.key], pp)
	p.count++
}

// take removes and returns every pull parked on k.
func (p *parkedPulls) take(k queueKey) []*parkedPull {
	list := p.byQueue[k]
	delete(p.byQueue, k)
	out := list[:0]
	for _, pp := range list {
		if !pp.done {
			pp.done = true
			p.count--
			out = append(out, pp)
		}
	}
	return out
}

// expire marks pp answered (its timer fired) and unlinks it.
func (p *parkedPulls) expire(pp *parkedPull) {
	if pp.done {
		return
	}
	pp.done = true
	p.count--
	p.unlink(pp)
}

func (p *parkedPulls) unlink(pp *parkedPull) {
	list := p.byQueue[pp.key]
	for i, x := range list {
		if x == pp {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.byQueue, pp.key)
	} else {
		p.byQueue[pp.key] = list
	}
}

// dropConn forgets the pulls parked by a closed connection. Removal emits nothing, so map
// order cannot leak.
func (p *parkedPulls) dropConn(env node.Env, c node.ConnID) {
	for k, list := range p.byQueue {
		kept := list[:0]
		for _, pp := range list {
			if pp.conn == c && !pp.done {
				pp.done = true
				p.count--
				env.CancelTimer(pp.timer)
				continue
			}
			kept = append(kept, pp)
		}
		if len(kept) == 0 {
			delete(p.byQueue, k)
		} else {
			p.byQueue[k] = kept
		}
	}
}

// wakePulls answers the pulls parked on k now that it has new messages.
func (b *Broker) wakePulls(k queueKey) {
	for _, pp := range b.parked.take(k) {
		b.env.CancelTimer(pp.timer)
		b.retryPull(pp)
	}
}

// retryPull answers a parked pull without parking it again.
func (b *Broker) retryPull(pp *parkedPull) {
	if resp := b.servePull(pp.conn, pp.req, &pp.hdr, nil, false); resp != nil {
		b.env.Send(pp.conn, resp)
	}
}

// handlePull serves PULL_MESSAGE. With allowPark and the suspend bit, a pull that finds nothing
// is parked (nil is returned) until a message arrives or its long-polling time runs out.
func (b *Broker) handlePull(c node.ConnID, req *codec.Command, allowPark bool) *codec.Command {
	h, err := codec.DecodeHeader[codec.PullHeader](req)
	return b.servePull(c, req, &h, err, allowPark)
}

// servePull answers a pull whose header is h; hdrErr is what was wrong with the header, if
// anything (answered once a replica's refusal has been considered, as before).
func (b *Broker) servePull(c node.ConnID, req *codec.Command, h *codec.PullHeader, hdrErr error, allowPark bool) *codec.Command {
	if resp := b.role.refuseRead(b, req); resp != nil {
		return resp // a replica of a group that must not answer reads now (replica.go)
	}
	topic, group, queueID, offset := h.Topic, h.ConsumerGroup, h.QueueID, h.QueueOffset
	resp := codec.NewResponse(req, codec.Success, "")
	suggest := b.suggestBrokerID()
	setOffsets := func(next, min, max int64) {
		resp.SetHeader(&codec.PullResponseHeader{NextBeginOffset: next, MinOffset: min, MaxOffset: max,
			SuggestWhichBrokerID: suggest})
	}
	setOffsets(offset, 0, 0)
	fail := func(code int16, remark string) *codec.Command {
		resp.Code = code
		resp.Remark = remark
		return resp
	}
	if hdrErr != nil {
		return fail(codec.SystemError, "pull: "+hdrErr.Error())
	}
	if !b.ready {
		return fail(codec.SystemBusy, "broker is recovering its store")
	}
	if remark := b.groupConsumeDisabled(group); remark != "" {
		return fail(codec.NoPermission, remark)
	}
	tc, ok := b.store.Topic(topic)
	if !ok {
		return fail(codec.TopicNotExist, "topic "+topic+" does not exist")
	}
	if queueID < 0 || queueID >= int64(tc.ReadQueueNums) {
		return fail(codec.SystemError, "queueId "+strconv.FormatInt(queueID, 10)+" is out of range for topic "+topic)
	}
	sysFlag := h.SysFlag
	// The subscription: the request's own with the subscription bit, else the group's from
	// its heartbeats. None known (no heartbeat of the group yet, as after a restart of this
	// broker) is refused as Java refuses it (SUBSCRIPTION_NOT_EXIST), not served unfiltered:
	// a consumer with a selector would otherwise get every message; it pulls again once its
	// heartbeat has arrived.
	var filter store.Filter
	sub, hasSub := b.groups.subscription(group, topic)
	if sysFlag&pullSubscription == 0 && !hasSub {
		if !b.groups.has(group) {
			return fail(codec.SubscriptionNotExist, "the consumer's group info not exist")
		}
		return fail(codec.SubscriptionNotExist, "the consumer's subscription not exist")
	}
	if sysFlag&pullSubscription != 0 {
		exprType, expr := h.ExpressionType, h.Subscription
		switch {
		case hasSub && sub.same(exprType, expr):
			// The group's own, parsed when its heartbeat brought it.
		case hasSub && isTagType(exprType) && !isTagType(sub.exprType) && sub.expr == expr:
			// The official Go client's lite-pull consumer labels every expression TAG; the
			// group registered this very expression as SQL92, so that is what it means.
		default:
			sub, hasSub = parseSubscription(exprType, expr), true
		}
	}
	if hasSub {
		var code int16
		var remark string
		if filter, code, remark = b.pullFilter(sub); code != codec.Success {
			// Refused before anything is read or committed: the consumer's offset stays put.
			return fail(code, remark)
		}
	}
	if sysFlag&pullCommitOffset != 0 && allowPark {
		if co := h.CommitOffset; co >= 0 && group != "" {
			b.store.CommitOffset(group, topic, int32(queueID), co)
		}
	}
	maxMsgs := int(h.MaxMsgNums)
	if maxMsgs < 1 {
		maxMsgs = 1
	} else if maxMsgs > maxPullMsgs {
		maxMsgs = maxPullMsgs
	}
	res, err := b.store.GetFiltered(topic, int32(queueID), offset, maxMsgs, filter)
	if err != nil {
		b.log.Error("read messages", "topic", topic, "queue", queueID, "offset", offset, "err", err)
		return fail(codec.SystemError, "read messages: "+err.Error())
	}
	setOffsets(res.NextOffset, res.MinOffset, res.MaxOffset)
	switch res.Status {
	case store.Found:
		for _, r := range res.Records {
			b.assertConfirmed(r)
		}
		resp.Body = bytes.Join(res.Records, nil)
		b.metrics.served(topic, len(res.Records), len(resp.Body))
		b.countServed(group, len(res.Records))
		return resp
	case store.NoMatchedMessage:
		return fail(codec.PullRetryImmediately, "no matched message")
	case store.MessageWasRemoving:
		return fail(codec.PullRetryImmediately, "the messages at this offset were removed from the commit log")
	case store.OffsetFoundNull:
		// Not parked: there are messages after this offset, the consumer should move on.
		return fail(codec.PullNotFound, "no consume-queue entry at this offset")
	case store.NoMessageInQueue:
		if offset != 0 {
			setOffsets(0, res.MinOffset, res.MaxOffset)
			return fail(codec.PullOffsetMoved, "queue is empty; offset moved to 0")
		}
	case store.OffsetTooSmall:
		// Retention removed the messages there (RocketMQ: OFFSET_TOO_SMALL answered
		// PULL_OFFSET_MOVED with nextBeginOffset the queue's min offset).
		b.noteOffsetMoved(group, topic, int32(queueID), offset, res.NextOffset)
		return fail(codec.PullOffsetMoved, "offset is below the queue's oldest message; moved to it")
	case store.OffsetOverflowBadly:
		return fail(codec.PullOffsetMoved, "offset is out of the queue's range")
	case store.OffsetOverflowOne:
	default:
		panic("brokernode: pull: unhandled store status " + res.Status.String())
	}
	// Nothing new (offset at the end of the queue): park it if the client allows.
	timeout := time.Duration(h.SuspendTimeoutMillis) * time.Millisecond
	if timeout > b.cfg.MaxLongPoll {
		timeout = b.cfg.MaxLongPoll
	}
	if allowPark && sysFlag&pullSuspend != 0 && timeout > 0 && b.parked.count < b.cfg.MaxParkedPulls {
		pp := &parkedPull{conn: c, req: req, hdr: *h, key: queueKey{topic: topic, queue: int32(queueID)}}
		pp.timer = b.env.SetTimer(timeout, pp)
		b.parked.add(pp)
		return nil
	}
	return fail(codec.PullNotFound, "no new message")
}

// recordIndexAt is where a stored record keeps its physical offset (its commit-log index):
// after TOTALSIZE, MAGICCODE, BODYCRC, QUEUEID, FLAG (4 bytes each) and QUEUEOFFSET (8).
const recordIndexAt = 4*5 + 8

// assertConfirmed panics if a record a pull is about to serve lies beyond the confirmed log:
// a slave must never show more than its master confirmed (store.Confirmed on a slave is at
// most the master's confirmed index, slaveAcks), a master nothing it has not acknowledged.
func (b *Broker) assertConfirmed(rec []byte) {
	if len(rec) < recordIndexAt+8 {
		panic(fmt.Sprintf("brokernode: pull: the store served a record of %d bytes", len(rec)))
	}
	if idx := binary.BigEndian.Uint64(rec[recordIndexAt:]); idx > b.store.Confirmed() {
		panic(fmt.Sprintf("brokernode: pull: record at commit-log index %d is beyond the confirmed index %d", idx, b.store.Confirmed()))
	}
}

// tagFilter builds the filter of a subscription expression ("*", "" or "A || B"): the consume
// queue's tags hash picks candidates, then the message's TAGS must equal one of the tags, so
// tags that merely share a hash are never delivered. The zero Filter (everything) for "*".
func tagFilter(expr string) store.Filter {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return store.Filter{}
	}
	hashes := map[int64]bool{}
	tags := map[string]bool{}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			hashes[codec.TagsHash(t)] = true
			tags[t] = true
		}
	}
	return store.Filter{
		TagsHash: func(h int64) bool { return hashes[h] },
		Record: func(rec []byte) bool {
			props, err := codec.RecordProperties(rec)
			// The store checked the record against its consume-queue entry; an undecodable one
			// is not delivered by a filtered pull.
			return err == nil && tags[codec.Property(props, codec.PropTags)]
		},
	}
}

func sortedQueueKeys(m map[queueKey]bool) []queueKey {
	out := make([]queueKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].queue < out[j].queue
	})
	return out
}
