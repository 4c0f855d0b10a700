package brokernode

// Event is what a broker reports to Config.Observe: one of Acknowledged, Wrote, Confirmed,
// Truncated, RoleChanged, Retained, OffsetMoved, SendRefused and Rebased (rebase.go). Epoch is
// the master epoch the broker knew at the time (0 for a broker without a group).
type Event interface{ event() }

// Acknowledged: the answer to the write at Index went out (SEND_OK and the like) once the ack
// policy allowed it (acks.go). Writes answered as they are appended, in async-flush mode, are
// not reported.
type Acknowledged struct {
	Epoch int64
	Index uint64
}

// Wrote: the broker appended the entry at Index as the writer (a single broker, or a master of
// its group): a send, a retry, a delayed or committed message, a transaction mark.
type Wrote struct {
	Epoch int64
	Index uint64
}

// Confirmed: readers may see the commit log up to Index.
type Confirmed struct {
	Epoch int64
	Index uint64
}

// Truncated: a slave cut its commit log after index After (where it differs from its
// master's), dropping Dropped entries.
type Truncated struct {
	Epoch   int64
	After   uint64
	Dropped uint64
}

// RoleChanged: a replica took role Role ("master", "slave" or "none") at Epoch; MasterID is the
// group's master as the controller named it (0: none).
type RoleChanged struct {
	Role     string
	Epoch    int64
	MasterID int64
}

// Retained: retention removed commit-log entries From..To-1 (retention.go), Segments whole
// segments of them (0 on a log without segments). Forced: the disk was more than
// DiskMaxUsedSpaceRatio full (UsedPercent, at the check), so the oldest went whatever their
// age; otherwise every removed message was stored before ExpireBeforeMs (the broker's clock,
// milliseconds since the epoch).
type Retained struct {
	Epoch          int64
	From, To       uint64
	Segments       int
	Forced         bool
	UsedPercent    int
	ExpireBeforeMs int64
}

// OffsetMoved: a pull of Group at offset From of Topic's queue QueueID, below the queue's min
// offset, was answered PULL_OFFSET_MOVED with To.
type OffsetMoved struct {
	Group, Topic string
	QueueID      int32
	From, To     int64
}

// SendRefused: a send was refused for lack of space: the disk was at least DiskFullRatio full
// (or a commit-log sync was failing), or, with NoSpace, its append failed with ENOSPC.
type SendRefused struct {
	NoSpace bool
}

func (Acknowledged) event() {}
func (Wrote) event()        {}
func (Confirmed) event()    {}
func (Truncated) event()    {}
func (RoleChanged) event()  {}
func (Retained) event()     {}
func (OffsetMoved) event()  {}
func (SendRefused) event()  {}

// observe reports e to Config.Observe, if set.
func (b *Broker) observe(e Event) {
	b.metrics.event(e)
	if b.cfg.Observe != nil {
		b.cfg.Observe(e)
	}
}

// epoch is the master epoch the broker knows (0 without a group).
func (b *Broker) epoch() int64 {
	if b.repl == nil {
		return 0
	}
	return b.repl.epoch
}
