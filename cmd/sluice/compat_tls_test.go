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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/config"
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
	// Not parallel: producer.WithTls(true) sets a process-wide default of the official client
	// (see resetOfficialTLS), which would make the clients of tests running alongside dial TLS.
	t.Cleanup(func() { resetOfficialTLS(t) })
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

	topic := uniqueName(t, "tls")
	p := c.newProducer(t, producer.WithTls(true))
	sent := map[string]*primitive.Message{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 10 {
		m := userMessage(topic, i)
		res, err := p.SendSync(ctx, m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d over TLS: %v %v", i, res, err)
		}
		sent[res.MsgID] = m
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{}, consumer.WithTls(true))
	expectExactly(t, in, sent, 30*time.Second)

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
	// Not parallel: producer.WithTls(true) sets a process-wide default of the official client
	// (see resetOfficialTLS), which would make the clients of tests running alongside dial TLS.
	t.Cleanup(func() { resetOfficialTLS(t) })
	cert, key := selfSignedCert(t, t.TempDir())
	c := startCompat(t, "--tls-mode", "permissive", "--tls-cert", cert, "--tls-key", key)
	topic := uniqueName(t, "tls")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := map[string]*primitive.Message{}
	for i, p := range []interface {
		SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
	}{c.newProducer(t, producer.WithTls(true)), c.newProducer(t)} {
		m := userMessage(topic, i)
		res, err := p.SendSync(ctx, m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send from producer %d (TLS: %v): %v %v", i, i == 0, res, err)
		}
		sent[res.MsgID] = m
	}
	in := c.startConsumer(t, topic, consumer.MessageSelector{})
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
	got := tlsFromFile(f)
	want := runtimeTLS{
		server: tlsconf.Server{Mode: tlsconf.Enforcing, CertFile: "/c.pem", KeyFile: "/k.pem", ClientAuth: tlsconf.AuthRequire, TrustFile: "/ca.pem"},
		client: tlsconf.Client{Enable: true, CertFile: "/cc.pem", KeyFile: "/ck.pem", TrustFile: "/cca.pem", AuthServer: true},
	}
	if got != want {
		t.Errorf("tlsFromFile = %+v, want %+v", got, want)
	}
	if err := setTransport(got); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("setTransport with missing certificate files: %v, want an error", err)
	}
	if got := tlsFromFile(nil); got != (runtimeTLS{}) {
		t.Errorf("no file: %+v, want plain TCP", got)
	}
}
