package checks

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	. "github.com/sluicemq/sluice/linearizability"
)

// Two clients never hold a queue's lock while the first one's lease surely runs; a release
// (an unlock that may have worked, a broker restart) or an expired lease lets the next in.
func TestLocks(t *testing.T) {
	const lease = 100
	tests := []struct {
		name     string
		locks    []LockOp
		restarts []int64
		want     []string
	}{
		{"one holder renewing", []LockOp{lock(1, 0, 10, true), lock(1, 50, 60, true), lock(2, 70, 80, false)}, nil, nil},
		{"taken while held", []LockOp{lock(1, 0, 10, true), lock(2, 20, 30, true)}, nil, []string{KindLockOverlap}},
		{"taken after a renewal", []LockOp{lock(1, 0, 10, true), lock(1, 90, 95, true), lock(2, 120, 130, true)}, nil, []string{KindLockOverlap}},
		{"taken once the lease ran out", []LockOp{lock(1, 0, 10, true), lock(2, 100, 110, true)}, nil, nil},
		{"taken after an unlock", []LockOp{lock(1, 0, 10, true), unlock(1, 15, 18, OK), lock(2, 20, 30, true)}, nil, nil},
		{"taken after an unlock of unknown outcome", []LockOp{lock(1, 0, 10, true), unlock(1, 15, 0, Unknown), lock(2, 20, 30, true)}, nil, nil},
		{"a failed unlock releases nothing", []LockOp{lock(1, 0, 10, true), unlock(1, 15, 18, Failed), lock(2, 20, 30, true)}, nil, []string{KindLockOverlap}},
		{"taken after a broker restart", []LockOp{lock(1, 0, 10, true), lock(2, 20, 30, true)}, []int64{15}, nil},
		{"concurrent grants cannot be ordered", []LockOp{lock(1, 0, 25, true), lock(2, 20, 30, true)}, nil, nil},
		{"another group's lock is another lock", []LockOp{lock(1, 0, 10, true), {Client: 2, Group: "other", Queue: qa, Call: 20, Return: 30, Outcome: OK, Granted: true}}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Locks(tc.locks, lease, tc.restarts)
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nfull: %v", diff, got)
			}
		})
	}
}
