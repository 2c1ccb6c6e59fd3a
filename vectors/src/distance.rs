//! f32 kernels: [`dot`], [`l2_squared`], [`norm`], scalar and AVX2+FMA with identical bits.
//!
//! # Accumulation order (both paths)
//!
//! For slices `a`, `b` of length `n`, let `n8 = n − n mod 8`. There are
//! [`ACCUMULATORS`] = 4 accumulators of [`LANES`] = 8 lanes, all starting at +0.0.
//!
//! 1. Element `i < n8` is added into accumulator `(i / 8) mod 4`, lane `i mod 8`, with one
//!    fused multiply-add (`acc = fma(x, y, acc)`, a single rounding), in increasing `i`.
//!    For [`dot`] `x = a[i]`, `y = b[i]`; for [`l2_squared`] `x = y = a[i] − b[i]` (the
//!    difference rounded to f32 first).
//! 2. The accumulators are combined lane by lane as `s = (acc0 + acc1) + (acc2 + acc3)`, then
//!    the 8 lanes as `t[l] = s[l] + s[l + 4]` (l < 4), `u0 = t[0] + t[2]`, `u1 = t[1] + t[3]`,
//!    `r = u0 + u1`.
//! 3. The tail `n8 ≤ i < n` is added to `r` in increasing `i`, one fused multiply-add each.
//!
//! The AVX2 path does exactly this with one 256-bit register per accumulator (`vfmadd231ps`,
//! `vaddps`, the 128-bit halves, `movehl`); the scalar path keeps the same 32 partial sums in
//! an array and uses [`f32::mul_add`], which is a correctly rounded fused multiply-add like
//! `vfmadd` (on x86-64 without FMA compiled in it calls libm's `fmaf`). Every step is one IEEE
//! single-precision operation in round-to-nearest-even, so the two paths return the same bits
//! for every input whose result is not NaN; a NaN result is NaN on both (payloads are not
//! specified). An accumulator never holds −0.0 (it starts at +0.0 and a sum is −0.0 only if
//! both addends are), so results are never −0.0.
//!
//! # Dispatch
//!
//! [`Kernels::detected`] checks `avx2` and `fma` once per process (cached in an atomic, a
//! read-only fact about the CPU) and picks the AVX2+FMA path when both are present, else the
//! scalar path. The free functions use it. The AVX2 functions are
//! `#[target_feature(enable = "avx2,fma")]` and only called through a [`Kernels`] value that
//! proves detection. This module holds the crate's only `unsafe`.

use std::sync::atomic::{AtomicU8, Ordering};

/// Lanes of one accumulator (one 256-bit register of f32).
pub const LANES: usize = 8;

/// Independent accumulators: enough to hide the FMA latency (4 cycles, 2 units) on current
/// x86-64 cores at the dimensions of embeddings.
pub const ACCUMULATORS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

/// A set of kernels: scalar, or AVX2+FMA on a CPU that has both (a value of the AVX2 kind
/// exists only after run-time detection). All sets return the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels(Level);

/// 0: not detected yet; 1: scalar; 2: AVX2+FMA.
static DETECTED: AtomicU8 = AtomicU8::new(0);

impl Kernels {
    /// The portable scalar kernels.
    pub const fn scalar() -> Kernels {
        Kernels(Level::Scalar)
    }

