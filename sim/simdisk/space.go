package simdisk

import (
	"github.com/sluicemq/sluice/broker/node"
)

var _ node.SpaceReporter = (*Disk)(nil)

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
