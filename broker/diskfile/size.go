package diskfile

import (
	"io/fs"
	"path/filepath"
)

// LogBytes returns the bytes of log name's files on disk (0 for a log without files). It reads
// only the file system, so it may be called from any goroutine; a log being written may be a
// little larger than it says.
func (d *Disk) LogBytes(name string) int64 {
	var n int64
	_ = filepath.WalkDir(filepath.Join(d.logsDir, filepath.FromSlash(name)), func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed while walking, or no log at all
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
