package brokernode

// Retries and dead letters, as the RocketMQ 4.x broker does them. A consumer that fails a
// message sends it back (CONSUMER_SEND_MSG_BACK) by its commit-log offset; the broker writes a
// copy to %RETRY%<group> through the delay levels (level 3 + reconsumeTimes unless the consumer
// chose one), or to %DLQ%<group> once the message has been reconsumed maxReconsumeTimes times
// or the consumer asks for it (a negative delay level). When send-back fails the client sends
// the copy itself to %RETRY%<group> with SEND_MESSAGE (retry-as-normal); the same dead-letter
// rule applies there (handleSend).

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
	"github.com/sluicemq/sluice/broker/store"
)

const (
	retryTopicPrefix = "%RETRY%"
	dlqTopicPrefix   = "%DLQ%"
	// firstRetryDelayLevel is the level of a first retry; each reconsumption adds one.
	firstRetryDelayLevel = 3
)

// handleSendBack serves CONSUMER_SEND_MSG_BACK. In sync-flush mode the answer is held until the
// copy is durable (nil is returned).
func (b *Broker) handleSendBack(c node.ConnID, req *codec.Command) *codec.Command {
	fail := func(format string, args ...any) *codec.Command {
		return codec.NewResponse(req, codec.SystemError, "send back: "+fmt.Sprintf(format, args...))
	}
	if !b.ready {
		return codec.NewResponse(req, codec.ServiceNotAvailable, "broker is recovering its store")
	}
	h, err := codec.DecodeHeader[codec.SendBackHeader](req)
	if err != nil {
		return fail("%v", err)
	}
	group, offset, delayLevel, maxReconsume := h.Group, h.Offset, h.DelayLevel, h.MaxReconsumeTimes
	if err := validTopic(retryTopicPrefix + group); err != nil {
		return fail("group %q makes no valid retry topic: %v", group, err)
	}
	if offset <= 0 || uint64(offset) > b.store.Confirmed() {
		return fail("no message at commit-log offset %d (the log holds up to %d)", offset, b.store.Confirmed())
	}
	m, err := b.store.ReadIndex(uint64(offset))
	if err != nil {
		b.log.Error("send back: read message", "offset", offset, "err", err)
		return fail("look up message at commit-log offset %d: %v", offset, err)
	}
	// The offset names the message the consumer pulled; in async-flush mode a crash may have
	// lost it and a new message reused its place in the commit log. Retrying that one instead
	// would acknowledge a send-back of a message the broker no longer has and deliver another
	// twice, so the message must be the one the consumer means (its UNIQ_KEY, when it has one).
	if want, got := h.OriginMsgID, codec.Property(m.Properties, codec.PropUniqKey); want != "" && got != "" && want != got {
		return fail("the message at commit-log offset %d is %s, not %s (lost in a crash?)", offset, got, want)
	}
	props := m.Properties
	if codec.Property(props, codec.PropRetryTopic) == "" {
		props = codec.SetProperty(props, codec.PropRetryTopic, m.Topic)
	}
	origin := codec.Property(props, codec.PropOriginMessageID)
	if origin == "" {
		origin = codec.OffsetMsgID(m.StoreHost, m.PhysicalOffset)
	}
	props = codec.SetProperty(props, codec.PropOriginMessageID, origin)
	out := b.restamped(m)
	out.ReconsumeTimes++
	if int64(m.ReconsumeTimes) >= maxReconsume || delayLevel < 0 {
		dlq, err := b.ensureDLQTopic(group)
		if err != nil {
			return fail("%v", err)
		}
		out.Topic = dlq
		props = codec.DeleteProperty(props, codec.PropDelay)
	} else {
		tc, err := b.ensureRetryTopicConfig(group)
		if err != nil {
			return fail("%v", err)
		}
		if delayLevel == 0 {
			delayLevel = firstRetryDelayLevel + int64(m.ReconsumeTimes)
		}
		out.Topic = tc.Name
		if tc.WriteQueueNums > 1 {
			out.QueueID = b.env.Rand().Int32N(tc.WriteQueueNums)
		}
		props = codec.SetProperty(props, codec.PropDelay, strconv.FormatInt(delayLevel, 10))
	}
	if len(props) > codec.MaxPropertiesBytes {
		return fail("properties of the retried message exceed %d bytes", codec.MaxPropertiesBytes)
	}
	out.Properties = props
	resp := codec.NewResponse(req, codec.Success, "")
	res, err := b.putMessage(out)
	if err != nil {
		b.log.Error("send back: store message", "topic", out.Topic, "offset", offset, "err", err)
		return fail("store the message for %s: %v", out.Topic, err)
	}
	return b.answerOnAck(c, res.Index, resp)
}

// retryAsNormal applies the dead-letter rule to a SEND_MESSAGE for a retry topic (the client's
// fallback when send-back fails): once reconsumeTimes reaches maxReconsumeTimes (both from the
// header), a message for an existing retry topic is redirected to the group's DLQ, without a
// delay. Other topics are returned unchanged.
func (b *Broker) retryAsNormal(h *codec.SendHeader) (string, int64, string, error) {
	topic, queueID, props := h.Topic, h.QueueID, h.Properties
	group, ok := strings.CutPrefix(topic, retryTopicPrefix)
	if !ok {
		return topic, queueID, props, nil
	}
	if _, exists := b.store.Topic(topic); !exists {
		return topic, queueID, props, nil // answered 17 by the caller: retry topics come from heartbeats
	}
	if h.ReconsumeTimes < h.MaxReconsumeTimes {
		return topic, queueID, props, nil
	}
	dlq, err := b.ensureDLQTopic(group)
	if err != nil {
		return "", 0, "", err
	}
	return dlq, 0, codec.DeleteProperty(props, codec.PropDelay), nil
}

// ensureRetryTopicConfig is ensureRetryTopic that returns the topic or says why it is missing.
func (b *Broker) ensureRetryTopicConfig(group string) (store.TopicConfig, error) {
	b.ensureRetryTopic(group)
	tc, ok := b.store.Topic(retryTopicPrefix + group)
	if !ok {
		return store.TopicConfig{}, fmt.Errorf("retry topic %s%s could not be created", retryTopicPrefix, group)
	}
	return tc, nil
}

// ensureDLQTopic creates %DLQ%<group> (1 queue) and returns its name. Java 4.x makes it
// write-only, so dead letters can be read only after an admin changes its permission; Sluice
// makes it readable as RocketMQ 5 does, so a consumer can inspect or replay them.
func (b *Broker) ensureDLQTopic(group string) (string, error) {
	name := dlqTopicPrefix + group
	if _, ok := b.store.Topic(name); ok {
		return name, nil
	}
	if err := validTopic(name); err != nil {
		return "", fmt.Errorf("dead-letter topic: %w", err)
	}
	if err := b.store.CreateTopic(store.TopicConfig{Name: name, ReadQueueNums: 1, WriteQueueNums: 1,
		Perm: route.PermRead | route.PermWrite}); err != nil {
		return "", fmt.Errorf("create dead-letter topic %s: %w", name, err)
	}
	b.log.Info("dead-letter topic created", "topic", name)
	b.registerAll()
	return name, nil
}
