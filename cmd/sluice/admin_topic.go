package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/adminclient"
)

// clusterList: every broker the name servers route, with its role in its group and, from its
// runtime info (GET_BROKER_RUNTIME_INFO), mqadmin's columns: version, message rates in and out,
// disk use; with -m, mqadmin's moreStats (messages in and out yesterday and today).
var clusterListCmd = adminCommand{
	name: "clusterList", aliases: []string{"cluster list"}, nargs: 0,
	summary: "list every broker the name server routes: its role (master or slave) in its group, version, message rates, disk use",
	setup: func(fs *flag.FlagSet) adminRun {
		more := fs.Bool("more", false, "also show the messages in and out yesterday and today")
		fs.BoolVar(more, "m", false, "more statistics (mqadmin's -m)")
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			brokers, err := e.cli.ClusterList()
			if err != nil {
				return nil, err
			}
			out := clusterListOut{Brokers: []clusterBrokerOut{}, more: *more}
			for _, b := range brokers {
				role := "slave"
				if b.Master() {
					role = "master"
				}
				o := clusterBrokerOut{Cluster: b.Cluster, Group: b.Group, ID: b.ID, Addr: b.Addr, Role: role}
				if t, err := e.cli.RuntimeInfo(b.Addr); err != nil {
					fmt.Fprintf(e.stderr, "sluice admin clusterList: %v\n", err)
				} else {
					o.addRuntime(t, *more)
				}
				out.Brokers = append(out.Brokers, o)
			}
			return out, nil
		}
	},
}

type clusterListOut struct {
	Brokers []clusterBrokerOut `json:"brokers"`
	more    bool
}

type clusterBrokerOut struct {
	Cluster string `json:"cluster"`
	Group   string `json:"brokerName"`
	ID      int64  `json:"brokerId"`
	Addr    string `json:"addr"`
	Role    string `json:"role"`
	// From the broker's runtime info; empty when it did not answer.
	Version   string   `json:"version,omitempty"`
	InTPS     *float64 `json:"inTps,omitempty"`
	OutTPS    *float64 `json:"outTps,omitempty"`
	DiskRatio string   `json:"commitLogDiskRatio,omitempty"`
	// With -m: messages in and out yesterday and so far today.
	InTotalYest   *uint64 `json:"inTotalYest,omitempty"`
	OutTotalYest  *uint64 `json:"outTotalYest,omitempty"`
	InTotalToday  *uint64 `json:"inTotalToday,omitempty"`
	OutTotalToday *uint64 `json:"outTotalToday,omitempty"`
}

// addRuntime fills the columns mqadmin's clusterList reads from a broker's runtime table.
func (o *clusterBrokerOut) addRuntime(t map[string]string, more bool) {
	in, out := adminclient.FirstTPS(t["putTps"]), adminclient.FirstTPS(t["getTransferedTps"])
	o.Version, o.InTPS, o.OutTPS, o.DiskRatio = t["brokerVersionDesc"], &in, &out, t["commitLogDiskRatio"]
	if !more {
		return
	}
	n := func(k string) uint64 { v, _ := strconv.ParseUint(t[k], 10, 64); return v }
	diff := func(later, earlier string) *uint64 { d := n(later) - min(n(later), n(earlier)); return &d }
	o.InTotalYest = diff("msgPutTotalTodayMorning", "msgPutTotalYesterdayMorning")
	o.OutTotalYest = diff("msgGetTotalTodayMorning", "msgGetTotalYesterdayMorning")
	o.InTotalToday = diff("msgPutTotalTodayNow", "msgPutTotalTodayMorning")
	o.OutTotalToday = diff("msgGetTotalTodayNow", "msgGetTotalTodayMorning")
}

