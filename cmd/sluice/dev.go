package main

// 'sluice dev --replicas N': a name server, a controller and a broker group of N replicas in
// one process, so a failover can be tried on a laptop. It prints which replica is master, and
// the in-sync set, whenever the controller changes them, and reads commands from stdin to stop and start replicas.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/controller"
	"github.com/sluicemq/sluice/broker/runtime"
)

// devGroupOptions are 'sluice dev' flags that shape the group.
type devGroupOptions struct {
	replicas   int
	data       string
	nsAddr     string
	brokerAddr string // replica 1's; replica i listens 10*(i-1) ports above it
	shutdown   time.Duration
	set        map[string]bool
	ops        *opsEndpoint
	// consoleAddr is where the web console is served (off or empty: none).
	consoleAddr string
	// readyTimeout bounds the wait for every node to be ready before saying so (0: none).
	readyTimeout time.Duration
}

// devControllerPort is the controller's port: the name server's + 2 (9878 beside 9876, as
// RocketMQ's quick start).
const devControllerPort = 2

// devReplicaPortStep separates the replicas' ports, leaving each its VIP channel (port - 2).
const devReplicaPortStep = 10

// devGroup is the running group; mu guards the replicas' runtimes, which stdin commands
// replace.
type devGroup struct {
	logger   *slog.Logger
	shutdown time.Duration
	ctlAddr  string
	cfgs     []brokernode.Config // by replica id - 1
	dirs     []string

	mu  sync.Mutex
	rts []*runtime.Runtime // nil: stopped

	stopping atomic.Bool // the process is shutting down: the master watch is silent
	ops      *opsEndpoint
}

func runDevGroup(o devGroupOptions, base brokernode.Config, logger *slog.Logger) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return code
	}
	nsHost, nsPort, err := splitPort(o.nsAddr)
	if err != nil {
		return fail(2, fmt.Errorf("--namesrv-addr: %w", err))
	}
	ctlAddr := net.JoinHostPort(nsHost, strconv.Itoa(nsPort+devControllerPort))
	brHost, brPort, err := splitPort(o.brokerAddr)
	if err != nil || brPort == 0 {
		return fail(2, fmt.Errorf("--broker-addr %q: want a literal ip:port with a port (replicas listen %d ports apart)", o.brokerAddr, devReplicaPortStep))
	}
	g := &devGroup{logger: logger, shutdown: o.shutdown, ctlAddr: ctlAddr, rts: make([]*runtime.Runtime, o.replicas), ops: o.ops}
	for i := 1; i <= o.replicas; i++ {
		c := base
		c.BrokerID = int64(i)
		c.Addr = net.JoinHostPort(brHost, strconv.Itoa(brPort+(i-1)*devReplicaPortStep))
		c.Controllers = []string{ctlAddr}
		c.ReplicationMode = brokernode.SyncReplication
		c.MinInSync = 1
		dir := filepath.Join(o.data, fmt.Sprintf("%s-%d", c.BrokerName, i))
		if err := prepareDataDir(dir); err != nil {
			return fail(1, err)
		}
		g.cfgs = append(g.cfgs, c)
		g.dirs = append(g.dirs, dir)
	}
	copts := controllerOptions{id: 1, peers: map[uint64]string{1: ctlAddr}, data: o.data}
	if err := prepareDataDir(copts.dir()); err != nil {
		return fail(1, err)
	}
	ns, err := startNamesrv(o.nsAddr, logger, o.ops, nodeSecurity{})
	if err != nil {
		return fail(1, err)
	}
	ctl, ctlDir, err := startController(copts, logger, o.ops, nodeSecurity{})
	if err != nil {
		ns.Stop()
		return fail(1, err)
	}
	nsList := []string{ns.Addr().String()}
	for i := range g.cfgs {
		g.cfgs[i].NameServers = nsList
	}
	fmt.Printf("sluice dev: name server listening on %s\n", ns.Addr())
	fmt.Printf("sluice dev: controller listening on %s (data %s)\n", ctl.Addr(), ctlDir)
	for i := range g.cfgs {
		if err := g.start(i + 1); err != nil {
			g.stopAll()
			ctl.Stop()
			ns.Stop()
			return fail(1, err)
		}
		c := g.cfgs[i]
		fmt.Printf("sluice dev: broker %s replica %d listening on %s (data %s)\n", c.BrokerName, i+1, c.Addr, g.dirs[i])
	}
	printOps(o.ops)
	fmt.Printf("sluice dev: a group of %d replicas, %s replication; the controller picks the master.\n", o.replicas, base.ReplicationMode)
	announceReady(g.readyChecks(ns, ctl, copts), o.readyTimeout, o.ops)
	con, err := devConsole(o.consoleAddr, o.set["console-addr"], ns.Addr().String(), logger)
	if err != nil {
		g.stopAll()
		ctl.Stop()
		ns.Stop()
		return fail(1, err)
	}
	fmt.Println("sluice dev: type 'kill N' (stop replica N at once), 'stop N' (shut it down cleanly), 'start N', or 'status'")
	fmt.Println("sluice dev: press Ctrl-C to stop")
	stop := make(chan struct{})
	defer close(stop)
	go g.watchMaster(stop)
	go g.readCommands()
	return waitForStop(logger, o.shutdown, withConsole([]stoppable{{rt: ns}, {rt: ctl}, {shutdown: g.shutdownAll}}, con)...)
}

func splitPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535-100 {
		return "", 0, fmt.Errorf("port %q out of range", port)
	}
	return host, p, nil
}

// start starts replica id (1-based).
func (g *devGroup) start(id int) error {
	c := g.cfgs[id-1]
	rt, err := startBroker(c, g.dirs[id-1], g.logger, "off", g.ops, nodeSecurity{})
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.rts[id-1] = rt
	g.mu.Unlock()
	return nil
}

// readyChecks are the readiness of the name server, the controller and every replica running.
func (g *devGroup) readyChecks(ns, ctl *runtime.Runtime, copts controllerOptions) []readyCheck {
	checks := []readyCheck{runtimeCheck("namesrv", ns), runtimeCheck(controllerNodeName(copts.id), ctl)}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, rt := range g.rts {
		if rt != nil {
			checks = append(checks, runtimeCheck(brokerNodeName(g.cfgs[i]), rt))
		}
	}
	return checks
}

// take removes replica id's runtime, nil if it is stopped.
func (g *devGroup) take(id int) *runtime.Runtime {
	g.mu.Lock()
	defer g.mu.Unlock()
	rt := g.rts[id-1]
	g.rts[id-1] = nil
	if rt != nil {
		g.ops.remove(brokerNodeName(g.cfgs[id-1]))
	}
	return rt
}

func (g *devGroup) stopAll() {
	for id := 1; id <= len(g.cfgs); id++ {
		if rt := g.take(id); rt != nil {
			rt.Stop()
		}
	}
}

