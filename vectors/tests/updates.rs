//! Writes and stepwise searches: after any sequence of upserts, updates and deletes a search
//! equals the naive answer over the live rows (never a deleted row, never an old vector); a
//! cursor answers as of its start whatever is written between its steps; tombstones drain;
//! memory follows the rows.

mod common;

use std::collections::BTreeMap;

use common::{assert_same, naive_search};
use rand::rngs::StdRng;
use rand::Rng;
use tarn_vectors::{
    rows_per_step, ExactIndex, Index, Metric, RowId, SearchCursor, SearchParams, Step, VectorIndex,
    BLOCK_BYTES,
};

const ALL: fn(RowId) -> bool = |_| true;

fn vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    loop {
        let v: Vec<f32> = if rng.random_range(0..4) == 0 {
            common::grid(rng, dim) // ties
        } else {
            (0..dim).map(|_| common::gaussian(rng) as f32).collect()
        };
        if v.iter().any(|&x| x != 0.0) {
            return v;
        }
    }
}

/// One random write applied to both the index and the model.
fn random_write(
    rng: &mut StdRng,
    idx: &mut impl VectorIndex,
    model: &mut BTreeMap<RowId, Vec<f32>>,
    rows: u64,
) {
    let row = rng.random_range(0..rows);
    if rng.random_range(0..3) == 0 {
        assert_eq!(idx.delete(row), model.remove(&row).is_some());
    } else {
        let v = vector(rng, idx.dim());
        assert_eq!(idx.upsert(row, &v).unwrap(), !model.contains_key(&row));
        model.insert(row, v);
    }
}

fn run_to_end(idx: &impl VectorIndex, cur: &mut SearchCursor, step: usize) {
    while idx.search_step(cur, &ALL, step) == Step::More {}
}

#[test]
fn random_writes_never_leave_stale_vectors() {
    let mut rng = common::rng(30);
    for metric in Metric::ALL {
        let dim = 6;
        let mut idx = Index::from(ExactIndex::new(metric, dim).unwrap());
        let mut model = BTreeMap::new();
        for round in 0..3000 {
            random_write(&mut rng, &mut idx, &mut model, 400);
            assert_eq!(idx.len(), model.len());
            if round % 25 != 0 {
                continue;
            }
            for (row, v) in &model {
                assert_eq!(
                    idx.vector(*row).unwrap(),
                    &metric.prepare(v, dim).unwrap()[..]
                );
            }
            for row in 0..400 {
                assert_eq!(idx.contains(row), model.contains_key(&row));
            }
            let q = vector(&mut rng, dim);
            let k = rng.random_range(1..60);
            let got = idx.search(&q, k, &ALL, &SearchParams::default()).unwrap();
            assert_same(
                &got,
                &naive_search(metric, &model, &q, k, &ALL),
                "after writes",
            );
            // Each live row is found by a search for its own vector (or one as near).
            if let Some((&row, v)) = model.iter().nth(rng.random_range(0..model.len().max(1))) {
                let got = idx.search(v, 1, &ALL, &SearchParams::default()).unwrap();
                let best = naive_search(metric, &model, v, 1, &ALL);
                assert_same(&got, &best, "own vector");
                assert!(got[0].row == row || got[0].key <= best[0].key);
            }
        }
    }
}

#[test]
fn a_cursor_answers_as_of_its_start() {
    let mut rng = common::rng(31);
    for metric in Metric::ALL {
        let dim = 5;
        let mut idx = ExactIndex::new(metric, dim).unwrap();
        let mut model = BTreeMap::new();
        for _ in 0..600 {
            random_write(&mut rng, &mut idx, &mut model, 500);
        }
        for trial in 0..40 {
            let q = vector(&mut rng, dim);
            let k = rng.random_range(1..30);
            let want = naive_search(metric, &model, &q, k, &ALL);
            let snapshot = idx.clone();
            let mut cur = idx.start_search(&q, k, &SearchParams::default()).unwrap();
            // A second cursor opened later, over a later state.
            let mut later: Option<(SearchCursor, Vec<_>)> = None;
            let step = rng.random_range(1..80);
            while idx.search_step(&mut cur, &ALL, step) == Step::More {
                for _ in 0..rng.random_range(0..6) {
                    random_write(&mut rng, &mut idx, &mut model, 500);
                }
                if later.is_none() && trial % 2 == 0 {
                    let c2 = idx.start_search(&q, k, &SearchParams::default()).unwrap();
                    later = Some((c2, naive_search(metric, &model, &q, k, &ALL)));
                }
            }
            assert_eq!(idx.len(), model.len());
            assert_same(&cur.finish(), &want, "snapshot at start");
            let p = SearchParams::default();
            assert_same(&snapshot.search(&q, k, &ALL, &p).unwrap(), &want, "clone");
            if let Some((mut c2, want2)) = later {
                for _ in 0..rng.random_range(0..20) {
                    random_write(&mut rng, &mut idx, &mut model, 500);
                }
                run_to_end(&idx, &mut c2, 7);
                assert_same(&c2.finish(), &want2, "second cursor");
            }
            // With no cursor open, a search sees every write.
            assert_eq!(idx.open_cursors(), 0);
            let now = idx.search(&q, k, &ALL, &p).unwrap();
            assert_same(&now, &naive_search(metric, &model, &q, k, &ALL), "now");
        }
    }
}

