package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/sim/simdisk"
	"pgregory.net/rapid"
)

// fillTimed appends n messages to T (2 queues), message i (1-based, commit-log index i when
// the store starts empty) stored at i*1000 ms with key "k<i>", into queue i%2.
func fillTimed(t tb, s *Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		m := msg("T", int32(i%2), fmt.Sprintf("m%d", i), "")
		m.Properties = codec.EncodeProperties(map[string]string{codec.PropKeys: fmt.Sprintf("k%d", i)})
		m.StoreTimestamp = int64(i) * 1000
		mustAppend(t, s, m)
	}
}

// settle syncs and confirms everything and finishes a checkpoint covering it.
func settle(t tb, s *Store) {
	t.Helper()
	if err := s.CommitLog().Sync(); err != nil {
		t.Fatal(err)
	}
	s.Confirm(s.CommitLog().LastIndex())
	checkpoint(t, s)
}

// timedOnFiles opens a store on real files in a new directory, with segments of 1 KiB, holding
// messages 1..n of fillTimed, settled.
func timedOnFiles(t *testing.T, n int) (string, *Store) {
	t.Helper()
	dir := t.TempDir()
	d, err := diskfile.Open(dir, diskfile.Options{SegmentBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, d, Options{KeyIndexBucketBits: 4})
	mustCreate(t, s, "T", 2)
	fillTimed(t, s, 1, n)
	settle(t, s)
	return dir, s
}

// keptBodies is what queue q of T holds when messages from..n (of fillTimed) are kept.
func keptBodies(from, n int, q int32) []string {
	var out []string
	for i := from; i <= n; i++ {
		if int32(i%2) == q {
			out = append(out, fmt.Sprintf("m%d", i))
		}
	}
	return out
}

// checkKept checks that exactly messages from..n are served, by queue and by key, that every
// queue's min offset is its first kept message's offset, and that a pull below it is told to
// move there.
func checkKept(t tb, s *Store, from, n int) {
	t.Helper()
	if got := s.CommitLog().FirstIndex(); got != uint64(from) {
		t.Fatalf("commit log first index %d, want %d", got, from)
	}
	for q := int32(0); q < 2; q++ {
		wantMin := int64(0)
		for i := 1; i < from; i++ {
			if int32(i%2) == q {
				wantMin++
			}
		}
		if got := s.MinOffset("T", q); got != wantMin {
			t.Fatalf("T/%d min offset %d, want %d", q, got, wantMin)
		}
		var got []string
		for off := wantMin; ; {
			r, err := s.Get("T", q, off, 5, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != Found {
				break
			}
			got = append(got, bodiesOf(t, r.Records)...)
			off = r.NextOffset
		}
		if diff := cmp.Diff(keptBodies(from, n, q), got); diff != "" {
			t.Fatalf("T/%d kept messages (-want +got):\n%s", q, diff)
		}
		if wantMin > 0 {
			r, err := s.Get("T", q, wantMin-1, 5, nil)
			if err != nil || r.Status != OffsetTooSmall || r.NextOffset != wantMin {
				t.Fatalf("T/%d Get below min: %v next %d, %v; want OFFSET_TOO_SMALL to %d", q, r.Status, r.NextOffset, err, wantMin)
			}
		}
	}
	for _, i := range []int{1, from - 1, from, n} {
		if i < 1 || i > n {
			continue
		}
		r, err := s.QueryMessage("T", fmt.Sprintf("k%d", i), 4, 0, 1<<62)
		if err != nil {
			t.Fatalf("query k%d: %v", i, err)
		}
		if want := i >= from; (len(r.Records) == 1) != want {
			t.Fatalf("query k%d found %d records, want found=%v", i, len(r.Records), want)
		}
	}
}

func TestRetainRules(t *testing.T) {
	const n = 40
	tests := []struct {
		name    string
		setup   func(s *Store)
		policy  RetentionPolicy
		wantCut int // first index kept
	}{
		{"nothing expired", nil, RetentionPolicy{ExpireBeforeMs: 1000}, 1},
		{"no deadline", nil, RetentionPolicy{}, 1},
		{"expired prefix", nil, RetentionPolicy{ExpireBeforeMs: 10_500}, 11},
		{"everything expired", nil, RetentionPolicy{ExpireBeforeMs: 1 << 40}, n + 1},
		{"slave has not fetched", nil, RetentionPolicy{ExpireBeforeMs: 1 << 40, KeepFrom: 7}, 7},
		{"protected queue without offset keeps all of it", nil,
			RetentionPolicy{ExpireBeforeMs: 1 << 40, Protected: []ProtectedQueues{{"g", "T"}}}, 1},
		{"protected queue keeps from the group's offset", func(s *Store) {
			s.CommitOffset("g", "T", 0, 5) // T/0 offset 5 is message 12
			s.CommitOffset("g", "T", 1, 8) // T/1 offset 8 is message 17
		}, RetentionPolicy{ExpireBeforeMs: 1 << 40, Protected: []ProtectedQueues{{"g", "T"}}}, 12},
		{"protected queue consumed to its end", func(s *Store) {
			s.CommitOffset("g", "T", 0, 20)
			s.CommitOffset("g", "T", 1, 20)
		}, RetentionPolicy{ExpireBeforeMs: 1 << 40, Protected: []ProtectedQueues{{"g", "T"}}}, n + 1},
		{"checkpoint behind", func(s *Store) {
			fillTimed(t, s, n+1, 5) // appended, confirmed, not checkpointed
			if err := s.CommitLog().Sync(); err != nil {
				t.Fatal(err)
			}
			s.Confirm(s.CommitLog().LastIndex())
		}, RetentionPolicy{ExpireBeforeMs: 1 << 40}, n + 1},
		{"unconfirmed kept", func(s *Store) {
			fillTimed(t, s, n+1, 5)
		}, RetentionPolicy{ExpireBeforeMs: 1 << 40}, n + 1},
		{"forced without expiry", nil, RetentionPolicy{Force: true}, 1 + n/8},
		{"forced beyond expiry", nil, RetentionPolicy{Force: true, ExpireBeforeMs: 2500}, 1 + n/8},
		{"expiry beyond force", nil, RetentionPolicy{Force: true, ExpireBeforeMs: 20_000}, 20},
		{"forced but slave behind", nil, RetentionPolicy{Force: true, KeepFrom: 2}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, simdisk.New(), Options{KeyIndexBucketBits: 4})
			defer s.Close()
			mustCreate(t, s, "T", 2)
			fillTimed(t, s, 1, n)
			settle(t, s)
			if tc.setup != nil {
				tc.setup(s)
			}
			res, err := s.Retain(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			if res.To != uint64(tc.wantCut) || res.From != 1 {
				t.Fatalf("removed %d..%d, want 1..%d", res.From, res.To, tc.wantCut)
			}
			checkKept(t, s, tc.wantCut, int(s.Confirmed()))
			// Again: nothing more to remove unless forced.
			if res, err := s.Retain(tc.policy); err != nil || (res.Removed() != 0 && !tc.policy.Force) {
				t.Fatalf("second Retain: %+v %v", res, err)
			}
		})
	}
}

// TestRetainOnRealFiles: on the production disk retention removes whole segments only, the
// result survives a restart, and appends continue.
func TestRetainOnRealFiles(t *testing.T) {
	const n = 200
	dir, s := timedOnFiles(t, n)
	starts := s.CommitLog().(node.SegmentedLog).SegmentStarts()
	if len(starts) < 5 {
		t.Fatalf("want several segments, have %v", starts)
	}
	res, err := s.Retain(RetentionPolicy{ExpireBeforeMs: 100_500})
	if err != nil {
		t.Fatal(err)
	}
	cut := int(res.To)
	if !slices.Contains(starts, res.To) || cut > 101 || cut < 2 {
		t.Fatalf("cut at %d: want the start of the segment holding message 101 (segments %v)", cut, starts)
	}
	checkKept(t, s, cut, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := diskfile.Open(dir, diskfile.Options{SegmentBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s = open(t, d, Options{KeyIndexBucketBits: 4})
	defer s.Close()
	checkKept(t, s, cut, n)
	fillTimed(t, s, n+1, 10)
	settle(t, s)
	checkKept(t, s, cut, n+10)
}

// TestRetainForcedOnRealFiles: under disk pressure each Retain removes the oldest segment
// whatever its age, also before the files follow (no sync between), and never the tail.
func TestRetainForcedOnRealFiles(t *testing.T) {
	const n = 100
	_, s := timedOnFiles(t, n)
	defer s.Close()
	starts := s.CommitLog().(node.SegmentedLog).SegmentStarts()
	if len(starts) < 4 {
		t.Fatalf("want several segments, have %v", starts)
	}
	for i, want := range starts[1:] {
		res, err := s.Retain(RetentionPolicy{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.To != want {
			t.Fatalf("forced Retain %d removed up to %d, want the segment start %d (segments %v)", i, res.To, want, starts)
		}
		checkKept(t, s, int(want), n)
	}
	if res, err := s.Retain(RetentionPolicy{Force: true}); err != nil || res.Removed() != 0 {
		t.Fatalf("forced Retain removed from the tail segment: %+v %v", res, err)
	}
}

// TestRetainCrashBetweenSteps stops Retain after each of its steps, as a crash would, on real
// files, and reopens the store from the files: nothing kept is lost, and the next Retain
// finishes the job.
func TestRetainCrashBetweenSteps(t *testing.T) {
	for _, step := range []retentionStep{stepQueues, stepKeyIndex} {
		t.Run(string(step), func(t *testing.T) {
			const n = 120
			dir, s := timedOnFiles(t, n)
			crash := errors.New("crash")
			s.afterRetentionStep = func(got retentionStep) error {
				if got != step {
					return nil
				}
				// The trimmed logs reach the files (a checkpoint's sync), then the crash.
				logs, _ := s.BeginCheckpoint()
				for _, l := range logs {
					if err := l.Sync(); err != nil {
						t.Fatal(err)
					}
				}
				return crash
			}
			policy := RetentionPolicy{ExpireBeforeMs: 60_500}
			if _, err := s.Retain(policy); !errors.Is(err, crash) {
				t.Fatalf("Retain: %v, want the injected crash", err)
			}
			// The process dies: its handles are abandoned, and a new one opens the files.
			d2, err := diskfile.Open(dir, diskfile.Options{SegmentBytes: 1 << 10})
			if err != nil {
				t.Fatal(err)
			}
			s2 := open(t, d2, Options{KeyIndexBucketBits: 4})
			defer s2.Close()
			if got := s2.CommitLog().FirstIndex(); got != 1 {
				t.Fatalf("commit log trimmed before the crash: first %d", got)
			}
			if got := s2.MinOffset("T", 0); got == 0 {
				t.Fatalf("T/0 not trimmed on the files before the crash")
			}
			for q := int32(0); q < 2; q++ {
				got := queueBodiesFrom(t, s2, "T", q)
				kept := keptBodies(61, n, q)
				if len(got) < len(kept) || !slices.Equal(got[len(got)-len(kept):], kept) {
					t.Fatalf("T/%d after the crash lost kept messages: %v", q, got)
				}
			}
			res, err := s2.Retain(policy)
			if err != nil {
				t.Fatal(err)
			}
			checkKept(t, s2, int(res.To), n)
			if res.To < 2 || res.To > 61 {
				t.Fatalf("second Retain cut at %d", res.To)
			}
		})
	}
}

// queueBodiesFrom reads a queue from its min offset.
func queueBodiesFrom(t tb, s *Store, topic string, q int32) []string {
	t.Helper()
	var out []string
	for off := s.MinOffset(topic, q); ; {
		r, err := s.Get(topic, q, off, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch r.Status {
		case Found, NoMatchedMessage, MessageWasRemoving:
		default:
			return out
		}
		out = append(out, bodiesOf(t, r.Records)...)
		off = r.NextOffset
	}
}

// TestRetainModel: random appends, confirms, checkpoints, retentions and crashes on the
// simulated disk; the store always serves exactly the messages at or above the commit log's
// first index that a model of the rules allows, and never removes one the rules keep.
func TestRetainModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		d := simdisk.New()
		s := open(rt, d, Options{KeyIndexBucketBits: 4})
		mustCreate(rt, s, "T", 2)
		appended := 0
		first := 1
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0:
				k := rapid.IntRange(1, 10).Draw(rt, "n")
				fillTimed(rt, s, appended+1, k)
				appended += k
				settle(rt, s)
			case 1:
				deadline := int64(rapid.IntRange(0, appended+2).Draw(rt, "deadline")) * 1000
				keep := uint64(rapid.IntRange(0, appended+2).Draw(rt, "keepFrom"))
				force := rapid.Bool().Draw(rt, "force")
				res, err := s.Retain(RetentionPolicy{ExpireBeforeMs: deadline, KeepFrom: keep, Force: force})
				if err != nil {
					rt.Fatal(err)
				}
				if keep != 0 && res.To > max(keep, uint64(first)) {
					rt.Fatalf("removed up to %d past KeepFrom %d", res.To, keep)
				}
				if !force && res.To > uint64(first) && int64(res.To-1)*1000 >= deadline {
					rt.Fatalf("removed message %d stored at %d, deadline %d", res.To-1, (res.To-1)*1000, deadline)
				}
				if res.To > uint64(first) {
					first = int(res.To)
				}
			case 2:
				if err := s.Close(); err != nil {
					rt.Fatal(err)
				}
				s = open(rt, d, Options{KeyIndexBucketBits: 4})
			case 3:
				d.Crash(rand.New(rand.NewPCG(uint64(appended), 7)))
				s = open(rt, d, Options{KeyIndexBucketBits: 4})
			}
			checkKept(rt, s, first, appended)
		}
		s.Close()
	})
}
