package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseProperties(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []Entry
		err  string
	}{
		{"equals", "a=b\n", []Entry{{"a", "b", 1}}, ""},
		{"spaces around", "  a  =  b c  \n", []Entry{{"a", "b c", 1}}, ""},
		{"colon", "a:b", []Entry{{"a", "b", 1}}, ""},
		{"white space separator", "a b", []Entry{{"a", "b", 1}}, ""},
		{"empty value", "a=\n", []Entry{{"a", "", 1}}, ""},
		{"key only", "a\n", []Entry{{"a", "", 1}}, ""},
		{"comments and blanks", "# x=y\n! z\n\n  \t\nk=v", []Entry{{"k", "v", 5}}, ""},
		{"crlf", "a=1\r\nb=2\r\n", []Entry{{"a", "1", 1}, {"b", "2", 2}}, ""},
		{"continuation", "a=one \\\n    two\nb=3", []Entry{{"a", "one two", 1}, {"b", "3", 3}}, ""},
		{"escaped backslash is no continuation", "a=x\\\\\nb=y", []Entry{{"a", `x\`, 1}, {"b", "y", 2}}, ""},
		{"continuation at end of file", "a=x\\", []Entry{{"a", "x", 1}}, ""},
		{"escapes", `a\=b=c\td\u0041\q`, []Entry{{"a=b", "c\tdAq", 1}}, ""},
		{"value with separators", "a=b=c:d", []Entry{{"a", "b=c:d", 1}}, ""},
		{"duplicate", "a=1\nb=2\na=3", nil, "line 3: key a set again (first set on line 1)"},
		{"bad unicode escape", `a=\u00zz`, nil, `line 1: value of a: malformed \uXXXX escape "\\u00zz"`},
		{"short unicode escape", `a=\u00`, nil, `malformed \uXXXX escape`},
		{"not utf-8", "a=\xff", nil, "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProperties([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseValuesAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		role Role
		in   string
		err  string // "" for none
	}{
		{"broker ints", Broker, "listenPort=10911\nbrokerId=0", ""},
		{"port out of range", Broker, "listenPort=70000", "f.conf:1: listenPort: bad value \"70000\": want 1 to 65535"},
		{"not an int", Broker, "\nmaxMessageSize=4M", "f.conf:2: maxMessageSize: bad value \"4M\": want an integer"},
		{"bool", Broker, "autoCreateTopicEnable=TRUE", ""},
		{"bad bool", Broker, "autoCreateTopicEnable=yes", "autoCreateTopicEnable: bad value \"yes\": want true or false"},
		{"enum any case", Broker, "flushDiskType=sync_flush", ""},
		{"bad enum", Broker, "flushDiskType=SYNC", "flushDiskType: bad value \"SYNC\": want one of SYNC_FLUSH, ASYNC_FLUSH"},
		{"bad ip", Broker, "brokerIP1=broker.local", "brokerIP1: bad value \"broker.local\": want a literal IP address"},
		{"bad namesrv", Broker, "namesrvAddr=1.2.3.4:9876;nohost", `namesrvAddr: bad value "1.2.3.4:9876;nohost": "nohost": want ip:port`},
		{"deleteWhen many", Broker, "deleteWhen=04;16", ""},
		{"bad deleteWhen", Broker, "deleteWhen=25", "deleteWhen: bad value \"25\": want hours of the day 00 to 23"},
		{"ratio range", Broker, "diskMaxUsedSpaceRatio=99", "want 0 to 95"},
		{"reserved hours", Broker, "fileReservedTime=48", ""},
		{"reserved duration", Broker, "fileReservedTime=90m", ""},
		{"reserved never", Broker, "fileReservedTime=0s", ""},
		{"reserved zero hours", Broker, "fileReservedTime=0", "fileReservedTime: bad value \"0\": want 1 to 87600 hours"},
		{"reserved garbage", Broker, "fileReservedTime=3d", "want whole hours (1 to 87600) or a duration"},
		{"misspelt key", Broker, "brokerClusterNmae=X", "f.conf:1: brokerClusterNmae: unknown key (did you mean brokerClusterName?)"},
		{"case slip", Broker, "namesrvaddr=1.2.3.4:9876", "unknown key (did you mean namesrvAddr?)"},
		{"misspelt rocketmq key", Broker, "sendMessageThreadPoolNum=4", "unknown key (did you mean sendMessageThreadPoolNums?)"},
		{"nonsense key", Broker, "frobnicate=1", "f.conf:1: frobnicate: unknown key"},
		{"controllerAddr without mode", Broker, "controllerAddr=1.2.3.4:9878", "controllerAddr: set, but enableControllerMode is not true"},
		{"mode without controllerAddr", Broker, "enableControllerMode=true", "enableControllerMode: true, but controllerAddr is not set"},
		{"controller mode", Broker, "enableControllerMode=true\ncontrollerAddr=1.2.3.4:9878;1.2.3.5:9878", ""},
		{"misspelt broker key in namesrv.conf", NameServer, "brokerNam=a", "brokerNam: unknown key (did you mean brokerName?)"},
		{"namesrv", NameServer, "listenPort=9876\nbindAddress=0.0.0.0", ""},
		{"embedded controller", NameServer, "enableControllerInNamesrv=true\ncontrollerDLegerPeers=n0-127.0.0.1:9878;n1-127.0.0.1:9868\ncontrollerDLegerSelfId=n1", ""},
		{"self not a member", NameServer, "controllerDLegerPeers=n0-127.0.0.1:9878\ncontrollerDLegerSelfId=n4",
			`controllerDLegerSelfId: "n4" is not one of controllerDLegerPeers' members (n0)`},
		{"peers without self", Controller, "controllerDLegerPeers=n0-127.0.0.1:9878", "set without controllerDLegerSelfId"},
		{"controller needs peers", Controller, "controllerStorePath=/x", "controllerDLegerPeers: required"},
		{"bad peer", Controller, "controllerDLegerPeers=127.0.0.1:9878\ncontrollerDLegerSelfId=n0", "want name-ip:port"},
		{"enable without peers", NameServer, "enableControllerInNamesrv=true", "enableControllerInNamesrv: true, but controllerDLegerPeers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.conf", []byte(tc.in), tc.role)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key == "" {
				t.Fatalf("error %v is not a *Error naming a key", err)
			}
		})
	}
}

