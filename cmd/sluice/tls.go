package main

import (
	"flag"
	"fmt"

	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/runtime"
	"github.com/sluicemq/sluice/broker/tlsconf"
)

// transport is the process's TLS, applied to every runtime it starts: their listening ports
// (tls.server.*) and the connections their nodes dial (tls.enable, tls.client.*). A role sets
// it once, from its configuration file, before it starts anything; the zero value is plain TCP.
var transport runtimeTLS

type runtimeTLS struct {
	server tlsconf.Server
	client tlsconf.Client
}

// tlsFromFile reads the tls.* keys of a configuration file (nil: none).
func tlsFromFile(f *config.File) runtimeTLS {
	var t runtimeTLS
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
	return t
}

// setTransport checks t (certificates load, modes are known) and makes it the process's.
func setTransport(t runtimeTLS) error {
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
func (t runtimeTLS) apply(c runtime.Config) runtime.Config {
	if t.server.Mode != "" && t.server.Mode != tlsconf.Disabled {
		c.WrapListener = t.server.Listener
	}
	if dial, _ := t.client.Dialer(); dial != nil {
		c.WrapDial = dial
	}
	return c
}

// devTLSFlags declares 'sluice dev's TLS flags; the function returned reads them. The nodes
// of a dev cluster dial each other with TLS when their ports enforce it.
func devTLSFlags(fs *flag.FlagSet) func() runtimeTLS {
	mode := fs.String("tls-mode", "disabled", "TLS on every port: disabled, permissive (plain and TLS on one port) or enforcing (TLS only)")
	cert := fs.String("tls-cert", "", "PEM certificate chain the ports serve (with --tls-mode)")
	key := fs.String("tls-key", "", "PEM private key of --tls-cert")
	return func() runtimeTLS {
		return runtimeTLS{
			server: tlsconf.Server{Mode: tlsconf.Mode(*mode), CertFile: *cert, KeyFile: *key},
			client: tlsconf.Client{Enable: tlsconf.Mode(*mode) == tlsconf.Enforcing},
		}
	}
}
