//! Per-shard vector indexes: kept current by writes, built over existing rows in steps while
//! searches run (and stay exact over the pending rows), a search that yielded across a write
//! is refused, deleted and updated rows never come back with old vectors.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_types::{encode_key, Value};
use tarn_vectors::{HnswParams, Metric, Plan};

use crate::batch::{validate_upsert, UpsertMode};
use crate::catalog::Catalog;
use crate::expr::{CmpOp, Expr};
use crate::record::Mutation;
use crate::state::{KnnOutcome, KnnQuery, ShardState};

use super::catalog_with;

const DIM: usize = 8;
const ITEMS: &str = "CREATE TABLE items (id BIGINT PRIMARY KEY, emb VECTOR(8), n BIGINT)";
const INDEX: u32 = 1000;

/// The model: id → (vector, n).
type Model = BTreeMap<i64, (Vec<f32>, i64)>;

fn key(id: i64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(&Value::Int(id), &mut out).unwrap();
    out
}

fn put(cat: &Catalog, st: &mut ShardState, model: &mut Model, id: i64, v: Vec<f32>, n: i64) {
    let def = cat.table("items").unwrap();
    let cols: Vec<String> = ["id", "emb", "n"].iter().map(|s| s.to_string()).collect();
    let row = vec![
        Value::Int(id),
        Value::Vector(v.clone().into()),
        Value::Int(n),
    ];
    let m = validate_upsert(def, UpsertMode::Replace, &cols, vec![row])
        .unwrap()
        .into_mutation();
    st.apply(cat, &m);
    model.insert(id, (v, n));
}

fn delete(cat: &Catalog, st: &mut ShardState, model: &mut Model, id: i64) {
    let table_id = cat.table("items").unwrap().id;
    st.apply(
        cat,
        &Mutation::Delete {
            table_id,
            keys: vec![key(id)],
        },
    );
    model.remove(&id);
}

