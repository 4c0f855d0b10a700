package cluster

// The processed-offsets check: a consumer group's committed offset never passes a message the
// group did not process. A consumer commits the offset after the last message it processed,
// so every message below a committed offset must have reached one of the group's consumers;
// one that did not is lost to the group for good (at-most-once where at-least-once was
// promised), whatever the broker still holds.

import (
	"slices"

	"github.com/sluicemq/sluice/linearizability"
)

// KindOffsetPastUnprocessed: a consumer group's committed offset passed a message none of
// its consumers processed.
const KindOffsetPastUnprocessed = "offset past unprocessed message"

// noteProcessed records that a consumer of group processed the message at offset of q.
func (r *run) noteProcessed(k groupQueue, offset int64) {
	set := r.processed[k]
	if set == nil {
		set = map[int64]bool{}
		r.processed[k] = set
	}
	set[offset] = true
}

// checkProcessed checks the committed offsets the consumers of the plain and orderly groups
// read back (those groups' consumers process every message they pull; the SQL92 group's
// broker filters) against what the group processed: every message of the final drain below
// the highest committed offset read must have been pulled by one of the group's consumers.
// Positions are compared by offset alone: a crash under async flush may cut a queue back and
// let new messages take offsets a consumer had processed and committed past, which the
// broker answers by moving the offset back (checkOffsets). A queue in skip (lossy: async
// replication lost acknowledged messages there) is left out, and so are offsets whose message
// a fault destroyed. It returns the queues it reported.
func (r *run) checkProcessed(drain map[linearizability.QueueKey][]linearizability.PulledMsg, skip map[linearizability.QueueKey]bool) (bad []linearizability.QueueKey) {
	keys := make([]groupQueue, 0, len(r.offsetReads))
	for k := range r.offsetReads {
		if (k.group == consumerGroup || k.group == orderlyGroup) && !skip[k.queue] {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, groupQueue.compare)
	for _, k := range keys {
		var high *offsetRead
		for i := range r.offsetReads[k] {
			if rd := &r.offsetReads[k][i]; rd.found && (high == nil || rd.offset > high.offset) {
				high = rd
			}
		}
		if high == nil {
			continue
		}
		var missed []int64
		for _, m := range drain[k.queue] {
			if m.Offset < high.offset && !r.processed[k][m.Offset] && !r.h.Unreadable[k.queue][m.Offset] {
				missed = append(missed, m.Offset)
			}
		}
		if len(missed) == 0 {
			continue
		}
		r.violateAt(high.at, KindOffsetPastUnprocessed, "group %s, queue %s: committed offset %d read at %v, but none of the group's consumers processed the message at offset %d (%d such below it)",
			k.group, k.queue, high.offset, high.at, missed[0], len(missed))
		bad = append(bad, k.queue)
	}
	return bad
}
