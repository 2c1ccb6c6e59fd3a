//! Exact, order-independent summation of f64 values: a fixed-point superaccumulator.
//!
//! Every finite f64 is an integer multiple of 2^-1074 (the smallest subnormal):
//! `x = ±m · 2^-1074 · 2^s` with `m < 2^53` and `0 ≤ s ≤ 2045`. A sum of n of them is therefore
//! an integer `N · 2^-1074` with `|N| < n · 2^2098`, held exactly as a two's-complement integer
//! in 64-bit limbs: limb `j` (absolute index, 0 ≤ j < [`MAX_LIMBS`]) weighs 2^(64·j − 1074).
//! Adding a value touches at most two limbs plus a carry; merging two sums is integer addition;
//! the result is rounded to f64 once, at read, with round-to-nearest-even — so the sum is the
//! *exactly rounded* sum of the multiset, whatever the order of additions and merges.
//!
//! A stored sum keeps only a window of limbs (see `crate::window`): values of one key usually
//! span a few binary orders of magnitude, so a bucket's sum takes 1–3 limbs (8–24 bytes), not the
//! 2100+ bits of a dense superaccumulator.
//!
//! NaN and ±infinity are not numbers on this line: they are kept as flags ([`F_NAN`],
//! [`F_PINF`], [`F_NINF`]) merged by OR, and [`finish`] applies IEEE semantics (NaN if any NaN
//! or both infinities, else the infinity). [`F_NONNEGZERO`] records that some input was not
//! −0.0, so that the sum of only −0.0 inputs is −0.0 as in IEEE arithmetic, and +0.0 otherwise.

/// Limbs addressable by a stored sum (absolute indices 0..MAX_LIMBS): 2304 bits, enough for the
/// sum of 2^64 values of magnitude `f64::MAX` (2^2162) with sign.
pub(crate) const MAX_LIMBS: usize = 36;
/// Scratch size: [`MAX_LIMBS`] plus headroom for carries.
pub(crate) const BUF: usize = MAX_LIMBS + 4;

/// Some input was NaN.
pub(crate) const F_NAN: u64 = 1;
/// Some input was +infinity.
pub(crate) const F_PINF: u64 = 2;
/// Some input was −infinity.
pub(crate) const F_NINF: u64 = 4;
/// Some input was not −0.0 (so an all-zero sum is +0.0).
pub(crate) const F_NONNEGZERO: u64 = 8;
/// Flag bits per accumulator.
pub(crate) const ACC_FLAG_BITS: u32 = 4;

/// One f64 as seen by the accumulator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Addend {
    /// Flags only (NaN, ±inf, zeros): no change to the integer.
    Flags(u64),
    /// `±m · 2^(shift − 1074)`, `0 < m < 2^53`; also sets [`F_NONNEGZERO`].
    Finite { m: u64, shift: u32, neg: bool },
}

pub(crate) fn classify(x: f64) -> Addend {
    if x.is_nan() {
        return Addend::Flags(F_NAN | F_NONNEGZERO);
    }
    if x.is_infinite() {
        let f = if x > 0.0 { F_PINF } else { F_NINF };
        return Addend::Flags(f | F_NONNEGZERO);
    }
    let bits = x.to_bits();
    let neg = bits >> 63 == 1;
    let e = ((bits >> 52) & 0x7ff) as u32;
    let frac = bits & ((1u64 << 52) - 1);
    if e == 0 && frac == 0 {
        return Addend::Flags(if neg { 0 } else { F_NONNEGZERO });
    }
    let (m, shift) = if e == 0 {
        (frac, 0)
    } else {
        (frac | (1u64 << 52), e - 1)
    };
    Addend::Finite { m, shift, neg }
}

