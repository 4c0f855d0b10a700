package client

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// Message is what a producer sends.
type Message struct {
	Topic      string
	Body       []byte
	Tags       string
	Keys       string
	Properties map[string]string
	// DelayLevel, when above 0, asks the broker to hold the message and deliver it to its topic
	// after RocketMQ delay level DelayLevel (1 = 1 s, 2 = 5 s, 3 = 10 s, ... 18 = 2 h): the DELAY
	// property. The send is acknowledged when the broker has stored the held message.
	DelayLevel int
}

// properties is m's property block: its own properties plus tags, keys and delay.
func (m *Message) properties(extra map[string]string) string {
	props := map[string]string{}
	for k, v := range m.Properties {
		props[k] = v
	}
	if m.Tags != "" {
		props[codec.PropTags] = m.Tags
	}
	if m.Keys != "" {
		props[codec.PropKeys] = m.Keys
	}
	if m.DelayLevel > 0 {
		props[codec.PropDelay] = strconv.Itoa(m.DelayLevel)
	}
	for k, v := range extra {
		props[k] = v
	}
	return codec.EncodeProperties(props)
}

// SendResult is a send's outcome. Queue is the queue of the last attempt, also on error.
type SendResult struct {
	Queue MessageQueue
	// QueueOffset is where the broker stored the message (for a batch, the first message; the
	// others follow at consecutive offsets). For a delayed or half message it is an offset of
	// the broker's internal topic that holds the message, not of Queue.
	QueueOffset int64
	// OffsetMsgID is the broker's offset message id (for a batch, one per message, joined by ",").
	OffsetMsgID string
	// TransactionID is the broker's transaction id for a half message, often empty.
	TransactionID string
	Attempts      int
}

// retriable reports whether a definite send failure may be retried on another queue
// (the codes the official client retries on).
func retriable(err error) bool {
	var be *BrokerError
	if !errors.As(err, &be) {
		return errors.Is(err, errNoRoute) || errors.Is(err, ErrConnRefused)
	}
	switch be.Code {
	case codec.SystemError, codec.ServiceNotAvailable, codec.NoPermission, codec.TopicNotExist:
		return true
	}
	return false
}

// Send sends m to a queue chosen round robin, retrying on another queue (preferring another
// broker group) after a definite, retriable failure.
func (c *Client) Send(m Message, done func(SendResult, error)) {
	encoded := m.properties(nil)
	c.send(m.Topic, func(q MessageQueue) *codec.Command {
		return c.sendRequest(q, 0, encoded, m.Body)
	}, done)
}

// sendHeader is the header of a send to q as the official client writes it.
func (c *Client) sendHeader(q MessageQueue, properties string) codec.SendHeader {
	return codec.SendHeader{
		ProducerGroup: c.cfg.ProducerGroup, Topic: q.Topic, DefaultTopic: route.DefaultTopic, DefaultTopicQueueNums: 4,
		QueueID: int64(q.QueueID), BornTimestamp: c.env.Now().UnixMilli(), Properties: properties, BrokerName: q.BrokerName,
	}
}

// sendRequest is SEND_MESSAGE (10) with the official client's long-name header.
func (c *Client) sendRequest(q MessageQueue, sysFlag int, properties string, body []byte) *codec.Command {
	h := c.sendHeader(q, properties)
	h.SysFlag = int32(sysFlag)
	return codec.NewRequest(codec.ReqSendMessage, codec.EncodeHeader(&h), body)
}

