// Package replication holds the rules of master/slave replication that need no I/O: the
// epoch table every replica keeps (which master epoch wrote which commit-log indexes), the
// divergence point two replicas' tables imply (where a returning replica must cut its log),
// and the master's in-sync bookkeeping (which index may be acknowledged, which slaves lag or
// have caught up). The broker (package brokernode) drives it: it talks to the controller and
// the other replicas, and asks the store to truncate and append.
//
// It is node code: no goroutines, clock, randomness, files or sockets. Time comes in as
// arguments; the epoch table is kept in a metadata file of the node's node.Disk. Broken
// invariants panic.
package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/sluicemq/sluice/broker/node"
)

// EpochsFile is the metadata file holding a replica's epoch table.
const EpochsFile = "epochs.json"

// MaxEpochs bounds the entries a table keeps (and accepts from a peer). Every election adds at
// most one; the oldest are dropped first, which only makes a divergence point more
// conservative (a truncation may go deeper than needed, never keep what differs).
const MaxEpochs = 1024

// Epoch is one entry of an epoch table: master epoch Epoch wrote the commit-log indexes from
// Start up to the next entry's Start (or the end of the log).
type Epoch struct {
	Epoch int64  `json:"epoch"`
	Start uint64 `json:"startIndex"`
}

// Table is a replica's epoch table: entries with strictly increasing epochs and
// non-decreasing starts. Indexes below the first entry's start belong to no epoch (written
// before the replica joined a group); they are never assumed equal to another replica's.
//
// How a replica keeps its table true to its log (what Divergence relies on):
//   - a replica becoming master at epoch E appends (E, last+1), durably, before its first
//     write at E (unless its last entry is already E: a master restarted within its epoch);
//   - a master serves its slaves only entries it has itself made durable, so a crash never
//     takes from a master an entry that another replica holds, and a master restarted within
//     its epoch may go on writing at E after whatever it lost;
//   - a slave appends (E, i) before it appends its first record of the master's epoch E at
//     index i, which is then the start of E in the master's table too;
//   - a slave follows only a master whose epoch is at least its own last entry's;
//   - truncating the log after p drops the entries starting after p (TruncateAfter), and so
//     does loading the table of a log that ends at p (a crash lost the entries they began).
//
// Under these rules, for any epoch E in a replica's table, its log up to Start(E)-1 is what the
// master of E held when it became master, and its entries from Start(E) to the end of E are
// the master of E's entries at those indexes. Only the newest entry may have no entries (a
// master that has not written yet).
type Table struct {
	entries []Epoch
}

// NewTable returns a table of the given entries, which must be valid (see Validate).
func NewTable(entries []Epoch) (*Table, error) {
	if err := Validate(entries); err != nil {
		return nil, err
	}
	return &Table{entries: slices.Clone(entries)}, nil
}

// Validate checks entries received from outside: at most MaxEpochs, positive epochs strictly
// increasing, starts at least 1 and non-decreasing.
func Validate(entries []Epoch) error {
	if len(entries) > MaxEpochs {
		return fmt.Errorf("epoch table of %d entries (at most %d)", len(entries), MaxEpochs)
	}
	for i, e := range entries {
		if e.Epoch < 1 || e.Start < 1 {
			return fmt.Errorf("epoch table entry %d: epoch %d start %d (both must be at least 1)", i, e.Epoch, e.Start)
		}
		if i > 0 && (e.Epoch <= entries[i-1].Epoch || e.Start < entries[i-1].Start) {
			return fmt.Errorf("epoch table entry %d (%d@%d) does not follow (%d@%d)", i, e.Epoch, e.Start, entries[i-1].Epoch, entries[i-1].Start)
		}
	}
	return nil
}

// Entries returns a copy of the entries.
func (t *Table) Entries() []Epoch { return slices.Clone(t.entries) }

// Len is the number of entries.
func (t *Table) Len() int { return len(t.entries) }

// Last returns the newest entry, or false if the table is empty.
func (t *Table) Last() (Epoch, bool) {
	if len(t.entries) == 0 {
		return Epoch{}, false
	}
	return t.entries[len(t.entries)-1], true
}

// LastEpoch is the newest entry's epoch, 0 for an empty table.
func (t *Table) LastEpoch() int64 {
	e, _ := t.Last()
	return e.Epoch
}

// EpochOf returns the entry covering index (the last one starting at or before it), or false
// if index precedes every entry.
func (t *Table) EpochOf(index uint64) (Epoch, bool) {
	i := t.find(index)
	if i < 0 {
		return Epoch{}, false
	}
	return t.entries[i], true
}

// find is the position of the last entry starting at or before index, -1 if none.
func (t *Table) find(index uint64) int {
	n, _ := slices.BinarySearchFunc(t.entries, index, func(e Epoch, idx uint64) int {
		if e.Start <= idx {
			return -1
		}
		return 1
	})
	return n - 1
}

