package controller

import (
	"fmt"
	"slices"
)

// CheckInvariants reports the first invariant the state machine breaks: every group passes
// Group's own checks (the master is an in-sync replica, the in-sync set a sorted set of
// registered replicas, epochs never negative, replicas bounded), is filed under its own key,
// and names replicas by ids of at least 1 with an address; at most MaxGroups groups.
func (s *State) CheckInvariants() error {
	if len(s.groups) > MaxGroups {
		return fmt.Errorf("controller: %d broker groups, more than %d", len(s.groups), MaxGroups)
	}
	// Walked in map order while every group holds (the common case, after every event in the
	// simulator), and again in key order once one does not, so the error is the same in every run.
	for k := range s.groups {
		if s.groupInvariant(k) != nil {
			for _, k := range s.Keys() {
				if err := s.groupInvariant(k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *State) groupInvariant(k GroupKey) error {
	g := s.groups[k]
	if g == nil || g.Key != k {
		return fmt.Errorf("controller: group %s is not filed under its own key", k)
	}
	if err := g.invariant(); err != nil {
		return err
	}
	for id, addr := range g.Replicas {
		if id < 1 || addr == "" {
			return fmt.Errorf("controller: group %s: replica %d has address %q", k, id, addr)
		}
	}
	return nil
}

// CheckInvariants implements node.InvariantChecker: the state machine's invariants
// (State.CheckInvariants), and the member's own bookkeeping around raft:
//   - nothing is applied beyond the committed index of the hard state, nor beyond the log;
//   - a Ready waiting for its sync has entries, and the disk log ends at the last of them;
//     with none waiting, the disk log and raft's in-memory log end at the same index (raft
//     reads only what is durable);
//   - a failed member leads nothing and waits for no sync;
//   - peers are the other members, sorted; waiting proposals have non-zero ids.
func (c *Controller) CheckInvariants() error {
	if err := c.state.CheckInvariants(); err != nil {
		return err
	}
	hs, _, err := c.storage.MemoryStorage.InitialState()
	if err != nil {
		return fmt.Errorf("controller %d: read hard state: %w", c.cfg.ID, err)
	}
	last, err := c.storage.LastIndex()
	if err != nil {
		return fmt.Errorf("controller %d: read last index: %w", c.cfg.ID, err)
	}
	switch {
	case c.appliedIndex > hs.GetCommit():
		return fmt.Errorf("controller %d: applied index %d is beyond the committed index %d", c.cfg.ID, c.appliedIndex, hs.GetCommit())
	case c.appliedIndex > last:
		return fmt.Errorf("controller %d: applied index %d is beyond the log's last index %d", c.cfg.ID, c.appliedIndex, last)
	case c.failed != nil && (c.isLeader || c.unsynced != nil):
		return fmt.Errorf("controller %d: failed (%v) yet leading (%v) or waiting for a sync (%v)", c.cfg.ID, c.failed, c.isLeader, c.unsynced != nil)
	}
	if c.unsynced != nil {
		ents := c.unsynced.Entries
		if len(ents) == 0 || ents[len(ents)-1].GetIndex() != c.syncTo || c.wal.LastIndex() != c.syncTo {
			return fmt.Errorf("controller %d: the Ready waiting for a sync up to %d holds %d entries; the disk log ends at %d",
				c.cfg.ID, c.syncTo, len(ents), c.wal.LastIndex())
		}
	} else if c.failed == nil && c.wal.LastIndex() != last {
		return fmt.Errorf("controller %d: no sync is pending, yet the disk log ends at %d and raft's log at %d", c.cfg.ID, c.wal.LastIndex(), last)
	}
	if !slices.IsSorted(c.peerIDs) || len(c.peerIDs) != len(c.cfg.Peers)-1 || slices.Contains(c.peerIDs, c.cfg.ID) {
		return fmt.Errorf("controller %d: peers %v are not the other members of %v, sorted", c.cfg.ID, c.peerIDs, c.cfg.Peers)
	}
	if _, ok := c.proposals[0]; ok {
		return fmt.Errorf("controller %d: a proposal waits under id 0, which marks commands nobody waits on", c.cfg.ID)
	}
	return nil
}
