// Package acl owns Sluice's access control, RocketMQ's ACL 1.0 as the Java broker enforces it:
// the plain_acl.yml file (accounts, their secrets, whitelists and permissions), the signature
// a client puts on each request (HMAC-SHA1 over the sorted ext fields and the body, as
// RocketMQ's AclClientRPCHook and the official Go client's ACL interceptor compute it), and the
// decision whether an account may make a request: which permission each request code needs on
// which topic or group (rules.go).
//
// The decision (Policy.Check) is pure: it reads no file and no clock, so it can run anywhere.
// Guard (guard.go) is what a runtime hands requests to: it holds the current Policy, swaps it
// when the file is reloaded (Watch, the one part that reads files and starts a goroutine), and
// turns a refusal into RocketMQ's NO_PERMISSION answer, logging it without the secret.
package acl

import (
	"fmt"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
)

// Perm is a permission bit set, with RocketMQ's bits (Java's Permission).
type Perm uint8

// RocketMQ's permission bits. DENY wins over any other bit.
const (
	Deny Perm = 1 << iota
	Any
	Pub
	Sub
)

func (p Perm) String() string {
	switch {
	case p&Deny != 0:
		return "DENY"
	case p&(Pub|Sub) == Pub|Sub:
		return "PUB|SUB"
	case p&Pub != 0:
		return "PUB"
	case p&Sub != 0:
		return "SUB"
	case p&Any != 0:
		return "ANY"
	}
	return "DENY"
}

// allows reports whether owned grants needed (Java's Permission.checkPermission).
func (owned Perm) allows(needed Perm) bool {
	if owned&Deny != 0 {
		return false
	}
	if needed&Any != 0 {
		return owned&(Pub|Sub) != 0
	}
	return needed&owned != 0
}

// RetryPrefix starts a group's retry topic. RocketMQ keys a group's permission by its retry
// topic (%RETRY%group), so a resource with this prefix is a group.
const RetryPrefix = "%RETRY%"

// Account is one entry of the file's accounts.
type Account struct {
	AccessKey string
	SecretKey string
	// White exempts requests from matching addresses from the signature and permission checks,
	// as in RocketMQ; nil matches nothing.
	White            *AddressPattern
	Admin            bool
	DefaultTopicPerm Perm
	DefaultGroupPerm Perm
	// Resources are the explicit permissions: topics by name, groups by retry topic.
	Resources map[string]Perm
}

// Policy is a parsed ACL file: what Check decides with.
type Policy struct {
	// GlobalWhite exempts requests from matching addresses from every check.
	GlobalWhite []*AddressPattern
	Accounts    map[string]*Account
}

// Need is one permission a request needs on one resource (a topic, or a group's retry topic).
type Need struct {
	Resource string
	Perm     Perm
}

func (n Need) String() string {
	if g, ok := strings.CutPrefix(n.Resource, RetryPrefix); ok {
		return fmt.Sprintf("%s on group:%s", n.Perm, g)
	}
	return fmt.Sprintf("%s on topic:%s", n.Perm, n.Resource)
}

// Refusal is why Check refused a request; its message is the remark of the NO_PERMISSION
// answer. It never holds a secret.
type Refusal struct {
	AccessKey string
	Code      int32
	Reason    string
}

func (r *Refusal) Error() string { return r.Reason }

// Check decides whether the request cmd, arriving from remote ("ip:port"), may be served: nil
// if so, a *Refusal if not. It follows RocketMQ's PlainPermissionManager.validate: a code
// rules.go marks open passes; then an address on the global whitelist passes; otherwise the
// request must name a known account (AccessKey), and an address on that account's whitelist
// passes; otherwise the signature must be right, an admin code needs an admin account, and
// every resource the request touches needs the account's permission on it (the explicit one,
// else the account's default for topics or groups).
func (p *Policy) Check(remote string, cmd *codec.Command) error {
	code := cmd.WireCode()
	r := ruleFor(code)
	if r.kind == open {
		return nil
	}
	host := hostOf(remote)
	for _, w := range p.GlobalWhite {
		if w.Match(host) {
			return nil
		}
	}
	auth, _ := codec.DecodeHeader[codec.ACLHeader](cmd)
	refuse := func(format string, args ...any) error {
		return &Refusal{AccessKey: auth.AccessKey, Code: code, Reason: fmt.Sprintf(format, args...)}
	}
	if auth.AccessKey == "" {
		return refuse("no permission for %s: the request is not signed (no AccessKey)", codeName(code))
	}
	acc := p.Accounts[auth.AccessKey]
	if acc == nil {
		return refuse("no permission for %s: no ACL account %s", codeName(code), auth.AccessKey)
	}
	if acc.White != nil && acc.White.Match(host) {
		return nil
	}
	if !Verify(cmd, acc.SecretKey, auth) {
		return refuse("no permission for %s: signature check failed for accessKey=%s", codeName(code), auth.AccessKey)
	}
	if r.kind == admin {
		if !acc.Admin {
			return refuse("no permission for %s: it needs an admin account, and accessKey=%s is not", codeName(code), auth.AccessKey)
		}
		return nil
	}
	if r.needs == nil {
		return nil
	}
	needs, err := r.needs(cmd)
	if err != nil {
		return refuse("no permission for %s: cannot tell what it touches: %v", codeName(code), err)
	}
	if acc.Admin && len(acc.Resources) == 0 {
		return nil // RocketMQ: an admin with no explicit permissions may touch anything
	}
	for _, n := range needs {
		if !acc.owns(n) {
			return refuse("no permission for %s: accessKey=%s lacks %s", codeName(code), auth.AccessKey, n)
		}
	}
	return nil
}

// owns reports whether a grants n: its explicit permission on the resource, else its default.
func (a *Account) owns(n Need) bool {
	owned, ok := a.Resources[n.Resource]
	if !ok {
		owned = a.DefaultTopicPerm
		if strings.HasPrefix(n.Resource, RetryPrefix) {
			owned = a.DefaultGroupPerm
		}
	}
	return owned.allows(n.Perm)
}

// codeName is a request code as refusals name it: RocketMQ's name and the number.
func codeName(code int32) string {
	if name := codec.RequestCodeName(code); name != "" {
		return fmt.Sprintf("%s (%d)", name, code)
	}
	return fmt.Sprintf("request code %d", code)
}
