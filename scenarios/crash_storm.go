package scenarios

import (
	"time"

	"github.com/sluicemq/sluice/faults"
)

// Guarantee: under sync flush, a broker that is killed again and again, often in the middle of
// a group commit and sometimes while still recovering from the previous crash, never loses an
// acknowledged message and never shows a consumer a message it later loses.
func init() {
	register(Scenario{
		Name:   "crash-storm",
		Covers: "repeated power loss during group commit and during recovery; nothing acknowledged lost",
		Config: brokerFaults(map[faults.Kind]faults.Rate{
			faults.Crash: {MeanInterval: 2 * time.Second, MinDur: 10 * time.Millisecond, MaxDur: 500 * time.Millisecond},
		}),
	})
}
