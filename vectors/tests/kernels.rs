//! The scalar and AVX2+FMA kernels return the same bits: on random vectors of every length
//! 0..=300 in several value distributions, and on special values; both follow the documented
//! accumulation order (checked against an independent index-based statement of it).

mod common;

use rand::rngs::StdRng;
use rand::Rng;
use tarn_vectors::{dot, l2_squared, norm, Kernels, ACCUMULATORS, LANES};

/// The kernel sets to compare with the scalar one (none on a CPU without AVX2+FMA).
fn simd() -> Option<Kernels> {
    let k = Kernels::avx2_fma();
    if k.is_none() {
        eprintln!("no AVX2+FMA on this CPU: only the scalar kernels are exercised");
    }
    k
}

fn random_vec(rng: &mut StdRng, n: usize, kind: u32) -> Vec<f32> {
    (0..n)
        .map(|_| match kind {
            // embedding-like
            0 => common::gaussian(rng) as f32,
            // small integers: exact sums, many cancellations
            1 => rng.random_range(-3..=3) as f32,
            // magnitudes from 1e-30 to 1e15 with random signs: rounding everywhere
            2 => {
                let e: f64 = rng.random_range(-30.0..15.0);
                let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
                (s * 10f64.powf(e)) as f32
            }
            // uniform [0, 1)
            _ => rng.random::<f32>(),
        })
        .collect()
}

/// (dot, l2_squared, norm) as bits.
fn all(k: Kernels, a: &[f32], b: &[f32]) -> [u32; 3] {
    [
        k.dot(a, b).to_bits(),
        k.l2_squared(a, b).to_bits(),
        k.norm(a).to_bits(),
    ]
}

#[test]
fn simd_equals_scalar_for_every_length_to_300() {
    let simd = simd();
    let mut rng = common::rng(1);
    for n in 0..=300 {
        for kind in 0..4 {
            for _ in 0..3 {
                let a = random_vec(&mut rng, n, kind);
                let b = random_vec(&mut rng, n, kind);
                let want = all(Kernels::scalar(), &a, &b);
                if let Some(s) = simd {
                    assert_eq!(all(s, &a, &b), want, "n = {n}, kind = {kind}");
                }
                assert_eq!(
                    [
                        dot(&a, &b).to_bits(),
                        l2_squared(&a, &b).to_bits(),
                        norm(&a).to_bits()
                    ],
                    want,
                    "free functions, n = {n}"
                );
            }
        }
    }
}

#[test]
fn simd_equals_scalar_on_special_values() {
    let simd = simd();
    let specials = [
        0.0f32,
        -0.0,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE / 4.0, // subnormal
        -1e-45,                  // smallest subnormal
        1.0,
        -1.0,
        1e16,
        -1e16,
        1e20, // products overflow
        f32::MAX,
        -f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    let mut rng = common::rng(2);
    for n in [1, 7, 8, 9, 31, 32, 33, 64, 100, 257] {
        for _ in 0..200 {
            let pick = |rng: &mut StdRng| specials[rng.random_range(0..specials.len())];
            let a: Vec<f32> = (0..n).map(|_| pick(&mut rng)).collect();
            let b: Vec<f32> = (0..n).map(|_| pick(&mut rng)).collect();
            let Some(s) = simd else { continue };
            for (name, x, y) in [
                ("dot", Kernels::scalar().dot(&a, &b), s.dot(&a, &b)),
                (
                    "l2_squared",
                    Kernels::scalar().l2_squared(&a, &b),
                    s.l2_squared(&a, &b),
                ),
                ("norm", Kernels::scalar().norm(&a), s.norm(&a)),
            ] {
                if x.is_nan() {
                    assert!(y.is_nan(), "{name}: scalar NaN, simd {y}, n = {n}");
                } else {
                    assert_eq!(x.to_bits(), y.to_bits(), "{name}: {x} vs {y}, n = {n}");
                }
            }
        }
    }
}

/// The documented order, stated element by element.
fn spec(a: &[f32], b: &[f32], l2: bool) -> f32 {
    let term = |i: usize| if l2 { a[i] - b[i] } else { a[i] };
    let other = |i: usize| if l2 { a[i] - b[i] } else { b[i] };
    let n8 = a.len() / LANES * LANES;
    let mut acc = [[0.0f32; LANES]; ACCUMULATORS];
    for i in 0..n8 {
        let (j, l) = ((i / LANES) % ACCUMULATORS, i % LANES);
        acc[j][l] = term(i).mul_add(other(i), acc[j][l]);
    }
    let s: Vec<f32> = (0..LANES)
        .map(|l| (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]))
        .collect();
    let t: Vec<f32> = (0..4).map(|l| s[l] + s[l + 4]).collect();
    let mut r = (t[0] + t[2]) + (t[1] + t[3]);
    for i in n8..a.len() {
        r = term(i).mul_add(other(i), r);
    }
    r
}

#[test]
fn kernels_follow_the_documented_order() {
    let mut rng = common::rng(3);
    let kernels: Vec<Kernels> = [Some(Kernels::scalar()), simd()]
        .into_iter()
        .flatten()
        .collect();
    for n in (0..=100).chain([255, 256, 257, 1000]) {
        // Wide magnitudes so that any other order would round differently.
        let a = random_vec(&mut rng, n, 2);
        let b = random_vec(&mut rng, n, 2);
        for k in &kernels {
            assert_eq!(
                k.dot(&a, &b).to_bits(),
                spec(&a, &b, false).to_bits(),
                "{k:?} dot n={n}"
            );
            assert_eq!(
                k.l2_squared(&a, &b).to_bits(),
                spec(&a, &b, true).to_bits(),
                "{k:?} l2 n={n}"
            );
        }
    }
    // The order is observable: 1e8 and −1e8 land in lane 0 of accumulators 0 and 1 and cancel
    // in the reduction, the two 1s in lane 1 survive: 2. Left to right, 1e8 + 1 rounds back
    // to 1e8 and the sum is 1.
    let mut a = [0.0f32; 16];
    (a[0], a[1], a[8], a[9]) = (1e8, 1.0, -1e8, 1.0);
    let ones = [1.0f32; 16];
    let left_to_right = a.iter().fold(0.0f32, |s, &x| x.mul_add(1.0, s));
    assert_eq!(left_to_right, 1.0);
    for k in &kernels {
        assert_eq!(k.dot(&a, &ones), 2.0, "{k:?}");
    }
}

#[test]
fn results_are_never_negative_zero() {
    for k in [Some(Kernels::scalar()), Kernels::avx2_fma()]
        .into_iter()
        .flatten()
    {
        for n in [1, 8, 33, 100] {
            let z = vec![-0.0f32; n];
            let one = vec![1.0f32; n];
            assert_eq!(k.dot(&z, &one).to_bits(), 0.0f32.to_bits());
            assert_eq!(k.dot(&z, &z).to_bits(), 0.0f32.to_bits());
            assert_eq!(k.l2_squared(&z, &z).to_bits(), 0.0f32.to_bits());
            let neg: Vec<f32> = (0..n)
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let even = n - n % 2;
            assert_eq!(
                k.dot(&neg[..even], &one[..even]).to_bits(),
                0.0f32.to_bits()
            );
        }
    }
}

#[test]
fn detected_kernels_name() {
    let k = Kernels::detected();
    assert!(["scalar", "avx2+fma"].contains(&k.name()));
    assert_eq!(Kernels::scalar().name(), "scalar");
}
