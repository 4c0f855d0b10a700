package adminclient

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Message traces (RocketMQ's RIP-6): a client with tracing on (the official Go client's
// WithTrace, Java's enableMsgTrace) sends, for each message it produces or consumes, trace
// records to a trace topic (RMQ_SYS_TRACE_TOPIC by default), batched in ordinary messages
// whose KEYS are the traced messages' ids (and their own keys). The body of such a message is
// records separated by FIELD_SPLITOR (0x02), each a list of fields separated by
// CONTENT_SPLITOR (0x01), the first field naming the record type:
//
//	Pub            timestamp region group topic msgId tags keys storeHost bodyLength costTime msgType [offsetMsgId] success [clientHost]
//	SubBefore      timestamp region group requestId msgId retryTimes keys [clientHost]
//	SubAfter       requestId msgId costTime success keys [contextCode [timestamp [group]]]
//	EndTransaction timestamp region group topic msgId tags keys storeHost msgType transactionId transactionState fromTransactionCheck
//
// The bracketed fields are written by some clients only (the Go client writes all of them;
// Java 4.9 writes Pub with offsetMsgId and no clientHost, SubBefore without clientHost,
// SubAfter with contextCode and timestamp but no group). Java's TraceDataEncoder and the Go
// client's internal/trace.go are the references.

// DefaultTraceTopic is the topic clients send traces to unless configured otherwise.
const DefaultTraceTopic = "RMQ_SYS_TRACE_TOPIC"

const (
	traceContentSplitter = "\x01"
	traceFieldSplitter   = "\x02"
)

// TraceRecord is one decoded trace record. Fields a record type does not carry are zero.
type TraceRecord struct {
	Type        string // Pub, SubBefore, SubAfter or EndTransaction
	TimestampMs int64  // when the client wrote the record (0 if the record has none)
	RegionID    string
	Group       string // producer or consumer group
	Topic       string
	MsgID       string // the traced message's id (its UNIQ_KEY)
	OffsetMsgID string
	Tags, Keys  string
	StoreHost   string
	ClientHost  string
	BodyLength  int
	CostMs      int64
	MsgType     int // Java's MessageType ordinal: 0 normal, 1 transactional half, 2 transactional commit, 3 delayed
	Success     bool
	RequestID   string // pairs a consumer's SubBefore with its SubAfter
	RetryTimes  int
	// ContextCode is the consume outcome of a SubAfter (the Go client's ConsumeReturnType
	// ordinal: 0 success, 1 timeout, 2 exception, 3 null, 4 failed).
	ContextCode          int
	TransactionID        string
	TransactionState     string
	FromTransactionCheck bool
}

// DecodeTrace decodes the body of a trace message into its records. A record of an unknown
// type is skipped, as Java's decoder skips it; a known record with too few fields or a field
// that does not parse is an error naming it (the records before it are returned).
func DecodeTrace(body string) ([]TraceRecord, error) {
	var out []TraceRecord
	for i, rec := range strings.Split(body, traceFieldSplitter) {
		if rec == "" {
			continue // the splitter ends every record
		}
		f := strings.Split(rec, traceContentSplitter)
		r, known, err := decodeTraceRecord(f)
		if err != nil {
			return out, fmt.Errorf("trace record %d (%s): %w", i, f[0], err)
		}
		if known {
			out = append(out, r)
		}
	}
	return out, nil
}

// traceFields reads the fields of one record, remembering the first error.
type traceFields struct {
	f   []string
	err error
}

func (t *traceFields) str(i int) string {
	if i < len(t.f) {
		return t.f[i]
	}
	return ""
}

func (t *traceFields) int(i int) int64 {
	n, err := strconv.ParseInt(t.str(i), 10, 64)
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("field %d %q is not an integer", i, t.str(i))
	}
	return n
}

func (t *traceFields) bool(i int) bool {
	b, err := strconv.ParseBool(t.str(i))
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("field %d %q is not a boolean", i, t.str(i))
	}
	return b
}

