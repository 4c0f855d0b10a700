package store

import (
	"maps"
	"slices"
)

// OffsetGroups returns every consumer group with a committed offset on some queue, sorted.
func (s *Store) OffsetGroups() []string {
	set := map[string]bool{}
	for k := range s.offsets {
		set[k.group] = true
	}
	return slices.Sorted(maps.Keys(set))
}
