package brokernode

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

// heartbeatData is the HEART_BEAT body as RocketMQ clients send it.
type heartbeatData struct {
	ClientID        string `json:"clientID"`
	ConsumerDataSet []struct {
		GroupName           string                      `json:"groupName"`
		MessageModel        string                      `json:"messageModel"`
		ConsumeType         looseString                 `json:"consumeType"`
		ConsumeFromWhere    looseString                 `json:"consumeFromWhere"`
		SubscriptionDataSet []heartbeatSubscriptionData `json:"subscriptionDataSet"`
	} `json:"consumerDataSet"`
	ProducerDataSet []struct {
		GroupName string `json:"groupName"`
	} `json:"producerDataSet"`
}

// heartbeatSubscriptionData is one subscription of a heartbeat's consumer group.
type heartbeatSubscriptionData struct {
	Topic          string `json:"topic"`
	SubString      string `json:"subString"`
	ExpressionType string `json:"expressionType"`
	// SubVersion is kept for GET_CONSUMER_CONNECTION_LIST; any JSON is accepted (not an
	// integer: 0), so that a heartbeat is never refused for it.
	SubVersion looseInt `json:"subVersion"`
}

type clientInfo struct {
	conn     node.ConnID
	lastSeen time.Time
	// who is what GET_CONSUMER_CONNECTION_LIST and GET_PRODUCER_CONNECTION_LIST show of the
	// client, from its latest heartbeat.
	who clientWho
}

// clientWho is what a heartbeat says about its client beyond its id: the language and
// version of its request header, and the connection's remote address.
type clientWho struct {
	addr     string
	language string
	version  int32
}

type consumerGroup struct {
	clients map[string]*clientInfo
	// subs is the group's subscription by topic (from the latest heartbeat).
	subs map[string]subscription
	// shown is how the group consumes, as its latest heartbeat described it, for
	// GET_CONSUMER_CONNECTION_LIST (conn.go).
	shown groupShown
}

// consumerGroups tracks the live clients of every consumer group.
type consumerGroups struct {
	byName map[string]*consumerGroup
}

func newConsumerGroups() *consumerGroups { return &consumerGroups{byName: map[string]*consumerGroup{}} }

// heartbeat records a client in a group and reports whether membership changed.
func (g *consumerGroups) heartbeat(group, clientID string, c node.ConnID, now time.Time, subs map[string]subscription, who clientWho) bool {
	cg := g.byName[group]
	if cg == nil {
		cg = &consumerGroup{clients: map[string]*clientInfo{}}
		g.byName[group] = cg
	}
	cg.subs = subs
	ci, known := cg.clients[clientID]
	if !known {
		ci = &clientInfo{}
		cg.clients[clientID] = ci
	}
	ci.conn = c
	ci.lastSeen = now
	ci.who = who
	return !known
}

func (g *consumerGroups) subscription(group, topic string) (subscription, bool) {
	cg := g.byName[group]
	if cg == nil {
		return subscription{}, false
	}
	s, ok := cg.subs[topic]
	return s, ok
}

// has reports whether any client's heartbeat announced group.
func (g *consumerGroups) has(group string) bool { return g.byName[group] != nil }

func (g *consumerGroups) members(group string) []string {
	cg := g.byName[group]
	if cg == nil {
		return []string{}
	}
	return slices.Sorted(maps.Keys(cg.clients))
}

// clientConn is the connection of client id, whatever its group: the one it heartbeated on
// most recently (groups in name order break ties), as Java's ProducerManager.findChannel
// keeps the channel a client id last registered with.
func (g *consumerGroups) clientConn(id string) (node.ConnID, bool) {
	var best *clientInfo
	for _, name := range slices.Sorted(maps.Keys(g.byName)) {
		if ci := g.byName[name].clients[id]; ci != nil && (best == nil || ci.lastSeen.After(best.lastSeen)) {
			best = ci
		}
	}
	if best == nil {
		return 0, false
	}
	return best.conn, true
}

// remove drops clients matching pred and returns the groups whose membership changed, sorted.
func (g *consumerGroups) remove(pred func(id string, ci *clientInfo) bool) []string {
	var changed []string
	for _, name := range slices.Sorted(maps.Keys(g.byName)) {
		cg := g.byName[name]
		for _, id := range slices.Sorted(maps.Keys(cg.clients)) {
			if pred(id, cg.clients[id]) {
				delete(cg.clients, id)
				if len(changed) == 0 || changed[len(changed)-1] != name {
					changed = append(changed, name)
				}
			}
		}
		if len(cg.clients) == 0 {
			delete(g.byName, name)
		}
	}
	return changed
}

