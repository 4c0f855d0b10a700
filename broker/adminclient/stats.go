package adminclient

// Statistics and configuration of brokers: runtime info (GET_BROKER_RUNTIME_INFO), topic and
// consume statistics (GET_TOPIC_STATS_INFO, GET_CONSUME_STATS), subscription groups
// (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, DELETE_SUBSCRIPTIONGROUP,
// GET_ALL_SUBSCRIPTIONGROUP_CONFIG) and broker configuration (GET_BROKER_CONFIG,
// UPDATE_BROKER_CONFIG), as RocketMQ's admin tools send them.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
)

// ClusterBrokers returns the brokers of cluster ("" for every cluster) the name servers route,
// masters only if mastersOnly, as mqadmin's -c picks them.
func (c *Client) ClusterBrokers(cluster string, mastersOnly bool) ([]ClusterBroker, error) {
	all, err := c.ClusterList()
	if err != nil {
		return nil, err
	}
	var out []ClusterBroker
	for _, b := range all {
		if (cluster == "" || b.Cluster == cluster) && (!mastersOnly || b.Master()) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		if cluster == "" {
			return nil, errors.New("the name server routes no broker")
		}
		return nil, fmt.Errorf("cluster %s has no broker the name server routes", cluster)
	}
	return out, nil
}

// RuntimeInfo returns a broker's runtime table (GET_BROKER_RUNTIME_INFO), RocketMQ's keys and
// Sluice's own (brokernode.Broker.RuntimeInfo lists them).
func (c *Client) RuntimeInfo(addr string) (map[string]string, error) {
	resp, err := c.callOK(addr, codec.NewRequest(codec.ReqGetBrokerRuntimeInfo, nil, nil))
	if err != nil {
		return nil, fmt.Errorf("runtime info of %s: %w", addr, err)
	}
	kv, err := codec.DecodeKVTable(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("runtime info of %s: %w", addr, err)
	}
	return kv.Table, nil
}

// BrokerRuntime is the part of a broker's runtime info a console shows: its role and epoch in
// its group, its disk use, and its message rates. Figures the broker did not report are zero.
type BrokerRuntime struct {
	Addr              string  `json:"addr"`
	Version           string  `json:"brokerVersionDesc"`
	Role              string  `json:"replicaRole"` // single, master, slave or none
	BrokerRole        string  `json:"brokerRole"`  // ASYNC_MASTER, SYNC_MASTER or SLAVE
	Writable          bool    `json:"writable"`
	MasterEpoch       int64   `json:"masterEpoch"`
	SyncStateSet      []int64 `json:"syncStateSet,omitempty"` // a master's in-sync replica ids
	DiskUsedBytes     uint64  `json:"diskUsedBytes"`
	DiskCapacityBytes uint64  `json:"diskCapacityBytes"`
	DiskRatio         float64 `json:"commitLogDiskRatio"` // used/capacity, 0..1
	DiskFull          bool    `json:"diskFull"`           // the disk guard refuses sends
	InTPS             float64 `json:"inTps"`              // messages stored per second, last 10 s
	OutTPS            float64 `json:"outTps"`             // messages served per second, last 10 s
	PutTotal          uint64  `json:"msgPutTotalTodayNow"`
	GetTotal          uint64  `json:"msgGetTotalTodayNow"`
}

// BrokerRuntime asks a broker for its runtime info (GET_BROKER_RUNTIME_INFO) and returns the
// compact summary of it.
func (c *Client) BrokerRuntime(addr string) (BrokerRuntime, error) {
	t, err := c.RuntimeInfo(addr)
	if err != nil {
		return BrokerRuntime{Addr: addr}, err
	}
	return SummarizeRuntime(addr, t), nil
}

