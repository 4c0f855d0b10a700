package main

import (
	"cmp"
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/route"
)

// topicRoute: a topic's route as the name server answers it (GET_ROUTEINFO_BY_TOPIC).
var topicRouteCmd = adminCommand{
	name: "topicRoute", args: "[<topic>]", nargs: -1,
	summary: "show a topic's route (--topic, or the argument): its brokers and, per broker group, its queues and permission",
	setup: func(fs *flag.FlagSet) adminRun {
		topic := stringFlag(fs, "topic", "t", "the topic")
		return func(e *adminEnv, pos []string) (adminOutput, error) {
			name, err := topicArg(*topic, pos)
			if err != nil {
				return nil, err
			}
			r, err := e.cli.Route(name)
			if err != nil {
				return nil, err
			}
			return topicRouteOut{r}, nil
		}
	},
}

// topicArg is the topic a command names with --topic or as its one argument.
func topicArg(flagValue string, pos []string) (string, error) {
	switch {
	case len(pos) > 1:
		return "", usageError("want at most one argument <topic>, got " + strconv.Itoa(len(pos)))
	case len(pos) == 1 && flagValue != "" && pos[0] != flagValue:
		return "", usageError("two topics named: --topic " + flagValue + " and " + pos[0])
	case len(pos) == 1:
		return pos[0], nil
	case flagValue == "":
		return "", usageError("--topic is required")
	}
	return flagValue, nil
}

// topicRouteOut is the route; --json prints it in RocketMQ's field names (TopicRouteData).
type topicRouteOut struct {
	*route.TopicRouteData
}

func (o topicRouteOut) writeText(w io.Writer) {
	type brokerRow struct {
		name, cluster, addr string
		id                  int64
		idText              string
	}
	var rows []brokerRow
	for _, bd := range o.BrokerDatas {
		for idText, addr := range bd.BrokerAddrs {
			id, err := strconv.ParseInt(idText, 10, 64)
			if err != nil {
				id = -1 // not a number: listed first, as the name server spelled it
			}
			rows = append(rows, brokerRow{bd.BrokerName, bd.Cluster, addr, id, idText})
		}
	}
	slices.SortFunc(rows, func(a, b brokerRow) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.id, b.id), strings.Compare(a.idText, b.idText))
	})
	bt := table{header: []string{"BROKER NAME", "CLUSTER", "ID", "ADDRESS"}}
	for _, r := range rows {
		bt.add(r.name, r.cluster, r.idText, r.addr)
	}
	bt.write(w)
	io.WriteString(w, "\n")
	qds := slices.Clone(o.QueueDatas)
	slices.SortFunc(qds, func(a, b route.QueueData) int { return strings.Compare(a.BrokerName, b.BrokerName) })
	qt := table{header: []string{"BROKER NAME", "READ QUEUES", "WRITE QUEUES", "PERM"}}
	for _, qd := range qds {
		qt.add(qd.BrokerName, qd.ReadQueueNums, qd.WriteQueueNums, permString(qd.Perm))
	}
	qt.write(w)
}

// permString shows permission bits as RocketMQ's PermName.perm2String does ("RW-": readable,
// writable, not inherited), with the number.
func permString(perm int32) string {
	b := []byte("---")
	if perm&route.PermRead != 0 {
		b[0] = 'R'
	}
	if perm&route.PermWrite != 0 {
		b[1] = 'W'
	}
	if perm&route.PermInherit != 0 {
		b[2] = 'X'
	}
	return string(b) + " (" + strconv.Itoa(int(perm)) + ")"
}
