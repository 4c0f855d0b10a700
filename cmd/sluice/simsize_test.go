package main

import (
	"slices"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]uint64{"1048576": 1 << 20, "64MiB": 64 << 20, "1.5KiB": 1536, "2MB": 2e6, "10B": 10, "0": 0} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "12 parsecs", "1e30GiB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q): no error", in)
		}
	}
}

func TestParseHours(t *testing.T) {
	if got, err := parseHours("04;16"); err != nil || !slices.Equal(got, []int{4, 16}) {
		t.Errorf("parseHours(04;16) = %v, %v", got, err)
	}
	for _, in := range []string{"", "24", "a", ";"} {
		if _, err := parseHours(in); err == nil {
			t.Errorf("parseHours(%q): no error", in)
		}
	}
}
