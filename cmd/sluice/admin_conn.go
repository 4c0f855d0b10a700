package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
)

// consumerConnection: a consumer group's connected clients and subscriptions
// (GET_CONSUMER_CONNECTION_LIST).
var consumerConnectionCmd = adminCommand{
	name: "consumerConnection", nargs: 0,
	summary: "show a consumer group's connected clients, its subscriptions and how it consumes (-g GROUP)",
	setup: func(fs *flag.FlagSet) adminRun {
		group := stringFlag(fs, "group", "g", "the consumer group (required)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *group == "" {
				return nil, usageError("--group is required")
			}
			cc, err := e.cli.ConsumerConnections(*group)
			if err != nil {
				return nil, err
			}
			out := consumerConnectionOut{Group: *group, ConsumerConnection: cc.ConsumerConnection, Brokers: cc.Brokers}
			if out.SubscriptionTable == nil {
				out.SubscriptionTable = map[string]codec.SubscriptionData{}
			}
			return out, nil
		}
	},
}

type consumerConnectionOut struct {
	Group string `json:"consumerGroup"`
	codec.ConsumerConnection
	Brokers []string `json:"brokers"`
}

func (o consumerConnectionOut) writeText(w io.Writer) {
	writeConnections(w, o.ConnectionSet)
	fmt.Fprintln(w)
	s := table{header: []string{"TOPIC", "EXPRESSION TYPE", "SUBSCRIPTION"}}
	for _, topic := range slices.Sorted(maps.Keys(o.SubscriptionTable)) {
		sd := o.SubscriptionTable[topic]
		s.add(topic, sd.ExpressionType, sd.SubString)
	}
	s.write(w)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "ConsumeType: %s\nMessageModel: %s\nConsumeFromWhere: %s\n", o.ConsumeType, o.MessageModel, o.ConsumeFromWhere)
}

// producerConnection: a producer group's connected clients (GET_PRODUCER_CONNECTION_LIST).
var producerConnectionCmd = adminCommand{
	name: "producerConnection", nargs: 0,
	summary: "show a producer group's connected clients, from the brokers of a topic it sends to (-g GROUP -t TOPIC)",
	setup: func(fs *flag.FlagSet) adminRun {
		group := stringFlag(fs, "group", "g", "the producer group (required)")
		topic := stringFlag(fs, "topic", "t", "a topic the group sends to (required)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *group == "" || *topic == "" {
				return nil, usageError("--group and --topic are required")
			}
			pc, err := e.cli.ProducerConnections(*group, *topic)
			if err != nil {
				return nil, err
			}
			return producerConnectionOut{Group: *group, Topic: *topic, ConnectionSet: pc.ConnectionSet, Brokers: pc.Brokers}, nil
		}
	},
}

type producerConnectionOut struct {
	Group         string             `json:"producerGroup"`
	Topic         string             `json:"topic"`
	ConnectionSet []codec.Connection `json:"connectionSet"`
	Brokers       []string           `json:"brokers"`
}

func (o producerConnectionOut) writeText(w io.Writer) { writeConnections(w, o.ConnectionSet) }

// writeConnections is the table of a group's connected clients.
func writeConnections(w io.Writer, conns []codec.Connection) {
	t := table{header: []string{"#", "CLIENT ID", "ADDRESS", "LANGUAGE", "VERSION"}}
	for i, c := range conns {
		t.add(i+1, c.ClientID, c.ClientAddr, c.Language, c.Version)
	}
	t.write(w)
}

