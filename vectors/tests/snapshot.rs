//! Point-in-time snapshots of an HNSW index: a snapshot encodes the index exactly as it was
//! when taken, whatever the index does afterwards; a rebuild in progress resumes exactly; the
//! snapshot shares the graph's blocks and a write copies only the blocks it touches.

mod common;

use std::rc::Rc;

use common::{gaussian, rng};
use rand::rngs::StdRng;
use rand::Rng;
use tarn_vectors::{
    CowVec, Decoder, HnswIndex, HnswParams, Metric, RebuildStep, RowId, SearchParams, VectorError,
    VectorIndex,
};

const DIM: usize = 12;
/// Rows the writes choose from: updates and deletes hit existing rows often.
const ROWS: u64 = 800;

/// One write of a deterministic sequence, applied identically to several indexes.
#[derive(Clone, Debug)]
enum Op {
    Upsert(RowId, Vec<f32>),
    Delete(RowId),
    /// `rebuild_step(n)`, only when a rebuild is needed or in progress.
    Rebuild(usize),
}

fn vector(r: &mut StdRng) -> Vec<f32> {
    (0..DIM).map(|_| gaussian(r) as f32).collect()
}

/// `n` writes: mostly upserts, a delete in four, a rebuild step in ten.
fn ops(seed: u64, n: usize) -> Vec<Op> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| match r.random_range(0..20) {
            0..=4 => Op::Delete(r.random_range(0..ROWS)),
            5..=6 => Op::Rebuild(r.random_range(1..80)),
            _ => Op::Upsert(r.random_range(0..ROWS), vector(&mut r)),
        })
        .collect()
}

/// Applies `ops`; returns what each rebuild step said (to compare two indexes' courses).
fn apply(idx: &mut HnswIndex, ops: &[Op]) -> Vec<RebuildStep> {
    let mut steps = Vec::new();
    for op in ops {
        match op {
            Op::Upsert(row, v) => {
                idx.upsert(*row, v).unwrap();
            }
            Op::Delete(row) => {
                idx.delete(*row);
            }
            Op::Rebuild(n) if idx.rebuilding() || idx.needs_rebuild() => {
                steps.push(idx.rebuild_step(*n));
            }
            Op::Rebuild(_) => {}
        }
    }
    steps
}

fn decode(chunks: impl IntoIterator<Item = Vec<u8>>) -> Result<HnswIndex, VectorError> {
    let mut d = Decoder::new();
    for c in chunks {
        d.feed(&c)?;
    }
    d.finish()
}

fn index(metric: Metric) -> HnswIndex {
    HnswIndex::new(metric, DIM, HnswParams::default()).unwrap()
}

/// The top 10 of 100 seeded queries: row ids and distance bits.
fn answers(idx: &HnswIndex) -> Vec<Vec<(RowId, u32)>> {
    let mut r = rng(99);
    (0..100)
        .map(|_| {
            let q = vector(&mut r);
            idx.search(&q, 10, &|_| true, &SearchParams::default())
                .unwrap()
                .iter()
                .map(|n| (n.row, n.distance.to_bits()))
                .collect()
        })
        .collect()
}

#[test]
fn a_snapshot_encodes_the_index_as_it_was_whatever_follows() {
    for metric in Metric::ALL {
        let before = ops(1, 2_000);
        let after = ops(2, 4_000);
        let mut idx = index(metric);
        let mut twin = index(metric);
        apply(&mut idx, &before);
        apply(&mut twin, &before);
        let then: Vec<Vec<u8>> = idx.encode(4_096).collect();
        let clone = decode(then.clone()).unwrap();
        let snap = idx.snapshot();
        assert_eq!(snap.nodes(), idx.nodes());
        assert_eq!(snap.len(), idx.len());

        let steps = apply(&mut idx, &after);
        assert!(
            steps.contains(&RebuildStep::Done),
            "{metric:?}: the writes after the snapshot include a whole rebuild: {steps:?}"
        );
        let (main, _) = snap.split_rebuild();
        let chunks: Vec<Vec<u8>> = main.encode(4_096).collect();
        assert_eq!(
            chunks, then,
            "{metric:?}: the same bytes as at snapshot time"
        );
        let back = decode(chunks).unwrap();
        assert_eq!(back.digest(), clone.digest(), "{metric:?}");
        assert_eq!(answers(&back), answers(&clone), "{metric:?}");

        apply(&mut twin, &after);
        assert_eq!(
            idx.digest(),
            twin.digest(),
            "{metric:?}: live index unaffected"
        );
        assert_eq!(answers(&idx), answers(&twin), "{metric:?}");
    }
}

