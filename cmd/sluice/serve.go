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

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/config"
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

// startNamesrv starts a name server runtime listening on addr, its metrics served by ops.
func startNamesrv(addr string, logger *slog.Logger, ops *opsEndpoint, sec nodeSecurity) (*runtime.Runtime, error) {
	rec := ops.recorder("namesrv")
	cfg := namesrv.DefaultConfig()
	cfg.Metrics = rec
	cfg.Bugs = planted
	rt := runtime.New(sec.apply(transport.apply(runtime.Config{ListenAddr: addr, Logger: logger.With("node", "namesrv"), Metrics: rec, RequestKind: namesrvRequestKind})), nil,
		func(env node.Env) (node.Handler, error) { return namesrv.New(env, cfg), nil })
	if err := rt.Start(); err != nil {
		return nil, fmt.Errorf("start name server: %w", err)
	}
	ops.add("namesrv", rt, rec, nil, false)
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
func startBroker(cfg brokernode.Config, dir string, logger *slog.Logger, vip string, ops *opsEndpoint, sec nodeSecurity) (*runtime.Runtime, error) {
	name := brokerNodeName(cfg)
	rec := ops.recorder(name)
	cfg.Metrics = rec
	cfg.Bugs = planted
	logger = logger.With("node", name)
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
	disk, err := diskfile.Open(dir, diskfile.Options{Logger: logger, Faults: testHooks.disk})
	if err != nil {
		return nil, fmt.Errorf("open broker data directory %s: %w", dir, err)
	}
	if cfg.MaxOpenQueueFiles == 0 {
		cfg.MaxOpenQueueFiles = queueFileBudget(logger)
	}
	var rt *runtime.Runtime
	var b *brokernode.Broker // set and read on the runtime's loop only
	newRuntime := func(extra []string) *runtime.Runtime {
		return runtime.New(sec.apply(transport.apply(runtime.Config{ListenAddr: cfg.Addr, ExtraListenAddrs: extra, Logger: logger, Drain: brokerDrain,
			Metrics: rec, RequestKind: brokerRequestKind})), disk, func(env node.Env) (node.Handler, error) {
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
			ops.add(name, rt, rec, disk, true)
			return rt, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// brokerNodeName names a broker in logs and metrics: its group name, with its replica id in a
// group.
func brokerNodeName(cfg brokernode.Config) string {
	if len(cfg.Controllers) > 0 {
		return fmt.Sprintf("%s-%d", cfg.BrokerName, cfg.BrokerID) // which replica of the group
	}
	return cfg.BrokerName
}

// defaultShutdownTimeout bounds a clean stop's drain of in-flight requests.
const defaultShutdownTimeout = 10 * time.Second

// stoppable is one node of the process for waitForStop: its runtime, and for a broker, how to
// take it out of the name servers' routes.
type stoppable struct {
	rt         *runtime.Runtime // its stopping by itself ends the process
	unregister func()
	// shutdown, for an entry without rt, shuts down nodes the process may stop and start
	// while it runs (sluice dev's replicas).
	shutdown func(timeout time.Duration) error
}

// stopSignals receives SIGINT and SIGTERM once trapStopSignals has run. The commands that
// run nodes trap them first thing, so a signal that comes while they start (after they have
// printed that they listen, before they wait) is not the default action, which would kill
// the process without a flush, but waits here for waitForStop.
var stopSignals = make(chan os.Signal, 2)

// trapStopSignals sends SIGINT and SIGTERM to stopSignals instead of killing the process.
func trapStopSignals() { signal.Notify(stopSignals, os.Interrupt, syscall.SIGTERM) }

// waitForStop blocks until SIGINT/SIGTERM or until one node stops by itself. On a signal it
// shuts the nodes down in the reverse of the order given (a broker before the name server it
// registered with): each stops accepting, is unregistered from the name servers, answers or
// refuses what is in flight within timeout, flushes and closes; the process then exits 0, or 1
// if a flush failed. A second signal exits at once (1). A node that stopped by itself stops
// the others and exits 1.
func waitForStop(logger *slog.Logger, timeout time.Duration, nodes ...stoppable) int {
	trapStopSignals()
	sig := stopSignals
	defer signal.Stop(sig)
	failed := make(chan *runtime.Runtime, len(nodes))
	for _, n := range nodes {
		if n.rt != nil {
			go func() { <-n.rt.Done(); failed <- n.rt }()
		}
	}
	select {
	case s := <-sig:
		logger.Info("shutting down: draining requests, then flushing (a second signal exits at once)", "signal", s.String(), "timeout", timeout)
	case rt := <-failed:
		if err := rt.Err(); errors.Is(err, runtime.ErrFailed) || errors.Is(err, runtime.ErrPanic) {
			// The runtime logged the error when it stopped the node: one ERROR line says it.
			logger.Warn("stopping the process, which exits 1, after the node error above")
		} else {
			logger.Error("a node stopped unexpectedly", "err", err)
		}
		for _, n := range nodes {
			if n.rt != nil {
				n.rt.Stop()
			} else {
				_ = n.shutdown(0)
			}
		}
		fmt.Println("sluice: stopped")
		return 1
	}
	done := make(chan int, 1)
	go func() { done <- shutdownAll(logger, timeout, nodes) }()
	// A bound on the whole stop, whatever a node does: the drain's timeout plus the flush.
	hard := time.NewTimer(timeout + 10*time.Second)
	defer hard.Stop()
	select {
	case code := <-done:
		fmt.Println("sluice: stopped")
		return code
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "sluice: second signal (%s): exiting without finishing the shutdown\n", s)
		return 1
	case <-hard.C:
		fmt.Fprintln(os.Stderr, "sluice: shutdown did not finish in time: exiting")
		return 1
	}
}

// shutdownAll shuts the nodes down, last first, and returns the exit code.
func shutdownAll(logger *slog.Logger, timeout time.Duration, nodes []stoppable) int {
	code := 0
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		unregistered := make(chan struct{})
		go func() {
			defer close(unregistered)
			if n.unregister != nil {
				n.unregister()
			}
		}()
		var err error
		if n.rt != nil {
			err = n.rt.Shutdown(timeout)
		} else {
			err = n.shutdown(timeout)
		}
		<-unregistered
		switch {
		case errors.Is(err, runtime.ErrFlush):
			logger.Error("shutdown: flush failed", "err", err)
			code = 1
		case err != nil:
			logger.Warn("shutdown: stopped with requests unanswered", "err", err)
		}
	}
	return code
}

// brokerDrain is a broker's DrainPolicy: while it shuts down, sends and pulls are refused with
// SERVICE_NOT_AVAILABLE (RocketMQ clients retry a send on another broker, and pull again
// later), and long-polling pulls and replica fetches do not hold the drain up. Sends already
// taken are answered once their fsync (or replication) completes.
var brokerDrain = runtime.DrainPolicy{
	Refuse: func(code int16) bool {
		switch code {
		case codec.ReqSendMessage, codec.ReqSendMessageV2, codec.ReqSendBatchMessage, codec.ReqSendReplyMessage,
			codec.ReqSendReplyMessageV2, codec.ReqConsumerSendMsgBack, codec.ReqPullMessage:
			return true
		}
		return false
	},
	Parks:  func(code int16) bool { return code == codec.ReqPullMessage || code == codec.ReqReplicaFetch },
	Code:   codec.ServiceNotAvailable,
	Remark: "broker is shutting down",
}

// brokerUnregister returns a func that takes the broker out of its name servers' routes
// (UNREGISTER_BROKER), so clients stop choosing it while it drains. The name servers drop it
// anyway when its connections close; this is the early notice.
func brokerUnregister(cfg brokernode.Config, sec nodeSecurity) func() {
	return func() {
		cli := adminclient.New(cfg.NameServers, 2*time.Second)
		defer cli.Close()
		for _, ns := range cfg.NameServers {
			req := codec.NewRequest(codec.ReqUnregisterBroker, map[string]string{
				"brokerName": cfg.BrokerName, "brokerAddr": cfg.Addr, "clusterName": cfg.ClusterName,
				"brokerId": strconv.FormatInt(cfg.BrokerID, 10),
			}, nil)
			if _, err := cli.Call(ns, sec.signRequest(req)); err != nil {
				slog.Default().Debug("unregister from name server", "namesrv", ns, "err", err)
			}
		}
	}
}

// prepareDataDir creates a node's data directory if it is missing and checks that it can be
// written, so a bad --data is reported as what it is before anything starts.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Path, pe.Err)
		}
		return fmt.Errorf("data directory %s cannot be created: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".sluice-write-check-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func brokerFlags(fs *flag.FlagSet, cfg *brokernode.Config, flush, vip *string) {
	fs.StringVar(vip, "vip-addr", cmp.Or(*vip, vipAuto), "the VIP channel's listen address, which Java clients with vipChannelEnabled send to: "+
		"auto (the listen port - 2, as a Java broker, if free), an address, or off")
	fs.StringVar(&cfg.BrokerName, "name", cfg.BrokerName, "broker group name")
	retentionFlags(fs, cfg)
	fs.IntVar(&cfg.MaxOpenQueueFiles, "max-open-queue-files", cfg.MaxOpenQueueFiles,
		"consume-queue logs kept open at once, two file descriptors each; idle ones are closed and reopened on demand "+
			"(0: derived from the process's descriptor limit at start)")
	fs.Uint64Var(&cfg.RecentHeadEntries, "recent-head-entries", brokernode.DefaultRecentHeadEntries,
		"a consumer group without an offset on a queue whose first message is within this many commit-log entries "+
			"of the end starts at offset 0 whatever its consumeFromWhere (Java's 'head still in memory' rule)")
	fs.StringVar(&cfg.ClusterName, "cluster", cfg.ClusterName, "cluster name")
	fs.StringVar(flush, "flush", cmp.Or(*flush, "sync"), "flush mode: sync (acknowledge after fsync) or async")
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
	trapStopSignals()
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	data := fs.String("data", "./data", "data directory")
	nsAddr := fs.String("namesrv-addr", "127.0.0.1:9876", "name server listen address")
	cfg := brokernode.DefaultConfig()
	fs.StringVar(&cfg.Addr, "broker-addr", cfg.Addr, "broker listen address (a literal IP:port)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until stopped")
	shutdown := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "how long a SIGTERM or SIGINT may take to drain requests, flush and close before the process exits anyway")
	metricsAddr := metricsFlag(fs, devMetricsAddr)
	consoleAddr := fs.String("console-addr", defaultConsoleAddr, "serve the web console on this address (off or empty: none)")
	readyTimeout := fs.Duration("ready-timeout", defaultDevReadyTimeout, "at start, wait this long for every node to be ready (as /readyz) before saying so; 0: do not wait")
	replicas := fs.Int("replicas", 1, "1: one broker; 2 to 5: a controller and a broker group of that many replicas, whose master is printed as it changes (stdin takes kill N, stop N, start N, status)")
	tlsFlags := devTLSFlags(fs)
	var flush, vip string
	brokerFlags(fs, &cfg, &flush, &vip)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *replicas < 1 || *replicas > 5 { // before anything listens
		fmt.Fprintf(os.Stderr, "sluice dev: --replicas %d: want 1 (a single broker) or 2 to 5 (a replicated group)\n", *replicas)
		return 2
	}
	if err := setTransport(tlsFlags()); err != nil {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
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
	if *replicas == 1 {
		if err := prepareDataDir(filepath.Join(*data, cfg.BrokerName)); err != nil {
			fmt.Fprintln(os.Stderr, "sluice dev:", err)
			return 1
		}
	}
	ops, err := startOps(*metricsAddr, logger)
	if err != nil && !flagsSet(fs)["metrics-addr"] {
		// The default address taken (another sluice dev): run without, as the VIP channel does.
		logger.Warn("no metrics endpoint: its default address is taken (set --metrics-addr)", "err", err)
		ops, err = nil, nil
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice dev:", err, "(--metrics-addr '' turns metrics off)")
		return 1
	}
	defer ops.close()
	if *replicas != 1 {
		return runDevGroup(devGroupOptions{replicas: *replicas, data: *data, nsAddr: *nsAddr, brokerAddr: cfg.Addr,
			shutdown: *shutdown, set: flagsSet(fs), ops: ops, readyTimeout: *readyTimeout, consoleAddr: *consoleAddr}, cfg, logger)
	}
	ns, err := startNamesrv(*nsAddr, logger, ops, nodeSecurity{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 1
	}
	cfg.NameServers = []string{ns.Addr().String()}
	br, err := startBroker(cfg, filepath.Join(*data, cfg.BrokerName), logger, vip, ops, nodeSecurity{})
	if err != nil {
		ns.Stop()
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 1
	}
	fmt.Printf("sluice dev: name server listening on %s\n", ns.Addr())
	fmt.Printf("sluice dev: broker %s listening on %s%s (data %s, %s flush)\n", cfg.BrokerName, br.Addr(), vipNote(br),
		filepath.Join(*data, cfg.BrokerName), cfg.FlushMode)
	printOps(ops)
	announceReady([]readyCheck{runtimeCheck("namesrv", ns), runtimeCheck(brokerNodeName(cfg), br)}, *readyTimeout, ops)
	nodes := []stoppable{{rt: ns}, {rt: br, unregister: brokerUnregister(cfg, nodeSecurity{})}}
	con, err := devConsole(*consoleAddr, flagsSet(fs)["console-addr"], ns.Addr().String(), logger)
	if err != nil {
		br.Stop()
		ns.Stop()
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return 1
	}
	fmt.Println("sluice dev: press Ctrl-C to stop")
	return waitForStop(logger, *shutdown, withConsole(nodes, con)...)
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
	trapStopSignals()
	file, err := loadConfig(args, config.NameServer)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 2
	}
	if err := setTransport(transportFromFile(file)); err != nil {
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 2
	}
	addr, ctlDefaults := "127.0.0.1:9876", defaultControllerFlags()
	if file != nil {
		if file.Has(config.KeyListenPort) || file.Has(config.KeyBindAddress) {
			host, port := "0.0.0.0", "9876" // RocketMQ's name server binds every interface
			if file.Has(config.KeyBindAddress) {
				host = file.String(config.KeyBindAddress)
			}
			if file.Has(config.KeyListenPort) {
				port = strconv.FormatInt(file.Int(config.KeyListenPort), 10)
			}
			addr = net.JoinHostPort(host, port)
		}
		ctlDefaults.enabled = file.Bool(config.KeyEnableControllerInNamesrv)
		applyControllerFile(file, &ctlDefaults)
	}
	fs := flag.NewFlagSet("namesrv", flag.ContinueOnError)
	printCfg := configFlag(fs, "namesrv.conf")
	fs.StringVar(&addr, "addr", addr, "listen address")
	metricsAddr := metricsFlag(fs, metricsAddrOf(file))
	level := fs.String("log-level", "info", "log level")
	shutdown := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "how long a SIGTERM or SIGINT may take to drain requests and close before the process exits anyway")
	embedded := embeddedControllerFlags(fs, ctlDefaults)
	if code, ok := parseFlags(fs, args); !ok {
		return code
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
	if *printCfg {
		set := flagsSet(fs)
		b := &settingsBuilder{f: file, set: set}
		host, port, _ := net.SplitHostPort(addr)
		b.add(config.KeyBindAddress, host, "addr")
		b.add(config.KeyListenPort, port, "addr")
		b.add(config.KeyEnableControllerInNamesrv, strconv.FormatBool(withController), "controller")
		if *metricsAddr != "" { // unset: off, which the key cannot say
			b.add(config.KeyMetricsAddr, *metricsAddr, "metrics-addr")
		}
		if withController {
			controllerEffective(b, copts, "controller-")
		}
		aclEffective(b, aclSettingsOf(file))
		return printConfig(os.Stdout, "namesrv", b.out, file)
	}
	reportFile(logger, file)
	if withController {
		if err := prepareDataDir(copts.dir()); err != nil {
			fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
			return 1
		}
	}
	ops, err := startOps(*metricsAddr, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 1
	}
	defer ops.close()
	sec, err := startACL(aclSettingsOf(file), logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 2
	}
	ns, err := startNamesrv(addr, logger, ops, sec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 1
	}
	fmt.Printf("sluice namesrv: listening on %s\n", ns.Addr())
	if !withController {
		printOps(ops)
		return waitForStop(logger, *shutdown, stoppable{rt: ns})
	}
	ctl, dir, err := startController(copts, logger, ops, sec)
	if err != nil {
		ns.Stop()
		fmt.Fprintln(os.Stderr, "sluice namesrv:", err)
		return 1
	}
	fmt.Printf("sluice namesrv: controller member %d listening on %s (data %s)\n", copts.id, ctl.Addr(), dir)
	printOps(ops)
	return waitForStop(logger, *shutdown, stoppable{rt: ns}, stoppable{rt: ctl})
}

func runBroker(args []string) int {
	trapStopSignals()
	file, err := loadConfig(args, config.Broker)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	if err := setTransport(transportFromFile(file)); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	cfg := brokernode.DefaultConfig()
	st := defaultBrokerSettings()
	if err := applyBrokerFile(file, &cfg, &st); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	printCfg := configFlag(fs, "broker.conf")
	fs.StringVar(&st.data, "data", st.data, "data directory (the broker uses DIR/<name>, or DIR/<name>-<id> in a group; storePathRootDir in a config file names the broker's own directory)")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (a literal IP:port)")
	fs.StringVar(&st.ns, "namesrv", st.ns, "name server addresses, ';'-separated")
	fs.StringVar(&st.level, "log-level", st.level, "log level")
	fs.StringVar(&st.metrics, "metrics-addr", st.metrics, metricsFlagUsage)
	shutdown := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "how long a SIGTERM or SIGINT may take to drain requests, flush and close before the process exits anyway")
	brokerFlags(fs, &cfg, &st.flush, &st.vip)
	group := groupFlags(fs, &cfg, &st)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	set := flagsSet(fs)
	logger, err := newLogger(st.level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	if err := group.apply(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	dir := filepath.Join(st.data, cfg.BrokerName)
	if len(cfg.Controllers) > 0 {
		dir = filepath.Join(st.data, fmt.Sprintf("%s-%d", cfg.BrokerName, cfg.BrokerID))
	}
	if st.storeRoot != "" && !set["data"] {
		dir = st.storeRoot
	}
	if cfg.FlushMode, err = brokernode.ParseFlushMode(st.flush); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	if err := cfg.CheckTxnSettings(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	cfg.NameServers = strings.Split(st.ns, ";")
	if *printCfg {
		b := &settingsBuilder{f: file, set: set, out: brokerEffective(file, set, cfg, st, dir)}
		aclEffective(b, aclSettingsOf(file))
		return printConfig(os.Stdout, "broker", b.out, file)
	}
	reportFile(logger, file)
	if err := prepareDataDir(dir); err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 1
	}
	ops, err := startOps(st.metrics, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 1
	}
	defer ops.close()
	sec, err := startACL(aclSettingsOf(file), logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 2
	}
	br, err := startBroker(cfg, dir, logger, st.vip, ops, sec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice broker:", err)
		return 1
	}
	if len(cfg.Controllers) > 0 {
		fmt.Printf("sluice broker: %s replica %d listening on %s%s (data %s, %s replication, controllers %s; the controllers pick its role)\n",
			cfg.BrokerName, cfg.BrokerID, br.Addr(), vipNote(br), dir, cfg.ReplicationMode, strings.Join(cfg.Controllers, ";"))
	} else {
		fmt.Printf("sluice broker: %s listening on %s%s (data %s)\n", cfg.BrokerName, br.Addr(), vipNote(br), dir)
	}
	printOps(ops)
	return waitForStop(logger, *shutdown, stoppable{rt: br, unregister: brokerUnregister(cfg, sec)})
}

// groupSettings are the broker-group flags of 'sluice broker'.
type groupSettings struct {
	controllers string
	replication string
}

// groupFlags declares --group (the same as --name), --id, --controllers, --replication and
// --min-insync, with st's values (a config file's) as defaults.
func groupFlags(fs *flag.FlagSet, cfg *brokernode.Config, st *brokerSettings) *groupSettings {
	g := &groupSettings{controllers: st.controllers, replication: st.replication}
	if cfg.MinInSync == 0 {
		cfg.MinInSync = 1
	}
	fs.StringVar(&cfg.BrokerName, "group", cfg.BrokerName, "broker group name (the same as -name)")
	fs.Int64Var(&cfg.BrokerID, "id", cfg.BrokerID, "replica id within the group (at least 1 with -controllers)")
	fs.StringVar(&g.controllers, "controllers", g.controllers, "controller member addresses, ';'- or ','-separated; with any, the broker is a replica of its group and the controller picks its master")
	fs.StringVar(&g.replication, "replication", g.replication, "replication mode of the group: sync (acknowledge once the in-sync replicas hold a write) or async")
	fs.IntVar(&cfg.MinInSync, "min-insync", cfg.MinInSync, "least in-sync replicas (the master counted) for a sync-mode master to acknowledge writes")
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
