package cluster

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
)

func groupsSeed(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep := runSeed(t, cfg)
	t.Log(rep.Summary())
	return rep
}

// A few seeds of the groups topology in sync replication pass every check, with failovers.
func TestGroupsSeedsHaveNoViolations(t *testing.T) {
	seeds := 3
	failovers := 0
	for s := uint64(1); s <= uint64(seeds); s++ {
		cfg := GroupsConfig(s)
		cfg.Duration = 60 * time.Second
		rep := groupsSeed(t, cfg)
		failovers += rep.Failovers
		if len(rep.Violations) > 0 {
			t.Errorf("%s\n%v", rep.Summary(), rep.Violations)
		}
		if rep.Sends[linearizability.OK] == 0 || rep.Drained < rep.Sends[linearizability.OK] {
			t.Errorf("seed %d: %d acknowledged, %d drained", s, rep.Sends[linearizability.OK], rep.Drained)
		}
	}
	if failovers == 0 {
		t.Fatalf("no failover in %d seeds", seeds)
	}
}

// The groups topology replays byte for byte.
func TestGroupsSameSeedSameTrace(t *testing.T) {
	cfg := GroupsConfig(5)
	cfg.Duration = 20 * time.Second
	a, b := runSeed(t, cfg), runSeed(t, cfg)
	if a.TraceHash != b.TraceHash || a.Events != b.Events {
		t.Fatalf("seed 5 twice:\n%s\n%s", a.Summary(), b.Summary())
	}
	cfg.Seed = 6
	if c := runSeed(t, cfg); c.TraceHash == a.TraceHash {
		t.Fatalf("seeds 5 and 6 gave the same trace %016x", a.TraceHash)
	}
}

// Async replication: lost acknowledged messages are counted, not violations.
func TestGroupsAsyncCountsLosses(t *testing.T) {
	cfg := GroupsConfig(1)
	cfg.Duration = 60 * time.Second
	cfg.Replication = brokernode.AsyncReplication
	rep := groupsSeed(t, cfg)
	for _, v := range rep.Violations {
		t.Errorf("%s: %s", v.Kind, v.Detail)
	}
}

// Each failover faults.MasterFailovers and PowerLosses add to the groups plan, alone in a run (in
// sync replication): nothing acknowledged is lost, the history is linearizable, one replica
// acknowledges per epoch, the replicas end identical, and the failovers happen. It strikes
// both groups alike (the topic may live on one of them only) and wants its failovers in one
// of them at least. The same run with each planted bug the failover exposes is caught.
func TestGroupsAimedFailovers(t *testing.T) {
	const at = 8 * time.Second
	for _, c := range []struct {
		name      string
		plan      func(g string) []faults.Fault
		failovers int
		plants    []string
	}{
		{"isolate-master", func(g string) []faults.Fault {
			return []faults.Fault{faults.IsolateMaster(g, controllerAddrs(), at, 10*time.Second)}
		}, 1,
			[]string{"skip-truncation", "stale-master-acks"}},
		{"power-loss", func(g string) []faults.Fault { return faults.PowerLoss(g, at, 100*time.Millisecond, 8*time.Second) }, 1,
			[]string{"slave-ack-before-fsync"}},
		{"double-failover", func(g string) []faults.Fault { return faults.DoubleFailover(g, at, 7*time.Second) }, 2,
			[]string{"elect-outside-in-sync"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := GroupsConfig(1)
			cfg.Duration = 30 * time.Second
			cfg.ExplicitPlan = true
			for _, g := range GroupNames {
				cfg.Plan = append(cfg.Plan, c.plan(g)...)
			}
			rep := groupsSeed(t, cfg)
			for _, v := range rep.Violations {
				t.Errorf("%s: %s", v.Kind, v.Detail)
			}
			if rep.Sends[linearizability.OK] == 0 || rep.Drained < rep.Sends[linearizability.OK] {
				t.Errorf("%d acknowledged, %d drained", rep.Sends[linearizability.OK], rep.Drained)
			}
			if most := slices.Max(slices.Collect(maps.Values(rep.GroupFailovers))); most < c.failovers {
				t.Errorf("failovers by group %v, want %d in one at least", rep.GroupFailovers, c.failovers)
			}
			for _, name := range c.plants {
				planted := cfg
				planted.Plant = name
				if rep := runSeed(t, planted); len(rep.Violations) == 0 {
					t.Errorf("planted bug %s went unnoticed: %s", name, rep.Summary())
				} else {
					t.Logf("planted bug %s caught: %s: %s", name, rep.Violations[0].Kind, rep.Violations[0].Detail)
				}
			}
		})
	}
}

// Slaves copy consumer offsets from their master (brokernode metasync.go): after failovers
// consumers receive far fewer messages again, and resume closer to where they were, than when
// the new master knows no offsets. (Seed 1 has failovers in its first minute.)
func TestGroupsMetaSyncCutsRedeliveries(t *testing.T) {
	cfg := GroupsConfig(1)
	cfg.Duration = 60 * time.Second
	with := groupsSeed(t, cfg)
	cfg.MetaSyncInterval = -1
	without := groupsSeed(t, cfg)
	if with.Failovers == 0 || without.Redelivered == 0 {
		t.Fatalf("no failover (%d) or no redelivery without metadata sync (%d): the comparison says nothing",
			with.Failovers, without.Redelivered)
	}
	if 2*with.Redelivered > without.Redelivered || with.ResumeBehindWorst >= without.ResumeBehindWorst {
		t.Fatalf("with metadata sync %d messages redelivered, resumed at worst %d behind; without %d and %d: want less than half, and closer",
			with.Redelivered, with.ResumeBehindWorst, without.Redelivered, without.ResumeBehindWorst)
	}
}
