//go:build faultinject

package diskfile

import (
	"io/fs"
	"os"
	"syscall"
)

// A binary built with -tags faultinject fails disk operations on demand, for end-to-end tests
// of a failing disk on real files. Production builds have no such switch.
//
//   - While the file named by SLUICE_FAULT_FSYNC_TRIGGER exists, every fsync of a log fails
//     with EIO, as a failing disk's would.
//   - While the file named by SLUICE_FAULT_NOSPACE_TRIGGER exists, every write to a log fails
//     with ENOSPC, as a short write: the last few bytes written are cut off the tail segment,
//     as a file system that ran out of space mid-write leaves it.
func init() {
	if trigger := os.Getenv("SLUICE_FAULT_FSYNC_TRIGGER"); trigger != "" {
		testSyncFault = func(_ *Log, f *os.File) error {
			if _, err := os.Stat(trigger); err != nil {
				return nil
			}
			return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
		}
	}
	if trigger := os.Getenv("SLUICE_FAULT_NOSPACE_TRIGGER"); trigger != "" {
		testWriteFault = func(l *Log, _, _ uint64) error {
			if _, err := os.Stat(trigger); err != nil {
				return nil
			}
			return shortWrite(l)
		}
	}
}
