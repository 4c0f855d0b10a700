// Package route owns the routing data model shared by the name server, the broker and the
// client: topic route data (queue data and broker data, in the JSON shape RocketMQ 4.x clients
// parse), the broker registration body, and permission bits.
package route

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Permission bits.
const (
	PermInherit  = 1
	PermWrite    = 2
	PermRead     = 4
	PermPriority = 8
)

// MasterID is the broker id of a group's master.
const MasterID = 0

// DefaultTopic is the template topic producers look up when their topic has no route.
const DefaultTopic = "TBW102"

// QueueData is one broker group's queues for a topic.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	WriteQueueNums int32  `json:"writeQueueNums"`
	Perm           int32  `json:"perm"`
	TopicSysFlag   int32  `json:"topicSysFlag"`
}

// BrokerData is one broker group's addresses by broker id (0 is the master).
type BrokerData struct {
	Cluster     string            `json:"cluster"`
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"`
}

// TopicRouteData is the GET_ROUTEINFO_BY_TOPIC response body.
type TopicRouteData struct {
	OrderTopicConf    string            `json:"orderTopicConf,omitempty"`
	QueueDatas        []QueueData       `json:"queueDatas"`
	BrokerDatas       []BrokerData      `json:"brokerDatas"`
	FilterServerTable map[string]string `json:"filterServerTable"`
}

// Encode renders r the way the Go client can parse it: queueDatas always present, brokerAddrs
// without whitespace (encoding/json writes none), entries sorted by broker name.
func (r *TopicRouteData) Encode() []byte {
	out := *r
	if out.QueueDatas == nil {
		out.QueueDatas = []QueueData{}
	}
	if out.BrokerDatas == nil {
		out.BrokerDatas = []BrokerData{}
	}
	if out.FilterServerTable == nil {
		out.FilterServerTable = map[string]string{}
	}
	sort.Slice(out.QueueDatas, func(i, j int) bool { return out.QueueDatas[i].BrokerName < out.QueueDatas[j].BrokerName })
	sort.Slice(out.BrokerDatas, func(i, j int) bool { return out.BrokerDatas[i].BrokerName < out.BrokerDatas[j].BrokerName })
	for i := range out.BrokerDatas {
		if out.BrokerDatas[i].BrokerAddrs == nil {
			out.BrokerDatas[i].BrokerAddrs = map[string]string{}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(fmt.Sprintf("route: marshal of plain data failed: %v", err))
	}
	return b
}

// DecodeTopicRouteData parses a route body.
func DecodeTopicRouteData(b []byte) (*TopicRouteData, error) {
	var r TopicRouteData
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode topic route: %w", err)
	}
	return &r, nil
}

// MasterAddr returns the master address of a broker group in r.
func (r *TopicRouteData) MasterAddr(brokerName string) (string, bool) {
	for _, bd := range r.BrokerDatas {
		if bd.BrokerName == brokerName {
			a, ok := bd.BrokerAddrs[strconv.Itoa(MasterID)]
			return a, ok && a != ""
		}
	}
	return "", false
}

// TopicConfig is a topic as a broker registers it.
type TopicConfig struct {
	TopicName      string `json:"topicName"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	WriteQueueNums int32  `json:"writeQueueNums"`
	Perm           int32  `json:"perm"`
}

// RegisterBody is the body of REGISTER_BROKER as Sluice brokers send it.
type RegisterBody struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	// DataVersion carries, as RocketMQ 5's stateVersion does in controller mode, the master
	// epoch the broker knows (absent for a broker without a group).
	DataVersion *DataVersion `json:"dataVersion,omitempty"`
}

// DataVersion is the part of RocketMQ's DataVersion a registration carries.
type DataVersion struct {
	StateVersion int64 `json:"stateVersion"`
}

// DecodeRegisterBody parses a REGISTER_BROKER body; an empty body registers no topics.
func DecodeRegisterBody(b []byte) (RegisterBody, error) {
	var body RegisterBody
	if len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			return RegisterBody{}, fmt.Errorf("decode register body: %w", err)
		}
	}
	if body.TopicConfigTable == nil {
		body.TopicConfigTable = map[string]TopicConfig{}
	}
	return body, nil
}

// TopicList is the GET_ALL_TOPIC_LIST_FROM_NAMESERVER response body.
type TopicList struct {
	TopicList  []string `json:"topicList"`
	BrokerAddr *string  `json:"brokerAddr"`
}