// send runs the send protocol shared by every kind of send: route (or TBW102's), queue choice,
// the request request builds for that queue, and retries after definite, retriable failures.
func (c *Client) send(topic string, request func(q MessageQueue) *codec.Command, done func(SendResult, error)) {
	var res SendResult
	var lastBroker string
	var attempt func()
	attempt = func() {
		res.Attempts++
		c.sendRoute(topic, func(rd *route.TopicRouteData, err error) {
			if err != nil {
				// Nothing reached a broker: a definite failure, whatever the lookup's error.
				c.finishSend(&res, fmt.Errorf("send to %s: %w: %w", topic, errNoRoute, err), attempt, done)
				return
			}
			qs := c.writableQueues(topic, rd)
			if len(qs) == 0 {
				c.dropMasterlessRoute(topic)
				c.finishSend(&res, fmt.Errorf("send to %s: no writable queue: %w", topic, errNoRoute), attempt, done)
				return
			}
			q := c.pickQueue(qs, lastBroker)
			lastBroker = q.BrokerName
			res.Queue = q
			addr, err := c.masterAddr(q.Topic, rd, q.BrokerName)
			if err != nil {
				c.finishSend(&res, err, attempt, done)
				return
			}
			c.invoke(addr, request(q), func(resp *codec.Command, err error) {
				if err == nil && resp.Code != codec.Success {
					err = &BrokerError{resp.Code, resp.Remark}
				}
				if err != nil {
					if Definite(err) {
						c.InvalidateRoute(topic)
					}
					c.finishSend(&res, fmt.Errorf("send to %s at %s: %w", q, addr, err), attempt, done)
					return
				}
				h, perr := codec.DecodeHeader[codec.SendResponseHeader](resp)
				if perr == nil && h.NoMessage {
					perr = errors.New("the answer names no message")
				}
				if perr != nil {
					// The message is stored but the answer is malformed: unknown, not failed.
					done(res, fmt.Errorf("send to %s: %w (%v)", q, ErrTimeout, perr))
					return
				}
				res.QueueOffset = h.QueueOffset
				res.OffsetMsgID = h.MsgID
				res.TransactionID = h.TransactionID
				done(res, nil)
			})
		})
	}
	attempt()
}

// SendBatch sends msgs, all for one topic and none delayed, as one SEND_BATCH_MESSAGE to one
// queue (chosen and retried like Send's): the broker stores them at consecutive offsets of that
// queue, from SendResult.QueueOffset, all or none.
func (c *Client) SendBatch(msgs []Message, done func(SendResult, error)) {
	if len(msgs) == 0 {
		done(SendResult{}, fmt.Errorf("send batch: no messages: %w", errNotSent))
		return
	}
	topic := msgs[0].Topic
	var body []byte
	for i := range msgs {
		m := &msgs[i]
		if m.Topic != topic || m.DelayLevel > 0 {
			done(SendResult{}, fmt.Errorf("send batch to %s: message %d is for %s with delay level %d; a batch is for one topic, undelayed: %w",
				topic, i, m.Topic, m.DelayLevel, errNotSent))
			return
		}
		var err error
		if body, err = codec.AppendBatchRecord(body, codec.BatchMessage{Body: m.Body, Properties: m.properties(nil)}); err != nil {
			done(SendResult{}, fmt.Errorf("send batch to %s: message %d: %w (%w)", topic, i, errNotSent, err))
			return
		}
	}
	c.send(topic, func(q MessageQueue) *codec.Command {
		// The official client's V2 short-name header (SendMessageRequestHeaderV2).
		h := c.sendHeader(q, "")
		h.Batch = true
		return codec.NewRequest(codec.ReqSendBatchMessage, codec.EncodeSendHeaderV2(h), body)
	}, done)
}

func (c *Client) finishSend(res *SendResult, err error, retry func(), done func(SendResult, error)) {
	// With the planted bug bugs.RetryUnknownSends, an unknown outcome is retried as a failure.
	failed := Definite(err) && retriable(err) || c.cfg.Bugs.Has(bugs.RetryUnknownSends) && !Definite(err)
	if failed && res.Attempts < c.cfg.MaxSendAttempts {
		retry()
		return
	}
	done(*res, err)
}

// sendRoute is the topic's route, or TBW102's while the topic does not exist yet (the broker
// auto-creates it on first send), as the official client does.
func (c *Client) sendRoute(topic string, done func(*route.TopicRouteData, error)) {
	c.Route(topic, func(rd *route.TopicRouteData, err error) {
		if err == nil || !errors.Is(err, errNoRoute) {
			done(rd, err)
			return
		}
		c.Route(route.DefaultTopic, func(def *route.TopicRouteData, derr error) {
			if derr != nil {
				done(nil, err)
				return
			}
			capped := *def
			capped.QueueDatas = nil
			for _, qd := range def.QueueDatas {
				qd.ReadQueueNums = min(qd.ReadQueueNums, 4)
				qd.WriteQueueNums = min(qd.WriteQueueNums, 4)
				capped.QueueDatas = append(capped.QueueDatas, qd)
			}
			done(&capped, nil)
		})
	})
}

