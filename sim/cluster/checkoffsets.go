package cluster

// The consumer-offset check of the single topology (the groups topology has its own, which
// knows of masters and their slaves' copies: groupoffsets.go). It verifies that a committed
// offset a consumer read back never moves backwards and is never lost, crashes included. It
// does not verify that a commit is ever applied (commits are not acknowledged), nor the loss of
// a committed 0 (see checkOffsets).

import (
	"math"
	"slices"

	"github.com/sluicemq/sluice/linearizability"
)

// checkOffsets: a committed offset a consumer has read back never moves backwards, crashes
// included (nothing here resets offsets), and once found it is never lost. Under async flush
// a crash may cut a queue back (its unflushed tail), and a consumer whose offset lay past the
// new end is moved back to it: that is allowed down to what the crash may cut (cutBack).
//
// Which reads show a committed offset: those found with an offset above 0. A broker answers a
// group with no stored offset on a young queue SUCCESS with offset 0, as Java 4.x does
// (brokernode youngQueue), and the client cannot tell that answer from a committed 0. It is
// given whenever the broker holds no offset for the group and queue: before the group's first
// commit, but also after commits that never arrived (commits are not acknowledged) or that a
// crash lost before anyone read them (which is allowed), and it turns into 22 QUERY_NOT_FOUND
// once the queue's head ages. So a read of 0 proves nothing was committed and is not taken as
// one (it is still checked against the committed offsets read before it: a 0 read after a
// committed 5 went backwards). Offsets above 0 come from commits only, so every found read
// above 0 is a committed offset and must never be lost or move back. What this gives up is
// catching the loss of a committed 0, which is a consumer that has consumed nothing; the
// broker persists and answers every offset by the same path, so the reads above 0 exercise it.
func (r *run) checkOffsets() (bad []linearizability.QueueKey) {
	keys := make([]groupQueue, 0, len(r.offsetReads))
	for k := range r.offsetReads {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, groupQueue.compare)
	for _, k := range keys {
		var prev *offsetRead
		for i := range r.offsetReads[k] {
			cur := &r.offsetReads[k][i]
			if prev != nil && prev.found && cur.found && cur.offset < prev.offset && r.cutBack(k, i) {
				prev = cur // a crash cut the queue back below the offset (async flush)
				continue
			}
			if prev != nil && prev.found && (!cur.found || cur.offset < prev.offset) {
				r.violateAt(cur.at, "offset went backwards", "group %s, queue %s: consumer offset read as %d at %v, then as %d (found=%v) at %v",
					k.group, k.queue, prev.offset, prev.at, cur.offset, cur.found, cur.at)
				bad = append(bad, k.queue)
			}
			if cur.found && cur.offset > 0 {
				prev = cur
			}
		}
	}
	return bad
}

// cutBack reports whether the i-th offset read of k may be lower than the one before it
// because a crash cut the queue back below it: a crash since the consumer was last read at or
// below that offset (before that, the entries above it were not even consumed) that may have
// cut the entry at that offset (linearizability.History.MayCutBelow).
func (r *run) cutBack(k groupQueue, i int) bool {
	reads := r.offsetReads[k]
	cur := reads[i]
	since := int64(math.MinInt64)
	for j := i - 1; j >= 0; j-- {
		if reads[j].found && reads[j].offset <= cur.offset {
			since = int64(reads[j].at)
			break
		}
	}
	return r.h.MayCutBelow(k.queue, cur.offset, since, int64(cur.at))
}
