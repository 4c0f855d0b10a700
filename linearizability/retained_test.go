package linearizability

import (
	"testing"
	"time"
)

// A queue whose start retention moved up: entries below History.Retained that nobody saw
// (broker writes removed before any pull read them) may fill the gap before the first append
// the history has; above it a gap is still illegal.
func TestCheckRetainedStart(t *testing.T) {
	h := history(
		sendOK(0, "c", 0, 10, 3),
		sendOK(0, "d", 20, 30, 4),
		pull(1, 3, 40, 50, 3, "c", 4, "d"),
	)
	res, err := Check(h, 10*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed()) == 0 {
		t.Fatal("a send at offset 3 of an empty queue with no retention passed")
	}
	h.AddRetained(qa, 3)
	if res, err = Check(h, 10*time.Second, ""); err != nil || len(res.Failed())+len(res.Undecided()) > 0 {
		t.Fatalf("retention removed offsets 0..2: want legal, got failed %v undecided %v (%v)", res.Failed(), res.Undecided(), err)
	}
	h = history(
		sendOK(0, "c", 0, 10, 3),
		sendOK(0, "e", 20, 30, 6),
	)
	h.AddRetained(qa, 3)
	if res, err = Check(h, 10*time.Second, ""); err != nil || len(res.Failed()) == 0 {
		t.Fatalf("a gap at offsets 4..5, above the retained start 3, passed (%v)", err)
	}
}
