package main

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicemq/sluice/broker/acl"
	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
)

const adminUsage = `usage: sluice admin <command> [flags] [args]

commands:
  topic create [--broker ADDR] [--queues N] <topic>   create or update a topic (on ADDR, else on the
                                                      brokers hosting it, else on those hosting TBW102)
  topic delete <topic>                                delete a topic on its brokers and the name servers
  topic list                                          list every topic the name server knows
  cluster list                                        list every broker the name server routes, with
                                                      its role (master or slave) in its group
  msg id <offsetMsgId>                                show the message with this 4.x offset message id
  msg key --topic T [--max N] <key>                   show the messages of topic T with this key
                                                      (UNIQ_KEY, or a word of KEYS)
  msg trace [--topic T] <msgId or key>                show the trace records (Pub, SubBefore, SubAfter)
                                                      that traced clients wrote for the message with
                                                      this id, or with --topic for the messages of T
                                                      with this key (--trace-topic, default
                                                      RMQ_SYS_TRACE_TOPIC, is where they are looked up)

flags every command takes:
  --namesrv ADDR[;ADDR]   name server addresses (default 127.0.0.1:9876)
  --timeout D             timeout of each request (default 5s)
  --access-key AK         sign requests as this ACL account (a cluster with aclEnable=true;
  --secret-key SK         topic create and delete need an admin account), with its secret key
`

// runAdmin is 'sluice admin': topic administration and message lookup against a running
// cluster, as a RocketMQ client speaks to it.
func runAdmin(args []string) int {
	return adminMain(args, os.Stdout, os.Stderr)
}

func adminMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	ns := fs.String("namesrv", "127.0.0.1:9876", "name server addresses, ';'-separated")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each request")
	broker := fs.String("broker", "", "topic create: the broker address to create the topic on")
	queues := fs.Int("queues", 4, "topic create: read and write queue count")
	topic := fs.String("topic", "", "msg key: the topic to search")
	maxNum := fs.Int("max", 64, "msg key: at most this many messages per broker")
	traceTopic := fs.String("trace-topic", adminclient.DefaultTraceTopic, "msg trace: the topic traces are sent to")
	accessKey := fs.String("access-key", "", "sign requests with this ACL account (a cluster with aclEnable=true; admin commands need an admin account)")
	secretKey := fs.String("secret-key", "", "the secret key of -access-key")
	// Flags may come anywhere: before the command words, between them, after the arguments.
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, adminUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice admin: %v\nrun 'sluice admin -h' for its commands and flags\n", err)
		return 2
	}
	if len(pos) < 2 {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	args, pos = pos[:2], pos[2:]
	cli := adminclient.New(strings.Split(*ns, ";"), *timeout)
	defer cli.Close()
	if (*accessKey == "") != (*secretKey == "") {
		fmt.Fprint(stderr, "sluice admin: -access-key and -secret-key go together\n")
		return 2
	}
	if *accessKey != "" {
		cli.SetSigner(acl.Credentials{AccessKey: *accessKey, SecretKey: *secretKey}.Sign)
	}
	wantArgs := func(n int) bool {
		if len(pos) != n {
			fmt.Fprintf(stderr, "sluice admin %s %s: want %d argument(s), got %d\nrun 'sluice admin -h' for its commands and flags\n", args[0], args[1], n, len(pos))
			return false
		}
		return true
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sluice admin %s %s: %v\n", args[0], args[1], err)
		return 1
	}
	switch args[0] + " " + args[1] {
	case "topic create":
		if !wantArgs(1) {
			return 2
		}
		if *queues < 1 {
			fmt.Fprintln(stderr, "sluice admin topic create: --queues must be at least 1")
			return 2
		}
		targets := []adminclient.Broker{{Addr: *broker}}
		if *broker == "" {
			if targets, err = cli.CreateTargets(pos[0]); err != nil {
				return fail(err)
			}
		}
		for _, b := range targets {
			if err := cli.CreateTopic(b.Addr, adminclient.TopicSpec{Name: pos[0], ReadQueueNums: *queues, WriteQueueNums: *queues}); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "created topic %s with %d queues on %s\n", pos[0], *queues, b.Addr)
		}
	case "topic delete":
		if !wantArgs(1) {
			return 2
		}
		res, err := cli.DeleteTopic(pos[0])
		if len(res.Brokers) > 0 {
			fmt.Fprintf(stdout, "deleted topic %s on %s\n", pos[0], strings.Join(res.Brokers, ", "))
		}
		if len(res.NameServers) > 0 {
			fmt.Fprintf(stdout, "removed topic %s from name server %s\n", pos[0], strings.Join(res.NameServers, ", "))
		}
		if err != nil {
			return fail(err)
		}
	case "cluster list":
		if !wantArgs(0) {
			return 2
		}
		brokers, err := cli.ClusterList()
		if err != nil {
			return fail(err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLUSTER\tGROUP\tID\tADDRESS\tROLE")
		for _, b := range brokers {
			role := "slave"
			if b.Master() {
				role = "master"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", b.Cluster, b.Group, b.ID, b.Addr, role)
		}
		tw.Flush()
	case "topic list":
		if !wantArgs(0) {
			return 2
		}
		topics, err := cli.TopicList()
		if err != nil {
			return fail(err)
		}
		for _, t := range topics {
			fmt.Fprintln(stdout, t)
		}
	case "msg id":
		if !wantArgs(1) {
			return 2
		}
		f, err := cli.ViewMessage(pos[0])
		if err != nil {
			return fail(err)
		}
		printMessage(stdout, f)
	case "msg key":
		if !wantArgs(1) {
			return 2
		}
		if *topic == "" {
			fmt.Fprintln(stderr, "sluice admin msg key: --topic is required")
			return 2
		}
		found, err := cli.QueryByKey(adminclient.KeyQuery{Topic: *topic, Key: pos[0], MaxNum: *maxNum})
		fmt.Fprintf(stdout, "%d message(s) with key %q in topic %s\n", len(found), pos[0], *topic)
		for _, f := range found {
			fmt.Fprintln(stdout)
			printMessage(stdout, f)
		}
		if err != nil {
			return fail(err)
		}
		if len(found) == 0 {
			return 1
		}
	case "msg trace":
		if !wantArgs(1) {
			return 2
		}
		ids := []string{pos[0]}
		if *topic != "" {
			// A key of messages in the topic: trace each of them. Nothing found: the argument
			// may still be a message id (traces outlive the messages they trace).
			found, err := cli.QueryByKey(adminclient.KeyQuery{Topic: *topic, Key: pos[0], MaxNum: *maxNum})
			if err != nil {
				return fail(err)
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
		traced := false
		for i, id := range ids {
			tr, err := cli.QueryTrace(adminclient.TraceQuery{MsgID: id, TraceTopic: *traceTopic, MaxNum: *maxNum})
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printTrace(stdout, id, *traceTopic, tr)
			for _, bad := range tr.BadRecords {
				fmt.Fprintf(stderr, "sluice admin msg trace: %v\n", bad)
			}
			if err != nil {
				return fail(err)
			}
			traced = traced || len(tr.Records) > 0
		}
		if !traced {
			return 1
		}
	default:
		fmt.Fprintf(stderr, "sluice admin: unknown command %q\nrun 'sluice admin -h' for its commands and flags\n", args[0]+" "+args[1])
		return 2
	}
	return 0
}

// parseInterspersed parses flags wherever they appear among the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
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
