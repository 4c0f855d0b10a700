// Package simdisk is the simulator's in-memory node.Disk. It owns the simulated storage of one
// node: named append-only logs with per-entry durability tracking, and atomically replaced
// metadata files. It reproduces the production disk's semantics (1-based indexes, torn-tail
// repair on open, checksum failures reported as node.ErrCorrupt) and adds the faults the
// simulator injects: power loss that drops all, none or a prefix of each log's unsynced suffix
// (optionally tearing the last surviving entry), and bit flips in stored entries.
//
// It is simulator code used by node code, so it follows the node rule: it never starts
// goroutines, never reads the clock, never touches real files, and every random choice comes
// from the *rand.Rand its caller passes in, consumed in sorted log-name order.
//
// Entries are stored in the production disk's form (package logentry: CRC32C then payload)
// and every read goes through logentry's Decode, the production check: a flipped bit is
// caught by the same code that catches it on real files.
package simdisk

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/logentry"
	"github.com/sluicemq/sluice/broker/node"
)

// ErrClosed is returned by a Log handle that was closed or invalidated by a crash.
var ErrClosed = errors.New("simdisk: log handle closed")

// Stats counts what the disk did, for run reports.
type Stats struct {
	Crashes         int    // calls to Crash
	UnsyncedAtCrash uint64 // unsynced entries present when the crashes happened
	EntriesLost     uint64 // unsynced entries dropped by crashes (torn entries included)
	TornEntries     uint64 // entries torn by crashes (then dropped by the next open)
	Flips           uint64 // bit flips injected by FlipByte
	TornRepaired    uint64 // torn last entries dropped by OpenLog's tail repair
}

// Disk is an in-memory node.Disk. All methods are safe for concurrent use, though the simulator
// drives it from one goroutine.
type Disk struct {
	mu    sync.Mutex
	logs  map[string]*logData
	files map[string][]byte
	stats Stats
	// writeErr and syncErr, when set, fail every write (Append, WriteFile, truncations) or
	// every sync (Log.Sync, Log.SyncTo, SyncLog) until cleared.
	writeErr, syncErr error
	// decoder checks every entry read (see SetBugs).
	decoder logentry.Decoder
	// capacity is what Space reports as the device's size (space.go).
	capacity uint64
	// segmentBytes, when set, is the size of the segments logs report (space.go).
	segmentBytes uint64
}

type entry struct {
	// data is the stored form (logentry.Append): checksum, then payload.
	data []byte
	// torn marks an entry a crash cut short (or tore whole); it fails its check however much
	// of it survived.
	torn bool
}

type logData struct {
	name  string
	first uint64 // index of entries[0]
	// base is the bytes of every entry ever removed from the front: entries[0]'s position in
	// the log's byte stream, which places segment boundaries (space.go).
	base    uint64
	entries []entry
	// durable is the highest index that survives a crash; entries above it are unsynced.
	// Always first-1 <= durable <= last.
	durable uint64
	// handle is the open handle, nil when closed.
	handle *Log
}

func (l *logData) last() uint64 { return l.first + uint64(len(l.entries)) - 1 }

// New returns an empty disk.
func New() *Disk {
	return &Disk{logs: map[string]*logData{}, files: map[string][]byte{}}
}

var _ node.Disk = (*Disk)(nil)
var _ node.Log = (*Log)(nil)

func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return fmt.Errorf("simdisk: bad name %q", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("simdisk: bad name %q", name)
		}
	}
	return nil
}

// OpenLog opens or creates a log. A last entry a crash tore is dropped, as the production disk
// cuts an entry cut short; one that fails its checksum only because a bit flipped is kept and
// reported corrupt, as the production disk keeps every whole entry (broker/diskfile's
// repairTail). A log can have one open handle at a time.
func (d *Disk) OpenLog(name string) (node.Log, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ld, ok := d.logs[name]
	if !ok {
		ld = &logData{name: name, first: 1}
		d.logs[name] = ld
	}
	if ld.handle != nil {
		return nil, fmt.Errorf("simdisk: log %q is already open", name)
	}
	if n := len(ld.entries); n > 0 && ld.entries[n-1].torn {
		ld.entries = ld.entries[:n-1]
		ld.durable = min(ld.durable, ld.last())
		d.stats.TornRepaired++
	}
	ld.handle = &Log{d: d, ld: ld, crashes: d.stats.Crashes}
	return ld.handle, nil
}

