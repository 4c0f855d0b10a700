package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// The record stage of a filter sees only entries the hash stage let through; what it rejects
// is skipped like a hash miss (NextOffset still moves past it, NoMatchedMessage when nothing is
// left).
func TestGetFilteredRecordStage(t *testing.T) {
	s := open(t, simdisk.New(), Options{})
	mustCreate(t, s, "T", 1)
	for _, m := range []struct{ body, tags string }{{"m0", "a"}, {"m1", "b"}, {"m2", "a"}, {"m3", "c"}} {
		mustAppend(t, s, msg("T", 0, m.body, m.tags))
	}
	s.Confirm(4)
	notC := func(h int64) bool { return h != codec.TagsHash("c") }
	var seen []string
	onlyM2 := func(rec []byte) bool {
		m, _, err := codec.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(m.Body))
		return string(m.Body) == "m2"
	}
	r, err := s.GetFiltered("T", 0, 0, 32, Filter{TagsHash: notC, Record: onlyM2})
	if err != nil || r.Status != Found || !cmp.Equal(bodiesOf(t, r.Records), []string{"m2"}) || r.NextOffset != 4 {
		t.Fatalf("got %v %v next %d, err %v; want [m2] next 4", r.Status, bodiesOf(t, r.Records), r.NextOffset, err)
	}
	if !cmp.Equal(seen, []string{"m0", "m1", "m2"}) {
		t.Errorf("record stage saw %v, want [m0 m1 m2] (m3 fails the hash stage)", seen)
	}
	r, err = s.GetFiltered("T", 0, 3, 32, Filter{Record: func([]byte) bool { return false }})
	if err != nil || r.Status != NoMatchedMessage || len(r.Records) != 0 || r.NextOffset != 4 {
		t.Fatalf("everything rejected: %v, %d records, next %d, err %v; want NO_MATCHED_MESSAGE next 4", r.Status, len(r.Records), r.NextOffset, err)
	}
}
