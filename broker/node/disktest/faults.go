package disktest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sluicemq/sluice/broker/node"
)

// Loss is what a power loss does to one log.
type Loss struct {
	// Keep is how many of the entries appended since the log's last Sync survive: the first
	// Keep of them, whole (or the last one torn, with Tear). 0 loses every unsynced entry.
	Keep int
	// Tear tears the last surviving entry: only part of it reached the medium. It needs
	// Keep >= 1, since a synced entry cannot be torn.
	Tear bool
}

// FaultDisk is a node.Disk under test together with the faults (docs/simulator.md) that a
// crash or the medium can inflict on it. The simulator's disk implements the faults in
// memory; the production disk's test implements them on its real files. RunFaults checks
// that both then behave as node.go documents.
type FaultDisk interface {
	// Disk is the disk as the running process sees it: the one before the last Crash is
	// dead. Its logs and handles are what Crash and Flip act on.
	Disk() node.Disk
	// Crash is a power loss followed by a restart: every handle from Disk is dropped without
	// Close (the test never uses them again) and, for each log named in loss, only what
	// loss[log] says of the entries appended since its last Sync survives; every entry of
	// every other log survives. Afterwards Disk returns the restarted disk. It is a test
	// failure (t.Fatal) to ask for a loss the log cannot suffer (Keep above the unsynced
	// count, Tear with Keep 0).
	Crash(t *testing.T, loss map[string]Loss)
	// Flip changes one bit of the stored entry index of log (in its payload, or in its
	// checksum when the payload is empty). The log must not be open: Flip acts on the
	// medium between a Crash (or Close) and the next OpenLog.
	Flip(t *testing.T, log string, index uint64)
	// InterruptWriteFile leaves on the medium whatever WriteFile(name, data) leaves when a
	// crash interrupts it before its atomic replace (for the production disk a partial
	// temporary file); a Crash follows.
	InterruptWriteFile(t *testing.T, name string, data []byte)
}

// RunFaults runs the fault catalogue. newFaultDisk returns a new, empty disk for each
// subtest; it must clean up after itself (t.Cleanup).
func RunFaults(t *testing.T, newFaultDisk func(t *testing.T) FaultDisk) {
	for _, c := range faultCases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newFaultDisk(t))
		})
	}
}

var faultCases = []struct {
	name string
	run  func(t *testing.T, fd FaultDisk)
}{
	{"TornLast", testTornLast},
	{"TornAmongUnsynced", testTornAmongUnsynced},
	{"TornOnlyEntry", testTornOnlyEntry},
	{"TornAfterTruncateFront", testTornAfterTruncateFront},
	{"TornInEmptiedLog", testTornInEmptiedLog},
	{"FlipMiddle", testFlipMiddle},
	{"FlipFirst", testFlipFirst},
	{"FlipAfterTruncateFront", testFlipAfterTruncateFront},
	{"FlipLastNeverServed", testFlipLastNeverServed},
	{"FlipCutAway", testFlipCutAway},
	{"PowerLoss", testPowerLoss},
	{"PowerLossIsolated", testPowerLossIsolated},
	{"SurvivorsAreDurable", testSurvivorsAreDurable},
	{"FileWrittenSurvives", testFileWrittenSurvives},
	{"FileInterruptedWrite", testFileInterruptedWrite},
}

// mustRead checks that entry i of l reads back as entry(l.Name(), i).
func mustRead(t *testing.T, l node.Log, i uint64) {
	t.Helper()
	got, err := l.Read(i)
	if err != nil {
		t.Fatalf("Read(%d) of %q: %v", i, l.Name(), err)
	}
	if want := entry(l.Name(), i); !bytes.Equal(got, want) {
		t.Fatalf("Read(%d) of %q = %q, want %q", i, l.Name(), got, want)
	}
}

// checkCorrupt checks that entry i of l is reported with ErrCorrupt and no data.
func checkCorrupt(t *testing.T, l node.Log, i uint64) {
	t.Helper()
	got, err := l.Read(i)
	if !errors.Is(err, node.ErrCorrupt) || got != nil {
		t.Fatalf("Read(%d) of %q with a flipped bit = %q, %v; want no data and an error wrapping ErrCorrupt",
			i, l.Name(), got, err)
	}
}

// checkAllBut checks the bounds of l and every entry except the corrupt one, which must be
// reported as corrupt.
func checkAllBut(t *testing.T, l node.Log, first, last, corrupt uint64) {
	t.Helper()
	checkBounds(t, l, first, last)
	for i := first; i <= last; i++ {
		if i == corrupt {
			checkCorrupt(t, l, i)
			continue
		}
		mustRead(t, l, i)
	}
}

