// Package bugs names the bugs the simulator can plant in the node code: one-line mistakes,
// each standing for a class of bug the simulator's checks must catch (sim/cluster's catalogue
// says which check catches which). A node reads the planted set from its configuration; in
// production the set is empty, and nothing outside tests may fill it.
package bugs

import "strings"

// Bug is one plantable mistake.
type Bug uint8

// The plantable bugs. Each comment says what the node does wrong when the bug is planted.
const (
	_ Bug = iota
	// AckBeforeSync: in sync-flush mode a broker acknowledges sends before the fsync that
	// covers them.
	AckBeforeSync
	// QueryUnflushedOffsets: a broker answers offset queries from memory without persisting
	// first, so a crash can move a read offset back.
	QueryUnflushedOffsets
	// DropFailedOffsetWrites: a consumer-offset or delay-progress write that fails with EIO or
	// ENOSPC is dropped, never retried, and the offsets answered as if durable.
	DropFailedOffsetWrites
	// AsyncFlushOnce: in async-flush mode the flush timer is not re-armed when it fires, so
	// the commit log is synced once after each start and then never again.
	AsyncFlushOnce
	// SQLAbsentAsEmpty: a SQL92 filter reads a property the message lacks as an empty string
	// instead of NULL.
	SQLAbsentAsEmpty
	// SkipTruncation: a returning replica keeps the part of its log that differs from the
	// master's and appends after it.
	SkipTruncation
	// StaleMasterAcks: a master whose mastership lapsed goes on accepting writes and
	// acknowledges them on its own fsync, without the in-sync set.
	StaleMasterAcks
	// SlaveAckBeforeFsync: a slave reports replicated entries synced as soon as it has
	// appended them, before its fsync.
	SlaveAckBeforeFsync
	// DeposedMasterPulls: a master whose mastership lapsed goes on answering pulls from its
	// own log.
	DeposedMasterPulls
	// LeaseFreeMaster: a master whose mastership lapsed goes on accepting writes and
	// acknowledging them, still only once the in-sync set holds them.
	LeaseFreeMaster
	// SlaveSyncedOnFsyncError: a slave whose commit-log fsync failed counts the entries
	// synced anyway and reports them synced to its master.
	SlaveSyncedOnFsyncError
	// OffsetSyncLowers: a slave's metadata round clamps the master's offsets to its own queue
	// ends even below an offset it already holds that the master has passed.
	OffsetSyncLowers
	// ElectOutsideInSyncSet: the controller elects a replica outside the in-sync set.
	ElectOutsideInSyncSet
	// NeverExpireBrokers: the name server's expiry scan measures silence backwards and never
	// drops a silent broker.
	NeverExpireBrokers
	// SkipChecksum: the disk's read path skips the entry checksum, so a flipped bit is served.
	SkipChecksum
	// RetainUnexpired: retention's expiry deadline is FileReservedTime after now instead of
	// before it, so every segment retention may touch counts as expired.
	RetainUnexpired
	// DelayLevelOffByOne: the delay schedule reads each level's delay one entry down the
	// table (level n waits level n-1's delay; level 1 its own), so messages of the higher
	// levels are delivered before they are due.
	DelayLevelOffByOne
	// RollbackAsCommit: END_TRANSACTION reads its commit-or-rollback field as a bit set, and
	// rollback (12) has the commit bit (8) set: a rolled-back transaction is committed.
	RollbackAsCommit
	// LockRenewalKeepsLease: renewing a queue lock does not move its lease, so the lease runs
	// from the first grant and another client of the group is granted the queue while its
	// holder still renews it.
	LockRenewalKeepsLease

	numBugs
)

var names = [numBugs]string{
	AckBeforeSync:           "AckBeforeSync",
	QueryUnflushedOffsets:   "QueryUnflushedOffsets",
	DropFailedOffsetWrites:  "DropFailedOffsetWrites",
	AsyncFlushOnce:          "AsyncFlushOnce",
	SQLAbsentAsEmpty:        "SQLAbsentAsEmpty",
	SkipTruncation:          "SkipTruncation",
	StaleMasterAcks:         "StaleMasterAcks",
	SlaveAckBeforeFsync:     "SlaveAckBeforeFsync",
	DeposedMasterPulls:      "DeposedMasterPulls",
	LeaseFreeMaster:         "LeaseFreeMaster",
	SlaveSyncedOnFsyncError: "SlaveSyncedOnFsyncError",
	OffsetSyncLowers:        "OffsetSyncLowers",
	ElectOutsideInSyncSet:   "ElectOutsideInSyncSet",
	NeverExpireBrokers:      "NeverExpireBrokers",
	SkipChecksum:            "SkipChecksum",
	RetainUnexpired:         "RetainUnexpired",
	DelayLevelOffByOne:      "DelayLevelOffByOne",
	RollbackAsCommit:        "RollbackAsCommit",
	LockRenewalKeepsLease:   "LockRenewalKeepsLease",
}

func (b Bug) String() string {
	if b == 0 || b >= numBugs {
		return "Bug(invalid)"
	}
	return names[b]
}

// Set is a set of planted bugs; the zero Set plants nothing.
type Set struct{ bits uint64 }

// Of returns the set holding bs.
func Of(bs ...Bug) Set {
	var s Set
	for _, b := range bs {
		s = s.With(b)
	}
	return s
}

// With returns s with b added.
func (s Set) With(b Bug) Set {
	if b == 0 || b >= numBugs {
		panic("bugs: invalid Bug")
	}
	s.bits |= 1 << b
	return s
}

// Has reports whether b is planted.
func (s Set) Has(b Bug) bool { return s.bits&(1<<b) != 0 }

// Empty reports whether nothing is planted.
func (s Set) Empty() bool { return s.bits == 0 }

// String lists the planted bugs in declaration order, "none" for the empty set.
func (s Set) String() string {
	var out []string
	for b := Bug(1); b < numBugs; b++ {
		if s.Has(b) {
			out = append(out, b.String())
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "+")
}
