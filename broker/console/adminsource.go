package console

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// AdminSource reads a cluster through the admin protocol, as an outside tool does: the name
// servers for brokers, topics and routes, each group's master for its queues' offsets, its
// consumer groups, their committed offsets and connected consumers.
type AdminSource struct {
	cli *adminclient.Client
	// controller is a controller member asked for each replicated group's master epoch and
	// in-sync set ("": the one beside the first name server, adminclient.ControllerBesideNameServer).
	controller string
}

// NewAdminSource reads the cluster behind cli, and the sync state of its replicated groups from
// the controller member at controller ("": the one beside the first name server).
func NewAdminSource(cli *adminclient.Client, controller string) *AdminSource {
	return &AdminSource{cli: cli, controller: controller}
}

// Snapshot reads the cluster: GET_BROKER_CLUSTER_INFO, GET_ALL_TOPIC_LIST_FROM_NAMESERVER and
// each topic's route from the name servers; GET_MIN_OFFSET and GET_MAX_OFFSET of every routed
// queue, GET_ALL_SUBSCRIPTIONGROUP_CONFIG, GET_ALL_CONSUMER_OFFSET and
// GET_CONSUMER_LIST_BY_GROUP from each group's master. What one broker or topic fails to
// answer is a problem of the snapshot; only the name servers' silence is an error.
//
// The name servers know no epoch or in-sync set: for each group with more than one replica,
// the controller is asked (CONTROLLER_GET_SYNC_STATE_DATA, Snapshot.SyncStates). A single
// broker has no controller, and the page shows "–" there.
func (a *AdminSource) Snapshot() (Snapshot, error) {
	var s Snapshot
	problem := func(err error) { s.Problems = append(s.Problems, err.Error()) }
	// A broker that cannot be reached is asked nothing more in this snapshot: each request
	// would wait out the timeout again.
	unreachable := map[string]bool{}
	ask := func(addr string, req func() error) {
		if unreachable[addr] {
			return
		}
		err := req()
		if err == nil {
			return
		}
		problem(err)
		var answered *adminclient.ResponseError
		if !errors.As(err, &answered) {
			unreachable[addr] = true
		}
	}
	brokers, err := a.cli.ClusterList()
	if err != nil {
		return s, fmt.Errorf("cluster list: %w", err)
	}
	masters := map[string]string{} // broker group to its master's address
	for _, b := range brokers {
		s.Brokers = append(s.Brokers, Broker{Cluster: b.Cluster, Group: b.Group, ID: b.ID, Addr: b.Addr})
		if b.Master() {
			masters[b.Group] = b.Addr
		}
	}
	a.syncStates(&s, ask)
	topics, err := a.cli.TopicList()
	if err != nil {
		return s, fmt.Errorf("topic list: %w", err)
	}
	for _, topic := range topics {
		r, err := a.cli.Route(topic)
		if err != nil {
			problem(err)
			continue
		}
		for _, qd := range r.QueueDatas {
			addr, ok := masters[qd.BrokerName]
			if !ok || qd.Perm&route.PermRead == 0 {
				continue
			}
			for q := range qd.ReadQueueNums {
				ask(addr, func() error {
					minOff, err := a.cli.MinOffset(addr, topic, q)
					if err != nil {
						return err
					}
					maxOff, err := a.cli.MaxOffset(addr, topic, q)
					if err != nil {
						return err
					}
					s.Queues = append(s.Queues, Queue{Topic: topic, Broker: qd.BrokerName, QueueID: q, Min: minOff, Max: maxOff})
					return nil
				})
			}
		}
	}
	consumers := map[string]map[string]bool{} // group to client ids, over every master
	for _, group := range slices.Sorted(maps.Keys(masters)) {
		addr := masters[group]
		var names []string
		ask(addr, func() (err error) {
			names, err = a.cli.SubscriptionGroups(addr)
			return wrapGroup(group, err)
		})
		for _, g := range names {
			if consumers[g] == nil {
				consumers[g] = map[string]bool{}
			}
			ask(addr, func() error {
				ids, err := a.cli.ConsumerIDs(addr, g)
				for _, id := range ids {
					consumers[g][id] = true
				}
				return wrapGroup(group, err)
			})
		}
		ask(addr, func() error {
			offs, err := a.cli.ConsumerOffsets(addr)
			for _, o := range offs {
				s.Offsets = append(s.Offsets, Offset{Group: o.Group, Topic: o.Topic, Broker: group, QueueID: o.QueueID, Offset: o.Offset})
			}
			return wrapGroup(group, err)
		})
	}
	for _, g := range slices.Sorted(maps.Keys(consumers)) {
		s.Groups = append(s.Groups, Group{Name: g, Consumers: slices.Sorted(maps.Keys(consumers[g]))})
	}
	slices.SortFunc(s.Queues, func(x, y Queue) int {
		return cmp.Or(strings.Compare(x.Topic, y.Topic), strings.Compare(x.Broker, y.Broker), cmp.Compare(x.QueueID, y.QueueID))
	})
	slices.SortFunc(s.Offsets, func(x, y Offset) int {
		return cmp.Or(strings.Compare(x.Group, y.Group), strings.Compare(x.Topic, y.Topic), strings.Compare(x.Broker, y.Broker), cmp.Compare(x.QueueID, y.QueueID))
	})
	return s, nil
}

