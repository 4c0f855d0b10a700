package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
)

// queryMsgById: the message with a 4.x offset message id.
var queryMsgByIdCmd = adminCommand{
	name: "queryMsgById", aliases: []string{"msg id"}, args: "<offsetMsgId>", nargs: 1,
	summary: "show the message with this 4.x offset message id",
	setup: func(fs *flag.FlagSet) adminRun {
		return func(e *adminEnv, pos []string) (adminOutput, error) {
			f, err := e.cli.ViewMessage(pos[0])
			if err != nil {
				return nil, err
			}
			return messagesOut{Messages: []messageOut{newMessageOut(f)}}, nil
		}
	},
}

// queryMsgByKey: the messages of a topic with a key.
var queryMsgByKeyCmd = adminCommand{
	name: "queryMsgByKey", aliases: []string{"msg key"}, args: "<key>", nargs: 1,
	summary: "show the messages of topic --topic with this key (UNIQ_KEY, or a word of KEYS)",
	setup: func(fs *flag.FlagSet) adminRun {
		topic := stringFlag(fs, "topic", "t", "the topic to search (required)")
		maxNum := fs.Int("max", 64, "at most this many messages per broker")
		return func(e *adminEnv, pos []string) (adminOutput, error) {
			if *topic == "" {
				return nil, usageError("--topic is required")
			}
			found, err := e.cli.QueryByKey(adminclient.KeyQuery{Topic: *topic, Key: pos[0], MaxNum: *maxNum})
			out := messagesOut{Key: pos[0], Topic: *topic, Messages: []messageOut{}, counted: true}
			for _, f := range found {
				out.Messages = append(out.Messages, newMessageOut(f))
			}
			if err == nil && len(found) == 0 {
				err = errNoneFound
			}
			return out, err
		}
	},
}

// messagesOut is messages found: printed as message blocks, counted first when looked up by key.
type messagesOut struct {
	Key      string       `json:"key,omitempty"`
	Topic    string       `json:"topic,omitempty"`
	Messages []messageOut `json:"messages"`
	counted  bool
}

func (o messagesOut) writeText(w io.Writer) {
	if o.counted {
		fmt.Fprintf(w, "%d message(s) with key %q in topic %s\n", len(o.Messages), o.Key, o.Topic)
	}
	for i, m := range o.Messages {
		if o.counted || i > 0 {
			fmt.Fprintln(w)
		}
		printMessage(w, m.found)
	}
}

// messageOut is one message as --json shows it.
type messageOut struct {
	MsgID           string            `json:"msgId"`
	OffsetMsgID     string            `json:"offsetMsgId"`
	Topic           string            `json:"topic"`
	Broker          string            `json:"broker"`
	BrokerName      string            `json:"brokerName,omitempty"` // the broker group, when read from a queue
	QueueID         int32             `json:"queueId"`
	QueueOffset     int64             `json:"queueOffset"`
	CommitLogOffset int64             `json:"commitLogOffset"`
	BornTimestamp   int64             `json:"bornTimestamp"`
	BornHost        string            `json:"bornHost"`
	StoreTimestamp  int64             `json:"storeTimestamp"`
	StoreHost       string            `json:"storeHost"`
	ReconsumeTimes  int32             `json:"reconsumeTimes"`
	Flag            int32             `json:"flag"`
	SysFlag         int32             `json:"sysFlag"`
	Properties      map[string]string `json:"properties"`
	Body            []byte            `json:"body"` // base64, as encoding/json writes bytes
	found           adminclient.Found
}

func newMessageOut(f adminclient.Found) messageOut {
	m := f.Msg
	return messageOut{MsgID: adminclient.MsgID(m), OffsetMsgID: adminclient.OffsetMsgID(m), Topic: m.Topic, Broker: f.Broker,
		QueueID: m.QueueID, QueueOffset: m.QueueOffset, CommitLogOffset: m.PhysicalOffset,
		BornTimestamp: m.BornTimestamp, BornHost: m.BornHost.String(), StoreTimestamp: m.StoreTimestamp,
		StoreHost: m.StoreHost.String(), ReconsumeTimes: m.ReconsumeTimes, Flag: m.Flag, SysFlag: m.SysFlag,
		Properties: codec.ParseProperties(m.Properties), Body: m.Body, found: f}
}

