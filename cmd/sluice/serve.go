package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/namesrv"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/runtime"
)

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// startNamesrv starts a name server runtime listening on addr.
func startNamesrv(addr string, logger *slog.Logger) (*runtime.Runtime, error) {
	rt := runtime.New(runtime.Config{ListenAddr: addr, Logger: logger.With("node", "namesrv")}, nil,
		func(env node.Env) (node.Handler, error) { return namesrv.New(env, namesrv.DefaultConfig()), nil })
	if err := rt.Start(); err != nil {
		return nil, fmt.Errorf("start name server: %w", err)
	}
	return rt, nil
}

// vipNote says where the broker's VIP channel listens, for its startup line ("" if nowhere).
func vipNote(rt *runtime.Runtime) string {
	if a := rt.ExtraAddrs(); len(a) > 0 {
		return fmt.Sprintf(", VIP channel %s", a[0])
	}
	return ""
}

// vipAuto is the --vip-addr value that means "listen port - 2 on the same host, if free".
const vipAuto = "auto"

// vipChannelAddr is a Java broker's VIP channel address for a broker listening on addr: the
// same host, port listenPort-2 (BrokerStartup: fastListenPort = listenPort - 2; 10909 for
// 10911). Java clients with vipChannelEnabled (the default before 4.5.1, and an option since)
// send to it. There is none for port 0 (picked by the system) or a port below 3.
func vipChannelAddr(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 3 {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(p-2)), true
}

