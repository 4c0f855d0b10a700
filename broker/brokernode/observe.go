package brokernode

// Event is what a broker reports to Config.Observe: one of Acknowledged, Wrote, Confirmed,
// Truncated and RoleChanged. Epoch is the master epoch the broker knew at the time (0 for a
// broker without a group).
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

func (Acknowledged) event() {}
func (Wrote) event()        {}
func (Confirmed) event()    {}
func (Truncated) event()    {}
func (RoleChanged) event()  {}

// observe reports e to Config.Observe, if set.
func (b *Broker) observe(e Event) {
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
