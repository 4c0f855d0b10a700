// Package diskfile owns the production node.Disk: named append-only logs stored as
// github.com/tidwall/wal logs under <dir>/logs/<name>, and small metadata files under
// <dir>/meta/<name> that are replaced atomically and durably. It also owns Syncer, the
// group-commit worker the production runtime uses to turn many Env.Sync requests into few
// fsyncs.
//
// Every log entry is stored as crc32c(payload) (4 bytes, big-endian) followed by the payload,
// and the checksum is verified on every read: a corrupt entry is reported with node.ErrCorrupt
// and never returned. Opening a log repairs a torn tail (a partially written last entry, or a
// last entry whose checksum fails) by truncating the tail segment; see repair.go.
//
// This package must never be imported by node code: it does real file I/O. Only runtimes
// (broker/runtime, cmd/sluice) and tests use it.
package diskfile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/sluicemq/sluice/broker/node"
)

// DefaultSegmentBytes is the wal segment size used when Options.SegmentBytes is zero.
//
// tidwall/wal keeps the tail segment in memory and grows it by copying, and when a segment
// fills it fsyncs it and starts a new file, all inside the writing call. Since Log.Append
// became a memory operation that cost is paid by the disk worker's Sync (one WriteBatch per
// group commit), not by the event loop, except when Append's back-pressure writes or a Read
// of an entry already written waits for the wal's lock.
//
// Measured before that change with BenchmarkSegmentSize (5,000 batches of 100 appends of
// 1 KiB while another goroutine fsyncs in a loop), on the 2-core build VM, whose disk is
// slower than the design budget's 160 µs (a 1 KiB fsync: p50 235 µs, p99 2 ms; 100 KiB: p50 0.5 ms,
// p99 8 ms), when every Append wrote to the wal on the loop:
//
//	segment   p50/batch   p99/batch   max/batch   entries/s
//	 1 MiB      512 µs     20.2 ms       72 ms      53,300
//	 4 MiB      473 µs     17.7 ms       97 ms      75,700
//	 8 MiB      429 µs     20.2 ms      223 ms      72,500
//	20 MiB      426 µs     17.5 ms      351 ms      68,600
//
// After it (same VM, -benchtime=3000x; the loop now appends faster than the disk writes, so
// p99 and max are back-pressure waits on a disk-bound run, and entries/s is the disk's
// sustained rate): p50 9-10 µs per batch of 100 at every size; 1 MiB 209,000 entries/s,
// 4 MiB 155,000, 8 MiB 200,000, 20 MiB 106,000 (max stall 95, 214, 135, 392 ms). The
// group-commit rate (BenchmarkGroupCommit/GroupCommit, 3 s each) was 47,200 entries/s at
// 1 MiB, 42,200 at 4 MiB and 46,400 at 20 MiB, within this VM's run-to-run noise (another
// 4 MiB run: 62,000). No size wins clearly, so the default stays 4 MiB, which bounds the
// in-memory tail and the worst segment-fsync stall.
const DefaultSegmentBytes = 4 << 20

// Options configures a Disk.
type Options struct {
	// SegmentBytes is the target size of one wal segment file; 0 means DefaultSegmentBytes.
	SegmentBytes int
	// MaxPendingBytes bounds the entries a Log holds in memory before writing them to the
	// wal; 0 means DefaultMaxPendingBytes. See Log.
	MaxPendingBytes int
	// Logger receives repairs and other notable events; nil means slog.Default().
	Logger *slog.Logger
	// Faults, test-only, injects slow and failing fsyncs and failing writes into the disk's
	// logs (testfaults.go); nil injects none, as in production.
	Faults *Faults
}

// Disk is a node.Disk over one directory. It is safe for concurrent use.
type Disk struct {
	dir          string
	logsDir      string
	metaDir      string
	segmentBytes int
	maxPending   int
	logger       *slog.Logger
	faults       *Faults // nil: none

	mu   sync.Mutex
	open map[string]*Log // logs currently open (nil while OpenLog opens one)
}

var _ node.Disk = (*Disk)(nil)

// tmpSuffix marks WriteFile's temporary files; Open removes leftovers of a crash.
const tmpSuffix = ".sluice-tmp"

