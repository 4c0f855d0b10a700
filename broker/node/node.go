// Package node is the boundary between Sluice's deterministic node code (name server, broker,
// client core) and the runtimes that drive it: the production runtime (real sockets, timers,
// files) and the simulator (virtual time, simulated network and disk, one seeded PRNG).
//
// Node code is a state machine. It never starts goroutines, never reads the wall clock, never
// uses global randomness, never opens files or sockets and never lets map order leak into
// behaviour. Everything it needs arrives as a call on Handler; everything it wants done goes
// through Env. This package holds only interfaces, small value types, and Unsupported, the
// answer every node gives to a request it does not serve.
package node

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

// ConnID names one connection, inbound or outbound, for the lifetime of a node.
type ConnID uint64

// TimerID names one timer set through Env.SetTimer.
type TimerID uint64

// Env is everything a node may ask of the outside world. All methods return at once; results
// that take time come back as Handler events.
type Env interface {
	// Now is the node's current time: virtual in the simulator, the wall clock in production.
	Now() time.Time
	// SetTimer asks for OnTimer(id, tag) after d.
	SetTimer(d time.Duration, tag any) TimerID
	// CancelTimer cancels a timer; cancelling a fired or unknown timer is a no-op.
	CancelTimer(id TimerID)
	// Dial opens an outbound connection. Frames sent before it is established are queued;
	// if it cannot be established OnConnClosed is delivered.
	Dial(addr string) ConnID
	// Send queues cmd on c. Sending on a closed connection is dropped silently (the node
	// learns of the close through OnConnClosed).
	Send(c ConnID, cmd *codec.Command)
	// Close closes c; OnConnClosed follows. Frames sent on c before may still reach the peer,
	// except on a c still being dialled: those are discarded. Either way, whether any may have
	// left is told by OnDialed (Handler.OnDialed).
	Close(c ConnID)
	// Disk is the node's storage.
	Disk() Disk
	// Sync asks for every entry of l up to index upTo to be made durable; OnSynced follows.
	// The runtime may cover several requests with one fsync (group commit). The node may
	// close l before the sync runs (a store closes idle logs): the sync then reports whether
	// the entries up to upTo are durable all the same.
	Sync(l Log, upTo uint64)
	// Rand is the node's seeded random source.
	Rand() *rand.Rand
	// Logger is the node's structured logger.
	Logger() *slog.Logger
}

// Handler is a node as its runtime sees it. The runtime calls these methods from one goroutine
// at a time, never concurrently.
type Handler interface {
	// Start is called once, before any other event.
	Start()
	// OnAccepted reports a new inbound connection.
	OnAccepted(c ConnID, remoteAddr string)
	// OnDialed reports that an outbound connection from Env.Dial is established; it precedes
	// every frame from the peer. A connection that closes without it delivered nothing sent on
	// it (the peer may have seen it open and close, empty): once anything sent may have left,
	// OnDialed is delivered, before OnConnClosed, even if the node has closed c meanwhile.
	OnDialed(c ConnID)
	// OnConnClosed reports that c closed (by either side, or a failed dial).
	OnConnClosed(c ConnID)
	// OnFrame delivers one decoded command received on c.
	OnFrame(c ConnID, cmd *codec.Command)
	// OnTimer delivers a timer set with Env.SetTimer.
	OnTimer(id TimerID, tag any)
	// OnSynced reports that the log named logName is durable up to index upTo, or that the sync failed.
	OnSynced(logName string, upTo uint64, err error)
}

// Stopper is implemented by a Handler that keeps in memory state it should persist when its
// process stops cleanly (a crash it must survive anyway; a clean stop should lose nothing).
// The production runtime calls OnStop once, on its loop, when Stop is requested; no event is
// delivered after it. It is not called after a handler panic.
type Stopper interface {
	OnStop()
}

// InvariantChecker is implemented by a Handler that can check its own state: CheckInvariants
// reports the first thing it finds that must always hold between events and does not. It must
// be read-only (no Env calls, no random draws, no state changes), so that calling it or not
// changes nothing in a run. The simulator calls it after every event it delivers and panics on
// an error; package nodetest calls it after the events it delivers and fails the test; the
// production runtime calls it on a sample of events and reports an error without stopping.
type InvariantChecker interface {
	CheckInvariants() error
}