// ListLogs lists existing logs whose names start with prefix, sorted.
func (d *Disk) ListLogs(prefix string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for name := range d.logs {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// RemoveLog deletes a log, durably at once. The log must not be open.
func (d *Disk) RemoveLog(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ld, ok := d.logs[name]
	if !ok {
		return fmt.Errorf("simdisk: remove log %q: %w", name, node.ErrNotFound)
	}
	if ld.handle != nil {
		return fmt.Errorf("simdisk: remove log %q: log is open", name)
	}
	delete(d.logs, name)
	return nil
}

// ReadFile returns a copy of a metadata file, or an error wrapping node.ErrNotFound.
func (d *Disk) ReadFile(name string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.files[name]
	if !ok {
		return nil, fmt.Errorf("simdisk: read file %q: %w", name, node.ErrNotFound)
	}
	return append([]byte(nil), b...), nil
}

// WriteFile replaces a metadata file atomically and durably (a crash never loses it).
func (d *Disk) WriteFile(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writeErr != nil {
		return fmt.Errorf("simdisk: write file %q: %w", name, d.writeErr)
	}
	d.files[name] = append([]byte{}, data...)
	return nil
}

// SyncLog marks the entries of log name up to index upTo durable (clamped to its last index).
// The simulator calls it when a simulated fsync completes. It does not check handles: a
// simulator must discard fsync completions still pending when the disk crashes (or use
// Log.SyncTo on the handle, which fails once the handle is stale).
func (d *Disk) SyncLog(name string, upTo uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ld, ok := d.logs[name]
	if !ok {
		return fmt.Errorf("simdisk: sync log %q: %w", name, node.ErrNotFound)
	}
	if d.syncErr != nil {
		return fmt.Errorf("simdisk: sync log %q: %w", name, d.syncErr)
	}
	ld.syncTo(upTo)
	return nil
}

func (l *logData) syncTo(upTo uint64) {
	if upTo > l.last() {
		upTo = l.last()
	}
	if upTo > l.durable {
		l.durable = upTo
	}
}

// Durable reports the highest durable index of log name (FirstIndex-1 when nothing is
// durable) and whether the log exists.
func (d *Disk) Durable(name string) (uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ld, ok := d.logs[name]
	if !ok {
		return 0, false
	}
	return ld.durable, true
}

// Span reports the first and last index of log name (last = first-1 when empty) and whether
// the log exists, whether or not it is open: fault injection uses it to pick an entry to flip.
func (d *Disk) Span(name string) (first, last uint64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ld, ok := d.logs[name]
	if !ok {
		return 0, 0, false
	}
	return ld.first, ld.last(), true
}

// Crash simulates power loss. Every open handle becomes invalid. For each log, in sorted name
// order, r chooses whether its unsynced suffix is lost entirely, kept entirely, or kept up to
// a random prefix; when at least one unsynced entry survives, r may tear the last survivor
// (it then fails its checksum and the next OpenLog drops it). What survives is on the medium
// and so durable afterwards. Metadata files, removals and truncations are already durable.
func (d *Disk) Crash(r *rand.Rand) {
	d.crash(func(_ string, unsynced uint64) (uint64, bool) {
		var keep uint64
		switch r.IntN(3) {
		case 0: // lose everything unsynced
		case 1:
			keep = unsynced
		default:
			keep = r.Uint64N(unsynced + 1)
		}
		return keep, keep > 0 && r.IntN(4) == 0
	}, func(n int) int { return r.IntN(n + 1) })
}

// crash is Crash and CrashWith: choose picks, per log with unsynced entries in sorted name
// order, how many survive and whether the last survivor is torn; tornLen picks how much of a
// torn entry of n bytes remains.
func (d *Disk) crash(choose func(name string, unsynced uint64) (keep uint64, tear bool), tornLen func(n int) int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Crashes++
	names := make([]string, 0, len(d.logs))
	for name := range d.logs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ld := d.logs[name]
		if ld.handle != nil {
			ld.handle.ld = nil
			ld.handle = nil
		}
		unsynced := ld.last() - ld.durable
		if unsynced == 0 {
			continue
		}
		d.stats.UnsyncedAtCrash += unsynced
		keep, tear := choose(name, unsynced)
		keep = min(keep, unsynced)
		newLast := ld.durable + keep
		d.stats.EntriesLost += unsynced - keep
		ld.entries = ld.entries[:newLast+1-ld.first]
		if keep > 0 && tear {
			torn := &ld.entries[len(ld.entries)-1]
			torn.data = append([]byte(nil), torn.data[:tornLen(len(torn.data))]...)
			torn.torn = true
			d.stats.TornEntries++
			d.stats.EntriesLost++
		}
		ld.durable = ld.last()
	}
}

// FlipByte flips a bit in entry index of log name. Later reads of that entry fail with an
// error wrapping node.ErrCorrupt, also after the log is reopened: the tail repair keeps a
// flipped last entry (the production disk, too, keeps every whole entry).
func (d *Disk) FlipByte(name string, index uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ld, ok := d.logs[name]
	if !ok {
		return fmt.Errorf("simdisk: flip %q: %w", name, node.ErrNotFound)
	}
	if index < ld.first || index > ld.last() {
		return fmt.Errorf("simdisk: flip %q index %d outside %d..%d: %w", name, index, ld.first, ld.last(), node.ErrNotFound)
	}
	e := &ld.entries[index-ld.first]
	data := append([]byte(nil), e.data...)
	data[len(data)/2] ^= 0x10 // never empty: the checksum alone takes 4 bytes
	e.data = data
	d.stats.Flips++
	return nil
}

// Peek returns the payload of entry index of log name, checked as Read checks it, whether or
// not the log is open: fault injection uses it to tell what a flip is about to destroy.
func (d *Disk) Peek(name string, index uint64) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ld, ok := d.logs[name]
	if !ok {
		return nil, fmt.Errorf("simdisk: peek %q: %w", name, node.ErrNotFound)
	}
	if index < ld.first || index > ld.last() {
		return nil, fmt.Errorf("simdisk: peek %q index %d outside %d..%d: %w", name, index, ld.first, ld.last(), node.ErrNotFound)
	}
	return d.decode(ld, index)
}

