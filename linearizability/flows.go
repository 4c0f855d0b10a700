package linearizability

// Queue locks and offset searches: flows whose results are not appends or reads of a queue's
// log. The history records them; the simulator's direct checks (sim/checks) judge them.

// LockOp is one LOCK_BATCH_MQ or UNLOCK_BATCH_MQ for one queue (a request naming several
// queues is recorded once per queue).
type LockOp struct {
	Client       int
	Group        string
	Queue        QueueKey
	Call, Return int64
	Outcome      Outcome
	// Unlock: an unlock, not a lock.
	Unlock bool
	// Granted: an OK lock that the broker granted for this queue.
	Granted bool
}

// SearchOp is one SEARCH_OFFSET_BY_TIMESTAMP: the offset of the first message stored at or
// after Time.
type SearchOp struct {
	Client       int
	Queue        QueueKey
	Time         int64 // virtual nanoseconds, of millisecond precision
	Call, Return int64
	Outcome      Outcome
	Offset       int64 // meaningful when Outcome is OK
}
