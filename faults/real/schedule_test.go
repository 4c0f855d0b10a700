package real

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// A seed replays its schedule, and the schedules of make jepsen's seeds strike the shapes the
// harness exists for: master crashes and pauses, the stale master (cut off from its replicas
// and the controllers, not from clients), splits, and disk faults.
func TestScheduleReplaysAndCoversTheShapes(t *testing.T) {
	if a, b := Draw(7, 2*time.Minute), Draw(7, 2*time.Minute); !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 7 drew two schedules:\n%v\n%v", a.Faults, b.Faults)
	}
	if reflect.DeepEqual(Draw(7, 2*time.Minute).Faults, Draw(8, 2*time.Minute).Faults) {
		t.Fatalf("seeds 7 and 8 drew the same schedule")
	}
	seen := map[string]int{}
	for seed := uint64(1); seed <= 20; seed++ {
		s := Draw(seed, 2*time.Minute)
		b, err := faults.EncodePlan(s.Faults)
		if err == nil {
			_, err = faults.DecodePlan(b) // validates every fault
		}
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for i, f := range s.Faults {
			if i > 0 && f.At < s.Faults[i-1].At {
				t.Fatalf("seed %d: schedule not in time order at %v", seed, f)
			}
			if f.At >= s.Duration {
				t.Fatalf("seed %d: fault %v strikes after the run", seed, f)
			}
			switch {
			case f.Kind == faults.Partition && len(f.Peers) > 1 && slices.Contains(f.Peers, NameServers[0]):
				seen["stale master"]++
			case f.Node == faults.MasterOf(Groups[0]) || f.Node == faults.MasterOf(Groups[1]):
				seen["master "+string(f.Kind)]++
			default:
				seen[string(f.Kind)]++
			}
		}
	}
	for _, shape := range []string{"stale master", "master crash", "master pause", "split", "bridge", "partition", "crash",
		"pause", "one-way", string(faults.DiskSyncEIO), string(faults.DiskFull)} {
		if seen[shape] == 0 {
			t.Errorf("no %s in the schedules of seeds 1 to 20 (seen: %v)", shape, seen)
		}
	}
}

// Every kind a schedule draws is one the injector strikes, given a binary with disk faults.
func TestScheduledKindsAreStruck(t *testing.T) {
	in := &injector{c: &Cluster{diskFaults: true}}
	for seed := uint64(1); seed <= 20; seed++ {
		for _, f := range Draw(seed, 2*time.Minute).Faults {
			if why := in.unsupported(f.Kind); why != "" {
				t.Fatalf("seed %d draws %v, which the injector skips: %s", seed, f, why)
			}
		}
	}
}

// A partition cuts both directions between its sides, a one-way loss one; a node is never cut
// from itself.
func TestLinks(t *testing.T) {
	got := links(faults.Partition, []string{"a1"}, []string{"a1", "a2", ClientNode})
	want := []link{{"a1", "a2"}, {"a2", "a1"}, {"a1", ClientNode}, {ClientNode, "a1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("partition links %v, want %v", got, want)
	}
	if got := links(faults.OneWay, []string{"a1"}, []string{"a2"}); !reflect.DeepEqual(got, []link{{"a1", "a2"}}) {
		t.Fatalf("one-way links %v", got)
	}
}