// EndOf returns where the entries of epoch e end in a log whose last index is last: the next
// entry's start, or last+1, whichever is lower (one past e's last entry; at or below e's own
// start when e wrote nothing there). false if the table has no entry for e.
func (t *Table) EndOf(e int64, last uint64) (uint64, bool) {
	i, ok := slices.BinarySearchFunc(t.entries, e, func(x Epoch, e int64) int {
		switch {
		case x.Epoch < e:
			return -1
		case x.Epoch > e:
			return 1
		}
		return 0
	})
	if !ok {
		return 0, false
	}
	end := last + 1
	if i+1 < len(t.entries) {
		end = min(end, t.entries[i+1].Start)
	}
	return end, true
}

// Append adds (epoch, start). epoch must exceed the last entry's and start must not precede
// its start. A last entry starting at start too held no entries: it is replaced. The oldest
// entry is dropped beyond MaxEpochs.
func (t *Table) Append(epoch int64, start uint64) {
	if epoch < 1 || start < 1 {
		panic(fmt.Sprintf("replication: epoch table entry %d@%d", epoch, start))
	}
	if last, ok := t.Last(); ok && (epoch <= last.Epoch || start < last.Start) {
		panic(fmt.Sprintf("replication: epoch %d@%d appended after %d@%d", epoch, start, last.Epoch, last.Start))
	}
	if last, ok := t.Last(); ok && last.Start == start {
		t.entries = t.entries[:len(t.entries)-1]
	}
	t.entries = append(t.entries, Epoch{Epoch: epoch, Start: start})
	if len(t.entries) > MaxEpochs {
		t.entries = slices.Delete(t.entries, 0, len(t.entries)-MaxEpochs)
	}
}

// TruncateAfter drops the entries that start after index: the log now ends at index, so they
// describe nothing. It reports whether any was dropped.
func (t *Table) TruncateAfter(index uint64) bool {
	n := len(t.entries)
	for n > 0 && t.entries[n-1].Start > index {
		n--
	}
	if n == len(t.entries) {
		return false
	}
	t.entries = t.entries[:n]
	return true
}

// Divergence returns the last index at which a replica's log (table a, last index lastA)
// certainly equals another's (table b, last index lastB): with E the largest epoch both tables
// hold at the same start, min(end of E in a, end of E in b) - 1; 0 when they share no epoch.
// Both sides compute it alike from the two tables; the replica truncating cuts its log after
// the returned index and then fetches from the next one. It never exceeds min(lastA, lastB).
//
// Why it is right (for tables kept as Table says): both logs hold the master of E's log at
// every index below Start(E), and the master of E's entries from Start(E) to their own end of
// E, so they agree up to the lower end. At the lower end m, if both hold an entry, at least one
// has an epoch above E there, and if both had the same epoch it would be a larger shared one:
// the entries differ, so nothing at or after m may be kept.
func Divergence(a *Table, lastA uint64, b *Table, lastB uint64) uint64 {
	i, j := len(a.entries)-1, len(b.entries)-1
	for i >= 0 && j >= 0 {
		ea, eb := a.entries[i], b.entries[j]
		switch {
		case ea.Epoch > eb.Epoch:
			i--
		case ea.Epoch < eb.Epoch:
			j--
		case ea.Start != eb.Start:
			// The same epoch cannot start at two indexes in tables kept as Table says; be
			// conservative and look further back.
			i--
			j--
		default:
			endA, _ := a.EndOf(ea.Epoch, lastA)
			endB, _ := b.EndOf(eb.Epoch, lastB)
			return min(endA, endB) - 1
		}
	}
	return 0
}

// Load reads the epoch table of a replica whose commit log ends at last, dropping the entries
// that start after last (and rewriting the file if it did): a crash lost what they began, or
// a master had not written in its epoch yet (it appends the entry again when it resumes). A missing file is an empty
// table.
func Load(d node.Disk, last uint64) (*Table, error) {
	b, err := d.ReadFile(EpochsFile)
	if errors.Is(err, node.ErrNotFound) {
		return &Table{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replication: read %s: %w", EpochsFile, err)
	}
	var doc epochsDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("replication: decode %s: %w", EpochsFile, err)
	}
	t, err := NewTable(doc.Epochs)
	if err != nil {
		return nil, fmt.Errorf("replication: %s: %w", EpochsFile, err)
	}
	if t.TruncateAfter(last) {
		if err := t.Save(d); err != nil {
			return nil, err
		}
	}
	return t, nil
}

type epochsDoc struct {
	Epochs []Epoch `json:"epochs"`
}

// Save writes the table to EpochsFile, atomically and durably.
func (t *Table) Save(d node.Disk) error {
	entries := t.entries
	if entries == nil {
		entries = []Epoch{}
	}
	b, err := json.Marshal(epochsDoc{Epochs: entries})
	if err != nil {
		return fmt.Errorf("replication: encode epoch table: %w", err)
	}
	if err := d.WriteFile(EpochsFile, append(b, '\n')); err != nil {
		return fmt.Errorf("replication: write %s: %w", EpochsFile, err)
	}
	return nil
}
