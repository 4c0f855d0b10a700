package brokernode

// The broker's configuration as admins read and change it: GET_BROKER_CONFIG (26) answers the
// effective settings under RocketMQ's keys as java.util.Properties text, and
// UPDATE_BROKER_CONFIG (25) changes the keys the broker can change while it runs (liveKeys):
// each is read afresh where it is used (retention's check, the disk guard, the send and pull
// paths, the transaction checker, auto-creation), so a change takes effect at its next use.
//
// Values are checked by package config with the rules of broker.conf. A key Sluice does not
// know, a RocketMQ key Sluice does not use, and a key it knows but cannot change live (the
// broker's name, address, flush mode, replication...) are refused, naming the key.
//
// Persistence: the node has no access to the broker.conf it was started with (the process
// read it; the node reaches nothing but its data disk), so a change is kept in the data
// directory, in overridesFile, and applied over the file and the flags when the broker starts
// again; GET_BROKER_CONFIG shows the result. Deleting that file returns to broker.conf.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/node"
)

// overridesFile holds the keys UPDATE_BROKER_CONFIG changed, as properties text.
const overridesFile = "broker-overrides.properties"

// liveKeys are the keys UPDATE_BROKER_CONFIG changes, and how each sets a Config from a
// checked file.
var liveKeys = map[string]func(f *config.File, c *Config){
	config.KeyFileReservedTime:      func(f *config.File, c *Config) { c.FileReservedTime = f.Duration(config.KeyFileReservedTime) },
	config.KeyDeleteWhen:            func(f *config.File, c *Config) { c.DeleteWhen = hoursOf(f.List(config.KeyDeleteWhen)) },
	config.KeyDiskMaxUsedSpaceRatio: func(f *config.File, c *Config) { c.DiskMaxUsedSpaceRatio = int(f.Int(config.KeyDiskMaxUsedSpaceRatio)) },
	config.KeyDiskFullRatio:         func(f *config.File, c *Config) { c.DiskFullRatio = int(f.Int(config.KeyDiskFullRatio)) },
	config.KeyMaxMessageSize:        func(f *config.File, c *Config) { c.MaxMessageBytes = int(f.Int(config.KeyMaxMessageSize)) },
	config.KeyDefaultTopicQueueNums: func(f *config.File, c *Config) { c.DefaultQueueNums = int32(f.Int(config.KeyDefaultTopicQueueNums)) },
	config.KeyTransactionTimeOut: func(f *config.File, c *Config) {
		c.TxnTimeout = time.Duration(f.Int(config.KeyTransactionTimeOut)) * time.Millisecond
	},
	config.KeyTransactionCheckMax: func(f *config.File, c *Config) { c.TxnCheckMax = int(f.Int(config.KeyTransactionCheckMax)) },
	config.KeyTransactionCheckInterval: func(f *config.File, c *Config) {
		c.TxnCheckInterval = time.Duration(f.Int(config.KeyTransactionCheckInterval)) * time.Millisecond
	},
	config.KeyEnablePropertyFilter:    func(f *config.File, c *Config) { c.EnablePropertyFilter = f.Bool(config.KeyEnablePropertyFilter) },
	config.KeyStoreReplyMessageEnable: func(f *config.File, c *Config) { c.StoreReplyMessage = f.Bool(config.KeyStoreReplyMessageEnable) },
}

// LiveConfigKeys are the keys UPDATE_BROKER_CONFIG changes, sorted.
func LiveConfigKeys() []string { return slices.Sorted(maps.Keys(liveKeys)) }

func hoursOf(list []string) []int {
	out := make([]int, 0, len(list))
	for _, h := range list {
		n, _ := strconv.Atoi(h) // checked by package config
		out = append(out, n)
	}
	return out
}

