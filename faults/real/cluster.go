package real

// The cluster: three name servers, each with an embedded controller member, and two broker
// groups of three replicas with sync replication and sync flush (at least two in sync), every
// process in its own namespace. Who is master comes from the controllers (their sync state),
// watched all run long to count failovers and to aim faults at roles.

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicemq/sluice/broker/adminclient"
)

// The layout's names and ports.
const (
	clusterName    = "JepsenCluster"
	namesrvPort    = "9876"
	controllerPort = "9878"
	brokerPort     = "10911"
	// ClientNode names the harness's clients as a side of a network fault.
	ClientNode = "client"
)

// Groups are the broker groups; NameServers the name-server nodes (controllers embedded).
var (
	Groups      = []string{"broker-a", "broker-b"}
	NameServers = []string{"ns1", "ns2", "ns3"}
)

// groupReplicas is the replicas of each group.
const groupReplicas = 3

// ReplicaNode names replica id (1-based) of group g: "a1" for broker-a's first.
func ReplicaNode(g string, id int) string {
	return fmt.Sprintf("%s%d", strings.TrimPrefix(g, "broker-"), id)
}

// Nodes is every node of the layout: name servers first, then the groups' replicas.
func Nodes() []string {
	out := slices.Clone(NameServers)
	for _, g := range Groups {
		for id := 1; id <= groupReplicas; id++ {
			out = append(out, ReplicaNode(g, id))
		}
	}
	return out
}

// Cluster is the running cluster.
type Cluster struct {
	net   *Net
	procs map[string]*proc
	log   *slog.Logger
	// diskFaults: the binary was built with -tags faultinject, so disk faults can be struck.
	diskFaults bool

	mu      sync.Mutex
	masters map[string]adminclient.GroupSyncState // by group, as last seen
	epochs  map[string][]int64                    // master epochs seen, by group
}

func (c *Cluster) nsAddrs(port string) []string {
	var out []string
	for _, n := range NameServers {
		out = append(out, c.net.Addr(n)+":"+port)
	}
	return out
}

// NameServerAddrs are the name servers' addresses.
func (c *Cluster) NameServerAddrs() []string { return c.nsAddrs(namesrvPort) }

// startCluster builds the processes of the layout on n and starts them all.
func startCluster(n *Net, bin, dir, plant string, log *slog.Logger) (*Cluster, error) {
	c := &Cluster{net: n, procs: map[string]*proc{}, log: log, masters: map[string]adminclient.GroupSyncState{}, epochs: map[string][]int64{},
		diskFaults: builtWithTag(bin, "faultinject")}
	var common []string
	if plant != "" {
		common = []string{"SLUICE_PLANT=" + plant}
	}
	if !c.diskFaults {
		log.Warn("disk faults off: the sluice binary was not built with -tags faultinject", "binary", bin)
	}
	var peers []string
	for i, ns := range NameServers {
		peers = append(peers, fmt.Sprintf("%d=%s:%s", i+1, n.Addr(ns), controllerPort))
	}
	for i, ns := range NameServers {
		c.procs[ns] = &proc{name: ns, ns: n.Namespace(ns), bin: bin, logPth: filepath.Join(dir, ns+".log"),
			probe: n.Addr(ns) + ":" + namesrvPort,
			args: []string{"namesrv", "--addr", n.Addr(ns) + ":" + namesrvPort, "--controller", "--controller-id", strconv.Itoa(i + 1),
				"--controller-peers", strings.Join(peers, ","), "--controller-data", filepath.Join(dir, "data", ns), "--log-level", "info"}}
	}
	for _, g := range Groups {
		for id := 1; id <= groupReplicas; id++ {
			node := ReplicaNode(g, id)
			addr := n.Addr(node) + ":" + brokerPort
			c.procs[node] = &proc{name: node, ns: n.Namespace(node), bin: bin, logPth: filepath.Join(dir, node+".log"), probe: addr,
				args: []string{"broker", "--addr", addr, "--vip-addr", "off", "--namesrv", strings.Join(c.NameServerAddrs(), ";"),
					"--controllers", strings.Join(c.nsAddrs(controllerPort), ";"), "--cluster", clusterName, "--group", g,
					"--id", strconv.Itoa(id), "--replication", "sync", "--flush", "sync", "--min-insync", "2",
					"--data", filepath.Join(dir, "data"), "--log-level", "info"}}
		}
	}
	for node, p := range c.procs {
		p.fsyncTrigger, p.fullTrigger = filepath.Join(dir, node+".fsync-eio"), filepath.Join(dir, node+".disk-full")
		p.env = append(slices.Clone(common), "SLUICE_FAULT_FSYNC_TRIGGER="+p.fsyncTrigger, "SLUICE_FAULT_NOSPACE_TRIGGER="+p.fullTrigger)
	}
	// Name servers (and controllers) first, all at once; then the brokers.
	if err := c.startAll(NameServers); err != nil {
		c.stop()
		return nil, err
	}
	var brokers []string
	for _, node := range Nodes() {
		if !slices.Contains(NameServers, node) {
			brokers = append(brokers, node)
		}
	}
	if err := c.startAll(brokers); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// builtWithTag reports whether the Go binary at path was built with build tag tag.
func builtWithTag(path, tag string) bool {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), tag) {
			return true
		}
	}
	return false
}

