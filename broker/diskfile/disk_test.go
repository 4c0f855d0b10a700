package diskfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tidwall/wal"
	"pgregory.net/rapid"

	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/disktest"
)

// quietLogger discards repair messages; tests that check them use their own.
var quietLogger = slog.New(slog.DiscardHandler)

func openDisk(t testing.TB, dir string, segmentBytes int) *Disk {
	t.Helper()
	d, err := Open(dir, Options{SegmentBytes: segmentBytes, Logger: quietLogger})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return d
}

func TestConformance(t *testing.T) {
	t.Run("DefaultSegments", func(t *testing.T) {
		disktest.Run(t, func(t *testing.T) node.Disk { return openDisk(t, t.TempDir(), 0) })
	})
	// Segments of a few entries each: every test crosses many segment boundaries.
	t.Run("SmallSegments", func(t *testing.T) {
		disktest.Run(t, func(t *testing.T) node.Disk { return openDisk(t, t.TempDir(), 700) })
	})
}

// checkMirror compares the Log's picture of its segment files with the directory.
func checkMirror(t interface {
	Helper()
	Fatalf(string, ...any)
}, l *Log) {
	t.Helper()
	starts, err := listSegments(l.dir)
	if err != nil {
		t.Fatalf("list segments: %v", err)
	}
	if !slices.Equal(starts, l.segStarts) {
		t.Fatalf("log %s: mirrored segments %v, directory has %v", l.name, l.segStarts, starts)
	}
	size, err := fileSize(l.segmentPath(l.tailStart))
	if err != nil {
		t.Fatalf("tail segment: %v", err)
	}
	if l.tailStart != starts[len(starts)-1] || size != l.tailBytes {
		t.Fatalf("log %s: mirrored tail %d of %d bytes, directory has tail %d of %d bytes",
			l.name, l.tailStart, l.tailBytes, starts[len(starts)-1], size)
	}
}

// TestSegmentMirror checks, after every operation of random sequences, that Log's mirror of
// the wal's segment files (which Sync relies on to fsync the right file) matches the
// directory. A tidwall/wal upgrade that changes when segments are cut fails here.
func TestSegmentMirror(t *testing.T) {
	d := openDisk(t, t.TempDir(), 500)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		name := fmt.Sprintf("mirror/%d", run)
		nl, err := d.OpenLog(name)
		if err != nil {
			rt.Fatal(err)
		}
		l := nl.(*Log)
		defer func() { l.Close() }()
		rt.Repeat(map[string]func(*rapid.T){
			"append": func(rt *rapid.T) {
				n := rapid.IntRange(1, 40).Draw(rt, "n")
				size := rapid.IntRange(0, 700).Draw(rt, "size")
				for range n {
					if _, err := l.Append(make([]byte, size)); err != nil {
						rt.Fatal(err)
					}
				}
			},
			"truncateBack": func(rt *rapid.T) {
				i := rapid.Uint64Range(l.FirstIndex()-1, l.LastIndex()).Draw(rt, "index")
				if err := l.TruncateBack(i); err != nil {
					rt.Fatal(err)
				}
			},
			"truncateFront": func(rt *rapid.T) {
				i := rapid.Uint64Range(l.FirstIndex(), l.LastIndex()+1).Draw(rt, "index")
				if err := l.TruncateFront(i); err != nil {
					rt.Fatal(err)
				}
			},
			"reopen": func(rt *rapid.T) {
				segBytes := rapid.SampledFrom([]int{300, 500, 2000}).Draw(rt, "segmentBytes")
				if err := l.Close(); err != nil {
					rt.Fatal(err)
				}
				d.segmentBytes = segBytes // a reopen may change the segment size
				nl, err := d.OpenLog(name)
				if err != nil {
					rt.Fatal(err)
				}
				l = nl.(*Log)
			},
			"": func(rt *rapid.T) {
				checkMirror(rt, l)
				if err := l.Sync(); err != nil {
					rt.Fatalf("Sync: %v", err)
				}
			},
		})
	})
}

