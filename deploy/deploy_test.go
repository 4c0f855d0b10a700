// Package deploy holds the Docker Compose example of a three-node Sluice cluster and the
// configuration files it mounts; this test keeps them valid and consistent with each other and
// with the Dockerfile (building images is not part of the tests: no image registry is
// reachable where they run).
package deploy

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
		Image       string      `yaml:"image"`
		Healthcheck healthcheck `yaml:"healthcheck"`
		DependsOn   yaml.Node   `yaml:"depends_on"`
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

// healthcheck is a compose service's healthcheck.
type healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// service is one service as the test checks it.
type service struct {
	name      string
	role      config.Role
	ip        string
	conf      *config.File
	health    healthcheck
	dependsOn map[string]string // service -> condition; nil without depends_on
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
		deps, err := dependsOn(&s.DependsOn)
		if err != nil {
			t.Fatalf("%s: depends_on: %v", name, err)
		}
		out = append(out, service{name: name, role: role, ip: ip, conf: f, health: s.Healthcheck, dependsOn: deps})
	}
	return out
}

// dependsOn reads depends_on in either of its forms: a list of services (condition
// service_started) or a map of service to {condition: ...}.
func dependsOn(n *yaml.Node) (map[string]string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, name := range names {
			out[name] = "service_started"
		}
		return out, nil
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for name, d := range m {
			out[name] = cmp.Or(d.Condition, "service_started")
		}
		return out, nil
	}
	return nil, fmt.Errorf("neither a list nor a map (yaml kind %v)", n.Kind)
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

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	word string // upper case
	rest string
}

// readDockerfile reads the repository's Dockerfile.
func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		word, rest, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{word: strings.ToUpper(word), rest: strings.TrimSpace(rest)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// entrypoint is the Dockerfile's ENTRYPOINT binary.
func entrypoint(t *testing.T, ins []instruction) string {
	t.Helper()
	for _, in := range ins {
		if in.word == "ENTRYPOINT" {
			var argv []string
			if err := json.Unmarshal([]byte(in.rest), &argv); err != nil || len(argv) == 0 {
				t.Fatalf("ENTRYPOINT %s: want the exec form with the binary first", in.rest)
			}
			return argv[0]
		}
	}
	t.Fatal("no ENTRYPOINT")
	return ""
}

// The Dockerfile builds a static binary in one stage and runs it in another as a non-root user
// with a data volume, and the image's entrypoint is the binary it copied.
func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t)
	var from, copies []string
	var user, volume string
	static := false
	for _, in := range ins {
		switch in.word {
		case "FROM":
			from = append(from, in.rest)
		case "COPY":
			copies = append(copies, in.rest)
		case "USER":
			user = in.rest
		case "VOLUME":
			volume = in.rest
		case "RUN":
			static = static || strings.Contains(in.rest, "CGO_ENABLED=0")
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
	bin := entrypoint(t, ins)
	found := false
	for _, c := range copies {
		found = found || strings.HasSuffix(c, " "+bin)
	}
	if !found {
		t.Errorf("ENTRYPOINT %s is not a file the runtime stage copies (%v)", bin, copies)
	}
}

// probeCall is a healthcheck's 'sluice probe' call.
type probeCall struct {
	bin     string
	timeout time.Duration
	url     *url.URL
}

// parseProbe reads a healthcheck's exec-form test: ["CMD", BIN, "probe", "--timeout", D, URL].
// The image has no shell, so the shell form (CMD-SHELL) could not run.
func parseProbe(test []string) (probeCall, error) {
	if len(test) != 6 || test[0] != "CMD" || test[2] != "probe" || test[3] != "--timeout" {
		return probeCall{}, fmt.Errorf("test %q: want [\"CMD\", BIN, \"probe\", \"--timeout\", D, URL]", test)
	}
	d, err := time.ParseDuration(test[4])
	if err != nil || d <= 0 {
		return probeCall{}, fmt.Errorf("test %q: probe timeout %q", test, test[4])
	}
	u, err := url.Parse(test[5])
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return probeCall{}, fmt.Errorf("test %q: want an http URL with a port", test)
	}
	return probeCall{bin: test[1], timeout: d, url: u}, nil
}

// exposed is the set of ports the Dockerfile's EXPOSE lines name.
func exposed(ins []instruction) map[string]bool {
	out := map[string]bool{}
	for _, in := range ins {
		if in.word == "EXPOSE" {
			for _, p := range strings.Fields(in.rest) {
				out[strings.TrimSuffix(p, "/tcp")] = true
			}
		}
	}
	return out
}

