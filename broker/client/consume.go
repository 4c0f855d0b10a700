package client

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// masterOf finds the master address of brokerName in topic's route. Its errors are
// definite: nothing has been sent to a broker yet.
func (c *Client) masterOf(topic, brokerName string, done func(addr string, err error)) {
	c.Route(topic, func(rd *route.TopicRouteData, err error) {
		if err != nil {
			done("", fmt.Errorf("%w: %w", errNoRoute, err))
			return
		}
		done(c.masterAddr(topic, rd, brokerName))
	})
}

// SendBack is CONSUMER_SEND_MSG_BACK for a message a clustering group failed to consume.
type SendBack struct {
	// Queue is the queue Msg was pulled from (its broker group gets the request).
	Queue MessageQueue
	Msg   *codec.Message
	Group string
	// DelayLevel is the delay before the retry: 0 lets the broker choose (3 + reconsume
	// times), -1 sends the message straight to %DLQ%<group>.
	DelayLevel int
	// MaxReconsumeTimes is how many retries the group allows before the dead-letter queue
	// (the official client's default is 16).
	MaxReconsumeTimes int
}

// SendBack asks the master of the message's broker group to retry b.Msg later through
// %RETRY%<group>, or to move it to %DLQ%<group> once it has been retried MaxReconsumeTimes
// times. done gets the broker's answer; like a send, an error for which Definite is false
// leaves the outcome unknown.
func (c *Client) SendBack(b SendBack, done func(error)) {
	m := b.Msg
	originID := codec.Property(m.Properties, codec.PropUniqKey)
	if originID == "" {
		originID = codec.OffsetMsgID(m.StoreHost, m.PhysicalOffset)
	}
	originTopic := codec.Property(m.Properties, codec.PropRetryTopic)
	if originTopic == "" {
		originTopic = m.Topic
	}
	what := fmt.Sprintf("send back %s (reconsumed %d times) for %s", originID, m.ReconsumeTimes, b.Group)
	c.masterOf(b.Queue.Topic, b.Queue.BrokerName, func(addr string, err error) {
		if err != nil {
			done(fmt.Errorf("%s: %w", what, err))
			return
		}
		req := codec.NewRequest(codec.ReqConsumerSendMsgBack, codec.EncodeHeader(&codec.SendBackHeader{
			Group: b.Group, Offset: m.PhysicalOffset, DelayLevel: int64(b.DelayLevel), OriginMsgID: originID,
			OriginTopic: originTopic, MaxReconsumeTimes: int64(b.MaxReconsumeTimes), BrokerName: b.Queue.BrokerName,
		}), nil)
		c.invoke(addr, req, func(resp *codec.Command, err error) {
			done(answerError(what+" at "+addr, resp, err))
		})
	})
}

// SearchOffset asks a queue's master for the offset of the first message stored at or after
// ts (SEARCH_OFFSET_BY_TIMESTAMP), as a consumer starting from a timestamp does.
func (c *Client) SearchOffset(q MessageQueue, ts time.Time, done func(offset int64, err error)) {
	what := fmt.Sprintf("search offset of %s at %d ms", q, ts.UnixMilli())
	c.masterOf(q.Topic, q.BrokerName, func(addr string, err error) {
		if err != nil {
			done(0, fmt.Errorf("%s: %w", what, err))
			return
		}
		req := codec.NewRequest(codec.ReqSearchOffsetByTimestamp, codec.EncodeHeader(&codec.SearchOffsetHeader{
			Topic: q.Topic, QueueID: int64(q.QueueID), TimestampMs: ts.UnixMilli(), BrokerName: q.BrokerName,
		}), nil)
		c.invoke(addr, req, func(resp *codec.Command, err error) {
			if err = answerError(what+" at "+addr, resp, err); err != nil {
				done(0, err)
				return
			}
			h, perr := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
			if perr != nil {
				done(0, fmt.Errorf("%s at %s: answer has no offset: %w", what, addr, perr))
				return
			}
			done(h.Offset, nil)
		})
	})
}

