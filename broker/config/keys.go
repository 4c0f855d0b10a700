package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The keys Sluice reads, under their RocketMQ names.
const (
	KeyBrokerClusterName        = "brokerClusterName"
	KeyBrokerName               = "brokerName"
	KeyBrokerID                 = "brokerId"
	KeyNamesrvAddr              = "namesrvAddr"
	KeyListenPort               = "listenPort"
	KeyBrokerIP1                = "brokerIP1"
	KeyBindAddress              = "bindAddress"
	KeyStorePathRootDir         = "storePathRootDir"
	KeyFlushDiskType            = "flushDiskType"
	KeyBrokerRole               = "brokerRole"
	KeyFileReservedTime         = "fileReservedTime"
	KeyDeleteWhen               = "deleteWhen"
	KeyDiskMaxUsedSpaceRatio    = "diskMaxUsedSpaceRatio"
	KeyDiskFullRatio            = "diskSpaceWarningLevelRatio"
	KeyMaxMessageSize           = "maxMessageSize"
	KeyAutoCreateTopicEnable    = "autoCreateTopicEnable"
	KeyDefaultTopicQueueNums    = "defaultTopicQueueNums"
	KeyMessageDelayLevel        = "messageDelayLevel"
	KeyTransactionTimeOut       = "transactionTimeOut"
	KeyTransactionCheckMax      = "transactionCheckMax"
	KeyTransactionCheckInterval = "transactionCheckInterval"
	KeyEnablePropertyFilter     = "enablePropertyFilter"
	KeyStoreReplyMessageEnable  = "storeReplyMessageEnable"
	KeyTraceTopicEnable         = "traceTopicEnable"
	KeyMsgTraceTopicName        = "msgTraceTopicName"
	KeyEnableControllerMode     = "enableControllerMode"
	KeyControllerAddr           = "controllerAddr"
	KeyAllAckInSyncStateSet     = "allAckInSyncStateSet"
	KeyMinInSyncReplicas        = "minInSyncReplicas"
	// KeyMaxOpenQueueFiles is Sluice's own (RocketMQ maps its consume queues into memory).
	KeyMaxOpenQueueFiles = "maxOpenQueueFiles"
	// KeyMetricsAddr is Sluice's own: where Prometheus metrics, /healthz and /readyz are served.
	KeyMetricsAddr = "metricsAddr"

	// KeyACLEnable turns RocketMQ's ACL on (docs/security.md); KeyACLFile (Sluice's own:
	// RocketMQ reads a fixed path) names its plain_acl.yml; KeyACLAccessKey and
	// KeyACLSecretKey (Sluice's own) are the account a node signs its own requests with.
	KeyACLEnable    = "aclEnable"
	KeyACLFile      = "aclFile"
	KeyACLAccessKey = "aclAccessKey"
	KeyACLSecretKey = "aclSecretKey"
	// TLS, under the names of RocketMQ's TlsSystemConfig (system properties there, keys here).
	KeyTLSServerMode       = "tls.server.mode"
	KeyTLSServerCertPath   = "tls.server.certPath"
	KeyTLSServerKeyPath    = "tls.server.keyPath"
	KeyTLSServerClientAuth = "tls.server.need.client.auth"
	KeyTLSServerTrustPath  = "tls.server.trustCertPath"
	KeyTLSEnable           = "tls.enable"
	KeyTLSClientCertPath   = "tls.client.certPath"
	KeyTLSClientKeyPath    = "tls.client.keyPath"
	KeyTLSClientTrustPath  = "tls.client.trustCertPath"
	KeyTLSClientAuthServer = "tls.client.authServer"

	// Limits on what clients can make a node hold (runtime.Limits).
	KeyServerChannelMaxIdleTimeSeconds = "serverChannelMaxIdleTimeSeconds"
	KeyMaxConnections                  = "maxConnections"
	KeyMaxConnectionsPerAddress        = "maxConnectionsPerAddress"
	KeyMaxRequestsInFlight             = "maxRequestsInFlightPerConnection"
	KeyFrameReadTimeoutMillis          = "frameReadTimeoutMillis"
	KeyWriteStallTimeoutMillis         = "writeStallTimeoutMillis"
	KeyMaxPartialFrameBytes            = "maxPartialFrameBytes"
	KeyMaxOutboundBytesTotal           = "maxOutboundBytesTotal"

	KeyEnableControllerInNamesrv = "enableControllerInNamesrv"
	KeyControllerPeers           = "controllerDLegerPeers"
	KeyControllerSelfID          = "controllerDLegerSelfId"
	KeyControllerStorePath       = "controllerStorePath"
)

