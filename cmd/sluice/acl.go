package main

// ACL (docs/security.md): the config keys aclEnable, aclFile, aclAccessKey and aclSecretKey,
// turned into what a node's runtime is given: a gate that checks each request against the ACL
// file (reloaded when it changes) and a signer for the node's own requests.

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/broker/acl"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/runtime"
)

// aclReloadInterval is how often the ACL file is checked for changes.
const aclReloadInterval = time.Second

// aclSettings are a process's ACL keys.
type aclSettings struct {
	enable bool
	file   string
	creds  acl.Credentials
}

func aclSettingsOf(f *config.File) aclSettings {
	var s aclSettings
	if f == nil {
		return s
	}
	s.enable = f.Bool(config.KeyACLEnable)
	if f.Has(config.KeyACLFile) {
		s.file = f.String(config.KeyACLFile)
	}
	if f.Has(config.KeyACLAccessKey) {
		s.creds.AccessKey = f.String(config.KeyACLAccessKey)
	}
	if f.Has(config.KeyACLSecretKey) {
		s.creds.SecretKey = f.String(config.KeyACLSecretKey)
	}
	return s
}

// nodeSecurity is what a node's runtime gets from the ACL settings; the zero value checks
// and signs nothing.
type nodeSecurity struct {
	gate func(remote string, req *codec.Command) *codec.Command
	sign func(req *codec.Command) *codec.Command
	// creds sign the requests a process makes outside a runtime (a broker's unregistration).
	creds acl.Credentials
}

// apply sets the runtime config's Gate and Sign.
func (s nodeSecurity) apply(c runtime.Config) runtime.Config {
	c.Gate, c.Sign = s.gate, s.sign
	return c
}

// signRequest signs req with the process's account, if it has one.
func (s nodeSecurity) signRequest(req *codec.Command) *codec.Command {
	if s.sign == nil {
		return req
	}
	return s.sign(req)
}

// startACL loads the ACL file and starts watching it (for the life of the process) when
// aclEnable is set, and prepares the signer when an account is configured.
func startACL(s aclSettings, logger *slog.Logger) (nodeSecurity, error) {
	var sec nodeSecurity
	if (s.creds.AccessKey == "") != (s.creds.SecretKey == "") {
		return sec, fmt.Errorf("%s and %s must be set together", config.KeyACLAccessKey, config.KeyACLSecretKey)
	}
	if s.creds.AccessKey != "" {
		sec.creds = s.creds
		sec.sign = s.creds.Sign
	}
	if !s.enable {
		return sec, nil
	}
	if s.file == "" {
		return sec, fmt.Errorf("%s=true needs %s, the plain_acl.yml file", config.KeyACLEnable, config.KeyACLFile)
	}
	p, data, err := acl.Load(s.file)
	if err != nil {
		return sec, err
	}
	if s.creds.AccessKey == "" {
		logger.Warn("acl: aclEnable=true without aclAccessKey: this node's own requests (registration, heartbeats, replication) go unsigned, and nodes with ACL on refuse them")
	}
	g := acl.NewGuard(p, logger)
	acl.Watch(g, s.file, data, aclReloadInterval, nil)
	sec.gate = g.Admit
	logger.Info("acl: on", "file", s.file, "accounts", len(p.Accounts), "globalWhiteRemoteAddresses", len(p.GlobalWhite),
		"signedAs", s.creds.AccessKey)
	return sec, nil
}

// aclEffective adds the ACL keys to a --print-config listing when the file sets any of them;
// the secret key is shown masked.
func aclEffective(b *settingsBuilder, s aclSettings) {
	if b.f == nil || !(b.f.Has(config.KeyACLEnable) || b.f.Has(config.KeyACLFile) || b.f.Has(config.KeyACLAccessKey)) {
		return
	}
	b.add(config.KeyACLEnable, strconv.FormatBool(s.enable))
	if s.file != "" {
		b.add(config.KeyACLFile, s.file)
	}
	if s.creds.AccessKey != "" {
		b.add(config.KeyACLAccessKey, s.creds.AccessKey)
		b.add(config.KeyACLSecretKey, "********")
	}
}
