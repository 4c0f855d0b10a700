package main

import (
	"bytes"
	"compress/zlib"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/adminclient"
	"github.com/sluicemq/sluice/broker/codec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s (run go test -run %s -update and review the diff):\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// The message block 'sluice admin msg' prints, for a text body with keys, tags and user
// properties, a binary body (hex), a compressed one (shown inflated), an empty one, a long one
// (cut at maxShownBody), and properties with control characters (quoted).
func TestAdminMessageFormat(t *testing.T) {
	born := netip.MustParseAddrPort("127.0.0.1:50000")
	store := netip.MustParseAddrPort("127.0.0.1:10911")
	base := func(body []byte, props map[string]string) *codec.Message {
		return &codec.Message{Topic: "Orders", QueueID: 2, QueueOffset: 17, PhysicalOffset: 42, Flag: 0,
			BornTimestamp: 1767225600000, BornHost: born, StoreTimestamp: 1767225600123, StoreHost: store,
			Body: body, Properties: codec.EncodeProperties(props)}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(strings.Repeat("compressed text ", 4)))
	zw.Close()
	compressed := base(z.Bytes(), map[string]string{codec.PropUniqKey: "C0A8000100002A9F0000000000000003"})
	compressed.SysFlag = codec.SysFlagCompressed
	msgs := []*codec.Message{
		base([]byte("hello\nsecond line"), map[string]string{codec.PropUniqKey: "C0A8000100002A9F0000000000000001",
			codec.PropKeys: "order-1 customer-7", codec.PropTags: "TagA", "user": "x"}),
		base([]byte{0, 1, 2, 0xff, 'a', 'b'}, map[string]string{codec.PropKeys: "bin"}),
		compressed,
		base(nil, map[string]string{"odd\tkey": "va\x03lue"}),
		base([]byte(strings.Repeat("0123456789", 6)), nil),
	}
	defer func(n int) { maxShownBody = n }(maxShownBody)
	maxShownBody = 50
	var out bytes.Buffer
	for _, m := range msgs {
		printMessage(&out, adminclient.Found{Broker: "127.0.0.1:10911", Msg: m})
		out.WriteString("\n")
	}
	golden(t, "admin_msg.golden", out.Bytes())
}

// Usage errors exit 2 before anything is dialled.
func TestAdminUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"topic"},
		{"topic", "frobnicate", "x"},
		{"topic", "create"},
		{"topic", "create", "a", "b"},
		{"topic", "create", "--queues", "0", "T"},
		{"msg", "key", "k"}, // no --topic
		{"msg", "id"},
		{"topic", "list", "--no-such-flag"},
		{"--namesrv", "127.0.0.1:1"},
		{"--namesrv", "127.0.0.1:1", "msg"},
	} {
		var stdout, stderr bytes.Buffer
		if code := adminMain(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("sluice admin %q: exit %d, stderr %q; want 2 with a message", args, code, stderr.String())
		}
	}
}

// Flags may follow the positional arguments.
func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	topic := fs.String("topic", "", "")
	max := fs.Int("max", 0, "")
	pos, err := parseInterspersed(fs, []string{"--max", "3", "key-1", "--topic", "T", "key-2"})
	if err != nil || *topic != "T" || *max != 3 || strings.Join(pos, ",") != "key-1,key-2" {
		t.Fatalf("got pos %v topic %q max %d err %v", pos, *topic, *max, err)
	}
}
