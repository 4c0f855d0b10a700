package brokernode

import (
	"strings"
	"testing"
)

// TestCheckInvariantsCatchesBrokenStates breaks one invariant at a time in a healthy broker
// and expects CheckInvariants to name it; the healthy broker passes.
func TestCheckInvariantsCatchesBrokenStates(t *testing.T) {
	cases := []struct {
		name    string
		replica bool
		breakIt func(b *Broker)
		want    string
	}{
		{"pending out of order", false, func(b *Broker) {
			b.acks.pending = append(b.acks.pending, b.acks.pending[0])
		}, "is not above"},
		{"pending at or below confirmed", false, func(b *Broker) {
			b.acks.pending[0].index = b.store.Confirmed()
		}, "is not above"},
		{"durable beyond the log", false, func(b *Broker) {
			b.acks.durable = b.store.CommitLog().LastIndex() + 1
		}, "durable index"},
		{"confirmed beyond durable", false, func(b *Broker) {
			b.acks.durable = 0
		}, "beyond the durable index"},
		{"discarding a sync not in flight", false, func(b *Broker) {
			b.acks.syncInFlight, b.acks.discardSync = false, true
		}, "none in flight"},
		{"parked pulls over the cap", false, func(b *Broker) {
			b.cfg.MaxParkedPulls = -1
		}, "MaxParkedPulls"},
		{"a single broker with a replica's policy", false, func(b *Broker) {
			b.acks.policy = holdAcks{}
		}, "acknowledges by"},
		{"a master acknowledging by the flush", true, func(b *Broker) {
			b.acks.policy = flushAcks{}
		}, "not by its in-sync set"},
		{"a master serving beyond its durable index", true, func(b *Broker) {
			b.master().servable = b.acks.durable + 1
		}, "serving up to"},
		{"a replica that is not master owing answers", true, func(b *Broker) {
			b.install(idleRole{}, holdAcks{}) // without leaving the master role, which orphans them
		}, "owes answers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h *brokerHarness
			if tc.replica {
				cfg := replicaConfig()
				cfg.BrokerID = 1
				cfg.Addr = testMaster
				h = startBroker(t, cfg, nil)
				h.controllerSays(1, testMaster, 1, "1", 1)
				if h.b.master() == nil {
					t.Fatal("the controller named the broker master, but it is not")
				}
			} else {
				h = startBroker(t, testConfig(), nil)
			}
			c := h.env.accept(h.b, "10.0.0.1:5000")
			h.send(c, "T", 0, "a", nil)
			h.syncAll()
			h.send(c, "T", 0, "b", nil) // stays pending: its fsync is not completed
			if len(h.b.acks.pending) != 1 {
				t.Fatalf("%d writes pending, want 1", len(h.b.acks.pending))
			}
			if err := h.b.CheckInvariants(); err != nil {
				t.Fatalf("a healthy broker fails its invariants: %v", err)
			}
			tc.breakIt(h.b)
			err := h.b.CheckInvariants()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckInvariants = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
