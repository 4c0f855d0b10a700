package client

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/sluicemq/sluice/broker/node"
)

// CheckInvariants implements node.InvariantChecker. What must hold between events:
//   - conns and addrOf are each other's inverse: one connection per broker address, and every
//     connection the client dialled is known by its address (so OnConnClosed finds it);
//   - a connection known to be up is one the client dialled and has not seen close;
//   - every waiting call has a callback and a timer and waits on a connection the client
//     knows, so its response, its connection's close or its timer completes it exactly once;
//   - cached routes, known broker groups and registered consumer groups are whole records.
//
// The simulator calls it after every event, so the common case walks each map once without
// sorting; only a broken state is walked again in key order, so the error is the same in
// every run.
func (c *Client) CheckInvariants() error {
	if err := firstBroken(c.conns, func(addr string, conn node.ConnID) error {
		if c.addrOf[conn] != addr {
			return fmt.Errorf("client: the connection to %s, %d, is known as the connection to %q", addr, conn, c.addrOf[conn])
		}
		return nil
	}); err != nil {
		return err
	}
	// Every entry of conns has its inverse in addrOf, which makes conns one-to-one; with as
	// many entries in addrOf, addrOf holds nothing else.
	if len(c.addrOf) != len(c.conns) {
		return firstBroken(c.addrOf, func(conn node.ConnID, addr string) error {
			if c.conns[addr] != conn {
				return fmt.Errorf("client: connection %d to %s is not the connection to %s (%d is)", conn, addr, addr, c.conns[addr])
			}
			return nil
		})
	}
	if err := firstBroken(c.dialed, func(conn node.ConnID, up bool) error {
		if _, ok := c.addrOf[conn]; !ok || !up {
			return fmt.Errorf("client: connection %d is recorded as up but is not one the client dialled and still has", conn)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := firstBroken(c.calls, func(op int32, cl *call) error {
		switch {
		case cl == nil || cl.done == nil:
			return fmt.Errorf("client: call %d has no callback", op)
		case cl.timer == 0:
			return fmt.Errorf("client: call %d has no timeout", op)
		}
		if _, ok := c.addrOf[cl.conn]; !ok {
			return fmt.Errorf("client: call %d waits on connection %d, which the client does not know: nothing would fail it when that closes", op, cl.conn)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := firstBroken(c.routes, func(topic string, r *cachedRoute) error {
		if r == nil || r.data == nil || r.fetched.IsZero() {
			return fmt.Errorf("client: the cached route of %s is not a fetched route", topic)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := firstBroken(c.brokers, func(group string, addrs map[string]string) error {
		if addrs == nil {
			return fmt.Errorf("client: broker group %s has no address table", group)
		}
		return nil
	}); err != nil {
		return err
	}
	return firstBroken(c.consumers, func(name string, g ConsumerGroup) error {
		if g.Name != name || g.Model == "" {
			return fmt.Errorf("client: consumer group %q is registered as %q with model %q", name, g.Name, g.Model)
		}
		return nil
	})
}

// firstBroken runs check on every entry of m and returns nil if none fails, else the error of
// the entry with the smallest key that fails.
func firstBroken[K cmp.Ordered, V any](m map[K]V, check func(K, V) error) error {
	broken := false
	for k, v := range m {
		if check(k, v) != nil {
			broken = true
			break
		}
	}
	if !broken {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := check(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}