// checkCarriesOn appends one entry (it must get index LastIndex()+1), syncs, survives a
// lossless crash and reads the whole log back.
func checkCarriesOn(t *testing.T, fd FaultDisk, name string) {
	t.Helper()
	l := openLog(t, fd.Disk(), name)
	first, last := l.FirstIndex(), l.LastIndex()
	appendN(t, l, 1)
	syncLog(t, l)
	fd.Crash(t, nil)
	l = openLog(t, fd.Disk(), name)
	defer closeLog(t, l)
	checkEntries(t, l, first, last+1)
}

// prepare opens log name and appends synced entries 1..synced, then unsynced ones up to
// synced+unsynced; the handle is returned open.
func prepare(t *testing.T, d node.Disk, name string, synced, unsynced int) node.Log {
	t.Helper()
	l := openLog(t, d, name)
	appendN(t, l, synced)
	syncLog(t, l)
	appendN(t, l, unsynced)
	return l
}

// testTornLast: the one unsynced entry is torn by the crash. The log opens, ends one entry
// earlier, every synced entry is intact, and the torn index is reused.
func testTornLast(t *testing.T, fd FaultDisk) {
	prepare(t, fd.Disk(), "cl", 30, 1)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 1, Tear: true}})
	l := openLog(t, fd.Disk(), "cl")
	checkEntries(t, l, 1, 30)
	closeLog(t, l)
	// Opening again changes nothing: the repair was made durable, not repeated.
	l = openLog(t, fd.Disk(), "cl")
	checkEntries(t, l, 1, 30)
	closeLog(t, l)
	checkCarriesOn(t, fd, "cl")
}

// testTornAmongUnsynced: of ten unsynced entries the first six reach the medium, the sixth
// torn: five survive.
func testTornAmongUnsynced(t *testing.T, fd FaultDisk) {
	prepare(t, fd.Disk(), "cl", 25, 10)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 6, Tear: true}})
	l := openLog(t, fd.Disk(), "cl")
	checkEntries(t, l, 1, 30)
	closeLog(t, l)
	checkCarriesOn(t, fd, "cl")
}

// testTornOnlyEntry: the log's only entry is torn; it opens empty and starts again at 1.
func testTornOnlyEntry(t *testing.T, fd FaultDisk) {
	prepare(t, fd.Disk(), "cl", 0, 1)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 1, Tear: true}})
	l := openLog(t, fd.Disk(), "cl")
	checkBounds(t, l, 1, 0)
	checkNotFound(t, l, 1)
	closeLog(t, l)
	checkCarriesOn(t, fd, "cl")
}

// testTornAfterTruncateFront: the repair keeps the log's first index.
func testTornAfterTruncateFront(t *testing.T, fd FaultDisk) {
	l := prepare(t, fd.Disk(), "cl", 30, 0)
	if err := l.TruncateFront(11); err != nil {
		t.Fatal(err)
	}
	syncLog(t, l)
	appendN(t, l, 1)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 1, Tear: true}})
	l = openLog(t, fd.Disk(), "cl")
	checkEntries(t, l, 11, 30)
	closeLog(t, l)
	checkCarriesOn(t, fd, "cl")
}

// testTornInEmptiedLog: a log emptied by TruncateFront, then one entry that is torn: the log
// opens empty at the same position.
func testTornInEmptiedLog(t *testing.T, fd FaultDisk) {
	l := prepare(t, fd.Disk(), "cl", 10, 0)
	if err := l.TruncateFront(11); err != nil {
		t.Fatal(err)
	}
	syncLog(t, l)
	appendN(t, l, 1)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 1, Tear: true}})
	l = openLog(t, fd.Disk(), "cl")
	checkBounds(t, l, 11, 10)
	checkNotFound(t, l, 11)
	closeLog(t, l)
	checkCarriesOn(t, fd, "cl")
}

// flipAndCheck writes entries 1..n of "cl" (synced, the front truncated to first), flips
// entry bad, and checks over two reopens that exactly that entry is reported corrupt and
// nothing is dropped; the log then carries on.
func flipAndCheck(t *testing.T, fd FaultDisk, first, n, bad uint64) {
	t.Helper()
	l := prepare(t, fd.Disk(), "cl", int(n), 0)
	if err := l.TruncateFront(first); err != nil {
		t.Fatal(err)
	}
	syncLog(t, l)
	closeLog(t, l)
	fd.Flip(t, "cl", bad)
	for range 2 {
		l = openLog(t, fd.Disk(), "cl")
		checkAllBut(t, l, first, n, bad)
		closeLog(t, l)
	}
	fd.Crash(t, nil)
	l = openLog(t, fd.Disk(), "cl")
	checkAllBut(t, l, first, n, bad)
	// Appends carry on after the corrupt entry; it stays corrupt.
	appendN(t, l, 3)
	syncLog(t, l)
	checkAllBut(t, l, first, n+3, bad)
	closeLog(t, l)
}

