package main

// Admin commands on brokers' statistics and configuration: brokerStatus, topicStatus,
// consumerProgress, updateSubGroup, deleteSubGroup, getBrokerConfig and updateBrokerConfig,
// under mqadmin's names and short flags, over RocketMQ's request codes (adminclient's
// stats.go).

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
)

// adminBrokerFlags declares mqadmin's -b (one broker) and -c (a cluster's brokers).
func adminBrokerFlags(fs *flag.FlagSet) (broker, cluster *string) {
	broker = fs.String("broker", "", "the broker address")
	fs.StringVar(broker, "b", "", "the broker address (mqadmin's -b)")
	cluster = fs.String("cluster", "", "the cluster whose brokers to ask")
	fs.StringVar(cluster, "c", "", "the cluster (mqadmin's -c)")
	return broker, cluster
}

// targetBrokers is the broker -b names, else those of cluster -c (every cluster's without
// either, when all is set; otherwise one of the two is required), masters only if mastersOnly.
func targetBrokers(e *adminEnv, broker, cluster string, mastersOnly, all bool) ([]string, error) {
	switch {
	case broker != "" && cluster != "":
		return nil, usageError("give --broker or --cluster, not both")
	case broker != "":
		return []string{broker}, nil
	case cluster == "" && !all:
		return nil, usageError("--broker (-b) or --cluster (-c) is required")
	}
	bs, err := e.cli.ClusterBrokers(cluster, mastersOnly)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(bs))
	for i, b := range bs {
		addrs[i] = b.Addr
	}
	return addrs, nil
}

// onBrokers calls f on each address in turn and returns those it succeeded on: on all of them,
// joining the errors, when keepGoing (a read); up to the first error otherwise (a change).
func onBrokers(addrs []string, keepGoing bool, f func(addr string) error) ([]string, error) {
	done := []string{}
	var errs []error
	for _, a := range addrs {
		if err := f(a); err != nil {
			if !keepGoing {
				return done, err
			}
			errs = append(errs, err)
			continue
		}
		done = append(done, a)
	}
	return done, errors.Join(errs...)
}

// brokerStatus: each broker's runtime table (GET_BROKER_RUNTIME_INFO).
var brokerStatusCmd = adminCommand{
	name: "brokerStatus", nargs: 0,
	summary: "show brokers' runtime figures: messages, commit log, disk, role and epoch (all brokers without -b or -c)",
	setup: func(fs *flag.FlagSet) adminRun {
		broker, cluster := adminBrokerFlags(fs)
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			addrs, err := targetBrokers(e, *broker, *cluster, false, true)
			if err != nil {
				return nil, err
			}
			out := brokerStatusOut{Brokers: []brokerTableOut{}}
			_, err = onBrokers(addrs, true, func(a string) error {
				t, err := e.cli.RuntimeInfo(a)
				if err == nil {
					out.Brokers = append(out.Brokers, brokerTableOut{Addr: a, Table: t})
				}
				return err
			})
			return out, err
		}
	},
}

type brokerStatusOut struct {
	Brokers []brokerTableOut `json:"brokers"`
}

type brokerTableOut struct {
	Addr  string            `json:"addr"`
	Table map[string]string `json:"table"`
}

func (o brokerStatusOut) writeText(w io.Writer) {
	t := table{header: []string{"KEY", "VALUE"}}
	if len(o.Brokers) > 1 {
		t.header = []string{"BROKER", "KEY", "VALUE"}
	}
	for _, b := range o.Brokers {
		for _, k := range slices.Sorted(maps.Keys(b.Table)) {
			if len(o.Brokers) > 1 {
				t.add(b.Addr, k, b.Table[k])
			} else {
				t.add(k, b.Table[k])
			}
		}
	}
	t.write(w)
}

