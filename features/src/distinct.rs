//! `count(DISTINCT col)`: per bucket an exact set of 64-bit value hashes, switching to a
//! HyperLogLog sketch above [`DISTINCT_EXACT_MAX`] distinct hashes.

use tarn_types::Value;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Largest number of distinct hashes a bucket keeps exactly (a sorted `Vec<u64>`, at most
/// 8 KiB). The insertion that would make it `DISTINCT_EXACT_MAX + 1` switches that bucket to a
/// HyperLogLog sketch of [`HLL_REGISTERS`] bytes. The switch depends only on the bucket's set
/// of hashes, so it is order-independent; so is the sketch (register updates are `max`).
pub const DISTINCT_EXACT_MAX: usize = 1024;

/// HyperLogLog precision: the top `HLL_PRECISION` bits of a hash pick the register.
pub const HLL_PRECISION: u32 = 12;

/// HyperLogLog registers (one byte each): 2^[`HLL_PRECISION`] = 4096, so a sketch takes 4 KiB.
pub const HLL_REGISTERS: usize = 1 << HLL_PRECISION;

/// Relative standard error of the HyperLogLog estimate: 1.04 / sqrt(4096) = 1.625%. About 95%
/// of estimates fall within 2 standard errors (3.25%) and practically all within 4 (6.5%).
/// The small-range correction (linear counting while the raw estimate is ≤ 2.5 · 4096) is
/// more accurate than this; no large-range correction is needed with 64-bit hashes.
pub const HLL_STD_ERROR: f64 = 1.04 / 64.0;

/// Largest register value: rank of the first 1 bit in the remaining 52 bits, + 1.
pub(crate) const HLL_MAX_RANK: u8 = (64 - HLL_PRECISION + 1) as u8;

/// The hash `count(DISTINCT)` counts: xxh3-64 of a canonical byte encoding of the value, seeded
/// with the value's type tag (so `1` as BIGINT and as TIMESTAMP differ). Payloads: BOOLEAN one
/// byte 0/1; BIGINT and TIMESTAMP 8 bytes little-endian; DOUBLE the 8 bytes little-endian of its
/// bits after mapping −0.0 to +0.0 and every NaN to the canonical quiet NaN (SQL equality:
/// `0.0 = -0.0`, all NaNs one value); TEXT its UTF-8 bytes; BYTES the bytes; VECTOR its components' bits. NULL has no hash.
///
/// Two distinct values whose hashes collide count once; with 64-bit hashes the chance is about
/// n² / 2^65 (≈ 3·10⁻⁸ for a million distinct values) and is ignored.
pub fn distinct_hash(v: &Value) -> Option<u64> {
    let h = match v {
        Value::Null => return None,
        Value::Bool(b) => xxh3_64_with_seed(&[u8::from(*b)], 1),
        Value::Int(i) => xxh3_64_with_seed(&i.to_le_bytes(), 2),
        Value::Double(d) => {
            let bits = if d.is_nan() {
                f64::NAN.to_bits()
            } else if *d == 0.0 {
                0
            } else {
                d.to_bits()
            };
            xxh3_64_with_seed(&bits.to_le_bytes(), 3)
        }
        Value::Text(s) => xxh3_64_with_seed(s.as_bytes(), 4),
        Value::Bytes(b) => xxh3_64_with_seed(b, 5),
        Value::Timestamp(t) => xxh3_64_with_seed(&t.to_le_bytes(), 6),
        // Core refuses aggregates over VECTOR columns; the hash stays total anyway (component
        // bits little-endian) so this function never panics on a value it is handed.
        Value::Vector(v) => {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect();
            xxh3_64_with_seed(&bytes, 7)
        }
    };
    Some(h)
}

/// One bucket's distinct state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DistinctSet {
    /// Sorted, without duplicates, at most [`DISTINCT_EXACT_MAX`] entries.
    Exact(Vec<u64>),
    /// HyperLogLog registers.
    Hll(Box<[u8; HLL_REGISTERS]>),
}

impl Default for DistinctSet {
    fn default() -> Self {
        DistinctSet::Exact(Vec::new())
    }
}

#[inline]
pub(crate) fn hll_add(regs: &mut [u8; HLL_REGISTERS], h: u64) {
    let idx = (h >> (64 - HLL_PRECISION)) as usize;
    let w = h << HLL_PRECISION;
    let rank = (w.leading_zeros() + 1).min(u32::from(HLL_MAX_RANK)) as u8;
    if regs[idx] < rank {
        regs[idx] = rank;
    }
}

/// The HyperLogLog estimate (Flajolet et al. 2007, with linear counting for small ranges).
/// Σ 2^−M[j] is computed exactly in integers, so the estimate is a pure function of the
/// registers.
pub(crate) fn hll_estimate(regs: &[u8; HLL_REGISTERS]) -> i64 {
    let m = HLL_REGISTERS as f64;
    let mut zeros = 0u32;
    let mut sum: u128 = 0; // Σ 2^(64 − M[j])
    for &r in regs.iter() {
        zeros += u32::from(r == 0);
        sum += 1u128 << (64 - u32::from(r.min(64)));
    }
    let sum = sum as f64 / 18_446_744_073_709_551_616.0; // / 2^64, exact scaling
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let mut e = alpha * m * m / sum;
    if e <= 2.5 * m && zeros > 0 {
        e = m * (m / f64::from(zeros)).ln();
    }
    e.round() as i64
}

