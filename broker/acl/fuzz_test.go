package acl

import (
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// FuzzParse: an ACL file comes from an operator's editor (and is reloaded while it is being
// written); no input may panic the parser, and a policy it accepts must decide any request
// without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleFile))
	f.Add([]byte(checkFile))
	f.Add([]byte("accounts: ["))
	f.Add([]byte("globalWhiteRemoteAddresses: [\"1.2.3.{4,5}\", \"*\", \"10.1-3.*.*\"]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		for _, a := range p.Accounts {
			if len(a.AccessKey) <= minKeyLength || len(a.SecretKey) <= minKeyLength {
				t.Fatalf("accepted account %q with a short key", a.AccessKey)
			}
		}
		req := Credentials{"account1", "secret123"}.Sign(codec.NewRequest(codec.ReqSendMessageV2, map[string]string{"b": "T"}, nil))
		_ = p.Check("10.1.2.3:1", req)
	})
}

// FuzzAddressPattern: patterns and remote addresses are outside input; parsing and matching
// must not panic, and "*" matches everything.
func FuzzAddressPattern(f *testing.F) {
	for _, s := range []string{"*", "192.168.0.*", "192.168.1.1-100", "192.168.*.1", "192.168.1.{1,2}", "::1", "fe80::{1,2}", "1.2.3.4,5.6.7.8"} {
		f.Add(s, "192.168.1.1")
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		p, err := ParseAddressPattern(pattern)
		if err != nil {
			return
		}
		_ = p.Match(host)
		all, _ := ParseAddressPattern("*")
		if !all.Match(host) {
			t.Fatal("* did not match")
		}
	})
}

// FuzzCheck: a request's ext fields and body come from the network; deciding on them must not
// panic, and a request signed with the account's secret whose permission the account has is
// allowed whatever else its header holds.
func FuzzCheck(f *testing.F) {
	p := mustPolicy(f, checkFile)
	f.Add(int16(codec.ReqHeartBeat), "k", "v", []byte(`{"consumerDataSet":[{"groupName":"g"}]}`))
	f.Add(int16(codec.ReqSendMessageV2), "b", "Orders", []byte("x"))
	f.Add(int16(codec.ReqLockBatchMQ), "a", "", []byte(`{"consumerGroup":1}`))
	f.Fuzz(func(t *testing.T, code int16, k, v string, body []byte) {
		req := codec.NewRequest(code, map[string]string{k: v}, body)
		_ = p.Check("127.0.0.1:1", req)
		_ = p.Check("127.0.0.1:1", Credentials{"consumer1", "consumerSecret"}.Sign(req))
		if k == "b" || k == codec.ExtSignature || k == codec.ExtAccessKey || k == codec.ExtSecurityToken {
			return
		}
		send := codec.NewRequest(codec.ReqSendMessageV2, map[string]string{k: v, "b": "Orders"}, body)
		if err := p.Check("127.0.0.1:1", Credentials{"producer1", "producerSecret"}.Sign(send)); err != nil {
			t.Fatalf("a permitted signed send refused: %v", err)
		}
	})
}
