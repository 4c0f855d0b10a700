package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/controller"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/runtime"
)

// controllerOptions are the flags of one controller member, standalone or embedded.
type controllerOptions struct {
	id     uint64
	peers  map[uint64]string
	data   string
	exact  string // the member's own directory (controllerStorePath); "" uses DATA/controller-ID
	listen string // "" listens on the member's own peer address
}

// dir is the member's data directory.
func (o controllerOptions) dir() string {
	if o.exact != "" {
		return o.exact
	}
	return filepath.Join(o.data, "controller-"+strconv.FormatUint(o.id, 10))
}

// controllerFlagValues are the defaults of a controller member's flags: Sluice's, or a config
// file's.
type controllerFlagValues struct {
	enabled bool // embedded: run a member at all
	id      uint64
	peers   string // "1=ip:port,2=ip:port"
	data    string
	exact   string
}

func defaultControllerFlags() controllerFlagValues {
	return controllerFlagValues{id: 1, peers: "1=127.0.0.1:9878", data: "./data"}
}

// applyControllerFile takes a member's settings from controllerDLegerPeers (members numbered
// from 1 in the order listed), controllerDLegerSelfId and controllerStorePath.
func applyControllerFile(f *config.File, v *controllerFlagValues) {
	members, _ := f.ControllerMembers() // checked by config.Parse
	if len(members) > 0 {
		self, _ := f.Self(members)
		var parts []string
		for _, m := range members {
			parts = append(parts, fmt.Sprintf("%d=%s", m.ID, m.Addr))
		}
		v.peers, v.id = strings.Join(parts, ","), self.ID
	}
	if f.Has(config.KeyControllerStorePath) {
		v.exact = f.String(config.KeyControllerStorePath)
	}
}

// controllerEffective adds a member's settings under RocketMQ's keys; prefix is the flags'
// prefix ("controller-" when embedded in a name server).
func controllerEffective(b *settingsBuilder, o controllerOptions, prefix string) {
	ids := make([]uint64, 0, len(o.peers))
	for id := range o.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("n%d-%s", id-1, o.peers[id]))
	}
	b.add(config.KeyControllerPeers, strings.Join(parts, ";"), prefix+"peers")
	b.add(config.KeyControllerSelfID, fmt.Sprintf("n%d", o.id-1), prefix+"id")
	b.add(config.KeyControllerStorePath, o.dir(), prefix+"data")
}

// parsePeers parses "1=ip:port,2=ip:port,3=ip:port".
func parsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		idText, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil || id == 0 || addr == "" {
			return nil, fmt.Errorf("controller peer %q: want id=ip:port with an id of at least 1", part)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("controller peer id %d listed twice", id)
		}
		peers[id] = addr
	}
	return peers, nil
}

// A member that could not persist raft state reports it through Failed; the runtime then stops
// the node and waitForStop makes the process exit 1 for its supervisor to restart it.
var _ interface{ Failed() error } = (*controller.Controller)(nil)

// controllerNodeName names controller member id in logs and metrics.
func controllerNodeName(id uint64) string { return "controller-" + strconv.FormatUint(id, 10) }

// startController opens the member's data directory (DATA/controller-ID) and starts it.
func startController(o controllerOptions, logger *slog.Logger, ops *opsEndpoint, sec nodeSecurity) (*runtime.Runtime, string, error) {
	cfg := controller.DefaultConfig(o.id, o.peers)
	name := controllerNodeName(o.id)
	rec := ops.recorder(name)
	cfg.Metrics = rec
	cfg.Bugs = planted
	listen := o.listen
	if listen == "" {
		listen = o.peers[o.id]
	}
	dir := o.dir()
	logger = logger.With("node", name)
	disk, err := diskfile.Open(dir, diskfile.Options{Logger: logger, Faults: testHooks.disk})
	if err != nil {
		return nil, "", fmt.Errorf("open controller data directory %s: %w", dir, err)
	}
	rt := runtime.New(sec.apply(transport.apply(runtime.Config{ListenAddr: listen, Logger: logger, Metrics: rec})), disk,
		func(env node.Env) (node.Handler, error) { return controller.New(env, cfg) })
	if err := rt.Start(); err != nil {
		return nil, "", fmt.Errorf("start controller member %d: %w", o.id, err)
	}
	ops.add(name, rt, rec, disk, false)
	return rt, dir, nil
}

