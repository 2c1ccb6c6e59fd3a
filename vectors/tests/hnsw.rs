//! The HNSW index's rules: parameter errors, writes against a model (never a stale or deleted
//! row), reachability after interleaved writes, determinism, snapshots of stepwise searches,
//! and the stepwise rebuild.

mod common;

use std::collections::BTreeMap;

use common::{gaussian, rng};
use rand::rngs::StdRng;
use rand::Rng;
use tarn_vectors::{
    HnswIndex, HnswParams, Index, Metric, RebuildStep, RowId, SearchParams, Step, VectorError,
    VectorIndex,
};

fn vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| gaussian(rng) as f32).collect()
}

fn index(metric: Metric, dim: usize) -> HnswIndex {
    HnswIndex::new(metric, dim, HnswParams::default()).unwrap()
}

#[test]
fn parameters_out_of_range_are_refused_naming_the_parameter() {
    let p = HnswParams::default();
    let cases = [
        (
            HnswParams { m: 1, ..p },
            "m = 1 is out of range: must be 2..=100",
        ),
        (
            HnswParams {
                m: 101,
                ef_construction: 200,
                ..p
            },
            "m = 101 is out of range: must be 2..=100",
        ),
        (
            HnswParams {
                ef_construction: 3,
                m: 2,
                ..p
            },
            "ef_construction = 3 is out of range: must be 4..=1000",
        ),
        (
            HnswParams {
                ef_construction: 1001,
                ..p
            },
            "ef_construction = 1001 is out of range: must be 4..=1000",
        ),
        (
            HnswParams { ef_search: 0, ..p },
            "ef_search = 0 is out of range: must be 1..=1000",
        ),
        (
            HnswParams {
                ef_search: 1001,
                ..p
            },
            "ef_search = 1001 is out of range: must be 1..=1000",
        ),
        (
            HnswParams {
                m: 32,
                ef_construction: 20,
                ..p
            },
            "ef_construction = 20 is smaller than m = 32: it must be at least m",
        ),
    ];
    for (params, message) in cases {
        let err = HnswIndex::new(Metric::L2, 8, params).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    assert!(matches!(
        HnswIndex::new(Metric::L2, 0, p),
        Err(VectorError::DimensionsOutOfRange { dim: 0, .. })
    ));
}

#[test]
fn bad_queries_and_vectors_are_refused_and_change_nothing() {
    let mut idx = index(Metric::Cosine, 4);
    idx.upsert(1, &[1.0, 0.0, 0.0, 0.0]).unwrap();
    let digest = idx.digest();
    let q = [1.0, 1.0, 0.0, 0.0];
    let none = &|_| true;
    for ef in [0, 1001] {
        let err = idx
            .search(&q, 1, none, &SearchParams { ef: Some(ef) })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("ef = {ef} is out of range: must be 1..=1000")
        );
    }
    for k in [0, 1001] {
        let err = idx
            .search(&q, k, none, &SearchParams::default())
            .unwrap_err();
        assert_eq!(err, VectorError::KOutOfRange { k, max: 1000 });
    }
    assert!(matches!(
        idx.upsert(2, &[1.0, 2.0]),
        Err(VectorError::DimensionMismatch {
            expected: 4,
            got: 2
        })
    ));
    assert!(matches!(
        idx.upsert(2, &[1.0, f32::NAN, 0.0, 0.0]),
        Err(VectorError::NonFinite { index: 1, .. })
    ));
    assert_eq!(idx.upsert(1, &[0.0; 4]), Err(VectorError::ZeroVector));
    assert_eq!(
        idx.search(&[0.0; 4], 1, none, &SearchParams::default())
            .unwrap_err(),
        VectorError::ZeroVector
    );
    assert_eq!(idx.digest(), digest, "refused writes change nothing");
    assert_eq!(idx.len(), 1);
}

/// Random upserts, updates and deletes on `rows` rows, mirrored in a model.
fn churn(
    idx: &mut HnswIndex,
    model: &mut BTreeMap<RowId, Vec<f32>>,
    rng: &mut StdRng,
    ops: usize,
    rows: u64,
) {
    let dim = idx.dim();
    for _ in 0..ops {
        let row = rng.random_range(0..rows);
        if rng.random_range(0..4) == 0 {
            assert_eq!(idx.delete(row), model.remove(&row).is_some());
        } else {
            let v = vector(rng, dim);
            assert_eq!(idx.upsert(row, &v).unwrap(), !model.contains_key(&row));
            model.insert(row, v);
        }
    }
}

