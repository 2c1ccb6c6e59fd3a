package main

import (
	"math"
	"math/bits"
)

// Histogram is a log-linear latency histogram in nanoseconds, HdrHistogram-style: values
// below linearLimit (256 ns) are counted exactly; above, each power-of-two range [2^k,
// 2^(k+1)) is split into subBucketCount (128) equal buckets, so a bucket's width is at most
// 1/128 (< 1 %) of the values in it. Values above histMaxNs count as histMaxNs.
//
// Quantiles, Max and Mean follow HdrHistogram (and the Rust `hdrhistogram` crate
// bench/src/stats.rs uses): a quantile or the maximum is reported as the highest value
// equivalent to its bucket, the mean weighs each bucket by its median equivalent value.
// A Histogram is not safe for concurrent use: keep one per goroutine and Merge them.
type Histogram struct {
	counts []uint64
	total  uint64
	maxV   uint64 // the largest value recorded (after clamping); 0 when empty
	// Clamped counts the values recorded as histMaxNs because they were larger.
	Clamped uint64
}

const (
	subBucketBits  = 7
	subBucketCount = 1 << subBucketBits // linear buckets per power of two
	linearLimit    = 2 * subBucketCount // values below are their own bucket
)

// NewHistogram returns an empty histogram covering 0..histMaxNs.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, bucketIndex(histMaxNs)+1)}
}

// bucketIndex is the bucket holding v (v <= histMaxNs).
func bucketIndex(v uint64) int {
	if v < linearLimit {
		return int(v)
	}
	k := bits.Len64(v) - 1 // v is in [2^k, 2^(k+1)), k >= subBucketBits+1
	shift := k - subBucketBits
	sub := int(v>>shift) - subBucketCount
	return linearLimit + (k-subBucketBits-1)*subBucketCount + sub
}

// bucketLow is the lowest value of bucket i, bucketWidth the number of values in it.
func bucketLow(i int) uint64 {
	if i < linearLimit {
		return uint64(i)
	}
	j := i - linearLimit
	shift := j/subBucketCount + 1
	return uint64(subBucketCount+j%subBucketCount) << shift
}

func bucketWidth(i int) uint64 {
	if i < linearLimit {
		return 1
	}
	return 1 << ((i-linearLimit)/subBucketCount + 1)
}

// highestEquivalent is the largest value in v's bucket.
func highestEquivalent(v uint64) uint64 {
	i := bucketIndex(v)
	return bucketLow(i) + bucketWidth(i) - 1
}

// Record counts one value.
func (h *Histogram) Record(v uint64) {
	if v > histMaxNs {
		v = histMaxNs
		h.Clamped++
	}
	h.counts[bucketIndex(v)]++
	h.total++
	if v > h.maxV {
		h.maxV = v
	}
}

// RecordCorrected is HdrHistogram's recordCorrectedValue (Rust: record_correct): it records
// v and, when expected > 0 and v > expected, the values a closed loop would have seen had it
// kept sending every `expected` ns during the stall: v-expected, v-2*expected, … while they
// are >= expected. A clamped v back-fills from histMaxNs.
func (h *Histogram) RecordCorrected(v, expected uint64) {
	if v > histMaxNs {
		v = histMaxNs
		h.Clamped++
	}
	h.Record(v)
	if expected == 0 || v <= expected {
		return
	}
	for missing := v - expected; missing >= expected; missing -= expected {
		h.Record(missing)
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the highest value equivalent to the largest value recorded; 0 when empty.
func (h *Histogram) Max() uint64 {
	if h.total == 0 {
		return 0
	}
	return highestEquivalent(h.maxV)
}

// Mean weighs each bucket by its median equivalent value (lowest + width/2); 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	var sum float64
	for i, c := range h.counts {
		if c != 0 {
			sum += float64(bucketLow(i)+bucketWidth(i)/2) * float64(c)
		}
	}
	return sum / float64(h.total)
}

// ValueAtQuantile is the smallest recorded bucket whose cumulative count reaches
// ceil(q*Count()) (at least 1), reported as its highest equivalent value (its lowest for
// q == 0); q outside 0..1 counts as the nearer end. 0 when empty.
func (h *Histogram) ValueAtQuantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	if q > 1 {
		q = 1
	} else if q < 0 {
		q = 0
	}
	want := uint64(math.Ceil(q * float64(h.total)))
	if want == 0 {
		want = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			if q == 0 {
				return bucketLow(i)
			}
			return bucketLow(i) + bucketWidth(i) - 1
		}
	}
	return h.Max() // not reached: the counts sum to total
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.Clamped += o.Clamped
	if o.maxV > h.maxV {
		h.maxV = o.maxV
	}
}