func decodeTraceRecord(f []string) (TraceRecord, bool, error) {
	minFields := map[string]int{"Pub": 13, "SubBefore": 8, "SubAfter": 6, "EndTransaction": 13}[f[0]]
	if minFields == 0 {
		return TraceRecord{}, false, nil
	}
	if len(f) < minFields {
		return TraceRecord{}, true, fmt.Errorf("%d fields, want at least %d", len(f), minFields)
	}
	t := &traceFields{f: f}
	r := TraceRecord{Type: f[0]}
	switch f[0] {
	case "Pub":
		r.TimestampMs, r.RegionID, r.Group = t.int(1), t.str(2), t.str(3)
		r.Topic, r.MsgID, r.Tags, r.Keys, r.StoreHost = t.str(4), t.str(5), t.str(6), t.str(7), t.str(8)
		r.BodyLength, r.CostMs, r.MsgType = int(t.int(9)), t.int(10), int(t.int(11))
		if len(f) == 13 { // the oldest form: no offsetMsgId
			r.Success = t.bool(12)
		} else {
			r.OffsetMsgID, r.Success, r.ClientHost = t.str(12), t.bool(13), t.str(14)
		}
	case "SubBefore":
		r.TimestampMs, r.RegionID, r.Group = t.int(1), t.str(2), t.str(3)
		r.RequestID, r.MsgID, r.RetryTimes, r.Keys = t.str(4), t.str(5), int(t.int(6)), t.str(7)
		r.ClientHost = t.str(8)
	case "SubAfter":
		r.RequestID, r.MsgID, r.CostMs, r.Success, r.Keys = t.str(1), t.str(2), t.int(3), t.bool(4), t.str(5)
		if len(f) > 6 {
			r.ContextCode = int(t.int(6))
		}
		if len(f) > 7 {
			r.TimestampMs = t.int(7)
		}
		r.Group = t.str(8)
	case "EndTransaction":
		r.TimestampMs, r.RegionID, r.Group = t.int(1), t.str(2), t.str(3)
		r.Topic, r.MsgID, r.Tags, r.Keys, r.StoreHost = t.str(4), t.str(5), t.str(6), t.str(7), t.str(8)
		r.MsgType, r.TransactionID, r.TransactionState = int(t.int(9)), t.str(10), t.str(11)
		r.FromTransactionCheck = t.bool(12)
	}
	return r, true, t.err
}

// TraceQuery asks for the trace of one message.
type TraceQuery struct {
	MsgID      string // the traced message's id (UNIQ_KEY)
	TraceTopic string // "" means DefaultTraceTopic
	MaxNum     int    // trace messages per broker; 0 means 64
}

// Trace is what a trace query found.
type Trace struct {
	Records []TraceRecord
	// Messages is how many trace messages carried the key; BadRecords says what could not be
	// decoded in them (those messages' other records are kept).
	Messages   int
	BadRecords []error
}

// QueryTrace finds the trace records of a message, as Java's 'mqadmin queryMsgTraceById'
// does: it looks up the trace topic by key = the message id (trace messages are keyed by the
// ids of the messages they trace) and keeps the records of that message. Records come
// ordered: the sends first, then the consumptions by group, each group's by time (a SubBefore
// before its SubAfter).
func (c *Client) QueryTrace(q TraceQuery) (Trace, error) {
	topic := cmp.Or(q.TraceTopic, DefaultTraceTopic)
	found, err := c.QueryByKey(KeyQuery{Topic: topic, Key: q.MsgID, MaxNum: q.MaxNum})
	var tr Trace
	tr.Messages = len(found)
	for _, f := range found {
		recs, derr := DecodeTrace(string(f.Msg.Body))
		if derr != nil {
			tr.BadRecords = append(tr.BadRecords, fmt.Errorf("trace message %s on %s: %w", OffsetMsgID(f.Msg), f.Broker, derr))
		}
		for _, r := range recs {
			if r.MsgID == q.MsgID {
				tr.Records = append(tr.Records, r)
			}
		}
	}
	pairSubAfters(tr.Records)
	SortTrace(tr.Records)
	return tr, err
}

// pairSubAfters gives a SubAfter that does not name its group or client host (Java's do not)
// those of the SubBefore with its request id.
func pairSubAfters(recs []TraceRecord) {
	before := map[string]TraceRecord{}
	for _, r := range recs {
		if r.Type == "SubBefore" {
			before[r.RequestID] = r
		}
	}
	for i, r := range recs {
		if b, ok := before[r.RequestID]; ok && r.Type == "SubAfter" {
			recs[i].Group = cmp.Or(r.Group, b.Group)
			recs[i].ClientHost = cmp.Or(r.ClientHost, b.ClientHost)
		}
	}
}

// SortTrace orders records as QueryTrace returns them.
func SortTrace(recs []TraceRecord) {
	rank := func(r TraceRecord) int {
		switch r.Type {
		case "Pub":
			return 0
		case "EndTransaction":
			return 1
		}
		return 2
	}
	// A SubAfter without a timestamp (old Java clients) sorts with its SubBefore.
	before := map[string]int64{}
	for _, r := range recs {
		if r.Type == "SubBefore" {
			before[r.RequestID] = r.TimestampMs
		}
	}
	at := func(r TraceRecord) int64 {
		if r.Type == "SubAfter" && r.TimestampMs == 0 {
			return before[r.RequestID]
		}
		return r.TimestampMs
	}
	slices.SortStableFunc(recs, func(a, b TraceRecord) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Group, b.Group), cmp.Compare(at(a), at(b)),
			cmp.Compare(a.RequestID, b.RequestID), cmp.Compare(b.Type, a.Type)) // "SubBefore" > "SubAfter"
	})
}