func runController(args []string) int {
	trapStopSignals()
	file, err := loadConfig(args, config.Controller)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 2
	}
	if err := setTransport(transportFromFile(file)); err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 2
	}
	v := defaultControllerFlags()
	if file != nil {
		applyControllerFile(file, &v)
	}
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	printCfg := configFlag(fs, "controller.conf")
	o := controllerOptions{exact: v.exact}
	fs.Uint64Var(&o.id, "id", v.id, "this member's id (one of --peers)")
	peers := fs.String("peers", v.peers, "every member as id=ip:port, comma-separated (1 or 3 members)")
	fs.StringVar(&o.data, "data", v.data, "data directory (the member uses DIR/controller-<id>)")
	fs.StringVar(&o.listen, "addr", "", "listen address (default: this member's address in --peers)")
	metricsAddr := metricsFlag(fs, metricsAddrOf(file))
	level := fs.String("log-level", "info", "log level")
	shutdown := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "how long a SIGTERM or SIGINT may take to drain requests and close before the process exits anyway")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	set := flagsSet(fs)
	if set["data"] {
		o.exact = ""
	}
	logger, err := newLogger(*level)
	if err == nil {
		o.peers, err = parsePeers(*peers)
	}
	if err == nil {
		err = o.check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 2
	}
	if *printCfg {
		b := &settingsBuilder{f: file, set: set}
		controllerEffective(b, o, "")
		if *metricsAddr != "" { // unset: off, which the key cannot say
			b.add(config.KeyMetricsAddr, *metricsAddr, "metrics-addr")
		}
		aclEffective(b, aclSettingsOf(file))
		return printConfig(os.Stdout, "controller", b.out, file)
	}
	reportFile(logger, file)
	if err := prepareDataDir(o.dir()); err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 1
	}
	ops, err := startOps(*metricsAddr, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 1
	}
	defer ops.close()
	sec, err := startACL(aclSettingsOf(file), logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 2
	}
	rt, dir, err := startController(o, logger, ops, sec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 1
	}
	fmt.Printf("sluice controller: member %d listening on %s (data %s)\n", o.id, rt.Addr(), dir)
	printOps(ops)
	return waitForStop(logger, *shutdown, stoppable{rt: rt})
}

// check reports options that cannot start a member: an id that is not one of the peers.
func (o controllerOptions) check() error {
	if _, ok := o.peers[o.id]; !ok {
		return fmt.Errorf("controller id %d is not one of the peers", o.id)
	}
	return nil
}

// embeddedControllerFlags adds the flags that run a controller member inside another command
// (sluice namesrv --controller ...), with v's values as defaults. The returned func reports
// whether one was asked for and its options.
func embeddedControllerFlags(fs *flag.FlagSet, v controllerFlagValues) func() (bool, controllerOptions, error) {
	enabled := fs.Bool("controller", v.enabled, "also run a controller member in this process")
	o := controllerOptions{exact: v.exact}
	fs.Uint64Var(&o.id, "controller-id", v.id, "the embedded controller member's id (one of --controller-peers)")
	peers := fs.String("controller-peers", v.peers, "every controller member as id=ip:port, comma-separated")
	fs.StringVar(&o.data, "controller-data", v.data, "the embedded controller's data directory (it uses DIR/controller-<id>)")
	fs.StringVar(&o.listen, "controller-addr", "", "the embedded controller's listen address (default: its address in --controller-peers)")
	return func() (bool, controllerOptions, error) {
		if !*enabled {
			return false, o, nil
		}
		if flagsSet(fs)["controller-data"] {
			o.exact = ""
		}
		var err error
		o.peers, err = parsePeers(*peers)
		if err == nil {
			err = o.check()
		}
		return true, o, err
	}
}
