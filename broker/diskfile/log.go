package diskfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tidwall/wal"

	"github.com/sluicemq/sluice/broker/node"
)

// crcBytes is the size of the checksum in front of every stored payload.
const crcBytes = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Log is one wal-backed log. Append, Read, FirstIndex, LastIndex, the truncations and Close
// belong to one goroutine (the node's event loop); Sync may run concurrently on another
// (the disk worker).
//
// Sync does not call wal.Log.Sync, which would hold the wal's lock (and so block Append)
// for the whole fsync. It fsyncs its own descriptor of the tail segment file instead. To know
// which file that is, Log mirrors the wal's segment layout: it lists the segment files once at
// open and then follows the wal's own rules (a segment is closed, fsynced and replaced by a new
// one when it reaches SegmentBytes; truncations rewrite or drop segments). The mirror is
// checked against the directory in the tests.
//
// After a failed Append or truncation the wal's in-memory state can no longer be trusted, so
// the log refuses further appends, reads and truncations with that error ("broken"); after a
// failed Sync it refuses further syncs (the kernel may have dropped the unwritten pages, so a
// later fsync could succeed without the data being on disk). Close and reopen the log to
// recover: opening re-reads the files and repairs a torn tail.
type Log struct {
	name         string
	dir          string
	w            *wal.Log
	disk         *Disk
	segmentBytes int64

	// Event-loop state.
	scratch   []byte
	segStarts []uint64 // first index of each segment file, ascending; the last is the tail
	tailBytes int64    // size of the tail segment file
	broken    error
	closed    bool

	first, last atomic.Uint64

	// syncMu serialises Syncs and is held for the whole of one (including the fsync). The
	// event loop takes it only to truncate (the wal then renames and removes segment files
	// that Sync could be opening) and to close; starting a new segment does not wait for an
	// fsync in flight.
	syncMu  sync.Mutex
	syncErr error // sticky; guarded by syncMu

	// mu guards the tail's identity; held briefly by both goroutines.
	mu        sync.Mutex
	tailStart uint64     // first index of the tail segment: its file name
	tailFile  *os.File   // opened by Sync on first use
	retired   []*os.File // former tail descriptors, closed by the next Sync (never in use then)
	dirDirty  bool       // segment files were created, renamed or removed since the last Sync
	syncOff   bool       // set by Close
}

var _ node.Log = (*Log)(nil)