// startBroker opens the broker's disk under dir and starts its runtime listening on cfg.Addr,
// and on the VIP channel: vip is an address, "off", or "auto" (listen port - 2, skipped with a
// warning when it cannot be listened on, since nothing needs it but Java clients that enable
// it). The VIP channel's connections go to the same node, which cannot tell them apart.
func startBroker(cfg brokernode.Config, dir string, logger *slog.Logger, vip string) (*runtime.Runtime, error) {
	logger = logger.With("node", cfg.BrokerName)
	var extra []string
	switch vip {
	case "off", "":
	case vipAuto:
		if a, ok := vipChannelAddr(cfg.Addr); ok {
			extra = []string{a}
		}
	default:
		extra = []string{vip}
	}
	disk, err := diskfile.Open(dir, diskfile.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open broker data directory %s: %w", dir, err)
	}
	var rt *runtime.Runtime
	var b *brokernode.Broker // set and read on the runtime's loop only
	newRuntime := func(extra []string) *runtime.Runtime {
		return runtime.New(runtime.Config{ListenAddr: cfg.Addr, ExtraListenAddrs: extra, Logger: logger}, disk, func(env node.Env) (node.Handler, error) {
			c := cfg
			if strings.HasSuffix(c.Addr, ":0") {
				c.Addr = rt.Addr().String()
			}
			var err error
			b, err = brokernode.New(env, c)
			return b, err
		})
	}
	rt = newRuntime(extra)
	err = rt.Start()
	if errors.Is(err, runtime.ErrExtraListen) && vip == vipAuto {
		logger.Warn("no VIP channel: its port is taken (Java clients with vipChannelEnabled cannot reach this broker)", "err", err)
		rt = newRuntime(nil)
		err = rt.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("start broker %s: %w", cfg.BrokerName, err)
	}
	// Until the recovered commit log has been synced once the broker answers sends and pulls
	// with "recovering": return (and let callers say "listening") only once it serves.
	for {
		var ready bool
		if err := rt.Do(func() { ready = b.Ready() }); err != nil {
			return nil, fmt.Errorf("start broker %s: stopped before it was ready: %w", cfg.BrokerName, cmp.Or(rt.Err(), err))
		}
		if ready {
			return rt, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitForStop blocks until SIGINT/SIGTERM or until one runtime stops by itself, then stops all.
func waitForStop(logger *slog.Logger, rts ...*runtime.Runtime) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	failed := make(chan *runtime.Runtime, len(rts))
	for _, rt := range rts {
		go func() { <-rt.Done(); failed <- rt }()
	}
	code := 0
	select {
	case s := <-sig:
		logger.Info("stopping", "signal", s.String())
	case rt := <-failed:
		logger.Error("a node stopped unexpectedly", "err", rt.Err())
		code = 1
	}
	for _, rt := range rts {
		rt.Stop()
	}
	fmt.Println("sluice: stopped")
	return code
}

func brokerFlags(fs *flag.FlagSet, cfg *brokernode.Config, flush, vip *string) {
	fs.StringVar(vip, "vip-addr", vipAuto, "the VIP channel's listen address, which Java clients with vipChannelEnabled send to: "+
		"auto (the listen port - 2, as a Java broker, if free), an address, or off")
	fs.StringVar(&cfg.BrokerName, "name", cfg.BrokerName, "broker group name")
	retentionFlags(fs, cfg)
	fs.Uint64Var(&cfg.RecentHeadEntries, "recent-head-entries", brokernode.DefaultRecentHeadEntries,
		"a consumer group without an offset on a queue whose first message is within this many commit-log entries "+
			"of the end starts at offset 0 whatever its consumeFromWhere (Java's 'head still in memory' rule)")
	fs.StringVar(&cfg.ClusterName, "cluster", cfg.ClusterName, "cluster name")
	fs.StringVar(flush, "flush", "sync", "flush mode: sync (acknowledge after fsync) or async")
	fs.BoolVar(&cfg.AutoCreateTopic, "auto-create-topics", cfg.AutoCreateTopic, "create unknown topics on first send")
	fs.BoolVar(&cfg.StoreReplyMessage, "store-reply-messages", cfg.StoreReplyMessage,
		"store reply messages (request/reply) in <cluster>_REPLY_TOPIC besides pushing them to their requesters")
	fs.BoolVar(&cfg.EnablePropertyFilter, "enable-property-filter", cfg.EnablePropertyFilter,
		"let consumers subscribe with SQL92 selectors over message properties")
	fs.StringVar(&cfg.TraceTopic, "trace-topic", cfg.TraceTopic,
		"the topic traced clients send their trace records to, created at start (1 queue); empty: none")
	fs.Func("delay-levels", "delay of each delay level, level 1 first, space-separated (default \""+
		brokernode.DefaultDelayLevels+"\")", func(s string) error {
		levels, err := brokernode.ParseDelayLevels(s)
		if err != nil {
			return err
		}
		cfg.DelayLevels = levels
		return nil
	})
	fs.DurationVar(&cfg.LockLease, "lock-lease", cfg.LockLease,
		"how long an orderly consumer's queue lock lasts without renewal before another client may take the queue")
	fs.DurationVar(&cfg.TxnCheckInterval, "txn-check-interval", cfg.TxnCheckInterval,
		"how often unresolved transactional messages are checked back with their producers")
	fs.DurationVar(&cfg.TxnTimeout, "txn-timeout", cfg.TxnTimeout, "age at which an unresolved transactional message is checked back")
	fs.IntVar(&cfg.TxnCheckMax, "txn-check-max", cfg.TxnCheckMax, "checks of a transactional message before it is discarded")
}

func runDev(args []string) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	data := fs.String("data", "./data", "data directory")
	nsAddr := fs.String("namesrv-addr", "127.0.0.1:9876", "name server listen address")
	cfg := brokernode.DefaultConfig()
	fs.StringVar(&cfg.Addr, "broker-addr", cfg.Addr, "broker listen address (a literal IP:port)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until stopped")
	var flush, vip string
	brokerFlags(fs, &cfg, &flush, &vip)
	if fs.Parse(args) != nil {
		return 2
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sluice dev:", err)
			return 1
		}
		defer stop()
	}
	logger, err := newLogger(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 2
	}
	if cfg.FlushMode, err = brokernode.ParseFlushMode(flush); err != nil {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 2
	}
	if err := cfg.CheckTxnSettings(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 2
	}
	ns, err := startNamesrv(*nsAddr, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 1
	}
	cfg.NameServers = []string{ns.Addr().String()}
	br, err := startBroker(cfg, filepath.Join(*data, cfg.BrokerName), logger, vip)
	if err != nil {
		ns.Stop()
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 1
	}
	fmt.Printf("sluice dev: name server listening on %s\n", ns.Addr())
	fmt.Printf("sluice dev: broker %s listening on %s%s (data %s, %s flush)\n", cfg.BrokerName, br.Addr(), vipNote(br),
		filepath.Join(*data, cfg.BrokerName), cfg.FlushMode)
	fmt.Println("sluice dev: press Ctrl-C to stop")
	return waitForStop(logger, ns, br)
}

