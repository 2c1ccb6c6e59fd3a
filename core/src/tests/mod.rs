//! Unit tests for every module.

mod batch;
mod catalog;
mod context;
mod formats;
mod index;
mod index_persist;
mod indexes;
mod ingest;
mod invariants;
mod listing;
mod model;
mod recent;
mod record;
mod sql;
mod state;
mod timestamp;
mod txn;
mod vector;
mod view;
mod view_state;

use crate::catalog::Catalog;
use crate::schema::TableDef;
use crate::sql::{parse, Statement};

/// Parses one CREATE TABLE into its definition.
pub(crate) fn def_of(sql: &str) -> TableDef {
    match parse(sql).unwrap().remove(0) {
        Statement::CreateTable { def, .. } => def,
        other => panic!("not a CREATE TABLE: {other:?}"),
    }
}

/// A catalog with the given tables created in order.
pub(crate) fn catalog_with(sqls: &[&str]) -> Catalog {
    let mut cat = Catalog::new();
    for sql in sqls {
        for stmt in parse(sql).unwrap() {
            cat = cat.apply_ddl(&stmt).unwrap().0;
        }
    }
    cat
}

pub(crate) const CARDS: &str = "CREATE TABLE cards (card_id TEXT PRIMARY KEY, account_id TEXT, \
     flagged BOOLEAN, risk DOUBLE, n BIGINT, seen TIMESTAMP, blob BYTES)";

/// How a fuzzy-checkpoint property run interleaves records with the checkpoint's steps.
pub(crate) struct FuzzyRun {
    /// Records applied before the checkpoint starts.
    pub before: usize,
    /// Each checkpoint step archives `1..max_step` keys (0–3 records applied between steps).
    pub max_step: usize,
    /// Records applied after the checkpoint's last step.
    pub tail: usize,
}

/// The fuzzy-checkpoint property: a checkpoint taken in steps while records keep being
/// applied, restored and given every record after its LSN, observes (`observe`) the same as
/// the live state. `record(cat, rng, i)` makes the i-th record.
pub(crate) fn assert_fuzzy_checkpoint_exact(
    cat: &Catalog,
    seed: u64,
    run: &FuzzyRun,
    mut record: impl FnMut(&Catalog, &mut rand::rngs::StdRng, usize) -> crate::record::Record,
    observe: impl Fn(&Catalog, &crate::state::ShardState) -> Vec<String>,
) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut st = crate::state::ShardState::new();
    let mut lsn = 0u64;
    let mut i = 0;
    let mut apply =
        |st: &mut crate::state::ShardState, rng: &mut rand::rngs::StdRng, lsn: &mut u64| {
            *lsn += 1;
            let r = record(cat, rng, i);
            i += 1;
            st.apply_record(cat, 0, *lsn, r.clone()).unwrap();
            (*lsn, r)
        };
    for _ in 0..run.before {
        apply(&mut st, &mut rng, &mut lsn);
    }
    let ckpt_lsn = lsn;
    let mut b = st.checkpoint_builder();
    let mut after = Vec::new();
    loop {
        for _ in 0..rng.random_range(0..4) {
            after.push(apply(&mut st, &mut rng, &mut lsn));
        }
        if b.step(&st, rng.random_range(1..run.max_step)) {
            break;
        }
    }
    for _ in 0..run.tail {
        after.push(apply(&mut st, &mut rng, &mut lsn));
    }
    let mut bytes = rkyv::util::AlignedVec::<16>::new();
    for part in b.finish() {
        bytes.extend_from_slice(&part);
    }
    let mut restored = crate::state::ShardState::from_checkpoint(&bytes, cat).unwrap();
    for (l, r) in after {
        assert!(l > ckpt_lsn);
        restored.apply_record(cat, 0, l, r).unwrap();
    }
    assert_eq!(observe(cat, &restored), observe(cat, &st), "seed {seed}");
}