// resetOffsetByTime: move a consumer group's offsets on a topic to a time
// (INVOKE_BROKER_TO_RESET_OFFSET).
var resetOffsetByTimeCmd = adminCommand{
	name: "resetOffsetByTime", nargs: 0,
	summary: "move a consumer group's offsets on a topic back (or, forced, forward) to the first message stored at or after a time; its running consumers follow (-g GROUP -t TOPIC -s TIME)",
	setup: func(fs *flag.FlagSet) adminRun {
		group := stringFlag(fs, "group", "g", "the consumer group (required)")
		topic := stringFlag(fs, "topic", "t", "the topic (required)")
		at := stringFlag(fs, "timestamp", "s", "the time: now, milliseconds since the epoch, yyyy-MM-dd#HH:mm:ss:SSS (local time, as mqadmin) or RFC 3339 (required)")
		force := fs.String("force", "true", "true: every queue moves to the time; false: only queues past it move back")
		fs.StringVar(force, "f", "true", "force (mqadmin's -f)")
		broker := stringFlag(fs, "broker", "b", "only this broker group (its name or its master's address)")
		queue := fs.Int("queue", -1, "only this queue")
		fs.IntVar(queue, "q", -1, "the queue (mqadmin's -q)")
		offset := fs.Int64("offset", -1, "with --queue: move it to this offset instead of the time's")
		fs.Int64Var(offset, "o", -1, "the offset (mqadmin's -o)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if *group == "" || *topic == "" || *at == "" {
				return nil, usageError("--group, --topic and --timestamp are required")
			}
			ms, err := parseResetTime(*at, time.Now())
			if err != nil {
				return nil, usageError(err.Error())
			}
			f, err := strconv.ParseBool(*force)
			if err != nil {
				return nil, usageError(fmt.Sprintf("--force %q: want true or false", *force))
			}
			spec := adminclient.ResetSpec{Group: *group, Topic: *topic, TimestampMs: ms, Force: f, Broker: *broker}
			if *queue >= 0 {
				q := int32(*queue)
				spec.Queue = &q
			}
			if *offset >= 0 {
				if *queue < 0 {
					return nil, usageError("--offset needs --queue")
				}
				spec.Offset = offset
			}
			res, err := e.cli.ResetOffsetByTime(spec)
			out := resetOffsetOut{Group: *group, Topic: *topic, TimestampMs: ms, Force: f, OffsetTable: []resetQueueOut{},
				Offline: append([]string{}, res.Offline...)}
			for _, q := range res.Queues {
				out.OffsetTable = append(out.OffsetTable, resetQueueOut{BrokerName: q.Broker, QueueID: q.QueueID, OldOffset: q.Old, Offset: q.New})
			}
			return out, err
		}
	},
}

// parseResetTime reads mqadmin's -s: "now", milliseconds since the epoch, or
// yyyy-MM-dd#HH:mm:ss:SSS in local time; RFC 3339 too.
func parseResetTime(s string, now time.Time) (int64, error) {
	if s == "now" {
		return now.UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	// Go's layouts know no fraction after ':', so the milliseconds are read after a '.'.
	if len(s) == len("2006-01-02#15:04:05:000") && s[19] == ':' {
		if t, err := time.ParseInLocation("2006-01-02#15:04:05.000", s[:19]+"."+s[20:], time.Local); err == nil {
			return t.UnixMilli(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("--timestamp %q: want now, milliseconds since the epoch, yyyy-MM-dd#HH:mm:ss:SSS or RFC 3339", s)
}

type resetOffsetOut struct {
	Group       string          `json:"group"`
	Topic       string          `json:"topic"`
	TimestampMs int64           `json:"timestamp"`
	Force       bool            `json:"force"`
	OffsetTable []resetQueueOut `json:"offsetTable"`
	// Offline lists broker groups with no client of the group online, reset queue by queue.
	Offline []string `json:"offline"`
}

type resetQueueOut struct {
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
	OldOffset  int64  `json:"oldOffset"` // -1: none committed
	Offset     int64  `json:"offset"`
}

func (o resetOffsetOut) writeText(w io.Writer) {
	at := msTime(o.TimestampMs)
	if o.TimestampMs == -1 {
		at = "the end of each queue"
	}
	fmt.Fprintf(w, "reset consumer group %s on topic %s to %s (force %v)\n", o.Group, o.Topic, at, o.Force)
	if len(o.Offline) > 0 {
		fmt.Fprintf(w, "no consumer online on %s: offsets set on the broker only\n", strings.Join(o.Offline, ", "))
	}
	t := table{header: []string{"BROKER", "QUEUE", "OLD OFFSET", "NEW OFFSET"}}
	for _, q := range o.OffsetTable {
		old := "-"
		if q.OldOffset >= 0 {
			old = strconv.FormatInt(q.OldOffset, 10)
		}
		t.add(q.BrokerName, q.QueueID, old, q.Offset)
	}
	t.write(w)
}