// topicStatus: each queue's offsets on every broker of the topic (GET_TOPIC_STATS_INFO).
var topicStatusCmd = adminCommand{
	name: "topicStatus", nargs: 0,
	summary: "show each queue of topic -t: min and max offset, store time of its last message",
	setup: func(fs *flag.FlagSet) adminRun {
		topic := stringFlag(fs, "topic", "t", "the topic (required)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *topic == "" {
				return nil, usageError("--topic (-t) is required")
			}
			qs, err := e.cli.TopicStats(*topic)
			out := topicStatusOut{Topic: *topic, Queues: []topicQueueOut{}}
			for _, q := range qs {
				out.Queues = append(out.Queues, topicQueueOut{Broker: q.Queue.BrokerName, QueueID: q.Queue.QueueID,
					MinOffset: q.MinOffset, MaxOffset: q.MaxOffset, LastUpdateTimestamp: q.LastUpdateTimestamp})
			}
			return out, err
		}
	},
}

type topicStatusOut struct {
	Topic  string          `json:"topic"`
	Queues []topicQueueOut `json:"offsetTable"`
}

type topicQueueOut struct {
	Broker              string `json:"brokerName"`
	QueueID             int32  `json:"queueId"`
	MinOffset           int64  `json:"minOffset"`
	MaxOffset           int64  `json:"maxOffset"`
	LastUpdateTimestamp int64  `json:"lastUpdateTimestamp"`
}

// storeTime is a store time (ms) for people: msTime's UTC form, "-" for none.
func storeTime(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return msTime(ms)
}

func (o topicStatusOut) writeText(w io.Writer) {
	t := table{header: []string{"BROKER", "QID", "MIN OFFSET", "MAX OFFSET", "LAST UPDATED"}}
	for _, q := range o.Queues {
		t.add(q.Broker, q.QueueID, q.MinOffset, q.MaxOffset, storeTime(q.LastUpdateTimestamp))
	}
	t.write(w)
}

// consumerProgress: a group's offsets against each queue's (GET_CONSUME_STATS), or every
// group's totals.
var consumerProgressCmd = adminCommand{
	name: "consumerProgress", nargs: 0,
	summary: "show group -g's offset and lag on each queue (-t: of one topic); without -g every group's totals",
	setup: func(fs *flag.FlagSet) adminRun {
		group := stringFlag(fs, "group", "g", "the consumer group")
		topic := stringFlag(fs, "topic", "t", "only this topic")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *group != "" {
				s, err := e.cli.ConsumeStats(*group, *topic)
				if err == nil && len(s.Offsets) == 0 {
					err = errNoneFound
				}
				return newGroupProgress(s), err
			}
			if *topic != "" {
				return nil, usageError("--topic needs --group")
			}
			groups, err := e.cli.GroupConfigs()
			if err != nil && len(groups) == 0 {
				return nil, err
			}
			out := allProgressOut{Groups: []groupTotalOut{}}
			errs := []error{err}
			for _, g := range groups {
				s, err := e.cli.ConsumeStats(g.GroupName, "")
				if err != nil {
					errs = append(errs, err)
				}
				p := newGroupProgress(s)
				out.Groups = append(out.Groups, groupTotalOut{Group: g.GroupName, ConsumeTps: p.ConsumeTps, DiffTotal: p.DiffTotal, Queues: len(p.Queues)})
			}
			return out, errors.Join(errs...)
		}
	},
}

type groupProgressOut struct {
	Group      string             `json:"group"`
	ConsumeTps float64            `json:"consumeTps"`
	DiffTotal  int64              `json:"diffTotal"`
	Queues     []queueProgressOut `json:"offsetTable"`
}

type queueProgressOut struct {
	Topic          string `json:"topic"`
	Broker         string `json:"brokerName"`
	QueueID        int32  `json:"queueId"`
	BrokerOffset   int64  `json:"brokerOffset"`
	ConsumerOffset int64  `json:"consumerOffset"`
	Diff           int64  `json:"diff"`
	LastTimestamp  int64  `json:"lastTimestamp"`
}