    /// The AVX2+FMA kernels if this CPU has both features, else `None`.
    pub fn avx2_fma() -> Option<Kernels> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Some(Kernels(Level::Avx2Fma));
            }
        }
        None
    }

    /// The fastest kernels this CPU supports, detected on first use and cached.
    #[inline]
    pub fn detected() -> Kernels {
        match DETECTED.load(Ordering::Relaxed) {
            1 => Kernels::scalar(),
            #[cfg(target_arch = "x86_64")]
            2 => Kernels(Level::Avx2Fma),
            _ => {
                let k = Kernels::avx2_fma().unwrap_or(Kernels::scalar());
                let code = match k.0 {
                    Level::Scalar => 1,
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx2Fma => 2,
                };
                DETECTED.store(code, Ordering::Relaxed);
                k
            }
        }
    }

    /// `"avx2+fma"` or `"scalar"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Level::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Level::Avx2Fma => "avx2+fma",
        }
    }

    /// `Σ a[i]·b[i]` in the documented order. Panics if the lengths differ.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot of slices of different lengths");
        match self.0 {
            Level::Scalar => scalar::dot(a, b),
            // SAFETY: `Level::Avx2Fma` is only constructed after AVX2 and FMA were detected.
            #[cfg(target_arch = "x86_64")]
            Level::Avx2Fma => unsafe { avx2::dot(a, b) },
        }
    }

    /// `Σ (a[i] − b[i])²` in the documented order. Panics if the lengths differ.
    #[inline]
    pub fn l2_squared(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(
            a.len(),
            b.len(),
            "l2_squared of slices of different lengths"
        );
        match self.0 {
            Level::Scalar => scalar::l2_squared(a, b),
            // SAFETY: `Level::Avx2Fma` is only constructed after AVX2 and FMA were detected.
            #[cfg(target_arch = "x86_64")]
            Level::Avx2Fma => unsafe { avx2::l2_squared(a, b) },
        }
    }

    /// √(a · a): the square root (correctly rounded) of [`Kernels::dot`]`(a, a)`.
    #[inline]
    pub fn norm(self, a: &[f32]) -> f32 {
        self.dot(a, a).sqrt()
    }
}

/// `Σ a[i]·b[i]` with [`Kernels::detected`]. Panics if the lengths differ.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    Kernels::detected().dot(a, b)
}

/// `Σ (a[i] − b[i])²` with [`Kernels::detected`]. Panics if the lengths differ.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    Kernels::detected().l2_squared(a, b)
}

/// The Euclidean norm √(a · a) with [`Kernels::detected`].
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    Kernels::detected().norm(a)
}

mod scalar {
    use super::{ACCUMULATORS, LANES};

    type Acc = [[f32; LANES]; ACCUMULATORS];