// queryMsgTraceById: the trace records traced clients wrote for a message.
var queryMsgTraceByIdCmd = adminCommand{
	name: "queryMsgTraceById", aliases: []string{"msg trace"}, args: "<msgId or key>", nargs: 1,
	summary: "show the trace records (Pub, SubBefore, SubAfter) of the message with this id, or with --topic of the messages of that topic with this key",
	setup: func(fs *flag.FlagSet) adminRun {
		topic := stringFlag(fs, "topic", "t", "look the argument up as a key of this topic's messages")
		maxNum := fs.Int("max", 64, "at most this many messages per broker")
		traceTopic := fs.String("trace-topic", adminclient.DefaultTraceTopic, "the topic traces are sent to")
		return func(e *adminEnv, pos []string) (adminOutput, error) {
			ids := []string{pos[0]}
			if *topic != "" {
				// A key of messages in the topic: trace each of them. Nothing found: the argument
				// may still be a message id (traces outlive the messages they trace).
				found, err := e.cli.QueryByKey(adminclient.KeyQuery{Topic: *topic, Key: pos[0], MaxNum: *maxNum})
				if err != nil {
					return nil, err
				}
				if len(found) > 0 {
					ids = ids[:0]
					for _, f := range found {
						if id := adminclient.MsgID(f.Msg); !slices.Contains(ids, id) {
							ids = append(ids, id)
						}
					}
				}
			}
			out := tracesOut{TraceTopic: *traceTopic, Traces: []traceOut{}}
			traced := false
			for _, id := range ids {
				tr, err := e.cli.QueryTrace(adminclient.TraceQuery{MsgID: id, TraceTopic: *traceTopic, MaxNum: *maxNum})
				out.Traces = append(out.Traces, traceOut{MsgID: id, Records: tr.Records, Messages: tr.Messages, trace: tr})
				for _, bad := range tr.BadRecords {
					fmt.Fprintf(e.stderr, "sluice admin queryMsgTraceById: %v\n", bad)
				}
				if err != nil {
					return out, err
				}
				traced = traced || len(tr.Records) > 0
			}
			if !traced {
				return out, errNoneFound
			}
			return out, nil
		}
	},
}

type tracesOut struct {
	TraceTopic string     `json:"traceTopic"`
	Traces     []traceOut `json:"traces"`
}

type traceOut struct {
	MsgID    string                    `json:"msgId"`
	Messages int                       `json:"traceMessages"`
	Records  []adminclient.TraceRecord `json:"records"`
	trace    adminclient.Trace
}

func (o tracesOut) writeText(w io.Writer) {
	for i, t := range o.Traces {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printTrace(w, t.MsgID, o.TraceTopic, t.trace)
	}
}

// maxShownBody bounds the body bytes printed for one message.
var maxShownBody = 4096

