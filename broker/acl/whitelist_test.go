package acl

import (
	"strings"
	"testing"
)

func TestAddressPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"*", []string{"1.2.3.4", "::1"}, nil},
		{"*.*.*.*", []string{"10.0.0.1"}, nil},
		{"*:*:*:*:*:*:*:*", []string{"fe80::1"}, nil},
		{"192.168.0.1", []string{"192.168.0.1", "::ffff:192.168.0.1"}, []string{"192.168.0.2", "not an ip", ""}},
		{"::1", []string{"::1", "0:0:0:0:0:0:0:1"}, []string{"127.0.0.1"}},
		{"192.168.0.*", []string{"192.168.0.0", "192.168.0.255"}, []string{"192.168.1.1", "::1"}},
		{"192.168.1.1-100", []string{"192.168.1.1", "192.168.1.100"}, []string{"192.168.1.0", "192.168.1.101"}},
		{"10.1-3.*.*", []string{"10.1.0.0", "10.3.255.255"}, []string{"10.4.0.0", "11.1.0.0"}},
		// Every octet counts (Java ignores the octets after the first wildcard).
		{"192.168.*.1", []string{"192.168.5.1"}, []string{"192.168.5.7"}},
		{"192.168.1.{1,2,3}", []string{"192.168.1.1", "192.168.1.3"}, []string{"192.168.1.4"}},
		{"192.168.1.1,10.0.0.1", []string{"192.168.1.1", "10.0.0.1"}, []string{"192.168.1.2"}},
		{"fe80::{1,2}", []string{"fe80::1", "fe80:0:0:0:0:0:0:2"}, []string{"fe80::3"}},
	} {
		p, err := ParseAddressPattern(tc.pattern)
		if err != nil {
			t.Errorf("%q: %v", tc.pattern, err)
			continue
		}
		for _, a := range tc.match {
			if !p.Match(a) {
				t.Errorf("%q does not match %q", tc.pattern, a)
			}
		}
		for _, a := range tc.miss {
			if p.Match(a) {
				t.Errorf("%q matches %q", tc.pattern, a)
			}
		}
	}
}

func TestAddressPatternRefuses(t *testing.T) {
	for _, s := range []string{"", "  ", "300.1.1.1", "1.2.3", "1.2.3.4.5", "192.168.1.100-1", "192.168.1.-5",
		"192.168.1.1-300", "a.b.c.*", "fe80::*", "fe80::1-5", "192.168.1.{1,x}", "1.2.3.4}", "host.example",
		"fe80::1%eth0", "1.2.3.4,"} {
		if p, err := ParseAddressPattern(s); err == nil {
			t.Errorf("%q parsed as %v", s, p)
		}
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{"1.2.3.4:5": "1.2.3.4", "[::1]:9876": "::1", "1.2.3.4": "1.2.3.4"} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.Contains(hostOf("x"), "x") {
		t.Error("hostOf drops an address without a port")
	}
}
