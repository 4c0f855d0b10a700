package cluster

import (
	"testing"
	"time"
)

// A few simulated hours on a 1 MiB disk with a 30-minute retention: retention deletes
// segments, the disk guard refuses sends, consumers left below a queue's min offset are moved
// forward, and every check holds (each deletion judged legal, nothing else lost). The 48-hour
// version of this run is documented in docs/simulator.md.
func TestRetentionRunHasNoViolations(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates an hour")
	}
	cfg := DefaultConfig(3)
	cfg.Duration = time.Hour
	cfg.Rate = 2
	cfg.DiskCapacity = 1 << 20
	cfg.Retention = 30 * time.Minute
	rep := runSeed(t, cfg)
	for _, v := range rep.Violations {
		t.Errorf("%s: %s", v.Kind, v.Detail)
	}
	if rep.SegmentsDeleted == 0 || rep.SendsRefusedSpace == 0 || rep.OffsetsMoved == 0 {
		t.Errorf("retention was not exercised: %s", rep.Summary())
	}
	t.Log(rep.Summary())
}