// lockBody is the body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ; lockedBody the answer to a lock.
type (
	lockMQ struct {
		Topic      string `json:"topic"`
		BrokerName string `json:"brokerName"`
		QueueID    int32  `json:"queueId"`
	}
	lockBody struct {
		ConsumerGroup string   `json:"consumerGroup"`
		ClientID      string   `json:"clientId"`
		MQSet         []lockMQ `json:"mqSet"`
	}
	lockedBody struct {
		LockOKMQSet []lockMQ `json:"lockOKMQSet"`
	}
)

// lockRequest builds a LOCK or UNLOCK for qs, which must all be on one broker group.
func (c *Client) lockRequest(code int16, group string, qs []MessageQueue) (*codec.Command, error) {
	if len(qs) == 0 {
		return nil, fmt.Errorf("no queues given: %w", errNotSent)
	}
	body := lockBody{ConsumerGroup: group, ClientID: c.cfg.ClientID, MQSet: make([]lockMQ, len(qs))}
	for i, q := range qs {
		if q.BrokerName != qs[0].BrokerName {
			return nil, fmt.Errorf("queues of two broker groups (%s, %s) in one request: %w", qs[0].BrokerName, q.BrokerName, errNotSent)
		}
		body.MQSet[i] = lockMQ{Topic: q.Topic, BrokerName: q.BrokerName, QueueID: q.QueueID}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		panic("client: marshal of a lock body failed: " + err.Error())
	}
	return codec.NewRequest(code, nil, raw), nil
}

// Lock asks the master of qs' broker group (all of qs must share one) to lock qs for this
// client within group, for orderly consumption, and reports the queues it granted. Locks are
// leases: the broker frees a queue its holder has not re-locked for a while (Java: 60 s), so
// a holder renews them by locking again well before.
func (c *Client) Lock(group string, qs []MessageQueue, done func(locked []MessageQueue, err error)) {
	req, err := c.lockRequest(codec.ReqLockBatchMQ, group, qs)
	if err != nil {
		done(nil, fmt.Errorf("lock for %s: %w", group, err))
		return
	}
	what := fmt.Sprintf("lock %d queues of %s for %s", len(qs), qs[0].BrokerName, group)
	c.masterOf(qs[0].Topic, qs[0].BrokerName, func(addr string, err error) {
		if err != nil {
			done(nil, fmt.Errorf("%s: %w", what, err))
			return
		}
		c.invokeOn(c.connTo(addr), req, c.cfg.LockTimeout, func(resp *codec.Command, err error) {
			if err = answerError(what+" at "+addr, resp, err); err != nil {
				done(nil, err)
				return
			}
			var got lockedBody
			if len(resp.Body) > 0 {
				if err := json.Unmarshal(resp.Body, &got); err != nil {
					done(nil, fmt.Errorf("%s at %s: answer is not a lock set: %w", what, addr, err))
					return
				}
			}
			// Report only queues that were asked for: an answer naming others is not trusted.
			asked := map[MessageQueue]bool{}
			for _, q := range qs {
				asked[q] = true
			}
			locked := []MessageQueue{}
			for _, mq := range got.LockOKMQSet {
				q := MessageQueue{Topic: mq.Topic, BrokerName: mq.BrokerName, QueueID: mq.QueueID}
				if asked[q] {
					locked = append(locked, q)
					delete(asked, q)
				}
			}
			if c.cfg.Bugs.Has(bugs.LockTrustsRequest) {
				locked = append(locked[:0], qs...) // the planted bug: what was asked for counts as granted
			}
			sortQueues(locked)
			done(locked, nil)
		})
	})
}

// Unlock releases this client's locks on qs (all on one broker group) within group.
func (c *Client) Unlock(group string, qs []MessageQueue, done func(error)) {
	req, err := c.lockRequest(codec.ReqUnlockBatchMQ, group, qs)
	if err != nil {
		done(fmt.Errorf("unlock for %s: %w", group, err))
		return
	}
	what := fmt.Sprintf("unlock %d queues of %s for %s", len(qs), qs[0].BrokerName, group)
	c.masterOf(qs[0].Topic, qs[0].BrokerName, func(addr string, err error) {
		if err != nil {
			done(fmt.Errorf("%s: %w", what, err))
			return
		}
		c.invokeOn(c.connTo(addr), req, c.cfg.LockTimeout, func(resp *codec.Command, err error) {
			done(answerError(what+" at "+addr, resp, err))
		})
	})
}
