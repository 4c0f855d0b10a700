package faults

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The aimed failovers name roles only (resolved when they strike), start inside the run, and
// come in the shapes their comments promise: a power loss slows the slaves' fsyncs, then
// crashes the master for longer than the rest of the group at the same instant; a double
// failover crashes the master twice, the second when the first comes back; a stale master is
// cut off from its slaves and the controllers only.
func TestAimedFailovers(t *testing.T) {
	groups := []string{"broker-a", "broker-b"}
	ctls := []string{"127.0.1.1:9878", "127.0.1.2:9878", "127.0.1.3:9878"}
	const d = 10 * time.Minute
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		plan := append(PowerLosses(rng, groups, d), MasterFailovers(rng, groups, ctls, d)...)
		if len(plan) == 0 {
			t.Fatalf("seed %d: no aimed failover in %v", seed, d)
		}
		for _, f := range plan {
			if err := f.validate(); err != nil {
				t.Fatalf("seed %d: %v: %v", seed, f, err)
			}
			// (A double failover starts within d; its second crash, up to 9 s later, may not.)
			if f.At < 0 || f.At >= d+9*time.Second {
				t.Errorf("seed %d: %v outside the run", seed, f)
			}
			for _, n := range f.group() {
				if !isSymbolic(n) {
					t.Errorf("seed %d: %v names an address, not a role", seed, f)
				}
			}
		}
	}

	pl := PowerLoss("g", time.Second, 50*time.Millisecond, 4*time.Second)
	if pl[0].Kind != SlowFsync || !slices.Equal(pl[0].Nodes, []string{SlavesOf("g")}) ||
		pl[1].Node != MasterOf("g") || pl[2].Node != GroupOf("g") || pl[1].At != pl[2].At ||
		pl[1].Duration <= pl[2].Duration || pl[1].At <= pl[0].At {
		t.Errorf("power loss: %v", pl)
	}
	df := DoubleFailover("g", time.Second, 6*time.Second)
	if df[0].Node != MasterOf("g") || df[1].Node != MasterOf("g") || df[1].At != df[0].At+df[0].Duration {
		t.Errorf("double failover: %v", df)
	}
	im := IsolateMaster("g", ctls, time.Second, 8*time.Second)
	if im.Kind != Partition || im.Node != MasterOf("g") || !slices.Equal(im.Peers, append([]string{SlavesOf("g")}, ctls...)) {
		t.Errorf("stale master: %v", im)
	}
}
