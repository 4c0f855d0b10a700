package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
)

// controllerAddrFlag declares -a, the controller address. Without it the controller is
// looked for beside the first name server (its port + 2, where 'sluice dev' and RocketMQ's
// quick start put it): the name servers do not know the controllers.
func controllerAddrFlag(fs *flag.FlagSet) func(e *adminEnv) (string, error) {
	addr := stringFlag(fs, "controllerAddress", "a", "a controller member's address (default: beside the name server, its port + 2)")
	return func(e *adminEnv) (string, error) {
		if a := strings.TrimSpace(strings.Split(*addr, ";")[0]); a != "" {
			return a, nil
		}
		ns := e.cli.NameServers()
		if len(ns) == 0 {
			return "", usageError("--controllerAddress is required")
		}
		return adminclient.ControllerBesideNameServer(ns[0])
	}
}

// getControllerMetaData: the controller group's members and leader
// (CONTROLLER_GET_METADATA_INFO).
var getControllerMetaDataCmd = adminCommand{
	name: "getControllerMetaData", nargs: 0,
	summary: "show the controller group: its members, its leader, and the raft term of the member asked (-a CONTROLLER)",
	setup: func(fs *flag.FlagSet) adminRun {
		addr := controllerAddrFlag(fs)
		return func(e *adminEnv, _ []string) (adminOutput, error) {
			a, err := addr(e)
			if err != nil {
				return nil, err
			}
			md, err := e.cli.ControllerMetadata(a)
			if err != nil {
				return nil, err
			}
			return controllerMetaOut{Addr: md.Addr, Group: md.Group, LeaderID: md.LeaderID, LeaderAddr: md.LeaderAddr,
				IsLeader: md.IsLeader, Peers: md.Peers, MemberID: md.MemberID, RaftTerm: md.RaftTerm}, nil
		}
	},
}

type controllerMetaOut struct {
	Addr       string   `json:"controllerAddress"`
	Group      string   `json:"group"`
	LeaderID   string   `json:"controllerLeaderId"`
	LeaderAddr string   `json:"controllerLeaderAddress"`
	IsLeader   bool     `json:"isLeader"`
	Peers      []string `json:"peers"`
	MemberID   string   `json:"controllerId"`
	RaftTerm   int64    `json:"raftTerm"`
}

func (o controllerMetaOut) writeText(w io.Writer) {
	t := table{header: []string{"#ControllerGroup", o.Group}}
	leader := o.LeaderID
	if leader == "" {
		leader = "(none known)"
	}
	t.add("#ControllerLeaderId", leader)
	t.add("#ControllerLeaderAddress", o.LeaderAddr)
	for _, p := range o.Peers {
		t.add("#Peer", p)
	}
	t.add("#Asked", fmt.Sprintf("%s (member %s, leader %v)", o.Addr, o.MemberID, o.IsLeader))
	t.add("#RaftTerm", o.RaftTerm)
	t.write(w)
}

// getSyncStateSet: broker groups' masters, epochs and in-sync sets
// (CONTROLLER_GET_SYNC_STATE_DATA, from the controller leader).
var getSyncStateSetCmd = adminCommand{
	name: "getSyncStateSet", args: "[brokerName...]", nargs: -1,
	summary: "show broker groups' master, master epoch, in-sync set and its epoch, and replicas, from the controller leader (-a CONTROLLER, -b BROKERNAME or -c CLUSTER)",
	setup: func(fs *flag.FlagSet) adminRun {
		addr := controllerAddrFlag(fs)
		var names []string
		fs.Func("brokerName", "a broker group's name (repeatable; also as arguments)", func(s string) error {
			names = append(names, strings.Split(s, ",")...)
			return nil
		})
		fs.Func("b", "a broker group's name (mqadmin's -b)", func(s string) error {
			names = append(names, strings.Split(s, ",")...)
			return nil
		})
		cluster := stringFlag(fs, "clusterName", "c", "every broker group of this cluster, as the name server lists them")
		return func(e *adminEnv, pos []string) (adminOutput, error) {
			names := append(slices.Clone(names), pos...)
			if *cluster != "" {
				brokers, err := e.cli.ClusterList()
				if err != nil {
					return nil, err
				}
				for _, b := range brokers {
					if b.Cluster == *cluster && !slices.Contains(names, b.Group) {
						names = append(names, b.Group)
					}
				}
			}
			if len(names) == 0 {
				return nil, usageError("name a broker group (-b) or a cluster (-c)")
			}
			a, err := addr(e)
			if err != nil {
				return nil, err
			}
			info, err := e.cli.SyncStateSet(a, names)
			if err != nil {
				return nil, err
			}
			out := syncStateOut{Groups: []syncStateGroupOut{}}
			for _, name := range slices.Sorted(maps.Keys(info.ReplicasInfoTable)) {
				out.Groups = append(out.Groups, syncStateGroupOut{BrokerName: name, ReplicasInfo: info.ReplicasInfoTable[name]})
			}
			for _, n := range names {
				if _, ok := info.ReplicasInfoTable[n]; !ok {
					out.Missing = append(out.Missing, n)
				}
			}
			if len(out.Groups) == 0 {
				return out, errNoneFound
			}
			return out, nil
		}
	},
}

type syncStateOut struct {
	Groups  []syncStateGroupOut `json:"replicasInfo"`
	Missing []string            `json:"unknownBrokerNames,omitempty"`
}

type syncStateGroupOut struct {
	BrokerName string `json:"brokerName"`
	codec.ReplicasInfo
}

func (o syncStateOut) writeText(w io.Writer) {
	g := table{header: []string{"BROKER NAME", "MASTER ID", "MASTER ADDRESS", "MASTER EPOCH", "SYNC STATE SET EPOCH", "SYNC STATE SET"}}
	r := table{header: []string{"BROKER NAME", "BROKER ID", "ADDRESS", "IN SYNC", "ALIVE"}}
	for _, s := range o.Groups {
		var set []string
		for _, id := range s.InSyncReplicas {
			set = append(set, fmt.Sprint(id.BrokerID))
		}
		master := fmt.Sprint(s.MasterBrokerID)
		if s.MasterBrokerID == 0 {
			master = "none"
		}
		g.add(s.BrokerName, master, s.MasterAddress, s.MasterEpoch, s.SyncStateSetEpoch, "["+strings.Join(set, " ")+"]")
		replicas := append(slices.Clone(s.InSyncReplicas), s.NotInSyncReplicas...)
		slices.SortFunc(replicas, func(a, b codec.ReplicaIdentity) int { return int(a.BrokerID - b.BrokerID) })
		for _, id := range replicas {
			r.add(s.BrokerName, id.BrokerID, id.BrokerAddress, yesNo(slices.Contains(s.InSyncReplicas, id)), yesNo(id.Alive))
		}
	}
	g.write(w)
	fmt.Fprintln(w)
	r.write(w)
	for _, n := range o.Missing {
		fmt.Fprintf(w, "\nthe controller has no broker group %s\n", n)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
