package diskfile

import (
	"slices"
	"syscall"

	"github.com/sluicemq/sluice/broker/node"
)

var _ node.SpaceReporter = (*Disk)(nil)
var _ node.SegmentedLog = (*Log)(nil)

// Space reports the bytes used and the capacity of the file system holding the disk's
// directory (statfs), as RocketMQ's diskMaxUsedSpaceRatio measures it: used counts every
// block not free, including the blocks reserved for root.
func (d *Disk) Space() (used, capacity uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, 0, ioError(err, "statfs %s", d.dir)
	}
	bsize := uint64(st.Bsize)
	capacity = st.Blocks * bsize
	used = (st.Blocks - st.Bfree) * bsize
	return used, capacity, nil
}

// SegmentStarts returns the first index of each segment file, ascending; the last is the
// tail. It waits for a write to the wal in progress.
func (l *Log) SegmentStarts() []uint64 {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return slices.Clone(l.segStarts)
}
