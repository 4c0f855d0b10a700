package replication

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func wantAck(t *testing.T, s *InSync, selfSynced, want uint64, wantOK bool) {
	t.Helper()
	got, ok := s.AckIndex(selfSynced)
	if got != want || ok != wantOK {
		t.Fatalf("AckIndex(%d) = %d %v, want %d %v (set %v, proposed %v)", selfSynced, got, ok, want, wantOK, s.set, s.proposed)
	}
}

// The acknowledgement rule: the minimum of what the confirmed and the proposed set's members
// synced, and nothing while either set is below MinInSync.
func TestAckIndex(t *testing.T) {
	s := NewInSync(1, 2, time.Second, []int64{1, 2, 3}, 5, t0)
	wantAck(t, s, 12, 0, true) // slaves not heard from hold nothing
	s.Fetched(2, 10, 12, at(1))
	s.Fetched(3, 7, 12, at(1))
	wantAck(t, s, 12, 7, true)
	wantAck(t, s, 6, 6, true) // the master's own fsync bounds it too

	s.Propose([]int64{1, 2}) // removing 3: it may still be elected until the controller agrees
	wantAck(t, s, 12, 7, true)
	s.SetConfirmed([]int64{1, 2}, 6)
	wantAck(t, s, 12, 10, true)

	s.Propose([]int64{1, 2, 3}) // adding 3 back: counts from the moment it is asked for
	wantAck(t, s, 12, 7, true)
	s.ProposalFailed()
	wantAck(t, s, 12, 10, true)

	s.Propose([]int64{1}) // a set below MinInSync stops acknowledgements at once
	wantAck(t, s, 12, 0, false)
	s.SetConfirmed([]int64{1}, 7)
	wantAck(t, s, 12, 0, false)

	alone := NewInSync(4, 1, time.Second, []int64{4}, 1, t0)
	wantAck(t, alone, 9, 9, true)
}

func wantSet(t *testing.T, s *InSync, last, acked uint64, now time.Time, want []int64, changed bool) {
	t.Helper()
	got, ch := s.Wanted(last, acked, now)
	if !cmp.Equal(got, want) || ch != changed {
		t.Fatalf("Wanted(last %d, acked %d, %v) = %v %v, want %v %v", last, acked, now.Sub(t0), got, ch, want, changed)
	}
}

// A slave of the set that has not held everything for MaxLag is dropped; one outside that
// holds every acknowledged index and lags less than MaxLag/2 is added; nothing is wanted while
// a proposal is in flight.
func TestWanted(t *testing.T) {
	s := NewInSync(1, 1, time.Second, []int64{1, 2}, 1, t0)
	wantSet(t, s, 0, 0, at(900), []int64{1, 2}, false) // 2 has MaxLag to show up
	wantSet(t, s, 5, 0, at(1001), []int64{1}, true)    // it never did
	s.Fetched(2, 5, 5, at(1100))
	wantSet(t, s, 5, 5, at(1100), []int64{1, 2}, false)

	// 3 shows up behind, catches up in steps, then holds everything.
	s.Fetched(3, 0, 20, at(1200))
	s.Answered(3, 20, at(1200))
	wantSet(t, s, 20, 5, at(1300), []int64{1, 2}, false) // behind the acknowledged index
	s.Fetched(3, 10, 30, at(1300))
	s.Answered(3, 30, at(1300))
	wantSet(t, s, 30, 5, at(1400), []int64{1, 2}, false) // holds 5, but has lagged since t0
	s.Fetched(3, 20, 30, at(1500))                       // it held 20 = the master's last at 1.2 s
	wantSet(t, s, 30, 5, at(1600), []int64{1, 2, 3}, true)
	s.Propose([]int64{1, 2, 3})
	wantSet(t, s, 30, 5, at(1600), nil, false)
	s.SetConfirmed([]int64{1, 2, 3}, 2)

	// 2 goes quiet while the master writes: dropped after MaxLag.
	s.Fetched(2, 30, 30, at(1990))
	s.Appending(30, at(2000))
	s.Fetched(3, 31, 31, at(2050))
	wantSet(t, s, 31, 30, at(2900), []int64{1, 2, 3}, false)
	wantSet(t, s, 31, 30, at(3001), []int64{1, 3}, true)
	s.SetConfirmed([]int64{1, 3}, 3)

	// A caught-up slave waiting for new entries is not lagging, however long nothing is written.
	wantSet(t, s, 31, 31, at(9000), []int64{1, 3}, false)
	s.Appending(31, at(9000))
	wantSet(t, s, 32, 31, at(9500), []int64{1, 3}, false)
	wantSet(t, s, 32, 31, at(10001), []int64{1}, true)
}

func TestInSyncInvariants(t *testing.T) {
	for name, f := range map[string]func(){
		"master outside its set": func() { NewInSync(1, 1, time.Second, []int64{2}, 1, t0) },
		"proposal without master": func() {
			NewInSync(1, 1, time.Second, []int64{1}, 1, t0).Propose([]int64{2})
		},
		"two proposals": func() {
			s := NewInSync(1, 1, time.Second, []int64{1}, 1, t0)
			s.Propose([]int64{1})
			s.Propose([]int64{1})
		},
		"fetch from itself": func() { NewInSync(1, 1, time.Second, []int64{1}, 1, t0).Fetched(1, 1, 1, t0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
