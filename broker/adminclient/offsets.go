package adminclient

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
)

// MaxOffset returns the offset after the last message of a queue on the broker at addr
// (GET_MAX_OFFSET): the queue's length, counting from 0. A topic the broker lacks answers 0.
func (c *Client) MaxOffset(addr, topic string, queueID int32) (int64, error) {
	return c.queueOffset(addr, codec.ReqGetMaxOffset, topic, queueID)
}

// MinOffset returns the offset of the first message a queue on the broker at addr still holds
// (GET_MIN_OFFSET): above 0 once retention has deleted its head.
func (c *Client) MinOffset(addr, topic string, queueID int32) (int64, error) {
	return c.queueOffset(addr, codec.ReqGetMinOffset, topic, queueID)
}

func (c *Client) queueOffset(addr string, code int16, topic string, queueID int32) (int64, error) {
	what := "max"
	if code == codec.ReqGetMinOffset {
		what = "min"
	}
	resp, err := c.callOK(addr, codec.NewRequest(code, codec.EncodeHeader(&codec.QueueOffsetHeader{Topic: topic, QueueID: int64(queueID)}), nil))
	if err != nil {
		return 0, fmt.Errorf("%s offset of %s queue %d: %w", what, topic, queueID, err)
	}
	h, err := codec.DecodeHeader[codec.OffsetResponseHeader](resp)
	if err != nil {
		return 0, fmt.Errorf("%s offset of %s queue %d: %s answered a bad header: %w", what, topic, queueID, addr, err)
	}
	return h.Offset, nil
}

// ConsumerOffset is one committed offset: where group resumes reading a queue.
type ConsumerOffset struct {
	Group   string
	Topic   string
	QueueID int32
	Offset  int64
}

// ConsumerOffsets returns every offset committed on the broker at addr
// (GET_ALL_CONSUMER_OFFSET: Java's ConsumerOffsetSerializeWrapper, "topic@group" to queue id to
// offset), sorted by group, topic and queue.
func (c *Client) ConsumerOffsets(addr string) ([]ConsumerOffset, error) {
	resp, err := c.callOK(addr, codec.NewRequest(codec.ReqGetAllConsumerOffset, nil, nil))
	if err != nil {
		return nil, fmt.Errorf("consumer offsets: %w", err)
	}
	var body struct {
		OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("consumer offsets: %s answered a bad body: %w", addr, err)
	}
	var out []ConsumerOffset
	for key, queues := range body.OffsetTable {
		// A topic name cannot hold '@' (RocketMQ's topic characters), a group name may not either,
		// but split at the last one as Java's readers do.
		i := strings.LastIndexByte(key, '@')
		if i < 0 {
			return nil, fmt.Errorf("consumer offsets: %s answered key %q, want topic@group", addr, key)
		}
		for q, off := range queues {
			out = append(out, ConsumerOffset{Group: key[i+1:], Topic: key[:i], QueueID: q, Offset: off})
		}
	}
	slices.SortFunc(out, func(a, b ConsumerOffset) int {
		return cmp.Or(strings.Compare(a.Group, b.Group), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.QueueID, b.QueueID))
	})
	return out, nil
}

// SubscriptionGroups returns the consumer groups the broker at addr knows
// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), sorted.
func (c *Client) SubscriptionGroups(addr string) ([]string, error) {
	resp, err := c.callOK(addr, codec.NewRequest(codec.ReqGetAllSubscriptionGroup, nil, nil))
	if err != nil {
		return nil, fmt.Errorf("subscription groups: %w", err)
	}
	var body struct {
		SubscriptionGroupTable map[string]json.RawMessage `json:"subscriptionGroupTable"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("subscription groups: %s answered a bad body: %w", addr, err)
	}
	return slices.Sorted(maps.Keys(body.SubscriptionGroupTable)), nil
}

// ConsumerIDs returns the client ids of group's consumers connected to the broker at addr
// (GET_CONSUMER_LIST_BY_GROUP), sorted.
func (c *Client) ConsumerIDs(addr, group string) ([]string, error) {
	resp, err := c.callOK(addr, codec.NewRequest(codec.ReqGetConsumerListByGroup, codec.EncodeHeader(&codec.ConsumerGroupHeader{ConsumerGroup: group}), nil))
	if err != nil {
		return nil, fmt.Errorf("consumers of group %s: %w", group, err)
	}
	var body struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("consumers of group %s: %s answered a bad body: %w", group, addr, err)
	}
	slices.Sort(body.ConsumerIDList)
	return body.ConsumerIDList, nil
}
