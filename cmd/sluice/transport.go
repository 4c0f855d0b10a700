package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/runtime"
	"github.com/sluicemq/sluice/broker/tlsconf"
)

// transport is the process's network settings, applied to every runtime it starts: TLS on
// their listening ports (tls.server.*) and on the connections their nodes dial (tls.enable,
// tls.client.*), and the limits on what clients can make a node hold. A role sets it once, from
// its configuration file, before it starts anything; the zero value is plain TCP with the
// runtime's default limits.
var transport transportSettings

type transportSettings struct {
	server tlsconf.Server
	client tlsconf.Client
	limits runtime.Limits
}

// transportFromFile reads the tls.* and limit keys of a configuration file (nil: none).
func transportFromFile(f *config.File) transportSettings {
	var t transportSettings
	if f == nil {
		return t
	}
	str := func(key string) string {
		if f.Has(key) {
			return f.String(key)
		}
		return ""
	}
	t.server = tlsconf.Server{Mode: tlsconf.Mode(str(config.KeyTLSServerMode)), CertFile: str(config.KeyTLSServerCertPath),
		KeyFile: str(config.KeyTLSServerKeyPath), ClientAuth: tlsconf.ClientAuth(str(config.KeyTLSServerClientAuth)),
		TrustFile: str(config.KeyTLSServerTrustPath)}
	t.client = tlsconf.Client{CertFile: str(config.KeyTLSClientCertPath), KeyFile: str(config.KeyTLSClientKeyPath),
		TrustFile: str(config.KeyTLSClientTrustPath)}
	if f.Has(config.KeyTLSEnable) {
		t.client.Enable = f.Bool(config.KeyTLSEnable)
	}
	if f.Has(config.KeyTLSClientAuthServer) {
		t.client.AuthServer = f.Bool(config.KeyTLSClientAuthServer)
	}
	t.limits = limitsFromFile(f)
	return t
}

// setTransport checks t (certificates load, modes are known) and makes it the process's.
func setTransport(t transportSettings) error {
	if _, err := t.server.Listener(nil); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if _, err := t.client.Dialer(); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	transport = t
	return nil
}

// apply sets the runtime configuration's listener and dial wrappers from t.
func (t transportSettings) apply(c runtime.Config) runtime.Config {
	if t.server.Mode != "" && t.server.Mode != tlsconf.Disabled {
		c.WrapListener = t.server.Listener
	}
	if dial, _ := t.client.Dialer(); dial != nil {
		c.WrapDial = dial
	}
	c.Limits = t.limits
	return c
}

// devTLSFlags declares 'sluice dev's TLS flags; the function returned reads them. The nodes
// of a dev cluster dial each other with TLS when their ports enforce it.
func devTLSFlags(fs *flag.FlagSet) func() transportSettings {
	mode := fs.String("tls-mode", "disabled", "TLS on every port: disabled, permissive (plain and TLS on one port) or enforcing (TLS only)")
	cert := fs.String("tls-cert", "", "PEM certificate chain the ports serve (with --tls-mode)")
	key := fs.String("tls-key", "", "PEM private key of --tls-cert")
	return func() transportSettings {
		return transportSettings{
			server: tlsconf.Server{Mode: tlsconf.Mode(*mode), CertFile: *cert, KeyFile: *key},
			client: tlsconf.Client{Enable: tlsconf.Mode(*mode) == tlsconf.Enforcing},
		}
	}
}

// limitsFromFile reads the limit keys of a configuration file; unset keys keep the runtime's
// defaults, -1 turns a limit off.
func limitsFromFile(f *config.File) runtime.Limits {
	var l runtime.Limits
	num := func(key string) int64 {
		if f.Has(key) {
			return f.Int(key)
		}
		return 0
	}
	ms := func(key string) time.Duration {
		if n := num(key); n > 0 {
			return time.Duration(n) * time.Millisecond
		} else if n < 0 {
			return -1
		}
		return 0
	}
	if f.Has(config.KeyServerChannelMaxIdleTimeSeconds) {
		l.IdleTimeout = -1 // 0 or less: never, as Java's IdleStateHandler
		if n := f.Int(config.KeyServerChannelMaxIdleTimeSeconds); n > 0 {
			l.IdleTimeout = time.Duration(n) * time.Second
		}
	}
	l.MaxConns = int(num(config.KeyMaxConnections))
	l.MaxConnsPerAddr = int(num(config.KeyMaxConnectionsPerAddress))
	l.MaxInflightPerConn = int(num(config.KeyMaxRequestsInFlight))
	l.FrameReadTimeout = ms(config.KeyFrameReadTimeoutMillis)
	l.WriteStallTimeout = ms(config.KeyWriteStallTimeoutMillis)
	l.MaxPartialFrameBytes = num(config.KeyMaxPartialFrameBytes)
	l.MaxOutboundTotalBytes = num(config.KeyMaxOutboundBytesTotal)
	return l
}
