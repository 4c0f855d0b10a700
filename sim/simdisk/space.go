package simdisk

import (
	"github.com/sluicemq/sluice/broker/node"
)

var _ node.SpaceReporter = (*Disk)(nil)
var _ node.SegmentedLog = (*Log)(nil)

// SetSegmentBytes makes every log report segments of this many bytes (SegmentStarts), as the
// production disk stores a log as segment files, so retention removes whole segments; 0 (the
// default) reports none. An entry belongs to the segment its first byte falls in; positions
// count from the log's creation, so a segment's start stays put as the front is cut.
func (d *Disk) SetSegmentBytes(n uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.segmentBytes = n
}

// SegmentStarts implements node.SegmentedLog: the first index of each segment holding entries,
// ascending (the first is FirstIndex, though its segment may have begun before; the last is
// the tail); nil without SetSegmentBytes or on a closed handle. It walks the log's entries.
func (l *Log) SegmentStarts() []uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	size := l.d.segmentBytes
	ld, err := l.data()
	if size == 0 || err != nil || len(ld.entries) == 0 {
		return nil
	}
	starts := []uint64{ld.first}
	pos, seg := ld.base, ld.base/size
	for i, e := range ld.entries {
		if s := pos / size; s != seg {
			starts = append(starts, ld.first+uint64(i))
			seg = s
		}
		pos += uint64(len(e.data))
	}
	return starts
}

// SetCapacity gives the simulated device a capacity in bytes, which Space reports; 0 (the
// default) reports an unbounded device (capacity 0). Appends are not refused for it: inject
// ENOSPC with SetWriteError.
func (d *Disk) SetCapacity(bytes uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = bytes
}

// Space reports the bytes held (every stored log entry, synced or not, and every file) and the
// capacity set with SetCapacity; without a capacity it reports 0, 0 at once. It walks every
// log: meant for a periodic check, not per write.
func (d *Disk) Space() (used, capacity uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.capacity == 0 {
		return 0, 0, nil
	}
	for _, ld := range d.logs {
		for _, e := range ld.entries {
			used += uint64(len(e.data))
		}
	}
	for _, f := range d.files {
		used += uint64(len(f))
	}
	return used, d.capacity, nil
}