/// An index in the middle of a rebuild that writes have gone on during, and the writes.
fn mid_rebuild(metric: Metric) -> HnswIndex {
    let mut idx = index(metric);
    let mut r = rng(3);
    for _ in 0..1_500 {
        idx.upsert(r.random_range(0..ROWS), &vector(&mut r))
            .unwrap();
    }
    for row in 0..ROWS / 2 {
        idx.delete(row);
    }
    assert!(idx.needs_rebuild() && !idx.rebuilding());
    for i in 0..6 {
        assert_eq!(idx.rebuild_step(40), RebuildStep::More);
        let row = r.random_range(0..ROWS);
        idx.upsert(row, &vector(&mut r)).unwrap();
        idx.delete((i * 37) % ROWS);
    }
    assert!(idx.rebuilding());
    idx
}

/// Decodes a snapshot's two streams and resumes the rebuild.
fn restore(idx: &HnswIndex) -> HnswIndex {
    let (main, rebuild) = idx.snapshot().split_rebuild();
    let (fresh, next) = rebuild.expect("a rebuild in progress");
    assert!(next > 0 && (next as usize) < idx.nodes());
    let mut back = decode(main.encode(2_000)).unwrap();
    let fresh = decode(fresh.encode(2_000)).unwrap();
    back.resume_rebuild(fresh, next).unwrap();
    back
}

#[test]
fn a_snapshot_taken_mid_rebuild_resumes_exactly() {
    for metric in Metric::ALL {
        let mut idx = mid_rebuild(metric);
        let mut back = restore(&idx);
        assert!(back.rebuilding());
        assert_eq!(back.digest(), idx.digest(), "{metric:?}");
        let later = ops(5, 3_000);
        let steps = apply(&mut idx, &later);
        assert_eq!(
            apply(&mut back, &later),
            steps,
            "{metric:?}: the same course"
        );
        assert!(steps.contains(&RebuildStep::Done), "{metric:?}: {steps:?}");
        assert_eq!(back.digest(), idx.digest(), "{metric:?}");
        assert_eq!(answers(&back), answers(&idx), "{metric:?}");
        back.check_invariants().unwrap();
    }
}

#[test]
fn a_snapshot_outlives_its_index() {
    let mut idx = mid_rebuild(Metric::Cosine);
    let main: Vec<Vec<u8>> = idx.encode(1_000).collect();
    let snap = idx.snapshot();
    apply(&mut idx, &ops(6, 500));
    drop(idx);
    let (fresh, next) = snap.rebuild().expect("rebuilding");
    assert!(!fresh.is_empty() && next > 0);
    let (snap, _) = snap.split_rebuild();
    assert_eq!(snap.encode(1_000).collect::<Vec<_>>(), main);
}

