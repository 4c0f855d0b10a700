// Package keyindex is the broker's index by message key: a hash index from a 64-bit key hash to
// the commit-log indexes of the messages carrying that key, kept in one append-only node.Log.
// It owns the layout of that log and the chains through it; what a key is, and checking that a
// hit really carries the key (hashes collide), is the store's business.
//
// Layout (RocketMQ's IndexFile idea on an append-only log): entry p is
//
//	hash u64 | commit-log index u64 | store timestamp ms i64 | prev u64
//
// where prev is the log index of the previous entry in the same bucket (0: none). The only
// memory held is the bucket table: for each of 2^bits buckets the log index of its newest
// entry, 8 bytes a bucket whatever the number of messages. A lookup walks its bucket's chain
// from the newest entry back, one Read per entry. Open rebuilds the bucket table by reading
// every entry once (32 bytes each, against the commit log's whole records).
//
// Entries are appended in commit-log order. TruncateFrom removes the entries of the newest
// messages, which recovery needs when the commit log lost its tail.
//
// It is node code: no goroutines, clock, global randomness, files or sockets (the log comes
// from the store's node.Disk); it never syncs its log itself. Broken invariants panic.
package keyindex

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluicemq/sluice/broker/node"
)

// EntrySize is the size of one index entry.
const EntrySize = 32

// MaxBucketBits bounds the bucket table (2^24 buckets: 128 MiB).
const MaxBucketBits = 24

// Entry is one indexed key occurrence.
type Entry struct {
	Hash        uint64
	CommitIndex uint64 // the message's commit-log index
	StoreMs     int64  // the message's store timestamp
}

// Index is the index over one log. It is not safe for concurrent use.
type Index struct {
	log   node.Log
	heads heads
	mask  uint64
	buf   []byte
	// last is the newest entry (zero when the log is empty).
	last Entry
	// broken counts entries Open could not read; their chains end early.
	broken int
}

// Hash is the index's hash of a key within a topic (FNV-1a; the same on every run and node).
func Hash(topic, key string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint64(topic[i])) * prime
	}
	h = (h ^ 1) * prime // 0x01 is never part of a topic name
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return h
}

// Open builds the bucket table of the entries in l (2^bucketBits buckets). An entry that
// fails its checksum is counted in Broken and skipped: the chains through it end there.
func Open(l node.Log, bucketBits int) (*Index, error) {
	if bucketBits < 1 || bucketBits > MaxBucketBits {
		return nil, fmt.Errorf("keyindex: %d bucket bits outside 1..%d", bucketBits, MaxBucketBits)
	}
	x := &Index{log: l, heads: newHeads(1 << bucketBits), mask: 1<<bucketBits - 1}
	for p := l.FirstIndex(); p <= l.LastIndex(); p++ {
		e, prev, err := x.read(p)
		if errors.Is(err, node.ErrCorrupt) {
			x.broken++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keyindex: open %s: %w", l.Name(), err)
		}
		if prev >= p {
			return nil, fmt.Errorf("keyindex: %s entry %d links forward to %d: %w", l.Name(), p, prev, node.ErrCorrupt)
		}
		if e.CommitIndex < x.last.CommitIndex {
			return nil, fmt.Errorf("keyindex: %s entry %d is for commit-log index %d after one for %d: %w",
				l.Name(), p, e.CommitIndex, x.last.CommitIndex, node.ErrCorrupt)
		}
		x.heads.set(e.Hash&x.mask, p)
		x.last = e
	}
	return x, nil
}

// Log is the index's log, for the store to have it synced and closed.
func (x *Index) Log() node.Log { return x.log }

// Broken is the number of entries Open found corrupt.
func (x *Index) Broken() int { return x.broken }

// Last returns the newest entry (zero if none): what RocketMQ reports as the index's last
// update (indexLastUpdateTimestamp, indexLastUpdatePhyoffset).
func (x *Index) Last() Entry { return x.last }

// Len is the number of entries.
func (x *Index) Len() uint64 { return x.log.LastIndex() + 1 - x.log.FirstIndex() }

// Add appends an entry. Entries must come in commit-log order.
func (x *Index) Add(e Entry) error {
	if e.CommitIndex < x.last.CommitIndex {
		panic(fmt.Sprintf("keyindex: entry for commit-log index %d added after one for %d", e.CommitIndex, x.last.CommitIndex))
	}
	b := e.Hash & x.mask
	x.buf = binary.BigEndian.AppendUint64(x.buf[:0], e.Hash)
	x.buf = binary.BigEndian.AppendUint64(x.buf, e.CommitIndex)
	x.buf = binary.BigEndian.AppendUint64(x.buf, uint64(e.StoreMs))
	x.buf = binary.BigEndian.AppendUint64(x.buf, x.heads.get(b))
	want := x.log.LastIndex() + 1
	p, err := x.log.Append(x.buf)
	if err != nil {
		return fmt.Errorf("keyindex: append to %s: %w", x.log.Name(), err)
	}
	if p != want {
		panic(fmt.Sprintf("keyindex: %s appended at %d, expected %d", x.log.Name(), p, want))
	}
	x.heads.set(b, p)
	x.last = e
	return nil
}