// decode checks and returns the payload of entry index of ld (in range).
func (d *Disk) decode(ld *logData, index uint64) ([]byte, error) {
	e := ld.entries[index-ld.first]
	if e.torn {
		return nil, fmt.Errorf("simdisk: read %q index %d: torn entry: %w", ld.name, index, node.ErrCorrupt)
	}
	payload, err := d.decoder.Decode(e.data)
	if err != nil {
		return nil, fmt.Errorf("simdisk: read %q index %d: %w", ld.name, index, err)
	}
	return payload, nil
}

// SetBugs plants bugs in the disk's read path (package bugs): with SkipChecksum every later
// read returns a stored payload without verifying its checksum. Tests only.
func (d *Disk) SetBugs(s bugs.Set) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.decoder.Bugs = s
}

// SetWriteError makes every later Append, TruncateBack, TruncateFront and WriteFile fail with
// err (wrap node.ErrIO or node.ErrNoSpace) without changing anything; nil clears the fault.
func (d *Disk) SetWriteError(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writeErr = err
}

// SetSyncError makes every later Log.Sync, Log.SyncTo and SyncLog fail with err without making
// anything durable; nil clears the fault.
func (d *Disk) SetSyncError(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncErr = err
}

// Stats returns the disk's counters.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Log is an open handle on a simulated log.
type Log struct {
	d  *Disk
	ld *logData // nil once closed or invalidated by a crash
	// closed is the log a clean Close released, with its last index then, and crashes the
	// disk's crash count at open: a Sync after Close makes the entries up to closedLast
	// durable, as the production disk's Close does (node.Env.Sync allows a log to be closed
	// before its sync runs), unless a crash came between.
	closed                  *logData
	closedFirst, closedLast uint64
	crashes                 int
}

func (l *Log) data() (*logData, error) {
	if l.ld == nil {
		return nil, ErrClosed
	}
	return l.ld, nil
}

// writable is data() for operations that change the log.
func (l *Log) writable(op string) (*logData, error) {
	ld, err := l.data()
	if err != nil {
		return nil, err
	}
	if l.d.writeErr != nil {
		return nil, fmt.Errorf("simdisk: %s %q: %w", op, ld.name, l.d.writeErr)
	}
	return ld, nil
}

// syncable is data() for sync operations.
func (l *Log) syncable() (*logData, error) {
	ld, err := l.data()
	if err != nil {
		return nil, err
	}
	if l.d.syncErr != nil {
		return nil, fmt.Errorf("simdisk: sync %q: %w", ld.name, l.d.syncErr)
	}
	return ld, nil
}

// Name returns the log's name.
func (l *Log) Name() string {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.ld == nil {
		if l.closed != nil {
			return l.closed.name // runtimes name a log whose sync was asked for before its close
		}
		return ""
	}
	return l.ld.name
}

