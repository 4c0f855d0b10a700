package brokernode

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// The admin views of a group's connected clients and the reset of its offsets to a time:
//
//	GET_CONSUMER_CONNECTION_LIST (203)  -> ConsumerConnection of the group's live clients,
//	                                       CONSUMER_NOT_ONLINE when it has none
//	GET_PRODUCER_CONNECTION_LIST (204)  -> ProducerConnection, SYSTEM_ERROR when none
//	INVOKE_BROKER_TO_RESET_OFFSET (222) -> each queue's offset at the time is committed for
//	                                       the group, pushed to its live clients
//	                                       (RESET_CONSUMER_CLIENT_OFFSET 220, oneway), and
//	                                       answered as a ResetOffsetBody
//
// The clients are those that heartbeat to this broker (consumer.go), dropped when their
// connection closes, they unregister, or their heartbeats stop for ClientExpiry.

// groupShown is how a consumer group consumes, from its latest heartbeat.
type groupShown struct {
	consumeType, messageModel, consumeFromWhere string
	subs                                        []codec.SubscriptionData // in topic order
}

// looseString is a heartbeat field that should hold a JSON string: anything else is kept as
// its JSON text, and null as "", so that a heartbeat is never refused for it.
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	var v string
	switch {
	case string(b) == "null":
	case json.Unmarshal(b, &v) == nil:
		*s = looseString(v)
	default:
		*s = looseString(b)
	}
	return nil
}

// looseInt is a heartbeat field that should hold an integer: anything else reads as 0.
type looseInt int64

func (n *looseInt) UnmarshalJSON(b []byte) error {
	var v int64
	if json.Unmarshal(b, &v) == nil {
		*n = looseInt(v)
	}
	return nil
}

func shownFromHeartbeat(consumeType looseString, model string, from looseString, subs []heartbeatSubscriptionData) groupShown {
	g := groupShown{consumeType: string(consumeType), messageModel: model, consumeFromWhere: string(from)}
	for _, sd := range subs {
		g.subs = append(g.subs, codec.NewSubscriptionData(sd.Topic, sd.ExpressionType, sd.SubString, int64(sd.SubVersion)))
	}
	slices.SortStableFunc(g.subs, func(a, b codec.SubscriptionData) int {
		switch {
		case a.Topic < b.Topic:
			return -1
		case a.Topic > b.Topic:
			return 1
		}
		return 0
	})
	return g
}

// clientWho is the client behind a heartbeat on c.
func (b *Broker) clientWho(c node.ConnID, req *codec.Command) clientWho {
	w := clientWho{language: req.Language, version: req.Version}
	if ap, ok := b.remotes[c]; ok {
		w.addr = ap.String()
	}
	return w
}

// connections lists a group's clients, by client id.
func connections(cg *consumerGroup) []codec.Connection {
	out := []codec.Connection{}
	for _, id := range slices.Sorted(maps.Keys(cg.clients)) {
		w := cg.clients[id].who
		out = append(out, codec.Connection{ClientAddr: w.addr, ClientID: id, Language: w.language, Version: w.version})
	}
	return out
}

func (b *Broker) handleConsumerConnections(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.ConsumerConnectionHeader](req)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "consumer connections: "+err.Error())
	}
	cg := b.groups.byName[h.ConsumerGroup]
	if cg == nil || len(cg.clients) == 0 {
		return codec.NewResponse(req, codec.ConsumerNotOnline, "the consumer group["+h.ConsumerGroup+"] not online")
	}
	body := codec.ConsumerConnection{ConnectionSet: connections(cg), ConsumeType: cg.shown.consumeType,
		MessageModel: cg.shown.messageModel, ConsumeFromWhere: cg.shown.consumeFromWhere,
		SubscriptionTable: map[string]codec.SubscriptionData{}}
	for _, sd := range cg.shown.subs {
		body.SubscriptionTable[sd.Topic] = sd
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(body) // encoding/json writes map keys sorted
	return resp
}

func (b *Broker) handleProducerConnections(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.ProducerConnectionHeader](req)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "producer connections: "+err.Error())
	}
	pg := b.txn.producers.byName[h.ProducerGroup]
	if pg == nil || len(pg.clients) == 0 {
		return codec.NewResponse(req, codec.SystemError, "the producer group["+h.ProducerGroup+"] not exist")
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(codec.ProducerConnection{ConnectionSet: connections(pg)})
	return resp
}