/// Adds (`neg` = false) or subtracts `m · 2^shift` (in units of 2^-1074) to the two's-complement
/// integer in `buf`, whose limb `i` has absolute index `base + i`, modulo 2^(64·buf.len()).
/// The caller makes sure the window covers limb `shift / 64` and, for an exact result, has a
/// limb of headroom above both operands.
pub(crate) fn add_shifted(buf: &mut [u64], base: usize, m: u64, shift: u32, neg: bool) {
    let k_abs = (shift / 64) as usize;
    let Some(k) = k_abs.checked_sub(base) else {
        return;
    };
    let off = shift % 64;
    let parts = [m << off, if off == 0 { 0 } else { m >> (64 - off) }];
    let mut carry = false;
    for (i, limb) in buf.iter_mut().enumerate().skip(k) {
        let a = parts.get(i - k).copied().unwrap_or(0);
        if i - k >= 2 && !carry {
            break;
        }
        if neg {
            let (d1, b1) = limb.overflowing_sub(a);
            let (d2, b2) = d1.overflowing_sub(u64::from(carry));
            *limb = d2;
            carry = b1 || b2;
        } else {
            let (s1, c1) = limb.overflowing_add(a);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *limb = s2;
            carry = c1 || c2;
        }
    }
}

/// The smallest window `[lo, hi)` (relative limb indices) that represents the two's-complement
/// integer in `limbs` exactly (with sign); `None` when it is zero.
pub(crate) fn minimal_window(limbs: &[u64]) -> Option<(usize, usize)> {
    let lo = limbs.iter().position(|&l| l != 0)?;
    let mut hi = limbs.len();
    while hi > lo + 1 {
        let top = limbs[hi - 1];
        let below_sign = limbs[hi - 2] >> 63;
        if (top == 0 && below_sign == 0) || (top == u64::MAX && below_sign == 1) {
            hi -= 1;
        } else {
            break;
        }
    }
    Some((lo, hi))
}

/// 64 bits of the unsigned integer `mag` (limb `i` at absolute index `base + i`) starting at
/// absolute bit `start`; bits outside the buffer read as 0.
fn bits_at(mag: &[u64], base: usize, start: i64) -> u64 {
    let limb = |w: i64| -> u64 {
        let rel = w - base as i64;
        if rel < 0 || rel >= mag.len() as i64 {
            0
        } else {
            mag[rel as usize]
        }
    };
    let w = start.div_euclid(64);
    let off = start.rem_euclid(64) as u32;
    if off == 0 {
        limb(w)
    } else {
        (limb(w) >> off) | (limb(w + 1) << (64 - off))
    }
}

/// Rounds the two's-complement integer `limbs` (limb `i` weighs 2^(64·(base + i) − 1074)) to the
/// nearest f64, ties to even; ±infinity beyond the f64 range. Zero gives +0.0. `limbs` is used
/// as scratch (negated in place when negative).
pub(crate) fn round_to_f64(limbs: &mut [u64], base: usize) -> f64 {
    let n = limbs.len();
    let neg = n > 0 && limbs[n - 1] >> 63 == 1;
    if neg {
        let mut carry = true;
        for l in limbs.iter_mut() {
            let (v, c) = (!*l).overflowing_add(u64::from(carry));
            *l = v;
            carry = c;
        }
    }
    let mag: &[u64] = limbs;
    let Some(h) = mag.iter().rposition(|&l| l != 0) else {
        return 0.0;
    };
    let bitlen = 64 * (base + h) as i64 + 64 - i64::from(mag[h].leading_zeros());
    let magnitude = if bitlen <= 53 {
        // < 2^53 units of 2^-1074: exactly representable (subnormal or smallest normals).
        bits_at(mag, base, 0) as f64 * f64::from_bits(1)
    } else {
        let mut p = bitlen - 1;
        let top = bits_at(mag, base, p - 63);
        let sticky = {
            let cut = p - 63; // bits below absolute position `cut` are below the 64-bit window
            (cut > 0) && {
                let w = cut.div_euclid(64) - base as i64;
                let off = cut.rem_euclid(64) as u32;
                let full_below = mag
                    .iter()
                    .take(w.clamp(0, n as i64) as usize)
                    .any(|&l| l != 0);
                let partial = w >= 0
                    && (w as usize) < n
                    && off > 0
                    && mag[w as usize] & ((1u64 << off) - 1) != 0;
                full_below || partial
            }
        };
        let mut mant = top >> 11;
        let rem = top & 0x7ff;
        if rem > 0x400 || (rem == 0x400 && (sticky || mant & 1 == 1)) {
            mant += 1;
            if mant == 1u64 << 53 {
                mant >>= 1;
                p += 1;
            }
        }
        let biased = p - 51;
        if biased >= 2047 {
            f64::INFINITY
        } else {
            f64::from_bits(((biased as u64) << 52) | (mant & ((1u64 << 52) - 1)))
        }
    };
    if neg {
        -magnitude
    } else {
        magnitude
    }
}

