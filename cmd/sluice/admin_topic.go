package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sluicemq/sluice/broker/adminclient"
)

// clusterList: every broker the name servers route, with its role in its group.
var clusterListCmd = adminCommand{
	name: "clusterList", aliases: []string{"cluster list"}, nargs: 0,
	summary: "list every broker the name server routes, with its role (master or slave) in its group",
	setup: func(fs *flag.FlagSet) adminRun {
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			brokers, err := e.cli.ClusterList()
			if err != nil {
				return nil, err
			}
			out := clusterListOut{Brokers: []clusterBrokerOut{}}
			for _, b := range brokers {
				role := "slave"
				if b.Master() {
					role = "master"
				}
				out.Brokers = append(out.Brokers, clusterBrokerOut{Cluster: b.Cluster, Group: b.Group, ID: b.ID, Addr: b.Addr, Role: role})
			}
			return out, nil
		}
	},
}

type clusterListOut struct {
	Brokers []clusterBrokerOut `json:"brokers"`
}

type clusterBrokerOut struct {
	Cluster string `json:"cluster"`
	Group   string `json:"brokerName"`
	ID      int64  `json:"brokerId"`
	Addr    string `json:"addr"`
	Role    string `json:"role"`
}

func (o clusterListOut) writeText(w io.Writer) {
	t := table{header: []string{"CLUSTER", "GROUP", "ID", "ADDRESS", "ROLE"}}
	for _, b := range o.Brokers {
		t.add(b.Cluster, b.Group, b.ID, b.Addr, b.Role)
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
		broker := fs.String("broker", "", "the broker address to create the topic on")
		fs.StringVar(broker, "b", "", "the broker address (mqadmin's -b)")
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
