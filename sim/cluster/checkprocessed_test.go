package cluster

import (
	"testing"

	"github.com/sluicemq/sluice/linearizability"
)

// A committed offset may pass only messages the group processed: the highest one read back is
// held against the final drain, by offset, excusing destroyed messages, other groups and
// queues async replication made lossy.
func TestCommittedOffsetsPassOnlyProcessedMessages(t *testing.T) {
	q := linearizability.QueueKey{Broker: "broker-a", Topic: "T", QueueID: 0}
	lossy := linearizability.QueueKey{Broker: "broker-a", Topic: "T", QueueID: 1}
	drained := func(n int) []linearizability.PulledMsg {
		var out []linearizability.PulledMsg
		for i := range n {
			out = append(out, linearizability.PulledMsg{Offset: int64(i), MsgID: "m"})
		}
		return out
	}
	drain := map[linearizability.QueueKey][]linearizability.PulledMsg{q: drained(10), lossy: drained(10)}
	newRun := func() *run {
		r := &run{report: &Report{}, offsetReads: map[groupQueue][]offsetRead{}, processed: map[groupQueue]map[int64]bool{}}
		r.h.AddUnreadable(q, 3)
		return r
	}
	plain, orderly, sql := groupQueue{consumerGroup, q}, groupQueue{orderlyGroup, q}, groupQueue{"SimSQL", q}

	r := newRun()
	for _, off := range []int64{0, 1, 2, 4, 5} { // 3 was destroyed
		r.noteProcessed(plain, off)
	}
	r.offsetReads[plain] = []offsetRead{{offset: 6, found: true}, {offset: 2, found: true}}
	r.offsetReads[sql] = []offsetRead{{offset: 9, found: true}}                              // the broker filters for it
	r.offsetReads[groupQueue{consumerGroup, lossy}] = []offsetRead{{offset: 9, found: true}} // lossy
	if bad := r.checkProcessed(drain, map[linearizability.QueueKey]bool{lossy: true}); len(bad) != 0 {
		t.Fatalf("reported %v: %v", bad, r.report.Violations)
	}

	r = newRun()
	r.noteProcessed(orderly, 0)
	r.noteProcessed(orderly, 2)
	r.offsetReads[orderly] = []offsetRead{{offset: 3, found: true}, {offset: 8, found: false}}
	if bad := r.checkProcessed(drain, nil); len(bad) != 1 || r.report.Violations[0].Kind != KindOffsetPastUnprocessed {
		t.Fatalf("offset 1 passed unprocessed: reported %v: %v", bad, r.report.Violations)
	}
	t.Log(r.report.Violations[0].Detail)
}