// parseOverrides checks properties text as UPDATE_BROKER_CONFIG takes it: every key one of
// liveKeys, with a value broker.conf would accept. It returns the keys in text order, and the
// checked file.
func parseOverrides(name string, text []byte) ([]string, *config.File, error) {
	f, err := config.Parse(name, text, config.Broker)
	if err != nil {
		return nil, nil, err
	}
	if len(f.Ignored) > 0 {
		return nil, nil, fmt.Errorf("key %s is a RocketMQ broker key Sluice does not use", f.Ignored[0])
	}
	entries, err := config.ParseProperties(text) // parsed by Parse above: cannot fail now
	if err != nil {
		return nil, nil, err
	}
	var keys []string
	for _, e := range entries {
		if _, live := liveKeys[e.Key]; !live {
			return nil, nil, fmt.Errorf("key %s cannot be changed while the broker runs (keys that can: %s); set it in broker.conf and restart",
				e.Key, strings.Join(LiveConfigKeys(), ", "))
		}
		keys = append(keys, e.Key)
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("no key=value given")
	}
	return keys, f, nil
}

// applyOverrides sets cfg from the overrides the data directory holds (at start), returning
// the keys it set; a file that no longer checks (a key this version cannot change live) is
// an error: the operator must fix or remove it.
func applyOverrides(disk node.Disk, cfg *Config) ([]string, map[string]string, error) {
	text, err := disk.ReadFile(overridesFile)
	if errors.Is(err, node.ErrNotFound) {
		return nil, map[string]string{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", overridesFile, err)
	}
	keys, f, err := parseOverrides(overridesFile, text)
	if err != nil {
		return nil, nil, fmt.Errorf("%s in the data directory (written by updateBrokerConfig): %w", overridesFile, err)
	}
	raw := map[string]string{}
	for _, k := range keys {
		liveKeys[k](f, cfg)
		raw[k] = f.Raw(k)
	}
	if err := cfg.CheckTxnSettings(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", overridesFile, err)
	}
	return keys, raw, nil
}

// handleUpdateBrokerConfig serves UPDATE_BROKER_CONFIG (25): the body is key=value lines.
// All keys are checked before any is applied; the new overrides are on disk before the
// broker changes and answers.
func (b *Broker) handleUpdateBrokerConfig(req *codec.Command) *codec.Command {
	keys, f, err := parseOverrides("updateBrokerConfig", req.Body)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "update broker config: "+err.Error())
	}
	next := b.cfg
	for _, k := range keys {
		liveKeys[k](f, &next)
	}
	if err := next.CheckTxnSettings(); err != nil {
		return codec.NewResponse(req, codec.SystemError, "update broker config: "+err.Error())
	}
	overrides := maps.Clone(b.overrides)
	for _, k := range keys {
		overrides[k] = f.Raw(k)
	}
	var ps []codec.ConfigProperty
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		ps = append(ps, codec.ConfigProperty{Key: k, Value: overrides[k]})
	}
	if err := b.env.Disk().WriteFile(overridesFile, codec.EncodeConfigProperties(ps)); err != nil {
		b.log.Error("persist broker config overrides", "err", err)
		return codec.NewResponse(req, codec.SystemError, "update broker config: persist "+overridesFile+": "+err.Error())
	}
	intervalChanged := next.TxnCheckInterval != b.cfg.TxnCheckInterval
	b.cfg, b.overrides = next, overrides
	for _, k := range keys {
		b.log.Info("broker config changed", "key", k, "value", overrides[k])
	}
	if intervalChanged {
		b.log.Info("the new transaction check interval applies after the next check")
	}
	return codec.NewResponse(req, codec.Success, "")
}

