package checks

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicemq/sluice/linearizability"
)

// KindCommitPastUnprocessed: a consumer group committed an offset past a message none of its
// members had been delivered when the commit was sent, so a consumer resuming from that
// offset never processes it.
const KindCommitPastUnprocessed = "commit past unprocessed message"

// CommitOp is one consumer-offset commit (UPDATE_CONSUMER_OFFSET) a client sent: group's next
// offset to consume on Queue is Offset, as of At (virtual nanoseconds, when it was sent).
type CommitOp struct {
	Client string
	Group  string
	Queue  linearizability.QueueKey
	Offset int64
	At     int64
}

// Delivery is a message a pull delivered to a member of Group: the one at Offset of Queue,
// handed to the consumer at At (virtual nanoseconds).
type Delivery struct {
	Group  string
	Queue  linearizability.QueueKey
	Offset int64
	At     int64
}

// Commits checks that no commit passes a message its group did not process: for each commit
// of offset O on a queue, every offset below O at which the final drain found a message was
// delivered to some member of the group at or before the commit was sent. Messages the drain
// does not hold (lost, destroyed by a bit flip, deleted by retention) are not judged: whether
// they should be there is the drain checks' question, and a consumer may legitimately move past
// what the broker no longer has. The check is by offset, not by message id: where a crash or a
// failover reused an offset, the group processed what the offset held when it read it.
//
// destroyed reports the offsets a fault destroyed a copy of (a bit flip on any replica: the
// replica a consumer read may have skipped what another, whose copy the drain read, still holds);
// they are not judged either, as the drain checks excuse them (nil: none).
//
// A group's commits are judged only for the groups listed: a group whose members filter what
// they are delivered (a SQL92 or tag subscription) commits past what the filter kept from it.
// One violation is reported per group and queue, for the first commit that passes a message.
func Commits(commits []CommitOp, delivered []Delivery, drain map[linearizability.QueueKey][]linearizability.PulledMsg, groups []string,
	destroyed func(q linearizability.QueueKey, offset int64) bool) []Violation {
	type key struct {
		group string
		queue linearizability.QueueKey
	}
	first := map[key]map[int64]int64{} // earliest delivery, by offset
	for _, d := range delivered {
		k := key{d.Group, d.Queue}
		if first[k] == nil {
			first[k] = map[int64]int64{}
		}
		if at, ok := first[k][d.Offset]; !ok || d.At < at {
			first[k][d.Offset] = d.At
		}
	}
	// held lists the offsets the drain found a message at, by queue, in order.
	held := map[linearizability.QueueKey][]linearizability.PulledMsg{}
	for q, msgs := range drain {
		s := slices.Clone(msgs)
		slices.SortFunc(s, func(a, b linearizability.PulledMsg) int { return cmp.Compare(a.Offset, b.Offset) })
		held[q] = s
	}
	byKey := map[key][]CommitOp{}
	for _, c := range commits {
		if slices.Contains(groups, c.Group) {
			k := key{c.Group, c.Queue}
			byKey[k] = append(byKey[k], c)
		}
	}
	var keys []key
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.group, b.group), a.queue.Compare(b.queue)) })
	var out []Violation
	for _, k := range keys {
		msgs := held[k.queue]
		// need[i] is the time by which the messages at msgs[0..i] had all been delivered
		// (the latest of their first deliveries; never: math.MaxInt64), and which one was last.
		const never = int64(1<<63 - 1)
		need := make([]int64, len(msgs))
		worst := make([]int, len(msgs))
		for i, m := range msgs {
			at, ok := first[k][m.Offset]
			switch {
			case destroyed != nil && destroyed(k.queue, m.Offset):
				at = 0 // excused
			case !ok:
				at = never
			}
			need[i], worst[i] = at, i
			if i > 0 && need[i-1] >= at {
				need[i], worst[i] = need[i-1], worst[i-1]
			}
		}
		cs := byKey[k]
		slices.SortStableFunc(cs, func(a, b CommitOp) int { return cmp.Compare(a.At, b.At) })
		for _, c := range cs {
			n := sort.Search(len(msgs), func(i int) bool { return msgs[i].Offset >= c.Offset }) // messages below the offset
			if n == 0 || need[n-1] <= c.At {
				continue
			}
			m := msgs[worst[n-1]]
			when := "never"
			if at := need[n-1]; at != never {
				when = fmt.Sprintf("only at %v", time.Duration(at))
			}
			out = append(out, Violation{Kind: KindCommitPastUnprocessed, Queue: k.queue, MsgID: m.MsgID, Message: fmt.Sprintf(
				"group %s: %s committed offset %d at %v, past message %s at offset %d, which the group was delivered %s",
				k.group, c.Client, c.Offset, time.Duration(c.At), m.MsgID, m.Offset, when)})
			break
		}
	}
	return out
}