#[test]
fn tombstones_drain_after_cursors_close() {
    let mut rng = common::rng(32);
    let dim = 4;
    let mut idx = ExactIndex::new(Metric::L2, dim).unwrap();
    let mut model = BTreeMap::new();
    for row in 0..1000 {
        let v = vector(&mut rng, dim);
        idx.upsert(row, &v).unwrap();
        model.insert(row, v);
    }
    let cur = idx
        .start_search(&[0.0; 4], 3, &SearchParams::default())
        .unwrap();
    assert_eq!(idx.open_cursors(), 1);
    for row in 0..300 {
        assert!(idx.delete(row));
        model.remove(&row);
    }
    for row in 300..500 {
        let v = vector(&mut rng, dim);
        idx.upsert(row, &v).unwrap();
        model.insert(row, v);
    }
    assert_eq!(idx.tombstones(), 500);
    assert_eq!(
        idx.compact(usize::MAX),
        0,
        "no compaction under an open cursor"
    );
    drop(cur); // dropping an unfinished cursor releases its snapshot
    assert_eq!(idx.open_cursors(), 0);
    // Each write removes up to COMPACT_PER_WRITE tombstones.
    idx.upsert(999, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    model.insert(999, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(idx.tombstones(), 500 - tarn_vectors::COMPACT_PER_WRITE);
    // The rest in bounded steps.
    let mut steps = 0;
    while idx.compact(37) > 0 {
        steps += 1;
    }
    assert_eq!(steps, (500 - tarn_vectors::COMPACT_PER_WRITE).div_ceil(37));
    assert_eq!(idx.tombstones(), 0);
    assert_eq!(idx.len(), model.len());
    for (row, v) in &model {
        assert_eq!(idx.vector(*row).unwrap(), &v[..]);
    }
    let q = [0.5f32, -1.0, 0.0, 2.0];
    let got = idx.search(&q, 50, &ALL, &SearchParams::default()).unwrap();
    assert_same(
        &got,
        &naive_search(Metric::L2, &model, &q, 50, &ALL),
        "after drain",
    );
}

#[test]
fn steps_are_bounded() {
    let mut rng = common::rng(33);
    let dim = 16;
    let mut idx = ExactIndex::new(Metric::Cosine, dim).unwrap();
    for row in 0..2500 {
        idx.upsert(row, &vector(&mut rng, dim)).unwrap();
    }
    let q = vector(&mut rng, dim);
    for max_rows in [0, 1, 7, 100, 2499, 2500, usize::MAX] {
        let mut cur = idx.start_search(&q, 10, &SearchParams::default()).unwrap();
        let mut steps = 0;
        loop {
            let before = cur.rows_visited();
            let s = idx.search_step(&mut cur, &ALL, max_rows);
            steps += 1;
            assert!(cur.rows_visited() - before <= max_rows.max(1));
            if s == Step::Done {
                break;
            }
            assert!(!cur.is_done());
        }
        assert!(cur.is_done());
        assert_eq!(steps, 2500usize.div_ceil(max_rows.max(1)));
        assert_eq!(cur.finish().len(), 10);
    }
    assert_eq!(rows_per_step(128), 2048);
    assert_eq!(rows_per_step(4096), 64);
    assert_eq!(rows_per_step(1 << 20), 1);
    assert_eq!(rows_per_step(0), 1 << 18);
}

#[test]
fn memory_follows_the_rows() {
    let dim = 128;
    let mut idx = ExactIndex::new(Metric::L2, dim).unwrap();
    let empty = idx.memory_bytes();
    let v = vec![0.25f32; dim];
    let n = 20_000u64;
    for row in 0..n {
        idx.upsert(row, &v).unwrap();
    }
    let full = idx.memory_bytes();
    let vectors = n as usize * dim * 4;
    assert!(full >= vectors, "{full} < {vectors}");
    // Vectors, row tables and the map; at most one partly used block beyond.
    assert!(full < vectors + BLOCK_BYTES + n as usize * 64, "{full}");
    for row in 0..n - 10 {
        assert!(idx.delete(row));
    }
    let after = idx.memory_bytes();
    // The vector blocks were released (the row tables keep their capacity).
    assert!(after < full - vectors + 2 * BLOCK_BYTES, "{after}");
    assert!(after > empty);
}

#[test]
#[should_panic(expected = "another index")]
fn a_cursor_cannot_be_used_on_another_index() {
    let mut a = ExactIndex::new(Metric::L2, 2).unwrap();
    a.upsert(1, &[1.0, 1.0]).unwrap();
    let b = a.clone();
    let mut cur = a
        .start_search(&[0.0, 0.0], 1, &SearchParams::default())
        .unwrap();
    b.search_step(&mut cur, &ALL, 10);
}

#[test]
#[should_panic(expected = "before its last step")]
fn an_unfinished_cursor_cannot_finish() {
    let mut a = ExactIndex::new(Metric::L2, 2).unwrap();
    a.upsert(1, &[1.0, 1.0]).unwrap();
    a.upsert(2, &[2.0, 1.0]).unwrap();
    let mut cur = a
        .start_search(&[0.0, 0.0], 1, &SearchParams::default())
        .unwrap();
    a.search_step(&mut cur, &ALL, 1);
    cur.finish();
}

#[test]
fn empty_index_searches_return_nothing() {
    for metric in Metric::ALL {
        let idx = ExactIndex::new(metric, 3).unwrap();
        assert!(idx.is_empty());
        let got = idx
            .search(&[1.0, 0.0, 0.0], 10, &ALL, &SearchParams::default())
            .unwrap();
        assert!(got.is_empty());
        let mut cur = idx
            .start_search(&[1.0, 0.0, 0.0], 10, &SearchParams::default())
            .unwrap();
        assert!(cur.is_done());
        assert_eq!(idx.search_step(&mut cur, &ALL, 1), Step::Done);
    }
}
