package cluster

// The consumer-offset check of the single topology (the groups topology has its own, which
// knows of masters and their slaves' copies: groupoffsets.go). It verifies that a committed
// offset a consumer read back never moves backwards and is never lost, crashes included. It
// does not verify that a commit is ever applied (commits are not acknowledged), nor the loss of
// a committed 0 (see checkOffsets).

import (
	"slices"

	"github.com/sluicemq/sluice/linearizability"
)

// checkOffsets: a committed offset a consumer has read back never moves backwards, crashes
// included (nothing here resets offsets), and once found it is never lost.
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
			if prev != nil && prev.found && (!cur.found || cur.offset < prev.offset) {
				r.violate("offset went backwards", "group %s, queue %s: consumer offset read as %d at %v, then as %d (found=%v) at %v",
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
