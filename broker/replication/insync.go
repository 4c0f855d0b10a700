package replication

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// InSync is a master's bookkeeping of its in-sync set for one master epoch: the set the
// controller confirmed, a change it asked for and has not yet had answered, and what each
// slave has synced. It decides which index may be acknowledged and which set to ask for.
//
// The acknowledgement rule (sync replication): index i may be acknowledged when every member
// of the confirmed set and of the proposed set, if any, has synced i (the master: its own
// fsync), and both sets have at least MinInSync members. Requiring the proposed set too is
// what makes changes safe in both directions:
//   - removing a lagging slave: until the controller accepts, the slave may still be elected,
//     so acknowledgements keep waiting for it;
//   - adding a caught-up slave: from the moment it is asked for, it may be elected as soon as
//     the controller applies the change, so it must hold everything acknowledged from then on.
//
// A slave is lagging when it has not held everything the master has for more than MaxLag; it
// has caught up when it holds every acknowledged index and has lagged less than MaxLag/2.
type InSync struct {
	self      int64
	minInSync int
	maxLag    time.Duration

	set      []int64 // confirmed by the controller, sorted, with self
	setEpoch int64
	proposed []int64 // asked for and not yet answered; nil if none

	followers map[int64]*follower
	created   time.Time
}

// follower is what the master knows of one slave.
type follower struct {
	synced     uint64    // the highest index it reported durable
	heardAt    time.Time // its last fetch
	caughtUpAt time.Time // the last moment it held every index the master had
	// sent are the master's last index at the moments it answered the slave's fetches with
	// entries, oldest first: once the slave reports one synced, it had caught up at that time.
	sent []sample
}

type sample struct {
	at   time.Time
	last uint64
}

const maxSamples = 8

// NewInSync starts the bookkeeping of master self at a new epoch, with the in-sync set (and
// its epoch) the controller confirmed. Slaves of the set not heard from yet count as caught up
// at now: they get MaxLag to show up.
func NewInSync(self int64, minInSync int, maxLag time.Duration, set []int64, setEpoch int64, now time.Time) *InSync {
	if !slices.Contains(set, self) {
		panic(fmt.Sprintf("replication: master %d outside its in-sync set %v", self, set))
	}
	s := &InSync{self: self, minInSync: minInSync, maxLag: maxLag, followers: map[int64]*follower{}, created: now}
	s.SetConfirmed(set, setEpoch)
	return s
}

// Confirmed returns the in-sync set the controller confirmed, and its epoch.
func (s *InSync) Confirmed() ([]int64, int64) { return slices.Clone(s.set), s.setEpoch }

// Proposed returns the set asked for and not yet answered (nil if none).
func (s *InSync) Proposed() []int64 { return slices.Clone(s.proposed) }

// SetConfirmed records the set the controller holds (after a change or a heartbeat answer);
// any proposal is over.
func (s *InSync) SetConfirmed(set []int64, setEpoch int64) {
	s.set = sortedIDs(set)
	s.setEpoch = setEpoch
	s.proposed = nil
}

// Propose records that set was asked for. One proposal at a time.
func (s *InSync) Propose(set []int64) {
	if s.proposed != nil {
		panic("replication: a second in-sync proposal while one is in flight")
	}
	if !slices.Contains(set, s.self) {
		panic(fmt.Sprintf("replication: proposed in-sync set %v without the master %d", set, s.self))
	}
	s.proposed = sortedIDs(set)
}

// ProposalFailed records that the proposal was refused or lost; nothing changed.
func (s *InSync) ProposalFailed() { s.proposed = nil }

func (s *InSync) follower(id int64) *follower {
	f := s.followers[id]
	if f == nil {
		f = &follower{caughtUpAt: s.created}
		s.followers[id] = f
	}
	return f
}

// Fetched records a fetch from slave id reporting synced; last is the master's last index.
// A slave may report less than before (it truncated after a crash, or restarted): the report
// stands, since acknowledgements must not count on what it no longer holds.
func (s *InSync) Fetched(id int64, synced, last uint64, now time.Time) {
	if id == s.self {
		panic("replication: the master fetched from itself")
	}
	f := s.follower(id)
	f.synced = synced
	f.heardAt = now
	n := 0
	for n < len(f.sent) && f.sent[n].last <= synced {
		f.caughtUpAt = later(f.caughtUpAt, f.sent[n].at)
		n++
	}
	f.sent = f.sent[n:]
	if synced >= last {
		f.caughtUpAt = now
		f.sent = f.sent[:0]
	}
}