// Open opens (creating if needed) the disk rooted at dir.
func Open(dir string, opts Options) (*Disk, error) {
	if opts.SegmentBytes < 0 {
		return nil, fmt.Errorf("open disk %s: negative SegmentBytes %d", dir, opts.SegmentBytes)
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxPendingBytes < 0 {
		return nil, fmt.Errorf("open disk %s: negative MaxPendingBytes %d", dir, opts.MaxPendingBytes)
	}
	if opts.MaxPendingBytes == 0 {
		opts.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Disk{
		dir:          dir,
		logsDir:      filepath.Join(dir, "logs"),
		metaDir:      filepath.Join(dir, "meta"),
		segmentBytes: opts.SegmentBytes,
		maxPending:   opts.MaxPendingBytes,
		logger:       opts.Logger,
		faults:       opts.Faults,
		open:         make(map[string]*Log),
	}
	for _, p := range []string{d.logsDir, d.metaDir} {
		if err := mkdirAllDurable(p); err != nil {
			return nil, ioError(err, "open disk %s", dir)
		}
	}
	if err := d.removeTempFiles(); err != nil {
		return nil, err
	}
	return d, nil
}

// Dir is the directory the disk lives in.
func (d *Disk) Dir() string { return d.dir }

// removeTempFiles deletes WriteFile temporaries left by a crash.
func (d *Disk) removeTempFiles() error {
	err := filepath.WalkDir(d.metaDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), tmpSuffix) {
			d.logger.Info("diskfile: removing leftover temporary file", "path", p)
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return ioError(err, "open disk %s: remove temporary files", d.dir)
	}
	return nil
}

// OpenLog opens or creates the log name, repairing a torn tail first. A log may be open at
// most once at a time.
func (d *Disk) OpenLog(name string) (node.Log, error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("open log %q: %w", name, err)
	}
	d.mu.Lock()
	if _, open := d.open[name]; open {
		d.mu.Unlock()
		return nil, fmt.Errorf("open log %s: already open", name)
	}
	d.open[name] = nil
	d.mu.Unlock()

	l, err := openLog(d, name)
	if err != nil {
		d.release(name)
		return nil, err
	}
	d.mu.Lock()
	d.open[name] = l
	d.mu.Unlock()
	return l, nil
}

func (d *Disk) release(name string) {
	d.mu.Lock()
	delete(d.open, name)
	d.mu.Unlock()
}

// SyncAll makes every open log durable (Log.Sync each, in name order), for a process that
// stops cleanly: a log holds appends in memory until a Sync, so without it a stop would lose
// what the node appended since its last sync. It must not run concurrently with Close of a
// log; a runtime calls it once its node has stopped. It returns every log's error.
func (d *Disk) SyncAll() error {
	d.mu.Lock()
	logs := make([]*Log, 0, len(d.open))
	for _, l := range d.open {
		if l != nil {
			logs = append(logs, l)
		}
	}
	d.mu.Unlock()
	sort.Slice(logs, func(i, j int) bool { return logs[i].name < logs[j].name })
	var errs []error
	for _, l := range logs {
		if err := l.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ListLogs lists the existing logs whose names start with prefix, sorted.
func (d *Disk) ListLogs(prefix string) ([]string, error) {
	// Walk only the deepest directory the prefix pins down.
	root := d.logsDir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if err := validName(prefix[:i]); err != nil {
			return nil, nil // no log name can start with this prefix
		}
		root = filepath.Join(d.logsDir, filepath.FromSlash(prefix[:i]))
	}
	var names []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !e.IsDir() || p == d.logsDir {
			return nil
		}
		rel, err := filepath.Rel(d.logsDir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) && !strings.HasPrefix(prefix, name+"/") {
			return fs.SkipDir // neither matches nor leads to a match
		}
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		isLog, err := isLogDir(p)
		if err != nil {
			return err
		}
		if isLog {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, ioError(err, "list logs %q", prefix)
	}
	sort.Strings(names)
	return names, nil
}

// isLogDir reports whether directory p holds wal segment files.
func isLogDir(p string) (bool, error) {
	entries, err := os.ReadDir(p)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			if _, ok := parseSegmentName(e.Name()); ok {
				return true, nil
			}
		}
	}
	return false, nil
}