func (g *consumerGroups) dropConn(c node.ConnID) []string {
	return g.remove(func(_ string, ci *clientInfo) bool { return ci.conn == c })
}

func (g *consumerGroups) unregister(clientID string) []string {
	return g.remove(func(id string, _ *clientInfo) bool { return id == clientID })
}

func (g *consumerGroups) expire(before time.Time) []string {
	return g.remove(func(_ string, ci *clientInfo) bool { return ci.lastSeen.Before(before) })
}

// maxHeartbeatGroups bounds the consumer groups, and the producer groups, one heartbeat may
// name. A client process has a handful; each new consumer group creates a retry topic, so an
// unbounded list would let one request create topics without limit.
const maxHeartbeatGroups = 1024

// decodeHeartbeat parses a HEART_BEAT body; a heartbeat must name its client.
func decodeHeartbeat(body []byte) (heartbeatData, error) {
	var hb heartbeatData
	if err := json.Unmarshal(body, &hb); err != nil {
		return heartbeatData{}, fmt.Errorf("heartbeat: bad body: %w", err)
	}
	switch {
	case hb.ClientID == "":
		return heartbeatData{}, errors.New("heartbeat: clientID is required")
	case len(hb.ConsumerDataSet) > maxHeartbeatGroups || len(hb.ProducerDataSet) > maxHeartbeatGroups:
		return heartbeatData{}, fmt.Errorf("heartbeat: %d consumer and %d producer groups, at most %d of each",
			len(hb.ConsumerDataSet), len(hb.ProducerDataSet), maxHeartbeatGroups)
	}
	return hb, nil
}

func (b *Broker) handleHeartbeat(c node.ConnID, req *codec.Command) *codec.Command {
	hb, err := decodeHeartbeat(req.Body)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	// Retry topics first, all with one write and one registration. Java's heartBeat creates
	// %RETRY%<group> for every consumer group it is told of, broadcasting ones included
	// (ClientManageProcessor.heartBeat, createTopicInSendMessageBackMethod with the group's
	// retryQueueNums, 1 by default), and registers it with the name servers (oneway: the
	// heartbeat's answer does not wait), so a client's rebalance finds its retry topic's route.
	var retry []store.TopicConfig
	for _, cd := range hb.ConsumerDataSet {
		if cd.GroupName == "" {
			continue
		}
		if tc, missing := b.missingRetryTopic(cd.GroupName); missing {
			retry = append(retry, tc)
		}
	}
	if len(retry) > 0 {
		if err := b.store.CreateTopics(retry...); err != nil {
			b.log.Error("create retry topics", "client", hb.ClientID, "topics", len(retry), "err", err)
		} else {
			b.registerAll()
		}
	}
	who := b.clientWho(c, req)
	for _, cd := range hb.ConsumerDataSet {
		if cd.GroupName == "" {
			continue
		}
		subs := map[string]subscription{}
		for _, sd := range cd.SubscriptionDataSet {
			subs[sd.Topic] = b.heartbeatSubscription(hb.ClientID, cd.GroupName, sd.Topic, sd.ExpressionType, sd.SubString)
		}
		joined := b.groups.heartbeat(cd.GroupName, hb.ClientID, c, b.env.Now(), subs, who)
		b.groups.byName[cd.GroupName].shown = shownFromHeartbeat(cd.ConsumeType, cd.MessageModel, cd.ConsumeFromWhere, cd.SubscriptionDataSet)
		if joined {
			b.log.Info("consumer joined", "group", cd.GroupName, "client", hb.ClientID)
			b.notifyGroupChanged(cd.GroupName)
		}
	}
	for _, pd := range hb.ProducerDataSet {
		if pd.GroupName != "" {
			b.txn.producers.heartbeat(pd.GroupName, hb.ClientID, c, b.env.Now(), nil, who)
		}
	}
	return codec.NewResponse(req, codec.Success, "")
}