func newGroupProgress(s adminclient.GroupStats) groupProgressOut {
	out := groupProgressOut{Group: s.Group, ConsumeTps: s.ConsumeTps, Queues: []queueProgressOut{}}
	for _, q := range s.Offsets {
		diff := max(0, q.BrokerOffset-q.ConsumerOffset)
		out.DiffTotal += diff
		out.Queues = append(out.Queues, queueProgressOut{Topic: q.Queue.Topic, Broker: q.Queue.BrokerName, QueueID: q.Queue.QueueID,
			BrokerOffset: q.BrokerOffset, ConsumerOffset: q.ConsumerOffset, Diff: diff, LastTimestamp: q.LastTimestamp})
	}
	return out
}

func (o groupProgressOut) writeText(w io.Writer) {
	if len(o.Queues) == 0 {
		fmt.Fprintf(w, "no consume progress of group %s: no broker has its offsets\n", o.Group)
		return
	}
	t := table{header: []string{"TOPIC", "BROKER", "QID", "BROKER OFFSET", "CONSUMER OFFSET", "DIFF", "LAST TIME"}}
	for _, q := range o.Queues {
		t.add(q.Topic, q.Broker, q.QueueID, q.BrokerOffset, q.ConsumerOffset, q.Diff, storeTime(q.LastTimestamp))
	}
	t.write(w)
	fmt.Fprintf(w, "\nConsume TPS: %.2f\nDiff Total: %d\n", o.ConsumeTps, o.DiffTotal)
}

type allProgressOut struct {
	Groups []groupTotalOut `json:"groups"`
}

type groupTotalOut struct {
	Group      string  `json:"group"`
	ConsumeTps float64 `json:"consumeTps"`
	DiffTotal  int64   `json:"diffTotal"`
	Queues     int     `json:"queues"`
}

func (o allProgressOut) writeText(w io.Writer) {
	t := table{header: []string{"GROUP", "QUEUES", "TPS", "DIFF TOTAL"}}
	for _, g := range o.Groups {
		t.add(g.Group, g.Queues, fmt.Sprintf("%.2f", g.ConsumeTps), g.DiffTotal)
	}
	t.write(w)
}

// optBool is a boolean flag that takes its value as the next word, as mqadmin's "-s false"
// does (and --flag=false); set reports whether it was given.
type optBool struct{ v, set bool }

func (b *optBool) String() string { return strconv.FormatBool(b.v) }
func (b *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	b.v, b.set = v, true
	return nil
}

// optInt is an integer flag that reports whether it was given.
type optInt struct {
	v   int64
	set bool
}

func (n *optInt) String() string { return strconv.FormatInt(n.v, 10) }
func (n *optInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return fmt.Errorf("want an integer")
	}
	n.v, n.set = v, true
	return nil
}

// flagPair declares a flag under a long name and mqadmin's letter.
func flagPair(fs *flag.FlagSet, v flag.Value, long, short, usage string) {
	fs.Var(v, long, usage)
	fs.Var(v, short, usage+" (mqadmin's -"+short+")")
}

