package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// MessageModel is how a consumer group shares a topic.
type MessageModel string

const (
	// Clustering: each message goes to one member of the group; failed messages are sent back
	// to %RETRY%<group>, which the group also consumes.
	Clustering MessageModel = "CLUSTERING"
	// Broadcasting: every member gets every message.
	Broadcasting MessageModel = "BROADCASTING"
)

// RetryTopic is the topic a clustering group's failed messages are retried from.
func RetryTopic(group string) string { return "%RETRY%" + group }

// DLQTopic is the topic a group's messages land in after the maximum reconsume times.
func DLQTopic(group string) string { return "%DLQ%" + group }

// ConsumerGroup is a consumer group as heartbeats announce it.
type ConsumerGroup struct {
	Name  string
	Model MessageModel
	// Subscriptions maps each topic to its expression: tags ("*" for all) unless
	// ExpressionTypes says otherwise.
	Subscriptions map[string]string
	// ExpressionTypes maps a topic to its subscription's type: "TAG" (the default) or "SQL92",
	// a selector over message properties (sent as is, with no tags, as Java's FilterAPI.build
	// does).
	ExpressionTypes map[string]string
}

// RegisterConsumer makes heartbeats announce g (replacing an earlier registration of the same
// name), so brokers list this client among the group's members, create %RETRY%<group> for a
// clustering group, and apply g's subscriptions to pulls that carry none.
func (c *Client) RegisterConsumer(g ConsumerGroup) {
	if g.Model == "" {
		g.Model = Clustering
	}
	g.Subscriptions = maps.Clone(g.Subscriptions)
	g.ExpressionTypes = maps.Clone(g.ExpressionTypes)
	c.consumers[g.Name] = g
}

// learnBrokers remembers every broker address of a route, for heartbeats.
func (c *Client) learnBrokers(rd *route.TopicRouteData) {
	for _, bd := range rd.BrokerDatas {
		if c.brokers[bd.BrokerName] == nil {
			c.brokers[bd.BrokerName] = map[string]string{}
		}
		for id, addr := range bd.BrokerAddrs {
			c.brokers[bd.BrokerName][id] = addr
		}
	}
}

// heartbeat bodies, as the official client writes them (docs/protocol.md, "Heartbeats").
type (
	heartbeatBody struct {
		ClientID        string              `json:"clientID"`
		ProducerDataSet []producerData      `json:"producerDataSet"`
		ConsumerDataSet []heartbeatConsumer `json:"consumerDataSet"`
	}
	producerData struct {
		GroupName string `json:"groupName"`
	}
	heartbeatConsumer struct {
		GroupName           string             `json:"groupName"`
		ConsumeType         string             `json:"consumeType"`
		MessageModel        string             `json:"messageModel"`
		ConsumeFromWhere    string             `json:"consumeFromWhere"`
		UnitMode            bool               `json:"unitMode"`
		SubscriptionDataSet []subscriptionData `json:"subscriptionDataSet"`
	}
	subscriptionData struct {
		ClassFilterMode bool     `json:"classFilterMode"`
		Topic           string   `json:"topic"`
		SubString       string   `json:"subString"`
		TagsSet         []string `json:"tagsSet"`
		CodeSet         []string `json:"codeSet"`
		SubVersion      int64    `json:"subVersion"`
		ExpressionType  string   `json:"expressionType"`
	}
)

// subscription describes one topic's tag expression with its tags and their hash codes.
func subscription(topic, expr string) subscriptionData {
	sd := subscriptionData{Topic: topic, SubString: expr, TagsSet: []string{}, CodeSet: []string{}, ExpressionType: "TAG"}
	if expr == "" || expr == "*" {
		sd.SubString = "*"
		return sd
	}
	for _, tag := range splitTags(expr) {
		sd.TagsSet = append(sd.TagsSet, tag)
		sd.CodeSet = append(sd.CodeSet, itoa(codec.TagsHash(tag)))
	}
	return sd
}

// splitTags splits a tag expression "A || B" into its tags, dropping blanks.
func splitTags(expr string) []string {
	var out []string
	for _, part := range strings.Split(expr, "||") {
		if t := strings.TrimSpace(part); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func (c *Client) heartbeatBody() []byte {
	hb := heartbeatBody{ClientID: c.cfg.ClientID, ProducerDataSet: []producerData{}, ConsumerDataSet: []heartbeatConsumer{}}
	if c.cfg.ProducerGroup != "" {
		hb.ProducerDataSet = append(hb.ProducerDataSet, producerData{GroupName: c.cfg.ProducerGroup})
	}
	for _, name := range slices.Sorted(maps.Keys(c.consumers)) {
		g := c.consumers[name]
		hc := heartbeatConsumer{GroupName: name, ConsumeType: "CONSUME_ACTIVELY", MessageModel: string(g.Model),
			ConsumeFromWhere: "CONSUME_FROM_FIRST_OFFSET", SubscriptionDataSet: []subscriptionData{}}
		for _, topic := range slices.Sorted(maps.Keys(g.Subscriptions)) {
			sd := subscription(topic, g.Subscriptions[topic])
			if t := g.ExpressionTypes[topic]; t != "" && t != "TAG" {
				sd = subscriptionData{Topic: topic, SubString: g.Subscriptions[topic], TagsSet: []string{}, CodeSet: []string{}, ExpressionType: t}
			}
			hc.SubscriptionDataSet = append(hc.SubscriptionDataSet, sd)
		}
		if _, ok := g.Subscriptions[RetryTopic(name)]; !ok && g.Model == Clustering {
			hc.SubscriptionDataSet = append(hc.SubscriptionDataSet, subscription(RetryTopic(name), "*"))
		}
		hb.ConsumerDataSet = append(hb.ConsumerDataSet, hc)
	}
	body, err := json.Marshal(hb)
	if err != nil {
		panic("client: marshal of a heartbeat failed: " + err.Error())
	}
	return body
}

// heartbeatTargets lists the addresses heartbeats go to, sorted: every known broker address,
// or only masters while no consumer group is registered (as the official client does).
func (c *Client) heartbeatTargets() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(c.brokers)) {
		for _, id := range slices.Sorted(maps.Keys(c.brokers[name])) {
			if len(c.consumers) == 0 && id != itoa(route.MasterID) {
				continue
			}
			out = append(out, c.brokers[name][id])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Heartbeat sends HEART_BEAT, announcing the producer group and every registered consumer
// group, to every broker known from the routes looked up so far. done is called once all have
// answered, with the failures joined (nil when there was nobody to tell).
func (c *Client) Heartbeat(done func(error)) {
	targets := c.heartbeatTargets()
	if len(targets) == 0 || c.cfg.ProducerGroup == "" && len(c.consumers) == 0 {
		done(nil)
		return
	}
	body := c.heartbeatBody()
	waiting := len(targets)
	var errs []error
	for _, addr := range targets {
		c.invoke(addr, codec.NewRequest(codec.ReqHeartBeat, nil, body), func(resp *codec.Command, err error) {
			if err == nil && resp.Code != codec.Success {
				err = &BrokerError{resp.Code, resp.Remark}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("heartbeat to %s: %w", addr, err))
			}
			waiting--
			if waiting == 0 {
				done(errors.Join(errs...))
			}
		})
	}
}
