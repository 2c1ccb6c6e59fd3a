//! Shared by the integration tests: seeded data, a naive f32 search with the same kernels
//! (exact equality expected), and f64 distances (the oracle with error bounds).

#![allow(dead_code)]

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_vectors::{l2_squared, Metric, Neighbor, RowId};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A standard normal sample (Box–Muller), without a distribution crate.
pub fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `n` vectors of `dim` around `clusters` random centres, with some exact duplicates (ties).
pub fn clustered(rng: &mut StdRng, n: usize, dim: usize, clusters: usize) -> Vec<Vec<f32>> {
    let centres: Vec<Vec<f64>> = (0..clusters)
        .map(|_| (0..dim).map(|_| gaussian(rng) * 3.0).collect())
        .collect();
    let mut out: Vec<Vec<f32>> = Vec::with_capacity(n);
    for i in 0..n {
        if i > 0 && rng.random_range(0..20) == 0 {
            let j = rng.random_range(0..i);
            out.push(out[j].clone());
            continue;
        }
        let c = &centres[rng.random_range(0..clusters)];
        out.push(c.iter().map(|&x| (x + gaussian(rng)) as f32).collect());
    }
    out
}

/// A vector with components on a small integer grid: many exact ties in every metric.
pub fn grid(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-2..=2) as f32).collect()
}

/// The ordering key of raw vectors, computed without an index.
pub fn naive_key(metric: Metric, q: &[f32], v: &[f32]) -> f32 {
    match metric {
        Metric::L2 => l2_squared(q, v),
        Metric::Cosine | Metric::InnerProduct => metric.distance(q, v),
    }
}

/// The exact answer over `rows` (raw vectors), computed the obvious way.
pub fn naive_search(
    metric: Metric,
    rows: &BTreeMap<RowId, Vec<f32>>,
    q: &[f32],
    k: usize,
    filter: &dyn Fn(RowId) -> bool,
) -> Vec<Neighbor> {
    let mut all: Vec<Neighbor> = rows
        .iter()
        .filter(|(r, _)| filter(**r))
        .map(|(&row, v)| {
            let key = naive_key(metric, q, v);
            Neighbor {
                row,
                key,
                distance: metric.distance_from_key(key),
            }
        })
        .collect();
    all.sort_by(Neighbor::rank_cmp);
    all.truncate(k);
    all
}

/// Bitwise equality of two result lists, with a readable failure.
pub fn assert_same(got: &[Neighbor], want: &[Neighbor], what: &str) {
    let bits = |v: &[Neighbor]| -> Vec<(RowId, u32, u32)> {
        v.iter()
            .map(|n| (n.row, n.key.to_bits(), n.distance.to_bits()))
            .collect()
    };
    assert_eq!(bits(got), bits(want), "{what}");
}

/// The reported distance in f64 from the raw f32 inputs.
pub fn distance64(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let (a, b): (Vec<f64>, Vec<f64>) = (
        a.iter().map(|&x| f64::from(x)).collect(),
        b.iter().map(|&x| f64::from(x)).collect(),
    );
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    match metric {
        Metric::L2 => a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt(),
        Metric::Cosine => {
            let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            1.0 - (dot / (na * nb)).clamp(-1.0, 1.0)
        }
        Metric::InnerProduct => -dot,
    }
}

/// A bound on |f32 result − f64 result| for one distance of `dim` components: about
/// `2·(dim + 4)` units in the last place of f32 relative to the problem's scale (the sum of
/// |terms|), which the f32 computation (one rounding per subtraction and per fused
/// multiply-add, plus normalization for cosine) cannot exceed.
pub fn tolerance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let u = f64::from(f32::EPSILON) / 2.0;
    let g = 2.0 * (a.len() as f64 + 4.0) * u;
    match metric {
        Metric::L2 => g * distance64(Metric::L2, a, b) + 1e-30,
        Metric::Cosine => g,
        Metric::InnerProduct => {
            g * a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
                .sum::<f64>()
                + 1e-30
        }
    }
}