/// Applies the special-value flags to a rounded finite sum (`rounded` from [`round_to_f64`]).
/// Only meaningful when at least one value was summed.
pub(crate) fn finish(flags: u64, rounded: f64) -> f64 {
    let (pinf, ninf) = (flags & F_PINF != 0, flags & F_NINF != 0);
    if flags & F_NAN != 0 || (pinf && ninf) {
        f64::NAN
    } else if pinf {
        f64::INFINITY
    } else if ninf {
        f64::NEG_INFINITY
    } else if rounded == 0.0 {
        if flags & F_NONNEGZERO == 0 {
            -0.0
        } else {
            0.0
        }
    } else {
        rounded
    }
}

/// The exactly rounded sum of `xs` (IEEE special values as for [`crate::AggKind::Sum`]; the
/// empty sum is +0.0). The same function the `sum`/`avg`/`variance` aggregates use, exposed for
/// oracle tests that recompute features from raw events.
pub fn exact_sum<I: IntoIterator<Item = f64>>(xs: I) -> f64 {
    let mut buf = [0u64; BUF];
    let mut flags = F_NONNEGZERO;
    let mut any = false;
    for x in xs {
        if !any {
            flags = 0;
            any = true;
        }
        match classify(x) {
            Addend::Flags(f) => flags |= f,
            Addend::Finite { m, shift, neg } => {
                flags |= F_NONNEGZERO;
                add_shifted(&mut buf, 0, m, shift, neg);
            }
        }
    }
    finish(flags, round_to_f64(&mut buf, 0))
}

