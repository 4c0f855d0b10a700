package main

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"errors"
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
		topic := fs.String("topic", "", "the topic to search (required)")
		fs.StringVar(topic, "t", "", "the topic (mqadmin's -t)")
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
		topic := fs.String("topic", "", "look the argument up as a key of this topic's messages")
		fs.StringVar(topic, "t", "", "the topic (mqadmin's -t)")
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

func inflate(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxInflated {
		return nil, errors.New("inflates beyond 64 MiB")
	}
	return out, nil
}