    /// Step 2 of the documented order.
    #[inline]
    fn reduce(acc: &Acc) -> f32 {
        let mut s = [0.0f32; LANES];
        for (l, s) in s.iter_mut().enumerate() {
            *s = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
        }
        let t = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
        let u0 = t[0] + t[2];
        let u1 = t[1] + t[3];
        u0 + u1
    }

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n8 = a.len() - a.len() % LANES;
        let mut acc: Acc = [[0.0; LANES]; ACCUMULATORS];
        let chunks = a[..n8].chunks_exact(LANES).zip(b[..n8].chunks_exact(LANES));
        for (c, (x, y)) in chunks.enumerate() {
            let acc = &mut acc[c % ACCUMULATORS];
            for l in 0..LANES {
                acc[l] = x[l].mul_add(y[l], acc[l]);
            }
        }
        let mut r = reduce(&acc);
        for (x, y) in a[n8..].iter().zip(&b[n8..]) {
            r = x.mul_add(*y, r);
        }
        r
    }

    pub(super) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n8 = a.len() - a.len() % LANES;
        let mut acc: Acc = [[0.0; LANES]; ACCUMULATORS];
        let chunks = a[..n8].chunks_exact(LANES).zip(b[..n8].chunks_exact(LANES));
        for (c, (x, y)) in chunks.enumerate() {
            let acc = &mut acc[c % ACCUMULATORS];
            for l in 0..LANES {
                let d = x[l] - y[l];
                acc[l] = d.mul_add(d, acc[l]);
            }
        }
        let mut r = reduce(&acc);
        for (x, y) in a[n8..].iter().zip(&b[n8..]) {
            let d = x - y;
            r = d.mul_add(d, r);
        }
        r
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{ACCUMULATORS, LANES};
    use std::arch::x86_64::*;

    const BLOCK: usize = LANES * ACCUMULATORS;

    /// Loads 8 f32 from `s[at..at + 8]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load(s: &[f32], at: usize) -> __m256 {
        assert!(at + LANES <= s.len());
        // SAFETY: the assert keeps the 32-byte read inside `s`; `loadu` has no alignment
        // requirement.
        unsafe { _mm256_loadu_ps(s.as_ptr().add(at)) }
    }

    /// Step 2 of the documented order.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn reduce(acc: [__m256; ACCUMULATORS]) -> f32 {
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        // t[l] = s[l] + s[l + 4]
        let t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        // u[0] = t[0] + t[2], u[1] = t[1] + t[3]
        let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
        // r = u[0] + u[1]
        let r = _mm_add_ss(u, _mm_shuffle_ps::<0b01>(u, u));
        _mm_cvtss_f32(r)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n8 = a.len() - a.len() % LANES;
        let (a8, b8) = (&a[..n8], &b[..n8]);
        let mut acc = [_mm256_setzero_ps(); ACCUMULATORS];
        let blocks = a8.chunks_exact(BLOCK).zip(b8.chunks_exact(BLOCK));
        for (x, y) in blocks {
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(load(x, j * LANES), load(y, j * LANES), *acc);
            }
        }
        // Up to three whole chunks of 8 after the last block go to accumulators 0, 1, 2.
        let done = n8 - n8 % BLOCK;
        let rest = a8[done..]
            .chunks_exact(LANES)
            .zip(b8[done..].chunks_exact(LANES));
        for (j, (x, y)) in rest.enumerate() {
            acc[j] = _mm256_fmadd_ps(load(x, 0), load(y, 0), acc[j]);
        }
        let mut r = reduce(acc);
        for (x, y) in a[n8..].iter().zip(&b[n8..]) {
            r = x.mul_add(*y, r);
        }
        r
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n8 = a.len() - a.len() % LANES;
        let (a8, b8) = (&a[..n8], &b[..n8]);
        let mut acc = [_mm256_setzero_ps(); ACCUMULATORS];
        let blocks = a8.chunks_exact(BLOCK).zip(b8.chunks_exact(BLOCK));
        for (x, y) in blocks {
            for (j, acc) in acc.iter_mut().enumerate() {
                let d = _mm256_sub_ps(load(x, j * LANES), load(y, j * LANES));
                *acc = _mm256_fmadd_ps(d, d, *acc);
            }
        }
        let done = n8 - n8 % BLOCK;
        let rest = a8[done..]
            .chunks_exact(LANES)
            .zip(b8[done..].chunks_exact(LANES));
        for (j, (x, y)) in rest.enumerate() {
            let d = _mm256_sub_ps(load(x, 0), load(y, 0));
            acc[j] = _mm256_fmadd_ps(d, d, acc[j]);
        }
        let mut r = reduce(acc);
        for (x, y) in a[n8..].iter().zip(&b[n8..]) {
            let d = x - y;
            r = d.mul_add(d, r);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_cached_and_stable() {
        let first = Kernels::detected();
        assert_eq!(Kernels::detected(), first);
        assert_eq!(Kernels::avx2_fma().unwrap_or(Kernels::scalar()), first);
    }

    #[test]
    fn small_exact_values() {
        for k in [Some(Kernels::scalar()), Kernels::avx2_fma()]
            .into_iter()
            .flatten()
        {
            assert_eq!(k.dot(&[], &[]), 0.0);
            assert_eq!(k.dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
            assert_eq!(k.l2_squared(&[0.0, 0.0], &[3.0, 4.0]), 25.0);
            assert_eq!(k.norm(&[3.0, 4.0]), 5.0);
            let ones = vec![1.0f32; 300];
            assert_eq!(k.dot(&ones, &ones), 300.0);
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn unequal_lengths_panic() {
        dot(&[1.0], &[1.0, 2.0]);
    }
}
