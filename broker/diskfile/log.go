package diskfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tidwall/wal"

	"github.com/sluicemq/sluice/broker/logentry"
	"github.com/sluicemq/sluice/broker/node"
)

// crcBytes is the size of the checksum in front of every stored payload (package logentry
// owns the stored form, which the simulator's disk shares).
const crcBytes = logentry.CRCBytes

// DefaultMaxPendingBytes is the pending-batch limit used when Options.MaxPendingBytes is zero
// (see Log). At 100 MB/s of appends it absorbs an 80 ms write-plus-fsync stall of the disk
// worker before Append has to write itself. Larger limits were slower, not faster, when the
// disk cannot keep up: BenchmarkAppend/Sustained (1 KiB appends as fast as possible while
// another goroutine Syncs in a loop) on the 2-core build VM reached 230-310 MB/s with 4 or
// 8 MiB, 113 MB/s with 16 MiB and 43-50 MB/s with 64 MiB (the pending buffer then grows by
// copying on the event loop, and writes and fsyncs no longer overlap); the previous
// write-per-Append Log reached 90-120 MB/s there.
const DefaultMaxPendingBytes = 8 << 20

// maxWriteBytes bounds one WriteBatch; a larger pending batch is written with several.
const maxWriteBytes = 4 << 20

// Spare batch buffers larger than this are dropped after a flush rather than kept for reuse,
// so one burst does not pin its memory.
const maxSpareBytes = 8 << 20

// Log is one wal-backed log. Append, Read, FirstIndex, LastIndex, the truncations and Close
// belong to one goroutine (the node's event loop); Sync may run concurrently on another
// (the disk worker).
//
// Append does no I/O. It checksums the entry, adds it to an in-memory pending batch and
// returns its index; LastIndex counts pending entries, and Read serves them from memory.
// Sync takes the pending batch (swapping buffers under a short lock), writes it to the wal
// with one WriteBatch (one write system call, one more for each segment boundary the batch
// crosses), then fsyncs. So the event loop never writes or fsyncs: the disk worker writes a
// whole group commit at once. An entry stays readable throughout: from the pending batch,
// from the batch being written, then from the wal. If the pending batch grows past
// MaxPendingBytes (Options; DefaultMaxPendingBytes) because Syncs are not keeping up or not
// being requested, Append first writes it to the wal itself, without an fsync: back-pressure
// that bounds the memory held and makes the event loop wait for the disk's write bandwidth.
// The truncations and Close also write the pending batch before they act.
//
// Crash semantics: an entry is durable once a Sync that started after its Append has
// returned. An entry not yet written to the wal is lost by a crash of the process, as an
// entry written but not fsynced is lost by a crash of the machine; either way a crash loses
// a suffix of the entries appended since the last Sync, never anything synced, and opening
// the log repairs a torn tail (repair.go).
//
// Sync does not call wal.Log.Sync, which would hold the wal's lock (and so block Read) for
// the whole fsync. It fsyncs its own descriptor of the tail segment file instead. To know
// which file that is, Log mirrors the wal's segment layout: it lists the segment files once at
// open and then follows the wal's own rules (a segment is closed, fsynced and replaced by a new
// one when it reaches SegmentBytes, also in the middle of a batch; truncations rewrite or drop
// segments). The mirror is checked against the directory in the tests.
//
// A Read of an entry that is no longer in memory takes the wal's read lock, so it waits for
// a WriteBatch in progress on the disk worker (a write system call, and when the batch fills
// a segment the wal's fsync of that segment).
//
// After a failed write to the wal (in Sync or in Append's back-pressure flush) or a failed
// truncation the wal's in-memory state can no longer be trusted, so the log refuses further
// appends, reads, truncations and syncs with that error ("failed"); after a failed fsync it
// refuses further syncs (the kernel may have dropped the unwritten pages, so a later fsync
// could succeed without the data being on disk). Close and reopen the log to recover:
// opening re-reads the files and repairs a torn tail.
type Log struct {
	name         string
	dir          string
	w            *wal.Log
	disk         *Disk
	segmentBytes int64
	maxPending   int

	closed bool // event-loop state

	first, last atomic.Uint64 // last counts pending entries

	// syncMu serialises Syncs and is held for the whole of one (including the fsync). The
	// event loop takes it only to truncate (the wal then renames and removes segment files
	// that Sync could be opening) and to close.
	syncMu  sync.Mutex
	syncErr error // sticky; guarded by syncMu
	// closeErr is what Close left undone (nil: every entry appended before it is durable);
	// a Sync after Close returns it. Guarded by syncMu.
	closeErr error

	// writeMu serialises writes to the wal and guards the segment mirror. Sync holds it while
	// it writes (not while it fsyncs); Append takes it for a back-pressure flush, the
	// truncations and Close for their whole run. Lock order: syncMu, writeMu, mu.
	writeMu   sync.Mutex
	wbatch    wal.Batch
	spare     *batch   // a drained batch kept for reuse as the next pending one
	batchCap  int      // capacity for a new batch's data: the last one's, within limits
	segStarts []uint64 // first index of each segment file, ascending; the last is the tail
	tailBytes int64    // size of the tail segment file

	// mu guards the in-memory batches, the failure and the tail's identity; held briefly by
	// both goroutines.
	mu        sync.Mutex
	pending   *batch     // appended, not yet handed to the wal
	flushing  *batch     // being written to the wal; nil when no write is in progress
	failed    error      // sticky: a wal write or truncation failed
	tailStart uint64     // first index of the tail segment: its file name
	tailFile  *os.File   // opened by Sync on first use
	retired   []*os.File // former tail descriptors, closed by the next Sync (never in use then)
	dirDirty  bool       // segment files were created, renamed or removed since the last Sync
	syncOff   bool       // set by Close
	frontTo   uint64     // a TruncateFront not yet applied to the files (0: none)

	outOfSpace bool // the last write failed for lack of space (nospace.go); writeMu guards it
}