// SummarizeRuntime reads a runtime table into a BrokerRuntime; values that do not parse read
// as zero.
func SummarizeRuntime(addr string, t map[string]string) BrokerRuntime {
	u := func(k string) uint64 { n, _ := strconv.ParseUint(t[k], 10, 64); return n }
	f := func(k string) float64 { n, _ := strconv.ParseFloat(t[k], 64); return n }
	r := BrokerRuntime{Addr: addr, Version: t["brokerVersionDesc"], Role: t["replicaRole"], BrokerRole: t["brokerRole"],
		Writable: t["writable"] == "true", DiskUsedBytes: u("diskUsedBytes"), DiskCapacityBytes: u("diskCapacityBytes"),
		DiskRatio: f("commitLogDiskRatio"), DiskFull: t["diskFull"] == "true", InTPS: FirstTPS(t["putTps"]),
		OutTPS: FirstTPS(t["getTransferedTps"]), PutTotal: u("msgPutTotalTodayNow"), GetTotal: u("msgGetTotalTodayNow")}
	r.MasterEpoch, _ = strconv.ParseInt(t["masterEpoch"], 10, 64)
	for _, id := range strings.Split(t["syncStateSet"], ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64); err == nil {
			r.SyncStateSet = append(r.SyncStateSet, n)
		}
	}
	return r
}

// FirstTPS reads the first (10 s) rate of a RocketMQ TPS text ("12.50 10.00 3.20"), as
// mqadmin's clusterList does; 0 if it does not parse.
func FirstTPS(s string) float64 {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return 0
	}
	n, _ := strconv.ParseFloat(fields[0], 64)
	return n
}

// ClusterRuntime returns the runtime summary of every broker the name servers route, in
// ClusterList's order; a broker that does not answer has only its address and an error in errs.
func (c *Client) ClusterRuntime() ([]BrokerRuntime, error) {
	brokers, err := c.ClusterList()
	if err != nil {
		return nil, err
	}
	out := make([]BrokerRuntime, 0, len(brokers))
	var errs []error
	for _, b := range brokers {
		r, err := c.BrokerRuntime(b.Addr)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// TopicStats returns a topic's queues on every master of its route (GET_TOPIC_STATS_INFO),
// sorted by broker group and queue.
func (c *Client) TopicStats(topic string) ([]codec.QueueTopicOffset, error) {
	brokers, err := c.TopicBrokers(topic)
	if err != nil {
		return nil, err
	}
	var out []codec.QueueTopicOffset
	var errs []error
	for _, b := range brokers {
		resp, err := c.callOK(b.Addr, codec.NewRequest(codec.ReqGetTopicStatsInfo, codec.EncodeHeader(&codec.TopicHeader{Topic: topic}), nil))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tab, err := codec.DecodeTopicStatsTable(resp.Body)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Addr, err))
			continue
		}
		out = append(out, tab.Offsets...)
	}
	slices.SortFunc(out, func(a, b codec.QueueTopicOffset) int {
		return cmp.Or(strings.Compare(a.Queue.BrokerName, b.Queue.BrokerName), cmp.Compare(a.Queue.QueueID, b.Queue.QueueID))
	})
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("topic stats of %s: %w", topic, err)
	}
	return out, nil
}

// GroupStats is a consumer group's progress across brokers.
type GroupStats struct {
	Group      string
	ConsumeTps float64 // summed over the brokers
	Offsets    []codec.QueueOffsetWrapper
}

// ConsumeStats asks every master (of topic's route when topic is set, else of the cluster) for
// group's progress (GET_CONSUME_STATS) and merges the answers, sorted by topic, broker group
// and queue.
func (c *Client) ConsumeStats(group, topic string) (GroupStats, error) {
	var addrs []string
	if topic != "" {
		brokers, err := c.TopicBrokers(topic)
		if err != nil {
			return GroupStats{Group: group}, err
		}
		for _, b := range brokers {
			addrs = append(addrs, b.Addr)
		}
	} else {
		brokers, err := c.ClusterBrokers("", true)
		if err != nil {
			return GroupStats{Group: group}, err
		}
		for _, b := range brokers {
			addrs = append(addrs, b.Addr)
		}
	}
	out := GroupStats{Group: group}
	var errs []error
	for _, addr := range addrs {
		resp, err := c.callOK(addr, codec.NewRequest(codec.ReqGetConsumeStats,
			codec.EncodeHeader(&codec.ConsumeStatsHeader{ConsumerGroup: group, Topic: topic}), nil))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s, err := codec.DecodeConsumeStats(resp.Body)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		out.ConsumeTps += s.ConsumeTps
		out.Offsets = append(out.Offsets, s.Offsets...)
	}
	slices.SortFunc(out.Offsets, func(a, b codec.QueueOffsetWrapper) int {
		return cmp.Or(strings.Compare(a.Queue.Topic, b.Queue.Topic), strings.Compare(a.Queue.BrokerName, b.Queue.BrokerName),
			cmp.Compare(a.Queue.QueueID, b.Queue.QueueID))
	})
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("consume stats of %s: %w", group, err)
	}
	return out, nil
}

