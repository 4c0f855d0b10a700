package checks

import (
	"fmt"

	"github.com/sluicemq/sluice/linearizability"
)

// Kinds of invariant violation.
const (
	// KindLostAcked: an acknowledged send's message is not in the final drain of its queue.
	KindLostAcked = "lost acknowledged message"
	// KindLostObserved: a message some pull returned is not in the final drain of its queue.
	KindLostObserved = "lost observed message"
	// KindTwoOffsets: one message id was acknowledged or observed at two positions.
	KindTwoOffsets = "message at two offsets"
	// KindOffsetConflict: two message ids were acknowledged or observed at one position.
	KindOffsetConflict = "two messages at one offset"
	// KindFailedObserved: a message whose every send failed definitely was pulled or drained.
	KindFailedObserved = "failed send observed"
	// KindPhantom: a pulled or drained message id that no send in the history carried.
	KindPhantom = "message never sent"
	// KindDrainOrder: the final drain of a queue is not offsets 0, 1, 2, ... in order.
	KindDrainOrder = "drain not contiguous"
	// KindWrongQueue: a message seen in a queue that none of its sends or broker writes named.
	KindWrongQueue = "message in the wrong queue"
	// KindLostWrite: a broker write whose cause was acknowledged is not in the final drain.
	KindLostWrite = "lost broker write"
	// KindTooEarly: a broker write was pulled before it could legally appear (a delayed message
	// before its due time, a transaction's message before its commit).
	KindTooEarly = "broker write too early"
	// KindTooLate: a broker write was first stored after its deadline.
	KindTooLate = "broker write too late"
	// KindWithheldDelivered: a message that must never be delivered was pulled or drained.
	KindWithheldDelivered = "withheld message delivered"
)

// Violation is one broken invariant.
type Violation struct {
	Kind    string
	Queue   linearizability.QueueKey
	MsgID   string // "" when the violation is not about one message
	Message string // for a person: what was seen, and where
}

func (v Violation) String() string { return fmt.Sprintf("%s: %v: %s", v.Kind, v.Queue, v.Message) }
