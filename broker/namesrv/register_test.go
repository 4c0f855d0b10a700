package namesrv

import (
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// A registration whose broker address the Go client could not parse back out of a route (it
// splits brokerAddrs on ',' and ':' by hand), or whose name is not valid UTF-8 (JSON would
// route a different name), is refused and changes nothing; good addresses of every form pass.
func TestRegisterChecksTheAddressAndName(t *testing.T) {
	cases := []struct {
		name, addr string
		wantErr    string // "" means accepted
	}{
		{"broker-a", "127.0.0.1:10911", ""},
		{"broker-a", "[::1]:10911", ""},
		{"broker-a", "broker-a.internal:10911", ""},
		{"broker-a", "127.0.0.1", "not host:port"},
		{"broker-a", ":10911", "not host:port"},
		{"broker-a", "127.0.0.1:0", "no port"},
		{"broker-a", "127.0.0.1:65536", "no port"},
		{"broker-a", "127.0.0.1:port", "no port"},
		{"broker-a", "127.0.0.1,127.0.0.2:10911", "character ','"},
		{"broker-a", " 127.0.0.1:10911", "character ' '"},
		{"broker-a", `127.0.0.1":10911`, `character '"'`},
		{"broker-a", "h\xff:10911", "character"},
		{"broker-\xff", "127.0.0.1:10911", "not valid UTF-8"},
	}
	for _, tc := range cases {
		n := startNameServer(t)
		resp := n.call(1, codec.ReqRegisterBroker, registerExt(tc.name, tc.addr, "0"), registerBody(map[string]int32{"Orders": 4}))
		if tc.wantErr == "" {
			if resp.Code != codec.Success {
				t.Errorf("register %q at %q: %d %s, want success", tc.name, tc.addr, resp.Code, resp.Remark)
			}
			continue
		}
		if resp.Code != codec.SystemError || !strings.Contains(resp.Remark, tc.wantErr) {
			t.Errorf("register %q at %q: %d %q, want 1 saying %q", tc.name, tc.addr, resp.Code, resp.Remark, tc.wantErr)
		}
		if len(n.s.brokers) != 0 {
			t.Errorf("register %q at %q was refused but the broker is routed", tc.name, tc.addr)
		}
	}
}