// Disk is the storage a node sees: named append-only logs plus small metadata files that are
// replaced atomically. Names are slash-separated relative paths without "..".
type Disk interface {
	// OpenLog opens or creates a log, repairing a torn last entry.
	OpenLog(name string) (Log, error)
	// ListLogs lists existing logs whose names start with prefix, sorted.
	ListLogs(prefix string) ([]string, error)
	// RemoveLog deletes a log (which must not be open).
	RemoveLog(name string) error
	// ReadFile returns a metadata file's content, or an error wrapping ErrNotFound.
	ReadFile(name string) ([]byte, error)
	// WriteFile atomically and durably replaces a metadata file.
	WriteFile(name string, data []byte) error
}

// Log is an append-only sequence of entries with indexes FirstIndex..LastIndex (1-based;
// an empty log has LastIndex() == FirstIndex()-1). Every entry carries a checksum that is
// verified on every read: a corrupt entry is reported with ErrCorrupt and never returned.
//
// Appends are readable at once but durable only after a sync, which nodes request through
// Env.Sync; a crash loses any suffix of the unsynced entries. An implementation may hold
// appends in memory until the sync (the production disk does: the write and the fsync both
// happen on the runtime's disk worker), so a write error may surface from Sync rather than
// Append. Sync is called by runtimes only, possibly from another goroutine than the other
// methods.
type Log interface {
	Name() string
	// Append adds an entry and returns its index.
	Append(data []byte) (uint64, error)
	// Read returns entry index. The slice must not be modified.
	Read(index uint64) ([]byte, error)
	FirstIndex() uint64
	LastIndex() uint64
	// TruncateBack removes every entry after index (keeps ..index).
	TruncateBack(index uint64) error
	// TruncateFront removes every entry before index (keeps index..). Readers never see them
	// again, but an implementation may change its files only at the next Sync or Close (the
	// production disk does, to keep file work off the event loop): a crash before then may
	// bring them back.
	TruncateFront(index uint64) error
	// Sync makes every appended entry durable. Runtimes only.
	Sync() error
	// Close closes the log. Afterwards FirstIndex and LastIndex still report the bounds it
	// had, and Sync reports whether every entry appended before Close is durable (a runtime
	// may run a sync the node asked for after the node closed the log: Env.Sync).
	Close() error
}

var (
	// ErrNotFound: no such file or entry.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt: a stored entry failed its checksum.
	ErrCorrupt = errors.New("corrupt entry")
	// ErrNoSpace: the disk is full.
	ErrNoSpace = errors.New("no space left on device")
	// ErrNoFiles: the process (or the system) is out of file descriptors (EMFILE, ENFILE).
	// Like ErrNoSpace it passes: nodes refuse new writes for a while and try again.
	ErrNoFiles = errors.New("too many open files")
	// ErrIO: an I/O error.
	ErrIO = errors.New("i/o error")
	// ErrSyncLost is wrapped by a Log's Sync error when the log cannot be made durable again
	// in place: a failed fsync (the kernel may have dropped the pages it could not write, so a
	// later fsync that succeeds proves nothing) or a failed write that left the log's files in
	// an unknown state. Every later Sync fails too; the node must stop, and the restarted
	// process recovers from what its files hold. A Sync error without it may pass (a full disk
	// that gets space back).
	ErrSyncLost = errors.New("log cannot be synced again until the process restarts")
)

// SpaceReporter is implemented by a Disk that can tell how full the file system holding it is.
// Nodes use it for retention and the disk-full guard; a Disk without it is never judged full by
// its use (a write that fails with ErrNoSpace still is).
type SpaceReporter interface {
	// Space returns the bytes used and the capacity of the file system (or simulated device)
	// the disk lives on.
	Space() (used, capacity uint64, err error)
}

// DurableCloser is implemented by a Log whose Close, when it returns nil, has made every entry
// appended before it durable, as a Sync would (the production disk's writes its pending
// entries and fsyncs). A node may then count a closed log synced instead of reopening it for
// a sync. A Log without it promises nothing of Close.
type DurableCloser interface {
	ClosesDurably() bool
}

// SegmentedLog is implemented by a Log stored as segment files: SegmentStarts returns the first
// index of each segment, ascending (the last is the tail). Retention cuts at segment starts
// where it can, as RocketMQ deletes whole commit-log files.
type SegmentedLog interface {
	SegmentStarts() []uint64
}

// Rebaser is implemented by a Log that can be emptied and restarted at any index: after
// Rebase(index) the log holds nothing, FirstIndex() is index and the next append gets index,
// durably when it returns (a crash in the middle leaves the old entries, or an empty log at
// index, or an empty log at 1; never a mix). A replica uses it to restart its commit log at its
// master's first index, when retention on the master removed entries it never fetched.
type Rebaser interface {
	Rebase(index uint64) error
}
