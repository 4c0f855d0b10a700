package main

// Configuration files (--config): what each key of a RocketMQ broker.conf, namesrv.conf or
// controller.conf sets in Sluice, and --print-config. Package config parses and checks the
// file; this file maps its keys onto the settings the flags also set. A file is applied before
// the flags are declared, so its values become the flags' defaults and a flag given on the
// command line wins.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/route"
)

// loadConfig loads the --config file among args for role; nil, nil without one.
func loadConfig(args []string, role config.Role) (*config.File, error) {
	path, err := config.ConfigPath(args)
	if errors.Is(err, config.ErrNoConfig) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return config.Load(path, role)
}

// configFlag declares --config (already read by loadConfig) and --print-config.
func configFlag(fs *flag.FlagSet, what string) *bool {
	fs.String("config", "", "a "+what+" file in RocketMQ's key=value format; flags given override its values")
	return fs.Bool("print-config", false, "print the effective configuration (defaults, then the file, then flags) and exit")
}

// reportFile logs, once at start, the RocketMQ keys the file set that Sluice ignores and the
// keys it reads but does not act on yet.
func reportFile(logger *slog.Logger, f *config.File) {
	if f == nil {
		return
	}
	if len(f.Ignored) > 0 {
		logger.Warn("config: RocketMQ keys Sluice does not use are ignored", "file", f.Path, "keys", strings.Join(f.Ignored, ","))
	}
	for _, k := range f.Keys() {
		if why := config.NotActed(k); why != "" {
			logger.Warn("config: key "+why, "file", f.Path, "key", k, "value", f.Raw(k))
		}
	}
}

// brokerSettings are the settings of 'sluice broker' beyond brokernode.Config.
type brokerSettings struct {
	data        string // --data: the broker uses DATA/<name> (DATA/<name>-<id> in a group)
	storeRoot   string // storePathRootDir: the broker's own directory, used as is
	ns          string
	flush       string
	vip         string
	controllers string
	replication string
	level       string
	role        string // brokerRole, as written
	metrics     string // --metrics-addr (metricsAddr)
}

func defaultBrokerSettings() brokerSettings {
	return brokerSettings{data: "./data", ns: "127.0.0.1:9876", flush: "sync", vip: vipAuto, replication: "sync",
		level: "info", role: "ASYNC_MASTER"}
}

