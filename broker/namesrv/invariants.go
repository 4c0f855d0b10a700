package namesrv

import (
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// CheckInvariants implements node.InvariantChecker: every registered broker is filed under its
// own address, and holds what register accepted (an address clients can parse back out of a
// route, a valid group name, a topic table, a registration time), so every route and cluster
// table the server builds from it encodes and parses.
func (s *Server) CheckInvariants() error {
	// Walked in map order while every broker holds (the common case, after every event in the
	// simulator), and again in address order once one does not, so the error is the same in
	// every run.
	for addr, b := range s.brokers {
		if brokerInvariant(addr, b) != nil {
			for _, addr := range slices.Sorted(maps.Keys(s.brokers)) {
				if err := brokerInvariant(addr, s.brokers[addr]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// brokerInvariant checks the record b filed under addr.
func brokerInvariant(addr string, b *liveBroker) error {
	switch {
	case b == nil:
		return fmt.Errorf("namesrv: broker %s has no record", addr)
	case b.addr != addr:
		return fmt.Errorf("namesrv: broker filed under %s has address %s", addr, b.addr)
	case b.brokerName == "" || !utf8.ValidString(b.brokerName):
		return fmt.Errorf("namesrv: broker %s has group name %q", addr, b.brokerName)
	case b.topics == nil:
		return fmt.Errorf("namesrv: broker %s has no topic table", addr)
	case b.lastUpdate.IsZero():
		return fmt.Errorf("namesrv: broker %s has no registration time", addr)
	}
	if err := checkBrokerAddr(addr); err != nil {
		return fmt.Errorf("namesrv: registered %w", err)
	}
	return nil
}
