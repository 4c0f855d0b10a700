package checks

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/linearizability"
)

// KindBroadcastMissed: a consumer of a broadcasting group read a queue past a message it was
// never delivered.
const KindBroadcastMissed = "broadcast consumer missed a message"

// BroadcastRead is what one consumer of a broadcasting group read of one queue: every member
// of such a group reads every queue by itself, from its own offset, so it must be delivered
// every message of it. Reached is the offset it had read up to (the next one it would pull);
// Msgs the messages it was delivered.
type BroadcastRead struct {
	Client  string
	Queue   linearizability.QueueKey
	Reached int64
	Msgs    []linearizability.PulledMsg
}

// Broadcast checks that every consumer of a broadcasting group was delivered every message of
// the final drain below the offset it reached on that queue: by message id, or only by offset
// on the queues where reused says an offset may have held another message before (a crash of
// an async-flush broker cuts a queue back and reuses its offsets: the consumer read what the
// offset held then). Messages past the offset it reached it had not read yet, and messages the
// drain does not hold are the drain checks' question, as are those destroyed reports a fault
// destroyed a copy of (the replica the consumer read may have skipped what another still holds;
// nil: none). One violation is reported per consumer and queue, for the first message it missed.
func Broadcast(reads []BroadcastRead, drain map[linearizability.QueueKey][]linearizability.PulledMsg, reused func(linearizability.QueueKey) bool,
	destroyed func(q linearizability.QueueKey, offset int64) bool) []Violation {
	reads = slices.Clone(reads)
	slices.SortStableFunc(reads, func(a, b BroadcastRead) int {
		return cmp.Or(strings.Compare(a.Client, b.Client), a.Queue.Compare(b.Queue))
	})
	var out []Violation
	for _, rd := range reads {
		ids, offsets := map[string]bool{}, map[int64]bool{}
		for _, m := range rd.Msgs {
			ids[m.MsgID], offsets[m.Offset] = true, true
		}
		byOffset := reused != nil && reused(rd.Queue)
		msgs := slices.Clone(drain[rd.Queue])
		slices.SortFunc(msgs, func(a, b linearizability.PulledMsg) int { return cmp.Compare(a.Offset, b.Offset) })
		for _, m := range msgs {
			if m.Offset >= rd.Reached {
				break
			}
			if ids[m.MsgID] || byOffset && offsets[m.Offset] || destroyed != nil && destroyed(rd.Queue, m.Offset) {
				continue
			}
			out = append(out, Violation{Kind: KindBroadcastMissed, Queue: rd.Queue, MsgID: m.MsgID, Message: fmt.Sprintf(
				"%s read the queue up to offset %d, but was never delivered message %s at offset %d", rd.Client, rd.Reached, m.MsgID, m.Offset)})
			break
		}
	}
	return out
}