func openLog(d *Disk, name string) (*Log, error) {
	dir := d.logPath(name)
	_, statErr := os.Stat(dir)
	created := statErr != nil
	if err := repairTail(dir, name, d.logger); err != nil {
		return nil, err
	}
	w, err := wal.Open(dir, &wal.Options{
		NoSync:           true,
		SegmentSize:      d.segmentBytes,
		LogFormat:        wal.Binary,
		SegmentCacheSize: 2,
		NoCopy:           true, // Read returns a view; node.Log says it must not be modified
		AllowEmpty:       true,
		DirPerms:         0o750,
		FilePerms:        0o640,
	})
	if err != nil {
		return nil, walError(err, "open log %s", name)
	}
	l := &Log{name: name, dir: dir, w: w, disk: d, segmentBytes: int64(d.segmentBytes), dirDirty: true}
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

// LastIndex is the index of the last entry (FirstIndex()-1 when the log is empty).
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// Append adds an entry and returns its index. data is copied.
func (l *Log) Append(data []byte) (uint64, error) {
	if err := l.usable(); err != nil {
		return 0, fmt.Errorf("append to log %s: %w", l.name, err)
	}
	idx := l.last.Load() + 1
	need := crcBytes + len(data)
	if cap(l.scratch) < need {
		l.scratch = make([]byte, need)
	}
	buf := l.scratch[:need]
	binary.BigEndian.PutUint32(buf, crc32.Checksum(data, castagnoli))
	copy(buf[crcBytes:], data)

	// wal.writeBatch starts a new segment before writing if the tail is over size (possible
	// after a reopen with a smaller segment size or a truncation), and after writing if the
	// tail reached the size.
	cycleBefore := l.tailBytes > l.segmentBytes
	if err := l.w.Write(idx, buf); err != nil {
		l.broken = walError(err, "append to log %s at index %d", l.name, idx)
		return 0, l.broken
	}
	if len(l.scratch) > 1<<20 {
		l.scratch = nil // do not pin a large buffer after one large entry
	}
	if cycleBefore {
		l.newTail(idx, 0)
	}
	l.tailBytes += int64(uvarintLen(uint64(need)) + need)
	l.last.Store(idx)
	if l.tailBytes >= l.segmentBytes {
		l.newTail(idx+1, 0)
	}
	return idx, nil
}

// Read returns entry index after verifying its checksum. The slice must not be modified.
// A missing index returns an error wrapping node.ErrNotFound; a checksum mismatch one
// wrapping node.ErrCorrupt.
func (l *Log) Read(index uint64) ([]byte, error) {
	if err := l.usable(); err != nil {
		return nil, fmt.Errorf("read log %s index %d: %w", l.name, index, err)
	}
	if index < l.first.Load() || index > l.last.Load() {
		return nil, fmt.Errorf("read log %s index %d (have %d..%d): %w",
			l.name, index, l.first.Load(), l.last.Load(), node.ErrNotFound)
	}
	b, err := l.w.Read(index)
	if err != nil {
		return nil, walError(err, "read log %s index %d", l.name, index)
	}
	if len(b) < crcBytes {
		return nil, fmt.Errorf("read log %s index %d: entry of %d bytes has no checksum: %w",
			l.name, index, len(b), node.ErrCorrupt)
	}
	payload := b[crcBytes:]
	if want, got := binary.BigEndian.Uint32(b), crc32.Checksum(payload, castagnoli); want != got {
		return nil, fmt.Errorf("read log %s index %d: checksum %08x, stored %08x: %w",
			l.name, index, got, want, node.ErrCorrupt)
	}
	return payload, nil
}

// TruncateBack removes every entry after index (keeps ..index). index may be anything from
// FirstIndex()-1 (which empties the log; the next append gets FirstIndex()) up; at or above
// LastIndex() it is a no-op. Below FirstIndex()-1 it is an error: those entries are already
// gone, so the log cannot end at index.
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
	segIdx := 0 // emptying the log keeps the first segment file, empty
	if index >= first {
		segIdx = l.findSegment(index)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.w.TruncateBack(index); err != nil {
		l.broken = walError(err, "truncate back log %s to %d", l.name, index)
		return l.broken
	}
	l.last.Store(index)
	l.segStarts = l.segStarts[:segIdx+1]
	if err := l.replaceTailLocked(l.segStarts[segIdx]); err != nil {
		l.broken = ioError(err, "truncate back log %s to %d", l.name, index)
		return l.broken
	}
	return nil
}

// TruncateFront removes every entry before index (keeps index..). At or below FirstIndex() it
// is a no-op; LastIndex()+1 empties the log (FirstIndex() becomes index, the next append
// gets index). Above LastIndex()+1 it is an error: the log would have a gap.
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
	segIdx := l.findSegment(index)
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.w.TruncateFront(index); err != nil {
		l.broken = walError(err, "truncate front log %s to %d", l.name, index)
		return l.broken
	}
	l.first.Store(index)
	tailChanged := segIdx == len(l.segStarts)-1
	l.segStarts = append(l.segStarts[:0], l.segStarts[segIdx:]...)
	l.segStarts[0] = index
	l.mu.Lock()
	l.dirDirty = true
	l.mu.Unlock()
	if tailChanged {
		// The wal rewrote the tail segment as a new file named after index.
		if err := l.replaceTailLocked(index); err != nil {
			l.broken = ioError(err, "truncate front log %s to %d", l.name, index)
			return l.broken
		}
	}
	return nil
}

// Sync makes every entry appended before the call durable. It may run concurrently with the
// other methods. Once a sync has failed every later one returns the same error.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.syncErr != nil {
		return l.syncErr
	}
	l.mu.Lock()
	if l.syncOff {
		l.mu.Unlock()
		return fmt.Errorf("sync log %s: log is closed", l.name)
	}
	retired := l.retired
	l.retired = nil
	if l.tailFile == nil {
		f, err := os.OpenFile(l.segmentPath(l.tailStart), os.O_RDWR, 0)
		if err != nil {
			l.mu.Unlock()
			l.syncErr = ioError(err, "sync log %s", l.name)
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
	if err := f.Sync(); err != nil {
		l.syncErr = ioError(err, "sync log %s", l.name)
		return l.syncErr
	}
	if dirDirty {
		if err := syncDir(l.dir); err != nil {
			l.syncErr = ioError(err, "sync log %s: sync directory", l.name)
			return l.syncErr
		}
	}
	return nil
}

// Close closes the log; it may then be opened again. The wal fsyncs the tail on close.
func (l *Log) Close() error {
	if l.closed {
		return fmt.Errorf("close log %s: already closed", l.name)
	}
	l.closed = true
	defer l.disk.release(l.name)
	l.syncMu.Lock()
	l.mu.Lock()
	l.syncOff = true
	var errs []error
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
	l.syncMu.Unlock()
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

// usable reports why the log cannot be used, if it cannot.
func (l *Log) usable() error {
	if l.closed {
		return errors.New("log is closed")
	}
	return l.broken
}

// newTail records that the wal started a new, empty tail segment at index start.
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
// start). syncMu must be held, so no Sync is using a descriptor.
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
