package adminclient

import (
	"regexp"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// UNIQ_KEYs are 32 upper-case hex digits, this process's prefix first, and differ from one
// message to the next.
func TestNewUniqKey(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := newUniqKey()
		if !regexp.MustCompile(`^[0-9A-F]{32}$`).MatchString(k) {
			t.Fatalf("uniq key %q is not 32 upper-case hex digits", k)
		}
		if seen[k] {
			t.Fatalf("uniq key %q made twice", k)
		}
		seen[k] = true
	}
}

// The send statuses Java's producer reports for the codes of a stored message; no status for
// a refusal.
func TestSendStatus(t *testing.T) {
	for code, want := range map[int16]string{codec.Success: "SEND_OK", 10: "FLUSH_DISK_TIMEOUT", 11: "SLAVE_NOT_AVAILABLE",
		12: "FLUSH_SLAVE_TIMEOUT", codec.SystemError: "", codec.TopicNotExist: ""} {
		if got := sendStatus(code); got != want {
			t.Errorf("sendStatus(%d) = %q, want %q", code, got, want)
		}
	}
}

// Writable queues come from groups with a master only, in order; the next attempt avoids the
// group that just refused, unless no other group has a queue.
func TestWriteQueuesAndPick(t *testing.T) {
	r := &route.TopicRouteData{
		QueueDatas: []route.QueueData{
			{BrokerName: "b", ReadQueueNums: 2, WriteQueueNums: 2, Perm: route.PermRead | route.PermWrite},
			{BrokerName: "a", ReadQueueNums: 2, WriteQueueNums: 1, Perm: route.PermRead | route.PermWrite},
			{BrokerName: "c", ReadQueueNums: 2, WriteQueueNums: 2, Perm: route.PermRead | route.PermWrite},
			{BrokerName: "d", ReadQueueNums: 2, WriteQueueNums: 2, Perm: route.PermRead},
		},
		BrokerDatas: []route.BrokerData{
			{BrokerName: "a", BrokerAddrs: map[string]string{"0": "a:1"}},
			{BrokerName: "b", BrokerAddrs: map[string]string{"0": "b:1", "1": "b:2"}},
			{BrokerName: "c", BrokerAddrs: map[string]string{"1": "c:2"}}, // no master
			{BrokerName: "d", BrokerAddrs: map[string]string{"0": "d:1"}},
		},
	}
	qs := writeQueues(r, "T")
	want := []Queue{{"T", "a", 0}, {"T", "b", 0}, {"T", "b", 1}}
	if len(qs) != len(want) {
		t.Fatalf("writeQueues = %v, want %v", qs, want)
	}
	for i := range want {
		if qs[i] != want[i] {
			t.Fatalf("writeQueues = %v, want %v", qs, want)
		}
	}
	if got := pickAvoiding(qs, 1, "b"); got != want[0] {
		t.Errorf("pickAvoiding(1, avoid b) = %v, want %v", got, want[0])
	}
	if got := pickAvoiding(qs, 4, ""); got != want[1] {
		t.Errorf("pickAvoiding(4) = %v, want %v (round robin)", got, want[1])
	}
	if got := pickAvoiding(qs[1:], 0, "b"); got != want[1] {
		t.Errorf("pickAvoiding with only b's queues = %v, want %v", got, want[1])
	}
	if addr, err := groupAddr(r, "c"); err != nil || addr != "c:2" {
		t.Errorf("groupAddr of a group without master = %q, %v; want its replica c:2", addr, err)
	}
}