// TruncateFrom removes every entry for commit-log index from or above (they are the newest),
// and entries at the tail that fail their checksum, restoring the bucket heads they had
// replaced.
func (x *Index) TruncateFrom(from uint64) error {
	keep := x.log.LastIndex()
	for keep >= x.log.FirstIndex() {
		e, prev, err := x.read(keep)
		if err != nil && !errors.Is(err, node.ErrCorrupt) {
			return fmt.Errorf("keyindex: truncate %s: %w", x.log.Name(), err)
		}
		if err == nil {
			if e.CommitIndex < from {
				break
			}
			// Every entry above keep is gone, so a head at or above it moves to prev.
			if b := e.Hash & x.mask; x.heads.get(b) >= keep {
				x.heads.set(b, prev)
			}
		}
		keep--
	}
	if keep == x.log.LastIndex() {
		return nil
	}
	if err := x.log.TruncateBack(keep); err != nil {
		return fmt.Errorf("keyindex: truncate %s to %d: %w", x.log.Name(), keep, err)
	}
	x.last = Entry{}
	if keep >= x.log.FirstIndex() {
		if e, _, err := x.read(keep); err == nil {
			x.last = e
		}
	}
	// A corrupt entry dropped from the tail may have been a bucket head: forget heads that
	// point past the end.
	x.heads.clearAbove(keep)
	return nil
}

// TruncateBefore removes every entry for a commit-log index below before (the oldest: entries
// come in commit-log order), as retention removes those messages. Links and bucket heads that
// point at removed entries end their chains (Walk). An entry that fails its checksum where the
// boundary is sought stops the search with its error, and nothing is removed.
func (x *Index) TruncateBefore(before uint64) error {
	first, last := x.log.FirstIndex(), x.log.LastIndex()
	// Invariant: entries below lo are for indexes below before; entries at or above hi are not.
	lo, hi := first, last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, _, err := x.read(mid)
		if err != nil {
			return fmt.Errorf("keyindex: truncate %s before commit-log index %d: %w", x.log.Name(), before, err)
		}
		if e.CommitIndex < before {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo <= first {
		return nil
	}
	if err := x.log.TruncateFront(lo); err != nil {
		return fmt.Errorf("keyindex: truncate %s front to %d: %w", x.log.Name(), lo, err)
	}
	if lo > last {
		x.last = Entry{}
	}
	return nil
}

// Walk visits the entries with hash h, newest first, until visit returns false or maxScan
// entries of h's bucket (which holds other hashes too) have been read. An unreadable entry
// ends the walk with its error; the entries visited before it stand.
func (x *Index) Walk(h uint64, maxScan int, visit func(Entry) bool) error {
	p := x.heads.get(h & x.mask)
	// A link below the first entry points at an entry retention removed: the chain ends there.
	for n := 0; p != 0 && p >= x.log.FirstIndex() && n < maxScan; n++ {
		e, prev, err := x.read(p)
		if err != nil {
			return fmt.Errorf("keyindex: read %s entry %d: %w", x.log.Name(), p, err)
		}
		if prev >= p {
			panic(fmt.Sprintf("keyindex: %s entry %d links forward to %d", x.log.Name(), p, prev))
		}
		if e.Hash == h && !visit(e) {
			return nil
		}
		p = prev
	}
	return nil
}

func (x *Index) read(p uint64) (Entry, uint64, error) {
	b, err := x.log.Read(p)
	if err != nil {
		return Entry{}, 0, err
	}
	if len(b) != EntrySize {
		return Entry{}, 0, fmt.Errorf("keyindex: %s entry %d has %d bytes: %w", x.log.Name(), p, len(b), node.ErrCorrupt)
	}
	be := binary.BigEndian
	return Entry{Hash: be.Uint64(b), CommitIndex: be.Uint64(b[8:]), StoreMs: int64(be.Uint64(b[16:]))}, be.Uint64(b[24:]), nil
}

// heads is the bucket table: the log index of each bucket's newest entry (0: empty). It is
// allocated in small pages on first use, so a small index (a broker that restarted a moment
// ago, with a few thousand keys over 2^18 buckets) holds and clears little memory and opening
// one is cheap; it never exceeds 8 bytes a bucket and a pointer a page.
type heads struct {
	pages []*[1 << pageBits]uint64
}

// pageBits sizes a page at 16 buckets (128 bytes): keys hash all over the table, so a page
// seldom holds more than one or two of a small index's heads, and the page table of 2^18 buckets
// (the store's default) is 128 KiB.
const pageBits = 4

func newHeads(buckets uint64) heads {
	return heads{pages: make([]*[1 << pageBits]uint64, (buckets+1<<pageBits-1)>>pageBits)}
}

func (h *heads) get(b uint64) uint64 {
	if pg := h.pages[b>>pageBits]; pg != nil {
		return pg[b&(1<<pageBits-1)]
	}
	return 0
}

func (h *heads) set(b, p uint64) {
	pg := h.pages[b>>pageBits]
	if pg == nil {
		if p == 0 {
			return
		}
		pg = new([1 << pageBits]uint64)
		h.pages[b>>pageBits] = pg
	}
	pg[b&(1<<pageBits-1)] = p
}

// clearAbove empties the buckets whose head is above keep.
func (h *heads) clearAbove(keep uint64) {
	for _, pg := range h.pages {
		if pg == nil {
			continue
		}
		for i, p := range pg {
			if p > keep {
				pg[i] = 0
			}
		}
	}
}
