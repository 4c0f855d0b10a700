package cluster

// The drain check, run by every topology: the direct invariants of package checks over the
// history and the final drain (no acknowledged or observed message lost, one position per
// message and one message per position, no failed or phantom message observed, drains in
// order, broker writes on time and never lost, withheld messages never delivered). Losses a
// recorded bit flip explains are counted (LostUnreadable), not reported. It does not verify
// that the pulls fit one log (the log check), nor anything of what the brokers hold beyond
// what the drain read (the replicas check).

import (
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim/checks"
)

// drainViolations validates the history and returns the invariants' violations, less the
// losses a recorded flip explains; ok is false (and the malformed history a violation) when
// the history does not validate, and nothing else can be checked.
func (r *run) drainViolations(drain map[linearizability.QueueKey][]linearizability.PulledMsg) (vs []checks.Violation, ok bool) {
	if err := r.h.Validate(); err != nil {
		r.violate("history", "malformed history: %v", err)
		return nil, false
	}
	return r.excuseRetained(r.excuseUnreadable(checks.Drain(r.h, drain))), true
}

// excuseRetained drops from vs the losses of messages a legal deletion removed (retention.go).
func (r *run) excuseRetained(vs []checks.Violation) []checks.Violation {
	if len(r.retention.retained) == 0 {
		return vs
	}
	out := vs[:0]
	for _, v := range vs {
		switch v.Kind {
		case checks.KindLostAcked, checks.KindLostObserved, checks.KindLostWrite:
			if r.retention.retained[v.MsgID] {
				continue
			}
		}
		out = append(out, v)
	}
	return out
}
