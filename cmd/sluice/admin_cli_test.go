package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// Bad flags of the message and route commands exit 2 with the reason, before anything is
// dialled (the name server given does not exist).
func TestAdminMessageCommandUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topicRoute"}, "--topic is required"},
		{[]string{"topicRoute", "A", "B"}, "at most one argument"},
		{[]string{"topicRoute", "-t", "A", "B"}, "two topics named"},
		{[]string{"queryMsgByOffset", "-t", "T", "-i", "0", "-o", "1"}, "--broker"},
		{[]string{"queryMsgByOffset", "-t", "T", "-b", "broker-a", "-o", "1"}, "--queue is required"},
		{[]string{"queryMsgByOffset", "-t", "T", "-b", "broker-a", "-i", "0"}, "--offset is required"},
		{[]string{"sendMessage", "-t", "T"}, "--body is required"},
		{[]string{"sendMessage", "-p", "x"}, "--topic is required"},
		{[]string{"sendMessage", "-t", "T", "-p", "x", "-i", "1"}, "--queue needs --broker"},
		{[]string{"consumeMessage"}, "--topic is required"},
		{[]string{"consumeMessage", "-t", "T", "-i", "1"}, "--queue needs --broker"},
		{[]string{"consumeMessage", "-t", "T", "-b", "broker-a", "-o", "3"}, "--offset needs --queue"},
		{[]string{"consumeMessage", "-t", "T", "-c", "0"}, "--count must be at least 1"},
		{[]string{"consumeMessage", "-t", "T", "-s", "yesterday"}, "--begin"},
	} {
		var o, e bytes.Buffer
		code := adminMain(append(tc.args, "-n", "127.0.0.1:1"), &o, &e)
		if code != 2 || !strings.Contains(e.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying %q", tc.args, code, e.String(), tc.want)
		}
	}
}

// mqadmin's time forms for -s and -e, and RFC 3339.
func TestParseAdminTime(t *testing.T) {
	local := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.Local).UnixMilli()
	for in, want := range map[string]int64{
		"":                          0,
		"1767225600123":             1767225600123,
		"2026-01-02#03:04:05:006":   local,
		"2026-01-01T00:00:00.123Z":  1767225600123,
		"2026-01-01T01:00:00+01:00": 1767225600000,
	} {
		if got, err := parseAdminTime(in); err != nil || got != want {
			t.Errorf("parseAdminTime(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseAdminTime("2026-01-02"); err == nil {
		t.Error("parseAdminTime(\"2026-01-02\"): no error")
	}
}

// A body in one table cell: text as is, cut long, quoted when it would garble a terminal,
// hex when it is not UTF-8, "-" when empty.
func TestLineBody(t *testing.T) {
	for _, tc := range []struct {
		body []byte
		want string
	}{
		{[]byte("hello world"), "hello world"},
		{nil, "-"},
		{[]byte("a\x01b\nc"), `"a\x01b\nc"`},
		{[]byte{0xff, 0x00, 0x10}, "0xff0010"},
		{[]byte(strings.Repeat("é", 70)), strings.Repeat("é", 60) + "..."},
	} {
		if got := lineBody(&codec.Message{Body: tc.body}); got != tc.want {
			t.Errorf("lineBody(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestPermString(t *testing.T) {
	for perm, want := range map[int32]string{
		route.PermRead | route.PermWrite: "RW- (6)", route.PermRead: "R-- (4)", 0: "--- (0)",
		route.PermRead | route.PermWrite | route.PermInherit: "RWX (7)",
	} {
		if got := permString(perm); got != want {
			t.Errorf("permString(%d) = %q, want %q", perm, got, want)
		}
	}
}
