package codec

import (
	"strings"
	"testing"
)

// FuzzParseOffsetMsgID: parsing never panics, and an id it accepts is the id OffsetMsgID writes
// for what it parsed (hex case aside; an IPv4-mapped IPv6 host is written back as IPv4).
func FuzzParseOffsetMsgID(f *testing.F) {
	f.Add("7F000001000051AF0000000000000000")
	f.Add("7f000001000051af00000000000000ff")
	f.Add("000000000000000000000000000000010000270F0000000000000001")
	f.Add("00000000000000000000FFFF7F000001000051AF0000000000000000")
	f.Add("7F000001FFFFFFFF0000000000000000")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, id string) {
		host, off, err := ParseOffsetMsgID(id)
		if err != nil || !canonicalHost(host) {
			return
		}
		if again := OffsetMsgID(host, off); again != strings.ToUpper(id) {
			t.Fatalf("ParseOffsetMsgID(%q) = %v, %d; written back as %q", id, host, off, again)
		}
	})
}
