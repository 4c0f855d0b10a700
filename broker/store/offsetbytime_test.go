package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluicemq/sluice/sim/simdisk"
)

func appendAt(t *testing.T, s *Store, topic string, q int32, storeMs int64) {
	t.Helper()
	m := msg(topic, q, fmt.Sprint(storeMs), "")
	m.StoreTimestamp = storeMs
	mustAppend(t, s, m)
}

// OffsetByTime finds the first message stored at or after a time: equal times resolve to the
// first of them, a time after every message gives the end of the queue (so a consumer starting
// there sees only new messages), unconfirmed messages do not count, and queue offsets lost to
// retention are skipped.
func TestOffsetByTime(t *testing.T) {
	s := open(t, simdisk.New(), Options{})
	mustCreate(t, s, "T", 3)
	for _, ms := range []int64{10, 20, 20, 20, 30, 40} { // T/0 offsets 0..5, indexes 1..6
		appendAt(t, s, "T", 0, ms)
	}
	for _, ms := range []int64{5, 15, 25, 35} { // T/2 offsets 0..3, indexes 7..10
		appendAt(t, s, "T", 2, ms)
	}
	s.Confirm(10)
	appendAt(t, s, "T", 0, 50)                                      // T/0 offset 6, never confirmed
	appendAt(t, s, "T", 1, 50)                                      // T/1 offset 0, never confirmed
	if err := queueLog(t, s, "T", 2).TruncateFront(3); err != nil { // T/2 offsets 0, 1 gone
		t.Fatal(err)
	}

	cases := []struct {
		topic string
		q     int32
		ms    int64
		want  int64
	}{
		{"T", 0, 0, 0},
		{"T", 0, 10, 0},
		{"T", 0, 11, 1},
		{"T", 0, 20, 1},
		{"T", 0, 21, 4},
		{"T", 0, 40, 5},
		{"T", 0, 41, 6}, // the end: offset 6 is not confirmed, but it is where the next message will be
		{"T", 0, 1 << 62, 6},
		{"T", 1, 0, 0}, // nothing confirmed
		{"T", 2, 0, 2},
		{"T", 2, 30, 3},
		{"T", 2, 36, 4},
		{"nope", 0, 10, 0},
	}
	for _, tc := range cases {
		got, err := s.OffsetByTime(tc.topic, tc.q, tc.ms)
		if err != nil || got != tc.want {
			t.Errorf("OffsetByTime(%s/%d, %d) = %d, %v; want %d", tc.topic, tc.q, tc.ms, got, err, tc.want)
		}
	}
}

// Against a linear scan, on random non-decreasing store times.
func TestOffsetByTimeMatchesLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 50 {
		s := open(t, simdisk.New(), Options{})
		mustCreate(t, s, "T", 1)
		n := rng.IntN(40)
		times := make([]int64, n)
		ms := int64(1000)
		for i := range times {
			ms += int64(rng.IntN(3)) // repeats are common
			times[i] = ms
			appendAt(t, s, "T", 0, ms)
		}
		if n > 0 {
			s.Confirm(uint64(n))
		}
		for probe := int64(998); probe <= ms+2; probe++ {
			want := int64(n)
			for i, ts := range times {
				if ts >= probe {
					want = int64(i)
					break
				}
			}
			got, err := s.OffsetByTime("T", 0, probe)
			if err != nil || got != want {
				t.Fatalf("round %d, times %v: OffsetByTime(%d) = %d, %v; want %d", round, times, probe, got, err, want)
			}
		}
	}
}
