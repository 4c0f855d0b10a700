package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	listen string // "" listens on the member's own peer address
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

// startController opens the member's data directory (DATA/controller-ID) and starts it.
func startController(o controllerOptions, logger *slog.Logger) (*runtime.Runtime, string, error) {
	cfg := controller.DefaultConfig(o.id, o.peers)
	listen := o.listen
	if listen == "" {
		listen = o.peers[o.id]
	}
	dir := filepath.Join(o.data, "controller-"+strconv.FormatUint(o.id, 10))
	logger = logger.With("node", "controller-"+strconv.FormatUint(o.id, 10))
	disk, err := diskfile.Open(dir, diskfile.Options{Logger: logger})
	if err != nil {
		return nil, "", fmt.Errorf("open controller data directory %s: %w", dir, err)
	}
	rt := runtime.New(runtime.Config{ListenAddr: listen, Logger: logger}, disk,
		func(env node.Env) (node.Handler, error) { return controller.New(env, cfg) })
	if err := rt.Start(); err != nil {
		return nil, "", fmt.Errorf("start controller member %d: %w", o.id, err)
	}
	return rt, dir, nil
}

func runController(args []string) int {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	var o controllerOptions
	fs.Uint64Var(&o.id, "id", 1, "this member's id (one of --peers)")
	peers := fs.String("peers", "1=127.0.0.1:9878", "every member as id=ip:port, comma-separated (1 or 3 members)")
	fs.StringVar(&o.data, "data", "./data", "data directory (the member uses DIR/controller-<id>)")
	fs.StringVar(&o.listen, "addr", "", "listen address (default: this member's address in --peers)")
	level := fs.String("log-level", "info", "log level")
	if fs.Parse(args) != nil {
		return 2
	}
	logger, err := newLogger(*level)
	if err == nil {
		o.peers, err = parsePeers(*peers)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 2
	}
	rt, dir, err := startController(o, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice controller:", err)
		return 1
	}
	fmt.Printf("sluice controller: member %d listening on %s (data %s)\n", o.id, rt.Addr(), dir)
	return waitForStop(logger, rt)
}

// embeddedControllerFlags adds the flags that run a controller member inside another command
// (sluice namesrv --controller ...). The returned func reports whether one was asked for and
// its options.
func embeddedControllerFlags(fs *flag.FlagSet) func() (bool, controllerOptions, error) {
	enabled := fs.Bool("controller", false, "also run a controller member in this process")
	var o controllerOptions
	fs.Uint64Var(&o.id, "controller-id", 1, "the embedded controller member's id (one of --controller-peers)")
	peers := fs.String("controller-peers", "1=127.0.0.1:9878", "every controller member as id=ip:port, comma-separated")
	fs.StringVar(&o.data, "controller-data", "./data", "the embedded controller's data directory (it uses DIR/controller-<id>)")
	fs.StringVar(&o.listen, "controller-addr", "", "the embedded controller's listen address (default: its address in --controller-peers)")
	return func() (bool, controllerOptions, error) {
		if !*enabled {
			return false, o, nil
		}
		var err error
		o.peers, err = parsePeers(*peers)
		return true, o, err
	}
}
