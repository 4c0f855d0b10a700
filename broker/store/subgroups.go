package store

import (
	"fmt"
	"maps"
	"slices"

	"github.com/sluicemq/sluice/broker/codec"
)

// Subscription groups: the consumer groups an admin configured (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
// RocketMQ's subscriptionGroup.json), persisted in subgroups.json. Groups nobody configured
// are not stored: the broker lists them (from heartbeats and offsets) with Java's defaults.

const subgroupsFile = "subgroups.json"

type subgroupsDoc struct {
	Groups []codec.SubscriptionGroupConfig `json:"groups"`
}

func (s *Store) loadSubscriptionGroups() error {
	var doc subgroupsDoc
	if _, err := readJSON(s.disk, subgroupsFile, &doc); err != nil {
		return err
	}
	s.subgroups = map[string]codec.SubscriptionGroupConfig{}
	for _, g := range doc.Groups {
		if g.GroupName == "" {
			return fmt.Errorf("store: %s: a group without a name", subgroupsFile)
		}
		s.subgroups[g.GroupName] = g
	}
	return nil
}

// SubscriptionGroups returns the configured groups, sorted by name.
func (s *Store) SubscriptionGroups() []codec.SubscriptionGroupConfig {
	out := make([]codec.SubscriptionGroupConfig, 0, len(s.subgroups))
	for _, name := range slices.Sorted(maps.Keys(s.subgroups)) {
		out = append(out, s.subgroups[name])
	}
	return out
}

// SubscriptionGroup returns a configured group.
func (s *Store) SubscriptionGroup(name string) (codec.SubscriptionGroupConfig, bool) {
	c, ok := s.subgroups[name]
	return c, ok
}

// writeSubscriptionGroups persists next as subgroups.json and, once written, adopts it.
func (s *Store) writeSubscriptionGroups(next map[string]codec.SubscriptionGroupConfig) error {
	if err := s.usable(); err != nil {
		return err
	}
	doc := subgroupsDoc{Groups: make([]codec.SubscriptionGroupConfig, 0, len(next))}
	for _, name := range slices.Sorted(maps.Keys(next)) {
		doc.Groups = append(doc.Groups, next[name])
	}
	if err := writeJSON(s.disk, subgroupsFile, doc); err != nil {
		return err
	}
	s.subgroups = next
	return nil
}

// PutSubscriptionGroup creates or replaces a group's configuration, on disk before it returns.
func (s *Store) PutSubscriptionGroup(c codec.SubscriptionGroupConfig) error {
	if c.GroupName == "" {
		return fmt.Errorf("store: subscription group without a name")
	}
	if old, ok := s.subgroups[c.GroupName]; ok && old == c {
		return nil
	}
	next := maps.Clone(s.subgroups)
	next[c.GroupName] = c
	return s.writeSubscriptionGroups(next)
}

// DeleteSubscriptionGroup removes a group's configuration; false if it had none.
func (s *Store) DeleteSubscriptionGroup(name string) (bool, error) {
	if _, ok := s.subgroups[name]; !ok {
		return false, nil
	}
	next := maps.Clone(s.subgroups)
	delete(next, name)
	return true, s.writeSubscriptionGroups(next)
}

// SyncSubscriptionGroups makes the configured groups exactly groups (a slave adopting its
// master's), writing subgroups.json only if they change; it reports whether they did.
func (s *Store) SyncSubscriptionGroups(groups []codec.SubscriptionGroupConfig) (bool, error) {
	next := make(map[string]codec.SubscriptionGroupConfig, len(groups))
	for _, g := range groups {
		if g.GroupName == "" {
			return false, fmt.Errorf("store: sync subscription groups: a group without a name")
		}
		next[g.GroupName] = g
	}
	if maps.Equal(next, s.subgroups) {
		return false, nil
	}
	return true, s.writeSubscriptionGroups(next)
}

// DropGroupOffsets forgets every committed offset of group (persisted at the next
// FlushOffsets), as Java's ConsumerOffsetManager.removeOffset does; it returns how many.
func (s *Store) DropGroupOffsets(group string) int {
	n := 0
	for k := range s.offsets {
		if k.group == group {
			delete(s.offsets, k)
			s.offsetsDirty = true
			n++
		}
	}
	for k := range s.aheadOffsets {
		if k.group == group {
			delete(s.aheadOffsets, k)
			s.offsetsDirty = true
		}
	}
	return n
}
