package client

import (
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// A client mid-flight (a route lookup answered, a send waiting on its broker) passes its
// checks; each way of corrupting its books is reported.
func TestCheckInvariantsReportsCorruptedState(t *testing.T) {
	corrupt := map[string]struct {
		breakIt func(c *Client)
		want    string
	}{
		"connection filed under another address": {func(c *Client) { c.addrOf[c.conns[brokerAAddr]] = brokerBAddr }, "is known as the connection to"},
		"connection the address table lost":      {func(c *Client) { delete(c.conns, brokerAAddr) }, "is not the connection to"},
		"up connection never dialled":            {func(c *Client) { c.dialed[99] = true }, "connection 99 is recorded as up"},
		"call without callback":                  {func(c *Client) { c.calls[c.opaque].done = nil }, "has no callback"},
		"call without timeout":                   {func(c *Client) { c.calls[c.opaque].timer = 0 }, "has no timeout"},
		"call on an unknown connection":          {func(c *Client) { c.calls[c.opaque].conn = 42 }, "waits on connection 42"},
		"route that was never fetched":           {func(c *Client) { c.routes["T"].data = nil }, "cached route of T"},
		"broker group without addresses":         {func(c *Client) { c.brokers["broker-a"] = nil }, "broker group broker-a"},
		"consumer group under another name":      {func(c *Client) { c.consumers["g"] = ConsumerGroup{Name: "h", Model: Clustering} }, `consumer group "g"`},
	}
	for name, tc := range corrupt {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.c.RegisterConsumer(ConsumerGroup{Name: "g", Subscriptions: map[string]string{"T": "*"}})
			out := h.send("T")
			h.answerRoute("T", routeBody("broker-a"))
			f := h.next(codec.ReqSendMessage)
			h.env.Dialed(h.c, f.Conn)
			if out.calls != 0 {
				t.Fatalf("send completed before its answer: %+v", out)
			}
			if err := h.c.CheckInvariants(); err != nil {
				t.Fatalf("a client mid-send breaks an invariant: %v", err)
			}
			tc.breakIt(h.c)
			err := h.c.CheckInvariants()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckInvariants() = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