var _ node.Log = (*Log)(nil)

// batch is a run of consecutive entries held in memory, each stored as it goes to the wal:
// checksum then payload, back to back in data.
type batch struct {
	first uint64 // index of the first entry; meaningless while empty
	data  []byte
	ends  []int // ends[i] is the end in data of entry first+i
	// lent is set when Read returned a view into data: then data is never written again
	// (the batch is not reused), since node.Log lets the caller keep the slice.
	lent bool
}

func (b *batch) bytes() int { return len(b.data) }

// start returns the offset in data of entry first+i.
func (b *batch) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// get returns entry index's payload if the batch holds it.
func (b *batch) get(index uint64) ([]byte, bool) {
	if len(b.ends) == 0 || index < b.first || index-b.first >= uint64(len(b.ends)) {
		return nil, false
	}
	i := int(index - b.first)
	b.lent = true
	return b.data[b.start(i)+crcBytes : b.ends[i] : b.ends[i]], true
}

func openLog(d *Disk, name string) (*Log, error) {
	dir := d.logPath(name)
	_, statErr := os.Stat(dir)
	created := statErr != nil
	if err := repairTail(dir, name, d.logger); err != nil {
		return nil, err
	}
	w, err := wal.Open(dir, d.walOptions())
	if err != nil {
		return nil, walError(err, "open log %s", name)
	}
	l := &Log{
		name: name, dir: dir, w: w, disk: d,
		segmentBytes: int64(d.segmentBytes), maxPending: d.maxPending,
		pending: &batch{}, dirDirty: true,
	}
	fail := func(err error) (*Log, error) {
		w.Close()
		return nil, err
	}
	if created {
		// Make the new directory (and any new parents) durable.
		for p := dir; p != d.logsDir; p = filepath.Dir(p) {
			if err := syncDir(filepath.Dir(p)); err != nil {
				return fail(ioError(err, "open log %s: sync directory", name))
			}
		}
	}
	first, err := w.FirstIndex()
	if err != nil {
		return fail(walError(err, "open log %s", name))
	}
	last, err := w.LastIndex()
	if err != nil {
		return fail(walError(err, "open log %s", name))
	}
	l.first.Store(first)
	l.last.Store(last)
	if l.segStarts, err = listSegments(dir); err != nil {
		return fail(ioError(err, "open log %s: list segments", name))
	}
	if len(l.segStarts) == 0 || l.segStarts[0] != first {
		return fail(fmt.Errorf("open log %s: segment files %v do not start at first index %d: %w",
			name, l.segStarts, first, node.ErrCorrupt))
	}
	l.tailStart = l.segStarts[len(l.segStarts)-1]
	if l.tailBytes, err = fileSize(l.segmentPath(l.tailStart)); err != nil {
		return fail(ioError(err, "open log %s", name))
	}
	return l, nil
}

// Name returns the log's name.
func (l *Log) Name() string { return l.name }

// FirstIndex is the index of the first entry (LastIndex()+1 when the log is empty).
func (l *Log) FirstIndex() uint64 { return l.first.Load() }