// heartbeatSubscription is a group's subscription to a topic from a heartbeat: the one it had
// if unchanged (heartbeats repeat it every 30 s), else parsed anew. The heartbeat is accepted
// whatever the expression, as Java accepts it; a SQL92 expression the broker refuses is logged
// when it first arrives, and every pull that would use it is answered with the error.
func (b *Broker) heartbeatSubscription(clientID, group, topic, exprType, expr string) subscription {
	if old, ok := b.groups.subscription(group, topic); ok && old.same(exprType, expr) {
		return old
	}
	s := parseSubscription(exprType, expr)
	if _, code, remark := b.pullFilter(s); code != codec.Success {
		b.log.Warn("consumer subscribed with an expression the broker refuses; its pulls will fail",
			"group", group, "client", clientID, "topic", topic, "type", exprType, "expression", expr, "code", code, "remark", remark)
	}
	return s
}

// ensureRetryTopic creates %RETRY%<group> (1 queue), as the Java broker does on heartbeat,
// and registers it with the name servers.
func (b *Broker) ensureRetryTopic(group string) {
	tc, missing := b.missingRetryTopic(group)
	if !missing {
		return
	}
	if err := b.store.CreateTopic(tc); err != nil {
		b.log.Error("create retry topic", "topic", tc.Name, "err", err)
		return
	}
	b.registerAll()
}

// missingRetryTopic is the configuration of %RETRY%<group> if that topic does not exist yet
// (and its name is valid).
func (b *Broker) missingRetryTopic(group string) (store.TopicConfig, bool) {
	name := "%RETRY%" + group
	if _, ok := b.store.Topic(name); ok || validTopic(name) != nil {
		return store.TopicConfig{}, false
	}
	return store.TopicConfig{Name: name, ReadQueueNums: 1, WriteQueueNums: 1, Perm: route.PermRead | route.PermWrite}, true
}

// notifyGroupChanged tells every member of a group to rebalance (NOTIFY_CONSUMER_IDS_CHANGED).
func (b *Broker) notifyGroupChanged(group string) {
	cg := b.groups.byName[group]
	if cg == nil {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(cg.clients)) {
		req := codec.NewRequest(40, codec.EncodeHeader(&codec.ConsumerGroupHeader{ConsumerGroup: group}), nil)
		req.Opaque = b.nextOpaque()
		b.env.Send(cg.clients[id].conn, req)
	}
}

func (b *Broker) handleConsumerList(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.ConsumerGroupHeader](req) // no field can be malformed
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = mustJSON(struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}{b.groups.members(h.ConsumerGroup)})
	return resp
}

// handleUnregisterClient serves UNREGISTER_CLIENT: the client leaves its consumer groups (which
// are told to rebalance) and its producer groups.
func (b *Broker) handleUnregisterClient(req *codec.Command) *codec.Command {
	h, _ := codec.DecodeHeader[codec.UnregisterClientHeader](req) // no field can be malformed
	for _, g := range b.groups.unregister(h.ClientID) {
		b.notifyGroupChanged(g)
	}
	b.txn.producers.unregister(h.ClientID)
	return codec.NewResponse(req, codec.Success, "")
}

// checkQueueID checks a header's queue id (decoded, err the header's error) is one a topic
// can have.
func checkQueueID(q int64, err error) (int32, error) {
	if err != nil {
		return 0, err
	}
	if q < 0 || q >= store.MaxQueueNums {
		return 0, fmt.Errorf("queueId %d is out of range 0..%d", q, store.MaxQueueNums-1)
	}
	return int32(q), nil
}

func (b *Broker) handleQueryOffset(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.QueryConsumerOffsetHeader](req)
	q, err := checkQueueID(h.QueueID, err)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, err.Error())
	}
	if m := b.master(); m != nil && m.dutiesDue {
		// A new master raises the offsets it copied clamped (its queues lagged the old
		// master's) once it has confirmed the log it took over: until then it would answer
		// below what it copied, and a moment later above.
		return codec.NewResponse(req, codec.ServiceNotAvailable, "the new master is still confirming the log it took over; retry shortly")
	}
	// An offset is made durable before anyone reads it, so a crash can never move an offset a
	// consumer has seen backwards (updates nobody has read yet may still be lost).
	if err := b.flushOffsetsBeforeQuery(); err != nil {
		b.log.Error("flush consumer offsets before a query", "err", err)
		return codec.NewResponse(req, codec.SystemError, "persist consumer offsets: "+err.Error())
	}
	topic := h.Topic
	off, ok := b.store.QueryOffset(h.ConsumerGroup, topic, q)
	if !ok {
		young, err := b.youngQueue(topic, q)
		if err != nil {
			b.log.Error("read the head of a queue for an offset query", "topic", topic, "queue", q, "err", err)
		}
		if !young {
			return codec.NewResponse(req, codec.QueryNotFound, "no offset stored for this group and queue")
		}
		off = 0
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&codec.OffsetResponseHeader{Offset: off})
	return resp
}