// RemoveLog deletes the log name, which must not be open. Removing a log that does not exist
// returns an error wrapping node.ErrNotFound.
func (d *Disk) RemoveLog(name string) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("remove log %q: %w", name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, open := d.open[name]; open {
		return fmt.Errorf("remove log %s: log is open", name)
	}
	p := d.logPath(name)
	isLog, err := isLogDir(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !isLog) {
		return fmt.Errorf("remove log %s: %w", name, node.ErrNotFound)
	}
	if err != nil {
		return ioError(err, "remove log %s", name)
	}
	// Remove the segment files, not subdirectories: "a/b" may be a log inside log "a".
	entries, err := os.ReadDir(p)
	if err != nil {
		return ioError(err, "remove log %s", name)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(p, e.Name())); err != nil {
			return ioError(err, "remove log %s", name)
		}
	}
	// Remove directories left empty, up to logs/.
	for dir := p; dir != d.logsDir; dir = filepath.Dir(dir) {
		if err := os.Remove(dir); err != nil {
			break // not empty: another log lives below it
		}
	}
	if err := syncDir(filepath.Dir(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ioError(err, "remove log %s: sync directory", name)
	}
	if err := syncDir(d.logsDir); err != nil {
		return ioError(err, "remove log %s: sync directory", name)
	}
	return nil
}

func (d *Disk) logPath(name string) string {
	return filepath.Join(d.logsDir, filepath.FromSlash(name))
}

func (d *Disk) metaPath(name string) string {
	return filepath.Join(d.metaDir, filepath.FromSlash(name))
}

// ReadFile returns a metadata file's content, or an error wrapping node.ErrNotFound.
func (d *Disk) ReadFile(name string) ([]byte, error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("read file %q: %w", name, err)
	}
	b, err := os.ReadFile(d.metaPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read file %s: %w", name, errors.Join(node.ErrNotFound, err))
	}
	if err != nil {
		return nil, ioError(err, "read file %s", name)
	}
	return b, nil
}

// WriteFile atomically and durably replaces a metadata file: it writes a temporary file in
// the same directory, fsyncs it, renames it over name and fsyncs the directory. After a crash
// the file holds either the old or the new content, never a mix.
func (d *Disk) WriteFile(name string, data []byte) (err error) {
	if err := validName(name); err != nil {
		return fmt.Errorf("write file %q: %w", name, err)
	}
	target := d.metaPath(name)
	dir := filepath.Dir(target)
	if err := mkdirAllDurable(dir); err != nil {
		return ioError(err, "write file %s", name)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*"+tmpSuffix)
	if err != nil {
		return ioError(err, "write file %s", name)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return ioError(err, "write file %s", name)
	}
	if err := f.Sync(); err != nil {
		return ioError(err, "write file %s: sync", name)
	}
	if err := f.Close(); err != nil {
		return ioError(err, "write file %s: close", name)
	}
	if err := os.Rename(tmp, target); err != nil {
		return ioError(err, "write file %s: rename", name)
	}
	if err := syncDir(dir); err != nil {
		return ioError(err, "write file %s: sync directory", name)
	}
	return nil
}

// validName checks that name is a slash-separated relative path without empty, "." or ".."
// components.
func validName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if strings.ContainsAny(name, "\\\x00") {
		return errors.New("name contains a backslash or NUL")
	}
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "":
			return errors.New("name has an empty component (leading, trailing or double slash)")
		case ".", "..":
			return fmt.Errorf("name has a %q component", c)
		}
	}
	return nil
}

// ioError wraps err with context and with node.ErrNoSpace (disk or quota full),
// node.ErrNoFiles (out of file descriptors) or node.ErrIO, keeping err in the chain.
func ioError(err error, format string, args ...any) error {
	kind := node.ErrIO
	switch {
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		kind = node.ErrNoSpace
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		kind = node.ErrNoFiles
	}
	return fmt.Errorf("%s: %w: %w", fmt.Sprintf(format, args...), kind, err)
}

// syncDir fsyncs a directory, making the creation, rename or removal of its entries durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAllDurable is os.MkdirAll that also fsyncs the parent of every directory it creates.
func mkdirAllDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}
