package acl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
)

// ruleKind is what a request code needs besides its resources.
type ruleKind uint8

const (
	// admin: a signed request from an admin account. The zero value, so that a code this table
	// does not list (one added to a node later, or one no node serves) is admin-only.
	admin ruleKind = iota
	// signed: a signed request from any account, and the permissions needs lists.
	signed
	// open: no check at all (route queries to a name server, which RocketMQ's name server
	// answers without any ACL).
	open
)

// rule is how requests of one code are checked.
type rule struct {
	kind ruleKind
	// needs lists the permissions a request needs on what it touches (nil: none).
	needs func(cmd *codec.Command) ([]Need, error)
}

// rules holds every request code that is not admin-only. RocketMQ's broker checks only the
// codes its PlainAccessResource.parse lists and lets every other code through for any account
// (except five admin codes); Sluice lists what each code it serves touches and makes every
// other code admin-only, so a code added to a node later is closed until it is listed here.
var rules = map[int32]rule{
	// Sends: PUB on the topic; a send to a retry topic needs SUB on its group.
	int32(codec.ReqSendMessage):        {signed, sendNeeds},
	int32(codec.ReqSendMessageV2):      {signed, sendNeeds},
	int32(codec.ReqSendBatchMessage):   {signed, sendNeeds},
	int32(codec.ReqSendReplyMessage):   {signed, sendNeeds},
	int32(codec.ReqSendReplyMessageV2): {signed, sendNeeds},
	// Consuming: SUB on the topic and the group.
	int32(codec.ReqPullMessage):          {signed, pullNeeds},
	int32(codec.ReqQueryConsumerOffset):  {signed, queryOffsetNeeds},
	int32(codec.ReqUpdateConsumerOffset): {signed, updateOffsetNeeds},
	// Reading a queue's range or a topic's messages by key: SUB on the topic.
	int32(codec.ReqGetMaxOffset):            {signed, queueOffsetNeeds},
	int32(codec.ReqGetMinOffset):            {signed, queueOffsetNeeds},
	int32(codec.ReqSearchOffsetByTimestamp): {signed, searchOffsetNeeds},
	int32(codec.ReqQueryMessage):            {signed, queryMessageNeeds},
	// Group membership: SUB on the group (and on every topic a heartbeat subscribes to).
	int32(codec.ReqHeartBeat):              {signed, heartbeatNeeds},
	int32(codec.ReqUnregisterClient):       {signed, unregisterNeeds},
	int32(codec.ReqGetConsumerListByGroup): {signed, consumerListNeeds},
	int32(codec.ReqLockBatchMQ):            {signed, lockNeeds},
	int32(codec.ReqUnlockBatchMQ):          {signed, lockNeeds},
	int32(codec.ReqConsumerSendMsgBack):    {signed, sendBackNeeds},
	// Any account: ending a transaction the producer began, checking a filter expression.
	int32(codec.ReqEndTransaction):    {signed, nil},
	int32(codec.ReqCheckClientConfig): {signed, nil},
	// A name server's route queries, open as RocketMQ's name server leaves them.
	int32(codec.ReqGetRouteInfoByTopic):   {open, nil},
	int32(codec.ReqGetBrokerClusterInfo):  {open, nil},
	int32(codec.ReqGetAllTopicListFromNS): {open, nil},
	101:                                   {open, nil}, // GET_KV_CONFIG
	219:                                   {open, nil}, // GET_KVLIST_BY_NAMESPACE
	224:                                   {open, nil}, // GET_TOPICS_BY_CLUSTER
	304:                                   {open, nil}, // GET_SYSTEM_TOPIC_LIST_FROM_NS
	311:                                   {open, nil}, // GET_UNIT_TOPIC_LIST
	312:                                   {open, nil}, // GET_HAS_UNIT_SUB_TOPIC_LIST
	313:                                   {open, nil}, // GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST
}

// ruleFor is code's rule: admin-only unless rules lists it.
func ruleFor(code int32) rule { return rules[code] }

// Requirement describes what a request code needs, for documentation and tests: "open",
// "admin", or "signed" with the resources named.
func Requirement(code int32) string {
	switch ruleFor(code).kind {
	case open:
		return "open"
	case signed:
		return "signed"
	}
	return "admin"
}