func (c *Client) pickQueue(qs []MessageQueue, avoidBroker string) MessageQueue {
	for i := 0; i < len(qs); i++ {
		c.rr++
		q := qs[c.rr%len(qs)]
		if q.BrokerName != avoidBroker {
			return q
		}
	}
	c.rr++
	return qs[c.rr%len(qs)]
}

// PullRequest is one PULL_MESSAGE.
type PullRequest struct {
	Queue   MessageQueue
	Group   string
	Offset  int64
	MaxMsgs int32
	// Suspend, in milliseconds, lets the broker hold the pull until a message arrives.
	SuspendMillis int64
	// Subscription is the expression: tags ("*" for all, the default) or, with ExpressionType
	// "SQL92", a selector over message properties.
	Subscription string
	// ExpressionType is the subscription's type: "TAG" (the default) or "SQL92". Both go in
	// the request's expressionType, as the official Go client's pull consumer sends them.
	ExpressionType string
	// GroupSubscription leaves the subscription out (no subscription bit in sysFlag): the
	// broker applies the one the group's heartbeats registered, as for Java's push consumer
	// by default (postSubscriptionWhenPull false).
	GroupSubscription bool
}

// PullResult is a pull's answer. Status is the response code (0 found, 19 no new message,
// 20 no matched message, 21 offset moved); every status carries the offsets.
type PullResult struct {
	Status          int16
	Msgs            []*codec.Message
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	// Addr is the broker that answered: the route's master for the group, or a slave when the
	// route names no master or the last answer for the queue suggested one (SuggestedBrokerID).
	// After a failover, until routes catch up, the route's "master" may be a slave by now.
	Addr string
	// SuggestedBrokerID is the answer's suggestWhichBrokerId: the broker id the next pull of
	// the queue goes to (0, the master, when absent).
	SuggestedBrokerID int64
}

// Pull pulls from a queue's broker group: from the broker the last answer for the queue
// suggested (suggestWhichBrokerId, the master at first), as the official client does (see
// readAddr): the master when the route has one, else a slave, which serves what the master
// confirmed. A pull that fails forgets the suggestion; one that got no answer also forgets the
// route, so a dead master's replacement (or, while there is none, a slave) is found at once.
func (c *Client) Pull(p PullRequest, done func(PullResult, error)) {
	c.Route(p.Queue.Topic, func(rd *route.TopicRouteData, err error) {
		if err != nil {
			done(PullResult{}, err)
			return
		}
		addr, err := c.readFrom(p.Queue.Topic, rd, p.Queue.BrokerName, c.pullFrom[p.Queue])
		if err != nil {
			done(PullResult{}, err)
			return
		}
		sysFlag := 4 // subscription carried in the request
		if p.GroupSubscription {
			sysFlag = 0
		}
		if p.SuspendMillis > 0 {
			sysFlag |= 2
		}
		sub, exprType := p.Subscription, p.ExpressionType
		if sub == "" {
			sub = "*"
		}
		if exprType == "" {
			exprType = "TAG"
		}
		h := codec.PullHeader{
			ConsumerGroup: p.Group, Topic: p.Queue.Topic, QueueID: int64(p.Queue.QueueID), QueueOffset: p.Offset,
			MaxMsgNums: int64(p.MaxMsgs), SysFlag: int64(sysFlag), CommitOffset: 0, SuspendTimeoutMillis: p.SuspendMillis,
			Subscription: sub, ExpressionType: exprType, BrokerName: p.Queue.BrokerName,
		}
		if p.GroupSubscription {
			h.Subscription = "" // left out: the broker uses the group's, from its heartbeats
		}
		if c.cfg.Bugs.Has(bugs.CommitFetchPosition) {
			// The planted bug: commit where this pull means to get to, not what was processed.
			h.SysFlag, h.CommitOffset = h.SysFlag|1, p.Offset+int64(p.MaxMsgs)
		}
		req := codec.NewRequest(codec.ReqPullMessage, codec.EncodeHeader(&h), nil)
		c.invoke(addr, req, func(resp *codec.Command, err error) {
			if err != nil {
				// The broker may be gone: the next pull looks the route up again and starts
				// from the master (or, without one, the first slave) rather than insist on it.
				delete(c.pullFrom, p.Queue)
				c.InvalidateRoute(p.Queue.Topic)
				done(PullResult{}, fmt.Errorf("pull %s at %d from %s: %w", p.Queue, p.Offset, addr, err))
				return
			}
			res := PullResult{Status: resp.Code, Addr: addr}
			ph, _ := codec.DecodeHeader[codec.PullResponseHeader](resp) // read leniently: no field can be malformed
			res.NextBeginOffset, res.MinOffset, res.MaxOffset = ph.NextBeginOffset, ph.MinOffset, ph.MaxOffset
			if ph.SuggestWhichBrokerID >= route.MasterID {
				res.SuggestedBrokerID = ph.SuggestWhichBrokerID
			}
			switch resp.Code {
			case codec.Success:
				body := resp.Body
				for len(body) > 0 {
					m, n, derr := codec.DecodeRecord(body)
					if derr != nil {
						done(PullResult{}, fmt.Errorf("pull %s at %d from %s: %w: %w", p.Queue, p.Offset, addr, ErrCorruptMessage, derr))
						return
					}
					res.Msgs = append(res.Msgs, m)
					body = body[n:]
				}
			case codec.PullNotFound, codec.PullRetryImmediately, codec.PullOffsetMoved:
			default:
				delete(c.pullFrom, p.Queue)
				done(PullResult{}, fmt.Errorf("pull %s at %d from %s: %w", p.Queue, p.Offset, addr, &BrokerError{resp.Code, resp.Remark}))
				return
			}
			if res.SuggestedBrokerID == route.MasterID {
				delete(c.pullFrom, p.Queue)
			} else {
				c.pullFrom[p.Queue] = res.SuggestedBrokerID
			}
			done(res, nil)
		})
	})
}

