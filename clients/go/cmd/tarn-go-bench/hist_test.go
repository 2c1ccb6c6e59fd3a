package main

import (
	"math"
	"math/rand"
	"testing"
)

// within1pct checks got against want: HDR semantics report a bucket's highest equivalent
// value, so got is at least want and less than 1 % above it.
func within1pct(t *testing.T, what string, got, want uint64) {
	t.Helper()
	if got < want || float64(got-want) > 0.01*float64(want) {
		t.Errorf("%s = %d, want %d (+1%%)", what, got, want)
	}
}

// TestBuckets: the buckets tile 0..histMaxNs without gaps, each at most 1/128 of its values
// wide above the exact range.
func TestBuckets(t *testing.T) {
	n := bucketIndex(histMaxNs) + 1
	if len(NewHistogram().counts) != n {
		t.Fatalf("%d buckets, want %d", len(NewHistogram().counts), n)
	}
	for i := 0; i < n; i++ {
		lo, w := bucketLow(i), bucketWidth(i)
		if bucketIndex(lo) != i || (lo+w-1 <= histMaxNs && bucketIndex(lo+w-1) != i) {
			t.Fatalf("bucket %d [%d, %d] does not map back to itself", i, lo, lo+w-1)
		}
		if i+1 < n && bucketLow(i+1) != lo+w {
			t.Fatalf("gap after bucket %d: next starts at %d, not %d", i, bucketLow(i+1), lo+w)
		}
		if lo >= linearLimit && float64(w)/float64(lo) > 1.0/subBucketCount {
			t.Fatalf("bucket %d: width %d is more than 1/128 of %d", i, w, lo)
		}
	}
	if w := bucketWidth(0); w != 1 || highestEquivalent(255) != 255 {
		t.Errorf("values below %d must be exact", linearLimit)
	}
}

// TestUniformQuantiles: 1..100000 µs, once each.
func TestUniformQuantiles(t *testing.T) {
	h := NewHistogram()
	const n = 100_000
	for us := uint64(1); us <= n; us++ {
		h.Record(us * 1000)
	}
	if h.Count() != n {
		t.Fatalf("count %d", h.Count())
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		want := uint64(math.Ceil(q*n)) * 1000 // the ceil(q*n)-th smallest value
		within1pct(t, "quantile", h.ValueAtQuantile(q), want)
	}
	within1pct(t, "max", h.Max(), n*1000)
	if m := h.Mean(); math.Abs(m-50_000.5e3) > 0.01*50_000.5e3 {
		t.Errorf("mean %v, want 50000.5 µs ±1%%", m)
	}
	if got := h.ValueAtQuantile(0); got > 1000 || got < 990 {
		t.Errorf("quantile 0 = %d: the lowest equivalent of 1 µs", got)
	}
}

func TestSingleValue(t *testing.T) {
	h := NewHistogram()
	const v = 1_234_567
	h.Record(v)
	for _, q := range []float64{0, 0.5, 0.99, 1, 2} {
		if got := h.ValueAtQuantile(q); got > highestEquivalent(v) ||
			float64(v)-float64(got) > 0.01*v {
			t.Errorf("quantile %v = %d, want within 1%% of %d", q, got, v)
		}
	}
	within1pct(t, "p50", h.ValueAtQuantile(0.5), v)
	within1pct(t, "max", h.Max(), v)
	if m := h.Mean(); math.Abs(m-v) > 0.01*v {
		t.Errorf("mean %v", m)
	}
}

func TestTwoValues(t *testing.T) {
	h := NewHistogram()
	h.Record(1_000_000)
	h.Record(1000)
	// ceil(0.5 * 2) = 1: the median is the smaller value; anything above it is the larger.
	within1pct(t, "p50", h.ValueAtQuantile(0.5), 1000)
	within1pct(t, "p51", h.ValueAtQuantile(0.51), 1_000_000)
	within1pct(t, "p99", h.ValueAtQuantile(0.99), 1_000_000)
	within1pct(t, "max", h.Max(), 1_000_000)
	if m := h.Mean(); math.Abs(m-500_500) > 0.01*500_500 {
		t.Errorf("mean %v", m)
	}
}