impl DistinctSet {
    pub(crate) fn insert(&mut self, h: u64) {
        match self {
            DistinctSet::Exact(v) => match v.binary_search(&h) {
                Ok(_) => {}
                Err(pos) if v.len() < DISTINCT_EXACT_MAX => {
                    if v.len() == v.capacity() {
                        // Grow by a quarter: a bucket with few values stays small.
                        v.reserve_exact((v.len() / 4).max(4));
                    }
                    v.insert(pos, h);
                }
                Err(_) => {
                    let mut regs = Box::new([0u8; HLL_REGISTERS]);
                    for &x in v.iter() {
                        hll_add(&mut regs, x);
                    }
                    hll_add(&mut regs, h);
                    *self = DistinctSet::Hll(regs);
                }
            },
            DistinctSet::Hll(regs) => hll_add(regs, h),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            DistinctSet::Exact(v) => v.capacity() * 8,
            DistinctSet::Hll(_) => HLL_REGISTERS,
        }
    }
}

/// Combines bucket states: the exact size of the union when every set is exact, else the HLL
/// estimate of the union of everything.
pub(crate) fn combine<'a>(sets: impl Iterator<Item = &'a DistinctSet> + Clone) -> i64 {
    let mut exact = true;
    let mut total = 0usize;
    let mut nonempty = 0usize;
    let mut single: Option<usize> = None;
    for s in sets.clone() {
        match s {
            DistinctSet::Exact(v) => {
                total += v.len();
                if !v.is_empty() {
                    nonempty += 1;
                    single = Some(v.len());
                }
            }
            DistinctSet::Hll(_) => exact = false,
        }
    }
    if exact {
        if nonempty <= 1 {
            return single.unwrap_or(0) as i64;
        }
        let mut all = Vec::with_capacity(total);
        for s in sets {
            if let DistinctSet::Exact(v) = s {
                all.extend_from_slice(v);
            }
        }
        all.sort_unstable();
        all.dedup();
        return all.len() as i64;
    }
    let mut regs = [0u8; HLL_REGISTERS];
    for s in sets {
        match s {
            DistinctSet::Exact(v) => {
                for &h in v {
                    hll_add(&mut regs, h);
                }
            }
            DistinctSet::Hll(r) => {
                for (a, &b) in regs.iter_mut().zip(r.iter()) {
                    *a = (*a).max(b);
                }
            }
        }
    }
    hll_estimate(&regs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u64) -> u64 {
        distinct_hash(&Value::Int(i as i64)).unwrap()
    }

    #[test]
    fn canonical_hashes() {
        assert_eq!(distinct_hash(&Value::Null), None);
        assert_eq!(
            distinct_hash(&Value::Double(0.0)),
            distinct_hash(&Value::Double(-0.0))
        );
        assert_eq!(
            distinct_hash(&Value::Double(f64::NAN)),
            distinct_hash(&Value::Double(-f64::NAN))
        );
        assert_ne!(
            distinct_hash(&Value::Int(1)),
            distinct_hash(&Value::Timestamp(1))
        );
        assert_ne!(
            distinct_hash(&Value::Text("a".into())),
            distinct_hash(&Value::Bytes(b"a".to_vec()))
        );
    }

    #[test]
    fn exact_then_hll() {
        let mut s = DistinctSet::default();
        for i in 0..DISTINCT_EXACT_MAX as u64 {
            s.insert(h(i));
            s.insert(h(i));
        }
        assert!(matches!(&s, DistinctSet::Exact(v) if v.len() == DISTINCT_EXACT_MAX));
        assert_eq!(combine([&s].into_iter()), DISTINCT_EXACT_MAX as i64);
        s.insert(h(0));
        assert!(matches!(s, DistinctSet::Exact(_)));
        s.insert(h(DISTINCT_EXACT_MAX as u64));
        assert!(matches!(s, DistinctSet::Hll(_)));
        let est = combine([&s].into_iter());
        let n = DISTINCT_EXACT_MAX as f64 + 1.0;
        assert!(((est as f64) - n).abs() <= 4.0 * HLL_STD_ERROR * n, "{est}");
    }

    #[test]
    fn hll_accuracy() {
        for (seed, n) in [
            (1u64, 2_000u64),
            (2, 6_000),
            (3, 12_000),
            (4, 50_000),
            (5, 300_000),
        ] {
            let mut regs = Box::new([0u8; HLL_REGISTERS]);
            for i in 0..n {
                hll_add(&mut regs, h(i ^ (seed << 40)));
            }
            let est = hll_estimate(&regs) as f64;
            let err = (est - n as f64).abs() / n as f64;
            assert!(err <= 4.0 * HLL_STD_ERROR, "n={n} est={est} err={err}");
        }
        assert_eq!(hll_estimate(&[0u8; HLL_REGISTERS]), 0);
    }

    #[test]
    fn exact_union_beyond_threshold() {
        let a = DistinctSet::Exact((0..1000).map(h).collect::<Vec<_>>().tap_sort());
        let b = DistinctSet::Exact((500..1500).map(h).collect::<Vec<_>>().tap_sort());
        assert_eq!(combine([&a, &b].into_iter()), 1500);
    }

    trait TapSort {
        fn tap_sort(self) -> Self;
    }
    impl TapSort for Vec<u64> {
        fn tap_sort(mut self) -> Self {
            self.sort_unstable();
            self
        }
    }
}