// QueryOffset asks a queue's broker group for a group's committed offset; found is false when
// none is stored. It asks the master, or a slave when the route names no master, as the Java
// client's RemoteBrokerOffsetStore does (findBrokerAddressInAdmin; the Go client asks only
// the master, and so cannot start consuming a group whose master is gone).
func (c *Client) QueryOffset(group string, q MessageQueue, done func(offset int64, found bool, err error)) {
	c.Route(q.Topic, func(rd *route.TopicRouteData, err error) {
		if err != nil {
			done(0, false, err)
			return
		}
		addr, err := c.readFrom(q.Topic, rd, q.BrokerName, route.MasterID)
		if err != nil {
			done(0, false, err)
			return
		}
		c.QueryOffsetAt(addr, group, q, done)
	})
}

// QueryOffsetAt asks the broker at addr (a replica of q's broker group, whatever its role) for
// a group's committed offset on q, as an admin or a monitor does.
func (c *Client) QueryOffsetAt(addr, group string, q MessageQueue, done func(offset int64, found bool, err error)) {
	req := codec.NewRequest(codec.ReqQueryConsumerOffset, codec.EncodeHeader(&codec.QueryConsumerOffsetHeader{
		ConsumerGroup: group, Topic: q.Topic, QueueID: int64(q.QueueID), BrokerName: q.BrokerName,
	}), nil)
	c.invoke(addr, req, func(resp *codec.Command, err error) {
		switch {
		case err != nil:
			done(0, false, err)
		case resp.Code == codec.QueryNotFound:
			done(0, false, nil)
		case resp.Code != codec.Success:
			done(0, false, &BrokerError{resp.Code, resp.Remark})
		default:
			h, perr := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
			done(h.Offset, perr == nil, perr)
		}
	})
}

// CommitOffset records a group's next offset on a queue's master (or, when the route names
// none, a slave, like QueryOffset) without waiting, as the official client does.
func (c *Client) CommitOffset(group string, q MessageQueue, offset int64) {
	c.Route(q.Topic, func(rd *route.TopicRouteData, err error) {
		if err != nil {
			return
		}
		addr, err := c.readFrom(q.Topic, rd, q.BrokerName, route.MasterID)
		if err != nil {
			return
		}
		c.oneway(addr, codec.NewRequest(codec.ReqUpdateConsumerOffset, codec.EncodeHeader(&codec.UpdateConsumerOffsetHeader{
			ConsumerGroup: group, Topic: q.Topic, QueueID: int64(q.QueueID), CommitOffset: offset, BrokerName: q.BrokerName,
		}), nil))
	})
}

// Queues lists a topic's readable queues.
func (c *Client) Queues(topic string, done func([]MessageQueue, error)) {
	c.Route(topic, func(rd *route.TopicRouteData, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		done(ReadQueues(topic, rd), nil)
	})
}
