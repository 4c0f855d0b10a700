package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicemq/sluice/broker/diskfile"
)

// TestOnProductionDisk runs a store on real files: append, checkpoint, restart, and the
// messages and offsets come back, including those replayed past the checkpoint.
func TestOnProductionDisk(t *testing.T) {
	dir := t.TempDir()
	s := openOnFiles(t, dir)
	mustCreate(t, s, "T", 2)
	var want [2][]string
	for i := 0; i < 50; i++ {
		q := int32(i % 2)
		body := fmt.Sprintf("m%d", i)
		mustAppend(t, s, msg("T", q, body, ""))
		want[q] = append(want[q], body)
		if i == 30 {
			if err := s.CommitLog().Sync(); err != nil {
				t.Fatal(err)
			}
			s.Confirm(s.CommitLog().LastIndex())
			logs, upTo := s.BeginCheckpoint()
			for _, l := range logs {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.FinishCheckpoint(upTo); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.CommitLog().Sync(); err != nil {
		t.Fatal(err)
	}
	s.Confirm(50)
	s.CommitOffset("g", "T", 1, 12)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openOnFiles(t, dir)
	defer s.Close()
	for q := int32(0); q < 2; q++ {
		if diff := cmp.Diff(want[q], queueBodies(t, s, "T", q)); diff != "" {
			t.Errorf("T/%d after restart (-want +got):\n%s", q, diff)
		}
	}
	if off, ok := s.QueryOffset("g", "T", 1); !ok || off != 12 {
		t.Errorf("offset after restart: %d %v", off, ok)
	}
}

// TestFlippedLastRecordKeepsItsOffset: on real files, a bit flipped in the commit log's last
// record (synced, so possibly acknowledged and read) before the store reopens. The disk once
// took that for a torn write and dropped the record; the queue's next message was then stored
// at the flipped one's queue offset, where a consumer may already have read it: two messages
// at one offset. The record is kept as unreadable, and its offset stays taken (a hole).
func TestFlippedLastRecordKeepsItsOffset(t *testing.T) {
	for _, cqSurvives := range []bool{true, false} {
		t.Run(fmt.Sprintf("consumeQueueSurvives=%v", cqSurvives), func(t *testing.T) {
			dir := t.TempDir()
			s := openOnFiles(t, dir)
			mustCreate(t, s, "T", 2)
			big := strings.Repeat("x", 500) // the flip, in the record's middle, lands in its body
			mustAppend(t, s, msg("T", 0, "a0", ""))
			mustAppend(t, s, msg("T", 1, "b0", ""))
			mustAppend(t, s, msg("T", 0, big, "")) // 3: the last record, flipped
			if err := s.CommitLog().Sync(); err != nil {
				t.Fatal(err)
			}
			s.Confirm(3)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if !cqSurvives {
				// Power lost before the consume queue's entries reached the medium.
				if err := os.RemoveAll(filepath.Join(dir, "logs", "cq")); err != nil {
					t.Fatal(err)
				}
			}
			flipInLastEntry(t, filepath.Join(dir, "logs", commitLogName), func(e []byte) int { return len(e) / 2 })

			s = openOnFiles(t, dir)
			defer s.Close()
			if got := s.CommitLog().LastIndex(); got != 3 {
				t.Errorf("commit log ends at %d after the flip, want 3 (the flipped record kept)", got)
			}
			if r := mustAppend(t, s, msg("T", 0, "new", "")); r.QueueOffset != 2 {
				t.Fatalf("the next message of T/0 went to offset %d, want 2 (offset 1 is the flipped record's)", r.QueueOffset)
			}
			s.Confirm(s.CommitLog().LastIndex())
			if diff := cmp.Diff([]string{"a0", "", "new"}, queueWithHoles(t, s, "T", 0)); diff != "" {
				t.Fatalf("T/0 (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFlippedHeaderKeepsItsOffset: on real files, a bit flipped in the header of a record
// that is the last of its queue, whose consume-queue entry did not survive the crash: in its
// topic name, queue or commit-log offset, or a length that frames the fields after it. Its
// unverified header names no queue, or a wrong offset, or does not decode; before, nothing
// placed it and the queue's next message took its offset. The header names a queue but for
// one bit, and only one: placed there.
func TestFlippedHeaderKeepsItsOffset(t *testing.T) {
	dir := t.TempDir()
	s := openOnFiles(t, dir)
	mustCreate(t, s, "Orders", 1)
	mustCreate(t, s, "Ocders", 1) // one bit from "Obders" too, but its next offset is 2
	mustAppend(t, s, msg("Orders", 0, "o0", ""))
	mustAppend(t, s, msg("Ocders", 0, "x0", ""))
	mustAppend(t, s, msg("Ocders", 0, "x1", ""))
	mustAppend(t, s, msg("Orders", 0, "o1", "")) // 4: flipped in its topic
	if err := s.CommitLog().Sync(); err != nil {
		t.Fatal(err)
	}
	s.Confirm(4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "logs", "cq")); err != nil {
		t.Fatal(err)
	}
	// The entry is the record's checksum (4 bytes), then the record. "Orders" to "Obders" or
	// "Ordebs" ('r' to 'b'): no queue of that name; of the queues one bit from it, only
	// Orders/0 has 1, the flipped record's offset, as its next offset.
	topic := func(e []byte) int { return bytes.LastIndex(e, []byte("Orders")) }
	for _, tc := range []struct {
		name string
		at   func(e []byte) int
	}{
		{"topic", func(e []byte) int { return topic(e) + 1 }},
		{"topicEnd", func(e []byte) int { return topic(e) + 4 }},
		{"topicLength", func(e []byte) int { return topic(e) - 1 }},
		{"propertiesLength", func(e []byte) int { return topic(e) + len("Orders") }},
		{"queueOffset", func([]byte) int { return 4 + 27 }},
		{"physicalOffset", func([]byte) int { return 4 + 35 }},
		{"totalSize", func([]byte) int { return 4 + 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, dir)
			flipInLastEntry(t, filepath.Join(dir, "logs", commitLogName), tc.at)
			s := openOnFiles(t, dir)
			defer s.Close()
			if r := mustAppend(t, s, msg("Orders", 0, "new", "")); r.QueueOffset != 2 {
				t.Fatalf("the next message of Orders/0 went to offset %d, want 2 (offset 1 is the flipped record's)", r.QueueOffset)
			}
			s.Confirm(s.CommitLog().LastIndex())
			if diff := cmp.Diff([]string{"o0", "", "new"}, queueWithHoles(t, s, "Orders", 0)); diff != "" {
				t.Fatalf("Orders/0 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"x0", "x1"}, queueWithHoles(t, s, "Ocders", 0)); diff != "" {
				t.Fatalf("Ocders/0 (-want +got):\n%s", diff)
			}
		})
	}
}

// openOnFiles opens a store on the production disk in dir.
func openOnFiles(t *testing.T, dir string) *Store {
	t.Helper()
	d, err := diskfile.Open(dir, diskfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return open(t, d, Options{})
}

// copyDir copies the directory tree at src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// flipInLastEntry flips one bit (0x10) of the last entry of the wal segment files in logDir
// (each entry: a uvarint length, then that many bytes), at the position at picks in it.
func flipInLastEntry(t *testing.T, logDir string, at func(entry []byte) int) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(logDir, "[0-9]*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no segment files in %s: %v", logDir, err)
	}
	sort.Strings(names)
	path := names[len(names)-1]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start, end := -1, 0
	for off := 0; off < len(data); {
		size, n := binary.Uvarint(data[off:])
		if n <= 0 || int(size) > len(data)-off-n {
			t.Fatalf("segment %s: bad entry at %d", path, off)
		}
		start, end = off+n, off+n+int(size)
		off = end
	}
	if start < 0 {
		t.Fatalf("segment %s is empty", path)
	}
	i := at(data[start:end])
	if i < 0 || i >= end-start {
		t.Fatalf("segment %s: no byte %d in an entry of %d", path, i, end-start)
	}
	data[start+i] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