fn check_against_model(idx: &HnswIndex, model: &BTreeMap<RowId, Vec<f32>>, what: &str) {
    idx.check_invariants()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(idx.len(), model.len(), "{what}");
    for (row, v) in model {
        let prepared = idx.metric().prepare(v, v.len()).unwrap();
        assert_eq!(idx.vector(*row), Some(&prepared[..]), "{what}: row {row}");
    }
    assert_eq!(
        idx.unreachable_rows(),
        Vec::<RowId>::new(),
        "{what}: unreachable rows"
    );
    // Every live row is found by a k = 1 search for its own vector (the vectors are
    // continuous gaussians: no two are equal), and nothing dead is ever returned.
    let params = SearchParams { ef: Some(128) };
    for (row, v) in model {
        let got = idx.search(v, 1, &|_| true, &params).unwrap();
        assert_eq!(got[0].row, *row, "{what}: self-search of row {row}");
    }
    let mut r = rng(7);
    for _ in 0..50 {
        let q = vector(&mut r, idx.dim());
        for n in idx.search(&q, 20, &|_| true, &params).unwrap() {
            let v = model
                .get(&n.row)
                .unwrap_or_else(|| panic!("{what}: dead row {} returned", n.row));
            let prepared = idx.metric().prepare(v, v.len()).unwrap();
            let pq = idx.metric().prepare(&q, q.len()).unwrap();
            assert_eq!(
                n.key,
                idx.metric().key(idx.kernels(), &pq, &prepared),
                "{what}: stale vector of row {}",
                n.row
            );
        }
    }
}

#[test]
fn writes_match_a_model_and_every_live_row_stays_reachable() {
    for metric in [Metric::L2, Metric::Cosine] {
        let mut r = rng(11);
        let mut idx = HnswIndex::new(
            metric,
            24,
            HnswParams {
                m: 8,
                ef_construction: 32,
                ..HnswParams::default()
            },
        )
        .unwrap();
        let mut model = BTreeMap::new();
        churn(&mut idx, &mut model, &mut r, 6_000, 3_000);
        check_against_model(&idx, &model, metric.name());
        assert!(idx.tombstones() > 0);
    }
}

#[test]
fn the_same_writes_build_the_same_graph() {
    let build = |seed: u64| {
        let mut r = rng(3);
        let mut idx = HnswIndex::new(
            Metric::L2,
            16,
            HnswParams {
                seed,
                ..HnswParams::default()
            },
        )
        .unwrap();
        churn(&mut idx, &mut BTreeMap::new(), &mut r, 2_000, 1_000);
        idx.digest()
    };
    assert_eq!(build(0), build(0));
    assert_ne!(build(0), build(1), "the seed changes the levels");
}

#[test]
fn a_stepwise_search_answers_as_of_its_start() {
    let mut r = rng(5);
    let mut idx = index(Metric::L2, 8);
    let mut model = BTreeMap::new();
    churn(&mut idx, &mut model, &mut r, 1_000, 500);
    let q = vector(&mut r, 8);
    let params = SearchParams { ef: Some(200) };
    let before = idx.search(&q, 5, &|_| true, &params).unwrap();
    let mut cursor = idx.start_search(&q, 5, &params).unwrap();
    assert_eq!(idx.open_cursors(), 1);
    // Writes between steps: the nearest row deleted, a new row exactly at the query.
    idx.delete(before[0].row);
    idx.upsert(10_000, &q).unwrap();
    let mut steps = 0;
    while idx.search_step(&mut cursor, &|_| true, 7) == Step::More {
        steps += 1;
        idx.upsert(20_000 + steps, &vector(&mut r, 8)).unwrap();
    }
    assert!(steps > 3, "bounded steps: {steps}");
    let got = cursor.finish();
    assert_eq!(
        got, before,
        "a cursor sees the rows and vectors of its start"
    );
    assert_eq!(idx.open_cursors(), 0);
    let after = idx.search(&q, 1, &|_| true, &params).unwrap();
    assert_eq!(after[0].row, 10_000);
}

#[test]
fn a_filter_that_accepts_few_rows_still_gets_min_k_rows() {
    let mut r = rng(9);
    let mut idx = index(Metric::Cosine, 16);
    for row in 0..3_000 {
        idx.upsert(row, &vector(&mut r, 16)).unwrap();
    }
    let q = vector(&mut r, 16);
    for (accepted, want) in [(0u64, 0usize), (3, 3), (25, 10)] {
        let filter = move |row: RowId| row.is_multiple_of(100) && row / 100 < accepted;
        let got = idx
            .search(&q, 10, &filter, &SearchParams::default())
            .unwrap();
        assert_eq!(got.len(), want, "{accepted} rows accepted");
        assert!(got.iter().all(|n| filter(n.row)));
    }
}

