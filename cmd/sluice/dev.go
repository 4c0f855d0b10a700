package main

// 'sluice dev --replicas N': a name server, a controller and a broker group of N replicas in
// one process, so a failover can be tried on a laptop. It prints which replica is master
// whenever that changes, and reads commands from stdin to stop and start replicas.

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/brokernode"
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
	cfgs     []brokernode.Config // by replica id - 1
	dirs     []string

	mu  sync.Mutex
	rts []*runtime.Runtime // nil: stopped

	stopping atomic.Bool // the process is shutting down: the master watch is silent
}

func runDevGroup(o devGroupOptions, base brokernode.Config, logger *slog.Logger) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, "sluice dev:", err)
		return code
	}
	if o.replicas < 2 || o.replicas > 5 {
		return fail(2, fmt.Errorf("--replicas %d: want 1 (a single broker) or 2 to 5 (a replicated group)", o.replicas))
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
	g := &devGroup{logger: logger, shutdown: o.shutdown, rts: make([]*runtime.Runtime, o.replicas)}
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
	ns, err := startNamesrv(o.nsAddr, logger)
	if err != nil {
		return fail(1, err)
	}
	ctl, ctlDir, err := startController(copts, logger)
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
	fmt.Printf("sluice dev: a group of %d replicas, %s replication; the controller picks the master.\n", o.replicas, base.ReplicationMode)
	fmt.Println("sluice dev: type 'kill N' (stop replica N at once), 'stop N' (shut it down cleanly), 'start N', or 'status'")
	fmt.Println("sluice dev: press Ctrl-C to stop")
	stop := make(chan struct{})
	defer close(stop)
	go g.watchMaster(nsList, stop)
	go g.readCommands(nsList)
	return waitForStop(logger, o.shutdown, stoppable{rt: ns}, stoppable{rt: ctl}, stoppable{shutdown: g.shutdownAll})
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
	rt, err := startBroker(c, g.dirs[id-1], g.logger, "off")
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.rts[id-1] = rt
	g.mu.Unlock()
	return nil
}

// take removes replica id's runtime, nil if it is stopped.
func (g *devGroup) take(id int) *runtime.Runtime {
	g.mu.Lock()
	defer g.mu.Unlock()
	rt := g.rts[id-1]
	g.rts[id-1] = nil
	return rt
}

func (g *devGroup) stopAll() {
	for id := 1; id <= len(g.cfgs); id++ {
		if rt := g.take(id); rt != nil {
			rt.Stop()
		}
	}
}

// shutdownAll shuts every running replica down at once (each unregistered from the name
// servers first), so none of them waits for the others to drain.
func (g *devGroup) shutdownAll(timeout time.Duration) error {
	g.stopping.Store(true)
	var wg sync.WaitGroup
	errs := make([]error, len(g.cfgs))
	for id := 1; id <= len(g.cfgs); id++ {
		rt := g.take(id)
		if rt == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			brokerUnregister(g.cfgs[id-1])()
			if err := rt.Shutdown(timeout); err != nil {
				errs[id-1] = fmt.Errorf("replica %d: %w", id, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readCommands serves stdin's commands until it closes.
func (g *devGroup) readCommands(nsList []string) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "status" {
			g.printStatus(nsList)
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

// masterOf is the replica the name servers route as master ("" and 0 if none).
func (g *devGroup) masterOf(brokers []adminclient.ClusterBroker) (string, int) {
	for _, b := range brokers {
		if b.Group == g.cfgs[0].BrokerName && b.Master() {
			for i, c := range g.cfgs {
				if c.Addr == b.Addr {
					return b.Addr, i + 1
				}
			}
			return b.Addr, 0
		}
	}
	return "", 0
}

// watchMaster prints the group's master whenever the name server's routes change it.
func (g *devGroup) watchMaster(nsList []string, stop <-chan struct{}) {
	cli := adminclient.New(nsList, time.Second)
	defer cli.Close()
	last := "?"
	for {
		select {
		case <-stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
		brokers, err := cli.ClusterList()
		if err != nil || g.stopping.Load() {
			continue
		}
		addr, id := g.masterOf(brokers)
		if addr == last {
			continue
		}
		last = addr
		if addr == "" {
			fmt.Printf("sluice dev: %s has no master (the controller is electing one)\n", g.cfgs[0].BrokerName)
		} else {
			fmt.Printf("sluice dev: master of %s is replica %d (%s)\n", g.cfgs[0].BrokerName, id, addr)
		}
	}
}

func (g *devGroup) printStatus(nsList []string) {
	cli := adminclient.New(nsList, time.Second)
	defer cli.Close()
	brokers, err := cli.ClusterList()
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		fmt.Printf("sluice dev: status: %v\n", err)
		return
	}
	master, _ := g.masterOf(brokers)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, c := range g.cfgs {
		state := "stopped"
		switch {
		case g.rts[i] == nil:
		case c.Addr == master:
			state = "master"
		default:
			state = "slave"
		}
		fmt.Printf("sluice dev: replica %d %s %s\n", i+1, c.Addr, state)
	}
}
