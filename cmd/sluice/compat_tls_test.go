package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/runtime"
	"github.com/sluicemq/sluice/broker/tlsconf"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key (generated now: no key is
// committed) into dir and returns their paths.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// With TLS enforced on every port ('sluice dev --tls-mode enforcing': the name server and the
// broker, which registers over TLS), the official Go client with WithTls(true) sends and
// consumes, and a plain connection is refused.
func TestCompatTLSEnforcing(t *testing.T) {
	t.Parallel()
	cert, key := selfSignedCert(t, t.TempDir())
	c := startCompat(t, "--tls-mode", "enforcing", "--tls-cert", cert, "--tls-key", key)

	// A plain remoting request gets no answer: the port speaks only TLS.
	nc, err := net.DialTimeout("tcp", c.NameServer, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := codec.Encode(&codec.Command{Code: codec.ReqGetBrokerClusterInfo, Opaque: 1})
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write(frame)
	if n, err := nc.Read(make([]byte, 64)); err == nil {
		t.Errorf("a plain request to an enforcing name server read %d bytes back", n)
	}
	nc.Close()

	runTLSClient(t, c, uniqueName(t, "tls"), 10)

	// The admin tool reaches the cluster with --tls, and not without it.
	var out, errOut bytes.Buffer
	if code := adminMain([]string{"clusterList", "--tls", "--timeout", "3s", "-n", c.NameServer}, &out, &errOut); code != 0 || !strings.Contains(out.String(), c.Broker) {
		t.Errorf("sluice admin clusterList --tls: exit %d\n%s%s", code, &out, &errOut)
	}
	if code := adminMain([]string{"clusterList", "--timeout", "3s", "-n", c.NameServer}, &out, &errOut); code == 0 {
		t.Error("sluice admin clusterList without --tls reached an enforcing name server")
	}
}

// Permissive mode serves TLS and plain clients on the same port.
func TestCompatTLSPermissive(t *testing.T) {
	t.Parallel()
	cert, key := selfSignedCert(t, t.TempDir())
	c := startCompat(t, "--tls-mode", "permissive", "--tls-cert", cert, "--tls-key", key)
	runTLSClient(t, c, uniqueName(t, "tls"), 5)
	topic := uniqueName(t, "plain")
	p := c.newProducer(t)
	sent := map[string]*primitive.Message{}
	for i := range 5 {
		m := userMessage(topic, i)
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("plain send %d to a permissive broker: %v %v", i, res, err)
		}
		sent[res.MsgID] = m
	}
	expectExactly(t, c.startConsumer(t, topic, consumer.MessageSelector{}), sent, 30*time.Second)
}

// tlsClientEnv names the cluster and workload of TestTLSClientProcess.
const tlsClientEnv = "SLUICE_TLS_CLIENT"

// runTLSClient runs the official Go client with WithTls(true) against c in a process of its own
// (this test binary, running TestTLSClientProcess): the client's TLS option sets a process-wide
// default, which would turn TLS on for every other official client of the test process. The
// process sends n messages to topic and consumes them all, or fails.
func runTLSClient(t *testing.T, c *compatCluster, topic string, n int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTLSClientProcess$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d", tlsClientEnv, c.NameServer, c.Broker, topic, n))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTLSClientProcess") {
		t.Fatalf("the official client over TLS: %v\n%s", err, out)
	}
}

// TestTLSClientProcess is the body of runTLSClient's process; run on its own (without the
// environment runTLSClient sets) it has nothing to connect to and skips.
func TestTLSClientProcess(t *testing.T) {
	spec := os.Getenv(tlsClientEnv)
	if spec == "" {
		t.Skip("the TLS client process of TestCompatTLS*, started by runTLSClient")
	}
	f := strings.Split(spec, "|")
	n, err := strconv.Atoi(f[3])
	if len(f) != 4 || err != nil {
		t.Fatalf("%s=%q: want ns|broker|topic|n", tlsClientEnv, spec)
	}
	c := &compatCluster{NameServer: f[0], Broker: f[1]}
	p := c.newProducer(t, producer.WithTls(true))
	sent := map[string]*primitive.Message{}
	for i := range n {
		m := userMessage(f[2], i)
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d over TLS: %v %v", i, res, err)
		}
		sent[res.MsgID] = m
	}
	in := c.startConsumer(t, f[2], consumer.MessageSelector{}, consumer.WithTls(true))
	expectExactly(t, in, sent, 30*time.Second)
}

// The tls.* keys of a configuration file set the process's TLS.
func TestTLSFromFile(t *testing.T) {
	text := "tls.server.mode=enforcing\ntls.server.certPath=/c.pem\ntls.server.keyPath=/k.pem\n" +
		"tls.server.need.client.auth=require\ntls.server.trustCertPath=/ca.pem\ntls.enable=true\n" +
		"tls.client.certPath=/cc.pem\ntls.client.keyPath=/ck.pem\ntls.client.trustCertPath=/cca.pem\ntls.client.authServer=true\n"
	f, err := config.Parse("broker.conf", []byte(text), config.Broker)
	if err != nil {
		t.Fatal(err)
	}
	got := transportFromFile(f)
	want := transportSettings{
		server: tlsconf.Server{Mode: tlsconf.Enforcing, CertFile: "/c.pem", KeyFile: "/k.pem", ClientAuth: tlsconf.AuthRequire, TrustFile: "/ca.pem"},
		client: tlsconf.Client{Enable: true, CertFile: "/cc.pem", KeyFile: "/ck.pem", TrustFile: "/cca.pem", AuthServer: true},
	}
	if got != want {
		t.Errorf("transportFromFile = %+v, want %+v", got, want)
	}
	if err := setTransport(got); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("setTransport with missing certificate files: %v, want an error", err)
	}
	if got := transportFromFile(nil); got != (transportSettings{}) {
		t.Errorf("no file: %+v, want plain TCP", got)
	}
}

// The limit keys of a configuration file set the runtime's limits; unset ones keep its
// defaults, -1 (or an idle time of 0, as Java) turns one off.
func TestLimitsFromFile(t *testing.T) {
	text := "serverChannelMaxIdleTimeSeconds=0\nmaxConnections=500\nmaxConnectionsPerAddress=-1\n" +
		"maxRequestsInFlightPerConnection=64\nframeReadTimeoutMillis=1500\nwriteStallTimeoutMillis=-1\n"
	f, err := config.Parse("namesrv.conf", []byte(text), config.NameServer)
	if err != nil {
		t.Fatal(err)
	}
	want := runtime.Limits{IdleTimeout: -1, MaxConns: 500, MaxConnsPerAddr: -1, MaxInflightPerConn: 64,
		FrameReadTimeout: 1500 * time.Millisecond, WriteStallTimeout: -1}
	if got := limitsFromFile(f); got != want {
		t.Errorf("limitsFromFile = %+v, want %+v", got, want)
	}
}