type kind uint8

const (
	kindString    kind = iota + 1 // any non-empty text
	kindPath                      // a file system path
	kindIP                        // a literal IP address
	kindInt                       // a decimal integer in [min, max]
	kindBool                      // true or false (any case, as Java's Boolean.parseBoolean, but strict)
	kindEnum                      // one of enum
	kindList                      // ';'- or ','-separated non-empty elements, each checked by elem
	kindHours                     // deleteWhen: ';'-separated hours 00..23
	kindRetention                 // fileReservedTime: whole hours (RocketMQ) or a Go duration such as 90m (Sluice)
)

// key is one key Sluice reads.
type key struct {
	name     string
	roles    Role
	kind     kind
	min, max int64
	enum     []string
	elem     func(string) error // for kindList: checks one element
	// NotActed is why the key is parsed and stored but not yet acted on ("" if it is).
	notActed string
	// own says why Sluice reads a key RocketMQ has not ("" for RocketMQ's keys).
	own string
	doc string
}

var keys = []key{
	{name: KeyBrokerClusterName, roles: Broker, kind: kindString, doc: "cluster the broker registers in"},
	{name: KeyBrokerName, roles: Broker, kind: kindString, doc: "broker group name"},
	{name: KeyBrokerID, roles: Broker, kind: kindInt, min: -1, max: 1 << 20,
		doc: "0 for a single master; a replica's id (1 and up) with enableControllerMode"},
	{name: KeyNamesrvAddr, roles: Broker, kind: kindList, elem: checkHostPort, doc: "name servers, ';'-separated ip:port"},
	{name: KeyListenPort, roles: Broker | NameServer, kind: kindInt, min: 1, max: 65535, doc: "the port to listen on"},
	{name: KeyBrokerIP1, roles: Broker, kind: kindIP, doc: "the broker's address (a literal IP), listened on and registered"},
	{name: KeyBindAddress, roles: NameServer, kind: kindIP, doc: "the name server's listen address (default 0.0.0.0 when listenPort is set)"},
	{name: KeyStorePathRootDir, roles: Broker, kind: kindPath, doc: "the broker's data directory"},
	{name: KeyFlushDiskType, roles: Broker, kind: kindEnum, enum: []string{"SYNC_FLUSH", "ASYNC_FLUSH"},
		doc: "SYNC_FLUSH acknowledges a send after its fsync; ASYNC_FLUSH at once"},
	{name: KeyBrokerRole, roles: Broker, kind: kindEnum, enum: []string{"ASYNC_MASTER", "SYNC_MASTER", "SLAVE"},
		doc: "without controllers, a master (SLAVE is refused); with them the controllers pick roles and this is ignored"},
	{name: KeyFileReservedTime, roles: Broker, kind: kindRetention, min: 1, max: 24 * 365 * 10,
		doc: "hours a commit-log segment is kept (or a duration with its unit, such as 90m; 0s: kept by age for ever)"},
	{name: KeyDeleteWhen, roles: Broker, kind: kindHours,
		doc: "hours of the day expired segments are deleted at, ';'-separated (04)"},
	{name: KeyDiskMaxUsedSpaceRatio, roles: Broker, kind: kindInt, min: 0, max: 95,
		doc: "percent of the data directory's file system past which the oldest segments go (0: never)"},
	{name: KeyDiskFullRatio, roles: Broker, kind: kindInt, min: 0, max: 99,
		doc: "percent of the data directory's file system at or past which new messages are refused (0: never)"},
	{name: KeyMaxMessageSize, roles: Broker, kind: kindInt, min: 1, max: 64 << 20, doc: "largest message body accepted, in bytes"},
	{name: KeyAutoCreateTopicEnable, roles: Broker, kind: kindBool, doc: "create unknown topics on first send"},
	{name: KeyDefaultTopicQueueNums, roles: Broker, kind: kindInt, min: 1, max: 1024, doc: "queues of an auto-created topic"},
	{name: KeyMessageDelayLevel, roles: Broker, kind: kindString, doc: "delay of each delay level, space-separated"},
	{name: KeyTransactionTimeOut, roles: Broker, kind: kindInt, min: 1, max: 1 << 40,
		doc: "milliseconds before an unresolved transactional message is checked back"},
	{name: KeyTransactionCheckMax, roles: Broker, kind: kindInt, min: 1, max: 1 << 20,
		doc: "checks of a transactional message before it is discarded"},
	{name: KeyTransactionCheckInterval, roles: Broker, kind: kindInt, min: 1, max: 1 << 40,
		doc: "milliseconds between checks of unresolved transactional messages"},
	{name: KeyEnablePropertyFilter, roles: Broker, kind: kindBool, doc: "let consumers subscribe with SQL92 selectors"},
	{name: KeyStoreReplyMessageEnable, roles: Broker, kind: kindBool, doc: "store reply messages besides pushing them"},
	{name: KeyTraceTopicEnable, roles: Broker, kind: kindBool, doc: "create the trace topic at start"},
	{name: KeyMsgTraceTopicName, roles: Broker, kind: kindString, doc: "the trace topic"},
	{name: KeyEnableControllerMode, roles: Broker, kind: kindBool, doc: "the broker is a replica whose role its controllers pick"},
	{name: KeyControllerAddr, roles: Broker, kind: kindList, elem: checkHostPort, doc: "controller members, ';'-separated ip:port"},
	{name: KeyAllAckInSyncStateSet, roles: Broker, kind: kindBool,
		doc: "true: sync replication (acknowledged once the in-sync replicas hold a write); false: async"},
	{name: KeyMinInSyncReplicas, roles: Broker, kind: kindInt, min: 1, max: 64,
		doc: "least in-sync replicas (the master counted) for a sync-mode master to acknowledge"},
	{name: KeyMaxOpenQueueFiles, roles: Broker, kind: kindInt, min: 0, max: 1 << 24,
		own: "RocketMQ maps its consume-queue files into memory; Sluice opens consume-queue logs within a budget of descriptors",
		doc: "consume-queue logs kept open at once, two descriptors each (0: derived from the descriptor limit)"},
	{name: KeyMetricsAddr, roles: Broker | NameServer | Controller, kind: kindString,
		own: "RocketMQ exports metrics through its own exporter; Sluice serves Prometheus metrics itself",
		doc: "serve Prometheus metrics at /metrics, and /healthz and /readyz, on this ip:port (unset: off)"},
	{name: KeyACLEnable, roles: Broker | NameServer | Controller, kind: kindBool,
		doc: "check every request against the ACL file's accounts and permissions (docs/security.md)"},
	{name: KeyACLFile, roles: Broker | NameServer | Controller, kind: kindPath,
		own: "RocketMQ reads its ACL file from a fixed path under its home directory",
		doc: "the plain_acl.yml file (RocketMQ's format), reloaded when it changes"},
	{name: KeyACLAccessKey, roles: Broker | NameServer | Controller, kind: kindString,
		own: "RocketMQ's nodes do not sign their requests to each other",
		doc: "the account this node signs its requests to name servers, controllers and brokers with (an admin account)"},
	{name: KeyACLSecretKey, roles: Broker | NameServer | Controller, kind: kindString,
		own: "RocketMQ's nodes do not sign their requests to each other",
		doc: "the secret key of aclAccessKey"},
	{name: KeyTLSServerMode, roles: allRoles, own: tlsOwn, kind: kindEnum, enum: []string{"disabled", "permissive", "enforcing"},
		doc: "TLS on the listening port: disabled, permissive (plain and TLS on one port) or enforcing (TLS only); default disabled"},
	{name: KeyTLSServerCertPath, roles: allRoles, own: tlsOwn, kind: kindPath, doc: "PEM certificate chain the port serves (re-read when the file changes)"},
	{name: KeyTLSServerKeyPath, roles: allRoles, own: tlsOwn, kind: kindPath, doc: "PEM private key of that certificate"},
	{name: KeyTLSServerClientAuth, roles: allRoles, own: tlsOwn, kind: kindEnum, enum: []string{"none", "optional", "require"},
		doc: "client certificates: none, optional (verified if presented) or require"},
	{name: KeyTLSServerTrustPath, roles: allRoles, own: tlsOwn, kind: kindPath, doc: "PEM CAs that sign client certificates"},
	{name: KeyTLSEnable, roles: allRoles, own: tlsOwn, kind: kindBool, doc: "dial other nodes (name servers, controllers, brokers) with TLS"},
	{name: KeyTLSClientCertPath, roles: allRoles, own: tlsOwn, kind: kindPath, doc: "PEM certificate presented to nodes that ask for one"},
	{name: KeyTLSClientKeyPath, roles: allRoles, own: tlsOwn, kind: kindPath, doc: "PEM private key of that certificate"},
	{name: KeyTLSClientTrustPath, roles: allRoles, own: tlsOwn, kind: kindPath, doc: "PEM CAs the certificates of dialled nodes must chain to"},
	{name: KeyTLSClientAuthServer, roles: allRoles, own: tlsOwn, kind: kindBool,
		doc: "verify the certificates of dialled nodes (false: encrypt without verifying, as RocketMQ's default)"},
	{name: KeyServerChannelMaxIdleTimeSeconds, roles: allRoles, kind: kindInt, min: -1, max: 1 << 20,
		doc: "seconds an inbound connection may send nothing before it is closed (120; 0 or less: never)"},
	{name: KeyMaxConnections, roles: allRoles, kind: kindInt, min: -1, max: 1 << 24, own: limitsOwn,
		doc: "inbound connections open at once; more are closed at accept (10000; -1: no limit)"},
	{name: KeyMaxConnectionsPerAddress, roles: allRoles, kind: kindInt, min: -1, max: 1 << 24, own: limitsOwn,
		doc: "inbound connections from one IP address (1000; -1: no limit)"},
	{name: KeyMaxRequestsInFlight, roles: allRoles, kind: kindInt, min: -1, max: 1 << 24, own: limitsOwn,
		doc: "unanswered requests per connection, parked long polls included; more are answered SYSTEM_BUSY (4096; -1: no limit)"},
	{name: KeyFrameReadTimeoutMillis, roles: allRoles, kind: kindInt, min: -1, max: 1 << 30, own: limitsOwn,
		doc: "milliseconds a frame may take to arrive once begun; a slower sender is cut off (30000; -1: no limit)"},
	{name: KeyWriteStallTimeoutMillis, roles: allRoles, kind: kindInt, min: -1, max: 1 << 30, own: limitsOwn,
		doc: "milliseconds one write to a peer may take; a peer that does not read is disconnected (60000; -1: no limit)"},
	{name: KeyMaxPartialFrameBytes, roles: allRoles, kind: kindInt, min: -1, max: 1 << 40, own: limitsOwn,
		doc: "bytes held in partly arrived frames over every connection; the connection that would pass it is closed (268435456; -1: no limit)"},
	{name: KeyMaxOutboundBytesTotal, roles: allRoles, kind: kindInt, min: -1, max: 1 << 40, own: limitsOwn,
		doc: "bytes queued for peers over every connection; past it the connection holding the most is closed (536870912; -1: no limit)"},

	{name: KeyEnableControllerInNamesrv, roles: NameServer, kind: kindBool, doc: "also run a controller member in the name server's process"},
	{name: KeyControllerPeers, roles: NameServer | Controller, kind: kindList, elem: checkPeer,
		doc: "every controller member as name-ip:port, ';'-separated (n0-127.0.0.1:9878;...); ids are their positions from 1"},
	{name: KeyControllerSelfID, roles: NameServer | Controller, kind: kindString, doc: "which member of controllerDLegerPeers this is (n0)"},
	{name: KeyControllerStorePath, roles: NameServer | Controller, kind: kindPath, doc: "the controller member's data directory"},
}

