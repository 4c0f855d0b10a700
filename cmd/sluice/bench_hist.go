package main

import (
	"math/bits"
	"time"
)

// latencyHist is an HDR-style histogram of durations in microseconds: exact below
// 2^latencyHistSubBits µs, and above that 2^(latencyHistSubBits-1) buckets per power of two, so
// a percentile it reports is within 1/64 (1.6%) of the recorded value. Its size is bounded (a
// few thousand counters) whatever the number of values recorded, so a long benchmark can keep
// one per report interval.
type latencyHist struct {
	counts []uint64
	n      uint64
	max    uint64 // µs, exact
}

const latencyHistSubBits = 7

// histBucket is v's bucket: v itself below 2^subBits; above, 2^(subBits-1) buckets per power
// of two, indexed by the top subBits bits of v (the mantissa) and its shift.
func histBucket(v uint64) int {
	if v < 1<<latencyHistSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - latencyHistSubBits
	mantissa := v >> shift // in [2^(subBits-1), 2^subBits)
	return shift<<(latencyHistSubBits-1) + int(mantissa)
}

// histBucketHigh is the highest value in bucket i.
func histBucketHigh(i int) uint64 {
	if i < 1<<latencyHistSubBits {
		return uint64(i)
	}
	half := 1 << (latencyHistSubBits - 1)
	shift := i/half - 1
	mantissa := uint64(i%half + half)
	return (mantissa+1)<<shift - 1
}

// record adds one duration (negative ones count as 0).
func (h *latencyHist) record(d time.Duration) {
	v := uint64(max(d.Microseconds(), 0))
	i := histBucket(v)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, v)
}

// merge adds o's values to h.
func (h *latencyHist) merge(o *latencyHist) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0 to 1): the high end of the bucket holding the
// ceil(q*n)-th smallest value, never above the largest value recorded; 0 when empty.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histBucketHigh(i), h.max)) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}
