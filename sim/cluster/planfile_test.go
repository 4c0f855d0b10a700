package cluster

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// A plan file carries the faults and the workload a shrink chose, and applies them; a bare
// fault array (the older form) is a plan alone.
func TestPlanFileRoundTrip(t *testing.T) {
	cfg := DefaultConfig(3)
	cfg.Duration, cfg.Producers, cfg.Consumers = 12*time.Second, 1, 2
	cfg.Flows = &Flows{Orderly: true, LockLease: 7 * time.Second, RotateEvery: 6 * time.Second, MaxReconsumeTimes: 2, SQLSelector: 1}
	cfg.Plan = []faults.Fault{{At: 11 * time.Second, Kind: faults.Crash, Node: BrokerAddr, Duration: 300 * time.Millisecond}}
	b, err := EncodePlanFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := DecodePlanFile(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	got := DefaultConfig(3)
	pf.Apply(&got)
	if got.Duration != cfg.Duration || got.Producers != 1 || got.Consumers != 2 || !reflect.DeepEqual(*got.Flows, *cfg.Flows) ||
		!reflect.DeepEqual(got.Plan, cfg.Plan) || !got.ExplicitPlan {
		t.Fatalf("applied %+v, want the encoded run's settings", got)
	}

	old, err := faults.EncodePlan(cfg.Plan)
	if err != nil {
		t.Fatal(err)
	}
	pf, err = DecodePlanFile(old)
	if err != nil || !reflect.DeepEqual(pf.Faults, cfg.Plan) || pf.Duration != 0 || pf.Flows != nil {
		t.Fatalf("bare plan decoded as %+v, %v", pf, err)
	}
	got = DefaultConfig(3)
	pf.Apply(&got)
	if got.Duration != DefaultConfig(3).Duration || got.Producers != 2 || got.Flows != nil {
		t.Fatalf("a bare plan changed the workload: %+v", got)
	}
}

// Out-of-range settings are refused with an error, never run.
func TestPlanFileRefusesBadSettings(t *testing.T) {
	for _, bad := range []string{
		`{"Faults": [], "Producers": -1}`,
		`{"Faults": [], "Consumers": 1000}`,
		`{"Faults": [], "Duration": -5}`,
		`{"Faults": [], "Flows": {"SQLSelector": 99}}`,
		`{"Faults": [], "Flows": {"Orderly": true}}`,
		`{"Faults": [], "Flows": {"Retry": true}}`,
		`{"Faults": [], "Flows": {"Transactions": true, "TxnCheckInterval": 1000000000}}`,
		`{"Faults": [], "Surprise": 1}`,
		`{"Producers": 1}`,
		`{"Faults": [{"Kind": "meteor", "Node": "x"}]}`,
	} {
		if _, err := DecodePlanFile([]byte(bad)); err == nil || !strings.Contains(err.Error(), "plan file") && !strings.Contains(err.Error(), "fault plan") {
			t.Errorf("%s: got %v, want an error", bad, err)
		}
	}
}