// GroupConfigs returns every group the cluster's masters list
// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), with the configuration of the first master (in
// ClusterList's order) that lists it, sorted by name.
func (c *Client) GroupConfigs() ([]codec.SubscriptionGroupConfig, error) {
	brokers, err := c.ClusterBrokers("", true)
	if err != nil {
		return nil, err
	}
	found := map[string]codec.SubscriptionGroupConfig{}
	var errs []error
	for _, b := range brokers {
		resp, err := c.callOK(b.Addr, codec.NewRequest(codec.ReqGetAllSubscriptionGroup, nil, nil))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var doc struct {
			SubscriptionGroupTable map[string]json.RawMessage `json:"subscriptionGroupTable"`
		}
		if err := json.Unmarshal(resp.Body, &doc); err != nil {
			errs = append(errs, fmt.Errorf("%s: subscription groups: %w", b.Addr, err))
			continue
		}
		for name, raw := range doc.SubscriptionGroupTable {
			if _, ok := found[name]; ok {
				continue
			}
			cfg, err := codec.DecodeSubscriptionGroup(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: group %s: %w", b.Addr, name, err))
				continue
			}
			cfg.GroupName = name
			found[name] = cfg
		}
	}
	out := make([]codec.SubscriptionGroupConfig, 0, len(found))
	for _, name := range slices.Sorted(maps.Keys(found)) {
		out = append(out, found[name])
	}
	return out, errors.Join(errs...)
}

// UpdateSubscriptionGroup creates or replaces a group's configuration on a broker
// (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).
func (c *Client) UpdateSubscriptionGroup(addr string, cfg codec.SubscriptionGroupConfig) error {
	body, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if _, err := c.callOK(addr, codec.NewRequest(codec.ReqUpdateAndCreateSubscription, nil, body)); err != nil {
		return fmt.Errorf("update subscription group %s: %w", cfg.GroupName, err)
	}
	return nil
}

// DeleteSubscriptionGroup removes a group's configuration from a broker
// (DELETE_SUBSCRIPTIONGROUP), and its consumer offsets there with cleanOffset.
func (c *Client) DeleteSubscriptionGroup(addr, group string, cleanOffset bool) error {
	h := codec.DeleteSubscriptionGroupHeader{GroupName: group, CleanOffset: cleanOffset}
	if _, err := c.callOK(addr, codec.NewRequest(codec.ReqDeleteSubscriptionGroup, codec.EncodeHeader(&h), nil)); err != nil {
		return fmt.Errorf("delete subscription group %s: %w", group, err)
	}
	return nil
}

// BrokerConfig returns a broker's configuration (GET_BROKER_CONFIG) in the order it sent it.
func (c *Client) BrokerConfig(addr string) ([]codec.ConfigProperty, error) {
	resp, err := c.callOK(addr, codec.NewRequest(codec.ReqGetBrokerConfig, nil, nil))
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", addr, err)
	}
	return codec.DecodeConfigProperties(resp.Body), nil
}

// UpdateBrokerConfig sets key to value on a broker (UPDATE_BROKER_CONFIG); the broker refuses
// keys it cannot change while it runs.
func (c *Client) UpdateBrokerConfig(addr, key, value string) error {
	if key == "" || strings.ContainsAny(key, "=:\n") || strings.Contains(value, "\n") {
		return fmt.Errorf("update config of %s: bad key %q or value %q", addr, key, value)
	}
	body := codec.EncodeConfigProperties([]codec.ConfigProperty{{Key: key, Value: value}})
	if _, err := c.callOK(addr, codec.NewRequest(codec.ReqUpdateBrokerConfig, nil, body)); err != nil {
		return fmt.Errorf("update config of %s: %w", addr, err)
	}
	return nil
}
