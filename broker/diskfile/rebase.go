package diskfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tidwall/wal"
)

// Rebase empties the log and restarts it at index (node.Rebaser): afterwards FirstIndex() is
// index and the next append gets index. Pending entries are dropped, not written. It does its
// file work at once, on the caller's goroutine (like TruncateBack), and is durable when it
// returns.
//
// Crash safety. Forwards (index above every segment file's start, the usual case: a replica
// jumping to its master's first index) the new empty segment is first written as the wal's
// START file, which the wal's open completes by removing every segment before it: a crash
// leaves either the old log or the empty one at index. Otherwise the old segment files are
// removed before the new one is created: a crash in between leaves an empty directory, which
// opens as an empty log at index 1 (node.Rebaser allows it).
func (l *Log) Rebase(index uint64) error {
	if err := l.usable(); err != nil {
		return fmt.Errorf("rebase log %s to %d: %w", l.name, index, err)
	}
	if index == 0 {
		return fmt.Errorf("rebase log %s to index 0", l.name)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	l.pending = &batch{}
	l.frontTo = 0
	for _, f := range append(l.retired, l.tailFile) {
		if f != nil {
			f.Close()
		}
	}
	l.tailFile, l.retired = nil, nil
	l.mu.Unlock()
	fail := func(err error) error {
		return l.setFailed(ioError(err, "rebase log %s to %d", l.name, index))
	}
	if err := l.w.Close(); err != nil {
		return fail(err)
	}
	if err := l.replaceSegments(index); err != nil {
		return fail(err)
	}
	w, err := wal.Open(l.dir, l.disk.walOptions())
	if err != nil {
		return l.setFailed(walError(err, "rebase log %s to %d: reopen", l.name, index))
	}
	first, errF := w.FirstIndex()
	last, errL := w.LastIndex()
	if errF != nil || errL != nil || first != index || last != index-1 {
		w.Close()
		return l.setFailed(fmt.Errorf("rebase log %s to %d: reopened as %d..%d (%v, %v)", l.name, index, first, last, errF, errL))
	}
	l.w = w
	l.first.Store(index)
	l.last.Store(index - 1)
	l.segStarts = []uint64{index}
	l.tailBytes = 0
	l.mu.Lock()
	l.tailStart = index
	l.dirDirty = false
	l.mu.Unlock()
	l.spare = nil
	return nil
}

// replaceSegments replaces the log's segment files with one empty segment starting at index,
// durably (see Rebase for the order).
func (l *Log) replaceSegments(index uint64) error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var old []string
	forward := true
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || len(name) < 20 {
			continue
		}
		if v, ok := parseSegmentName(name[:20]); ok && (len(name) == 20 || strings.HasSuffix(name, ".START") || strings.HasSuffix(name, ".END")) {
			old = append(old, name)
			forward = forward && v < index
		}
	}
	target := filepath.Join(l.dir, segmentName(index))
	if forward {
		start := target + ".START"
		if err := writeEmptyDurable(start); err != nil {
			return err
		}
		return syncDir(l.dir) // the wal's open removes the old segments and renames START
	}
	for _, name := range old {
		if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
			return err
		}
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	if err := writeEmptyDurable(target); err != nil {
		return err
	}
	return syncDir(l.dir)
}

// writeEmptyDurable creates an empty file at path through a temporary name, so that path
// appears whole or not at all.
func writeEmptyDurable(path string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