// TestConcurrentSync appends on one goroutine while another syncs, as the event loop and the
// disk worker do; run it with -race.
func TestConcurrentSync(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, 4096)
	nl, err := d.OpenLog("commitlog")
	if err != nil {
		t.Fatal(err)
	}
	l := nl.(*Log)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var syncErr error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := l.Sync(); err != nil {
				syncErr = err
				return
			}
		}
	})
	payload := bytes.Repeat([]byte("x"), 300)
	for i := range 3000 {
		if _, err := l.Append(payload); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			if err := l.TruncateBack(l.LastIndex() - 100); err != nil {
				t.Fatal(err)
			}
			if err := l.TruncateFront(l.FirstIndex() + 50); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if syncErr != nil {
		t.Fatalf("concurrent Sync: %v", syncErr)
	}
	checkMirror(t, l)
	first, last := l.FirstIndex(), l.LastIndex()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	nl, err = d.OpenLog("commitlog")
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	if nl.FirstIndex() != first || nl.LastIndex() != last {
		t.Fatalf("after reopen %d..%d, want %d..%d", nl.FirstIndex(), nl.LastIndex(), first, last)
	}
	for i := first; i <= last; i++ {
		if got, err := nl.Read(i); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("Read(%d): %d bytes, %v", i, len(got), err)
		}
	}
}

// --- crash faults on real files ---

// faultPayload is entry i of the fault tests: long enough for a two-byte length prefix.
func faultPayload(i uint64) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "entry-%04d;", i), 20)
}