var errNoGroup = errors.New("no consumer group")

func group(g string) (Need, error) {
	if g == "" {
		return Need{}, errNoGroup
	}
	return Need{Resource: RetryPrefix + g, Perm: Sub}, nil
}

func topic(t string, p Perm) (Need, error) {
	if t == "" {
		return Need{}, errors.New("no topic")
	}
	if strings.HasPrefix(t, RetryPrefix) {
		p = Sub // a retry topic is its group's: sending to it or reading it needs SUB on the group
	}
	return Need{Resource: t, Perm: p}, nil
}

// both is the needs of a topic and a group, or the first error.
func both(t, g string) ([]Need, error) {
	tn, err := topic(t, Sub)
	if err != nil {
		return nil, err
	}
	gn, err := group(g)
	if err != nil {
		return nil, err
	}
	return []Need{tn, gn}, nil
}

func one(n Need, err error) ([]Need, error) {
	if err != nil {
		return nil, err
	}
	return []Need{n}, nil
}

func sendNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeSendHeader(cmd) // the node reports a malformed header; the topic is what matters here
	return one(topic(h.Topic, Pub))
}

func pullNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.PullHeader](cmd)
	return both(h.Topic, h.ConsumerGroup)
}

func queryOffsetNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.QueryConsumerOffsetHeader](cmd)
	return both(h.Topic, h.ConsumerGroup)
}

func updateOffsetNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.UpdateConsumerOffsetHeader](cmd)
	return both(h.Topic, h.ConsumerGroup)
}

func queueOffsetNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.QueueOffsetHeader](cmd)
	return one(topic(h.Topic, Sub))
}

func searchOffsetNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.SearchOffsetHeader](cmd)
	return one(topic(h.Topic, Sub))
}

func queryMessageNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.QueryMessageHeader](cmd)
	return one(topic(h.Topic, Sub))
}

func unregisterNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.UnregisterClientHeader](cmd)
	if h.ConsumerGroup == "" {
		return nil, nil // a producer leaving
	}
	return one(group(h.ConsumerGroup))
}

func consumerListNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.ConsumerGroupHeader](cmd)
	return one(group(h.ConsumerGroup))
}

func sendBackNeeds(cmd *codec.Command) ([]Need, error) {
	h, _ := codec.DecodeHeader[codec.SendBackHeader](cmd)
	return one(group(h.Group))
}

// maxHeartbeatNeeds bounds the permissions one heartbeat can ask to have checked.
const maxHeartbeatNeeds = 4096

// heartbeatNeeds: SUB on each consumer group of the heartbeat and on each topic it
// subscribes to (a producer's part needs nothing).
func heartbeatNeeds(cmd *codec.Command) ([]Need, error) {
	var hb struct {
		ConsumerDataSet []struct {
			GroupName           string `json:"groupName"`
			SubscriptionDataSet []struct {
				Topic string `json:"topic"`
			} `json:"subscriptionDataSet"`
		} `json:"consumerDataSet"`
	}
	if err := json.Unmarshal(cmd.Body, &hb); err != nil {
		return nil, fmt.Errorf("heartbeat body: %w", err)
	}
	var needs []Need
	for _, c := range hb.ConsumerDataSet {
		g, err := group(c.GroupName)
		if err != nil {
			return nil, err
		}
		needs = append(needs, g)
		for _, s := range c.SubscriptionDataSet {
			t, err := topic(s.Topic, Sub)
			if err != nil {
				return nil, err
			}
			needs = append(needs, t)
		}
		if len(needs) > maxHeartbeatNeeds {
			return nil, fmt.Errorf("heartbeat names more than %d groups and topics", maxHeartbeatNeeds)
		}
	}
	return needs, nil
}

// lockNeeds: SUB on the group whose queues LOCK_BATCH_MQ or UNLOCK_BATCH_MQ lock.
func lockNeeds(cmd *codec.Command) ([]Need, error) {
	var body struct {
		ConsumerGroup string `json:"consumerGroup"`
	}
	if err := json.Unmarshal(cmd.Body, &body); err != nil {
		return nil, fmt.Errorf("lock body: %w", err)
	}
	return one(group(body.ConsumerGroup))
}
