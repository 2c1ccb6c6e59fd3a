//! Oracle tests of `ExactIndex` search: against a naive scan with the same kernels (the same
//! bits), against distances recomputed in f64 (the same order up to rounding-level ties,
//! distances within a tight bound), across kernels, and for per-partition merges.

mod common;

use std::collections::BTreeMap;

use common::{assert_same, distance64, naive_search, tolerance};
use rand::Rng;
use tarn_vectors::{
    merge_neighbors, ExactIndex, Index, Kernels, Metric, Neighbor, RowId, SearchParams,
    VectorIndex, MAX_K,
};

const ALL: fn(RowId) -> bool = |_| true;

/// Builds an index of `vectors` under row ids spread over the u64 range (not dense).
fn build(
    metric: Metric,
    kernels: Kernels,
    vectors: &[Vec<f32>],
) -> (Index, BTreeMap<RowId, Vec<f32>>) {
    let dim = vectors[0].len();
    let mut idx = Index::from(ExactIndex::with_kernels(metric, dim, kernels).unwrap());
    let mut rows = BTreeMap::new();
    for (i, v) in vectors.iter().enumerate() {
        let row = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 3;
        assert_eq!(idx.upsert(row, v), Ok(true));
        rows.insert(row, v.clone());
    }
    (idx, rows)
}

/// The checks against f64: count, order, each distance, and that no better row was left out.
fn check_against_f64(
    metric: Metric,
    rows: &BTreeMap<RowId, Vec<f32>>,
    q: &[f32],
    k: usize,
    got: &[Neighbor],
) {
    assert_eq!(got.len(), k.min(rows.len()));
    assert!(got.windows(2).all(|w| w[0].rank_cmp(&w[1]).is_lt()));
    let mut worst_in = f64::NEG_INFINITY;
    let mut max_tol: f64 = 0.0;
    let mut prev: Option<(f64, f64)> = None;
    for n in got {
        let v = &rows[&n.row];
        let (d64, tol) = (distance64(metric, q, v), tolerance(metric, q, v));
        assert!(
            (f64::from(n.distance) - d64).abs() <= tol,
            "{metric}: row {} distance {} vs f64 {d64} (tolerance {tol})",
            n.row,
            n.distance
        );
        if let Some((p64, ptol)) = prev {
            assert!(p64 <= d64 + ptol + tol, "{metric}: out of order");
        }
        prev = Some((d64, tol));
        worst_in = worst_in.max(d64);
        max_tol = max_tol.max(tol);
    }
    let returned: std::collections::HashSet<RowId> = got.iter().map(|n| n.row).collect();
    for (row, v) in rows {
        if returned.contains(row) {
            continue;
        }
        let d64 = distance64(metric, q, v);
        assert!(
            d64 + tolerance(metric, q, v) + max_tol >= worst_in,
            "{metric}: row {row} at {d64} left out while {worst_in} was returned"
        );
    }
}

#[test]
fn exact_search_matches_naive_scan_and_f64_oracle() {
    let mut rng = common::rng(10);
    for metric in Metric::ALL {
        for dim in [1, 3, 8, 31, 64, 100, 128] {
            let n = rng.random_range(300..900);
            let vectors = common::clustered(&mut rng, n, dim, 8);
            let (idx, rows) = build(metric, Kernels::detected(), &vectors);
            for qi in 0..12 {
                let q = if qi % 3 == 0 {
                    vectors[rng.random_range(0..n)].clone() // a stored vector: distance ~0
                } else {
                    common::clustered(&mut rng, 1, dim, 1).remove(0)
                };
                for k in [1, 10, 50, n + 5] {
                    let got = idx.search(&q, k, &ALL, &SearchParams::default()).unwrap();
                    let want = naive_search(metric, &rows, &q, k, &ALL);
                    assert_same(&got, &want, &format!("{metric} dim {dim} k {k}"));
                    check_against_f64(metric, &rows, &q, k, &got);
                }
            }
        }
    }
}