// writeFaultLog writes n entries to log "cl" in a new disk, syncs and closes it, and returns
// the disk's directory and the log's directory.
func writeFaultLog(t *testing.T, segmentBytes int, n uint64) (diskDir, logDir string) {
	t.Helper()
	diskDir = t.TempDir()
	d := openDisk(t, diskDir, segmentBytes)
	l, err := d.OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ {
		if _, err := l.Append(faultPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return diskDir, filepath.Join(diskDir, "logs", "cl")
}

// segmentEntry locates one entry in the segment files: the file, the offset of its length
// prefix, and the offsets of its stored bytes (checksum then payload).
type segmentEntry struct {
	file             string
	frame, data, end int
}

func locateEntry(t *testing.T, logDir string, index uint64) segmentEntry {
	t.Helper()
	starts, err := listSegments(logDir)
	if err != nil {
		t.Fatal(err)
	}
	pos := slices.IndexFunc(starts, func(s uint64) bool { return s > index }) // next segment
	if pos < 0 {
		pos = len(starts)
	}
	start := starts[pos-1]
	file := filepath.Join(logDir, segmentName(start))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for i := start; ; i++ {
		size, n := binary.Uvarint(b[off:])
		if n <= 0 {
			t.Fatalf("entry %d not found in %s", index, file)
		}
		if i == index {
			return segmentEntry{file: file, frame: off, data: off + n, end: off + n + int(size)}
		}
		off += n + int(size)
	}
}

// reopen opens log "cl" of the disk in diskDir, with a logger that records repairs.
func reopen(t *testing.T, diskDir string, segmentBytes int) (node.Log, *bytes.Buffer) {
	t.Helper()
	var logBuf bytes.Buffer
	d, err := Open(diskDir, Options{SegmentBytes: segmentBytes, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.OpenLog("cl")
	if err != nil {
		t.Fatalf("reopen after fault: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, &logBuf
}

// checkIntact checks that entries first..last read back as written.
func checkIntact(t *testing.T, l node.Log, first, last uint64) {
	t.Helper()
	if l.FirstIndex() != first || l.LastIndex() != last {
		t.Fatalf("log has %d..%d, want %d..%d", l.FirstIndex(), l.LastIndex(), first, last)
	}
	for i := first; i <= last; i++ {
		got, err := l.Read(i)
		if err != nil || !bytes.Equal(got, faultPayload(i)) {
			t.Fatalf("Read(%d) = %q, %v; want it intact", i, got, err)
		}
	}
}

func TestTornTail(t *testing.T) {
	const n = 40
	for _, segmentBytes := range []int{0, 2000} { // one segment; many segments
		for _, cut := range []struct {
			name string
			at   func(e segmentEntry) int // new file size
		}{
			{"InLengthPrefix", func(e segmentEntry) int { return e.frame + 1 }},
			{"InChecksum", func(e segmentEntry) int { return e.data + 2 }},
			{"InPayload", func(e segmentEntry) int { return (e.data + e.end) / 2 }},
			{"LastByteMissing", func(e segmentEntry) int { return e.end - 1 }},
		} {
			t.Run(fmt.Sprintf("segment%d/%s", segmentBytes, cut.name), func(t *testing.T) {
				diskDir, logDir := writeFaultLog(t, segmentBytes, n)
				e := locateEntry(t, logDir, n)
				if err := os.Truncate(e.file, int64(cut.at(e))); err != nil {
					t.Fatal(err)
				}
				// The wal on its own refuses this log: the repair is what makes it open.
				if w, err := wal.Open(copyDir(t, logDir), &wal.Options{NoSync: true, AllowEmpty: true}); err == nil {
					w.Close()
					t.Fatalf("wal.Open accepted a torn tail; the test does not tear it")
				}
				l, logBuf := reopen(t, diskDir, segmentBytes)
				checkIntact(t, l, 1, n-1)
				if !strings.Contains(logBuf.String(), "repaired torn log tail") {
					t.Errorf("the repair was not logged; log: %s", logBuf)
				}
				// The log carries on: the torn index is reused.
				if i, err := l.Append(faultPayload(n)); err != nil || i != n {
					t.Fatalf("Append after repair = %d, %v; want %d", i, err, n)
				}
				checkIntact(t, l, 1, n)
			})
		}
	}
}

// TestBadLastEntryKept: the last entry is whole but fails its checksum: its last bytes
// overwritten (zeros, garbage: a write torn inside, or damage on the medium) or one bit
// flipped. Nothing tells a torn write from a synced entry damaged later, which may have been
// acknowledged, so the entry is kept and reported corrupt rather than dropped (dropped, its
// index would go to the next entry). Nothing is repaired; appends carry on after it.
func TestBadLastEntryKept(t *testing.T) {
	const n = 40
	for _, segmentBytes := range []int{0, 2000} {
		for _, damage := range []struct {
			name string
			do   func(t *testing.T, e segmentEntry)
		}{
			{"zeros", func(t *testing.T, e segmentEntry) { overwrite(t, e.file, e.end-3, make([]byte, 3)) }},
			{"garbage", func(t *testing.T, e segmentEntry) { overwrite(t, e.file, e.end-3, bytes.Repeat([]byte{0x5A}, 3)) }},
			{"flip", func(t *testing.T, e segmentEntry) {
				at := (e.data + e.end) / 2
				overwrite(t, e.file, at, []byte{readAt(t, e.file, at) ^ 0x10})
			}},
		} {
			t.Run(fmt.Sprintf("segment%d/%s", segmentBytes, damage.name), func(t *testing.T) {
				diskDir, logDir := writeFaultLog(t, segmentBytes, n)
				damage.do(t, locateEntry(t, logDir, n))
				l, logBuf := reopen(t, diskDir, segmentBytes)
				if l.FirstIndex() != 1 || l.LastIndex() != n {
					t.Fatalf("log has %d..%d, want 1..%d (nothing dropped)", l.FirstIndex(), l.LastIndex(), n)
				}
				for i := uint64(1); i < n; i++ {
					if got, err := l.Read(i); err != nil || !bytes.Equal(got, faultPayload(i)) {
						t.Fatalf("Read(%d) = %q, %v; want it intact", i, got, err)
					}
				}
				if got, err := l.Read(n); !errors.Is(err, node.ErrCorrupt) || got != nil {
					t.Fatalf("Read(%d) of the bad last entry = %q, %v; want nil and ErrCorrupt", n, got, err)
				}
				if strings.Contains(logBuf.String(), "repaired") {
					t.Errorf("a whole entry was repaired away; log: %s", logBuf)
				}
				if i, err := l.Append(faultPayload(n + 1)); err != nil || i != n+1 {
					t.Fatalf("Append after the bad entry = %d, %v; want %d", i, err, n+1)
				}
				if got, err := l.Read(n + 1); err != nil || !bytes.Equal(got, faultPayload(n+1)) {
					t.Fatalf("Read(%d) = %q, %v", n+1, got, err)
				}
			})
		}
	}
}

// TestZeroExtendedTail: after a crash the file system may show the tail extended with zeros
// (blocks allocated, data never written). Zero bytes read as zero-length entries, which
// Append never writes; they are cut off and every real entry survives.
func TestZeroExtendedTail(t *testing.T) {
	const n = 40
	diskDir, logDir := writeFaultLog(t, 0, n)
	e := locateEntry(t, logDir, n)
	overwrite(t, e.file, e.end, make([]byte, 4096))
	l, _ := reopen(t, diskDir, 0)
	checkIntact(t, l, 1, n)
}

// TestFlippedByte: one byte flipped inside a middle entry is corruption, not a torn tail.
// The entry is reported with ErrCorrupt, never returned, and the log keeps every other entry.
func TestFlippedByte(t *testing.T) {
	const n = 40
	for _, tc := range []struct {
		name         string
		segmentBytes int
		index        uint64
		where        func(e segmentEntry) int
	}{
		{"TailSegment/Payload", 0, 20, func(e segmentEntry) int { return e.data + 30 }},
		{"TailSegment/Checksum", 0, 20, func(e segmentEntry) int { return e.data + 1 }},
		{"TailSegment/LastByte", 0, n - 1, func(e segmentEntry) int { return e.end - 1 }},
		{"OlderSegment/Payload", 2000, 3, func(e segmentEntry) int { return e.data + 100 }},
		{"FirstEntry", 2000, 1, func(e segmentEntry) int { return e.data + 5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diskDir, logDir := writeFaultLog(t, tc.segmentBytes, n)
			e := locateEntry(t, logDir, tc.index)
			if tc.segmentBytes != 0 && e.file == locateEntry(t, logDir, n).file {
				t.Fatalf("entry %d should not be in the tail segment", tc.index)
			}
			at := tc.where(e)
			b := readAt(t, e.file, at)
			overwrite(t, e.file, at, []byte{b ^ 0x10})

			l, _ := reopen(t, diskDir, tc.segmentBytes)
			if l.FirstIndex() != 1 || l.LastIndex() != n {
				t.Fatalf("log has %d..%d after a flipped byte, want 1..%d (nothing truncated)", l.FirstIndex(), l.LastIndex(), n)
			}
			for i := uint64(1); i <= n; i++ {
				got, err := l.Read(i)
				if i == tc.index {
					if !errors.Is(err, node.ErrCorrupt) || got != nil {
						t.Fatalf("Read(%d) of the corrupt entry = %q, %v; want nil and ErrCorrupt", i, got, err)
					}
					if msg := err.Error(); !strings.Contains(msg, "cl") || !strings.Contains(msg, fmt.Sprint(i)) {
						t.Errorf("error %q does not name the log and index", msg)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, faultPayload(i)) {
					t.Fatalf("Read(%d) = %q, %v; want it intact", i, got, err)
				}
			}
		})
	}
}

// TestTornTailEmptiesSegment: a crash right after a new segment was started, with the only
// entry in it torn: the segment is left empty and the log ends where the previous one did.
func TestTornTailEmptiesSegment(t *testing.T) {
	diskDir, logDir := writeFaultLog(t, 2000, 40)
	starts, err := listSegments(logDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(starts) < 2 {
		t.Fatalf("want several segments, have %v", starts)
	}
	// Leave exactly one entry in the tail segment.
	s := starts[len(starts)-1]
	l, _ := reopen(t, diskDir, 2000)
	if err := l.TruncateBack(s); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	e := locateEntry(t, logDir, s)
	if e.frame != 0 {
		t.Fatalf("entry %d is at offset %d of its segment, want 0", s, e.frame)
	}
	if err := os.Truncate(e.file, int64(e.end-10)); err != nil {
		t.Fatal(err)
	}
	l, _ = reopen(t, diskDir, 2000)
	checkIntact(t, l, 1, s-1)
	if i, err := l.Append(faultPayload(s)); err != nil || i != s {
		t.Fatalf("Append = %d, %v; want %d", i, err, s)
	}
	checkIntact(t, l, 1, s)
}

func overwrite(t *testing.T, file string, at int, b []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, file string, at int) byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
	return b[0]
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return dst
}

// --- errors and rules ---

func TestIOErrorClassification(t *testing.T) {
	full := ioError(&fs.PathError{Op: "write", Path: "/x/seg", Err: syscall.ENOSPC}, "append to log %s", "cl")
	if !errors.Is(full, node.ErrNoSpace) || !errors.Is(full, syscall.ENOSPC) || errors.Is(full, node.ErrIO) {
		t.Errorf("ENOSPC classified as %v", full)
	}
	if !strings.HasPrefix(full.Error(), "append to log cl: ") {
		t.Errorf("error lacks context: %v", full)
	}
	eio := ioError(&fs.PathError{Op: "fsync", Path: "/x/seg", Err: syscall.EIO}, "sync log %s", "cl")
	if !errors.Is(eio, node.ErrIO) || !errors.Is(eio, syscall.EIO) || errors.Is(eio, node.ErrNoSpace) {
		t.Errorf("EIO classified as %v", eio)
	}
	if got := walError(wal.ErrCorrupt, "read"); !errors.Is(got, node.ErrCorrupt) {
		t.Errorf("wal.ErrCorrupt became %v", got)
	}
	if got := walError(wal.ErrNotFound, "read"); !errors.Is(got, node.ErrNotFound) {
		t.Errorf("wal.ErrNotFound became %v", got)
	}
}

func TestLogRules(t *testing.T) {
	d := openDisk(t, t.TempDir(), 0)
	l, err := d.OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.OpenLog("cl"); err == nil {
		t.Error("a second OpenLog of an open log succeeded")
	}
	if err := d.RemoveLog("cl"); err == nil {
		t.Error("RemoveLog of an open log succeeded")
	}
	for range 10 {
		if _, err := l.Append([]byte("e")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.TruncateFront(5); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateBack(3); err == nil {
		t.Error("TruncateBack below FirstIndex()-1 succeeded")
	}
	if err := l.TruncateFront(12); err == nil {
		t.Error("TruncateFront beyond LastIndex()+1 (a gap) succeeded")
	}
	if err := l.TruncateBack(99); err != nil || l.LastIndex() != 10 {
		t.Errorf("TruncateBack above LastIndex() = %v, LastIndex %d; want a no-op", err, l.LastIndex())
	}
	if err := l.TruncateFront(2); err != nil || l.FirstIndex() != 5 {
		t.Errorf("TruncateFront below FirstIndex() = %v, FirstIndex %d; want a no-op", err, l.FirstIndex())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]byte("x")); err == nil {
		t.Error("Append after Close succeeded")
	}
	if err := l.Sync(); err != nil {
		t.Errorf("Sync after a clean Close = %v; want nil (Close made every entry durable)", err)
	}
	if err := l.Close(); err == nil {
		t.Error("a second Close succeeded")
	}
	if err := d.RemoveLog("never"); !errors.Is(err, node.ErrNotFound) {
		t.Errorf("RemoveLog of a missing log = %v; want ErrNotFound", err)
	}
}

func TestInvalidNames(t *testing.T) {
	d := openDisk(t, t.TempDir(), 0)
	for _, name := range []string{"", "/abs", "a//b", "a/", "../escape", "a/../b", ".", "a/./b", "back\\slash"} {
		if l, err := d.OpenLog(name); err == nil {
			l.Close()
			t.Errorf("OpenLog(%q) succeeded", name)
		}
		if err := d.WriteFile(name, []byte("x")); err == nil {
			t.Errorf("WriteFile(%q) succeeded", name)
		}
		if _, err := d.ReadFile(name); err == nil {
			t.Errorf("ReadFile(%q) succeeded", name)
		}
	}
	if got, err := d.ListLogs("../"); err != nil || len(got) != 0 {
		t.Errorf("ListLogs(../) = %q, %v; want nothing", got, err)
	}
}

func TestWriteFileLeavesNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, 0)
	for i := range 3 {
		if err := d.WriteFile("offsets/g", fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "meta", "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "g" {
		t.Fatalf("meta/offsets holds %v, want only g", entries)
	}
	// A crash between CreateTemp and Rename leaves a temporary; Open removes it.
	stale := filepath.Join(dir, "meta", "offsets", ".g.123"+tmpSuffix)
	if err := os.WriteFile(stale, []byte("half"), 0o640); err != nil {
		t.Fatal(err)
	}
	openDisk(t, dir, 0)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temporary survived Open: %v", err)
	}
	d2 := openDisk(t, dir, 0)
	if got, err := d2.ReadFile("offsets/g"); err != nil || string(got) != "v2" {
		t.Fatalf("ReadFile after reopen = %q, %v", got, err)
	}
}

// TestLogAndSubLog: a log name may be a prefix directory of other logs ("a" and "a/b").
func TestLogAndSubLog(t *testing.T) {
	d := openDisk(t, t.TempDir(), 0)
	for _, name := range []string{"a", "a/b"} {
		l, err := d.OpenLog(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append([]byte(name)); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := d.ListLogs(""); !slices.Equal(got, []string{"a", "a/b"}) {
		t.Fatalf("ListLogs = %q", got)
	}
	if err := d.RemoveLog("a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.ListLogs(""); !slices.Equal(got, []string{"a/b"}) {
		t.Fatalf("ListLogs after removing a = %q", got)
	}
	l, err := d.OpenLog("a/b")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, err := l.Read(1); err != nil || string(got) != "a/b" {
		t.Fatalf("Read = %q, %v", got, err)
	}
}
