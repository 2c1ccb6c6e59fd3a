//! Reduction kernels of the window combine, scalar and AVX2.
//!
//! Every kernel is an exact integer reduction (wrapping u64 sum, exact 128-bit sums, i64
//! min/max, OR), so the AVX2 and scalar paths return the same bits by construction; the tests
//! check it anyway. The AVX2 kernels are `#[target_feature(enable = "avx2")]` functions, called
//! only after `is_x86_feature_detected!("avx2")`; the only `unsafe` of the crate is here.

/// Which kernels a read uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernels {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

/// The kernels this CPU supports: AVX2 on x86-64 CPUs that have it, else scalar.
pub(crate) fn detect() -> Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernels::Avx2;
        }
    }
    Kernels::Scalar
}

/// Name of the kernel set [`crate::WindowState::read`] uses on this CPU ("avx2" or "scalar").
pub fn simd_level() -> &'static str {
    match detect() {
        Kernels::Scalar => "scalar",
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx2 => "avx2",
    }
}

/// Below this many elements the scalar loop is at least as fast as a (non-inlined) AVX2 call;
/// the results are the same bits either way.
const SIMD_MIN_LEN: usize = 16;

/// Elements per block of the 128-bit sums: each 64-bit lane accumulates 32-bit halves, so a
/// block must stay below 2^32 additions per lane.
const WIDE_BLOCK: usize = 1 << 30;

impl Kernels {
    /// The kernels to use for a slice of `n` elements.
    #[inline]
    fn for_len(self, n: usize) -> Kernels {
        if n < SIMD_MIN_LEN {
            Kernels::Scalar
        } else {
            self
        }
    }

    /// Wrapping sum (counts; i64 sums are the same bits).
    #[inline]
    pub(crate) fn sum_wrapping(self, xs: &[u64]) -> u64 {
        match self.for_len(xs.len()) {
            Kernels::Scalar => scalar::sum_wrapping(xs),
            // SAFETY: `Kernels::Avx2` is only constructed after AVX2 was detected at runtime.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::sum_wrapping(xs) },
        }
    }

    /// Exact sum of unsigned values.
    #[inline]
    pub(crate) fn sum_wide(self, xs: &[u64]) -> u128 {
        xs.chunks(WIDE_BLOCK)
            .map(|c| match self.for_len(c.len()) {
                Kernels::Scalar => scalar::sum_wide(c),
                // SAFETY: `Kernels::Avx2` is only constructed after AVX2 was detected.
                #[cfg(target_arch = "x86_64")]
                Kernels::Avx2 => unsafe { avx2::sum_wide(c) },
            })
            .fold(0u128, u128::wrapping_add)
    }

    /// Exact sum of the values read as i64.
    #[inline]
    pub(crate) fn sum_signed_wide(self, xs: &[u64]) -> i128 {
        xs.chunks(WIDE_BLOCK)
            .map(|c| match self.for_len(c.len()) {
                Kernels::Scalar => scalar::sum_signed_wide(c),
                // SAFETY: `Kernels::Avx2` is only constructed after AVX2 was detected.
                #[cfg(target_arch = "x86_64")]
                Kernels::Avx2 => unsafe { avx2::sum_signed_wide(c) },
            })
            .fold(0i128, i128::wrapping_add)
    }

    /// Minimum of the values read as i64; `i64::MAX` for an empty slice.
    #[inline]
    pub(crate) fn min_i64(self, xs: &[u64]) -> i64 {
        match self.for_len(xs.len()) {
            Kernels::Scalar => scalar::min_i64(xs),
            // SAFETY: `Kernels::Avx2` is only constructed after AVX2 was detected.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::min_i64(xs) },
        }
    }

    /// Maximum of the values read as i64; `i64::MIN` for an empty slice.
    #[inline]
    pub(crate) fn max_i64(self, xs: &[u64]) -> i64 {
        match self.for_len(xs.len()) {
            Kernels::Scalar => scalar::max_i64(xs),
            // SAFETY: `Kernels::Avx2` is only constructed after AVX2 was detected.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::max_i64(xs) },
        }
    }

    /// Bitwise OR of all values (flag words).
    #[inline]
    pub(crate) fn or_all(self, xs: &[u64]) -> u64 {
        match self.for_len(xs.len()) {
            Kernels::Scalar => scalar::or_all(xs),
            // SAFETY: `Kernels::Avx2` is only constructed after AVX2 was detected.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::or_all(xs) },
        }
    }
}