var keyTable = func() map[string]key {
	m := make(map[string]key, len(keys))
	for _, k := range keys {
		if _, dup := m[k.name]; dup {
			panic("config: key listed twice: " + k.name)
		}
		m[k.name] = k
	}
	return m
}()

// NotActed says why a Sluice key is parsed but not yet acted on, "" if it is acted on.
func NotActed(name string) string { return keyTable[name].notActed }

// Doc is a key's one-line description.
func Doc(name string) string { return keyTable[name].doc }

// KeysFor are the keys Sluice reads for role, in table order.
func KeysFor(role Role) []string {
	var out []string
	for _, k := range keys {
		if k.roles&role != 0 {
			out = append(out, k.name)
		}
	}
	return out
}

func (k key) parse(s string) (value, error) {
	s = strings.TrimSpace(s)
	var v value
	switch k.kind {
	case kindString, kindPath:
		if s == "" {
			return v, fmt.Errorf("empty")
		}
		v.s = s
	case kindIP:
		if _, err := netip.ParseAddr(s); err != nil {
			return v, fmt.Errorf("want a literal IP address")
		}
		v.s = s
	case kindInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return v, fmt.Errorf("want an integer")
		}
		if n < k.min || n > k.max {
			return v, fmt.Errorf("want %d to %d", k.min, k.max)
		}
		v.i = n
	case kindRetention:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			if n < k.min || n > k.max {
				return v, fmt.Errorf("want %d to %d hours, or a duration with its unit", k.min, k.max)
			}
			v.d = time.Duration(n) * time.Hour
			break
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > time.Duration(k.max)*time.Hour {
			return v, fmt.Errorf("want whole hours (%d to %d) or a duration with its unit, such as 90m", k.min, k.max)
		}
		v.d = d
	case kindBool:
		switch strings.ToLower(s) {
		case "true":
			v.b = true
		case "false":
		default:
			return v, fmt.Errorf("want true or false")
		}
	case kindEnum:
		for _, e := range k.enum {
			if strings.EqualFold(s, e) {
				return value{s: e}, nil
			}
		}
		return v, fmt.Errorf("want one of %s", strings.Join(k.enum, ", "))
	case kindList:
		for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if err := k.elem(part); err != nil {
				return v, fmt.Errorf("%q: %w", part, err)
			}
			v.list = append(v.list, part)
		}
		if len(v.list) == 0 {
			return v, fmt.Errorf("empty")
		}
	case kindHours:
		for _, part := range strings.Split(s, ";") {
			h, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil || h < 0 || h > 23 {
				return v, fmt.Errorf("want hours of the day 00 to 23, ';'-separated")
			}
			v.list = append(v.list, fmt.Sprintf("%02d", h))
		}
	default:
		panic(fmt.Sprintf("config: key %s has no kind", k.name))
	}
	return v, nil
}

