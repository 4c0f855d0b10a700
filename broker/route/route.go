// Package route owns the routing data model shared by the name server, the broker and the
// client: topic route data (queue data and broker data, in the JSON shape RocketMQ 4.x clients
// parse), the broker registration body, and permission bits.
package route

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// Clone returns a deep copy of r: decoding the body r was decoded from again would give an
// equal value, and nothing in it is shared with r.
func (r *TopicRouteData) Clone() *TopicRouteData {
	out := *r
	out.QueueDatas = slices.Clone(r.QueueDatas)
	out.BrokerDatas = slices.Clone(r.BrokerDatas)
	for i := range out.BrokerDatas {
		out.BrokerDatas[i].BrokerAddrs = maps.Clone(out.BrokerDatas[i].BrokerAddrs)
	}
	out.FilterServerTable = maps.Clone(r.FilterServerTable)
	return &out
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

// TopicConfig is a topic as a broker registers it (Java's TopicConfig).
type TopicConfig struct {
	TopicName      string `json:"topicName"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	WriteQueueNums int32  `json:"writeQueueNums"`
	Perm           int32  `json:"perm"`
	// TopicFilterType is SINGLE_TAG or MULTI_TAG (Java writes it always; Sluice brokers write
	// SINGLE_TAG); empty when a registration left it out.
	TopicFilterType string `json:"topicFilterType,omitempty"`
	TopicSysFlag    int32  `json:"topicSysFlag"`
	Order           bool   `json:"order"`
}

// FilterSingleTag is the TopicFilterType of every topic a Sluice broker registers.
const FilterSingleTag = "SINGLE_TAG"

// DataVersion is RocketMQ's DataVersion: it changes whenever the data it versions does.
type DataVersion struct {
	Timestamp int64 `json:"timestamp"`
	Counter   int64 `json:"counter"`
	// StateVersion is, as in RocketMQ 5's controller mode, the master epoch a broker of a group
	// registers with (0 without a group): name servers route the master of the highest epoch
	// when two replicas claim brokerId 0.
	StateVersion int64 `json:"stateVersion,omitempty"`
}

// RegisterBody is the body of REGISTER_BROKER (Java's RegisterBrokerBody). As JSON it is
// written in Java's shape,
//
//	{"topicConfigSerializeWrapper":{"topicConfigTable":{...},"dataVersion":{...}},"filterServerList":[]}
//
// and read in that shape or in the flat one Sluice brokers wrote before (and Java brokers
// older than 3.0.11 write: the wrapper itself, {"topicConfigTable":{...},"dataVersion":{...}}).
// A Java broker with compressedRegister=true sends a zlib form instead (the `compressed`
// header; DecodeCompressedRegisterBody).
type RegisterBody struct {
	TopicConfigTable map[string]TopicConfig
	DataVersion      DataVersion
	FilterServerList []string
}

type topicConfigWrapper struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	DataVersion      DataVersion            `json:"dataVersion"`
}

type registerBodyJSON struct {
	TopicConfigSerializeWrapper topicConfigWrapper `json:"topicConfigSerializeWrapper"`
	FilterServerList            []string           `json:"filterServerList"`
}

// MarshalJSON writes b in Java's shape (topic names in order, as encoding/json sorts map keys).
func (b RegisterBody) MarshalJSON() ([]byte, error) {
	out := registerBodyJSON{TopicConfigSerializeWrapper: topicConfigWrapper{TopicConfigTable: b.TopicConfigTable,
		DataVersion: b.DataVersion}, FilterServerList: b.FilterServerList}
	if out.TopicConfigSerializeWrapper.TopicConfigTable == nil {
		out.TopicConfigSerializeWrapper.TopicConfigTable = map[string]TopicConfig{}
	}
	if out.FilterServerList == nil {
		out.FilterServerList = []string{}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads Java's shape or the flat one; when a body has both, the wrapper wins
// (a Java name server reads only the wrapper from a broker of version 3.0.11 or later).
func (b *RegisterBody) UnmarshalJSON(data []byte) error {
	var both struct {
		Wrapper          *topicConfigWrapper    `json:"topicConfigSerializeWrapper"`
		TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
		DataVersion      DataVersion            `json:"dataVersion"`
		FilterServerList []string               `json:"filterServerList"`
	}
	if err := json.Unmarshal(data, &both); err != nil {
		return err
	}
	*b = RegisterBody{TopicConfigTable: both.TopicConfigTable, DataVersion: both.DataVersion, FilterServerList: both.FilterServerList}
	if both.Wrapper != nil {
		b.TopicConfigTable, b.DataVersion = both.Wrapper.TopicConfigTable, both.Wrapper.DataVersion
	}
	return nil
}

// DecodeRegisterBody parses an uncompressed REGISTER_BROKER body; an empty body registers no
// topics. The table and the filter server list of what it returns are never nil.
func DecodeRegisterBody(b []byte) (RegisterBody, error) {
	var body RegisterBody
	if len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			return RegisterBody{}, fmt.Errorf("decode register body: %w", err)
		}
	}
	return body.normalized(), nil
}

func (b RegisterBody) normalized() RegisterBody {
	if b.TopicConfigTable == nil {
		b.TopicConfigTable = map[string]TopicConfig{}
	}
	if b.FilterServerList == nil {
		b.FilterServerList = []string{}
	}
	return b
}

// MaxInflatedRegisterBytes bounds what a compressed registration may inflate to, so a small
// body cannot make the name server allocate without limit.
const MaxInflatedRegisterBytes = 16 << 20

// DecodeCompressedRegisterBody parses the body a Java 4.9.8 broker sends with
// compressedRegister=true (header compressed=true; RegisterBrokerBody.encode(true)): a zlib
// stream of int32-length-prefixed parts: the data version as JSON, a topic count, each topic
// as TopicConfig.encode() ("name read write perm filterType", space-separated), and the filter
// server list as JSON. Java's decoder fails on a truncated stream or a bad number and does not
// look past the last part; so does this one, and it refuses a topic entry without exactly five
// fields (Java would store it under a null name) or with a filter type other than SINGLE_TAG
// and MULTI_TAG (Java's enum valueOf throws).
func DecodeCompressedRegisterBody(b []byte) (RegisterBody, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return RegisterBody{}, fmt.Errorf("decode compressed register body: %w", err)
	}
	defer zr.Close()
	r := &inflated{r: &io.LimitedReader{R: zr, N: MaxInflatedRegisterBytes}}
	body := RegisterBody{TopicConfigTable: map[string]TopicConfig{}}
	if err := json.Unmarshal(r.part("data version"), &body.DataVersion); r.err == nil && err != nil {
		r.err = fmt.Errorf("data version: %w", err)
	}
	n := r.int32("topic count")
	for i := int32(0); r.err == nil && i < n; i++ {
		tc, err := decodeTopicConfigLine(string(r.part("topic config")))
		if r.err == nil && err != nil {
			r.err = fmt.Errorf("topic config %d: %w", i, err)
		}
		body.TopicConfigTable[tc.TopicName] = tc
	}
	if filters := r.part("filter server list"); r.err == nil {
		if err := json.Unmarshal(filters, &body.FilterServerList); err != nil {
			// Java logs a bad list and registers with an empty one.
			body.FilterServerList = nil
		}
	}
	if r.err != nil {
		return RegisterBody{}, fmt.Errorf("decode compressed register body: %w", r.err)
	}
	return body.normalized(), nil
}

// inflated reads the parts of a compressed registration, remembering the first error.
type inflated struct {
	r   *io.LimitedReader
	err error
}

func (r *inflated) int32(what string) int32 {
	if r.err != nil {
		return 0
	}
	var w [4]byte
	if _, err := io.ReadFull(r.r, w[:]); err != nil {
		r.err = fmt.Errorf("%s: %w", what, err)
		return 0
	}
	return int32(binary.BigEndian.Uint32(w[:]))
}

func (r *inflated) part(what string) []byte {
	n := r.int32(what + " length")
	if r.err != nil {
		return nil
	}
	if n < 0 || int64(n) > r.r.N {
		r.err = fmt.Errorf("%s: length %d, with at most %d bytes left", what, n, r.r.N)
		return nil
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r.r, buf); err != nil {
		r.err = fmt.Errorf("%s: %w", what, err)
		return nil
	}
	return buf
}

// decodeTopicConfigLine parses Java's TopicConfig.encode(): "name read write perm filterType".
func decodeTopicConfigLine(s string) (TopicConfig, error) {
	f := strings.Split(s, " ")
	if len(f) != 5 {
		return TopicConfig{}, fmt.Errorf("%q has %d space-separated fields, want 5", s, len(f))
	}
	var nums [3]int32
	for i := range nums {
		v, err := strconv.ParseInt(f[1+i], 10, 32)
		if err != nil {
			return TopicConfig{}, fmt.Errorf("%q: %w", s, err)
		}
		nums[i] = int32(v)
	}
	if f[4] != FilterSingleTag && f[4] != "MULTI_TAG" {
		return TopicConfig{}, fmt.Errorf("%q: filter type %q is neither SINGLE_TAG nor MULTI_TAG", s, f[4])
	}
	return TopicConfig{TopicName: f[0], ReadQueueNums: nums[0], WriteQueueNums: nums[1], Perm: nums[2], TopicFilterType: f[4]}, nil
}

// EncodeCompressed writes b as a Java broker with compressedRegister=true does (for tests and
// tools; Sluice brokers register uncompressed), topics in name order.
func (b RegisterBody) EncodeCompressed() []byte {
	var raw bytes.Buffer
	part := func(p []byte) {
		raw.Write(binary.BigEndian.AppendUint32(nil, uint32(len(p))))
		raw.Write(p)
	}
	dv, _ := json.Marshal(b.DataVersion)
	part(dv)
	names := make([]string, 0, len(b.TopicConfigTable))
	for n := range b.TopicConfigTable {
		names = append(names, n)
	}
	sort.Strings(names)
	raw.Write(binary.BigEndian.AppendUint32(nil, uint32(len(names))))
	for _, n := range names {
		tc := b.TopicConfigTable[n]
		ft := tc.TopicFilterType
		if ft == "" {
			ft = FilterSingleTag
		}
		part(fmt.Appendf(nil, "%s %d %d %d %s", tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, tc.Perm, ft))
	}
	fl := b.FilterServerList
	if fl == nil {
		fl = []string{}
	}
	fj, _ := json.Marshal(fl)
	part(fj)
	var out bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&out, zlib.BestCompression)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

// BodyCRC32 is the bodyCrc32 header of REGISTER_BROKER for body: Java's UtilAll.crc32, the
// IEEE CRC32 with its top bit cleared. 0 means "not checked".
func BodyCRC32(body []byte) int32 {
	return int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF)
}

// ClusterInfo is the GET_BROKER_CLUSTER_INFO (106) response body (Java's ClusterInfo): every
// live broker group with its addresses by broker id, and the group names of each cluster.
// Java's fastjson writes the id keys unquoted ({0:"…"}); this writes standard JSON, which
// fastjson (the Java admin tools) reads as well.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// TopicList is the GET_ALL_TOPIC_LIST_FROM_NAMESERVER response body.
type TopicList struct {
	TopicList  []string `json:"topicList"`
	BrokerAddr *string  `json:"brokerAddr"`
}
