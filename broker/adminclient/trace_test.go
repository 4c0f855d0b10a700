package adminclient

import (
	"strings"
	"testing"
)

// rec joins fields with CONTENT_SPLITOR and ends the record with FIELD_SPLITOR.
func rec(fields ...string) string {
	return strings.Join(fields, traceContentSplitter) + traceFieldSplitter
}

// The records as the official Go client writes them (internal/trace.go) and as Java 4.9's
// TraceDataEncoder writes them (no client host, no SubAfter group, EndTransaction), in one
// body; an unknown type is skipped.
func TestDecodeTraceGoAndJavaRecords(t *testing.T) {
	body := rec("Pub", "1700000000000", "DefaultRegion", "pg", "Orders", "MSG1", "TagA", "k1 k2", "127.0.0.1:10911", "5", "3", "0",
		"7F00000100002A9F0000000000000010", "true", "10.0.0.7") +
		rec("SubBefore", "1700000000100", "DefaultRegion", "cg", "REQ1", "MSG1", "0", "k1 k2", "10.0.0.8") +
		rec("SubAfter", "REQ1", "MSG1", "2", "true", "k1 k2", "0", "1700000000102", "cg") +
		rec("Pub", "1700000000000", "DefaultRegion", "jpg", "Orders", "MSG2", "null", "null", "127.0.0.1:10911", "5", "1", "3",
			"7F00000100002A9F0000000000000020", "false") +
		rec("SubBefore", "1700000000200", "DefaultRegion", "jcg", "REQ2", "MSG2", "1", "null") +
		rec("SubAfter", "REQ2", "MSG2", "4", "false", "null", "4", "1700000000204") +
		rec("EndTransaction", "1700000000300", "DefaultRegion", "tpg", "Orders", "MSG3", "", "", "127.0.0.1:10911", "1", "TX3",
			"COMMIT_MESSAGE", "true") +
		rec("Recall", "1700000000400", "x")
	got, err := DecodeTrace(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []TraceRecord{
		{Type: "Pub", TimestampMs: 1700000000000, RegionID: "DefaultRegion", Group: "pg", Topic: "Orders", MsgID: "MSG1",
			Tags: "TagA", Keys: "k1 k2", StoreHost: "127.0.0.1:10911", BodyLength: 5, CostMs: 3,
			OffsetMsgID: "7F00000100002A9F0000000000000010", Success: true, ClientHost: "10.0.0.7"},
		{Type: "SubBefore", TimestampMs: 1700000000100, RegionID: "DefaultRegion", Group: "cg", RequestID: "REQ1", MsgID: "MSG1",
			Keys: "k1 k2", ClientHost: "10.0.0.8"},
		{Type: "SubAfter", RequestID: "REQ1", MsgID: "MSG1", CostMs: 2, Success: true, Keys: "k1 k2", TimestampMs: 1700000000102, Group: "cg"},
		{Type: "Pub", TimestampMs: 1700000000000, RegionID: "DefaultRegion", Group: "jpg", Topic: "Orders", MsgID: "MSG2",
			Tags: "null", Keys: "null", StoreHost: "127.0.0.1:10911", BodyLength: 5, CostMs: 1, MsgType: 3,
			OffsetMsgID: "7F00000100002A9F0000000000000020"},
		{Type: "SubBefore", TimestampMs: 1700000000200, RegionID: "DefaultRegion", Group: "jcg", RequestID: "REQ2", MsgID: "MSG2",
			RetryTimes: 1, Keys: "null"},
		{Type: "SubAfter", RequestID: "REQ2", MsgID: "MSG2", CostMs: 4, Keys: "null", ContextCode: 4, TimestampMs: 1700000000204},
		{Type: "EndTransaction", TimestampMs: 1700000000300, RegionID: "DefaultRegion", Group: "tpg", Topic: "Orders", MsgID: "MSG3",
			StoreHost: "127.0.0.1:10911", MsgType: 1, TransactionID: "TX3", TransactionState: "COMMIT_MESSAGE", FromTransactionCheck: true},
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}

	// Java's SubAfter names no group: it takes its SubBefore's, and sorts after it.
	recs := []TraceRecord{got[5], got[2], got[4], got[1], got[3], got[0]}
	pairSubAfters(recs)
	SortTrace(recs)
	var order []string
	for _, r := range recs {
		order = append(order, r.Type+"/"+r.Group+"/"+r.MsgID)
	}
	wantOrder := "Pub/jpg/MSG2 Pub/pg/MSG1 SubBefore/cg/MSG1 SubAfter/cg/MSG1 SubBefore/jcg/MSG2 SubAfter/jcg/MSG2"
	if strings.Join(order, " ") != wantOrder {
		t.Errorf("sorted %v, want %s", order, wantOrder)
	}
}

// A known record that is short or holds a field that does not parse is an error naming it;
// the records before it are kept.
func TestDecodeTraceBadRecords(t *testing.T) {
	good := rec("SubAfter", "REQ1", "MSG1", "2", "true", "k")
	for name, bad := range map[string]string{
		"short Pub":        rec("Pub", "1", "r", "g"),
		"bad timestamp":    rec("SubBefore", "soon", "r", "g", "REQ", "MSG", "0", "k"),
		"bad success flag": rec("SubAfter", "REQ", "MSG", "2", "yes", "k"),
	} {
		got, err := DecodeTrace(good + bad)
		if err == nil || !strings.Contains(err.Error(), "trace record 1") {
			t.Errorf("%s: err %v, want one naming record 1", name, err)
		}
		if len(got) != 1 || got[0].MsgID != "MSG1" {
			t.Errorf("%s: kept %+v, want the good record before it", name, got)
		}
	}
}
