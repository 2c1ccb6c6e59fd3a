//! Filtered search: at every selectivity an exact search returns `min(k, matching rows)`
//! rows, all matching, exactly the nearest matching ones (the same as an index holding only
//! the matching rows); the filter is called once per live row and distances are computed
//! only for rows it accepts.

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;

use common::{assert_same, naive_search};
use rand::Rng;
use tarn_vectors::{ExactIndex, Metric, RowId, SearchParams, VectorIndex};

/// A filter accepting about `per_mille` of 1000 rows, decided by a hash of the row id.
fn selective(per_mille: u64) -> impl Fn(RowId) -> bool {
    move |row| (row.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 32) % 1000 < per_mille
}

#[test]
fn filtered_search_returns_min_k_matching_at_every_selectivity() {
    let mut rng = common::rng(20);
    let n = 5000;
    for metric in Metric::ALL {
        let vectors = common::clustered(&mut rng, n, 24, 10);
        let mut idx = ExactIndex::new(metric, 24).unwrap();
        let mut rows = BTreeMap::new();
        for (i, v) in vectors.iter().enumerate() {
            idx.upsert(i as RowId, v).unwrap();
            rows.insert(i as RowId, v.clone());
        }
        // 100 %, 50 %, 10 %, 1 %, 0.1 % (about 5 rows), none.
        for per_mille in [1000, 500, 100, 10, 1, 0] {
            let filter = selective(per_mille);
            let matching: BTreeMap<RowId, Vec<f32>> = rows
                .iter()
                .filter(|(r, _)| filter(**r))
                .map(|(r, v)| (*r, v.clone()))
                .collect();
            assert_eq!(matching.is_empty(), per_mille == 0, "{per_mille}‰");
            let mut only = ExactIndex::new(metric, 24).unwrap();
            for (r, v) in &matching {
                only.upsert(*r, v).unwrap();
            }
            for k in [1, 10, 100] {
                let q = common::clustered(&mut rng, 1, 24, 1).remove(0);
                let p = SearchParams::default();
                let got = idx.search(&q, k, &filter, &p).unwrap();
                assert_eq!(
                    got.len(),
                    k.min(matching.len()),
                    "{metric} {per_mille}‰ k={k}"
                );
                assert!(got.iter().all(|nb| filter(nb.row)));
                assert_same(&got, &naive_search(metric, &rows, &q, k, &filter), "naive");
                let all = |_: RowId| true;
                assert_same(&got, &only.search(&q, k, &all, &p).unwrap(), "subset");
            }
        }
    }
}

#[test]
fn filter_is_called_once_per_live_row_and_gates_distances() {
    let mut rng = common::rng(21);
    let mut idx = ExactIndex::new(Metric::L2, 8).unwrap();
    for (i, v) in common::clustered(&mut rng, 3000, 8, 4).iter().enumerate() {
        idx.upsert(i as RowId, v).unwrap();
    }
    for i in (0..3000).step_by(3) {
        assert!(idx.delete(i));
    }
    let live = idx.len();
    let calls = Cell::new(0usize);
    let filter = |row: RowId| {
        calls.set(calls.get() + 1);
        row % 10 == 1
    };
    let q = [0.0f32; 8];
    let mut cur = idx.start_search(&q, 5, &SearchParams::default()).unwrap();
    while idx.search_step(&mut cur, &filter, rng.random_range(1..500)) == tarn_vectors::Step::More {
    }
    assert_eq!(calls.get(), live);
    assert_eq!(cur.rows_visited(), live);
    let matching = (0..3000u64).filter(|r| r % 3 != 0 && r % 10 == 1).count();
    // Distances were computed for accepted rows only.
    assert_eq!(cur.rows_matched(), matching);
    assert_eq!(cur.finish().len(), 5);
}
