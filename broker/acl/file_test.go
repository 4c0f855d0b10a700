package acl

import (
	"strings"
	"testing"
)

// sampleFile is a plain_acl.yml in the shape RocketMQ ships (its distribution's conf/
// plain_acl.yml): a secret written as a YAML number, a blank whitelist, both group and topic
// permissions, and a dataVersion Sluice does not read.
const sampleFile = `
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*
  -

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      # the group should convert to retry topic
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    # if it is admin, it could access all resources
    admin: true
dataVersion:
  - counter: 1
    timestamp: 1700000000000
`

func TestParseRocketMQSample(t *testing.T) {
	p, err := Parse([]byte(sampleFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.GlobalWhite) != 2 || p.GlobalWhite[0].String() != "10.10.103.*" || p.GlobalWhite[1].String() != "192.168.0.*" {
		t.Fatalf("global whitelist %v", p.GlobalWhite)
	}
	a := p.Accounts["RocketMQ"]
	if a == nil || a.SecretKey != "12345678" || a.Admin || a.White != nil {
		t.Fatalf("account RocketMQ: %+v", a)
	}
	if a.DefaultTopicPerm != Deny || a.DefaultGroupPerm != Sub {
		t.Errorf("defaults %v %v, want DENY SUB", a.DefaultTopicPerm, a.DefaultGroupPerm)
	}
	want := map[string]Perm{"topicA": Deny, "topicB": Pub | Sub, "topicC": Sub,
		"%RETRY%groupA": Deny, "%RETRY%groupB": Pub | Sub, "%RETRY%groupC": Sub}
	if len(a.Resources) != len(want) {
		t.Errorf("resources %v, want %v", a.Resources, want)
	}
	for r, perm := range want {
		if a.Resources[r] != perm {
			t.Errorf("resource %s: %v, want %v", r, a.Resources[r], perm)
		}
	}
	b := p.Accounts["rocketmq2"]
	if b == nil || !b.Admin || b.White == nil || !b.White.Match("192.168.1.77") || b.White.Match("192.168.2.1") {
		t.Fatalf("account rocketmq2: %+v", b)
	}
	// Unset defaults are DENY, as RocketMQ reads a missing permission.
	if b.DefaultTopicPerm != Deny || b.DefaultGroupPerm != Deny {
		t.Errorf("rocketmq2 defaults %v %v, want DENY DENY", b.DefaultTopicPerm, b.DefaultGroupPerm)
	}
}

func TestParseRefuses(t *testing.T) {
	acct := func(extra string) string {
		return "accounts:\n  - accessKey: account1\n    secretKey: secret123\n" + extra
	}
	for _, tc := range []struct {
		name, text, err string
	}{
		{"not yaml", "accounts: [", "acl file"},
		{"accounts not a list", "accounts: 3", "acl file"},
		{"short access key", "accounts:\n  - accessKey: abc\n    secretKey: secret123\n", "want more than 6"},
		{"short secret", "accounts:\n  - accessKey: account1\n    secretKey: 123456\n", "secretKey"},
		{"no secret", "accounts:\n  - accessKey: account1\n", "secretKey"},
		{"duplicate", acct("") + "  - accessKey: account1\n    secretKey: other1234\n", "listed twice"},
		{"bad default perm", acct("    defaultTopicPerm: WRITE\n"), "defaultTopicPerm"},
		{"bad resource perm", acct("    topicPerms:\n      - t=RW\n"), "topicPerms"},
		{"resource without perm", acct("    groupPerms:\n      - g\n"), "want name=perm"},
		{"resource with two =", acct("    groupPerms:\n      - g=SUB=PUB\n"), "want name=perm"},
		{"empty resource perm", acct("    topicPerms:\n      - t=\n"), "topicPerms"},
		{"bad account whitelist", acct("    whiteRemoteAddress: 300.1.1.1\n"), "whiteRemoteAddress"},
		{"bad global whitelist", "globalWhiteRemoteAddresses:\n  - 10.*.1-\n", "globalWhiteRemoteAddresses"},
		{"too big", "# " + strings.Repeat("x", MaxFileBytes), "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "secret123") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestParseEmptyFileHasNoAccounts(t *testing.T) {
	p, err := Parse(nil)
	if err != nil || len(p.Accounts) != 0 || len(p.GlobalWhite) != 0 {
		t.Fatalf("empty file: %+v, %v", p, err)
	}
}