// MessageByID looks a message up with VIEW_MESSAGE_BY_ID on the broker its id names.
func (a *AdminSource) MessageByID(offsetMsgID string) (Message, error) {
	f, err := a.cli.ViewMessage(offsetMsgID)
	if err != nil {
		return Message{}, err
	}
	return messageOf(f), nil
}

// MessagesByKey looks messages up with QUERY_MESSAGE on every master of the topic's route.
func (a *AdminSource) MessagesByKey(topic, key string) ([]Message, error) {
	found, err := a.cli.QueryByKey(adminclient.KeyQuery{Topic: topic, Key: key})
	out := make([]Message, 0, len(found))
	for _, f := range found {
		out = append(out, messageOf(f))
	}
	return out, err
}

// wrapGroup names the broker group an error came from.
func wrapGroup(group string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("broker group %s: %w", group, err)
}

// maxInflated bounds what the console inflates of a compressed body.
const maxInflated = 1 << 20

func messageOf(f adminclient.Found) Message {
	m := f.Msg
	props := codec.ParseProperties(m.Properties)
	out := Message{MsgID: adminclient.MsgID(m), OffsetMsgID: adminclient.OffsetMsgID(m), Topic: m.Topic, Broker: f.Broker,
		QueueID: m.QueueID, QueueOffset: m.QueueOffset, Tags: props[codec.PropTags], Keys: props[codec.PropKeys],
		BornAt: time.UnixMilli(m.BornTimestamp), StoredAt: time.UnixMilli(m.StoreTimestamp),
		BornHost: m.BornHost.String(), StoreHost: m.StoreHost.String(), ReconsumeTimes: m.ReconsumeTimes,
		Properties: props, Body: m.Body, BodyBytes: len(m.Body)}
	if m.SysFlag&codec.SysFlagCompressed != 0 {
		body, err := adminclient.Inflate(m.Body, maxInflated)
		if err != nil {
			out.BodyNote = "zlib-compressed, does not inflate: " + err.Error()
		} else {
			out.Body, out.BodyNote = body, fmt.Sprintf("zlib-compressed, %d bytes inflated", len(body))
		}
	}
	return out
}

// syncStates asks the controller for the sync state of every group with more than one replica.
func (a *AdminSource) syncStates(s *Snapshot, ask func(addr string, req func() error)) {
	replicas := map[string]int{}
	var groups []string
	for _, b := range s.Brokers {
		if replicas[b.Group]++; replicas[b.Group] == 2 {
			groups = append(groups, b.Group)
		}
	}
	if len(groups) == 0 {
		return
	}
	ctl := a.controller
	if ctl == "" {
		var err error
		if ctl, err = adminclient.ControllerBesideNameServer(a.cli.NameServers()[0]); err != nil {
			s.Problems = append(s.Problems, err.Error())
			return
		}
	}
	slices.Sort(groups)
	for _, g := range groups {
		ask(ctl, func() error {
			st, err := a.cli.GroupSyncState(ctl, g)
			if err != nil {
				return fmt.Errorf("sync state of %s from controller %s: %w", g, ctl, err)
			}
			in := make([]string, len(st.InSync))
			for i, id := range st.InSync {
				in[i] = strconv.FormatInt(id, 10)
			}
			s.SyncStates = append(s.SyncStates, SyncState{Group: g, Epoch: st.MasterEpoch,
				Master: fmt.Sprintf("%d (%s)", st.MasterID, st.MasterAddr), InSync: in})
			return nil
		})
	}
}