// LastIndex is the index of the last entry (FirstIndex()-1 when the log is empty), counting
// entries not yet written to the wal.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// Append adds an entry and returns its index. data is copied. It does no I/O unless the
// pending batch is over MaxPendingBytes, when it first writes that batch to the wal (without
// an fsync) as back-pressure.
func (l *Log) Append(data []byte) (uint64, error) {
	if l.closed {
		return 0, fmt.Errorf("append to log %s: log is closed", l.name)
	}
	need := crcBytes + len(data)
	l.mu.Lock()
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return 0, fmt.Errorf("append to log %s: %w", l.name, err)
	}
	if p := l.pending; len(p.ends) > 0 && p.bytes()+need > l.maxPending {
		l.mu.Unlock()
		l.writeMu.Lock()
		err := l.flushLocked()
		l.writeMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("append to log %s: %w", l.name, err)
		}
		l.mu.Lock()
	}
	p := l.pending
	idx := l.last.Load() + 1
	if len(p.ends) == 0 {
		p.first = idx
	}
	p.data = logentry.Append(p.data, data)
	p.ends = append(p.ends, len(p.data))
	l.last.Store(idx)
	l.mu.Unlock()
	return idx, nil
}

// flushLocked writes the pending batch to the wal with one WriteBatch, without an fsync, and
// updates the segment mirror. writeMu must be held. The batch stays readable (as the
// flushing batch) until the write has finished; a failed write makes the log failed.
func (l *Log) flushLocked() error {
	next := l.spare
	l.spare = nil
	if next == nil {
		next = &batch{}
	}
	if next.data == nil && l.batchCap > 0 {
		next.data = make([]byte, 0, l.batchCap)
	}

	l.mu.Lock()
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		l.spare = next
		return err
	}
	b := l.pending
	if len(b.ends) == 0 {
		l.mu.Unlock()
		l.spare = next
		return nil
	}
	l.flushing, l.pending = b, next
	l.mu.Unlock()

	// One WriteBatch per maxWriteBytes, so the wal.Batch (which copies the entries) stays
	// small; a group commit is normally far smaller and goes out in one.
	for i := 0; i < len(b.ends); {
		j, start := i, b.start(i)
		for j < len(b.ends) && (j == i || b.ends[j]-start <= maxWriteBytes) {
			j++
		}
		if err := l.writeEntries(b, i, j); err != nil {
			return l.recoverNoSpaceLocked(b, err)
		}
		i = j
	}

	if l.outOfSpace {
		l.outOfSpace = false
		l.disk.logger.Info("diskfile: writes succeed again after a lack of space", "log", l.name)
	}
	l.mu.Lock()
	l.flushing = nil
	lent := b.lent
	l.mu.Unlock()
	// Keep the batch for reuse: its entry offsets, and its data unless a Read lent it out
	// (then the next batch gets a new buffer of the same size, the size it will likely need).
	// Buffers start empty and grow to what the log needs: a broker has many small logs.
	l.batchCap = min(cap(b.data), maxSpareBytes)
	b.ends = b.ends[:0]
	b.data = b.data[:0]
	if lent || cap(b.data) > maxSpareBytes {
		b.data = nil
	}
	b.lent = false
	l.spare = b
	return nil
}

// writeEntries writes entries i..j-1 of b to the wal with one WriteBatch and updates the
// segment mirror. writeMu must be held.
func (l *Log) writeEntries(b *batch, i, j int) error {
	first := b.first + uint64(i)
	l.wbatch.Clear()
	for k := i; k < j; k++ {
		l.wbatch.Write(b.first+uint64(k), b.data[b.start(k):b.ends[k]])
	}
	// wal.writeBatch starts a new segment before writing if the tail is over size (possible
	// after a reopen with a smaller segment size or a truncation), and after each entry that
	// brings the tail to the size (several times in one batch if it is large).
	cycleBefore := l.tailBytes > l.segmentBytes
	if err := l.w.WriteBatch(&l.wbatch); err != nil {
		return walError(err, "write log %s entries %d..%d", l.name, first, b.first+uint64(j)-1)
	}
	if testWriteFault != nil {
		if err := testWriteFault(l, first, b.first+uint64(j)-1); err != nil {
			return ioError(err, "write log %s entries %d..%d", l.name, first, b.first+uint64(j)-1)
		}
	}
	if l.disk.faults != nil {
		if err := l.disk.faults.afterWrite(l); err != nil {
			return ioError(err, "write log %s entries %d..%d", l.name, first, b.first+uint64(j)-1)
		}
	}
	if b.ends[j-1]-b.start(i) > maxWriteBytes {
		l.wbatch = wal.Batch{} // one large entry: do not pin its copy
	}
	if cycleBefore {
		l.newTail(first, 0)
	}
	for k := i; k < j; k++ {
		size := b.ends[k] - b.start(k)
		l.tailBytes += int64(uvarintLen(uint64(size)) + size)
		if l.tailBytes >= l.segmentBytes {
			l.newTail(b.first+uint64(k)+1, 0)
		}
	}
	return nil
}

