package diskfile

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluicemq/sluice/broker/node"
)

// TestTruncateFrontDeferredToSync: TruncateFront hides the entries at once, leaves the files to
// the next Sync (the disk worker's), and a crash before that Sync brings the entries back.
func TestTruncateFrontDeferredToSync(t *testing.T) {
	for _, synced := range []bool{false, true} {
		t.Run(fmt.Sprintf("synced=%v", synced), func(t *testing.T) {
			dir := t.TempDir()
			d := openDisk(t, dir, 500)
			nl, err := d.OpenLog("cl")
			if err != nil {
				t.Fatal(err)
			}
			l := nl.(*Log)
			for i := range 100 {
				if _, err := l.Append([]byte(fmt.Sprintf("entry %03d", i+1))); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			before := l.SegmentStarts()
			if err := l.TruncateFront(50); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Read(49); !errors.Is(err, node.ErrNotFound) || l.FirstIndex() != 50 {
				t.Fatalf("after TruncateFront(50): first %d, Read(49) %v", l.FirstIndex(), err)
			}
			if got, err := listSegments(l.dir); err != nil || got[0] != before[0] {
				t.Fatalf("files changed before Sync: %v %v (were %v)", got, err, before)
			}
			want := uint64(1)
			if synced {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				checkMirror(t, l)
				if got := l.SegmentStarts(); got[0] != 50 {
					t.Fatalf("segments after Sync %v, want the first at 50", got)
				}
				want = 50
			}
			// Crash: the handle is abandoned and another disk opens the files.
			l2, err := openDisk(t, dir, 500).OpenLog("cl")
			if err != nil {
				t.Fatal(err)
			}
			defer l2.Close()
			if l2.FirstIndex() != want || l2.LastIndex() != 100 {
				t.Fatalf("after the crash: %d..%d, want %d..100", l2.FirstIndex(), l2.LastIndex(), want)
			}
			if b, err := l2.Read(50); err != nil || string(b) != "entry 050" {
				t.Fatalf("Read(50) after the crash: %q %v", b, err)
			}
		})
	}
}