func (o clusterListOut) writeText(w io.Writer) {
	t := table{header: []string{"CLUSTER", "GROUP", "ID", "ADDRESS", "ROLE", "VERSION", "INTPS", "OUTTPS", "SPACE"}}
	if o.more {
		t.header = append(t.header, "IN YESTERDAY", "OUT YESTERDAY", "IN TODAY", "OUT TODAY")
	}
	dash := func(s string) string { return cmp.Or(s, "-") }
	tps := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f", *v)
	}
	count := func(v *uint64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatUint(*v, 10)
	}
	for _, b := range o.Brokers {
		row := []any{b.Cluster, b.Group, b.ID, b.Addr, b.Role, dash(b.Version), tps(b.InTPS), tps(b.OutTPS), dash(b.DiskRatio)}
		if o.more {
			row = append(row, count(b.InTotalYest), count(b.OutTotalYest), count(b.InTotalToday), count(b.OutTotalToday))
		}
		t.add(row...)
	}
	t.write(w)
}

// topicList: every topic the name servers know.
var topicListCmd = adminCommand{
	name: "topicList", aliases: []string{"topic list"}, nargs: 0,
	summary: "list every topic the name server knows",
	setup: func(fs *flag.FlagSet) adminRun {
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			topics, err := e.cli.TopicList()
			if err != nil {
				return nil, err
			}
			return topicListOut{Topics: append([]string{}, topics...)}, nil
		}
	},
}

type topicListOut struct {
	Topics []string `json:"topics"`
}

func (o topicListOut) writeText(w io.Writer) {
	for _, t := range o.Topics {
		fmt.Fprintln(w, t)
	}
}

// updateTopic: create a topic, or change its queue counts.
var updateTopicCmd = adminCommand{
	name: "updateTopic", aliases: []string{"topic create"}, args: "<topic>", nargs: 1,
	summary: "create or update a topic (on --broker, else on the brokers hosting it, else on those hosting TBW102)",
	setup: func(fs *flag.FlagSet) adminRun {
		broker := stringFlag(fs, "broker", "b", "the broker address to create the topic on")
		queues := fs.Int("queues", 4, "read and write queue count")
		return func(e *adminEnv, pos []string) (adminOutput, error) {
			if *queues < 1 {
				return nil, usageError("--queues must be at least 1")
			}
			targets := []adminclient.Broker{{Addr: *broker}}
			if *broker == "" {
				var err error
				if targets, err = e.cli.CreateTargets(pos[0]); err != nil {
					return nil, err
				}
			}
			out := updateTopicOut{Topic: pos[0], Queues: *queues, Brokers: []string{}}
			for _, b := range targets {
				if err := e.cli.CreateTopic(b.Addr, adminclient.TopicSpec{Name: pos[0], ReadQueueNums: *queues, WriteQueueNums: *queues}); err != nil {
					return out, err
				}
				out.Brokers = append(out.Brokers, b.Addr)
			}
			return out, nil
		}
	},
}

type updateTopicOut struct {
	Topic   string   `json:"topic"`
	Queues  int      `json:"queues"`
	Brokers []string `json:"brokers"`
}

func (o updateTopicOut) writeText(w io.Writer) {
	for _, b := range o.Brokers {
		fmt.Fprintf(w, "created topic %s with %d queues on %s\n", o.Topic, o.Queues, b)
	}
}

// deleteTopic: delete a topic on its brokers and the name servers.
var deleteTopicCmd = adminCommand{
	name: "deleteTopic", aliases: []string{"topic delete"}, args: "<topic>", nargs: 1,
	summary: "delete a topic on its brokers and the name servers",
	setup: func(fs *flag.FlagSet) adminRun {
		return func(e *adminEnv, pos []string) (adminOutput, error) {
			res, err := e.cli.DeleteTopic(pos[0])
			return deleteTopicOut{Topic: pos[0], Brokers: append([]string{}, res.Brokers...),
				NameServers: append([]string{}, res.NameServers...)}, err
		}
	},
}

type deleteTopicOut struct {
	Topic       string   `json:"topic"`
	Brokers     []string `json:"brokers"`
	NameServers []string `json:"nameServers"`
}

func (o deleteTopicOut) writeText(w io.Writer) {
	if len(o.Brokers) > 0 {
		fmt.Fprintf(w, "deleted topic %s on %s\n", o.Topic, strings.Join(o.Brokers, ", "))
	}
	if len(o.NameServers) > 0 {
		fmt.Fprintf(w, "removed topic %s from name server %s\n", o.Topic, strings.Join(o.NameServers, ", "))
	}
}
