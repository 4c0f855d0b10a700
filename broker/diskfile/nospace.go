package diskfile

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/tidwall/wal"

	"github.com/sluicemq/sluice/broker/node"
)

// A write that fails for lack of space (ENOSPC, EDQUOT) does not fail the log for good, as
// other write errors do: the wal's memory no longer matches its files (it may have written
// part of the batch, or part of an entry), so the log closes the wal and opens it again,
// repairing a torn tail as after a crash, and puts the entries the files do not hold back in
// front of the pending ones. The failed Append or Sync reports an error wrapping
// node.ErrNoSpace; nothing it covered is durable, and a later Sync writes the entries again
// once space was freed. Entries written before the failure are untouched.

var discardLogger = slog.New(slog.DiscardHandler)

// testWriteFault, set by tests, runs after each successful wal write of entries first..last;
// an error it returns is handled as if the write had failed (it may damage the files first).
var testWriteFault func(l *Log, first, last uint64) error

// walOptions are the options every wal of the disk is opened with.
func (d *Disk) walOptions() *wal.Options {
	return &wal.Options{
		NoSync:           true,
		SegmentSize:      d.segmentBytes,
		LogFormat:        wal.Binary,
		SegmentCacheSize: 2,
		NoCopy:           true, // Read returns a view; node.Log says it must not be modified
		AllowEmpty:       true,
		DirPerms:         0o750,
		FilePerms:        0o640,
	}
}

// recoverNoSpaceLocked handles writeErr, the failure of writing batch b (the flushing batch,
// entries b.first..): for a lack of space it reopens the wal and requeues what it lacks, and
// returns writeErr; for anything else, or if the reopen fails, it fails the log. writeMu must
// be held.
func (l *Log) recoverNoSpaceLocked(b *batch, writeErr error) error {
	failLog := func(err error) error {
		l.mu.Lock()
		l.failed = err
		l.flushing = nil
		l.mu.Unlock()
		return err
	}
	if !errors.Is(writeErr, node.ErrNoSpace) && !errors.Is(writeErr, node.ErrNoFiles) {
		// A lack of descriptors (the wal could not open its next segment) is handled as a
		// lack of space: the reopen needs one descriptor, which the wal freed by closing the
		// segment it had filled.
		return failLog(writeErr)
	}
	// The old wal's memory is what is wrong; it stays open (unused for writes) until the new
	// one replaces it, so that reads of written entries never find no wal.
	old := l.w
	// Logged once per episode: a full disk fails every retry the same way.
	logger := l.disk.logger
	if l.outOfSpace {
		logger = discardLogger
	}
	if err := repairTail(l.dir, l.name, logger); err != nil {
		return failLog(fmt.Errorf("%w; then reopening the log: %w", writeErr, err))
	}
	w, err := wal.Open(l.dir, l.disk.walOptions())
	if err != nil {
		return failLog(fmt.Errorf("%w; then reopening the log: %w", writeErr, walError(err, "open log %s", l.name)))
	}
	walLast, err := w.LastIndex()
	if err != nil || walLast+1 < b.first {
		w.Close()
		return failLog(fmt.Errorf("%w; then the reopened log ends at %d, before the batch's first entry %d: %w",
			writeErr, walLast, b.first, node.ErrCorrupt))
	}
	starts, err := listSegments(l.dir)
	if err != nil || len(starts) == 0 {
		w.Close()
		return failLog(fmt.Errorf("%w; then listing the segments: %w", writeErr, ioError(err, "log %s", l.name)))
	}
	tailBytes, err := fileSize(l.segmentPath(starts[len(starts)-1]))
	if err != nil {
		w.Close()
		return failLog(fmt.Errorf("%w; then reading the tail size: %w", writeErr, ioError(err, "log %s", l.name)))
	}
	l.segStarts = starts
	l.tailBytes = tailBytes
	l.mu.Lock()
	l.w = w
	l.tailStart = starts[len(starts)-1]
	l.dirDirty = true
	if l.tailFile != nil {
		l.retired = append(l.retired, l.tailFile) // a Sync may be fsyncing it
		l.tailFile = nil
	}
	l.pending = b.suffixThen(walLast+1, l.pending)
	l.flushing = nil
	l.mu.Unlock()
	_ = old.Close()
	l.spare = nil
	if !l.outOfSpace {
		l.outOfSpace = true
		logger.Warn("diskfile: write failed for lack of space (or of file descriptors); entries kept in memory for a later write (logged once until a write succeeds)",
			"log", l.name, "writtenUpTo", walLast, "pendingFrom", walLast+1, "err", writeErr)
	}
	return writeErr
}

// suffixThen returns a new batch holding b's entries from index from on, followed by next's.
func (b *batch) suffixThen(from uint64, next *batch) *batch {
	out := &batch{first: from}
	k := min(int(from-b.first), len(b.ends))
	base := b.start(k)
	out.data = append(out.data, b.data[base:]...)
	for _, e := range b.ends[k:] {
		out.ends = append(out.ends, e-base)
	}
	if len(out.ends) == 0 {
		out.first = next.first
	}
	off := len(out.data)
	out.data = append(out.data, next.data...)
	for _, e := range next.ends {
		out.ends = append(out.ends, off+e)
	}
	return out
}
