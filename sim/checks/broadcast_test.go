package checks

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	. "github.com/sluicemq/sluice/linearizability"
)

// A broadcasting consumer is delivered every message below the offset it reached; what lies
// past it it has not read yet; on a queue whose offsets were reused, reading the offset counts.
func TestBroadcast(t *testing.T) {
	drain := map[QueueKey][]PulledMsg{qa: {{Offset: 0, MsgID: "a"}, {Offset: 1, MsgID: "b"}, {Offset: 2, MsgID: "c"}}}
	msgs := func(pairs ...any) []PulledMsg {
		var out []PulledMsg
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, PulledMsg{Offset: int64(pairs[i].(int)), MsgID: pairs[i+1].(string)})
		}
		return out
	}
	tests := []struct {
		name      string
		reads     []BroadcastRead
		reused    bool
		want      []string
		destroyed int64 // the offset a fault destroyed a copy of (-1: none)
	}{
		{"everything read", []BroadcastRead{{Client: "b1", Queue: qa, Reached: 3, Msgs: msgs(0, "a", 1, "b", 2, "c")}}, false, nil, -1},
		{"not read that far yet", []BroadcastRead{{Client: "b1", Queue: qa, Reached: 1, Msgs: msgs(0, "a")}}, false, nil, -1},
		{"a message skipped", []BroadcastRead{{Client: "b1", Queue: qa, Reached: 3, Msgs: msgs(0, "a", 2, "c")}}, false, []string{KindBroadcastMissed + " b"}, -1},
		{"each consumer must see it", []BroadcastRead{
			{Client: "b1", Queue: qa, Reached: 3, Msgs: msgs(0, "a", 1, "b", 2, "c")},
			{Client: "b2", Queue: qa, Reached: 2, Msgs: msgs(1, "b")}}, false, []string{KindBroadcastMissed + " a"}, -1},
		{"another message at the offset", []BroadcastRead{{Client: "b1", Queue: qa, Reached: 3, Msgs: msgs(0, "a", 1, "x", 2, "c")}}, false, []string{KindBroadcastMissed + " b"}, -1},
		{"another message at a reused offset", []BroadcastRead{{Client: "b1", Queue: qa, Reached: 3, Msgs: msgs(0, "a", 1, "x", 2, "c")}}, true, nil, -1},
		{"a message whose copy a fault destroyed", []BroadcastRead{{Client: "b1", Queue: qa, Reached: 3, Msgs: msgs(0, "a", 2, "c")}}, false, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Broadcast(tc.reads, drain, func(QueueKey) bool { return tc.reused },
				func(q QueueKey, offset int64) bool { return q == qa && offset == tc.destroyed })
			if diff := cmp.Diff(tc.want, kinds(got)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nfull: %v", diff, got)
			}
		})
	}
}
