// Package linearizability owns the histories the simulator records (every send and pull a
// client made, with its invocation and return in virtual time and its outcome, plus what the
// broker owes for delayed, transactional and retried messages, queue locks and offset
// searches) and the Porcupine model of each queue as an append-only log they are checked
// against (Check). The direct checks of the same histories (no acknowledged message lost, no
// message at two offsets, and the rest: the invariants that are not about linearizability) are
// the simulator's, in package sim/checks; they use what the model knows of when a position was
// surely filled and what a crash may have cut (FilledBy, MayCut).
//
// It never touches a node: the simulator fills a History through its client calls and hands it
// here after the run. Nothing here is deterministic-simulation code; Check uses wall-clock
// timeouts and goroutines, which only bound how long checking takes, never what a run does.
package linearizability

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Outcome is how a client call ended, as the client saw it.
type Outcome int

const (
	// OK: the call returned success; its result (offset, messages) is meaningful.
	OK Outcome = iota + 1
	// Failed: the call definitely did not take effect (an error response that guarantees it,
	// e.g. a rejected send).
	Failed
	// Unknown: the call timed out or its connection broke; it may or may not have taken
	// effect, possibly after the client stopped waiting.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// QueueKey names one message queue: a broker group's queue of a topic.
type QueueKey struct {
	Broker  string
	Topic   string
	QueueID int32
}

// Compare orders queue keys by broker, topic, then queue id.
func (q QueueKey) Compare(o QueueKey) int {
	if c := cmp.Compare(q.Broker, o.Broker); c != 0 {
		return c
	}
	if c := cmp.Compare(q.Topic, o.Topic); c != 0 {
		return c
	}
	return cmp.Compare(q.QueueID, o.QueueID)
}

func (q QueueKey) String() string { return fmt.Sprintf("%s/%s/%d", q.Broker, q.Topic, q.QueueID) }

// SendOp is one send call. MsgID identifies the message and must be unique per send call: a
// client that retries must record each attempt as its own SendOp with its own id, or a retry
// that lands twice is reported as a message at two offsets.
type SendOp struct {
	Client int
	Queue  QueueKey
	MsgID  string
	// Call and Return are virtual nanoseconds. Return is ignored when Outcome is Unknown: the
	// send may take effect at any time after Call.
	Call, Return int64
	Outcome      Outcome
	// Offset is the queue offset the broker acknowledged; meaningful only when Outcome is OK.
	Offset int64
}

// PulledMsg is one message a pull returned.
type PulledMsg struct {
	Offset int64
	MsgID  string
	// StoreTime is when the broker stored it (its store timestamp, in virtual nanoseconds of
	// millisecond precision), when Stamped. It may be negative: a broker clock set back reads
	// times before virtual time 0. Only the checks of broker writes' deadlines and of offset
	// searches read it.
	StoreTime int64
	Stamped   bool
}

// BrokerClient is the client number of operations the broker performs itself (the appends of
// broker writes) in the model's visualisation.
const BrokerClient = -1

// BrokerWrite is a message the broker appends to a queue by itself on a client's behalf: a
// delayed message delivered when due, a committed transaction's message, a retry or a dead
// letter. No call acknowledges its position, so the log model learns of its appends from the
// pulls that observed them (each distinct offset an append). It is delivered at least once:
// the same id at several offsets of its queue is allowed.
type BrokerWrite struct {
	Queue QueueKey
	// MsgID is the id pulls see it under; unique among sends and other broker writes.
	MsgID string
	// Cause says what made the broker write it, for reports.
	Cause string
	// After is the earliest virtual time it may be appended: a delayed message's due time, a
	// transaction's commit call. The log model's window for its appends starts here, and an
	// append seen earlier (by a pull, or implied by a later offset acknowledged or pulled) is
	// reported as too early.
	After int64
	// Owed: its cause was acknowledged, so it must be in the final drain.
	Owed bool
	// Deadline, when above 0, is the virtual time by which its first appearance must have been
	// stored (StoreTime), when it appears.
	Deadline int64
	// Records, for an owed write in a history with crashes (async flush), are the windows in
	// which the broker appended the records that make it owed (a delayed send's entry in the
	// schedule queue, the acknowledged send-backs, a transaction's half message). If a crash
	// may have lost every one of them (History.MayLose), so may the write; otherwise it is owed
	// as without crashes.
	Records []Window
}

// Withheld is a message id that must never be delivered anywhere: a rolled-back transaction's
// message, or one whose every half message failed.
type Withheld struct {
	MsgID string
	Why   string
}

// PullOp is one pull call at a requested queue offset. Only OK pulls are checked: a pull that
// failed or timed out says nothing about the queue. An OK pull with no messages means the broker
// had nothing at or after Offset.
type PullOp struct {
	Client       int
	Queue        QueueKey
	Offset       int64
	Call, Return int64
	Outcome      Outcome
	Msgs         []PulledMsg
}

// History is everything the clients of one run did, in the order the simulator recorded it.
type History struct {
	Sends    []SendOp
	Pulls    []PullOp
	Writes   []BrokerWrite
	Withheld []Withheld
	Locks    []LockOp
	Searches []SearchOp
	// Crashes are the broker's crashes that may lose acknowledged writes (async flush; see
	// Crash), in time order. Empty when every acknowledged write is synced first.
	Crashes []Crash
	// StoreTimeSlack, when above 0, says that a pulled message's StoreTime is within it of what
	// the broker's clock (BrokerClock) read when it appended the message (the broker stamps a
	// message as it appends it; the slack covers the stamp's millisecond precision): the log
	// model then places a broker write's append at the virtual times the clock read that.
	StoreTimeSlack int64
	// BrokerClock is how clock faults moved the broker's clock, in time order (see
	// ClockPiece); empty when it read virtual time throughout.
	BrokerClock []ClockPiece
	// Unreadable holds, by queue, the offsets whose stored message a fault destroyed (a bit
	// flip the broker's checksum catches): the broker skips them, so a drain may too.
	Unreadable map[QueueKey]map[int64]bool
	// Retained holds, by queue, the offset below which retention legally removed messages
	// (the queue's min offset as the checks know it): a drain may start above 0, up to it.
	Retained map[QueueKey]int64
}

// AddRetained records that retention legally removed q's messages below offset start (see
// Retained).
func (h *History) AddRetained(q QueueKey, start int64) {
	if h.Retained == nil {
		h.Retained = map[QueueKey]int64{}
	}
	h.Retained[q] = max(h.Retained[q], start)
}

// AddUnreadable records that the message at offset of q was destroyed (see Unreadable).
func (h *History) AddUnreadable(q QueueKey, offset int64) {
	if h.Unreadable == nil {
		h.Unreadable = map[QueueKey]map[int64]bool{}
	}
	if h.Unreadable[q] == nil {
		h.Unreadable[q] = map[int64]bool{}
	}
	h.Unreadable[q][offset] = true
}

// AddSend records a send and returns its index in h.Sends, so a caller that records the
// invocation first can fill in the return later through h.Sends[i].
func (h *History) AddSend(op SendOp) int {
	h.Sends = append(h.Sends, op)
	return len(h.Sends) - 1
}

// AddPull records a pull and returns its index in h.Pulls.
func (h *History) AddPull(op PullOp) int {
	h.Pulls = append(h.Pulls, op)
	return len(h.Pulls) - 1
}

// Queues returns every queue the history touches, sorted.
func (h *History) Queues() []QueueKey {
	seen := map[QueueKey]bool{}
	var out []QueueKey
	add := func(q QueueKey) {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	for i := range h.Sends {
		add(h.Sends[i].Queue)
	}
	for i := range h.Pulls {
		add(h.Pulls[i].Queue)
	}
	for i := range h.Writes {
		add(h.Writes[i].Queue)
	}
	slices.SortFunc(out, QueueKey.Compare)
	return out
}

// writesOn maps the ids of the broker writes to q to their writes.
func (h *History) writesOn(q QueueKey) map[string]*BrokerWrite {
	out := map[string]*BrokerWrite{}
	for i := range h.Writes {
		if h.Writes[i].Queue == q {
			out[h.Writes[i].MsgID] = &h.Writes[i]
		}
	}
	return out
}

// Validate reports the first malformed operation: an unset outcome, a missing message id, a
// return before its call on a completed operation, or a negative offset.
func (h *History) Validate() error {
	for i, s := range h.Sends {
		switch {
		case s.Outcome < OK || s.Outcome > Unknown:
			return fmt.Errorf("send #%d: outcome %v not set", i, s.Outcome)
		case s.MsgID == "":
			return fmt.Errorf("send #%d: empty message id", i)
		case s.Outcome != Unknown && s.Return < s.Call:
			return fmt.Errorf("send #%d: returned at %d before its call at %d", i, s.Return, s.Call)
		case s.Outcome == OK && s.Offset < 0:
			return fmt.Errorf("send #%d: acknowledged at negative offset %d", i, s.Offset)
		}
	}
	for i, p := range h.Pulls {
		switch {
		case p.Outcome < OK || p.Outcome > Unknown:
			return fmt.Errorf("pull #%d: outcome %v not set", i, p.Outcome)
		case p.Outcome != Unknown && p.Return < p.Call:
			return fmt.Errorf("pull #%d: returned at %d before its call at %d", i, p.Return, p.Call)
		}
		if p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			if m.Offset < 0 || m.MsgID == "" {
				return fmt.Errorf("pull #%d: returned message %q at offset %d", i, m.MsgID, m.Offset)
			}
		}
	}
	sentTo := map[string]QueueKey{}
	for _, s := range h.Sends {
		sentTo[s.MsgID] = s.Queue
	}
	written := map[string]bool{}
	for i, w := range h.Writes {
		switch {
		case w.MsgID == "":
			return fmt.Errorf("broker write #%d: empty message id", i)
		case written[w.MsgID]:
			return fmt.Errorf("broker write #%d: id %s declared twice", i, w.MsgID)
		}
		if q, ok := sentTo[w.MsgID]; ok {
			return fmt.Errorf("broker write #%d: id %s is also sent by a client (to %v)", i, w.MsgID, q)
		}
		written[w.MsgID] = true
	}
	if err := h.validateCrashes(); err != nil {
		return err
	}
	if err := h.validateClock(); err != nil {
		return err
	}
	for i, l := range h.Locks {
		if l.Outcome < OK || l.Outcome > Unknown || l.Outcome != Unknown && l.Return < l.Call {
			return fmt.Errorf("lock #%d: outcome %v from %d to %d", i, l.Outcome, l.Call, l.Return)
		}
	}
	for i, s := range h.Searches {
		if s.Outcome < OK || s.Outcome > Unknown || s.Outcome != Unknown && s.Return < s.Call {
			return fmt.Errorf("search #%d: outcome %v from %d to %d", i, s.Outcome, s.Call, s.Return)
		}
	}
	return nil
}

func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	return slices.SortedFunc(maps.Keys(m), compare)
}

// eachFilled calls f with each offset of queue q that an operation which succeeded saw
// filled, with that operation's call and return times: an acknowledged send's offset, and
// the offset of every message an OK pull returned. Sends come first, then pulls, each in
// history order.
func (h *History) eachFilled(q QueueKey, f func(call, ret, offset int64)) {
	for _, s := range h.Sends {
		if s.Queue == q && s.Outcome == OK {
			f(s.Call, s.Return, s.Offset)
		}
	}
	for _, p := range h.Pulls {
		if p.Queue != q || p.Outcome != OK {
			continue
		}
		for _, m := range p.Msgs {
			f(p.Call, p.Return, m.Offset)
		}
	}
}
