package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/store"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim/checks"
)

// Hand-aimed flips of the broker's commit log, around crashes: every flip strikes a stored
// message, which the broker never serves and counts lost (lost-unreadable) rather than
// violating; recovery across the damaged entries keeps their offsets, so nothing else is lost,
// reordered or moved. With the planted bug serve-corrupt the same run is caught serving them.
func TestBitFlipsNeverServed(t *testing.T) {
	var plan []faults.Fault
	for i, at := range []time.Duration{8 * time.Second, 14 * time.Second, 21 * time.Second, 27 * time.Second} {
		plan = append(plan, faults.Fault{At: at, Kind: faults.BitFlip, Node: BrokerAddr, Pick: uint64(1000 + 777*i), Log: store.CommitLogName})
		plan = append(plan, faults.Fault{At: at + time.Second, Kind: faults.Crash, Node: BrokerAddr, Duration: 500 * time.Millisecond})
	}
	cfg := DefaultConfig(3)
	cfg.Duration = 30 * time.Second
	cfg.Plan, cfg.ExplicitPlan = plan, true
	rep := runSeed(t, cfg)
	if len(rep.Violations) > 0 {
		t.Fatalf("%s\n%v", rep.Summary(), rep.Violations)
	}
	if rep.BitFlips != 4 || rep.LostUnreadable == 0 || rep.LostUnreadable > 4 {
		t.Fatalf("%d flips, %d messages lost to them: %s", rep.BitFlips, rep.LostUnreadable, rep.Summary())
	}
	cfg.Plant = "serve-corrupt"
	rep = runSeed(t, cfg)
	if !slices.ContainsFunc(rep.Violations, func(v Violation) bool { return v.Kind == KindServedCorrupt }) {
		t.Fatalf("serve-corrupt not caught serving a flipped entry: %s\n%v", rep.Summary(), rep.Violations)
	}
}

// Only a message a recorded flip destroyed, in the copy the final drain read, is excused; any
// other lost one stays a violation.
func TestOnlyFlippedMessagesAreExcused(t *testing.T) {
	q := linearizability.QueueKey{Broker: "broker-a", Topic: "T", QueueID: 1}
	r := &run{report: &Report{}, flips: []flipRecord{
		{ok: true, msgID: "p0-1", addr: "a", queue: q},
		{ok: true, msgID: "p0-3", addr: "b", queue: q}, // a copy the drain did not read
		{ok: false}}}
	r.drainAnswered(q, "a")
	vs := r.excuseUnreadable([]checks.Violation{
		{Kind: checks.KindLostAcked, MsgID: "p0-1"},
		{Kind: checks.KindLostObserved, MsgID: "p0-1"},
		{Kind: checks.KindLostAcked, MsgID: "p0-2"},
		{Kind: checks.KindLostAcked, MsgID: "p0-3"},
		{Kind: checks.KindOffsetConflict, MsgID: "p0-1"},
	})
	if len(vs) != 3 || vs[0].MsgID != "p0-2" || vs[1].MsgID != "p0-3" || vs[2].Kind != checks.KindOffsetConflict || r.report.LostUnreadable != 1 {
		t.Fatalf("left %v, counted %d", vs, r.report.LostUnreadable)
	}
}

// The planted bug serve-corrupt is caught, in both topologies, at its catalogue seed by the
// check it stands for: a consumer got a corrupt message ("served corrupt").
func TestServeCorruptCaughtAsServedCorrupt(t *testing.T) {
	for _, p := range Plants {
		if p.Name != "serve-corrupt" {
			continue
		}
		t.Run(p.Topology.String(), func(t *testing.T) {
			cfg := DefaultConfig(p.CaughtAt)
			if p.Topology == BrokerGroups {
				cfg = GroupsConfig(p.CaughtAt)
			}
			cfg.Plant = p.Name
			rep := runSeed(t, cfg)
			i := slices.IndexFunc(rep.Violations, func(v Violation) bool { return v.Kind == KindServedCorrupt })
			if i < 0 {
				t.Fatalf("no %q violation at seed %d: %s\n%v", KindServedCorrupt, p.CaughtAt, rep.Summary(), rep.Violations)
			}
			t.Logf("%s: %s", rep.Violations[i].Kind, rep.Violations[i].Detail)
		})
	}
}