// testFlipMiddle: a flipped bit in a middle entry is reported on every read of it, never
// served, never repaired away, and costs no other entry.
func testFlipMiddle(t *testing.T, fd FaultDisk) { flipAndCheck(t, fd, 1, 40, 20) }

func testFlipFirst(t *testing.T, fd FaultDisk) { flipAndCheck(t, fd, 1, 40, 1) }

func testFlipAfterTruncateFront(t *testing.T, fd FaultDisk) { flipAndCheck(t, fd, 11, 40, 11) }

// flipLast writes logs of 1..40 entries (so that, on the production disk, the last entry
// falls at different places of the segment files), flips the last entry of each while it is
// closed, reopens it and calls check.
func flipLast(t *testing.T, fd FaultDisk, check func(l node.Log, n uint64)) {
	for n := uint64(1); n <= 40; n++ {
		name := fmt.Sprintf("cl%d", n)
		l := prepare(t, fd.Disk(), name, int(n), 0)
		closeLog(t, l)
		fd.Flip(t, name, n)
		l = openLog(t, fd.Disk(), name)
		check(l, n)
		closeLog(t, l)
	}
}

// testFlipLastNeverServed: a flipped last entry is kept and reported corrupt, never served
// and never dropped as if torn (it was synced: dropped, its index would go to the next entry),
// every earlier entry is intact, and the log carries on after it.
func testFlipLastNeverServed(t *testing.T, fd FaultDisk) {
	flipLast(t, fd, func(l node.Log, n uint64) {
		if l.LastIndex() != n {
			t.Fatalf("log %q: LastIndex after flipping entry %d = %d; want %d (kept, corrupt)",
				l.Name(), n, l.LastIndex(), n)
		}
		checkCorrupt(t, l, n)
		for i := uint64(1); i < n; i++ {
			mustRead(t, l, i)
		}
		last := l.LastIndex()
		appendN(t, l, 1)
		mustRead(t, l, last+1)
	})
}

// testFlipCutAway: truncating a corrupt entry away (from either end) leaves a clean log.
func testFlipCutAway(t *testing.T, fd FaultDisk) {
	for _, name := range []string{"back", "front"} {
		l := prepare(t, fd.Disk(), name, 40, 0)
		closeLog(t, l)
		fd.Flip(t, name, 20)
	}
	l := openLog(t, fd.Disk(), "back")
	checkAllBut(t, l, 1, 40, 20)
	if err := l.TruncateBack(19); err != nil {
		t.Fatalf("TruncateBack over a corrupt entry: %v", err)
	}
	appendN(t, l, 5) // index 20 again, new content
	syncLog(t, l)
	closeLog(t, l)
	l = openLog(t, fd.Disk(), "front")
	checkAllBut(t, l, 1, 40, 20)
	if err := l.TruncateFront(21); err != nil {
		t.Fatalf("TruncateFront over a corrupt entry: %v", err)
	}
	syncLog(t, l)
	closeLog(t, l)
	fd.Crash(t, nil)
	l = openLog(t, fd.Disk(), "back")
	checkEntries(t, l, 1, 24)
	closeLog(t, l)
	l = openLog(t, fd.Disk(), "front")
	checkEntries(t, l, 21, 40)
	closeLog(t, l)
}

// testPowerLoss: a power loss keeps every synced entry and exactly the asked-for prefix of
// the unsynced ones, all intact.
func testPowerLoss(t *testing.T, fd FaultDisk) {
	for _, keep := range []int{0, 1, 4, 10} {
		name := fmt.Sprintf("cl-keep%d", keep)
		prepare(t, fd.Disk(), name, 20, 10)
		fd.Crash(t, map[string]Loss{name: {Keep: keep}})
		l := openLog(t, fd.Disk(), name)
		checkEntries(t, l, 1, 20+uint64(keep))
		checkNotFound(t, l, 21+uint64(keep))
		closeLog(t, l)
		checkCarriesOn(t, fd, name)
	}
	// Nothing synced yet: all may go.
	prepare(t, fd.Disk(), "fresh", 0, 10)
	fd.Crash(t, map[string]Loss{"fresh": {Keep: 0}})
	l := openLog(t, fd.Disk(), "fresh")
	checkBounds(t, l, 1, 0)
	closeLog(t, l)
	checkCarriesOn(t, fd, "fresh")
}