// startAll starts nodes concurrently.
func (c *Cluster) startAll(nodes []string) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.procs[node].start(60 * time.Second)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stop kills every process (resuming paused ones is not needed for SIGKILL).
func (c *Cluster) stop() {
	for _, p := range c.procs {
		p.kill()
	}
}

// nodeOfAddr is the node listening at a broker address ("" if none).
func (c *Cluster) nodeOfAddr(addr string) string {
	host, _, _ := strings.Cut(addr, ":")
	for _, node := range Nodes() {
		if c.net.Addr(node) == host {
			return node
		}
	}
	return ""
}

// syncState asks the controllers (each in turn) for group g's master and in-sync set.
func (c *Cluster) syncState(g string) (adminclient.GroupSyncState, error) {
	var errs []error
	for _, ctl := range c.nsAddrs(controllerPort) {
		ac := adminclient.New(c.NameServerAddrs(), time.Second)
		st, err := ac.GroupSyncState(ctl, g)
		ac.Close()
		if err == nil {
			c.noteState(g, st)
			return st, nil
		}
		errs = append(errs, err)
	}
	return adminclient.GroupSyncState{}, fmt.Errorf("sync state of %s: %w", g, errors.Join(errs...))
}

// noteState records what the controllers said of g: a new master epoch is a failover.
func (c *Cluster) noteState(g string, st adminclient.GroupSyncState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.masters[g]; ok && st.MasterEpoch < prev.MasterEpoch {
		return // an older answer, from a member behind
	}
	c.masters[g] = st
	if e := c.epochs[g]; st.MasterID != 0 && (len(e) == 0 || e[len(e)-1] < st.MasterEpoch) {
		c.epochs[g] = append(e, st.MasterEpoch)
		c.log.Info("master elected", "group", g, "master", c.nodeOfAddr(st.MasterAddr), "epoch", st.MasterEpoch, "inSync", st.InSync)
	}
}

// master is the node the controllers last named master of g ("" if none).
func (c *Cluster) master(g string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.masters[g]
	if st.MasterID == 0 {
		return ""
	}
	return ReplicaNode(g, int(st.MasterID))
}

// masterAddr is the broker address the controllers last named master of g.
func (c *Cluster) masterAddr(g string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.masters[g].MasterID == 0 {
		return ""
	}
	return c.masters[g].MasterAddr
}

// Failovers is, per group, how many masters the controllers named after the first.
func (c *Cluster) Failovers() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, g := range Groups {
		out[g] = max(len(c.epochs[g])-1, 0)
	}
	return out
}

// watch polls the controllers every interval until stop closes.
func (c *Cluster) watch(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, g := range Groups {
			_, _ = c.syncState(g)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// waitMasters waits up to bound for every group to have a master the controllers named.
func (c *Cluster) waitMasters(bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		missing := ""
		for _, g := range Groups {
			if st, err := c.syncState(g); err != nil || st.MasterID == 0 {
				missing = g
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s has no master after %v", missing, bound)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
