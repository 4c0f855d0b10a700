// Package real puts real Sluice processes through the simulator's fault catalogue (package
// faults): a cluster of name servers with embedded controller members and replicated broker
// groups, each process in its own network namespace on a bridge the harness creates; a fault
// schedule drawn from a seed (partitions by blackhole routes, kill -9 and restart, SIGSTOP and
// SIGCONT pauses); the project's client core sending and pulling through the faults, every
// call recorded with its real start and end in the simulator's history format
// (linearizability.History); and, after everything healed, a final drain judged by the same
// checks the simulator runs (linearizability.Check and sim/checks.Drain).
//
// It needs root (network namespaces): Available says why not when it cannot run. Every
// interface, namespace and process it makes is named with a per-run prefix (sj<pid>) and
// removed at the end; leftovers of crashed earlier runs (a prefix whose process is gone) are
// removed at start. It never touches anything else.
package real

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Available reports why the harness cannot run here (nil when it can): it needs root and the
// ip tool, and a network namespace it can create.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("no ip tool: %w", err)
	}
	name := fmt.Sprintf("sj%dprobe", os.Getpid())
	if err := ipCmd("netns", "add", name); err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	return ipCmd("netns", "del", name)
}

// ipCmd runs ip with args.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ipOut runs ip with args and returns its output.
func ipOut(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Net is the run's network: a bridge with the harness's own address on it, and one namespace
// per node with a veth pair to the bridge.
type Net struct {
	prefix string
	bridge string
	subnet string // the first three octets: "10.213.N"
	nodes  map[string]int
	log    *slog.Logger
}

// ourName matches the names the harness gives: sj<pid>br (bridge), sj<pid>v<i> (veth) and
// sj<pid>-<node> (namespace).
var ourName = regexp.MustCompile(`^sj(\d+)(br|v\d+|p\d+|-[a-z0-9]+|probe)$`)

// CleanStale removes the bridges, veths and namespaces of earlier runs whose process is gone.
func CleanStale(log *slog.Logger) {
	stale := func(name string) bool {
		m := ourName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() {
			return false
		}
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return errors.Is(err, os.ErrNotExist)
	}
	if out, err := ipOut("netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && stale(f[0]) {
				log.Info("removing a stale namespace of a crashed earlier run", "netns", f[0])
				_ = ipCmd("netns", "del", f[0])
			}
		}
	}
	if out, err := ipOut("-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(name) {
				log.Info("removing a stale interface of a crashed earlier run", "link", name)
				_ = ipCmd("link", "del", name)
			}
		}
	}
}

// NewNet creates the bridge and a namespace for each of nodes (in order: node i gets address
// .<11+i>). The bridge's subnet is a free 10.213.N.0/24.
func NewNet(nodes []string, log *slog.Logger) (*Net, error) {
	n := &Net{prefix: fmt.Sprintf("sj%d", os.Getpid()), nodes: map[string]int{}, log: log}
	n.bridge = n.prefix + "br"
	routes, err := ipOut("-4", "route", "show")
	if err != nil {
		return nil, err
	}
	for i := 0; i < 200; i++ {
		s := fmt.Sprintf("10.213.%d", 20+(os.Getpid()+i)%200)
		if !strings.Contains(routes, s+".") {
			n.subnet = s
			break
		}
	}
	if n.subnet == "" {
		return nil, errors.New("no free 10.213.N.0/24 subnet")
	}
	steps := [][]string{
		{"link", "add", n.bridge, "type", "bridge"},
		{"addr", "add", n.subnet + ".1/24", "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	}
	for i, name := range nodes {
		n.nodes[name] = i
		ns, host, peer := n.namespace(name), fmt.Sprintf("%sv%d", n.prefix, i), fmt.Sprintf("%sp%d", n.prefix, i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", host, "type", "veth", "peer", "name", peer},
			[]string{"link", "set", host, "master", n.bridge},
			[]string{"link", "set", host, "up"},
			[]string{"link", "set", peer, "netns", ns},
			[]string{"-n", ns, "link", "set", peer, "name", "eth0"},
			[]string{"-n", ns, "addr", "add", n.Addr(name) + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			n.Close()
			return nil, fmt.Errorf("build the network: %w", err)
		}
	}
	log.Info("network up", "bridge", n.bridge, "subnet", n.subnet+".0/24", "namespaces", len(nodes))
	return n, nil
}

// namespace is node's namespace name.
func (n *Net) namespace(node string) string { return n.prefix + "-" + node }

// Addr is node's IP address.
func (n *Net) Addr(node string) string {
	i, ok := n.nodes[node]
	if !ok {
		panic("real: unknown node " + node)
	}
	return fmt.Sprintf("%s.%d", n.subnet, 11+i)
}

// ClientAddr is the harness's own address on the bridge (its clients' source address).
func (n *Net) ClientAddr() string { return n.subnet + ".1" }

// Namespace is the namespace node's process runs in.
func (n *Net) Namespace(node string) string { return n.namespace(node) }

// Cut makes node drop everything it sends to addr (a blackhole route in its namespace). Cut
// both ways for a partition.
func (n *Net) Cut(node, addr string) error {
	return ipCmd("-n", n.namespace(node), "route", "replace", "blackhole", addr+"/32")
}

// Mend removes node's blackhole route to addr.
func (n *Net) Mend(node, addr string) error {
	return ipCmd("-n", n.namespace(node), "route", "del", "blackhole", addr+"/32")
}

// HealAll removes every blackhole route of every namespace.
func (n *Net) HealAll() error {
	var errs []error
	for name := range n.nodes {
		if err := ipCmd("-n", n.namespace(name), "route", "flush", "type", "blackhole"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close removes the namespaces (and their veths) and the bridge. Processes in them must have
// been stopped first.
func (n *Net) Close() {
	for name, i := range n.nodes {
		_ = ipCmd("netns", "del", n.namespace(name))
		_ = ipCmd("link", "del", fmt.Sprintf("%sv%d", n.prefix, i)) // gone with its peer, usually
	}
	_ = ipCmd("link", "del", n.bridge)
	n.log.Info("network removed", "bridge", n.bridge)
}
