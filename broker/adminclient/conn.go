package adminclient

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// ConsumerConnection is a consumer group's connected clients as the brokers its clients
// heartbeat to see them, merged: each client once (by client id), with the group's
// subscriptions and how it consumes as the first broker that answered reports them.
type ConsumerConnection struct {
	codec.ConsumerConnection
	Brokers []string // the brokers that answered, by group name
}

// ConsumerConnections asks the master of every broker group routing the group's retry topic
// (%RETRY%group: every broker a client of the group heartbeats to creates it) for the
// group's connections (GET_CONSUMER_CONNECTION_LIST). It fails when no broker has a client of
// the group online.
func (c *Client) ConsumerConnections(group string) (ConsumerConnection, error) {
	var out ConsumerConnection
	req := codec.NewRequest(codec.ReqGetConsumerConnectionList, codec.EncodeHeader(&codec.ConsumerConnectionHeader{ConsumerGroup: group}), nil)
	brokers, err := askEachMaster(c, "%RETRY%"+group, req, func(cc codec.ConsumerConnection) {
		conns := mergeConnections(out.ConnectionSet, cc.ConnectionSet)
		if out.SubscriptionTable == nil {
			out.ConsumerConnection = cc
		}
		out.ConnectionSet = conns
	})
	out.Brokers = brokers
	if err != nil {
		return out, fmt.Errorf("consumer connections of %s: %w", group, err)
	}
	return out, nil
}

// ProducerConnection is a producer group's connected clients, merged over the brokers asked.
type ProducerConnection struct {
	ConnectionSet []codec.Connection
	Brokers       []string // the brokers that answered, by group name
}

// ProducerConnections asks the master of every broker group routing topic for the producer
// group's connections (GET_PRODUCER_CONNECTION_LIST), as mqadmin's producerConnection does
// (a producer heartbeats to the brokers of the topics it sends to). It fails when no broker
// knows a client of the group.
func (c *Client) ProducerConnections(group, topic string) (ProducerConnection, error) {
	var out ProducerConnection
	req := codec.NewRequest(codec.ReqGetProducerConnectionList, codec.EncodeHeader(&codec.ProducerConnectionHeader{ProducerGroup: group}), nil)
	brokers, err := askEachMaster(c, topic, req, func(pc codec.ProducerConnection) {
		out.ConnectionSet = mergeConnections(out.ConnectionSet, pc.ConnectionSet)
	})
	out.Brokers = brokers
	if err != nil {
		return out, fmt.Errorf("producer connections of %s: %w", group, err)
	}
	return out, nil
}

// askEachMaster sends req to the master of every broker group routing topic and hands each
// SUCCESS answer's JSON body to add. It returns the broker groups that answered, and an error
// when none did.
func askEachMaster[T any](c *Client, topic string, req *codec.Command, add func(T)) ([]string, error) {
	brokers, err := c.TopicBrokers(topic)
	if err != nil {
		return nil, err
	}
	var answered []string
	var errs []error
	for _, b := range brokers {
		r := *req // each call sets its own opaque
		resp, err := c.callOK(b.Addr, &r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var body T
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			errs = append(errs, fmt.Errorf("%s: bad body: %w", b.Addr, err))
			continue
		}
		add(body)
		answered = append(answered, b.Name)
	}
	if len(answered) == 0 {
		return nil, errors.Join(errs...)
	}
	return answered, nil
}

// mergeConnections adds the connections of more whose client ids a lacks, sorted by client id.
func mergeConnections(a, more []codec.Connection) []codec.Connection {
	for _, m := range more {
		if !slices.ContainsFunc(a, func(x codec.Connection) bool { return x.ClientID == m.ClientID }) {
			a = append(a, m)
		}
	}
	slices.SortFunc(a, func(x, y codec.Connection) int { return strings.Compare(x.ClientID, y.ClientID) })
	if a == nil {
		a = []codec.Connection{}
	}
	return a
}

// OffsetReset is one queue's committed offset before and after a reset. Old is -1 when the
// group had none.
type OffsetReset struct {
	Broker  string // broker group
	QueueID int32
	Old     int64
	New     int64
}

// ResetSpec is what ResetOffsetByTime resets.
type ResetSpec struct {
	Group, Topic string
	// TimestampMs is the time to move to (-1: each queue's end).
	TimestampMs int64
	// Force lets a queue move forward too; without it only queues past the time move back.
	Force bool
	// Broker, if set, limits the reset to one broker group (its name or its master's
	// address); Queue, if set, to one queue; Offset, with Queue, is the offset to move to
	// instead of the time's (mqadmin's -b, -q and -o).
	Broker string
	Queue  *int32
	Offset *int64
}

// queues is the queues of a broker group with n read queues that s resets.
func (s ResetSpec) queues(n int) []int32 {
	var out []int32
	for q := range int32(n) {
		if s.Queue == nil || *s.Queue == q {
			out = append(out, q)
		}
	}
	return out
}

// ResetResult is what a reset did.
type ResetResult struct {
	Queues []OffsetReset // by broker group and queue
	// Offline lists the broker groups that answered CONSUMER_NOT_ONLINE (a RocketMQ 4
	// broker with no client of the group connected): their offsets were set one queue at a
	// time instead (mqadmin's resetOffsetByTimeOld).
	Offline []string
}