// printMessage writes one message as 'sluice admin msg' shows it.
func printMessage(w io.Writer, f adminclient.Found) {
	m := f.Msg
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-14s %s\n", name+":", fmt.Sprintf(format, args...))
	}
	props := codec.ParseProperties(m.Properties)
	line("msgId", "%s", adminclient.MsgID(m))
	line("offsetMsgId", "%s", adminclient.OffsetMsgID(m))
	line("topic", "%s", m.Topic)
	line("broker", "%s", f.Broker)
	line("queue", "%d", m.QueueID)
	line("queue offset", "%d", m.QueueOffset)
	line("keys", "%s", shown(props[codec.PropKeys]))
	line("tags", "%s", shown(props[codec.PropTags]))
	line("born", "%s from %s", msTime(m.BornTimestamp), m.BornHost)
	line("stored", "%s at %s", msTime(m.StoreTimestamp), m.StoreHost)
	line("reconsumed", "%d times", m.ReconsumeTimes)
	line("flag", "%d", m.Flag)
	line("sysFlag", "%d", m.SysFlag)
	if len(props) == 0 {
		line("properties", "-")
	} else {
		fmt.Fprintln(w, "properties:")
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s=%s\n", shown(k), shown(props[k]))
	}
	body, how := m.Body, ""
	if m.SysFlag&codec.SysFlagCompressed != 0 {
		if inflated, err := inflate(body); err == nil {
			how = fmt.Sprintf("zlib-compressed, %d bytes inflated, ", len(inflated))
			body = inflated
		} else {
			how = "zlib-compressed but does not inflate (" + err.Error() + "), "
		}
	}
	cut := max(0, len(body)-maxShownBody)
	body = body[:len(body)-cut]
	if len(body) == 0 {
		fmt.Fprintf(w, "body (%d bytes, %sempty)\n", len(m.Body), how)
		return
	}
	if isText(body) {
		fmt.Fprintf(w, "body (%d bytes, %stext):\n", len(m.Body), how)
		for _, l := range strings.Split(string(body), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	} else {
		fmt.Fprintf(w, "body (%d bytes, %shex):\n", len(m.Body), how)
		for _, l := range strings.Split(strings.TrimSuffix(hex.Dump(body), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if cut > 0 {
		fmt.Fprintf(w, "  ... %d more bytes\n", cut)
	}
}

// printTrace writes a message's trace records as a table, one line per record.
func printTrace(w io.Writer, msgID, traceTopic string, tr adminclient.Trace) {
	fmt.Fprintf(w, "%d trace record(s) of message %s in %s (%d trace message(s))\n", len(tr.Records), msgID, traceTopic, tr.Messages)
	if len(tr.Records) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tGROUP\tCLIENT HOST\tTIME\tCOST\tSTATUS\tDETAILS")
	for _, r := range tr.Records {
		at, cost, status := "-", "-", "-"
		if r.TimestampMs != 0 {
			at = msTime(r.TimestampMs)
		}
		var details []string
		detail := func(name, v string) { details = append(details, name+"="+shown(v)) }
		switch r.Type {
		case "Pub":
			cost, status = fmt.Sprintf("%dms", r.CostMs), successWord(r.Success)
			detail("topic", r.Topic)
			detail("tags", r.Tags)
			detail("keys", r.Keys)
			detail("storeHost", r.StoreHost)
			detail("offsetMsgId", r.OffsetMsgID)
			detail("bodyLength", strconv.Itoa(r.BodyLength))
			detail("msgType", msgTypeName(r.MsgType))
		case "SubBefore":
			detail("retryTimes", strconv.Itoa(r.RetryTimes))
			detail("requestId", r.RequestID)
		case "SubAfter":
			cost, status = fmt.Sprintf("%dms", r.CostMs), successWord(r.Success)
			detail("consumeResult", consumeResultName(r.ContextCode))
			detail("requestId", r.RequestID)
		case "EndTransaction":
			detail("topic", r.Topic)
			detail("transactionId", r.TransactionID)
			detail("state", r.TransactionState)
			detail("fromTransactionCheck", strconv.FormatBool(r.FromTransactionCheck))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Type, shown(r.Group), shown(r.ClientHost), at, cost, status,
			strings.Join(details, " "))
	}
	tw.Flush()
}

func successWord(ok bool) string {
	if ok {
		return "success"
	}
	return "failed"
}

// msgTypeName names RocketMQ's MessageType ordinals as Java spells them.
func msgTypeName(t int) string {
	names := []string{"Normal_Msg", "Trans_Msg_Half", "Trans_msg_Commit", "Delay_Msg"}
	if t >= 0 && t < len(names) {
		return names[t]
	}
	return strconv.Itoa(t)
}

// consumeResultName names RocketMQ's ConsumeReturnType ordinals.
func consumeResultName(c int) string {
	names := []string{"SUCCESS", "TIME_OUT", "EXCEPTION", "RETURNNULL", "FAILED"}
	if c >= 0 && c < len(names) {
		return names[c]
	}
	return strconv.Itoa(c)
}

// shown is s, or s quoted when it holds characters that would garble a terminal; "-" if empty.
func shown(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

// maxInflated bounds what the viewer inflates of a compressed body.
const maxInflated = 64 << 20

func inflate(b []byte) ([]byte, error) { return adminclient.Inflate(b, maxInflated) }

// queryMsgByOffset: the message at an offset of a queue, read as mqadmin reads it (one pull from
// the group's master, no offset committed).
var queryMsgByOffsetCmd = adminCommand{
	name: "queryMsgByOffset", args: "-t T -b BROKER -i QUEUE -o OFFSET", nargs: 0,
	summary: "show the message at offset --offset of queue --queue of topic --topic on broker group --broker",
	setup: func(fs *flag.FlagSet) adminRun {
		q := queueFlags(fs)
		offset := offsetFlag(fs, "the queue offset (required)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			if err := q.require(); err != nil {
				return nil, err
			}
			if *offset < 0 {
				return nil, usageError("--offset is required (0 or more)")
			}
			p, err := e.cli.Pull(q.queue(), *offset, 1)
			if err != nil {
				return nil, err
			}
			if p.Status != codec.Success {
				held := fmt.Sprintf("the queue holds offsets %d to %d", p.MinOffset, p.MaxOffset-1)
				if p.MaxOffset <= p.MinOffset {
					held = "the queue is empty"
				}
				return nil, fmt.Errorf("no message at offset %d of %s (%s answered code %d: %s)", *offset, q.queue(), p.Addr, p.Status, held)
			}
			m := newMessageOut(adminclient.Found{Broker: p.Addr, Msg: p.Msgs[0]})
			m.BrokerName = *q.broker
			return messagesOut{Messages: []messageOut{m}}, nil
		}
	},
}

// queueOpts are the flags naming one queue: mqadmin's -t, -b (broker name) and -i.
type queueOpts struct {
	topic, broker *string
	queueID       *int
}

func queueFlags(fs *flag.FlagSet) queueOpts {
	o := queueOpts{topic: fs.String("topic", "", "the topic (required)"), broker: fs.String("broker", "", "the broker group's name"),
		queueID: fs.Int("queue", -1, "the queue id")}
	fs.StringVar(o.topic, "t", "", "the topic (mqadmin's -t)")
	fs.StringVar(o.broker, "b", "", "the broker group's name (mqadmin's -b)")
	fs.IntVar(o.queueID, "i", -1, "the queue id (mqadmin's -i)")
	return o
}

// require fails unless the flags name a whole queue.
func (o queueOpts) require() error {
	switch {
	case *o.topic == "":
		return usageError("--topic is required")
	case *o.broker == "":
		return usageError("--broker (the broker group's name) is required")
	case *o.queueID < 0:
		return usageError("--queue is required (0 or more)")
	}
	return nil
}

// offsetFlag declares --offset and mqadmin's -o: a queue offset, -1 when not given.
func offsetFlag(fs *flag.FlagSet, usage string) *int64 {
	offset := fs.Int64("offset", -1, usage)
	fs.Int64Var(offset, "o", -1, usage+" (mqadmin's -o)")
	return offset
}

func (o queueOpts) queue() adminclient.Queue {
	return adminclient.Queue{Topic: *o.topic, BrokerName: *o.broker, QueueID: int32(*o.queueID)}
}

// sendMessage: send one message, as mqadmin's sendMessage does.
var sendMessageCmd = adminCommand{
	name: "sendMessage", args: "-t T -p BODY [-k KEYS] [-c TAGS] [-b BROKER [-i QUEUE]]", nargs: 0,
	summary: "send one message with body --body to topic --topic (to broker group --broker, its queue --queue, if given) and show where it was stored",
	setup: func(fs *flag.FlagSet) adminRun {
		q := queueFlags(fs)
		body := stringFlag(fs, "body", "p", "the message body, as UTF-8 text (required)")
		keys := stringFlag(fs, "keys", "k", "the message's keys, space-separated")
		tags := stringFlag(fs, "tags", "c", "the message's tag")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			switch {
			case *q.topic == "":
				return nil, usageError("--topic is required")
			case *body == "":
				return nil, usageError("--body is required")
			case *q.queueID >= 0 && *q.broker == "":
				return nil, usageError("--queue needs --broker, the broker group's name")
			}
			m := adminclient.Outgoing{Topic: *q.topic, Tags: *tags, Keys: *keys, Body: []byte(*body)}
			if *q.broker != "" {
				m.Queue = q.queue() // without --queue, a queue of that group
			}
			res, err := e.cli.Send(m)
			if err != nil {
				return nil, err
			}
			return sendOut(res), nil
		}
	},
}

// sendOut is a send's result; --json prints it in RocketMQ's SendResult field names.
type sendOut adminclient.SendResult

func (o sendOut) writeText(w io.Writer) {
	t := table{header: []string{"BROKER NAME", "QID", "SEND RESULT", "MSGID", "OFFSETMSGID", "QUEUE OFFSET"}}
	t.add(o.Queue.BrokerName, o.Queue.QueueID, o.SendStatus, o.MsgID, o.OffsetMsgID, o.QueueOffset)
	t.write(w)
}

// consumeMessage: read messages of a topic's queues, as mqadmin's consumeMessage does (pulls
// under a throwaway group that commits nothing).
var consumeMessageCmd = adminCommand{
	name: "consumeMessage", args: "-t T [-b BROKER -i QUEUE -o OFFSET] [-s/-e TIME] [-c N]", nargs: 0,
	summary: "read up to --count messages of topic --topic (of broker group --broker, queue --queue, from --offset, stored between --begin and --end), committing nothing",
	setup: func(fs *flag.FlagSet) adminRun {
		q := queueFlags(fs)
		offset := offsetFlag(fs, "start at this queue offset (needs --queue)")
		begin := stringFlag(fs, "begin", "s", "only messages stored at or after this time (ms since the epoch, RFC 3339 or mqadmin's yyyy-MM-dd#HH:mm:ss:SSS)")
		end := stringFlag(fs, "end", "e", "only messages stored before this time")
		count := fs.Int("count", 128, "at most this many messages in all")
		fs.IntVar(count, "c", 128, "the message count (mqadmin's -c)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			switch {
			case *q.topic == "":
				return nil, usageError("--topic is required")
			case *q.queueID >= 0 && *q.broker == "":
				return nil, usageError("--queue needs --broker, the broker group's name")
			case *offset >= 0 && *q.queueID < 0:
				return nil, usageError("--offset needs --queue")
			case *count < 1:
				return nil, usageError("--count must be at least 1")
			}
			var r readRange
			var err error
			if r.beginMs, err = parseAdminTime(*begin); err != nil {
				return nil, usageError("--begin: " + err.Error())
			}
			if r.endMs, err = parseAdminTime(*end); err != nil {
				return nil, usageError("--end: " + err.Error())
			}
			r.offset = *offset
			queues, err := e.cli.ReadQueues(*q.topic, *q.broker)
			if err != nil {
				return nil, err
			}
			if *q.queueID >= 0 {
				queues = slices.DeleteFunc(queues, func(x adminclient.Queue) bool { return x.QueueID != int32(*q.queueID) })
				if len(queues) == 0 {
					return nil, fmt.Errorf("topic %s has no readable queue %d on broker %s", *q.topic, *q.queueID, *q.broker)
				}
			}
			out := consumeOut{}
			for _, qu := range queues {
				if len(out) >= *count {
					break
				}
				found, err := readQueueRange(e.cli, qu, r, *count-len(out))
				for _, f := range found {
					m := newMessageOut(f)
					m.BrokerName = qu.BrokerName
					out = append(out, m)
				}
				if err != nil {
					return out, err
				}
			}
			return out, nil
		}
	},
}

// readRange is what consumeMessage reads of each queue.
type readRange struct {
	offset         int64 // -1: from the queue's oldest message
	beginMs, endMs int64 // store times; 0: no bound
}

// pullBatch is how many messages one pull asks for.
const pullBatch = 32

// readQueueRange reads up to limit messages of q within r, pull by pull.
func readQueueRange(cli *adminclient.Client, q adminclient.Queue, r readRange, limit int) ([]adminclient.Found, error) {
	from, to, err := cli.QueueRange(q)
	if err != nil {
		return nil, err
	}
	if r.beginMs > 0 {
		if from, err = cli.SearchOffset(q, r.beginMs); err != nil {
			return nil, err
		}
	}
	if r.endMs > 0 {
		if to, err = cli.SearchOffset(q, r.endMs); err != nil {
			return nil, err
		}
	}
	from = max(from, r.offset)
	var out []adminclient.Found
	for from < to && len(out) < limit {
		p, err := cli.Pull(q, from, int(min(int64(pullBatch), to-from, int64(limit-len(out)))))
		if err != nil {
			return out, err
		}
		switch {
		case p.Status == codec.Success:
			for _, m := range p.Msgs {
				inTime := m.StoreTimestamp >= r.beginMs && (r.endMs == 0 || m.StoreTimestamp < r.endMs)
				if m.QueueOffset >= to || len(out) >= limit {
					break
				}
				if inTime {
					out = append(out, adminclient.Found{Broker: p.Addr, Msg: m})
				}
			}
		case p.Status == codec.PullOffsetMoved && p.NextBeginOffset > from:
			// Retention removed messages below the offset asked for: go on from the oldest.
		default:
			return out, nil // nothing more to read
		}
		if p.NextBeginOffset <= from {
			return out, fmt.Errorf("pull %s at %d from %s: the answer's next offset %d does not move on", q, from, p.Addr, p.NextBeginOffset)
		}
		from = p.NextBeginOffset
	}
	return out, nil
}

// parseAdminTime reads a time as mqadmin's -s and -e take it (milliseconds since the epoch,
// or yyyy-MM-dd#HH:mm:ss:SSS in local time), or RFC 3339; "" is 0.
func parseAdminTime(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	// Go's layouts put fractional seconds after a point only: read mqadmin's ":SSS" as ".SSS".
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Contains(s, "#") {
		if t, err := time.ParseInLocation("2006-01-02#15:04:05.000", s[:i]+"."+s[i+1:], time.Local); err == nil {
			return t.UnixMilli(), nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither milliseconds since the epoch, yyyy-MM-dd#HH:mm:ss:SSS nor RFC 3339", s)
	}
	return t.UnixMilli(), nil
}

// consumeOut are the messages read, one line each; --json prints them as an array.
type consumeOut []messageOut

// maxLineBody bounds the body text one line shows.
const maxLineBody = 60

func (o consumeOut) writeText(w io.Writer) {
	fmt.Fprintf(w, "%d message(s)\n", len(o))
	if len(o) == 0 {
		return
	}
	t := table{header: []string{"BROKER NAME", "QID", "OFFSET", "MSGID", "KEYS", "TAGS", "STORED", "BODY"}}
	for _, m := range o {
		t.add(brokerNameOf(m), m.QueueID, m.QueueOffset, m.MsgID, shown(m.Properties[codec.PropKeys]),
			shown(m.Properties[codec.PropTags]), msTime(m.StoreTimestamp), lineBody(m.found.Msg))
	}
	t.write(w)
}

// brokerNameOf is the broker group a message was read from, from its route's queue.
func brokerNameOf(m messageOut) string {
	if m.BrokerName != "" {
		return m.BrokerName
	}
	return m.Broker
}

// lineBody is a message body for one table cell: text cut at maxLineBody runes, Go-quoted if
// it holds characters a terminal would garble, hex if it is not UTF-8.
func lineBody(m *codec.Message) string {
	body := m.Body
	if m.SysFlag&codec.SysFlagCompressed != 0 {
		if inflated, err := inflate(body); err == nil {
			body = inflated
		}
	}
	if len(body) == 0 {
		return "-"
	}
	if !utf8.Valid(body) {
		s := hex.EncodeToString(body[:min(len(body), maxLineBody/2)])
		if len(body) > maxLineBody/2 {
			s += "..."
		}
		return "0x" + s
	}
	s, cut := string(body), false
	if utf8.RuneCountInString(s) > maxLineBody {
		s, cut = string([]rune(s)[:maxLineBody]), true
	}
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		s = strconv.Quote(s)
	}
	if cut {
		s += "..."
	}
	return s
}