// Read returns entry index. The slice must not be modified. An entry still in memory is
// returned from there; one read from the wal has its checksum verified first. A missing index
// returns an error wrapping node.ErrNotFound; a checksum mismatch one wrapping
// node.ErrCorrupt.
func (l *Log) Read(index uint64) ([]byte, error) {
	if l.closed {
		return nil, fmt.Errorf("read log %s index %d: log is closed", l.name, index)
	}
	if index < l.first.Load() || index > l.last.Load() {
		return nil, fmt.Errorf("read log %s index %d (have %d..%d): %w",
			l.name, index, l.first.Load(), l.last.Load(), node.ErrNotFound)
	}
	l.mu.Lock()
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return nil, fmt.Errorf("read log %s index %d: %w", l.name, index, err)
	}
	if b, ok := l.pending.get(index); ok {
		l.mu.Unlock()
		return b, nil
	}
	if l.flushing != nil {
		if b, ok := l.flushing.get(index); ok {
			l.mu.Unlock()
			return b, nil
		}
	}
	w := l.w // replaced by a write that ran out of space (nospace.go)
	l.mu.Unlock()
	// Not in memory, so written: batches are written in order, and one leaves memory only
	// once its WriteBatch has returned.
	b, err := w.Read(index)
	if err != nil {
		l.mu.Lock()
		now := l.w
		l.mu.Unlock()
		if now == w {
			return nil, walError(err, "read log %s index %d", l.name, index)
		}
		// The wal was reopened meanwhile (its old handle is closed): read from the new one.
		if b, err = now.Read(index); err != nil {
			return nil, walError(err, "read log %s index %d", l.name, index)
		}
	}
	payload, err := logentry.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("read log %s index %d: %w", l.name, index, err)
	}
	return payload, nil
}

// setFailed records a failure that leaves the wal untrustworthy, and returns it.
func (l *Log) setFailed(err error) error {
	l.mu.Lock()
	l.failed = err
	l.mu.Unlock()
	return err
}

