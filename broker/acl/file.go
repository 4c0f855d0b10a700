package acl

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileBytes bounds an ACL file: a bigger one is refused before it is parsed.
const MaxFileBytes = 4 << 20

// minKeyLength: RocketMQ refuses an access key or secret key of this many characters or fewer.
const minKeyLength = 6

// fileYAML is plain_acl.yml as RocketMQ writes it. Keys Sluice does not read (dataVersion,
// which RocketMQ's admin commands write) are ignored.
type fileYAML struct {
	GlobalWhiteRemoteAddresses []string      `yaml:"globalWhiteRemoteAddresses"`
	Accounts                   []accountYAML `yaml:"accounts"`
}

type accountYAML struct {
	AccessKey          string   `yaml:"accessKey"`
	SecretKey          string   `yaml:"secretKey"`
	WhiteRemoteAddress string   `yaml:"whiteRemoteAddress"`
	Admin              bool     `yaml:"admin"`
	DefaultTopicPerm   string   `yaml:"defaultTopicPerm"`
	DefaultGroupPerm   string   `yaml:"defaultGroupPerm"`
	TopicPerms         []string `yaml:"topicPerms"`
	GroupPerms         []string `yaml:"groupPerms"`
}

// Parse parses an ACL file in RocketMQ's plain_acl.yml format. It is stricter than RocketMQ
// where RocketMQ would load something that cannot be what was meant: an account without an
// access key or secret key longer than 6 characters, an access key listed twice (RocketMQ
// lets the later one win), a permission that is not DENY, PUB, SUB, PUB|SUB or SUB|PUB
// (RocketMQ reads it as DENY), an entry of topicPerms or groupPerms that is not name=perm,
// and an address pattern it cannot parse. A missing defaultTopicPerm or defaultGroupPerm is
// DENY, as in RocketMQ.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("acl file: %d bytes, more than %d", len(data), MaxFileBytes)
	}
	var f fileYAML
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("acl file: %w", err)
	}
	p := &Policy{Accounts: make(map[string]*Account, len(f.Accounts))}
	for _, s := range f.GlobalWhiteRemoteAddresses {
		if strings.TrimSpace(s) == "" {
			continue // RocketMQ's blank pattern matches nothing
		}
		w, err := ParseAddressPattern(s)
		if err != nil {
			return nil, fmt.Errorf("acl file: globalWhiteRemoteAddresses: %w", err)
		}
		p.GlobalWhite = append(p.GlobalWhite, w)
	}
	for i, a := range f.Accounts {
		acc, err := a.account()
		if err != nil {
			return nil, fmt.Errorf("acl file: accounts[%d]: %w", i, err)
		}
		if _, dup := p.Accounts[acc.AccessKey]; dup {
			return nil, fmt.Errorf("acl file: accounts[%d]: accessKey %s is listed twice", i, acc.AccessKey)
		}
		p.Accounts[acc.AccessKey] = acc
	}
	return p, nil
}

func (a accountYAML) account() (*Account, error) {
	ak, sk := strings.TrimSpace(a.AccessKey), strings.TrimSpace(a.SecretKey)
	if len(ak) <= minKeyLength {
		return nil, fmt.Errorf("accessKey %q: want more than %d characters", ak, minKeyLength)
	}
	if len(sk) <= minKeyLength {
		return nil, fmt.Errorf("accessKey %s: secretKey: want more than %d characters", ak, minKeyLength)
	}
	acc := &Account{AccessKey: ak, SecretKey: sk, Admin: a.Admin, Resources: map[string]Perm{}}
	if strings.TrimSpace(a.WhiteRemoteAddress) != "" {
		w, err := ParseAddressPattern(a.WhiteRemoteAddress)
		if err != nil {
			return nil, fmt.Errorf("accessKey %s: whiteRemoteAddress: %w", ak, err)
		}
		acc.White = w
	}
	var err error
	if acc.DefaultTopicPerm, err = parsePerm(a.DefaultTopicPerm, true); err != nil {
		return nil, fmt.Errorf("accessKey %s: defaultTopicPerm: %w", ak, err)
	}
	if acc.DefaultGroupPerm, err = parsePerm(a.DefaultGroupPerm, true); err != nil {
		return nil, fmt.Errorf("accessKey %s: defaultGroupPerm: %w", ak, err)
	}
	for _, list := range []struct {
		name   string
		items  []string
		prefix string
	}{{"topicPerms", a.TopicPerms, ""}, {"groupPerms", a.GroupPerms, RetryPrefix}} {
		for _, item := range list.items {
			name, perm, ok := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" || strings.Contains(perm, "=") {
				return nil, fmt.Errorf("accessKey %s: %s: %q: want name=perm", ak, list.name, item)
			}
			p, err := parsePerm(perm, false)
			if err != nil {
				return nil, fmt.Errorf("accessKey %s: %s: %q: %w", ak, list.name, item, err)
			}
			acc.Resources[list.prefix+name] = p
		}
	}
	return acc, nil
}

var errBadPerm = errors.New("want DENY, PUB, SUB or PUB|SUB")

// parsePerm reads a permission as RocketMQ writes it; "" is DENY if missingOK.
func parsePerm(s string, missingOK bool) (Perm, error) {
	switch strings.TrimSpace(s) {
	case "":
		if missingOK {
			return Deny, nil
		}
	case "DENY":
		return Deny, nil
	case "PUB":
		return Pub, nil
	case "SUB":
		return Sub, nil
	case "PUB|SUB", "SUB|PUB":
		return Pub | Sub, nil
	}
	return 0, fmt.Errorf("%q: %w", s, errBadPerm)
}