// ConfigProperties are the broker's effective settings under RocketMQ's keys, in key order:
// GET_BROKER_CONFIG's body.
func (b *Broker) ConfigProperties() []codec.ConfigProperty {
	c := b.cfg
	host, port := b.storeHost.Addr().String(), strconv.Itoa(int(b.storeHost.Port())) // cfg.Addr, parsed by New
	flush := "SYNC_FLUSH"
	if c.FlushMode == AsyncFlush {
		flush = "ASYNC_FLUSH"
	}
	role := "ASYNC_MASTER"
	if c.replicated() && c.ReplicationMode == SyncReplication {
		role = "SYNC_MASTER"
	}
	if c.replicated() && b.master() == nil {
		role = "SLAVE"
	}
	hours := make([]string, len(c.DeleteWhen))
	for i, h := range c.DeleteWhen {
		hours[i] = fmt.Sprintf("%02d", h)
	}
	reserved := c.FileReservedTime.String()
	if c.FileReservedTime > 0 && c.FileReservedTime%time.Hour == 0 {
		reserved = strconv.FormatInt(int64(c.FileReservedTime/time.Hour), 10)
	}
	levels := make([]string, len(c.DelayLevels))
	for i, d := range c.DelayLevels {
		levels[i] = formatDelay(d)
	}
	m := map[string]string{
		config.KeyBrokerClusterName:        c.ClusterName,
		config.KeyBrokerName:               c.BrokerName,
		config.KeyBrokerID:                 strconv.FormatInt(c.BrokerID, 10),
		config.KeyNamesrvAddr:              strings.Join(c.NameServers, ";"),
		config.KeyBrokerIP1:                host,
		config.KeyListenPort:               port,
		config.KeyFlushDiskType:            flush,
		config.KeyBrokerRole:               role,
		config.KeyFileReservedTime:         reserved,
		config.KeyDeleteWhen:               strings.Join(hours, ";"),
		config.KeyDiskMaxUsedSpaceRatio:    strconv.Itoa(c.DiskMaxUsedSpaceRatio),
		config.KeyDiskFullRatio:            strconv.Itoa(c.DiskFullRatio),
		config.KeyMaxMessageSize:           strconv.Itoa(c.MaxMessageBytes),
		config.KeyAutoCreateTopicEnable:    strconv.FormatBool(c.AutoCreateTopic),
		config.KeyDefaultTopicQueueNums:    strconv.Itoa(int(c.DefaultQueueNums)),
		config.KeyMessageDelayLevel:        strings.Join(levels, " "),
		config.KeyTransactionTimeOut:       strconv.FormatInt(c.TxnTimeout.Milliseconds(), 10),
		config.KeyTransactionCheckMax:      strconv.Itoa(c.TxnCheckMax),
		config.KeyTransactionCheckInterval: strconv.FormatInt(c.TxnCheckInterval.Milliseconds(), 10),
		config.KeyEnablePropertyFilter:     strconv.FormatBool(c.EnablePropertyFilter),
		config.KeyStoreReplyMessageEnable:  strconv.FormatBool(c.StoreReplyMessage),
		config.KeyTraceTopicEnable:         strconv.FormatBool(c.TraceTopic != ""),
		config.KeyMaxOpenQueueFiles:        strconv.Itoa(c.MaxOpenQueueFiles),
		config.KeyEnableControllerMode:     strconv.FormatBool(c.replicated()),
	}
	if c.TraceTopic != "" {
		m[config.KeyMsgTraceTopicName] = c.TraceTopic
	}
	if c.replicated() {
		m[config.KeyControllerAddr] = strings.Join(c.Controllers, ";")
		m[config.KeyAllAckInSyncStateSet] = strconv.FormatBool(c.ReplicationMode == SyncReplication)
		m[config.KeyMinInSyncReplicas] = strconv.Itoa(max(1, c.MinInSync))
	}
	out := make([]codec.ConfigProperty, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, codec.ConfigProperty{Key: k, Value: m[k]})
	}
	return out
}

// formatDelay writes one delay level as messageDelayLevel does (1s, 5m, 2h).
func formatDelay(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// handleGetBrokerConfig serves GET_BROKER_CONFIG (26): the settings as Properties text. (Java
// also sends the config's data version in an ext field; Sluice's admin tool needs none.)
func (b *Broker) handleGetBrokerConfig(req *codec.Command) *codec.Command {
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = codec.EncodeConfigProperties(b.ConfigProperties())
	return resp
}
