//! `tarn-features`: the aggregate kernels of feature views.
//!
//! A feature view keeps, per (view, key), a window of fixed-width time buckets (bucket id =
//! `floor(event_time_us / bucket_width_us)`, computed by the caller) and per bucket one partial
//! state per aggregate: a [`WindowState`]. Events update one bucket
//! ([`WindowState::update`]); a read combines the buckets of an id range
//! ([`WindowState::read`], SIMD over column-wise arrays); expiry drops old buckets
//! ([`WindowState::expire_before`]); checkpoints serialize the state
//! ([`WindowState::encode`], [`WindowState::decode`]).
//!
//! Everything is order-independent and deterministic: the same multiset of events gives
//! bit-identical partial states (and encodings) and results in any arrival order, and
//! combining buckets gives the same bits as one bucket holding all their events (one exception,
//! in favour of exactness, under `count(DISTINCT)` below). An oracle can
//! therefore recompute every feature exactly from raw events; [`exact_sum`] and
//! [`variance_from_sums`] are exported for that.
//!
//! # Aggregate semantics
//!
//! `n` below is the number of non-NULL inputs that passed the aggregate's filter. A value of
//! another type than the declared input type is skipped like NULL.
//!
//! - `count(*)` → BIGINT: events passing the filter (any value, NULL included). `count(col)` →
//!   BIGINT: non-NULL values. Both u64 counters, 0 on an empty range.
//! - `sum(col)` BIGINT → BIGINT: wrapping (two's complement) i64 sum. DOUBLE → DOUBLE: the
//!   exactly rounded (nearest, ties to even) sum of all inputs, computed with a fixed-point
//!   superaccumulator (see [`exact_sum`]); ±infinity when the exact sum is beyond the f64
//!   range; NaN if any input is NaN or both infinities occur; ±infinity if one kind of
//!   infinity occurs; −0.0 only when every input is −0.0. NULL when n = 0.
//! - `min(col)`, `max(col)` over BIGINT, TIMESTAMP, DOUBLE → same type; DOUBLE ordered by
//!   `f64::total_cmp` (−NaN < −inf < … < −0.0 < +0.0 < … < +inf < +NaN; the stored bits are
//!   returned, NaN payloads included). NULL when n = 0.
//! - `avg(col)` BIGINT or DOUBLE → DOUBLE: `S / n` with `S` the exactly rounded sum of the
//!   inputs as f64 (a BIGINT is first converted with `as f64`, rounding to nearest when
//!   |v| > 2^53) and `n as f64`: one rounding for S, one for the division. NULL when n = 0.
//! - `variance`/`stddev` (sample, n − 1 denominator, NULL when n < 2) and `var_pop`/
//!   `stddev_pop` (n denominator, NULL when n = 0) over BIGINT or DOUBLE → DOUBLE: from n, the
//!   exactly rounded `S = Σx` and `Q = Σ(x·x)` (each square rounded once, then exactly summed):
//!   `M2 = max(0, Q − S·S/n)` (evaluated left to right in f64, NaN kept), variance = `M2/(n−1)`
//!   or `M2/n`, stddev = `sqrt(variance)`; see [`variance_from_sums`]. **Limitation:** the
//!   subtraction cancels when the variance is tiny relative to mean²: the absolute error of M2
//!   is about `2^-52 · Q` (one rounding of Q, of S·S/n, and the ≤ 2^-53 relative error of each
//!   rounded square), so when `variance / mean² ≲ 1e-15` the result may be 0 or inaccurate (it
//!   is still deterministic and never negative). Overflowing squares (|x| > ~1.3e154) make Q
//!   infinite and the variance infinite or NaN.
//! - `count(DISTINCT col)`, any type → BIGINT: each bucket keeps the exact sorted set of 64-bit
//!   hashes ([`distinct_hash`]: xxh3 of a canonical encoding; collisions ignored) up to
//!   [`DISTINCT_EXACT_MAX`] = 1024 distinct values, above which that bucket switches to a
//!   HyperLogLog of [`HLL_REGISTERS`] = 4096 one-byte registers ([`HLL_PRECISION`] = 12),
//!   relative standard error [`HLL_STD_ERROR`] = 1.04/√4096 ≈ 1.6%. A read over buckets that are
//!   all exact returns the exact size of their union (even above 1024); if any bucket is a
//!   sketch, everything is folded into one sketch and the HLL estimate (with linear counting
//!   while the raw estimate is ≤ 2.5·4096) is returned. So one bucket holding the events of
//!   several exact buckets may give an estimate where the buckets give the exact count.
//!   NULL is not counted; 0 on an empty range.
//! - `first(col)` / `last(col)`, any type → same type: the value with the smallest / largest
//!   event time; ties on the time are broken by the smallest (first) / largest (last) value in
//!   the total order of its type (BOOLEAN false < true; BIGINT, TIMESTAMP numeric; DOUBLE
//!   `total_cmp`; TEXT and BYTES bytewise lexicographic). NULL inputs are skipped; NULL when
//!   n = 0.
//! - `FILTER (WHERE …)`: the caller passes `None` as the input of an aggregate whose filter
//!   rejects the event.

mod codec;
mod distinct;
mod exact;
mod simd;
mod spec;
mod window;

pub use codec::WINDOW_FORMAT_VERSION;
pub use distinct::{
    distinct_hash, DISTINCT_EXACT_MAX, HLL_PRECISION, HLL_REGISTERS, HLL_STD_ERROR,
};
pub use exact::{exact_sum, variance_from_sums};
pub use simd::simd_level;
pub use spec::{AggKind, AggSpec};
pub use window::{WindowState, MAX_AGGREGATES};
