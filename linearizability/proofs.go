package linearizability

// What the model knows that the direct checks of a history (package sim/checks) need as well:
// when an offset was surely filled, and what a crash may have cut. Both are the model's own
// reasoning (model.go, crash.go), exported so that the checks reason the same way.

// FilledBy returns, for queue q of h, when offset o was surely filled with what a read at time
// t saw there: the earliest return of an operation that took effect only once the log was
// longer than o (an acknowledged send above o, an OK pull that returned an offset at or above
// o) with no crash that may cut o in between, or math.MaxInt64.
func FilledBy(h *History, q QueueKey) func(o, t int64) int64 { return filledBy(h, q) }

// MayCut returns, for h, whether a crash may have cut message id off the position where
// something saw it by time by: whether it may have been appended there inside a crash's loss
// window (see Crash). Without crashes it is always false.
func (h *History) MayCut() func(id string, by int64) bool {
	spans := h.appendSpans()
	return func(id string, by int64) bool { return h.mayCut(spans, id, by) }
}
