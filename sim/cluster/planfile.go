package cluster

// The plan file: what 'sluice sim --shrink' writes and 'sluice sim --plan' replays. It holds
// what no flag of the command carries: the fault plan, and the workload settings a shrink
// changed (the simulated duration, the number of producers and consumers, the flow mix). The
// seed, topology, flush and replication modes and planted bug stay flags, so a shrunk failure
// replays as the printed command line plus this file. A file that is a bare JSON array is the
// older form, a fault plan alone.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicemq/sluice/faults"
)

// PlanFile is the decoded plan file. A zero Duration, Producers or Consumers and a nil Flows
// leave the run's own setting.
type PlanFile struct {
	Duration  time.Duration
	Producers int
	Consumers int
	Flows     *Flows
	Faults    []faults.Fault
}

// planFileJSON is the file's form: times in nanoseconds, the faults as faults.EncodePlan writes them.
type planFileJSON struct {
	Duration  time.Duration   `json:",omitempty"`
	Producers int             `json:",omitempty"`
	Consumers int             `json:",omitempty"`
	Flows     *Flows          `json:",omitempty"`
	Faults    json.RawMessage `json:"Faults"`
}

// maxClients bounds the producers and consumers a plan file may ask for.
const maxClients = 64

// maxFileDuration bounds a plan file's simulated duration.
const maxFileDuration = 24 * time.Hour

// EncodePlanFile renders what replays cfg's run: its plan and its workload settings (the flows
// only when cfg fixes them, rather than drawing them from the seed).
func EncodePlanFile(cfg Config) ([]byte, error) {
	plan, err := faults.EncodePlan(cfg.Plan)
	if err != nil {
		return nil, fmt.Errorf("encode plan file: %w", err)
	}
	b, err := json.MarshalIndent(planFileJSON{Duration: cfg.Duration, Producers: cfg.Producers, Consumers: cfg.Consumers,
		Flows: cfg.Flows, Faults: plan}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode plan file: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodePlanFile parses EncodePlanFile's output, or a bare fault plan (faults.EncodePlan's),
// and checks every setting is in range.
func DecodePlanFile(b []byte) (PlanFile, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		plan, err := faults.DecodePlan(t)
		return PlanFile{Faults: plan}, err
	}
	var j planFileJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return PlanFile{}, fmt.Errorf("decode plan file: %w", err)
	}
	if len(j.Faults) == 0 {
		return PlanFile{}, fmt.Errorf("decode plan file: no Faults (an empty plan is [])")
	}
	plan, err := faults.DecodePlan(j.Faults)
	if err != nil {
		return PlanFile{}, fmt.Errorf("decode plan file: %w", err)
	}
	pf := PlanFile{Duration: j.Duration, Producers: j.Producers, Consumers: j.Consumers, Flows: j.Flows, Faults: plan}
	if err := pf.validate(); err != nil {
		return PlanFile{}, fmt.Errorf("decode plan file: %w", err)
	}
	return pf, nil
}

func (pf PlanFile) validate() error {
	if pf.Duration < 0 || pf.Duration > maxFileDuration {
		return fmt.Errorf("Duration %v: want 0 (the run's own) up to %v", pf.Duration, maxFileDuration)
	}
	if pf.Producers < 0 || pf.Producers > maxClients || pf.Consumers < 0 || pf.Consumers > maxClients {
		return fmt.Errorf("%d producers and %d consumers: want 0 (the run's own) up to %d each", pf.Producers, pf.Consumers, maxClients)
	}
	if f := pf.Flows; f != nil {
		if f.PoisonPercent < 0 || f.PoisonPercent > 100 || f.MaxReconsumeTimes < 0 || f.MaxReconsumeTimes > 16 {
			return fmt.Errorf("flows: PoisonPercent %d, MaxReconsumeTimes %d: want 0..100 and 0..16", f.PoisonPercent, f.MaxReconsumeTimes)
		}
		if f.Retry && f.MaxReconsumeTimes < 1 {
			return fmt.Errorf("flows: Retry needs MaxReconsumeTimes of at least 1")
		}
		if f.SQLSelector < 0 || f.SQLSelector >= len(sqlSelectors) {
			return fmt.Errorf("flows: SQLSelector %d: want 0..%d", f.SQLSelector, len(sqlSelectors)-1)
		}
		for _, d := range []time.Duration{f.LockLease, f.RotateEvery, f.TxnCheckInterval, f.TxnTimeout} {
			if d < 0 || d > maxFileDuration {
				return fmt.Errorf("flows: a time (%v) is negative or beyond %v", d, maxFileDuration)
			}
		}
		if f.Orderly && (f.LockLease < time.Second || f.RotateEvery < time.Second) {
			return fmt.Errorf("flows: Orderly needs a LockLease and a RotateEvery of at least 1s")
		}
		if f.Transactions && (f.TxnCheckInterval < time.Second || f.TxnTimeout < time.Second) {
			return fmt.Errorf("flows: Transactions need a TxnCheckInterval and a TxnTimeout of at least 1s")
		}
	}
	return nil
}

// Apply makes cfg replay the file: its plan, and each workload setting the file fixes.
func (pf PlanFile) Apply(cfg *Config) {
	cfg.Plan, cfg.ExplicitPlan = pf.Faults, true
	if pf.Duration > 0 {
		cfg.Duration = pf.Duration
	}
	if pf.Producers > 0 {
		cfg.Producers = pf.Producers
	}
	if pf.Consumers > 0 {
		cfg.Consumers = pf.Consumers
	}
	if pf.Flows != nil {
		f := *pf.Flows
		cfg.Flows = &f
	}
}