// shutdownAll shuts the master down first, while its slaves still fetch, so the sends it
// has taken can complete their replication; then the other replicas at once. Each is
// unregistered from the name servers first.
func (g *devGroup) shutdownAll(timeout time.Duration) error {
	g.stopping.Store(true)
	errs := make([]error, len(g.cfgs))
	shut := func(id int) {
		rt := g.take(id)
		if rt == nil {
			return
		}
		brokerUnregister(g.cfgs[id-1], nodeSecurity{})()
		if err := rt.Shutdown(timeout); err != nil {
			errs[id-1] = fmt.Errorf("replica %d: %w", id, err)
		}
	}
	cli := adminclient.New([]string{g.ctlAddr}, time.Second)
	v, err := g.view(cli)
	cli.Close()
	if err == nil && v.master > 0 {
		shut(int(v.master))
	}
	var wg sync.WaitGroup
	for id := 1; id <= len(g.cfgs); id++ {
		wg.Add(1)
		go func() { defer wg.Done(); shut(id) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readCommands serves stdin's commands until it closes.
func (g *devGroup) readCommands() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "status" {
			g.printStatus()
			continue
		}
		id := 0
		if len(fields) == 2 {
			id, _ = strconv.Atoi(fields[1])
		}
		if id < 1 || id > len(g.cfgs) || len(fields) != 2 {
			fmt.Printf("sluice dev: want 'kill N', 'stop N', 'start N' (N from 1 to %d) or 'status'\n", len(g.cfgs))
			continue
		}
		switch fields[0] {
		case "kill", "stop":
			rt := g.take(id)
			if rt == nil {
				fmt.Printf("sluice dev: replica %d is not running\n", id)
				continue
			}
			if fields[0] == "kill" {
				rt.Stop()
			} else if err := rt.Shutdown(g.shutdown); err != nil {
				fmt.Printf("sluice dev: replica %d: %v\n", id, err)
			}
			fmt.Printf("sluice dev: replica %d stopped\n", id)
		case "start":
			g.mu.Lock()
			running := g.rts[id-1] != nil
			g.mu.Unlock()
			if running {
				fmt.Printf("sluice dev: replica %d is running\n", id)
				continue
			}
			if err := g.start(id); err != nil {
				fmt.Printf("sluice dev: replica %d: %v\n", id, err)
				continue
			}
			fmt.Printf("sluice dev: replica %d started\n", id)
		default:
			fmt.Printf("sluice dev: unknown command %q\n", fields[0])
		}
	}
}

// groupView is the group as the controller holds it: master replica (0: none), its address,
// and the in-sync set.
type groupView struct {
	master int64
	addr   string
	inSync []int64
}

func (v groupView) String() string {
	if v.master == 0 {
		return "no master (the controller is electing one)"
	}
	return fmt.Sprintf("master is replica %d (%s), in sync: %v", v.master, v.addr, v.inSync)
}

// view asks the controller for the group's master and in-sync set.
func (g *devGroup) view(cli *adminclient.Client) (groupView, error) {
	c := g.cfgs[0]
	req := codec.NewRequest(codec.ReqControllerGetReplicaInfo, map[string]string{
		"clusterName": c.ClusterName, "brokerName": c.BrokerName, "local": "true"}, nil)
	resp, err := cli.Call(g.ctlAddr, req)
	if err != nil {
		return groupView{}, err
	}
	if resp.Code != codec.Success {
		return groupView{}, fmt.Errorf("controller answered code %d: %s", resp.Code, resp.Remark)
	}
	var body controller.ReplicaInfoBody
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return groupView{}, fmt.Errorf("controller's answer: %w", err)
	}
	for _, gi := range body.Groups {
		if gi.Group == c.BrokerName {
			return groupView{master: gi.MasterID, addr: gi.MasterAddr, inSync: gi.InSync}, nil
		}
	}
	return groupView{}, nil
}

// watchMaster prints the group's master and in-sync set whenever the controller changes them.
func (g *devGroup) watchMaster(stop <-chan struct{}) {
	cli := adminclient.New([]string{g.ctlAddr}, time.Second)
	defer cli.Close()
	last := "?"
	for {
		select {
		case <-stop:
			return
		case <-time.After(300 * time.Millisecond):
		}
		v, err := g.view(cli)
		if err != nil || g.stopping.Load() {
			continue
		}
		if s := v.String(); s != last {
			last = s
			fmt.Printf("sluice dev: %s %s\n", g.cfgs[0].BrokerName, s)
		}
	}
}

func (g *devGroup) printStatus() {
	cli := adminclient.New([]string{g.ctlAddr}, time.Second)
	defer cli.Close()
	v, err := g.view(cli)
	if err != nil {
		fmt.Printf("sluice dev: status: %v\n", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, c := range g.cfgs {
		id := int64(i + 1)
		state := "stopped"
		switch {
		case g.rts[i] == nil:
		case id == v.master:
			state = "master"
		case slices.Contains(v.inSync, id):
			state = "slave, in sync"
		default:
			state = "slave, not in sync"
		}
		fmt.Printf("sluice dev: replica %d %s %s\n", id, c.Addr, state)
	}
}