// ResetOffsetByTime moves a consumer group's committed offsets on topic to the first message
// stored at or after a time, on the master of every broker group hosting the topic, as
// mqadmin's resetOffsetByTime does: INVOKE_BROKER_TO_RESET_OFFSET, which commits the offsets
// and pushes them to the group's connected consumers (RESET_CONSUMER_CLIENT_OFFSET), so that
// they drop what they hold and consume again from there. Each queue's offset before the reset
// is read first (QUERY_CONSUMER_OFFSET) so the result shows the move. A broker that answers
// CONSUMER_NOT_ONLINE gets mqadmin's fallback: each queue's offset at the time
// (SEARCH_OFFSET_BY_TIMESTAMP) committed with UPDATE_CONSUMER_OFFSET.
func (c *Client) ResetOffsetByTime(s ResetSpec) (ResetResult, error) {
	r, err := c.Route(s.Topic)
	if err != nil {
		return ResetResult{}, fmt.Errorf("reset offsets of %s on %s: %w", s.Group, s.Topic, err)
	}
	if s.Offset != nil && s.Queue == nil {
		return ResetResult{}, errors.New("reset offsets: an offset needs a queue")
	}
	h := codec.ResetOffsetHeader{Group: s.Group, Topic: s.Topic, TimestampMs: s.TimestampMs, IsForce: s.Force, QueueID: -1, Offset: -1}
	if s.Queue != nil {
		h.QueueID = int64(*s.Queue)
	}
	if s.Offset != nil {
		h.Offset = *s.Offset
	}
	var res ResetResult
	var errs []error
	asked := 0
	for _, b := range masters(r) {
		if s.Broker != "" && s.Broker != b.Name && s.Broker != b.Addr {
			continue
		}
		asked++
		queues := s.queues(readQueues(r, b.Name))
		if len(queues) == 0 {
			errs = append(errs, fmt.Errorf("%s has no such queue", b.Name))
			continue
		}
		old := make(map[int32]int64, len(queues))
		for _, q := range queues {
			old[q] = c.committedOffset(b.Addr, s.Group, s.Topic, q)
		}
		resp, err := c.Call(b.Addr, codec.NewRequest(codec.ReqInvokeBrokerToResetOffset, codec.EncodeHeader(&h), nil))
		var table []codec.QueueOffset
		switch {
		case err != nil:
		case resp.Code == codec.ConsumerNotOnline:
			res.Offline = append(res.Offline, b.Name)
			table, err = c.resetOffline(b, queues, old, s)
		case resp.Code != codec.Success:
			err = &ResponseError{Addr: b.Addr, Code: resp.Code, Remark: resp.Remark}
		default:
			table, err = codec.DecodeResetOffsetBody(resp.Body)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range table {
			prev, ok := old[e.Queue.QueueID]
			if !ok {
				prev = -1
			}
			res.Queues = append(res.Queues, OffsetReset{Broker: b.Name, QueueID: e.Queue.QueueID, Old: prev, New: e.Offset})
		}
	}
	if asked == 0 {
		errs = append(errs, fmt.Errorf("no broker group %s hosts the topic", s.Broker))
	}
	slices.SortFunc(res.Queues, func(a, b OffsetReset) int {
		return cmp.Or(strings.Compare(a.Broker, b.Broker), cmp.Compare(a.QueueID, b.QueueID))
	})
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("reset offsets of %s on %s: %w", s.Group, s.Topic, err)
	}
	return res, nil
}

// readQueues is the read queue count of broker group name in r.
func readQueues(r *route.TopicRouteData, name string) int {
	for _, q := range r.QueueDatas {
		if q.BrokerName == name {
			return int(q.ReadQueueNums)
		}
	}
	return 0
}

// committedOffset is the group's committed offset of a queue, -1 if it has none (or the
// broker would not say).
func (c *Client) committedOffset(addr, group, topic string, q int32) int64 {
	resp, err := c.Call(addr, codec.NewRequest(codec.ReqQueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": fmt.Sprint(q)}, nil))
	if err != nil || resp.Code != codec.Success {
		return -1
	}
	h, err := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
	if err != nil {
		return -1
	}
	return h.Offset
}

// resetOffline is mqadmin's resetOffsetByTimeOld on one broker: each queue's offset at the
// time (or the offset asked), committed unless it would move the queue forward without Force.
func (c *Client) resetOffline(b Broker, queues []int32, old map[int32]int64, s ResetSpec) ([]codec.QueueOffset, error) {
	var out []codec.QueueOffset
	for _, q := range queues {
		var target int64
		if s.Offset != nil {
			target = *s.Offset
		} else if s.TimestampMs == -1 {
			resp, err := c.callOK(b.Addr, codec.NewRequest(codec.ReqGetMaxOffset, map[string]string{"topic": s.Topic, "queueId": fmt.Sprint(q)}, nil))
			if err != nil {
				return out, err
			}
			h, err := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
			if err != nil {
				return out, fmt.Errorf("%s: max offset: %w", b.Addr, err)
			}
			target = h.Offset
		} else {
			resp, err := c.callOK(b.Addr, codec.NewRequest(codec.ReqSearchOffsetByTimestamp, map[string]string{
				"topic": s.Topic, "queueId": fmt.Sprint(q), "timestamp": fmt.Sprint(s.TimestampMs)}, nil))
			if err != nil {
				return out, err
			}
			h, err := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
			if err != nil {
				return out, fmt.Errorf("%s: search offset: %w", b.Addr, err)
			}
			target = h.Offset
		}
		if prev := old[q]; prev >= 0 && !s.Force && s.Offset == nil && target >= prev {
			target = prev
		}
		if _, err := c.callOK(b.Addr, codec.NewRequest(codec.ReqUpdateConsumerOffset, map[string]string{
			"consumerGroup": s.Group, "topic": s.Topic, "queueId": fmt.Sprint(q), "commitOffset": fmt.Sprint(target)}, nil)); err != nil {
			return out, err
		}
		out = append(out, codec.QueueOffset{Queue: codec.MessageQueue{BrokerName: b.Name, QueueID: q, Topic: s.Topic}, Offset: target})
	}
	return out, nil
}
