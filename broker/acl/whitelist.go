package acl

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// AddressPattern is a whitelist entry in one of RocketMQ's forms (its
// RemoteAddressStrategyFactory):
//
//   - "*", "*.*.*.*" or "*:*:*:*:*:*:*:*": every address;
//   - one address, IPv4 or IPv6 ("192.168.0.1", "::1");
//   - a list: "192.168.0.1,192.168.0.2", or a common prefix and a list of endings,
//     "192.168.1.{1,2,3}";
//   - IPv4 octet ranges: each octet a number, "*" (0-255) or "a-b" ("192.168.*.*",
//     "192.168.1.1-100", "10.1-3.*.*", "192.168.*.1").
//
// Unlike Java, every octet of a range is checked: Java ignores the octets after the first
// wildcard, so that "192.168.*.1" matches 192.168.5.7 there and not here. IPv6 ranges are not
// supported (an error names the entry).
type AddressPattern struct {
	text   string
	all    bool
	addrs  []netip.Addr // one address or a list
	octets *[4][2]uint8 // an IPv4 range: each octet's low and high
}

func (p *AddressPattern) String() string { return p.text }

// ParseAddressPattern parses one whitelist entry; "" is an error (callers skip blank entries).
func ParseAddressPattern(s string) (*AddressPattern, error) {
	s = strings.TrimSpace(s)
	p := &AddressPattern{text: s}
	switch {
	case s == "":
		return nil, fmt.Errorf("empty address pattern")
	case s == "*" || s == "*.*.*.*" || s == "*:*:*:*:*:*:*:*":
		p.all = true
	case strings.HasSuffix(s, "}"):
		open := strings.LastIndexByte(s, '{')
		if open < 0 {
			return nil, fmt.Errorf("address pattern %q: '}' without '{'", s)
		}
		prefix := s[:open]
		for _, end := range strings.Split(s[open+1:len(s)-1], ",") {
			a, err := parseAddr(prefix + strings.TrimSpace(end))
			if err != nil {
				return nil, fmt.Errorf("address pattern %q: %w", s, err)
			}
			p.addrs = append(p.addrs, a)
		}
	case strings.Contains(s, ","):
		for _, one := range strings.Split(s, ",") {
			a, err := parseAddr(strings.TrimSpace(one))
			if err != nil {
				return nil, fmt.Errorf("address pattern %q: %w", s, err)
			}
			p.addrs = append(p.addrs, a)
		}
	case strings.ContainsAny(s, "*-"):
		if strings.Contains(s, ":") {
			return nil, fmt.Errorf("address pattern %q: IPv6 ranges are not supported", s)
		}
		o, err := parseOctets(s)
		if err != nil {
			return nil, fmt.Errorf("address pattern %q: %w", s, err)
		}
		p.octets = o
	default:
		a, err := parseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("address pattern %q: %w", s, err)
		}
		p.addrs = []netip.Addr{a}
	}
	return p, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// parseOctets parses an IPv4 range: four octets, each a number, "*" or "a-b" with a <= b.
func parseOctets(s string) (*[4][2]uint8, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return nil, fmt.Errorf("want four octets")
	}
	var o [4][2]uint8
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "*" {
			o[i] = [2]uint8{0, 255}
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		l, err := octet(lo)
		if err != nil {
			return nil, err
		}
		h := l
		if isRange {
			if h, err = octet(hi); err != nil {
				return nil, err
			}
			if l > h {
				return nil, fmt.Errorf("range %s runs backwards", part)
			}
		}
		o[i] = [2]uint8{l, h}
	}
	return &o, nil
}

func octet(s string) (uint8, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%q is not an octet (0 to 255)", s)
	}
	return uint8(n), nil
}

// Match reports whether host (an IP address without a port) matches the pattern.
func (p *AddressPattern) Match(host string) bool {
	if p.all {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.WithZone("").Unmap()
	if p.octets != nil {
		if !a.Is4() {
			return false
		}
		b := a.As4()
		for i, r := range p.octets {
			if b[i] < r[0] || b[i] > r[1] {
				return false
			}
		}
		return true
	}
	return slices.Contains(p.addrs, a)
}

// hostOf is the host part of a remote address ("ip:port"); the address itself if it has no
// port.
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}