// TruncateBack removes every entry after index (keeps ..index). index may be anything from
// FirstIndex()-1 (which empties the log; the next append gets FirstIndex()) up; at or above
// LastIndex() it is a no-op. Below FirstIndex()-1 it is an error: those entries are already
// gone, so the log cannot end at index. Pending entries are written to the wal first; the
// truncation waits for an fsync in progress.
func (l *Log) TruncateBack(index uint64) error {
	if err := l.usable(); err != nil {
		return fmt.Errorf("truncate back log %s to %d: %w", l.name, index, err)
	}
	first, last := l.first.Load(), l.last.Load()
	if index >= last {
		return nil
	}
	if index < first-1 {
		return fmt.Errorf("truncate back log %s to %d: below first index %d minus one", l.name, index, first)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.flushLocked(); err != nil {
		return fmt.Errorf("truncate back log %s to %d: %w", l.name, index, err)
	}
	if err := l.applyFrontLocked(); err != nil {
		return fmt.Errorf("truncate back log %s to %d: %w", l.name, index, err)
	}
	segIdx := 0 // emptying the log keeps the first segment file, empty
	if index >= first {
		segIdx = l.findSegment(index)
	}
	if err := l.w.TruncateBack(index); err != nil {
		return l.setFailed(walError(err, "truncate back log %s to %d", l.name, index))
	}
	l.last.Store(index)
	l.segStarts = l.segStarts[:segIdx+1]
	if err := l.replaceTailLocked(l.segStarts[segIdx]); err != nil {
		return l.setFailed(ioError(err, "truncate back log %s to %d", l.name, index))
	}
	return nil
}

// TruncateFront removes every entry before index (keeps index..). At or below FirstIndex() it
// is a no-op; LastIndex()+1 empties the log (FirstIndex() becomes index, the next append
// gets index). Above LastIndex()+1 it is an error: the log would have a gap.
//
// It is a memory operation, like Append: the entries are gone at once for readers, and the
// files (whole segments removed, the one the cut falls in rewritten) follow on the next Sync,
// on the runtime's disk worker, or at TruncateBack or Close. A crash before then brings the
// entries back, which a caller removing old data must tolerate (the store's retention does).
func (l *Log) TruncateFront(index uint64) error {
	if err := l.usable(); err != nil {
		return fmt.Errorf("truncate front log %s to %d: %w", l.name, index, err)
	}
	first, last := l.first.Load(), l.last.Load()
	if index <= first {
		return nil
	}
	if index > last+1 {
		return fmt.Errorf("truncate front log %s to %d: beyond last index %d plus one", l.name, index, last)
	}
	l.mu.Lock()
	l.frontTo = index
	l.mu.Unlock()
	l.first.Store(index)
	return nil
}

// applyFrontLocked applies to the files the front truncation TruncateFront recorded, if any.
// The pending entries must have been written (flushLocked); syncMu and writeMu must be held.
func (l *Log) applyFrontLocked() error {
	l.mu.Lock()
	index := l.frontTo
	l.frontTo = 0
	l.mu.Unlock()
	if index <= l.segStarts[0] {
		return nil
	}
	segIdx := l.findSegment(index)
	if err := l.w.TruncateFront(index); err != nil {
		return l.setFailed(walError(err, "truncate front log %s to %d", l.name, index))
	}
	tailChanged := segIdx == len(l.segStarts)-1
	l.segStarts = append(l.segStarts[:0], l.segStarts[segIdx:]...)
	l.segStarts[0] = index
	l.mu.Lock()
	l.dirDirty = true
	l.mu.Unlock()
	if tailChanged {
		// The wal rewrote the tail segment as a new file named after index.
		if err := l.replaceTailLocked(index); err != nil {
			return l.setFailed(ioError(err, "truncate front log %s to %d", l.name, index))
		}
	}
	return nil
}

// Sync writes the pending entries to the wal (one WriteBatch) and makes every entry appended
// before the call durable. It may run concurrently with the other methods, which wait for it
// only to take the pending batch, and (Read of an entry already written) while it writes.
// Once a sync has failed every later one returns the same error.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.syncErr != nil {
		return l.syncErr
	}
	l.mu.Lock()
	off := l.syncOff
	l.mu.Unlock()
	if off {
		// Close wrote and fsynced every entry (node.Env.Sync lets a node close a log whose
		// sync it asked for); it says whether it could.
		if l.closeErr != nil {
			return fmt.Errorf("sync log %s after its close: %w", l.name, l.closeErr)
		}
		return nil
	}
	l.writeMu.Lock()
	err := l.flushLocked()
	if err == nil {
		err = l.applyFrontLocked()
	}
	l.writeMu.Unlock()
	if err != nil {
		l.mu.Lock()
		recovered := l.failed == nil
		l.mu.Unlock()
		if recovered {
			// A write that ran out of space: the log kept the entries (nospace.go); a later
			// Sync writes them. Nothing was fsynced, so nothing is sticky.
			return fmt.Errorf("sync log %s: %w", l.name, err)
		}
		l.syncErr = fmt.Errorf("sync log %s: %w: %w", l.name, node.ErrSyncLost, err)
		return l.syncErr
	}

	l.mu.Lock()
	retired := l.retired
	l.retired = nil
	if l.tailFile == nil {
		f, err := os.OpenFile(l.segmentPath(l.tailStart), os.O_RDWR, 0)
		if err != nil {
			l.mu.Unlock()
			if e := ioError(err, "sync log %s", l.name); errors.Is(e, node.ErrNoFiles) {
				return e // nothing was fsynced: a later Sync tries again
			}
			l.syncErr = lostError(err, "sync log %s", l.name)
			return l.syncErr
		}
		l.tailFile = f
	}
	f, dirDirty := l.tailFile, l.dirDirty
	l.dirDirty = false
	l.mu.Unlock()

	for _, r := range retired {
		r.Close() // the wal fsynced these segments when it started the next one
	}
	if err := fsync(l, f); err != nil {
		l.syncErr = lostError(err, "sync log %s", l.name)
		return l.syncErr
	}
	if dirDirty {
		if err := syncDir(l.dir); err != nil {
			if e := ioError(err, "sync log %s: sync directory", l.name); errors.Is(e, node.ErrNoFiles) {
				// The directory could not be opened, so not fsynced: a later Sync tries again.
				l.mu.Lock()
				l.dirDirty = true
				l.mu.Unlock()
				return e
			}
			l.syncErr = lostError(err, "sync log %s: sync directory", l.name)
			return l.syncErr
		}
	}
	return nil
}