// Answered records that the master answered slave id's fetch with entries up to upTo, its last
// index, at now.
func (s *InSync) Answered(id int64, upTo uint64, now time.Time) {
	f := s.follower(id)
	if len(f.sent) == maxSamples {
		f.sent = slices.Delete(f.sent, 0, 1)
	}
	f.sent = append(f.sent, sample{at: now, last: upTo})
}

// Appending tells that the master is about to append after prevLast: a slave holding
// everything up to prevLast was caught up until now.
func (s *InSync) Appending(prevLast uint64, now time.Time) {
	for _, f := range s.followers {
		if f.synced >= prevLast {
			f.caughtUpAt = now
		}
	}
}

// Synced returns what slave id last reported synced (0 if never heard).
func (s *InSync) Synced(id int64) uint64 {
	if f := s.followers[id]; f != nil {
		return f.synced
	}
	return 0
}

// HeardSince returns the slaves whose last fetch came at or after since, sorted.
func (s *InSync) HeardSince(since time.Time) []int64 {
	var ids []int64
	for id, f := range s.followers {
		if !f.heardAt.IsZero() && !f.heardAt.Before(since) {
			ids = append(ids, id)
		}
	}
	return sortedIDs(ids)
}

// lag is how long slave id has lacked some of the master's entries (0 if it holds all).
func (s *InSync) lag(id int64, last uint64, now time.Time) time.Duration {
	f := s.follower(id)
	if f.synced >= last {
		return 0
	}
	return now.Sub(f.caughtUpAt)
}

// AckIndex returns the highest index the acknowledgement rule allows, given the master's own
// synced index, and false if the sets are below MinInSync (nothing may be acknowledged).
func (s *InSync) AckIndex(selfSynced uint64) (uint64, bool) {
	if len(s.set) < s.minInSync || (s.proposed != nil && len(s.proposed) < s.minInSync) {
		return 0, false
	}
	idx := selfSynced
	for _, id := range s.members() {
		if id != s.self {
			idx = min(idx, s.Synced(id))
		}
	}
	return idx, true
}

// members is the union of the confirmed and the proposed set, sorted.
func (s *InSync) members() []int64 {
	return sortedIDs(append(slices.Clone(s.set), s.proposed...))
}

// Wanted returns the in-sync set the master should ask the controller for, and whether it
// differs from the confirmed one: the confirmed set without its lagging slaves, plus the
// slaves heard within MaxLag that hold every acknowledged index (acked) and lag less than
// MaxLag/2. last is the master's last index. Nothing is wanted while a proposal is in flight.
func (s *InSync) Wanted(last, acked uint64, now time.Time) ([]int64, bool) {
	if s.proposed != nil {
		return nil, false
	}
	want := []int64{s.self}
	for _, id := range s.set {
		if id != s.self && s.lag(id, last, now) <= s.maxLag {
			want = append(want, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.followers)) {
		f := s.followers[id]
		if slices.Contains(s.set, id) || f.heardAt.IsZero() || now.Sub(f.heardAt) > s.maxLag {
			continue
		}
		if f.synced >= acked && s.lag(id, last, now) < s.maxLag/2 {
			want = append(want, id)
		}
	}
	want = sortedIDs(want)
	return want, !slices.Equal(want, s.set)
}

func sortedIDs(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Lag is how far one slave is behind its master (InSync.Lags).
type Lag struct {
	ID      int64
	Entries uint64        // entries of the master's log it has not reported synced
	Behind  time.Duration // how long it has lacked some of them (0 when it holds all)
}

// Lags reports the lag of every slave the master has heard from or that is in the in-sync
// sets, sorted by id; last is the master's last index. Read-only.
func (s *InSync) Lags(last uint64, now time.Time) []Lag {
	ids := slices.Collect(maps.Keys(s.followers))
	for _, id := range s.members() {
		if id != s.self && s.followers[id] == nil {
			ids = append(ids, id)
		}
	}
	ids = sortedIDs(ids)
	out := make([]Lag, 0, len(ids))
	for _, id := range ids {
		l := Lag{ID: id}
		synced, caughtUpAt := uint64(0), s.created
		if f := s.followers[id]; f != nil {
			synced, caughtUpAt = f.synced, f.caughtUpAt
		}
		if synced < last {
			l.Entries = last - synced
			l.Behind = max(0, now.Sub(caughtUpAt))
		}
		out = append(out, l)
	}
	return out
}