// Append adds an entry (copied) and returns its index. It is not durable until synced.
func (l *Log) Append(data []byte) (uint64, error) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	ld, err := l.writable("append")
	if err != nil {
		return 0, err
	}
	ld.entries = append(ld.entries, entry{data: logentry.Append(make([]byte, 0, logentry.CRCBytes+len(data)), data)})
	return ld.last(), nil
}

// Read returns entry index; an entry that fails its checksum yields an error wrapping
// node.ErrCorrupt, an index outside the log one wrapping node.ErrNotFound.
func (l *Log) Read(index uint64) ([]byte, error) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	ld, err := l.data()
	if err != nil {
		return nil, err
	}
	if index < ld.first || index > ld.last() {
		return nil, fmt.Errorf("simdisk: read %q index %d outside %d..%d: %w", ld.name, index, ld.first, ld.last(), node.ErrNotFound)
	}
	return l.d.decode(ld, index)
}

// FirstIndex returns the first index (on a handle closed by Close, the first index then; 0
// on a handle a crash invalidated).
func (l *Log) FirstIndex() uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.ld == nil {
		return l.closedFirst
	}
	return l.ld.first
}

// LastIndex returns the last index, FirstIndex()-1 when empty (on a handle closed by Close,
// the last index then; 0 on a handle a crash invalidated).
func (l *Log) LastIndex() uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.ld == nil {
		return l.closedLast
	}
	return l.ld.last()
}

// TruncateBack keeps entries ..index, durably at once. index >= LastIndex() is a no-op (as in
// the production disk); index below FirstIndex()-1 is an error.
func (l *Log) TruncateBack(index uint64) error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	ld, err := l.writable("truncate back")
	if err != nil {
		return err
	}
	if index >= ld.last() {
		return nil
	}
	if index+1 < ld.first {
		return fmt.Errorf("simdisk: truncate back %q to %d: below first index %d minus one", ld.name, index, ld.first)
	}
	clear(ld.entries[index+1-ld.first:])
	ld.entries = ld.entries[:index+1-ld.first]
	ld.durable = min(ld.durable, index)
	return nil
}

// TruncateFront keeps entries index.., durably at once. index <= FirstIndex() is a no-op (as in
// the production disk); LastIndex()+1 empties the log and keeps its position; beyond is an error.
func (l *Log) TruncateFront(index uint64) error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	ld, err := l.writable("truncate front")
	if err != nil {
		return err
	}
	if index <= ld.first {
		return nil
	}
	if index > ld.last()+1 {
		return fmt.Errorf("simdisk: truncate front %q to %d: beyond last index %d plus one", ld.name, index, ld.last())
	}
	drop := index - ld.first
	for _, e := range ld.entries[:drop] {
		ld.base += uint64(len(e.data))
	}
	ld.entries = append([]entry(nil), ld.entries[drop:]...)
	ld.first = index
	ld.durable = max(ld.durable, index-1)
	return nil
}

// Rebase empties the log and restarts it at index (node.Rebaser), durably at once.
func (l *Log) Rebase(index uint64) error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	ld, err := l.writable("rebase")
	if err != nil {
		return err
	}
	if index == 0 {
		return fmt.Errorf("simdisk: rebase %q to index 0", ld.name)
	}
	clear(ld.entries)
	ld.entries = ld.entries[:0]
	ld.first = index
	ld.durable = index - 1
	return nil
}

// Sync makes every entry appended so far durable. On a handle closed by Close (not by a crash)
// it makes durable what the log held at the close.
func (l *Log) Sync() error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.ld == nil && l.closed != nil && l.crashes == l.d.stats.Crashes && l.d.logs[l.closed.name] == l.closed {
		if l.d.syncErr != nil {
			return fmt.Errorf("simdisk: sync %q: %w", l.closed.name, l.d.syncErr)
		}
		l.closed.syncTo(l.closedLast)
		return nil
	}
	ld, err := l.syncable()
	if err != nil {
		return err
	}
	ld.durable = ld.last()
	return nil
}

// SyncTo makes entries up to upTo durable (clamped to LastIndex). Unlike Disk.SyncLog it fails
// on a handle a crash invalidated, so a simulated fsync that completes after a crash is harmless.
func (l *Log) SyncTo(upTo uint64) error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	ld, err := l.syncable()
	if err != nil {
		return err
	}
	ld.syncTo(upTo)
	return nil
}

// Close releases the handle; further use returns ErrClosed.
func (l *Log) Close() error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	ld, err := l.data()
	if err != nil {
		return err
	}
	ld.handle = nil
	l.ld = nil
	l.closed, l.closedFirst, l.closedLast = ld, ld.first, ld.last()
	return nil
}
