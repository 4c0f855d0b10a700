package checks

import (
	. "github.com/sluicemq/sluice/linearizability"
)

// Helpers that read like a history, as linearizability's tests write them.

var (
	qa = QueueKey{Broker: "broker-a", Topic: "TopicTest", QueueID: 0}
	qb = QueueKey{Broker: "broker-a", Topic: "TopicTest", QueueID: 1}
)

// Helpers that read like a history: who did what, from when to when.

func sendOK(client int, id string, call, ret, offset int64) SendOp {
	return SendOp{Client: client, Queue: qa, MsgID: id, Call: call, Return: ret, Outcome: OK, Offset: offset}
}

func sendFailed(client int, id string, call, ret int64) SendOp {
	return SendOp{Client: client, Queue: qa, MsgID: id, Call: call, Return: ret, Outcome: Failed}
}

func sendUnknown(client int, id string, call int64) SendOp {
	return SendOp{Client: client, Queue: qa, MsgID: id, Call: call, Outcome: Unknown}
}

// pull returns an OK pull at offset; msgs alternate offset and id: pull(..., 0, "a", 1, "b").
func pull(client int, offset, call, ret int64, msgs ...any) PullOp {
	p := PullOp{Client: client, Queue: qa, Offset: offset, Call: call, Return: ret, Outcome: OK}
	for i := 0; i < len(msgs); i += 2 {
		p.Msgs = append(p.Msgs, PulledMsg{Offset: int64(msgs[i].(int)), MsgID: msgs[i+1].(string)})
	}
	return p
}

func onQueue(q QueueKey, ops ...any) []any {
	for i, op := range ops {
		switch o := op.(type) {
		case SendOp:
			o.Queue = q
			ops[i] = o
		case PullOp:
			o.Queue = q
			ops[i] = o
		}
	}
	return ops
}

func history(ops ...any) History {
	var h History
	for _, op := range ops {
		switch o := op.(type) {
		case SendOp:
			h.AddSend(o)
		case PullOp:
			h.AddPull(o)
		case []any:
			sub := history(o...)
			h.Sends = append(h.Sends, sub.Sends...)
			h.Pulls = append(h.Pulls, sub.Pulls...)
		default:
			panic("history: not an operation")
		}
	}
	return h
}

// kinds lists the kinds of vs, in order, with the message id when there is one.
func kinds(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		k := v.Kind
		if v.MsgID != "" {
			k += " " + v.MsgID
		}
		out = append(out, k)
	}
	return out
}

var (
	qretry = QueueKey{Broker: "broker-a", Topic: "%RETRY%cg", QueueID: 0}
)

func write(q QueueKey, id string, after int64, owed bool) BrokerWrite {
	return BrokerWrite{Queue: q, MsgID: id, Cause: "test", After: after, Owed: owed}
}

func withWrites(h History, ws ...BrokerWrite) History {
	h.Writes = append(h.Writes, ws...)
	return h
}

func drainOf(q QueueKey, storeTimes map[int]int64, ids ...string) map[QueueKey][]PulledMsg {
	msgs := make([]PulledMsg, len(ids))
	for i, id := range ids {
		st, stamped := storeTimes[i]
		msgs[i] = PulledMsg{Offset: int64(i), MsgID: id, StoreTime: st, Stamped: stamped}
	}
	return map[QueueKey][]PulledMsg{q: msgs}
}

func lock(client int, call, ret int64, granted bool) LockOp {
	return LockOp{Client: client, Group: "og", Queue: qa, Call: call, Return: ret, Outcome: OK, Granted: granted}
}

func unlock(client int, call, ret int64, outcome Outcome) LockOp {
	return LockOp{Client: client, Group: "og", Queue: qa, Call: call, Return: ret, Outcome: outcome, Unlock: true}
}

// withCrashes adds crashes (async flush) to h.
func withCrashes(h History, cs ...Crash) History {
	h.Crashes = append(h.Crashes, cs...)
	return h
}

// finalDrainOf is a final drain of qa holding ids at offsets 0, 1, 2, ...
func finalDrainOf(ids ...string) map[QueueKey][]PulledMsg {
	msgs := []PulledMsg{}
	for i, id := range ids {
		msgs = append(msgs, PulledMsg{Offset: int64(i), MsgID: id})
	}
	return map[QueueKey][]PulledMsg{qa: msgs}
}

// drainPull is the final drain as the pull that read it.
func drainPull(call int64, ids ...string) PullOp {
	var msgs []any
	for i, id := range ids {
		msgs = append(msgs, i, id)
	}
	return pull(9, 0, call, call+5, msgs...)
}
