package checks

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/linearizability"
)

// KindLockOverlap: two clients of a group held the lock of one queue at the same time.
const KindLockOverlap = "two lock holders"

// Locks checks that no two clients held one queue's lock at once. A grant to B breaks
// it when a grant to another client A surely came first (A returned before B was called) and
// A's lease, renewed no earlier than A's call, had surely not run out when B's grant returned
// (the broker frees a lock not renewed for more than lease), unless A may have released it in
// between: an unlock by A that did not fail definitely, called after A's lock and before B's
// return, or a broker restart (locks live in memory) in that window. restarts lists the
// virtual times the broker went down.
func Locks(locks []linearizability.LockOp, lease time.Duration, restarts []int64) []Violation {
	if lease <= 0 {
		return nil
	}
	type key struct {
		group string
		queue linearizability.QueueKey
	}
	byKey := map[key][]int{}
	var keys []key
	for i, l := range locks {
		k := key{l.Group, l.Queue}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(strings.Compare(a.group, b.group), a.queue.Compare(b.queue))
	})
	restartIn := func(from, to int64) bool {
		for _, r := range restarts {
			if r >= from && r <= to {
				return true
			}
		}
		return false
	}
	var out []Violation
	for _, k := range keys {
		idx := byKey[k]
		released := func(client int, from, to int64) bool {
			for _, i := range idx {
				u := locks[i]
				if u.Unlock && u.Client == client && u.Outcome != linearizability.Failed && u.Call >= from && u.Call <= to {
					return true
				}
			}
			return false
		}
		reported := map[int]bool{}
		for _, ib := range idx {
			b := locks[ib]
			if !b.Granted || b.Outcome != linearizability.OK || reported[ib] {
				continue
			}
			for _, ia := range idx {
				a := locks[ia]
				if !a.Granted || a.Outcome != linearizability.OK || a.Client == b.Client || a.Return > b.Call {
					continue
				}
				if b.Return-a.Call >= int64(lease) || released(a.Client, a.Call, b.Return) || restartIn(a.Call, b.Return) {
					continue
				}
				reported[ib] = true
				out = append(out, Violation{Kind: KindLockOverlap, Queue: k.queue, Message: fmt.Sprintf(
					"group %s: client %d was granted the lock in [%v, %v] while client %d held it since a grant in [%v, %v] (lease %v, no unlock or restart between)",
					k.group, b.Client, time.Duration(b.Call), time.Duration(b.Return), a.Client, time.Duration(a.Call), time.Duration(a.Return), lease)})
				break
			}
		}
	}
	return out
}
