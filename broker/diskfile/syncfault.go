package diskfile

import (
	"fmt"
	"os"

	"github.com/sluicemq/sluice/broker/node"
)

// testSyncFault, set by tests (and by the faultinject build: faultinject.go), runs before each
// fsync of a log's tail segment; an error it returns is taken as that fsync's failure.
var testSyncFault func(l *Log, f *os.File) error

// fsync fsyncs f, the tail segment of l.
func fsync(l *Log, f *os.File) error {
	if faults := l.disk.faults; faults != nil {
		if err := faults.beforeFsync(f.Name(), l.disk.logger); err != nil {
			return err
		}
	}
	if testSyncFault != nil {
		if err := testSyncFault(l, f); err != nil {
			return err
		}
	}
	return f.Sync()
}

// lostError is ioError for a failed sync that leaves the log unsyncable (node.ErrSyncLost).
func lostError(err error, format string, args ...any) error {
	return fmt.Errorf("%w: %w", ioError(err, format, args...), node.ErrSyncLost)
}