// applyBrokerFile sets cfg and s from a broker.conf.
func applyBrokerFile(f *config.File, cfg *brokernode.Config, s *brokerSettings) error {
	if f == nil {
		return nil
	}
	if f.Has(config.KeyBrokerClusterName) {
		cfg.ClusterName = f.String(config.KeyBrokerClusterName)
	}
	if f.Has(config.KeyBrokerName) {
		cfg.BrokerName = f.String(config.KeyBrokerName)
	}
	controllerMode := f.Bool(config.KeyEnableControllerMode)
	if f.Has(config.KeyBrokerID) {
		id := f.Int(config.KeyBrokerID)
		switch {
		case controllerMode && id < 1:
			return f.Errorf(config.KeyBrokerID, "a replica of a Sluice broker group needs a fixed id of at least 1 (RocketMQ 5's -1, an id the controller assigns, is not supported)")
		case !controllerMode && id != route.MasterID:
			return f.Errorf(config.KeyBrokerID, "without enableControllerMode a Sluice broker is a master (brokerId 0); replicas are picked by controllers")
		}
		cfg.BrokerID = id
	}
	if f.Has(config.KeyNamesrvAddr) {
		s.ns = strings.Join(f.List(config.KeyNamesrvAddr), ";")
	}
	if f.Has(config.KeyBrokerIP1) || f.Has(config.KeyListenPort) {
		host, port, _ := net.SplitHostPort(cfg.Addr)
		if f.Has(config.KeyBrokerIP1) {
			host = f.String(config.KeyBrokerIP1)
		}
		if f.Has(config.KeyListenPort) {
			port = strconv.FormatInt(f.Int(config.KeyListenPort), 10)
		}
		cfg.Addr = net.JoinHostPort(host, port)
	}
	if f.Has(config.KeyStorePathRootDir) {
		s.storeRoot = f.String(config.KeyStorePathRootDir)
	}
	if f.Has(config.KeyFlushDiskType) {
		s.flush = f.String(config.KeyFlushDiskType)
	}
	if f.Has(config.KeyBrokerRole) {
		s.role = f.String(config.KeyBrokerRole)
		if s.role == "SLAVE" && !controllerMode {
			return f.Errorf(config.KeyBrokerRole, "a Sluice broker without controllers is a master; set enableControllerMode and controllerAddr for a replica whose role the controllers pick")
		}
	}
	if f.Has(config.KeyFileReservedTime) {
		cfg.FileReservedTime = f.Duration(config.KeyFileReservedTime)
	}
	if f.Has(config.KeyDeleteWhen) {
		hours, err := parseDeleteWhen(strings.Join(f.List(config.KeyDeleteWhen), ";"))
		if err != nil {
			return f.Errorf(config.KeyDeleteWhen, "%v", err)
		}
		cfg.DeleteWhen = hours
	}
	if f.Has(config.KeyDiskMaxUsedSpaceRatio) {
		cfg.DiskMaxUsedSpaceRatio = int(f.Int(config.KeyDiskMaxUsedSpaceRatio))
	}
	if f.Has(config.KeyDiskFullRatio) {
		cfg.DiskFullRatio = int(f.Int(config.KeyDiskFullRatio))
	}
	if f.Has(config.KeyMaxMessageSize) {
		cfg.MaxMessageBytes = int(f.Int(config.KeyMaxMessageSize))
	}
	if f.Has(config.KeyMaxOpenQueueFiles) {
		cfg.MaxOpenQueueFiles = int(f.Int(config.KeyMaxOpenQueueFiles))
	}
	s.metrics = metricsAddrOf(f)
	if f.Has(config.KeyAutoCreateTopicEnable) {
		cfg.AutoCreateTopic = f.Bool(config.KeyAutoCreateTopicEnable)
	}
	if f.Has(config.KeyDefaultTopicQueueNums) {
		cfg.DefaultQueueNums = int32(f.Int(config.KeyDefaultTopicQueueNums))
	}
	if f.Has(config.KeyMessageDelayLevel) {
		levels, err := brokernode.ParseDelayLevels(f.String(config.KeyMessageDelayLevel))
		if err != nil {
			return f.Errorf(config.KeyMessageDelayLevel, "%v", err)
		}
		cfg.DelayLevels = levels
	}
	if f.Has(config.KeyTransactionTimeOut) {
		cfg.TxnTimeout = time.Duration(f.Int(config.KeyTransactionTimeOut)) * time.Millisecond
	}
	if f.Has(config.KeyTransactionCheckMax) {
		cfg.TxnCheckMax = int(f.Int(config.KeyTransactionCheckMax))
	}
	if f.Has(config.KeyTransactionCheckInterval) {
		cfg.TxnCheckInterval = time.Duration(f.Int(config.KeyTransactionCheckInterval)) * time.Millisecond
	}
	if f.Has(config.KeyEnablePropertyFilter) {
		cfg.EnablePropertyFilter = f.Bool(config.KeyEnablePropertyFilter)
	}
	if f.Has(config.KeyStoreReplyMessageEnable) {
		cfg.StoreReplyMessage = f.Bool(config.KeyStoreReplyMessageEnable)
	}
	if f.Has(config.KeyMsgTraceTopicName) {
		cfg.TraceTopic = f.String(config.KeyMsgTraceTopicName)
	}
	if f.Has(config.KeyTraceTopicEnable) && !f.Bool(config.KeyTraceTopicEnable) {
		cfg.TraceTopic = ""
	}
	if controllerMode {
		s.controllers = strings.Join(f.List(config.KeyControllerAddr), ";")
	}
	if f.Has(config.KeyAllAckInSyncStateSet) {
		s.replication = "async"
		if f.Bool(config.KeyAllAckInSyncStateSet) {
			s.replication = "sync"
		}
	}
	if f.Has(config.KeyMinInSyncReplicas) {
		cfg.MinInSync = int(f.Int(config.KeyMinInSyncReplicas))
	}
	return nil
}

// flagsSet are the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// settingsBuilder collects the effective settings for --print-config.
type settingsBuilder struct {
	f   *config.File
	set map[string]bool
	out []config.Setting
}

// add records key's effective value; flags are the flags that set it (the first given wins
// as the source shown).
func (b *settingsBuilder) add(key, value string, flags ...string) {
	src := config.Source(b.f, key, "", false)
	for _, fl := range flags {
		if b.set[fl] {
			src = config.Source(b.f, key, fl, true)
			break
		}
	}
	b.out = append(b.out, config.Setting{Key: key, Value: value, Source: src})
}

