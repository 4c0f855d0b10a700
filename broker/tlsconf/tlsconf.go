// Package tlsconf owns TLS for Sluice's listening ports and its connections between nodes,
// configured as RocketMQ configures its remoting layer: a server mode (disabled, permissive:
// plain and TLS on one port told apart by the first byte, enforcing: TLS only), a certificate
// and key from files (re-read when the files change), optional client-certificate
// verification, and a client side for the connections a node dials.
//
// It wraps net.Listener and net.Conn and lives in the production runtime's world; node code
// never sees it.
package tlsconf

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Mode is a server's TLS mode, RocketMQ's tls.server.mode.
type Mode string

const (
	Disabled   Mode = "disabled"   // plain connections only
	Permissive Mode = "permissive" // plain and TLS on the same port
	Enforcing  Mode = "enforcing"  // TLS only: a plain client's connection is closed
)

// ClientAuth is RocketMQ's tls.server.need.client.auth: whether a server asks for and checks
// client certificates.
type ClientAuth string

const (
	AuthNone     ClientAuth = "none"
	AuthOptional ClientAuth = "optional" // a certificate a client presents is verified
	AuthRequire  ClientAuth = "require"  // a client without a valid certificate is refused
)

// Server configures TLS on a listening port.
type Server struct {
	Mode       Mode
	CertFile   string     // PEM certificate chain (tls.server.certPath)
	KeyFile    string     // PEM private key (tls.server.keyPath)
	ClientAuth ClientAuth // "" means AuthNone
	TrustFile  string     // PEM CAs that sign client certificates (tls.server.trustCertPath)
}

// Client configures TLS on the connections a node dials to other nodes.
type Client struct {
	Enable     bool   // dial with TLS (tls.enable)
	CertFile   string // PEM certificate presented to servers that ask (tls.client.certPath)
	KeyFile    string // its key (tls.client.keyPath)
	TrustFile  string // PEM CAs the server's certificate must chain to (tls.client.trustCertPath)
	AuthServer bool   // verify the server's certificate (tls.client.authServer); false accepts any
}

// tlsRecordHandshake is the first byte of every TLS connection (a handshake record); a
// RocketMQ remoting frame starts with its length's high byte, which is 0 for any frame under 16 MiB.
const tlsRecordHandshake = 0x16

// Listener wraps ln as s.Mode says: unchanged when disabled, TLS on every connection when
// enforcing, and when permissive TLS on a connection whose first byte opens a TLS handshake and
// plain on any other. The certificate is loaded now (so a bad path fails at start) and re-read
// whenever its files change.
func (s Server) Listener(ln net.Listener) (net.Listener, error) {
	if s.Mode == "" || s.Mode == Disabled {
		return ln, nil
	}
	if s.Mode != Permissive && s.Mode != Enforcing {
		return nil, fmt.Errorf("tls.server.mode %q: want disabled, permissive or enforcing", s.Mode)
	}
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	return &listener{Listener: ln, cfg: cfg, permissive: s.Mode == Permissive}, nil
}

func (s Server) config() (*tls.Config, error) {
	if s.CertFile == "" || s.KeyFile == "" {
		return nil, errors.New("tls.server.certPath and tls.server.keyPath are required when tls.server.mode is not disabled")
	}
	kp := &keyPair{certFile: s.CertFile, keyFile: s.KeyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	switch s.ClientAuth {
	case "", AuthNone:
	case AuthOptional, AuthRequire:
		if s.TrustFile == "" {
			return nil, fmt.Errorf("tls.server.need.client.auth=%s needs tls.server.trustCertPath", s.ClientAuth)
		}
		pool, err := loadPool(s.TrustFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if s.ClientAuth == AuthRequire {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	default:
		return nil, fmt.Errorf("tls.server.need.client.auth %q: want none, optional or require", s.ClientAuth)
	}
	return cfg, nil
}

// Dialer returns what the runtime calls on each connection it dials (nil when c is not
// enabled): a TLS handshake over the connection, bounded by ctx.
func (c Client) Dialer() (func(ctx context.Context, nc net.Conn, addr string) (net.Conn, error), error) {
	if !c.Enable {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !c.AuthServer}
	if c.AuthServer && c.TrustFile != "" {
		pool, err := loadPool(c.TrustFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		kp := &keyPair{certFile: c.CertFile, keyFile: c.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return func(ctx context.Context, nc net.Conn, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		conf := cfg.Clone()
		conf.ServerName = host
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
		}
		return tc, nil
	}, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trusted certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read trusted certificates %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// keyPair is a certificate and key from files, re-read when either file's size or
// modification time changes (a renewed certificate is served without a restart).
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	stamp   [2]fileStamp
	cert    *tls.Certificate
	checked time.Time
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// recheckEvery bounds how often the files are looked at again.
const recheckEvery = time.Second

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cert != nil && time.Since(k.checked) < recheckEvery {
		return k.cert, nil
	}
	k.checked = time.Now()
	var stamp [2]fileStamp
	for i, p := range []string{k.certFile, k.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			if k.cert != nil {
				return k.cert, nil // keep serving the last good pair while files are replaced
			}
			return nil, fmt.Errorf("tls certificate: %w", err)
		}
		stamp[i] = fileStamp{fi.Size(), fi.ModTime()}
	}
	if k.cert != nil && stamp == k.stamp {
		return k.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil
		}
		return nil, fmt.Errorf("tls certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.stamp = &cert, stamp
	return k.cert, nil
}

// listener hands out TLS (or, when permissive, sniffed) connections.
type listener struct {
	net.Listener
	cfg        *tls.Config
	permissive bool
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.permissive {
		return tls.Server(nc, l.cfg), nil
	}
	return &sniffConn{Conn: nc, cfg: l.cfg}, nil
}

// sniffConn decides on its first read (or write) whether the peer speaks TLS, from the first
// byte it sent, without blocking the accept loop.
type sniffConn struct {
	net.Conn // the raw connection, for addresses and deadlines
	cfg      *tls.Config

	once   sync.Once
	inner  net.Conn // the TLS or plain connection, once decided
	reader *bufio.Reader
	err    error
}

func (c *sniffConn) decide() {
	c.once.Do(func() {
		c.reader = bufio.NewReaderSize(c.Conn, 1)
		first, err := c.reader.Peek(1)
		if err != nil {
			c.err = err
			return
		}
		buffered := &readerConn{Conn: c.Conn, r: c.reader}
		if first[0] == tlsRecordHandshake {
			c.inner = tls.Server(buffered, c.cfg)
		} else {
			c.inner = buffered
		}
	})
}

func (c *sniffConn) Read(p []byte) (int, error) {
	c.decide()
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Read(p)
}

func (c *sniffConn) Write(p []byte) (int, error) {
	c.decide()
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Write(p)
}

// readerConn is a connection whose reads go through r (which holds the peeked byte).
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