func TestEmpty(t *testing.T) {
	h := NewHistogram()
	if h.Count() != 0 || h.Max() != 0 || h.Mean() != 0 || h.ValueAtQuantile(0.5) != 0 {
		t.Errorf("an empty histogram reports zeros")
	}
}

// TestRecordCorrected: values below 256 ns have their own bucket, so every back-filled value
// is visible. HdrHistogram (Java recordCorrectedValue, Rust record_correct) back-fills
// v-e, v-2e, … while the value is >= e.
func TestRecordCorrected(t *testing.T) {
	for _, c := range []struct {
		v, expected uint64
		want        []uint64
	}{
		{100, 30, []uint64{100, 70, 40}},
		{90, 30, []uint64{90, 60, 30}}, // 30 >= 30 is back-filled
		{30, 30, []uint64{30}},
		{29, 30, []uint64{29}},
		{100, 0, []uint64{100}}, // no interval: no correction
		{200, 1, nil},           // 200, 199, …, 1
	} {
		h := NewHistogram()
		h.RecordCorrected(c.v, c.expected)
		want := NewHistogram()
		if c.want == nil {
			for x := uint64(1); x <= c.v; x++ {
				want.Record(x)
			}
		}
		for _, x := range c.want {
			want.Record(x)
		}
		if !sameCounts(h, want) {
			t.Errorf("RecordCorrected(%d, %d): %d values, want %v", c.v, c.expected,
				h.Count(), c.want)
		}
	}
	// The stall of bench/src/stats.rs's test: 10 ms at a 1 ms interval back-fills 9..1 ms.
	h := NewHistogram()
	h.RecordCorrected(10_000_000, 1_000_000)
	if h.Count() != 10 {
		t.Errorf("10 ms at 1 ms: %d values, want 10", h.Count())
	}
	within1pct(t, "min", h.ValueAtQuantile(0.1), 1_000_000)
}

func sameCounts(a, b *Histogram) bool {
	if a.Count() != b.Count() || a.Max() != b.Max() || a.Clamped != b.Clamped {
		return false
	}
	for i := range a.counts {
		if a.counts[i] != b.counts[i] {
			return false
		}
	}
	return true
}

func TestMergeEqualsOneHistogram(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	all, parts := NewHistogram(), []*Histogram{NewHistogram(), NewHistogram(), NewHistogram()}
	for i := 0; i < 20_000; i++ {
		v := uint64(rng.ExpFloat64() * 200_000)
		all.Record(v)
		parts[i%len(parts)].Record(v)
	}
	all.RecordCorrected(5_000_000, 400_000)
	parts[1].RecordCorrected(5_000_000, 400_000)
	merged := NewHistogram()
	for _, p := range parts {
		merged.Merge(p)
	}
	if !sameCounts(merged, all) {
		t.Fatal("merged histogram differs from recording everything in one")
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if merged.ValueAtQuantile(q) != all.ValueAtQuantile(q) {
			t.Errorf("quantile %v differs", q)
		}
	}
	if merged.Mean() != all.Mean() {
		t.Errorf("mean differs")
	}
}

// TestClamp: values above histMaxNs count as histMaxNs instead of panicking.
func TestClamp(t *testing.T) {
	h := NewHistogram()
	h.Record(histMaxNs + 1)
	h.Record(math.MaxUint64)
	h.Record(histMaxNs)
	if h.Count() != 3 || h.Clamped != 2 {
		t.Fatalf("count %d clamped %d, want 3 and 2", h.Count(), h.Clamped)
	}
	within1pct(t, "max", h.Max(), histMaxNs)
	within1pct(t, "p50", h.ValueAtQuantile(0.5), histMaxNs)
	c := NewHistogram()
	c.RecordCorrected(math.MaxUint64, histMaxNs/2)
	if c.Clamped != 1 || c.Count() != 2 {
		t.Errorf("corrected clamp: count %d clamped %d, want 2 and 1", c.Count(), c.Clamped)
	}
}
