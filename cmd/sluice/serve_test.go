package main

import "testing"

// Bad transaction settings stop 'sluice dev' and 'sluice broker' before they start anything,
// with the usage exit code.
func TestTxnFlagsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		run  func([]string) int
		args []string
	}{
		{runDev, []string{"--txn-check-interval", "0s"}},
		{runDev, []string{"--txn-timeout", "-1s"}},
		{runDev, []string{"--txn-check-max", "0"}},
		{runBroker, []string{"--txn-check-interval", "-5s"}},
		{runBroker, []string{"--txn-timeout", "soon"}},
	} {
		if code := tc.run(tc.args); code != 2 {
			t.Errorf("%v: exit code %d, want 2", tc.args, code)
		}
	}
}