// testPowerLossIsolated: each log loses only its own unsynced entries; a closed log (Close
// makes it durable) and a synced one lose nothing.
func testPowerLossIsolated(t *testing.T, fd FaultDisk) {
	d := fd.Disk()
	closed := prepare(t, d, "cq/T/0", 5, 7)
	closeLog(t, closed)
	prepare(t, d, "cq/T/1", 12, 0)
	prepare(t, d, "cq/T/2", 3, 9)
	prepare(t, d, "commitlog", 50, 20)
	fd.Crash(t, map[string]Loss{"commitlog": {Keep: 8, Tear: true}, "cq/T/2": {Keep: 9}})
	d = fd.Disk()
	for _, want := range []struct {
		name string
		last uint64
	}{{"commitlog", 57}, {"cq/T/0", 12}, {"cq/T/1", 12}, {"cq/T/2", 12}} {
		l := openLog(t, d, want.name)
		checkEntries(t, l, 1, want.last)
		closeLog(t, l)
	}
	if got, err := d.ListLogs(""); err != nil || len(got) != 4 {
		t.Fatalf("ListLogs after the crash = %q, %v; want the 4 logs", got, err)
	}
}

// testSurvivorsAreDurable: what a crash left is durable: a second crash, before any Sync,
// loses none of it.
func testSurvivorsAreDurable(t *testing.T, fd FaultDisk) {
	prepare(t, fd.Disk(), "cl", 10, 10)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 6, Tear: true}})
	l := openLog(t, fd.Disk(), "cl")
	checkEntries(t, l, 1, 15)
	appendN(t, l, 3)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 0}})
	l = openLog(t, fd.Disk(), "cl")
	defer closeLog(t, l)
	checkEntries(t, l, 1, 15)
}

// testFileWrittenSurvives: WriteFile is durable when it returns: a crash keeps the last
// content written, and a log's faults do not touch files.
func testFileWrittenSurvives(t *testing.T, fd FaultDisk) {
	d := fd.Disk()
	for _, v := range []string{"v1", "version two", "3"} {
		if err := d.WriteFile("offsets/g", []byte(v)); err != nil {
			t.Fatalf("WriteFile: %v", err)
		}
	}
	prepare(t, d, "cl", 3, 3)
	fd.Crash(t, map[string]Loss{"cl": {Keep: 1, Tear: true}})
	got, err := fd.Disk().ReadFile("offsets/g")
	if err != nil || string(got) != "3" {
		t.Fatalf("ReadFile after a crash = %q, %v; want the last content written, %q", got, err, "3")
	}
}

// testFileInterruptedWrite: a crash in the middle of WriteFile leaves the old content (or, for
// a new file, none); what the interrupted write left is invisible, and the file can be
// written again.
func testFileInterruptedWrite(t *testing.T, fd FaultDisk) {
	d := fd.Disk()
	old := bytes.Repeat([]byte("old "), 100)
	if err := d.WriteFile("topics.json", old); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("epochs/broker-a", []byte("7")); err != nil {
		t.Fatal(err)
	}
	fd.InterruptWriteFile(t, "topics.json", []byte("new, longer and never fully written"))
	fd.InterruptWriteFile(t, "epochs/broker-b", []byte("1"))
	fd.InterruptWriteFile(t, "fresh", []byte("not yet"))
	fd.Crash(t, nil)
	d = fd.Disk()
	if got, err := d.ReadFile("topics.json"); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("ReadFile after an interrupted WriteFile = %q, %v; want the old content", got, err)
	}
	for _, name := range []string{"epochs/broker-b", "fresh"} {
		if got, err := d.ReadFile(name); !errors.Is(err, node.ErrNotFound) {
			t.Fatalf("ReadFile(%q) after an interrupted first WriteFile = %q, %v; want ErrNotFound", name, got, err)
		}
	}
	if got, err := d.ReadFile("epochs/broker-a"); err != nil || string(got) != "7" {
		t.Fatalf("ReadFile of a neighbour = %q, %v; want %q", got, err, "7")
	}
	if logs, err := d.ListLogs(""); err != nil || len(logs) != 0 {
		t.Fatalf("ListLogs after interrupted WriteFiles = %q, %v; want none", logs, err)
	}
	for _, name := range []string{"topics.json", "fresh"} {
		if err := d.WriteFile(name, []byte("again")); err != nil {
			t.Fatalf("WriteFile(%q) after the crash: %v", name, err)
		}
		if got, err := d.ReadFile(name); err != nil || string(got) != "again" {
			t.Fatalf("ReadFile(%q) = %q, %v; want %q", name, got, err, "again")
		}
	}
}