func checkHostPort(s string) error {
	if _, err := netip.ParseAddrPort(s); err != nil {
		return fmt.Errorf("want ip:port with a literal IP")
	}
	return nil
}

func checkPeer(s string) error {
	name, addr, ok := strings.Cut(s, "-")
	if !ok || name == "" {
		return fmt.Errorf("want name-ip:port")
	}
	return checkHostPort(addr)
}

var (
	rocketOnce sync.Once
	rocketSet  map[string]bool
)

// isRocketMQKey reports whether name is a key of one of RocketMQ's configuration classes.
// RocketMQ matches a key to its setter with the first letter's case ignored; so does this.
func isRocketMQKey(name string) bool {
	rocketOnce.Do(func() {
		rocketSet = map[string]bool{}
		for _, ks := range rocketMQKeys {
			for _, k := range ks {
				rocketSet[strings.ToLower(k[:1])+k[1:]] = true
			}
		}
	})
	if name == "" {
		return false
	}
	return rocketSet[strings.ToLower(name[:1])+name[1:]]
}

// suggest is the known key nearest to name (Sluice's keys for role first, then RocketMQ's),
// or "" when none is close: a case-insensitive match, or an edit distance of at most 2
// (3 for long keys).
func suggest(name string, role Role) string {
	best, bestD := "", 1<<30
	try := func(cand string) {
		d := distance(strings.ToLower(name), strings.ToLower(cand))
		if d < bestD {
			best, bestD = cand, d
		}
	}
	for _, k := range KeysFor(role) {
		try(k)
	}
	if bestD > 0 {
		for _, ks := range rocketMQKeys {
			for _, k := range ks {
				try(k)
			}
		}
	}
	limit := 2
	if len(name) > 12 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// distance is the Levenshtein distance of a and b (bytes), cut off for long inputs.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// tlsOwn is why the tls.* keys are Sluice's own: RocketMQ reads them as system properties.
const tlsOwn = "RocketMQ reads its TLS settings as JVM system properties (TlsSystemConfig); Sluice reads them from the file under the same names"

// limitsOwn is why the connection limits are Sluice's own keys.
const limitsOwn = "RocketMQ bounds clients through its thread pools' queues and Netty's settings; Sluice bounds each connection's demands directly"