// The image's own HEALTHCHECK probes /readyz with the binary it runs, on a port it exposes,
// within the healthcheck's timeout.
func TestDockerfileHealthcheck(t *testing.T) {
	ins := readDockerfile(t)
	var hc string
	for _, in := range ins {
		if in.word == "HEALTHCHECK" {
			hc = in.rest
		}
	}
	opts, cmdJSON, ok := strings.Cut(hc, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q: want options then CMD [...]", hc)
	}
	var argv []string
	if err := json.Unmarshal([]byte(cmdJSON), &argv); err != nil {
		t.Fatalf("HEALTHCHECK CMD %s: not the exec form (the image has no shell): %v", cmdJSON, err)
	}
	p, err := parseProbe(append([]string{"CMD"}, argv...))
	if err != nil {
		t.Fatal(err)
	}
	if bin := entrypoint(t, ins); p.bin != bin {
		t.Errorf("HEALTHCHECK runs %s, the image's binary is %s", p.bin, bin)
	}
	if p.url.Path != "/readyz" || p.url.Hostname() != "127.0.0.1" {
		t.Errorf("HEALTHCHECK probes %s, want 127.0.0.1's /readyz", p.url)
	}
	if !exposed(ins)[p.url.Port()] {
		t.Errorf("HEALTHCHECK probes port %s, which the image does not EXPOSE", p.url.Port())
	}
	timeout := 30 * time.Second // Docker's default
	for _, o := range strings.Fields(opts) {
		if v, ok := strings.CutPrefix(o, "--timeout="); ok {
			if timeout, err = time.ParseDuration(v); err != nil {
				t.Fatalf("HEALTHCHECK %s: %v", o, err)
			}
		}
	}
	if p.timeout >= timeout {
		t.Errorf("the probe's timeout %v is not within the healthcheck's %v", p.timeout, timeout)
	}
}

// Every service serves metrics and health on its conf's metricsAddr and has a healthcheck that
// runs the image's binary's probe on that port's /readyz, within the healthcheck's timeout;
// the brokers start once every name server (with its controller member) is healthy.
func TestComposeHealthchecks(t *testing.T) {
	services := loadCompose(t)
	ins := readDockerfile(t)
	bin, ports := entrypoint(t, ins), exposed(ins)
	var namesrvs []string
	for _, s := range services {
		if s.role == config.NameServer {
			namesrvs = append(namesrvs, s.name)
		}
	}
	for _, s := range services {
		addr := s.conf.String(config.KeyMetricsAddr)
		if !s.conf.Has(config.KeyMetricsAddr) || addr == "" {
			t.Errorf("%s: no metricsAddr in its conf: it serves no /readyz", s.name)
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s: metricsAddr %q: %v", s.name, addr, err)
			continue
		}
		p, err := parseProbe(s.health.Test)
		if err != nil {
			t.Errorf("%s: healthcheck: %v", s.name, err)
			continue
		}
		if p.bin != bin {
			t.Errorf("%s: healthcheck runs %s, the image's binary is %s", s.name, p.bin, bin)
		}
		if p.url.Path != "/readyz" {
			t.Errorf("%s: healthcheck probes %s, want /readyz", s.name, p.url.Path)
		}
		if p.url.Port() != port {
			t.Errorf("%s: healthcheck probes port %s, its metricsAddr is %s", s.name, p.url.Port(), addr)
		}
		// The probe runs inside the container: it reaches a listener on every interface at
		// loopback or the container's address, one on a single address only there.
		reachable := map[string]bool{host: true}
		if host == "0.0.0.0" || host == "" {
			reachable["127.0.0.1"], reachable[s.ip] = true, true
		}
		if !reachable[p.url.Hostname()] {
			t.Errorf("%s: healthcheck probes %s, which a listener on %s does not answer", s.name, p.url.Host, addr)
		}
		if host != "0.0.0.0" && host != s.ip {
			t.Errorf("%s: metricsAddr %s: Prometheus outside the container cannot scrape it", s.name, addr)
		}
		if !ports[port] {
			t.Errorf("%s: metrics port %s is not among the image's EXPOSE ports", s.name, port)
		}
		timeout, err := time.ParseDuration(cmp.Or(s.health.Timeout, "30s"))
		if err != nil {
			t.Errorf("%s: healthcheck timeout: %v", s.name, err)
		} else if p.timeout >= timeout {
			t.Errorf("%s: the probe's timeout %v is not within the healthcheck's %v", s.name, p.timeout, timeout)
		}
		for _, d := range []string{s.health.Interval, s.health.StartPeriod} {
			if _, err := time.ParseDuration(d); err != nil {
				t.Errorf("%s: healthcheck interval or start_period %q: %v", s.name, d, err)
			}
		}
		if s.role == config.Broker {
			for _, ns := range namesrvs {
				if got := s.dependsOn[ns]; got != "service_healthy" {
					t.Errorf("%s: depends on %s with condition %q, want service_healthy", s.name, ns, got)
				}
			}
		}
	}
}