// startCPUProfile profiles the process into path; the returned func stops and closes it.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func runNamesrv(args []string) int {
	fs := flag.NewFlagSet("namesrv", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9876", "listen address")
	level := fs.String("log-level", "info", "log level")
	embedded := embeddedControllerFlags(fs)
	if fs.Parse(args) != nil {
		return 2
	}
	logger, err := newLogger(*level)
	withController, copts, cerr := embedded()
	if err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 2
	}
	ns, err := startNamesrv(*addr, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 1
	}
	fmt.Printf("sluice namesrv: listening on %s\n", ns.Addr())
	if !withController {
		return waitForStop(logger, ns)
	}
	ctl, dir, err := startController(copts, logger)
	if err != nil {
		ns.Stop()
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 1
	}
	fmt.Printf("sluice namesrv: controller member %d listening on %s (data %s)\n", copts.id, ctl.Addr(), dir)
	return waitForStop(logger, ns, ctl)
}

func runBroker(args []string) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	cfg := brokernode.DefaultConfig()
	data := fs.String("data", "./data", "data directory (the broker uses DIR/<name>)")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (a literal IP:port)")
	ns := fs.String("namesrv", "127.0.0.1:9876", "name server addresses, ';'-separated")
	level := fs.String("log-level", "info", "log level")
	var flush, vip string
	brokerFlags(fs, &cfg, &flush, &vip)
	group := groupFlags(fs, &cfg)
	if fs.Parse(args) != nil {
		return 2
	}
	logger, err := newLogger(*level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	dir := filepath.Join(*data, cfg.BrokerName)
	if err := group.apply(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	if len(cfg.Controllers) > 0 {
		dir = filepath.Join(*data, fmt.Sprintf("%s-%d", cfg.BrokerName, cfg.BrokerID))
	}
	if cfg.FlushMode, err = brokernode.ParseFlushMode(flush); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	if err := cfg.CheckTxnSettings(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	cfg.NameServers = strings.Split(*ns, ";")
	br, err := startBroker(cfg, dir, logger, vip)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 1
	}
	if len(cfg.Controllers) > 0 {
		fmt.Printf("sluice broker: %s replica %d listening on %s%s (data %s, %s replication, controllers %s)\n",
			cfg.BrokerName, cfg.BrokerID, br.Addr(), vipNote(br), dir, cfg.ReplicationMode, strings.Join(cfg.Controllers, ";"))
	} else {
		fmt.Printf("sluice broker: %s listening on %s%s\n", cfg.BrokerName, br.Addr(), vipNote(br))
	}
	return waitForStop(logger, br)
}

// groupSettings are the broker-group flags of 'sluice broker'.
type groupSettings struct {
	controllers string
	replication string
}

// groupFlags declares --group (the same as --name), --id, --controllers, --replication and
// --min-insync.
func groupFlags(fs *flag.FlagSet, cfg *brokernode.Config) *groupSettings {
	g := &groupSettings{}
	fs.StringVar(&cfg.BrokerName, "group", cfg.BrokerName, "broker group name (the same as -name)")
	fs.Int64Var(&cfg.BrokerID, "id", cfg.BrokerID, "replica id within the group (at least 1 with -controllers)")
	fs.StringVar(&g.controllers, "controllers", "", "controller member addresses, ';'- or ','-separated; with any, the broker is a replica of its group and the controller picks its master")
	fs.StringVar(&g.replication, "replication", "sync", "replication mode of the group: sync (acknowledge once the in-sync replicas hold a write) or async")
	fs.IntVar(&cfg.MinInSync, "min-insync", 1, "least in-sync replicas (the master counted) for a sync-mode master to acknowledge writes")
	return g
}

func (g *groupSettings) apply(cfg *brokernode.Config) error {
	for _, a := range strings.FieldsFunc(g.controllers, func(r rune) bool { return r == ';' || r == ',' }) {
		cfg.Controllers = append(cfg.Controllers, strings.TrimSpace(a))
	}
	mode, err := brokernode.ParseReplicationMode(g.replication)
	if err != nil {
		return err
	}
	cfg.ReplicationMode = mode
	if len(cfg.Controllers) > 0 && cfg.BrokerID < 1 {
		return fmt.Errorf("-id must be at least 1 for a replica of a broker group (got %d)", cfg.BrokerID)
	}
	if cfg.MinInSync < 1 {
		return fmt.Errorf("-min-insync must be at least 1 (got %d)", cfg.MinInSync)
	}
	return nil
}