#[test]
fn a_permissive_filter_is_asked_only_about_rows_that_could_enter_the_results() {
    let mut r = rng(10);
    let mut idx = index(Metric::L2, 16);
    let rows: Vec<Vec<f32>> = (0..4_000).map(|_| vector(&mut r, 16)).collect();
    for (row, v) in rows.iter().enumerate() {
        idx.upsert(row as RowId, v).unwrap();
    }
    let keep = |row: RowId| !row.is_multiple_of(20); // 95 % of the rows
    let (mut hits, mut wanted) = (0, 0);
    for _ in 0..20 {
        let q = vector(&mut r, 16);
        let calls = std::cell::Cell::new(0usize);
        let filter = |row: RowId| {
            calls.set(calls.get() + 1);
            keep(row)
        };
        let mut cur = idx.start_search(&q, 10, &SearchParams::default()).unwrap();
        while idx.search_step(&mut cur, &filter, 64) == Step::More {}
        assert_eq!(cur.filter_calls(), calls.get());
        assert!(
            calls.get() < cur.distances(),
            "{} filter calls for {} distances",
            calls.get(),
            cur.distances()
        );
        let got: Vec<RowId> = cur.finish().iter().map(|n| n.row).collect();
        assert!(got.iter().all(|&row| keep(row)));
        let mut exact: Vec<(f32, RowId)> = (0..rows.len() as RowId)
            .filter(|&row| keep(row))
            .map(|row| (tarn_vectors::l2_squared(&q, &rows[row as usize]), row))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        wanted += 10;
        hits += exact[..10]
            .iter()
            .filter(|(_, row)| got.contains(row))
            .count();
    }
    assert!(hits * 10 >= wanted * 9, "recall {hits}/{wanted}");
}

#[test]
fn a_rebuild_drops_tombstones_while_writes_go_on() {
    let mut r = rng(13);
    let mut idx = index(Metric::L2, 12);
    let mut model = BTreeMap::new();
    for row in 0..2_000 {
        let v = vector(&mut r, 12);
        idx.upsert(row, &v).unwrap();
        model.insert(row, v);
    }
    for row in 0..700 {
        idx.delete(row);
        model.remove(&row);
    }
    assert!(idx.needs_rebuild());
    let mut steps = 0;
    loop {
        let step = idx.rebuild_step(100);
        steps += 1;
        if step == RebuildStep::Done {
            break;
        }
        assert_eq!(step, RebuildStep::More);
        churn(&mut idx, &mut model, &mut r, 20, 2_500);
        if steps == 5 {
            // An open cursor holds the swap back.
            let c = idx
                .start_search(&[0.0; 12], 1, &SearchParams::default())
                .unwrap();
            while idx.rebuild_step(1_000) != RebuildStep::WaitingForCursors {}
            drop(c);
        }
    }
    assert!(steps > 5, "the rebuild took several steps");
    assert!(!idx.rebuilding());
    assert!(
        idx.tombstones() < 200,
        "{} tombstones after the rebuild",
        idx.tombstones()
    );
    check_against_model(&idx, &model, "after rebuild");
}

#[test]
fn the_index_enum_dispatches_to_hnsw() {
    let mut r = rng(17);
    let mut idx = Index::from(index(Metric::InnerProduct, 8));
    for row in 0..300 {
        idx.upsert(row, &vector(&mut r, 8)).unwrap();
    }
    let q = vector(&mut r, 8);
    let one = idx
        .search(&q, 5, &|_| true, &SearchParams::default())
        .unwrap();
    let mut c = idx.start_search(&q, 5, &SearchParams::default()).unwrap();
    while idx.search_step(&mut c, &|_| true, 1) == Step::More {}
    assert!(c.distances() > 5);
    assert_eq!(c.finish(), one);
    assert!(idx.memory_bytes() > 300 * 8 * 4);
}

/// The hnswlib-rs #32 class, measured the way the issue states it: after 20,000 inserts with
/// updates and deletes interleaved (1,100 tombstones in the graph), a k = 1 search for each
/// live row's own vector returns that row, at the default parameters (m 16, ef_search 40).
/// (At m = 8 a run of this shape missed 1 row of 18,900 for two of four seeds — found again at
/// ef 80: an approximate search's miss, not an unreachable node; see `unreachable_rows`.)
#[test]
fn every_live_row_is_found_by_its_own_vector_after_interleaved_updates_and_deletes() {
    let mut rng = rng(32);
    let dim = 16;
    let uniform = |rng: &mut StdRng| -> Vec<f32> {
        (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    };
    let mut model: BTreeMap<RowId, Vec<f32>> = BTreeMap::new();
    let mut idx = index(Metric::L2, dim);
    let mut round = 0;
    for i in 0..20_000u64 {
        let v = uniform(&mut rng);
        idx.upsert(i, &v).unwrap();
        model.insert(i, v);
        if i % 2000 == 1999 && round < 10 {
            let base = round * 400;
            for id in base..base + 50 {
                let v = uniform(&mut rng);
                idx.upsert(id, &v).unwrap();
                model.insert(id, v);
            }
            for id in base + 200..base + 260 {
                idx.delete(id);
                model.remove(&id);
            }
            round += 1;
        }
    }
    assert!(idx.tombstones() > 1000);
    assert!(idx.unreachable_rows().is_empty());
    let p = SearchParams::default();
    let missed: Vec<RowId> = model
        .iter()
        .filter(|(&row, v)| idx.search(v, 1, &|_| true, &p).unwrap()[0].row != row)
        .map(|(&row, _)| row)
        .collect();
    assert!(
        missed.is_empty(),
        "{} live rows not found by their own vector: {missed:?}",
        missed.len()
    );
}
