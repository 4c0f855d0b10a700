package brokernode

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/store"
)

// Queue locks for orderly consumption (LOCK_BATCH_MQ 41, UNLOCK_BATCH_MQ 42), with the lease
// semantics of RocketMQ's RebalanceLockManager: a consumer client of a group holds a queue
// until it unlocks it or stops renewing it for LockLease (Java: 60 s); another client of the
// same group may take the queue over only then. Locks are kept in memory only: after a broker
// restart every queue is free, as in Java.

// maxLockBatch bounds the queues one LOCK/UNLOCK request may name.
const maxLockBatch = 4096

// lockMQ is a message queue as the lock requests name it (the client's primitive.MessageQueue).
type lockMQ struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

// lockBatchRequest is the body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
type lockBatchRequest struct {
	ConsumerGroup string   `json:"consumerGroup"`
	ClientID      string   `json:"clientId"`
	MQSet         []lockMQ `json:"mqSet"`
}

// decodeLockBatch parses and checks a LOCK/UNLOCK body. Duplicate queues are merged; the
// result lists each queue once, sorted.
func decodeLockBatch(body []byte) (lockBatchRequest, error) {
	var req lockBatchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return lockBatchRequest{}, fmt.Errorf("lock body is not a lock batch: %w", err)
	}
	switch {
	case req.ConsumerGroup == "":
		return lockBatchRequest{}, fmt.Errorf("lock body: consumerGroup is required")
	case req.ClientID == "":
		return lockBatchRequest{}, fmt.Errorf("lock body: clientId is required")
	case len(req.MQSet) > maxLockBatch:
		return lockBatchRequest{}, fmt.Errorf("lock body: %d queues, at most %d per request", len(req.MQSet), maxLockBatch)
	}
	for _, mq := range req.MQSet {
		if err := validTopic(mq.Topic); err != nil {
			return lockBatchRequest{}, fmt.Errorf("lock body: %w", err)
		}
		if mq.QueueID < 0 || mq.QueueID >= store.MaxQueueNums {
			return lockBatchRequest{}, fmt.Errorf("lock body: queueId %d of topic %s is out of range 0..%d", mq.QueueID, mq.Topic, store.MaxQueueNums-1)
		}
	}
	slices.SortFunc(req.MQSet, compareLockMQ)
	req.MQSet = slices.Compact(req.MQSet)
	return req, nil
}

func compareLockMQ(a, b lockMQ) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	if c := cmp.Compare(a.BrokerName, b.BrokerName); c != 0 {
		return c
	}
	return cmp.Compare(a.QueueID, b.QueueID)
}

type lockEntry struct {
	clientID string
	renewed  time.Time
}

// queueLocks holds, per consumer group, which client holds which queue and since when.
type queueLocks struct {
	lease   time.Duration
	byGroup map[string]map[lockMQ]*lockEntry
	// renewKeepsLease is the planted bug bugs.LockRenewalKeepsLease: a renewal by the holder
	// leaves the lease where its first grant set it.
	renewKeepsLease bool
}

func newQueueLocks(lease time.Duration, renewKeepsLease bool) *queueLocks {
	if lease <= 0 {
		panic(fmt.Sprintf("brokernode: queue lock lease %v must be positive", lease))
	}
	return &queueLocks{lease: lease, byGroup: map[string]map[lockMQ]*lockEntry{}, renewKeepsLease: renewKeepsLease}
}

// tryLock grants client every queue of mqs that is free, already its own, or held by a
// lease that ran out (renewed more than the lease ago), renewing each granted lock, and
// returns the granted queues in the order of mqs.
func (l *queueLocks) tryLock(group, client string, mqs []lockMQ, now time.Time) []lockMQ {
	held := l.byGroup[group]
	if held == nil {
		held = map[lockMQ]*lockEntry{}
		l.byGroup[group] = held
	}
	granted := []lockMQ{}
	for _, mq := range mqs {
		e := held[mq]
		switch {
		case e == nil:
			held[mq] = &lockEntry{clientID: client, renewed: now}
		case e.clientID == client && l.renewKeepsLease:
			// the planted bug: the renewal is granted but does not move the lease
		case e.clientID == client || now.Sub(e.renewed) > l.lease:
			e.clientID, e.renewed = client, now
		default:
			continue
		}
		granted = append(granted, mq)
	}
	if len(held) == 0 {
		delete(l.byGroup, group)
	}
	return granted
}

// unlock releases the queues of mqs that client holds; locks of other clients stay. It
// returns how many it released.
func (l *queueLocks) unlock(group, client string, mqs []lockMQ) int {
	held := l.byGroup[group]
	n := 0
	for _, mq := range mqs {
		if e := held[mq]; e != nil && e.clientID == client {
			delete(held, mq)
			n++
		}
	}
	if held != nil && len(held) == 0 {
		delete(l.byGroup, group)
	}
	return n
}

// expire drops locks whose lease ran out before now, so the table does not grow with queues
// nobody locks any more. Deletion emits nothing, but keys are still walked in sorted order.
func (l *queueLocks) expire(now time.Time) {
	for _, group := range slices.Sorted(maps.Keys(l.byGroup)) {
		held := l.byGroup[group]
		for _, mq := range slices.SortedFunc(maps.Keys(held), compareLockMQ) {
			if now.Sub(held[mq].renewed) > l.lease {
				delete(held, mq)
			}
		}
		if len(held) == 0 {
			delete(l.byGroup, group)
		}
	}
}

func (b *Broker) handleLockBatch(req *codec.Command) *codec.Command {
	lr, err := decodeLockBatch(req.Body)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	granted := b.locks.tryLock(lr.ConsumerGroup, lr.ClientID, lr.MQSet, b.env.Now())
	if len(granted) < len(lr.MQSet) {
		b.log.Info("queue lock refused: held by another client", "group", lr.ConsumerGroup, "client", lr.ClientID,
			"asked", len(lr.MQSet), "granted", len(granted))
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(struct {
		LockOKMQSet []lockMQ `json:"lockOKMQSet"`
	}{granted})
	return resp
}

func (b *Broker) handleUnlockBatch(req *codec.Command) *codec.Command {
	lr, err := decodeLockBatch(req.Body)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	b.locks.unlock(lr.ConsumerGroup, lr.ClientID, lr.MQSet)
	return codec.NewResponse(req, codec.Success, "")
}