fn random_vector(rng: &mut StdRng) -> Vec<f32> {
    (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn create(cat: &Catalog, st: &mut ShardState, metric: Metric) {
    let table_id = cat.table("items").unwrap().id;
    st.create_index(INDEX, table_id, 1, metric, DIM, HnswParams::default())
        .unwrap();
}

/// `n < limit` on column 2.
fn n_below(limit: i64) -> Expr<usize> {
    Expr::Cmp(
        CmpOp::Lt,
        Box::new(Expr::Column(2)),
        Box::new(Expr::Literal(Value::Int(limit))),
    )
}

/// The exact answer: ids and l2 distances of the `k` nearest rows of the model with `n < limit`.
fn brute(model: &Model, q: &[f32], k: usize, limit: i64) -> Vec<(i64, f32)> {
    let mut all: Vec<(f32, i64)> = model
        .iter()
        .filter(|(_, (_, n))| *n < limit)
        .map(|(&id, (v, _))| (Metric::L2.distance(q, v), id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(d, id)| (id, d)).collect()
}

/// Runs a search in steps of `step` rows, calling `between` after each step.
fn search(
    st: &mut ShardState,
    q: &[f32],
    k: usize,
    filter: Option<&Expr<usize>>,
    step: usize,
    mut between: impl FnMut(&mut ShardState),
) -> Result<(Plan, Vec<(i64, f32)>), KnnOutcome> {
    let query = KnnQuery {
        index_id: INDEX,
        vector: q,
        k,
        ef: None,
    };
    let mut s = st.knn_start(&query, filter).unwrap();
    while !st.knn_step(&mut s, filter, step) {
        between(st);
    }
    let plan = s.plan();
    let rows = st.knn_finish(s)?;
    let out = rows
        .into_iter()
        .map(|h| match h.row[0] {
            Value::Int(id) => (id, h.distance),
            _ => panic!("id column"),
        })
        .collect();
    Ok((plan, out))
}

fn ids(r: &[(i64, f32)]) -> Vec<i64> {
    r.iter().map(|x| x.0).collect()
}

#[test]
fn build_steps_between_search_steps_keep_an_exact_search_exact() {
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    let mut model = Model::new();
    let mut rng = StdRng::seed_from_u64(7);
    for id in 0..3000 {
        put(
            &cat,
            &mut st,
            &mut model,
            id,
            random_vector(&mut rng),
            id % 100,
        );
    }
    create(&cat, &mut st, Metric::L2);
    let p = st.index_progress(INDEX).unwrap();
    assert_eq!((p.indexed, p.pending), (0, 3000));
    // n < 3 keeps 3 % of the rows: the planner scans them exactly, so the answer must be the
    // brute-force one at every stage of the build, build steps running between search steps.
    let filter = n_below(3);
    let mut stages = 0;
    while st.index_needs_work(INDEX) {
        let q = random_vector(&mut rng);
        let (_, got) = search(&mut st, &q, 10, Some(&filter), 97, |st| {
            st.index_build_step(INDEX, 5);
        })
        .unwrap();
        assert_eq!(ids(&got), ids(&brute(&model, &q, 10, 3)), "stage {stages}");
        stages += 1;
        st.index_build_step(INDEX, 200);
    }
    assert!(stages > 5, "the build took several stages ({stages})");
    let p = st.index_progress(INDEX).unwrap();
    assert_eq!((p.indexed, p.pending), (3000, 0));
}

#[test]
fn writes_during_a_build_are_searched_with_their_new_vectors() {
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    let mut model = Model::new();
    let mut rng = StdRng::seed_from_u64(11);
    for id in 0..1000 {
        put(&cat, &mut st, &mut model, id, random_vector(&mut rng), 0);
    }
    create(&cat, &mut st, Metric::L2);
    st.index_build_step(INDEX, 300);
    // Rewrite rows on both sides of the build position, delete some, add new ones (one of them
    // under a key deleted while pending).
    for id in (0..1000).step_by(7) {
        put(&cat, &mut st, &mut model, id, random_vector(&mut rng), 0);
    }
    for id in (3..1000).step_by(11) {
        delete(&cat, &mut st, &mut model, id);
    }
    for id in [1000, 1001, 3 + 11 * 50] {
        put(&cat, &mut st, &mut model, id, random_vector(&mut rng), 0);
    }
    // Every row, pending or built, must be found by its own vector (k = 1 over all rows: the
    // filter `n < 1` keeps every row, so this runs the graph; an exact check follows).
    for stage in 0..2 {
        for (&id, (v, _)) in &model {
            let (_, got) = search(&mut st, v, 1, None, usize::MAX, |_| {}).unwrap();
            assert_eq!(
                got[0].0, id,
                "stage {stage}: row {id} not found by its own vector"
            );
            assert_eq!(got[0].1, 0.0);
        }
        while st.index_build_step(INDEX, 100) {}
    }
    let p = st.index_progress(INDEX).unwrap();
    assert_eq!(p.indexed as usize, model.len());
    assert_eq!(p.pending, 0);
}

#[test]
fn a_write_while_a_search_yields_makes_it_answer_changed() {
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    let mut model = Model::new();
    let mut rng = StdRng::seed_from_u64(3);
    for id in 0..500 {
        put(&cat, &mut st, &mut model, id, random_vector(&mut rng), 0);
    }
    create(&cat, &mut st, Metric::L2);
    let q = random_vector(&mut rng);
    let mut wrote = false;
    let r = search(&mut st, &q, 5, None, 10, |st| {
        if !wrote {
            let v = vec![0.5; DIM];
            put(&cat, st, &mut Model::new(), 1, v, 0);
            wrote = true;
        }
    });
    assert_eq!(r.unwrap_err(), KnnOutcome::Changed);
    // Run again without interference: the answer, exact over pending rows, is brute force.
    model.insert(1, (vec![0.5; DIM], 0));
    let (_, got) = search(&mut st, &q, 5, None, usize::MAX, |_| {}).unwrap();
    assert_eq!(ids(&got), ids(&brute(&model, &q, 5, i64::MAX)));
}

#[test]
fn updated_and_deleted_rows_never_come_back_with_old_vectors() {
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    let mut model = Model::new();
    let mut rng = StdRng::seed_from_u64(5);
    create(&cat, &mut st, Metric::L2);
    for id in 0..400 {
        put(&cat, &mut st, &mut model, id, random_vector(&mut rng), 0);
    }
    let old: Vec<Vec<f32>> = (0..400).map(|id| model[&id].0.clone()).collect();
    for id in 0..200 {
        if id % 2 == 0 {
            delete(&cat, &mut st, &mut model, id);
        } else {
            put(&cat, &mut st, &mut model, id, random_vector(&mut rng), 0);
        }
    }
    for (id, v) in old.iter().enumerate().take(200) {
        let (_, got) = search(&mut st, v, 10, None, usize::MAX, |_| {}).unwrap();
        for (rid, d) in got {
            assert!(rid % 2 == 1 || rid >= 200, "deleted row {rid} returned");
            let now = Metric::L2.distance(v, &model[&rid].0);
            assert_eq!(
                d, now,
                "row {rid} (query: old vector of {id}) has a stale distance"
            );
        }
    }
}

#[test]
fn zero_vectors_under_cosine_are_left_out_and_nulls_are_not_indexed() {
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    let mut model = Model::new();
    put(&cat, &mut st, &mut model, 1, vec![0.0; DIM], 0);
    put(&cat, &mut st, &mut model, 2, vec![1.0; DIM], 0);
    let def = cat.table("items").unwrap();
    let cols: Vec<String> = ["id", "n"].iter().map(|s| s.to_string()).collect();
    let m = validate_upsert(
        def,
        UpsertMode::Replace,
        &cols,
        vec![vec![Value::Int(3), Value::Int(0)]],
    )
    .unwrap()
    .into_mutation();
    st.apply(&cat, &m);
    create(&cat, &mut st, Metric::Cosine);
    while st.index_build_step(INDEX, 10) {}
    let p = st.index_progress(INDEX).unwrap();
    assert_eq!((p.indexed, p.skipped), (1, 1));
    // A merge that leaves the vector as it was keeps the row indexed once.
    let cols: Vec<String> = ["id", "n"].iter().map(|s| s.to_string()).collect();
    let m = validate_upsert(
        def,
        UpsertMode::Merge,
        &cols,
        vec![vec![Value::Int(2), Value::Int(9)]],
    )
    .unwrap()
    .into_mutation();
    st.apply(&cat, &m);
    assert_eq!(st.index_progress(INDEX).unwrap().indexed, 1);
    assert_eq!(st.index_progress(INDEX).unwrap().tombstones, 0);
    // Dropping the table drops its index.
    st.drop_table(def.id);
    assert!(st.index_progress(INDEX).is_none());
}

#[test]
fn a_search_on_a_shard_that_never_held_a_row_answers_nothing() {
    // Regression: the table has no state on this shard (its rows live elsewhere), and the
    // finish took the missing table for a change; the server retried, then panicked.
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    create(&cat, &mut st, Metric::L2);
    let (_, rows) = search(&mut st, &[0.5; DIM], 3, None, 1, |_| {}).expect("not a change");
    assert!(rows.is_empty());
    let (_, rows) = search(&mut st, &[0.5; DIM], 3, Some(&n_below(2)), 1, |_| {}).unwrap();
    assert!(rows.is_empty());
}

#[test]
fn a_kept_planner_sample_is_dropped_by_the_next_write_to_the_table() {
    // The planner's sample of a filter is kept between searches (state/knn.rs `selectivity`)
    // but only while the table is unchanged: after most rows stop matching, the next search
    // must plan from a new sample (an exact scan of the few matching rows), not the old one.
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    let mut model = Model::new();
    let mut rng = StdRng::seed_from_u64(11);
    let vectors: Vec<Vec<f32>> = (0..3000).map(|_| random_vector(&mut rng)).collect();
    for (id, v) in vectors.iter().enumerate() {
        put(&cat, &mut st, &mut model, id as i64, v.clone(), 0);
    }
    create(&cat, &mut st, Metric::L2);
    while st.index_needs_work(INDEX) {
        st.index_build_step(INDEX, 500);
    }
    let filter = n_below(1);
    let q = random_vector(&mut rng);
    for _ in 0..3 {
        let (plan, got) = search(&mut st, &q, 10, Some(&filter), usize::MAX, |_| {}).unwrap();
        assert!(matches!(plan, Plan::Graph { .. }), "{plan:?}");
        assert_eq!(got.len(), 10);
    }
    // All but 20 rows stop matching (vectors unchanged, so the graph keeps its nodes).
    for id in 20..3000 {
        put(
            &cat,
            &mut st,
            &mut model,
            id,
            vectors[id as usize].clone(),
            5,
        );
    }
    while st.index_needs_work(INDEX) {
        st.index_build_step(INDEX, 500);
    }
    let (plan, got) = search(&mut st, &q, 10, Some(&filter), usize::MAX, |_| {}).unwrap();
    assert_eq!(
        plan,
        Plan::Exact,
        "planned from the sample taken before the writes"
    );
    assert_eq!(ids(&got), ids(&brute(&model, &q, 10, 1)));
}

/// Merge mode, column `n` only: the vector stays, so the index is only told the table changed.
fn merge_n(cat: &Catalog, st: &mut ShardState, model: &mut Model, id: i64, n: i64) {
    let def = cat.table("items").unwrap();
    let cols: Vec<String> = ["id", "n"].iter().map(|s| s.to_string()).collect();
    let m = validate_upsert(
        def,
        UpsertMode::Merge,
        &cols,
        vec![vec![Value::Int(id), Value::Int(n)]],
    )
    .unwrap()
    .into_mutation();
    st.apply(cat, &m);
    model.get_mut(&id).expect("merged rows exist").1 = n;
}

#[test]
fn remembered_filter_verdicts_follow_every_kind_of_write() {
    // Verdicts are kept per row between searches (state/filter_memo.rs) and must be dropped
    // by a replace, a merge of the filtered column, a delete and the reuse of a row id: after
    // each, an exact (few rows match) filtered search must equal brute force.
    let cat = catalog_with(&[ITEMS]);
    let mut st = ShardState::new();
    let mut model = Model::new();
    let mut rng = StdRng::seed_from_u64(12);
    for id in 0..3000 {
        let v = random_vector(&mut rng);
        put(&cat, &mut st, &mut model, id, v, id % 100);
    }
    create(&cat, &mut st, Metric::L2);
    while st.index_needs_work(INDEX) {
        st.index_build_step(INDEX, 500);
    }
    let filter = n_below(2);
    let check = |st: &mut ShardState, model: &Model, rng: &mut StdRng, what: &str| {
        for _ in 0..3 {
            let q = random_vector(rng);
            let (_, got) = search(st, &q, 10, Some(&filter), 300, |_| {}).unwrap();
            assert_eq!(ids(&got), ids(&brute(model, &q, 10, 2)), "after {what}");
        }
    };
    check(&mut st, &model, &mut rng, "the first searches");
    check(
        &mut st,
        &model,
        &mut rng,
        "searches that used kept verdicts",
    );
    for id in (0..3000).step_by(7) {
        let v = model[&id].0.clone();
        put(&cat, &mut st, &mut model, id, v, (id / 7) % 2);
    }
    check(&mut st, &model, &mut rng, "replaces with the same vectors");
    for id in (0..3000).step_by(11) {
        merge_n(&cat, &mut st, &mut model, id, 1);
    }
    check(&mut st, &model, &mut rng, "merges of the filtered column");
    for id in (0..3000).step_by(3) {
        delete(&cat, &mut st, &mut model, id);
    }
    check(&mut st, &model, &mut rng, "deletes");
    for id in 5000..5500 {
        let v = random_vector(&mut rng);
        put(&cat, &mut st, &mut model, id, v, id % 2); // reuses the deleted rows' ids
    }
    while st.index_needs_work(INDEX) {
        st.index_build_step(INDEX, 500);
    }
    check(&mut st, &model, &mut rng, "inserts into reused row ids");
}
