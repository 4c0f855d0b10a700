//go:build faultinject

package diskfile

import (
	"io/fs"
	"os"
	"syscall"
)

// A binary built with -tags faultinject fails fsyncs on demand, for end-to-end tests of a disk
// whose fsync returns EIO: while the file named by SLUICE_FAULT_FSYNC_TRIGGER exists, every
// fsync of a log fails with EIO, as a failing disk's would. Production builds have no such
// switch.
func init() {
	trigger := os.Getenv("SLUICE_FAULT_FSYNC_TRIGGER")
	if trigger == "" {
		return
	}
	testSyncFault = func(_ *Log, f *os.File) error {
		if _, err := os.Stat(trigger); err != nil {
			return nil
		}
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
	}
}
