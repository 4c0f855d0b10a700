package tlsconf

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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
)

// authority is a test CA that issues certificates into files.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newAuthority(t *testing.T) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	a := &authority{cert: cert, key: key, dir: t.TempDir()}
	writePEM(t, filepath.Join(a.dir, "ca.pem"), "CERTIFICATE", der)
	return a
}

func (a *authority) caFile() string { return filepath.Join(a.dir, "ca.pem") }

// issue writes a certificate for 127.0.0.1 with this serial (and its key) to name.pem and
// name-key.pem, and returns their paths.
func (a *authority) issue(t *testing.T, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(a.dir, name+".pem"), filepath.Join(a.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// echoServer serves s on a loopback port: each connection's lines are echoed back.
func echoServer(t *testing.T, s Server) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listener(raw)
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write([]byte(sc.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return raw.Addr().String()
}

// roundTrip sends a line over c and reads the echo.
func roundTrip(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func plainEcho(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	got, err := roundTrip(c)
	if err == nil && got != "ping\n" {
		err = &net.OpError{Op: "echo", Err: os.ErrInvalid}
	}
	return err
}

func tlsEcho(addr string, cl Client) (*tls.ConnectionState, error) {
	dial, err := cl.Dialer()
	if err != nil {
		return nil, err
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, nc, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := roundTrip(c); err != nil {
		return nil, err
	}
	st := c.(*tls.Conn).ConnectionState()
	return &st, nil
}

// Permissive serves plain and TLS clients on one port; enforcing only TLS ones; disabled only
// plain ones.
func TestModes(t *testing.T) {
	ca := newAuthority(t)
	cert, key := ca.issue(t, "server", 2)
	tlsClient := Client{Enable: true, AuthServer: true, TrustFile: ca.caFile()}
	for _, tc := range []struct {
		mode           Mode
		plainOK, tlsOK bool
	}{
		{Disabled, true, false},
		{Permissive, true, true},
		{Enforcing, false, true},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			addr := echoServer(t, Server{Mode: tc.mode, CertFile: cert, KeyFile: key})
			if err := plainEcho(addr); (err == nil) != tc.plainOK {
				t.Errorf("plain client: err %v, want success %v", err, tc.plainOK)
			}
			if _, err := tlsEcho(addr, tlsClient); (err == nil) != tc.tlsOK {
				t.Errorf("TLS client: err %v, want success %v", err, tc.tlsOK)
			}
		})
	}
}

// A client that verifies the server refuses a certificate from another authority; one that
// does not (RocketMQ's default, and the official Go client's) accepts it.
func TestClientVerifiesServer(t *testing.T) {
	ca, other := newAuthority(t), newAuthority(t)
	cert, key := ca.issue(t, "server", 2)
	addr := echoServer(t, Server{Mode: Enforcing, CertFile: cert, KeyFile: key})
	if _, err := tlsEcho(addr, Client{Enable: true, AuthServer: true, TrustFile: other.caFile()}); err == nil {
		t.Error("a server certificate from an untrusted authority was accepted")
	}
	if _, err := tlsEcho(addr, Client{Enable: true}); err != nil {
		t.Errorf("a client that does not verify could not connect: %v", err)
	}
}

// need.client.auth=require refuses a client without a certificate, or with one from another
// authority; optional accepts one without but verifies one presented.
func TestClientAuth(t *testing.T) {
	ca, other := newAuthority(t), newAuthority(t)
	cert, key := ca.issue(t, "server", 2)
	goodCert, goodKey := ca.issue(t, "client", 3)
	badCert, badKey := other.issue(t, "stranger", 4)
	none := Client{Enable: true}
	good := Client{Enable: true, CertFile: goodCert, KeyFile: goodKey}
	bad := Client{Enable: true, CertFile: badCert, KeyFile: badKey}
	for _, tc := range []struct {
		auth                  ClientAuth
		noneOK, goodOK, badOK bool
	}{
		{AuthRequire, false, true, false},
		{AuthOptional, true, true, false},
		{AuthNone, true, true, true},
	} {
		t.Run(string(tc.auth), func(t *testing.T) {
			addr := echoServer(t, Server{Mode: Enforcing, CertFile: cert, KeyFile: key, ClientAuth: tc.auth, TrustFile: ca.caFile()})
			for _, c := range []struct {
				name string
				cl   Client
				ok   bool
			}{{"no certificate", none, tc.noneOK}, {"trusted certificate", good, tc.goodOK}, {"untrusted certificate", bad, tc.badOK}} {
				// TLS 1.3 reports a refused client certificate on the first read, not the handshake.
				if _, err := tlsEcho(addr, c.cl); (err == nil) != c.ok {
					t.Errorf("%s: err %v, want success %v", c.name, err, c.ok)
				}
			}
		})
	}
}

// A renewed certificate is served to new connections without a restart.
func TestCertificateReloaded(t *testing.T) {
	ca := newAuthority(t)
	cert, key := ca.issue(t, "server", 2)
	addr := echoServer(t, Server{Mode: Enforcing, CertFile: cert, KeyFile: key})
	serial := func() int64 {
		st, err := tlsEcho(addr, Client{Enable: true})
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 2 {
		t.Fatalf("serial %d, want 2", got)
	}
	time.Sleep(10 * time.Millisecond) // a later modification time
	ca.issue(t, "server", 7)
	deadline := time.Now().Add(5 * recheckEvery)
	for serial() != 7 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate (serial 7) was never served")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Bad settings fail when the listener is made, naming what is wrong.
func TestBadSettings(t *testing.T) {
	ca := newAuthority(t)
	cert, key := ca.issue(t, "server", 2)
	for _, tc := range []struct {
		s    Server
		want string
	}{
		{Server{Mode: "strict", CertFile: cert, KeyFile: key}, "want disabled, permissive or enforcing"},
		{Server{Mode: Enforcing}, "certPath and tls.server.keyPath are required"},
		{Server{Mode: Enforcing, CertFile: cert, KeyFile: filepath.Join(ca.dir, "missing.pem")}, "no such file"},
		{Server{Mode: Enforcing, CertFile: key, KeyFile: cert}, "tls certificate"},
		{Server{Mode: Enforcing, CertFile: cert, KeyFile: key, ClientAuth: AuthRequire}, "needs tls.server.trustCertPath"},
		{Server{Mode: Enforcing, CertFile: cert, KeyFile: key, ClientAuth: "sometimes", TrustFile: ca.caFile()}, "want none, optional or require"},
		{Server{Mode: Enforcing, CertFile: cert, KeyFile: key, ClientAuth: AuthRequire, TrustFile: key}, "no PEM certificate"},
	} {
		if _, err := tc.s.Listener(nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want one containing %q", tc.s, err, tc.want)
		}
	}
}
