package cluster

import (
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Shrink looks for a smaller run that fails the same way as failing (a violation of the same
// kind as its first one): it drops faults one at a time, keeping each removal after which the
// run still fails, then halves the workload's duration while it still fails. It runs at most
// budget simulations. The returned configuration replays the smallest failure found (its
// ExplicitPlan is set); its report is that run's.
func Shrink(cfg Config, failing *Report, wallNow func() time.Time, budget int) (Config, *Report, error) {
	if len(failing.Violations) == 0 {
		return cfg, failing, nil
	}
	kind := failing.Violations[0].Kind
	fails := func(r *Report) bool {
		for _, v := range r.Violations {
			if v.Kind == kind {
				return true
			}
		}
		return false
	}
	best, bestRep := cfg, failing
	best.Plan = append([]faults.Fault(nil), failing.Plan...)
	best.ExplicitPlan = true
	try := func(c Config) (bool, error) {
		if budget <= 0 {
			return false, nil
		}
		budget--
		rep, err := Run(c, wallNow)
		if err != nil {
			return false, err
		}
		if fails(rep) {
			best, bestRep = c, rep
			return true, nil
		}
		return false, nil
	}
	for i := 0; i < len(best.Plan) && budget > 0; {
		c := best
		c.Plan = append(append([]faults.Fault(nil), best.Plan[:i]...), best.Plan[i+1:]...)
		ok, err := try(c)
		if err != nil {
			return best, bestRep, err
		}
		if !ok {
			i++
		}
	}
	for best.Duration > 5*time.Second && budget > 0 {
		c := best
		c.Duration = best.Duration / 2
		c.Plan = nil
		for _, f := range best.Plan {
			if f.At < c.Duration {
				c.Plan = append(c.Plan, f)
			}
		}
		ok, err := try(c)
		if err != nil {
			return best, bestRep, err
		}
		if !ok {
			break
		}
	}
	return best, bestRep, nil
}
