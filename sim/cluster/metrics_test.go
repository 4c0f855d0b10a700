package cluster

import (
	"testing"
	"time"

	"github.com/sluicemq/sluice/linearizability"
)

// The brokers' metrics, recorded in memory in the simulator, agree with what the run's history
// saw: every acknowledged send was stored (messages in), the final drain read every message out
// of the brokers (messages out), and the same seed records the same series.
func TestRunMetricsAgreeWithHistory(t *testing.T) {
	cfg := DefaultConfig(7)
	cfg.Duration = 15 * time.Second
	a := runSeed(t, cfg)
	in := a.Metrics.Sum("sluice_broker_messages_in_total")
	out := a.Metrics.Sum("sluice_broker_messages_out_total")
	if ok := float64(a.Sends[linearizability.OK]); ok == 0 || in < ok {
		t.Errorf("messages in %v, acknowledged sends %v: %s", in, ok, a.Summary())
	}
	if out < float64(a.Drained) || out == 0 {
		t.Errorf("messages out %v, drained %d: %s", out, a.Drained, a.Summary())
	}
	if got := a.Metrics.Sum("sluice_namesrv_registrations_total", "result=ok"); got == 0 {
		t.Errorf("no registration counted by the name server")
	}

	b := runSeed(t, cfg)
	as, bs := a.Metrics.Series(""), b.Metrics.Series("")
	if len(as) != len(bs) {
		t.Fatalf("seed 7 twice: %d series, then %d", len(as), len(bs))
	}
	for i := range as {
		if as[i].Desc.Name != bs[i].Desc.Name || as[i].Value != bs[i].Value || as[i].Count != bs[i].Count {
			t.Errorf("seed 7 twice: %s %v %v, then %s %v %v", as[i].Desc.Name, as[i].Labels, as[i].Value,
				bs[i].Desc.Name, bs[i].Labels, bs[i].Value)
		}
	}
}

// In the groups topology the replicas count their takeovers: each failover the run saw is a
// replica becoming master (besides the first masters), and the controllers count elections.
func TestGroupMetricsCountFailovers(t *testing.T) {
	cfg := DefaultConfig(3)
	cfg.Topology = BrokerGroups
	cfg.Duration = 60 * time.Second
	rep := runSeed(t, cfg)
	masters := rep.Metrics.Sum("sluice_broker_role_changes_total", "role=master")
	if masters < float64(len(GroupNames)+rep.Failovers) {
		t.Errorf("%v changes to master, want at least one per group plus the %d failovers: %s", masters, rep.Failovers, rep.Summary())
	}
	if got := rep.Metrics.Sum("sluice_controller_elections_total", "outcome=elected"); got < float64(len(GroupNames)) {
		t.Errorf("%v elections counted by the controllers, want at least one per group", got)
	}
}