// updateSubGroup: create or change a subscription group on brokers.
var updateSubGroupCmd = adminCommand{
	name: "updateSubGroup", nargs: 0,
	summary: "create or change subscription group -g on broker -b or on cluster -c's masters (settings not given are kept)",
	setup: func(fs *flag.FlagSet) adminRun {
		broker, cluster := adminBrokerFlags(fs)
		group := stringFlag(fs, "group", "g", "the subscription group (required)")
		var consume, fromMin, broadcast, notify optBool
		var retryQueues, retryMax, brokerID, slowly optInt
		flagPair(fs, &consume, "consume-enable", "s", "true or false: whether the group may consume (its pulls are refused while false)")
		flagPair(fs, &fromMin, "consume-from-min", "m", "true or false: consumeFromMinEnable")
		flagPair(fs, &broadcast, "consume-broadcast", "d", "true or false: consumeBroadcastEnable")
		flagPair(fs, &notify, "notify-ids-changed", "a", "true or false: notifyConsumerIdsChangedEnable")
		flagPair(fs, &retryQueues, "retry-queues", "q", "retryQueueNums")
		flagPair(fs, &retryMax, "retry-max-times", "r", "retryMaxTimes")
		flagPair(fs, &brokerID, "broker-id", "i", "brokerId: the replica the group consumes from")
		flagPair(fs, &slowly, "which-broker-when-slow", "w", "whichBrokerWhenConsumeSlowly")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *group == "" {
				return nil, usageError("--group (-g) is required")
			}
			addrs, err := targetBrokers(e, *broker, *cluster, true, false)
			if err != nil {
				return nil, err
			}
			current := map[string]codec.SubscriptionGroupConfig{}
			if groups, err := e.cli.GroupConfigs(); err == nil {
				for _, g := range groups {
					current[g.GroupName] = g
				}
			}
			cfg, ok := current[*group]
			if !ok {
				cfg = codec.DefaultSubscriptionGroup(*group)
			}
			for _, b := range []struct {
				f *optBool
				p *bool
			}{{&consume, &cfg.ConsumeEnable}, {&fromMin, &cfg.ConsumeFromMinEnable}, {&broadcast, &cfg.ConsumeBroadcastEnable},
				{&notify, &cfg.NotifyConsumerIdsChangedEnable}} {
				if b.f.set {
					*b.p = b.f.v
				}
			}
			if retryQueues.set {
				cfg.RetryQueueNums = int32(retryQueues.v)
			}
			if retryMax.set {
				cfg.RetryMaxTimes = int32(retryMax.v)
			}
			if brokerID.set {
				cfg.BrokerID = brokerID.v
			}
			if slowly.set {
				cfg.WhichBrokerWhenConsumeSlowly = slowly.v
			}
			out := subGroupOut{Config: cfg, verb: "updated"}
			out.Brokers, err = onBrokers(addrs, false, func(a string) error { return e.cli.UpdateSubscriptionGroup(a, cfg) })
			return out, err
		}
	},
}

type subGroupOut struct {
	Config      codec.SubscriptionGroupConfig `json:"subscriptionGroupConfig"`
	Brokers     []string                      `json:"brokers"`
	CleanOffset bool                          `json:"cleanOffset,omitempty"`
	verb        string
}

func (o subGroupOut) writeText(w io.Writer) {
	for _, b := range o.Brokers {
		fmt.Fprintf(w, "%s subscription group %s on %s\n", o.verb, o.Config.GroupName, b)
	}
	if o.verb != "updated" || len(o.Brokers) == 0 {
		if o.CleanOffset && len(o.Brokers) > 0 {
			fmt.Fprintf(w, "its consumer offsets were removed\n")
		}
		return
	}
	c := o.Config
	t := table{header: []string{"SETTING", "VALUE"}}
	t.add("consumeEnable", c.ConsumeEnable)
	t.add("consumeFromMinEnable", c.ConsumeFromMinEnable)
	t.add("consumeBroadcastEnable", c.ConsumeBroadcastEnable)
	t.add("retryQueueNums", c.RetryQueueNums)
	t.add("retryMaxTimes", c.RetryMaxTimes)
	t.add("brokerId", c.BrokerID)
	t.add("whichBrokerWhenConsumeSlowly", c.WhichBrokerWhenConsumeSlowly)
	t.add("notifyConsumerIdsChangedEnable", c.NotifyConsumerIdsChangedEnable)
	t.write(w)
}