fn corrupt_message(r: Result<(), VectorError>) -> String {
    match r {
        Err(VectorError::Corrupt(m)) => m,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_bad_resume_is_corrupt_and_changes_nothing() {
    let idx = mid_rebuild(Metric::L2);
    let (main, rebuild) = idx.snapshot().split_rebuild();
    let (fresh, next) = rebuild.unwrap();
    let main: Vec<Vec<u8>> = main.encode(4_096).collect();
    let fresh: Vec<Vec<u8>> = fresh.encode(4_096).collect();
    let base = || decode(main.clone()).unwrap();
    let fresh_idx = || decode(fresh.clone()).unwrap();

    let mut other = HnswIndex::new(
        Metric::L2,
        DIM,
        HnswParams {
            m: 8,
            ..HnswParams::default()
        },
    )
    .unwrap();
    other.upsert(1, &[0.5; DIM]).unwrap();
    let mut extra = fresh_idx();
    extra.upsert(ROWS + 5, &[1.0; DIM]).unwrap();
    let live = (0..ROWS).find(|&r| fresh_idx().contains(r)).unwrap();
    let mut moved = fresh_idx();
    moved.upsert(live, &[2.0; DIM]).unwrap();
    let empty = index(Metric::L2);
    let cases: Vec<(HnswIndex, u32, &str)> = vec![
        (other, next, "the fresh graph is l2 dim 12"),
        (fresh_idx(), idx.nodes() as u32 + 1, "beyond the index's"),
        (extra, next, "is not live"),
        (moved, next, "has another vector"),
        (empty, next, "missing from the fresh graph"),
    ];
    for (fresh, next, want) in cases {
        let mut b = base();
        let digest = b.digest();
        let m = corrupt_message(b.resume_rebuild(fresh, next));
        assert!(m.contains(want), "{m:?} should say {want:?}");
        assert!(!b.rebuilding() && b.digest() == digest, "nothing applied");
    }
    let mut b = base();
    b.resume_rebuild(fresh_idx(), next).unwrap();
    let m = corrupt_message(b.resume_rebuild(fresh_idx(), next));
    assert!(m.contains("already in progress"), "{m}");
    let m = corrupt_message(base().resume_rebuild(mid_rebuild(Metric::L2), next));
    assert!(m.contains("itself rebuilding"), "{m}");
}

#[test]
fn a_write_after_a_snapshot_copies_only_the_block_it_touches() {
    let mut idx = index(Metric::InnerProduct);
    let mut r = rng(7);
    for row in 0..1_000 {
        idx.upsert(row, &vector(&mut r)).unwrap();
    }
    let snap = idx.snapshot();
    let all = idx.block_count();
    assert!(all.blocks >= 9, "every column has a block: {all:?}");
    assert_eq!(all.shared, all.blocks, "a snapshot shares every block");
    // A delete writes one tombstone: the one block of `died` holding it is copied.
    assert!(idx.delete(3));
    assert_eq!(idx.block_count().shared, all.blocks - 1);
    assert!(idx.delete(900));
    assert_eq!(
        idx.block_count().shared,
        all.blocks - 1,
        "copied once, then in place"
    );
    assert_eq!(snap.block_count().shared, all.blocks - 1);
    drop(snap);
    assert_eq!(idx.block_count().shared, 0);
}

#[test]
fn a_cow_vec_clone_shares_until_written() {
    let mut v: CowVec<u64> = CowVec::new();
    for i in 0..300_000 {
        v.push(i);
    }
    let c = v.clone();
    let blocks = v.block_count().blocks;
    assert!(blocks >= 3, "{blocks} blocks");
    assert_eq!(v.block_count().shared, blocks);
    v.set(5, 7);
    v[200_000] = 9;
    assert_eq!((v[5], c[5], v[200_000], c[200_000]), (7, 5, 9, 200_000));
    assert_eq!(v.block_count().shared, blocks - 2, "two blocks copied");
    assert_eq!(c.iter().copied().sum::<u64>(), (0..300_000).sum::<u64>());
    assert_eq!(v.len(), c.len());

    // The row-key column of the core crate: non-`Copy` values, `None` by default.
    let mut keys: CowVec<Option<Rc<[u8]>>> = CowVec::new();
    keys.push(Some(Rc::from(&b"a"[..])));
    keys.push(None);
    let snap = keys.clone();
    keys.set(1, Some(Rc::from(&b"b"[..])));
    keys.push(None);
    assert_eq!(snap.len(), 2);
    assert!(snap[1].is_none());
    assert_eq!(keys[1].as_deref(), Some(&b"b"[..]));
    assert_eq!(snap[0].as_deref(), Some(&b"a"[..]));
}