// youngQueue is Java 4.x's rule for a group with no stored offset on a queue
// (ConsumerManageProcessor.queryConsumerOffset): answer offset 0 when the queue's min offset
// is 0 and its head is not yet "in disk" (`minOffset <= 0 &&
// !checkInDiskByConsumeOffset(topic, queue, 0)`), so a new group starts from the first message
// of a young queue whatever its consumeFromWhere; otherwise QUERY_NOT_FOUND and the client
// applies consumeFromWhere. Java's "in disk" means the head's commit-log position is more than
// accessMessageInMemoryMaxRatio (40 %) of physical memory behind the commit log's end, and an
// empty queue is never in disk. Sluice's commit-log positions count entries, not bytes, and
// its page cache is the operating system's, so the equivalent here is: the head's commit-log
// index is within the last Config.RecentHeadEntries entries of the commit log (by default
// 2^20: about 1 GiB of 1 KiB messages, what the page cache of a small broker holds). A topic
// this broker does not have is not young (Java's answer 0 there comes from its consume
// queues being created on lookup; Sluice answers 22, as for a deleted topic).
func (b *Broker) youngQueue(topic string, q int32) (bool, error) {
	if _, ok := b.store.Topic(topic); !ok {
		return false, nil
	}
	minOffset, head, ok, err := b.store.QueueHead(topic, q)
	if err != nil || minOffset > 0 {
		return false, err
	}
	if !ok {
		return true, nil // an empty queue's head is not in disk
	}
	last := b.store.CommitLog().LastIndex()
	return last < head || last-head < b.cfg.recentHeadEntries(), nil
}

func (b *Broker) handleUpdateOffset(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.UpdateConsumerOffsetHeader](req)
	q, err := checkQueueID(h.QueueID, err)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "update offset: "+err.Error())
	}
	off, group, topic := h.CommitOffset, h.ConsumerGroup, h.Topic
	if off < 0 {
		return codec.NewResponse(req, codec.SystemError, "update offset: negative commitOffset")
	}
	b.store.CommitOffset(group, topic, q, off)
	return codec.NewResponse(req, codec.Success, "")
}

func (b *Broker) handleMinMaxOffset(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.QueueOffsetHeader](req)
	q, err := checkQueueID(h.QueueID, err)
	topic := h.Topic
	resp := codec.NewResponse(req, codec.Success, "")
	if err != nil {
		resp.Code, resp.Remark = codec.SystemError, "min/max offset: "+err.Error()
		return resp
	}
	var off int64
	if _, ok := b.store.Topic(topic); ok {
		if req.Code == codec.ReqGetMinOffset {
			off = b.store.MinOffset(topic, q)
		} else {
			off = b.store.MaxOffset(topic, q)
		}
	}
	resp.SetHeader(&codec.OffsetResponseHeader{Offset: off})
	return resp
}

// handleSearchOffset serves SEARCH_OFFSET_BY_TIMESTAMP: ext offset is the first queue offset
// stored at or after ext timestamp (ms), or the queue's max offset if all are older. The Go
// client reads ext offset whatever the code, so errors leave it out.
func (b *Broker) handleSearchOffset(req *codec.Command) *codec.Command {
	h, err := codec.DecodeHeader[codec.SearchOffsetHeader](req)
	q, err := checkQueueID(h.QueueID, err)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "search offset: "+err.Error())
	}
	topic, ts := h.Topic, h.TimestampMs
	var off int64
	if _, ok := b.store.Topic(topic); ok {
		var err error
		if off, err = b.store.OffsetByTime(topic, q, ts); err != nil {
			b.log.Error("search offset by time", "topic", topic, "queue", q, "timestamp", ts, "err", err)
			return codec.NewResponse(req, codec.SystemError, "search offset: "+err.Error())
		}
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&codec.OffsetResponseHeader{Offset: off})
	return resp
}

func mustJSON(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		panic("brokernode: marshal of plain data failed: " + err.Error())
	}
	return out
}

func (b *Broker) flushOffsetsBeforeQuery() error {
	if b.cfg.Bugs.Has(bugs.QueryUnflushedOffsets) {
		return nil // the planted bug: answer from memory, lost by a crash
	}
	return b.store.FlushOffsets()
}
