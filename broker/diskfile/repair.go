package diskfile

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// repairTail makes the log in dir openable after a crash. tidwall/wal's binary segment format
// is a sequence of entries, each a uvarint length followed by that many bytes, and wal.Open
// fails on a tail segment whose last entry is cut short. Since the wal is used with NoSync,
// a crash can leave exactly that: the bytes appended since the last fsync partly on disk.
//
// repairTail truncates the tail segment to its last whole entry. Only unsynced data can be
// lost this way: the tail's synced prefix is whole. A length prefix below crcBytes is never
// written by Append, so it is treated as the start of the torn region too (a file extended
// with zeros after a crash reads as zero-length entries). The cost of that rule: a damaged
// length prefix inside the tail segment is indistinguishable from a torn write, and the rest
// of the segment is dropped; the repair is logged at Warn with the number of bytes dropped.
//
// A whole entry whose checksum fails is kept, the last one included, and Read reports it with
// node.ErrCorrupt. Nothing on the medium tells a last entry torn inside (its length reached
// the disk, some of its bytes did not) from a synced one a bit flip struck later, and the
// latter may have been acknowledged and read: dropping it would give its index, and so its
// queue offset, to the next message, and a consumer would see two messages at one offset.
// Kept, an entry that was torn after all costs a hole instead (the store skips its queue
// offset: see broker/store/holes.go), never an acknowledged message, since it was never
// synced.
func repairTail(dir, name string, logger *slog.Logger) error {
	path, err := tailSegmentFile(dir)
	if err != nil {
		return ioError(err, "open log %s: find tail segment", name)
	}
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ioError(err, "open log %s: read tail segment", name)
	}
	keep, reason := wholePrefix(data)
	if keep == len(data) {
		return nil
	}
	if err := truncateDurable(path, int64(keep)); err != nil {
		return ioError(err, "open log %s: repair torn tail", name)
	}
	logger.Warn("diskfile: repaired torn log tail",
		"log", name, "segment", filepath.Base(path), "reason", reason,
		"keptBytes", keep, "droppedBytes", len(data)-keep)
	return nil
}

// wholePrefix returns the length of data's prefix that holds only whole entries, and why
// anything after it is dropped. Whether an entry's checksum holds plays no part (see
// repairTail).
func wholePrefix(data []byte) (keep int, reason string) {
	off := 0
	for off < len(data) {
		size, n := binary.Uvarint(data[off:])
		if n <= 0 || size > uint64(len(data)-off-n) {
			return off, "last entry is cut short"
		}
		if size < crcBytes {
			return off, "entry too short to hold a checksum"
		}
		off += n + int(size)
	}
	return off, ""
}

// tailSegmentFile returns the path of the segment wal.Open will append to, or "" when there
// is none (a new log) or when it is a ".END" file from an interrupted TruncateBack: the wal
// writes and fsyncs such files whole before renaming them into place, so they need no repair.
func tailSegmentFile(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	last := ""
	for _, e := range entries { // sorted by name, as the wal reads them
		n := e.Name()
		if e.IsDir() || len(n) < 20 {
			continue
		}
		if v, err := strconv.ParseUint(n[:20], 10, 64); err != nil || v == 0 {
			continue
		}
		switch {
		case len(n) == 24 && strings.HasSuffix(n, ".END"):
			return "", nil
		case len(n) == 20, len(n) == 26 && strings.HasSuffix(n, ".START"):
			last = n
		}
	}
	if last == "" {
		return "", nil
	}
	return filepath.Join(dir, last), nil
}

// truncateDurable truncates the file at path to size and fsyncs it.
func truncateDurable(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