// handleResetOffset serves INVOKE_BROKER_TO_RESET_OFFSET as RocketMQ 5's broker does by
// default (useServerSideResetOffset): for each read queue of the topic (or the one queue
// asked), the offset at the time (SEARCH_OFFSET_BY_TIMESTAMP's: the first message stored at
// or after it, the queue's end if none; timestamp -1: the end), or the offset given for the
// one queue asked, becomes the group's committed offset. Without isForce a queue only moves
// back to a time, as RocketMQ 4's Broker2Client.resetOffset did. Like Broker2Client, it then pushes the new offsets to every
// client of the group connected here (RESET_CONSUMER_CLIENT_OFFSET, oneway), so a running
// consumer drops what it holds and pulls from them; a group with no client online just has
// its offsets moved. Only a master (or a broker without a group) resets.
func (b *Broker) handleResetOffset(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.ResetOffsetHeader](req)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "reset offset: "+err.Error())
	}
	if b.repl != nil && b.master() == nil {
		return codec.NewResponse(req, codec.SystemError, "can not reset offset in slave broker")
	}
	group, topic := h.Group, h.Topic
	tc, ok := b.store.Topic(topic)
	if !ok {
		return codec.NewResponse(req, codec.TopicNotExist, "topic "+topic+" does not exist on this broker")
	}
	if !b.groups.has(group) && !slices.Contains(b.knownGroups(), group) {
		return codec.NewResponse(req, codec.SubscriptionGroupNotExist, "group "+group+" does not exist")
	}
	queues := make([]int32, 0, tc.ReadQueueNums)
	switch {
	case h.QueueID < 0:
		for q := int32(0); q < tc.ReadQueueNums; q++ {
			queues = append(queues, q)
		}
	case h.QueueID < int64(tc.ReadQueueNums):
		queues = append(queues, int32(h.QueueID))
	default:
		return codec.NewResponse(req, codec.SystemError, fmt.Sprintf("reset offset: topic %s has no queue %d", topic, h.QueueID))
	}
	table := make([]codec.QueueOffset, 0, len(queues))
	for _, q := range queues {
		target, err := b.resetTarget(topic, q, h)
		if err != nil {
			b.log.Error("reset offset: find the offset at a time", "topic", topic, "queue", q, "timestamp", h.TimestampMs, "err", err)
			return codec.NewResponse(req, codec.SystemError, "reset offset: "+err.Error())
		}
		explicit := h.QueueID >= 0 && h.Offset >= 0
		if cur, ok := b.store.QueryOffset(group, topic, q); ok && !h.IsForce && !explicit && target >= cur {
			target = cur
		}
		table = append(table, codec.QueueOffset{Queue: codec.MessageQueue{BrokerName: b.cfg.BrokerName, QueueID: q, Topic: topic}, Offset: target})
	}
	for _, e := range table {
		b.store.CommitOffset(group, topic, e.Queue.QueueID, e.Offset)
	}
	body := codec.EncodeResetOffsetBody(table)
	b.log.Info("consumer offsets reset", "group", group, "topic", topic, "timestamp", h.TimestampMs, "queues", len(table))
	if cg := b.groups.byName[group]; cg != nil {
		for _, id := range slices.Sorted(maps.Keys(cg.clients)) {
			push := codec.NewRequest(codec.ReqResetConsumerClientOffset, codec.EncodeHeader(&codec.ResetOffsetHeader{
				Group: group, Topic: topic, TimestampMs: h.TimestampMs, Push: true}), body)
			push.Flag |= codec.FlagOneway
			push.Opaque = b.nextOpaque()
			b.env.Send(cg.clients[id].conn, push)
		}
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = body
	return resp
}

// resetTarget is the offset a reset moves queue q to: the one asked, or the one at the time
// (clamped into the queue's range).
func (b *Broker) resetTarget(topic string, q int32, h codec.ResetOffsetHeader) (int64, error) {
	lo, hi := b.store.MinOffset(topic, q), b.store.MaxOffset(topic, q)
	switch {
	case h.QueueID >= 0 && h.Offset >= 0:
		if h.Offset < lo || h.Offset > hi {
			return 0, fmt.Errorf("target offset %d not in queue %d's range [%d-%d]", h.Offset, q, lo, hi)
		}
		return h.Offset, nil
	case h.TimestampMs == -1:
		return hi, nil
	}
	off, err := b.store.OffsetByTime(topic, q, h.TimestampMs)
	if err != nil {
		return 0, err
	}
	return min(max(off, lo), hi), nil
}
