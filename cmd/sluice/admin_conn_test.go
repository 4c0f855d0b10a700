package main

import (
	"testing"
	"time"
)

// resetOffsetByTime's -s takes what mqadmin's does (now, epoch milliseconds,
// yyyy-MM-dd#HH:mm:ss:SSS in local time) and RFC 3339.
func TestParseResetTime(t *testing.T) {
	now := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	local := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.Local).UnixMilli()
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"now", now.UnixMilli(), false},
		{"1700000000000", 1700000000000, false},
		{"-1", -1, false},
		{"2026-01-02#03:04:05:006", local, false},
		{"2026-01-02T03:04:05.006Z", time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC).UnixMilli(), false},
		{"yesterday", 0, true},
		{"2026-01-02 03:04:05", 0, true},
		{"", 0, true},
	} {
		got, err := parseResetTime(tc.in, now)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseResetTime(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