mod scalar {
    pub(super) fn sum_wrapping(xs: &[u64]) -> u64 {
        xs.iter().fold(0u64, |a, &x| a.wrapping_add(x))
    }

    pub(super) fn sum_wide(xs: &[u64]) -> u128 {
        xs.iter().map(|&x| u128::from(x)).sum()
    }

    pub(super) fn sum_signed_wide(xs: &[u64]) -> i128 {
        xs.iter().map(|&x| i128::from(x as i64)).sum()
    }

    pub(super) fn min_i64(xs: &[u64]) -> i64 {
        xs.iter().map(|&x| x as i64).min().unwrap_or(i64::MAX)
    }

    pub(super) fn max_i64(xs: &[u64]) -> i64 {
        xs.iter().map(|&x| x as i64).max().unwrap_or(i64::MIN)
    }

    pub(super) fn or_all(xs: &[u64]) -> u64 {
        xs.iter().fold(0, |a, &x| a | x)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Loads 4 u64 from `c[at..at + 4]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load(c: &[u64], at: usize) -> __m256i {
        assert!(at + 4 <= c.len());
        // SAFETY: the assert keeps the 32-byte read inside `c`; `loadu` has no alignment
        // requirement.
        unsafe { _mm256_loadu_si256(c.as_ptr().add(at).cast::<__m256i>()) }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn lanes(v: __m256i) -> [u64; 4] {
        [
            _mm256_extract_epi64::<0>(v) as u64,
            _mm256_extract_epi64::<1>(v) as u64,
            _mm256_extract_epi64::<2>(v) as u64,
            _mm256_extract_epi64::<3>(v) as u64,
        ]
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sum_wrapping(xs: &[u64]) -> u64 {
        let mut a = _mm256_setzero_si256();
        let mut b = _mm256_setzero_si256();
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            a = _mm256_add_epi64(a, load(c, 0));
            b = _mm256_add_epi64(b, load(c, 4));
        }
        let l = lanes(_mm256_add_epi64(a, b));
        let mut s = l.iter().fold(0u64, |s, &x| s.wrapping_add(x));
        for &x in rest {
            s = s.wrapping_add(x);
        }
        s
    }

    /// Lane sums of the low and high 32-bit halves (`xs.len()` < 2^32 per lane).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn half_sums(chunks: std::slice::ChunksExact<'_, u64>) -> (__m256i, __m256i, __m256i) {
        let mask = _mm256_set1_epi64x(0xffff_ffff);
        let mut lo = _mm256_setzero_si256();
        let mut hi = _mm256_setzero_si256();
        let mut neg = _mm256_setzero_si256();
        for c in chunks {
            let v = load(c, 0);
            lo = _mm256_add_epi64(lo, _mm256_and_si256(v, mask));
            hi = _mm256_add_epi64(hi, _mm256_srli_epi64::<32>(v));
            neg = _mm256_add_epi64(neg, _mm256_srli_epi64::<63>(v));
        }
        (lo, hi, neg)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sum_wide(xs: &[u64]) -> u128 {
        let chunks = xs.chunks_exact(4);
        let rest = chunks.remainder();
        let (lo, hi, _) = half_sums(chunks);
        let lo: u128 = lanes(lo).iter().map(|&x| u128::from(x)).sum();
        let hi: u128 = lanes(hi).iter().map(|&x| u128::from(x)).sum();
        let r: u128 = rest.iter().map(|&x| u128::from(x)).sum();
        lo + (hi << 32) + r
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn sum_signed_wide(xs: &[u64]) -> i128 {
        let chunks = xs.chunks_exact(4);
        let rest = chunks.remainder();
        let (lo, hi, neg) = half_sums(chunks);
        let lo: u128 = lanes(lo).iter().map(|&x| u128::from(x)).sum();
        let hi: u128 = lanes(hi).iter().map(|&x| u128::from(x)).sum();
        let neg: u128 = lanes(neg).iter().map(|&x| u128::from(x)).sum();
        // Σ as i64 = Σ as u64 − 2^64 · #negative.
        let unsigned = (lo + (hi << 32)) as i128;
        let r: i128 = rest.iter().map(|&x| i128::from(x as i64)).sum();
        unsigned - ((neg as i128) << 64) + r
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn min_i64(xs: &[u64]) -> i64 {
        let mut a = _mm256_set1_epi64x(i64::MAX);
        let mut b = a;
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            let (x, y) = (load(c, 0), load(c, 4));
            // Where a > x take x.
            a = _mm256_blendv_epi8(a, x, _mm256_cmpgt_epi64(a, x));
            b = _mm256_blendv_epi8(b, y, _mm256_cmpgt_epi64(b, y));
        }
        a = _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b));
        let m = lanes(a).iter().map(|&x| x as i64).min().unwrap_or(i64::MAX);
        rest.iter().map(|&x| x as i64).fold(m, i64::min)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn max_i64(xs: &[u64]) -> i64 {
        let mut a = _mm256_set1_epi64x(i64::MIN);
        let mut b = a;
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            let (x, y) = (load(c, 0), load(c, 4));
            // Where x > a take x.
            a = _mm256_blendv_epi8(a, x, _mm256_cmpgt_epi64(x, a));
            b = _mm256_blendv_epi8(b, y, _mm256_cmpgt_epi64(y, b));
        }
        a = _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(b, a));
        let m = lanes(a).iter().map(|&x| x as i64).max().unwrap_or(i64::MIN);
        rest.iter().map(|&x| x as i64).fold(m, i64::max)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn or_all(xs: &[u64]) -> u64 {
        let mut a = _mm256_setzero_si256();
        let chunks = xs.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            a = _mm256_or_si256(a, load(c, 0));
        }
        let m = lanes(a).iter().fold(0, |s, &x| s | x);
        rest.iter().fold(m, |s, &x| s | x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_vec(rng: &mut StdRng, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| match rng.random_range(0..6) {
                0 => u64::MAX,
                1 => 1 << 63,
                2 => i64::MAX as u64,
                3 => rng.random_range(0..10),
                _ => rng.random(),
            })
            .collect()
    }

    /// (wrapping, wide, signed wide, min, max, or); the AVX2 kernels are called directly,
    /// bypassing the short-slice fallback.
    type All = (u64, u128, i128, i64, i64, u64);

    fn all_scalar(xs: &[u64]) -> All {
        (
            scalar::sum_wrapping(xs),
            scalar::sum_wide(xs),
            scalar::sum_signed_wide(xs),
            scalar::min_i64(xs),
            scalar::max_i64(xs),
            scalar::or_all(xs),
        )
    }

    #[cfg(target_arch = "x86_64")]
    fn all_avx2(xs: &[u64]) -> Option<All> {
        if detect() != Kernels::Avx2 {
            return None;
        }
        // SAFETY: AVX2 was detected at runtime just above.
        unsafe {
            Some((
                avx2::sum_wrapping(xs),
                avx2::sum_wide(xs),
                avx2::sum_signed_wide(xs),
                avx2::min_i64(xs),
                avx2::max_i64(xs),
                avx2::or_all(xs),
            ))
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn all_avx2(_: &[u64]) -> Option<All> {
        None
    }

    #[test]
    fn simd_equals_scalar() {
        let simd = detect();
        if simd == Kernels::Scalar {
            eprintln!("no AVX2 on this CPU: only the scalar kernels are exercised");
        }
        let mut rng = StdRng::seed_from_u64(7);
        for n in (0..130).chain([1000, 4099]) {
            for _ in 0..20 {
                let xs = random_vec(&mut rng, n);
                let want = all_scalar(&xs);
                if let Some(got) = all_avx2(&xs) {
                    assert_eq!(got, want, "n = {n}");
                }
                let d = (
                    simd.sum_wrapping(&xs),
                    simd.sum_wide(&xs),
                    simd.sum_signed_wide(&xs),
                    simd.min_i64(&xs),
                    simd.max_i64(&xs),
                    simd.or_all(&xs),
                );
                assert_eq!(d, want, "dispatch, n = {n}");
            }
        }
        assert_eq!(Kernels::Scalar.min_i64(&[]), i64::MAX);
        assert_eq!(simd.max_i64(&[]), i64::MIN);
        for n in [9, 40] {
            let ones = vec![u64::MAX; n];
            assert_eq!(simd.sum_wide(&ones), n as u128 * u128::from(u64::MAX));
            assert_eq!(simd.sum_signed_wide(&ones), -(n as i128));
            let mins = vec![1u64 << 63; n];
            assert_eq!(
                simd.sum_signed_wide(&mins),
                n as i128 * i128::from(i64::MIN)
            );
        }
    }
}
