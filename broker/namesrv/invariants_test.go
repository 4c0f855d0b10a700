package namesrv

import (
	"strings"
	"testing"
	"time"
)

// A name server's state after registrations passes its checks; each way of corrupting a
// broker's record is reported, naming the broker.
func TestCheckInvariantsReportsCorruptedRecords(t *testing.T) {
	corrupt := map[string]struct {
		breakIt func(b *liveBroker, s *Server)
		want    string
	}{
		"filed under another address": {func(b *liveBroker, _ *Server) { b.addr = "127.0.0.9:10911" }, "has address 127.0.0.9:10911"},
		"no group name":               {func(b *liveBroker, _ *Server) { b.brokerName = "" }, `group name ""`},
		"group name not UTF-8":        {func(b *liveBroker, _ *Server) { b.brokerName = "a\xff" }, "group name"},
		"no topic table":              {func(b *liveBroker, _ *Server) { b.topics = nil }, "no topic table"},
		"no registration time":        {func(b *liveBroker, _ *Server) { b.lastUpdate = time.Time{} }, "no registration time"},
		"address clients cannot parse": {func(b *liveBroker, s *Server) {
			delete(s.brokers, b.addr)
			b.addr = "127.0.0.1,x:10911"
			s.brokers[b.addr] = b
		}, "clients cannot parse"},
		"nil record": {func(b *liveBroker, s *Server) { s.brokers[b.addr] = nil }, "has no record"},
	}
	for name, c := range corrupt {
		t.Run(name, func(t *testing.T) {
			n := startNameServer(t)
			n.register(1, "broker-a", "127.0.0.1:10911", "0", map[string]int32{"Orders": 4})
			n.register(2, "broker-a", "127.0.0.2:10911", "1", map[string]int32{"Orders": 4})
			if err := n.s.CheckInvariants(); err != nil {
				t.Fatalf("registered brokers break an invariant: %v", err)
			}
			c.breakIt(n.s.brokers["127.0.0.1:10911"], n.s)
			err := n.s.CheckInvariants()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CheckInvariants() = %v, want an error saying %q", err, c.want)
			}
		})
	}
}