/// Variance from the count `n`, the exactly rounded sum `s` and the exactly rounded sum of
/// squares `q` (each square rounded once): `max(0, q − s·s/n) / (n − 1)` for the sample variance
/// (`None` when n < 2), `/ n` for the population variance (`None` when n = 0). The formula the
/// variance aggregates use, exposed for oracle tests. `max(0, ·)` keeps NaN.
pub fn variance_from_sums(n: u64, s: f64, q: f64, sample: bool) -> Option<f64> {
    if n == 0 || (sample && n < 2) {
        return None;
    }
    let nf = n as f64;
    let m2 = q - s * s / nf;
    let m2 = if m2 < 0.0 { 0.0 } else { m2 };
    Some(if sample { m2 / (nf - 1.0) } else { m2 / nf })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn matches_integer_arithmetic() {
        // Values k·2^e with a shared small exponent: the exact sum fits in i128 and
        // `i128 as f64` is correctly rounded (ties to even).
        let mut rng = StdRng::seed_from_u64(1);
        for round in 0..4000 {
            let e: i32 = rng.random_range(-1074..=900);
            let scale = if e >= -1022 {
                f64::from_bits(((e + 1023) as u64) << 52)
            } else {
                f64::from_bits(1u64 << (e + 1074))
            };
            let n = rng.random_range(1..40);
            let bits = rng.random_range(1..=53);
            let ks: Vec<i64> = (0..n)
                .map(|_| rng.random_range(-(1i64 << bits) + 1..(1i64 << bits)))
                .collect();
            // |k| < 2^53: k as f64 and k·2^e are exact; the i128 total rounds once when
            // converted, and scaling by 2^e is exact (the result is normal or < 2^53 units).
            let xs: Vec<f64> = ks.iter().map(|&k| k as f64 * scale).collect();
            let total: i128 = ks.iter().map(|&k| i128::from(k)).sum();
            let want = (total as f64) * scale;
            let got = exact_sum(xs.iter().copied());
            assert!(
                same(got, want),
                "round {round}: {got:e} vs {want:e} for {xs:?}"
            );
        }
    }

    #[test]
    fn special_values_and_overflow() {
        let m = f64::MAX;
        assert_eq!(exact_sum([m, m]), f64::INFINITY);
        assert_eq!(exact_sum([-m, -m]), f64::NEG_INFINITY);
        assert_eq!(exact_sum([m, m, -m]), m);
        assert_eq!(exact_sum([m, 1.0, -m]), 1.0);
        assert!(exact_sum([1.0, f64::NAN]).is_nan());
        assert!(exact_sum([f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(exact_sum([f64::INFINITY, -m, 3.0]), f64::INFINITY);
        assert_eq!(exact_sum([f64::NEG_INFINITY]), f64::NEG_INFINITY);
        assert!(same(exact_sum([-0.0, -0.0]), -0.0));
        assert!(same(exact_sum([-0.0, 0.0]), 0.0));
        assert!(same(exact_sum([1.0, -1.0]), 0.0));
        assert!(same(exact_sum(std::iter::empty()), 0.0));
        // 1 + 2^-53 + 2^-53·tiny: ties broken by sticky bits far below.
        let tiny = f64::from_bits(1);
        assert_eq!(exact_sum([1.0, 2f64.powi(-53), tiny]), 1.0 + f64::EPSILON);
        assert_eq!(exact_sum([1.0, 2f64.powi(-53)]), 1.0);
        assert_eq!(
            exact_sum([1.0 + f64::EPSILON, 2f64.powi(-53)]),
            1.0 + 2.0 * f64::EPSILON
        );
        // Largest finite boundary: MAX + half an ulp rounds to infinity, just below does not.
        let half_ulp = 2f64.powi(970);
        assert_eq!(exact_sum([m, half_ulp]), f64::INFINITY);
        assert_eq!(exact_sum([m, half_ulp, -tiny]), m);
        // Subnormals add exactly.
        assert_eq!(exact_sum([tiny, tiny, tiny]), f64::from_bits(3));
        assert_eq!(
            exact_sum([f64::MIN_POSITIVE, -tiny]),
            f64::from_bits((1 << 52) - 1)
        );
    }

    #[test]
    fn windows() {
        assert_eq!(minimal_window(&[0, 0]), None);
        assert_eq!(minimal_window(&[5, 0, 0]), Some((0, 1)));
        assert_eq!(minimal_window(&[u64::MAX, u64::MAX]), Some((0, 1)));
        assert_eq!(minimal_window(&[1 << 63, 0]), Some((0, 2)));
        assert_eq!(minimal_window(&[0, u64::MAX, u64::MAX]), Some((1, 2)));
        assert_eq!(minimal_window(&[0, 1 << 63, u64::MAX]), Some((1, 2)));
        assert_eq!(minimal_window(&[0, 1 << 62, u64::MAX]), Some((1, 3)));
    }

    #[test]
    fn variance_formula() {
        assert_eq!(variance_from_sums(0, 0.0, 0.0, false), None);
        assert_eq!(variance_from_sums(1, 2.0, 4.0, true), None);
        assert_eq!(variance_from_sums(1, 2.0, 4.0, false), Some(0.0));
        // 1, 2, 3, 4: S = 10, Q = 30, M2 = 5.
        assert_eq!(variance_from_sums(4, 10.0, 30.0, true), Some(5.0 / 3.0));
        assert_eq!(variance_from_sums(4, 10.0, 30.0, false), Some(1.25));
        assert!(variance_from_sums(2, f64::NAN, 1.0, true).unwrap().is_nan());
    }
}