// Close writes the pending entries to the wal and closes the log; it may then be opened
// again. The wal fsyncs the tail on close, so every entry is then durable, and a Sync after
// Close returns nil (or what Close could not do). On a failed log the pending entries are
// dropped.
func (l *Log) Close() (err error) {
	if l.closed {
		return fmt.Errorf("close log %s: already closed", l.name)
	}
	l.closed = true
	defer l.disk.release(l.name)
	var errs []error
	l.syncMu.Lock()
	defer func() {
		l.closeErr = err
		l.mu.Lock()
		if l.failed != nil && err == nil {
			l.closeErr = fmt.Errorf("close log %s: pending entries dropped: the log had failed: %w", l.name, l.failed)
		}
		l.mu.Unlock()
		if l.syncErr != nil && l.closeErr == nil {
			l.closeErr = l.syncErr
		}
		l.syncMu.Unlock()
	}()
	l.writeMu.Lock()
	l.mu.Lock()
	failed := l.failed != nil
	l.mu.Unlock()
	if !failed {
		if err := l.flushLocked(); err != nil {
			errs = append(errs, err)
		} else if err := l.applyFrontLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	l.spare = nil
	l.mu.Lock()
	l.syncOff = true
	l.pending = &batch{} // release the memory
	for _, f := range append(l.retired, l.tailFile) {
		if f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	l.tailFile, l.retired = nil, nil
	dirDirty := l.dirDirty
	l.mu.Unlock()
	l.writeMu.Unlock()
	if err := l.w.Close(); err != nil && !errors.Is(err, wal.ErrCorrupt) {
		errs = append(errs, err)
	}
	if dirDirty {
		if err := syncDir(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ioError(err, "close log %s", l.name)
	}
	return nil
}

var _ node.DurableCloser = (*Log)(nil)

// ClosesDurably reports that a Close returning nil has written and fsynced every entry.
func (l *Log) ClosesDurably() bool { return true }

// usable reports why the log cannot be used, if it cannot.
func (l *Log) usable() error {
	if l.closed {
		return errors.New("log is closed")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// newTail records that the wal started a new, empty tail segment at index start. writeMu
// must be held.
func (l *Log) newTail(start uint64, size int64) {
	l.segStarts = append(l.segStarts, start)
	l.tailBytes = size
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tailStart = start
	l.dirDirty = true
	if l.tailFile != nil {
		// A Sync may be fsyncing it right now; the next Sync closes it.
		l.retired = append(l.retired, l.tailFile)
		l.tailFile = nil
	}
}

// replaceTailLocked records that the tail segment file was rewritten (as the file named after
// start). syncMu must be held, so no Sync is using a descriptor, and writeMu.
func (l *Log) replaceTailLocked(start uint64) error {
	l.mu.Lock()
	l.tailStart = start
	l.dirDirty = true
	for _, f := range append(l.retired, l.tailFile) {
		if f != nil {
			f.Close()
		}
	}
	l.tailFile, l.retired = nil, nil
	l.mu.Unlock()
	size, err := fileSize(l.segmentPath(start))
	if err != nil {
		return err
	}
	l.tailBytes = size
	return nil
}

// findSegment returns the position in segStarts of the segment holding index, as the wal's
// own findSegment does.
func (l *Log) findSegment(index uint64) int {
	return sort.Search(len(l.segStarts), func(i int) bool { return l.segStarts[i] > index }) - 1
}

func (l *Log) segmentPath(start uint64) string {
	return filepath.Join(l.dir, segmentName(start))
}

// walError wraps an error from the wal: its ErrNotFound and ErrCorrupt become node's, the
// rest are I/O errors.
func walError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, wal.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", msg, node.ErrNotFound, err)
	case errors.Is(err, wal.ErrCorrupt):
		return fmt.Errorf("%s: %w: %w", msg, node.ErrCorrupt, err)
	}
	return ioError(err, "%s", msg)
}

// segmentName is the wal's file name for the segment starting at index.
func segmentName(index uint64) string {
	return fmt.Sprintf("%020d", index)
}

// parseSegmentName parses a plain wal segment file name (20 decimal digits, not zero).
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(name, 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

// listSegments returns the start indexes of the plain segment files in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var starts []uint64
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if v, ok := parseSegmentName(e.Name()); ok {
			starts = append(starts, v)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	return starts, nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