// deleteSubGroup: remove a subscription group from brokers.
var deleteSubGroupCmd = adminCommand{
	name: "deleteSubGroup", nargs: 0,
	summary: "remove subscription group -g from broker -b or from cluster -c's masters (-r true: its offsets too)",
	setup: func(fs *flag.FlagSet) adminRun {
		broker, cluster := adminBrokerFlags(fs)
		group := stringFlag(fs, "group", "g", "the subscription group (required)")
		var clean optBool
		flagPair(fs, &clean, "remove-offset", "r", "true or false: also remove the group's consumer offsets")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *group == "" {
				return nil, usageError("--group (-g) is required")
			}
			addrs, err := targetBrokers(e, *broker, *cluster, true, false)
			if err != nil {
				return nil, err
			}
			out := subGroupOut{Config: codec.SubscriptionGroupConfig{GroupName: *group}, CleanOffset: clean.v, verb: "deleted"}
			out.Brokers, err = onBrokers(addrs, false, func(a string) error { return e.cli.DeleteSubscriptionGroup(a, *group, clean.v) })
			return out, err
		}
	},
}

// getBrokerConfig: brokers' configuration (GET_BROKER_CONFIG).
var getBrokerConfigCmd = adminCommand{
	name: "getBrokerConfig", nargs: 0,
	summary: "show the configuration of broker -b or of cluster -c's brokers, under RocketMQ's keys",
	setup: func(fs *flag.FlagSet) adminRun {
		broker, cluster := adminBrokerFlags(fs)
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			addrs, err := targetBrokers(e, *broker, *cluster, false, false)
			if err != nil {
				return nil, err
			}
			out := brokerConfigOut{Brokers: []brokerConfigEntry{}}
			_, err = onBrokers(addrs, true, func(a string) error {
				ps, err := e.cli.BrokerConfig(a)
				if err != nil {
					return err
				}
				m := map[string]string{}
				for _, p := range ps {
					m[p.Key] = p.Value
				}
				out.Brokers = append(out.Brokers, brokerConfigEntry{Addr: a, Config: m})
				return nil
			})
			return out, err
		}
	},
}

type brokerConfigOut struct {
	Brokers []brokerConfigEntry `json:"brokers"`
}

type brokerConfigEntry struct {
	Addr   string            `json:"addr"`
	Config map[string]string `json:"config"`
}

func (o brokerConfigOut) writeText(w io.Writer) {
	for i, b := range o.Brokers {
		if len(o.Brokers) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "============%s============\n", b.Addr)
		}
		t := table{header: []string{"KEY", "VALUE"}}
		for _, k := range slices.Sorted(maps.Keys(b.Config)) {
			t.add(k, b.Config[k])
		}
		t.write(w)
	}
}

// updateBrokerConfig: change one key of brokers' configuration (UPDATE_BROKER_CONFIG).
var updateBrokerConfigCmd = adminCommand{
	name: "updateBrokerConfig", nargs: 0,
	summary: "set key -k to value -v on broker -b or cluster -c's brokers while they run (live keys only)",
	setup: func(fs *flag.FlagSet) adminRun {
		broker, cluster := adminBrokerFlags(fs)
		key := stringFlag(fs, "key", "k", "the configuration key (required)")
		value := stringFlag(fs, "value", "v", "its new value (required)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *key == "" || *value == "" {
				return nil, usageError("--key (-k) and --value (-v) are required")
			}
			addrs, err := targetBrokers(e, *broker, *cluster, false, false)
			if err != nil {
				return nil, err
			}
			out := updateConfigOut{Key: *key, Value: *value}
			out.Brokers, err = onBrokers(addrs, false, func(a string) error { return e.cli.UpdateBrokerConfig(a, *key, *value) })
			return out, err
		}
	},
}

type updateConfigOut struct {
	Key     string   `json:"key"`
	Value   string   `json:"value"`
	Brokers []string `json:"brokers"`
}

func (o updateConfigOut) writeText(w io.Writer) {
	for _, b := range o.Brokers {
		fmt.Fprintf(w, "updated %s=%s on %s\n", o.Key, o.Value, b)
	}
}