#[test]
fn ties_are_broken_by_row_id() {
    let mut rng = common::rng(11);
    for metric in Metric::ALL {
        // A 3-value grid in 4 dimensions: many rows at exactly equal distances.
        let vectors: Vec<Vec<f32>> = (0..600)
            .map(|_| loop {
                let v = common::grid(&mut rng, 4);
                if v.iter().any(|&x| x != 0.0) {
                    break v;
                }
            })
            .collect();
        let (idx, rows) = build(metric, Kernels::detected(), &vectors);
        for _ in 0..20 {
            let q = vectors[rng.random_range(0..vectors.len())].clone();
            let got = idx.search(&q, 40, &ALL, &SearchParams::default()).unwrap();
            assert_same(&got, &naive_search(metric, &rows, &q, 40, &ALL), "ties");
            let tied = got.windows(2).filter(|w| w[0].key == w[1].key).count();
            assert!(tied > 0, "the grid should produce ties");
            for w in got.windows(2) {
                if w[0].key == w[1].key {
                    assert!(w[0].row < w[1].row);
                }
            }
        }
    }
}

#[test]
fn scalar_and_simd_indexes_return_the_same_bits() {
    let Some(simd) = Kernels::avx2_fma() else {
        eprintln!("no AVX2+FMA: nothing to compare");
        return;
    };
    let mut rng = common::rng(12);
    for metric in Metric::ALL {
        for dim in [5, 64, 130] {
            let vectors = common::clustered(&mut rng, 700, dim, 5);
            let (a, _) = build(metric, Kernels::scalar(), &vectors);
            let (b, _) = build(metric, simd, &vectors);
            for _ in 0..10 {
                let q = common::clustered(&mut rng, 1, dim, 1).remove(0);
                let p = SearchParams::default();
                let x = a.search(&q, 25, &ALL, &p).unwrap();
                let y = b.search(&q, 25, &ALL, &p).unwrap();
                assert_same(&x, &y, &format!("{metric} dim {dim}"));
            }
        }
    }
}

#[test]
fn merging_partitions_equals_one_index() {
    let mut rng = common::rng(13);
    for metric in Metric::ALL {
        let vectors = common::clustered(&mut rng, 1500, 16, 6);
        let (whole, rows) = build(metric, Kernels::detected(), &vectors);
        // Three "shards" over disjoint rows.
        let mut parts: Vec<ExactIndex> = (0..3)
            .map(|_| ExactIndex::new(metric, 16).unwrap())
            .collect();
        for (row, v) in &rows {
            parts[(row % 3) as usize].upsert(*row, v).unwrap();
        }
        for k in [1, 10, 100, MAX_K] {
            let q = common::clustered(&mut rng, 1, 16, 1).remove(0);
            let p = SearchParams::default();
            let lists = parts.iter().map(|i| i.search(&q, k, &ALL, &p).unwrap());
            let merged = merge_neighbors(lists, k);
            assert_same(&merged, &whole.search(&q, k, &ALL, &p).unwrap(), "merge");
        }
    }
}

#[test]
fn reported_distance_and_key() {
    let mut idx = ExactIndex::new(Metric::L2, 2).unwrap();
    idx.upsert(1, &[3.0, 4.0]).unwrap();
    idx.upsert(2, &[0.0, 1.0]).unwrap();
    let got = idx
        .search(&[0.0, 0.0], 2, &ALL, &SearchParams::default())
        .unwrap();
    assert_eq!(
        got,
        vec![
            Neighbor {
                row: 2,
                distance: 1.0,
                key: 1.0
            },
            Neighbor {
                row: 1,
                distance: 5.0,
                key: 25.0
            }
        ]
    );
    let mut ip = ExactIndex::new(Metric::InnerProduct, 2).unwrap();
    ip.upsert(1, &[1.0, 0.0]).unwrap();
    ip.upsert(2, &[10.0, 0.0]).unwrap();
    ip.upsert(3, &[-1.0, 0.0]).unwrap();
    let got = ip
        .search(&[1.0, 0.0], 3, &ALL, &SearchParams::default())
        .unwrap();
    let order: Vec<(RowId, f32)> = got.iter().map(|n| (n.row, n.distance)).collect();
    assert_eq!(order, vec![(2, -10.0), (1, -1.0), (3, 1.0)]);
}