// A real RocketMQ broker.conf: the keys Sluice uses are read and typed, the RocketMQ keys it
// does not use are reported as ignored, in file order.
func TestRocketMQBrokerConf(t *testing.T) {
	f, err := Load(filepath.Join("testdata", "rocketmq-broker.conf"), Broker)
	if err != nil {
		t.Fatal(err)
	}
	wantIgnored := []string{"storePathCommitLog", "mapedFileSizeCommitLog", "mappedFileSizeCommitLog",
		"autoCreateSubscriptionGroup", "sendMessageThreadPoolNums", "pullMessageThreadPoolNums",
		"useReentrantLockWhenPutMessage", "waitTimeMillsInSendQueue"}
	if !slices.Equal(f.Ignored, wantIgnored) {
		t.Errorf("ignored %v, want %v", f.Ignored, wantIgnored)
	}
	checks := []struct {
		got, want any
	}{
		{f.String(KeyBrokerClusterName), "DefaultCluster"},
		{f.String(KeyBrokerName), "broker-a"},
		{f.Int(KeyBrokerID), int64(0)},
		{f.List(KeyDeleteWhen), []string{"04"}},
		{f.Duration(KeyFileReservedTime), 48 * time.Hour},
		{f.String(KeyBrokerRole), "ASYNC_MASTER"},
		{f.String(KeyFlushDiskType), "ASYNC_FLUSH"},
		{f.List(KeyNamesrvAddr), []string{"10.0.0.11:9876", "10.0.0.12:9876"}},
		{f.String(KeyBrokerIP1), "10.0.0.21"},
		{f.Int(KeyListenPort), int64(10911)},
		{f.String(KeyStorePathRootDir), "/data/rocketmq/store"},
		{f.Int(KeyDiskMaxUsedSpaceRatio), int64(88)},
		{f.Int(KeyMaxMessageSize), int64(4194304)},
		{f.Bool(KeyAutoCreateTopicEnable), false},
		{f.Has(KeyAutoCreateTopicEnable), true},
		{f.Int(KeyDefaultTopicQueueNums), int64(8)},
		{f.String(KeyMessageDelayLevel), "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"},
		{f.Int(KeyTransactionTimeOut), int64(6000)},
		{f.Int(KeyTransactionCheckMax), int64(15)},
		{f.Int(KeyTransactionCheckInterval), int64(60000)},
		{f.Bool(KeyTraceTopicEnable), true},
		{f.Has(KeyACLEnable), true},
		{f.Bool(KeyACLEnable), false},
		{f.Has(KeyControllerAddr), false},
		{f.Line(KeyBrokerName), 5},
	}
	for i, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("check %d: got %#v, want %#v", i, c.got, c.want)
		}
	}
	// A broker key in a name server's file is a RocketMQ key the name server does not use.
	ns, err := Parse("namesrv.conf", []byte("listenPort=9876\nbrokerName=a\n"), NameServer)
	if err != nil || !slices.Equal(ns.Ignored, []string{"brokerName"}) {
		t.Errorf("namesrv.conf with brokerName: %v, ignored %v", err, ns.Ignored)
	}
	// The same file with one key misspelt is refused, naming the key and its line.
	text, err := os.ReadFile(filepath.Join("testdata", "rocketmq-broker.conf"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(text), "fileReservedTime", "fileReserveTime", 1)
	_, err = Parse("broker.conf", []byte(bad), Broker)
	if err == nil || err.Error() != "broker.conf:8: fileReserveTime: unknown key (did you mean fileReservedTime?)" {
		t.Fatalf("misspelt key: %v", err)
	}
}

