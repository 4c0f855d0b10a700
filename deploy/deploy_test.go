// Package deploy holds the Docker Compose example of a three-node Sluice cluster and the
// configuration files it mounts; this test keeps them valid and consistent with each other and
// with the Dockerfile (building images is not part of the tests: no image registry is
// reachable where they run).
package deploy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluicemq/sluice/broker/config"
)

type compose struct {
	Services map[string]struct {
		Command  []string `yaml:"command"`
		Volumes  []string `yaml:"volumes"`
		Networks map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		} `yaml:"networks"`
		Image string `yaml:"image"`
	} `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

// service is one service as the test checks it.
type service struct {
	name string
	role config.Role
	ip   string
	conf *config.File
}

func loadCompose(t *testing.T) []service {
	t.Helper()
	text, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(text, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	nw := c.Networks["sluice"]
	if len(nw.IPAM.Config) != 1 {
		t.Fatalf("network sluice: want one subnet, got %+v", nw.IPAM.Config)
	}
	_, subnet, err := net.ParseCIDR(nw.IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatal(err)
	}
	var out []service
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := c.Services[name]
		if s.Image == "" {
			t.Errorf("%s: no image (the x-sluice anchor did not merge)", name)
		}
		if len(s.Command) != 3 || s.Command[1] != "--config" {
			t.Fatalf("%s: command %v, want [ROLE --config FILE]", name, s.Command)
		}
		role := map[string]config.Role{"namesrv": config.NameServer, "broker": config.Broker, "controller": config.Controller}[s.Command[0]]
		if role == 0 {
			t.Fatalf("%s: unknown role %q", name, s.Command[0])
		}
		mounted := ""
		hasData := false
		for _, v := range s.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			dst = strings.TrimSuffix(dst, ":ro")
			if dst == "/etc/sluice" {
				mounted = src
			}
			if _, named := c.Volumes[src]; named && dst == "/data" {
				hasData = true
			}
		}
		if !hasData {
			t.Errorf("%s: no named volume mounted at /data", name)
		}
		if mounted == "" || !strings.HasPrefix(s.Command[2], "/etc/sluice/") {
			t.Fatalf("%s: config %s is not under a mounted /etc/sluice", name, s.Command[2])
		}
		path := filepath.Join(mounted, strings.TrimPrefix(s.Command[2], "/etc/sluice/"))
		f, err := config.Load(path, role)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ip := s.Networks["sluice"].IPv4
		if !subnet.Contains(net.ParseIP(ip)) {
			t.Errorf("%s: address %q outside the subnet %v", name, ip, subnet)
		}
		out = append(out, service{name: name, role: role, ip: ip, conf: f})
	}
	return out
}

// The example is three name servers with controllers and one group of three replicas, and
// every address in one file agrees with the others and with the compose file.
func TestComposeClusterIsConsistent(t *testing.T) {
	services := loadCompose(t)
	var namesrvs, brokers []service
	for _, s := range services {
		switch s.role {
		case config.NameServer:
			namesrvs = append(namesrvs, s)
		case config.Broker:
			brokers = append(brokers, s)
		}
	}
	if len(namesrvs) != 3 || len(brokers) != 3 {
		t.Fatalf("%d name servers and %d brokers, want 3 and 3", len(namesrvs), len(brokers))
	}
	var nsAddrs, ctlAddrs []string
	for _, ns := range namesrvs {
		f := ns.conf
		if !f.Bool(config.KeyEnableControllerInNamesrv) {
			t.Errorf("%s: no embedded controller", ns.name)
		}
		members, err := f.ControllerMembers()
		if err != nil {
			t.Fatal(err)
		}
		self, _ := f.Self(members)
		if host, _, _ := net.SplitHostPort(self.Addr); host != ns.ip {
			t.Errorf("%s: its controller member %s is not at its own address %s", ns.name, self.Addr, ns.ip)
		}
		var addrs []string
		for _, m := range members {
			addrs = append(addrs, m.Addr)
		}
		if ctlAddrs != nil && !slices.Equal(addrs, ctlAddrs) {
			t.Errorf("%s: controller members %v differ from another name server's %v", ns.name, addrs, ctlAddrs)
		}
		ctlAddrs = addrs
		nsAddrs = append(nsAddrs, net.JoinHostPort(ns.ip, fmt.Sprint(f.Int(config.KeyListenPort))))
	}
	ids := map[int64]bool{}
	for _, b := range brokers {
		f := b.conf
		if f.String(config.KeyBrokerIP1) != b.ip {
			t.Errorf("%s: brokerIP1 %s, but the service's address is %s", b.name, f.String(config.KeyBrokerIP1), b.ip)
		}
		if got := f.List(config.KeyNamesrvAddr); !sameSet(got, nsAddrs) {
			t.Errorf("%s: namesrvAddr %v, want the name servers %v", b.name, got, nsAddrs)
		}
		if got := f.List(config.KeyControllerAddr); !sameSet(got, ctlAddrs) {
			t.Errorf("%s: controllerAddr %v, want the controller members %v", b.name, got, ctlAddrs)
		}
		if f.String(config.KeyBrokerName) != "broker-a" || !f.Bool(config.KeyEnableControllerMode) {
			t.Errorf("%s: not a replica of broker-a in controller mode", b.name)
		}
		id := f.Int(config.KeyBrokerID)
		if id < 1 || ids[id] {
			t.Errorf("%s: brokerId %d is not a fresh replica id", b.name, id)
		}
		ids[id] = true
		if !strings.HasPrefix(f.String(config.KeyStorePathRootDir), "/data/") {
			t.Errorf("%s: storePathRootDir %s is not in the /data volume", b.name, f.String(config.KeyStorePathRootDir))
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// The Dockerfile builds a static binary in one stage and runs it in another as a non-root user
// with a data volume, and the image's entrypoint is the binary it copied.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var from, copies []string
	var user, volume, entry string
	static := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			from = append(from, rest)
		case "COPY":
			copies = append(copies, rest)
		case "USER":
			user = rest
		case "VOLUME":
			volume = rest
		case "ENTRYPOINT":
			entry = rest
		case "RUN":
			static = static || strings.Contains(rest, "CGO_ENABLED=0")
		}
	}
	if len(from) < 2 {
		t.Errorf("%d stages, want a build stage and a runtime stage", len(from))
	}
	if !static {
		t.Error("the binary is not built with CGO_ENABLED=0 (static)")
	}
	if uid, _, _ := strings.Cut(user, ":"); user == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if !strings.Contains(volume, "/data") {
		t.Errorf("VOLUME %q: want /data", volume)
	}
	bin := strings.Trim(strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]"), `"`)
	found := false
	for _, c := range copies {
		found = found || strings.HasSuffix(c, " "+bin)
	}
	if bin == "" || !found {
		t.Errorf("ENTRYPOINT %s is not a file the runtime stage copies (%v)", entry, copies)
	}
}
