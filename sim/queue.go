package sim

// event is one scheduled event: fn at virtual time at, through n.Deliver when n is set. seq,
// the order of scheduling, breaks ties between events at the same time, so the order of
// delivery is total and the run deterministic.
type event struct {
	at  int64
	seq uint64
	n   *Node
	fn  func()
}

func (e *event) before(o *event) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

// eventQueue is a 4-ary min-heap of events by (at, seq), typed so that a push or pop neither
// boxes the event nor calls through an interface (it runs once per simulated event). A 4-ary
// heap is shallower than a binary one and its children share cache lines.
type eventQueue []event

func (q *eventQueue) push(e event) {
	h := append(*q, e)
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 4
		if !h[i].before(&h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	*q = h
}

// pop removes and returns the earliest event; the queue must not be empty.
func (q *eventQueue) pop() event {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{} // drop the closure for the garbage collector
	h = h[:last]
	i := 0
	for {
		first := 4*i + 1
		if first >= len(h) {
			break
		}
		least := first
		for c := first + 1; c < min(first+4, len(h)); c++ {
			if h[c].before(&h[least]) {
				least = c
			}
		}
		if !h[least].before(&h[i]) {
			break
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
	*q = h
	return top
}