// Format's output parses back to the same values (it is what --print-config prints).
func TestFormatRoundTrips(t *testing.T) {
	settings := []Setting{
		{Key: KeyBrokerName, Value: "broker-a", Source: "default"},
		{Key: KeyMessageDelayLevel, Value: "1s 5s", Source: "f.conf:3"},
		{Key: KeyStorePathRootDir, Value: ` /odd\path`, Source: "flag --data"},
		{Key: KeyDeleteWhen, Value: "04", Source: "default"},
	}
	var b strings.Builder
	if err := Format(&b, "effective configuration", settings); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\ndeleteWhen=04\n") || strings.Contains(b.String(), "# NOTE") {
		t.Errorf("deleteWhen missing, or marked as not acted on (retention is built):\n%s", b.String())
	}
	entries, err := ParseProperties([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(settings) {
		t.Fatalf("%d entries back, want %d:\n%s", len(entries), len(settings), b.String())
	}
	for i, e := range entries {
		if e.Key != settings[i].Key || e.Value != settings[i].Value {
			t.Errorf("entry %d: %q=%q, want %q=%q", i, e.Key, e.Value, settings[i].Key, settings[i].Value)
		}
	}
}

func TestConfigPath(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		err  bool
	}{
		{[]string{"--config", "a.conf"}, "a.conf", false},
		{[]string{"-x", "1", "-config=b.conf"}, "b.conf", false},
		{[]string{"--configx", "c"}, "", true},
		{[]string{"--", "--config", "c"}, "", true},
		{[]string{"--config"}, "", true},
		{[]string{"--config="}, "", true},
	} {
		got, err := ConfigPath(tc.args)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v: %q, %v; want %q (error %v)", tc.args, got, err, tc.want, tc.err)
		}
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"brokerNmae": "brokerName", "BROKERNAME": "brokerName", "flushDiskTyp": "flushDiskType",
		"zzzzzzzz": "", "controllerAdr": "controllerAddr",
	} {
		if got := suggest(in, Broker); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every key Sluice reads is a RocketMQ key too (that is the point of reading RocketMQ's files),
// except the few Sluice needs of its own, which say why and are not RocketMQ's.
func TestSluiceKeysAreRocketMQKeys(t *testing.T) {
	for _, k := range keys {
		switch {
		case k.own == "" && !isRocketMQKey(k.name):
			t.Errorf("%s is not a key of RocketMQ's configuration classes", k.name)
		case k.own != "" && isRocketMQKey(k.name):
			t.Errorf("%s is RocketMQ's key, yet marked as Sluice's own", k.name)
		}
	}
}

// FuzzParse: no input panics, and whatever parses has each Sluice key readable with its type.
func FuzzParse(f *testing.F) {
	text, err := os.ReadFile(filepath.Join("testdata", "rocketmq-broker.conf"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text, uint8(Broker))
	f.Add([]byte("a=\\u0041\\\n b"), uint8(NameServer))
	f.Add([]byte("controllerDLegerPeers=n0-127.0.0.1:1\ncontrollerDLegerSelfId=n0"), uint8(Controller))
	f.Fuzz(func(t *testing.T, text []byte, r uint8) {
		role := []Role{Broker, NameServer, Controller}[int(r)%3]
		cf, err := Parse("fuzz.conf", text, role)
		if err != nil {
			return
		}
		for _, k := range cf.Keys() {
			switch keyTable[k].kind {
			case kindInt:
				v := cf.Int(k)
				if v < keyTable[k].min || v > keyTable[k].max {
					t.Fatalf("%s=%d out of range", k, v)
				}
			case kindBool:
				cf.Bool(k)
			case kindRetention:
				if d := cf.Duration(k); d < 0 {
					t.Fatalf("%s=%v negative", k, d)
				}
			case kindList, kindHours:
				if len(cf.List(k)) == 0 {
					t.Fatalf("%s: empty list accepted", k)
				}
			default:
				if cf.String(k) == "" {
					t.Fatalf("%s: empty value accepted", k)
				}
			}
		}
		if _, err := cf.ControllerMembers(); err != nil {
			t.Fatalf("members of a file that parsed: %v", err)
		}
	})
}
