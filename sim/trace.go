package sim

// traceHash is the trace hash: 64-bit FNV-1a (as hash/fnv's New64a computes it) over every
// delivered event, kept as a plain value so that mixing an event in neither allocates nor calls
// through an interface.
type traceHash uint64

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func newTraceHash() traceHash { return fnvOffset64 }

func (h *traceHash) add(b []byte) {
	x := uint64(*h)
	for _, c := range b {
		x ^= uint64(c)
		x *= fnvPrime64
	}
	*h = traceHash(x)
}

func (h *traceHash) addString(s string) {
	x := uint64(*h)
	for i := 0; i < len(s); i++ {
		x ^= uint64(s[i])
		x *= fnvPrime64
	}
	*h = traceHash(x)
}