// brokerEffective lists a broker's effective configuration under RocketMQ's keys.
func brokerEffective(f *config.File, set map[string]bool, cfg brokernode.Config, s brokerSettings, dir string) []config.Setting {
	b := &settingsBuilder{f: f, set: set}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	b.add(config.KeyBrokerClusterName, cfg.ClusterName, "cluster")
	b.add(config.KeyBrokerName, cfg.BrokerName, "name", "group")
	b.add(config.KeyBrokerID, strconv.FormatInt(cfg.BrokerID, 10), "id")
	b.add(config.KeyNamesrvAddr, strings.Join(cfg.NameServers, ";"), "namesrv")
	b.add(config.KeyBrokerIP1, host, "addr")
	b.add(config.KeyListenPort, port, "addr")
	b.add(config.KeyStorePathRootDir, dir, "data")
	flush := "SYNC_FLUSH"
	if cfg.FlushMode == brokernode.AsyncFlush {
		flush = "ASYNC_FLUSH"
	}
	b.add(config.KeyFlushDiskType, flush, "flush")
	b.add(config.KeyBrokerRole, s.role)
	b.add(config.KeyFileReservedTime, formatReservedTime(cfg.FileReservedTime), "file-reserved-time")
	b.add(config.KeyDeleteWhen, formatDeleteWhen(cfg.DeleteWhen), "delete-when")
	b.add(config.KeyDiskMaxUsedSpaceRatio, strconv.Itoa(cfg.DiskMaxUsedSpaceRatio), "disk-max-used-space-ratio")
	b.add(config.KeyDiskFullRatio, strconv.Itoa(cfg.DiskFullRatio), "disk-full-ratio")
	b.add(config.KeyMaxMessageSize, strconv.Itoa(cfg.MaxMessageBytes))
	b.add(config.KeyMaxOpenQueueFiles, strconv.Itoa(cfg.MaxOpenQueueFiles), "max-open-queue-files")
	if s.metrics != "" { // unset: off, which the key cannot say
		b.add(config.KeyMetricsAddr, s.metrics, "metrics-addr")
	}
	b.add(config.KeyAutoCreateTopicEnable, strconv.FormatBool(cfg.AutoCreateTopic), "auto-create-topics")
	b.add(config.KeyDefaultTopicQueueNums, strconv.Itoa(int(cfg.DefaultQueueNums)))
	b.add(config.KeyMessageDelayLevel, formatDelayLevels(cfg.DelayLevels), "delay-levels")
	b.add(config.KeyTransactionTimeOut, strconv.FormatInt(cfg.TxnTimeout.Milliseconds(), 10), "txn-timeout")
	b.add(config.KeyTransactionCheckMax, strconv.Itoa(cfg.TxnCheckMax), "txn-check-max")
	b.add(config.KeyTransactionCheckInterval, strconv.FormatInt(cfg.TxnCheckInterval.Milliseconds(), 10), "txn-check-interval")
	b.add(config.KeyEnablePropertyFilter, strconv.FormatBool(cfg.EnablePropertyFilter), "enable-property-filter")
	b.add(config.KeyStoreReplyMessageEnable, strconv.FormatBool(cfg.StoreReplyMessage), "store-reply-messages")
	b.add(config.KeyTraceTopicEnable, strconv.FormatBool(cfg.TraceTopic != ""), "trace-topic")
	if cfg.TraceTopic != "" {
		b.add(config.KeyMsgTraceTopicName, cfg.TraceTopic, "trace-topic")
	}
	b.add(config.KeyEnableControllerMode, strconv.FormatBool(len(cfg.Controllers) > 0), "controllers")
	if len(cfg.Controllers) > 0 {
		b.add(config.KeyControllerAddr, strings.Join(cfg.Controllers, ";"), "controllers")
		b.add(config.KeyAllAckInSyncStateSet, strconv.FormatBool(cfg.ReplicationMode == brokernode.SyncReplication), "replication")
		b.add(config.KeyMinInSyncReplicas, strconv.Itoa(cfg.MinInSync), "min-insync")
	}
	return b.out
}

// formatReservedTime writes a retention time as fileReservedTime reads it: whole hours as
// RocketMQ writes them, anything else as a duration with its unit.
func formatReservedTime(d time.Duration) string {
	if d > 0 && d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10)
	}
	return d.String()
}

// formatDeleteWhen writes hours as deleteWhen reads them ("04;16").
func formatDeleteWhen(hours []int) string {
	parts := make([]string, len(hours))
	for i, h := range hours {
		parts[i] = fmt.Sprintf("%02d", h)
	}
	return strings.Join(parts, ";")
}

// formatDelayLevels writes delay levels as messageDelayLevel does ("1s 5s ... 2h").
func formatDelayLevels(levels []time.Duration) string {
	parts := make([]string, len(levels))
	for i, d := range levels {
		switch {
		case d%time.Hour == 0:
			parts[i] = fmt.Sprintf("%dh", d/time.Hour)
		case d%time.Minute == 0:
			parts[i] = fmt.Sprintf("%dm", d/time.Minute)
		default:
			parts[i] = d.String()
		}
	}
	return strings.Join(parts, " ")
}

// printConfig writes the effective settings of a command to w, and the RocketMQ keys of the
// file (if any) that Sluice ignores.
func printConfig(w io.Writer, command string, settings []config.Setting, f *config.File) int {
	if err := config.Format(w, "effective configuration of sluice "+command, settings); err != nil {
		return 1
	}
	if f != nil && len(f.Ignored) > 0 {
		if _, err := fmt.Fprintf(w, "# ignored (RocketMQ keys Sluice does not use) in %s: %s\n", f.Path, strings.Join(f.Ignored, ", ")); err != nil {
			return 1
		}
	}
	return 0
}
