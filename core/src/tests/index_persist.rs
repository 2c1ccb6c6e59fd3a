//! Indexes are a function of the log: the same records give the same graphs, whether applied
//! live, replayed from the start, or restored from a (fuzzy) checkpoint taken while records
//! kept being applied and the log tail replayed — at every stage of a build and a rebuild.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_types::{encode_key, Value};

use crate::batch::{validate_upsert, UpsertMode};
use crate::catalog::Catalog;
use crate::record::{self, IndexOp, Mutation, Record};
use crate::state::{IndexWork, KnnQuery, ShardState, INDEX_BUILD_STEP_ROWS};
use crate::CoreError;

use super::catalog_with;

const DIM: usize = 8;

fn catalog() -> Catalog {
    catalog_with(&[
        "CREATE TABLE items (id BIGINT PRIMARY KEY, emb VECTOR(8), n BIGINT)",
        "CREATE INDEX items_emb ON items USING hnsw (emb) WITH (m = 8, ef_construction = 32)",
    ])
}

fn index_id(cat: &Catalog) -> u32 {
    cat.index("items_emb").unwrap().id
}

fn key(id: i64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(&Value::Int(id), &mut out).unwrap();
    out
}

fn upsert(cat: &Catalog, rng: &mut StdRng, ids: &[i64]) -> Record {
    let def = cat.table("items").unwrap();
    let cols: Vec<String> = ["id", "emb", "n"].iter().map(|s| s.to_string()).collect();
    let rows = ids
        .iter()
        .map(|&id| {
            let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            vec![Value::Int(id), Value::Vector(v.into()), Value::Int(id % 10)]
        })
        .collect();
    let m = validate_upsert(def, UpsertMode::Replace, &cols, rows)
        .unwrap()
        .into_mutation();
    Record::Apply(m)
}

fn delete(cat: &Catalog, ids: &[i64]) -> Record {
    Record::Apply(Mutation::Delete {
        table_id: cat.table("items").unwrap().id,
        keys: ids.iter().map(|&id| key(id)).collect(),
    })
}

/// A log like the server writes: rows, the index's creation over them, build steps between
/// writes (inserts, updates, deletes), enough churn for a tombstone rebuild, its steps between
/// writes. Returns the records and the live state after each (applied at LSN 1, 2, …).
fn history(cat: &Catalog) -> (Vec<Record>, ShardState) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut live = ShardState::new();
    let mut log = Vec::new();
    let mut push = |live: &mut ShardState, rec: Record| {
        // Every record goes through its encoding, as the log holds it.
        let rec = record::decode_record(&record::encode_record_to_vec(&rec)).unwrap();
        log.push(rec.clone());
        live.apply_record(cat, 0, log.len() as u64, rec).unwrap();
    };
    for first in (0..600).step_by(50) {
        let ids: Vec<i64> = (first..first + 50).collect();
        push(&mut live, upsert(cat, &mut rng, &ids));
    }
    let index_id = index_id(cat);
    push(&mut live, Record::Index(IndexOp::Create { index_id }));
    let mut next_id = 600;
    let mut rebuilt = false;
    for round in 0..400 {
        let ids: Vec<i64> = (0..4).map(|_| rng.random_range(0..next_id)).collect();
        let rec = match round % 3 {
            0 => upsert(cat, &mut rng, &[next_id, next_id + 1]),
            1 => upsert(cat, &mut rng, &ids),
            _ => delete(cat, &ids),
        };
        if round % 3 == 0 {
            next_id += 2;
        }
        push(&mut live, rec);
        let was_rebuilding = live.index_rebuilding(index_id);
        if live.index_work(index_id) == IndexWork::Step {
            let rows = INDEX_BUILD_STEP_ROWS as u32 / 4;
            push(&mut live, Record::Index(IndexOp::Step { index_id, rows }));
        }
        rebuilt |= was_rebuilding && !live.index_rebuilding(index_id);
    }
    assert!(
        rebuilt,
        "the history must include a whole tombstone rebuild"
    );
    (log, live)
}

/// Answers to fixed queries: (id, distance bits) per query.
fn answers(st: &mut ShardState, cat: &Catalog) -> Vec<Vec<(Value, u32)>> {
    let mut rng = StdRng::seed_from_u64(99);
    (0..40)
        .map(|_| {
            let q: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let query = KnnQuery {
                index_id: index_id(cat),
                vector: &q,
                k: 10,
                ef: Some(10),
            };
            let mut s = st.knn_start(&query, None).unwrap();
            while !st.knn_step(&mut s, None, 1 << 20) {}
            st.knn_finish(s)
                .unwrap()
                .into_iter()
                .map(|h| (h.row[0].clone(), h.distance.to_bits()))
                .collect()
        })
        .collect()
}

/// A checkpoint begun after record `cut` and built in steps while the following records are
/// applied (fuzzy rows, exact indexes); returns its payload and the records it stepped over.
fn fuzzy_checkpoint(cat: &Catalog, log: &[Record], cut: usize) -> (Vec<u8>, usize) {
    let mut st = ShardState::new();
    for (i, rec) in log[..cut].iter().enumerate() {
        st.apply_record(cat, 0, i as u64 + 1, rec.clone()).unwrap();
    }
    let mut b = st.checkpoint_builder();
    let mut applied = cut;
    while !b.step(&st, 40) {
        if applied < log.len() {
            st.apply_record(cat, 0, applied as u64 + 1, log[applied].clone())
                .unwrap();
            applied += 1;
        }
    }
    let mut out = rkyv::util::AlignedVec::<16>::new();
    for part in b.finish() {
        out.extend_from_slice(&part);
    }
    (out.to_vec(), applied)
}

fn restore(cat: &Catalog, bytes: &[u8]) -> Result<ShardState, CoreError> {
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(bytes);
    ShardState::from_checkpoint(&aligned, cat)
}

#[test]
fn replaying_the_whole_log_gives_the_same_graph_and_answers() {
    let cat = catalog();
    let (log, mut live) = history(&cat);
    let mut replayed = ShardState::new();
    for (i, rec) in log.iter().enumerate() {
        replayed
            .replay_record(&cat, 0, i as u64 + 1, rec.clone())
            .unwrap();
    }
    let id = index_id(&cat);
    assert_eq!(replayed.index_digest(id), live.index_digest(id));
    assert_eq!(answers(&mut replayed, &cat), answers(&mut live, &cat));
    assert!(replayed == live);
}

#[test]
fn a_fuzzy_checkpoint_at_any_point_plus_the_tail_gives_the_same_graph_and_answers() {
    let cat = catalog();
    let (log, mut live) = history(&cat);
    let id = index_id(&cat);
    let want = answers(&mut live, &cat);
    // Before the index, during its build, during and after the rebuild, at the end.
    let cuts = [
        5,
        14,
        40,
        log.len() / 2,
        log.len() * 3 / 4,
        log.len() - 1,
        log.len(),
    ];
    for cut in cuts {
        let (bytes, _) = fuzzy_checkpoint(&cat, &log, cut);
        let mut st = restore(&cat, &bytes).unwrap();
        for (i, rec) in log.iter().enumerate().skip(cut) {
            st.replay_record(&cat, 0, i as u64 + 1, rec.clone())
                .unwrap();
        }
        assert_eq!(st.index_digest(id), live.index_digest(id), "cut {cut}");
        let progress = |s: &ShardState| {
            let mut p = s.index_progress(id).unwrap();
            p.memory_bytes = 0; // capacities differ
            p
        };
        assert_eq!(progress(&st), progress(&live), "cut {cut}");
        assert_eq!(answers(&mut st, &cat), want, "cut {cut}");
        assert!(st == live, "cut {cut}");
    }
}

#[test]
fn the_graph_depends_on_the_order_of_writes_so_the_test_above_can_fail() {
    // Guard for the tests above: the same rows entered in another order make another graph,
    // so equal digests mean the order was kept, not that any order would do.
    let cat = catalog();
    let (log, live) = history(&cat);
    let id = index_id(&cat);
    let mut other = ShardState::new();
    let creates = log
        .iter()
        .position(|r| matches!(r, Record::Index(IndexOp::Create { .. })))
        .unwrap();
    // The index created after every write instead: built from the final rows.
    let mut lsn = 0;
    for rec in log.iter().filter(|r| !matches!(r, Record::Index(_))) {
        lsn += 1;
        other.apply_record(&cat, 0, lsn, rec.clone()).unwrap();
    }
    assert!(creates > 0);
    lsn += 1;
    other
        .apply_record(
            &cat,
            0,
            lsn,
            Record::Index(IndexOp::Create { index_id: id }),
        )
        .unwrap();
    while other.index_work(id) == IndexWork::Step {
        lsn += 1;
        let step = Record::Index(IndexOp::Step {
            index_id: id,
            rows: 64,
        });
        other.apply_record(&cat, 0, lsn, step).unwrap();
    }
    assert!(other == live, "same rows and vectors");
    assert_ne!(other.index_digest(id), live.index_digest(id));
}

#[test]
fn a_damaged_index_chunk_is_corruption_not_a_panic() {
    let cat = catalog();
    let (log, _) = history(&cat);
    let (bytes, _) = fuzzy_checkpoint(&cat, &log, log.len());
    restore(&cat, &bytes).unwrap();
    // Flip one byte at a time through the index part of the payload (after the rows): each
    // either still decodes to a consistent index or is refused as corrupt.
    let start = bytes.len() - bytes.len() / 3;
    let mut refused = 0;
    for at in (start..bytes.len()).step_by(97) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5a;
        match restore(&cat, &bad) {
            Ok(_) => {}
            Err(CoreError::Corrupt(_)) => refused += 1,
            Err(e) => panic!("byte {at}: {e:?}"),
        }
    }
    assert!(refused > 0, "no damage was detected");
    // Cut short inside the index chunks.
    let cut = bytes.len() - 16 * 8;
    assert!(matches!(
        restore(&cat, &bytes[..cut]),
        Err(CoreError::Corrupt(_))
    ));
}

#[test]
fn index_records_round_trip_and_bad_ones_are_refused() {
    for op in [
        IndexOp::Create { index_id: 7 },
        IndexOp::Step {
            index_id: 7,
            rows: 64,
        },
    ] {
        let bytes = record::encode_record_to_vec(&Record::Index(op));
        assert_eq!(bytes[0], record::RECORD_FORMAT_VERSION);
        assert_eq!(record::decode_record(&bytes).unwrap(), Record::Index(op));
        // Truncated, or with a trailing byte.
        assert!(record::decode_record(&bytes[..bytes.len() - 1]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(record::decode_record(&long).is_err());
        // Index records did not exist before version 3.
        let mut old = bytes.clone();
        old[0] = 2;
        let e = record::decode_record(&old).unwrap_err().to_string();
        assert!(e.contains("unknown record kind"), "{e}");
    }
    let mut zero = record::encode_record_to_vec(&Record::Index(IndexOp::Step {
        index_id: 7,
        rows: 1,
    }));
    zero[6..10].copy_from_slice(&0u32.to_le_bytes());
    let e = record::decode_record(&zero).unwrap_err().to_string();
    assert!(e.contains("index step of 0 rows"), "{e}");
}

/// A small indexed table part-way through its build, with updates and deletes: the records
/// and the checkpoint pinning record format 3 (index records) and checkpoint format 6
/// (index chunks).
fn index_fixture() -> (Catalog, Vec<Record>, ShardState) {
    let cat = catalog();
    let index_id = index_id(&cat);
    let def = cat.table("items").unwrap();
    let cols: Vec<String> = ["id", "emb", "n"].iter().map(|s| s.to_string()).collect();
    let rows = |ids: std::ops::Range<i64>, salt: f32| {
        let rows = ids
            .map(|id| {
                let v: Vec<f32> = (0..DIM)
                    .map(|d| ((id * 7 + d as i64) % 11) as f32 + salt)
                    .collect();
                vec![Value::Int(id), Value::Vector(v.into()), Value::Int(id % 3)]
            })
            .collect();
        let m = validate_upsert(def, UpsertMode::Replace, &cols, rows)
            .unwrap()
            .into_mutation();
        Record::Apply(m)
    };
    let log = vec![
        rows(0..40, 0.5),
        Record::Index(IndexOp::Create { index_id }),
        Record::Index(IndexOp::Step { index_id, rows: 16 }),
        rows(30..34, 0.25),
        delete(&cat, &[1, 35]),
        rows(40..42, 0.125),
        Record::Index(IndexOp::Step { index_id, rows: 8 }),
    ];
    let mut st = ShardState::new();
    for (i, rec) in log.iter().enumerate() {
        st.apply_record(&cat, 0, i as u64 + 1, rec.clone()).unwrap();
    }
    (cat, log, st)
}

const RECORDS_V3_INDEX_FIXTURE: &[u8] = include_bytes!("fixtures/records-v3-index.bin");
const CHECKPOINT_V6_INDEX_FIXTURE: &[u8] = include_bytes!("fixtures/checkpoint-v6-index.bin");

/// The payload from the index position chunk (kind 3) on.
fn index_part(b: &[u8]) -> &[u8] {
    let mut pos = 16;
    while b[pos + 8] != 3 {
        let len = u64::from_le_bytes(b[pos..pos + 8].try_into().unwrap()) as usize;
        pos += 16 + len.next_multiple_of(16);
    }
    &b[pos..]
}

fn join_records(log: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for rec in log {
        let b = record::encode_record_to_vec(rec);
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(&b);
    }
    out
}

#[test]
fn index_record_and_checkpoint_fixtures_decode_and_re_encode_identically() {
    let (cat, log, st) = index_fixture();
    assert_eq!(join_records(&log), RECORDS_V3_INDEX_FIXTURE);
    let mut b = RECORDS_V3_INDEX_FIXTURE;
    for rec in &log {
        let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
        assert_eq!(&record::decode_record(&b[4..4 + n]).unwrap(), rec);
        b = &b[4 + n..];
    }
    let id = index_id(&cat);
    let progress = st.index_progress(id).unwrap();
    assert!(progress.pending > 0 && progress.indexed > 0, "{progress:?}");
    // Rows come in hash-map order (random per process); the index chunks are in index-id and
    // row-id order, so they must match byte for byte.
    let ours = st.to_checkpoint();
    assert_eq!(ours.len(), CHECKPOINT_V6_INDEX_FIXTURE.len());
    assert_eq!(index_part(&ours), index_part(CHECKPOINT_V6_INDEX_FIXTURE));
    assert!(index_part(&ours).len() > 1000);
    let back = restore(&cat, CHECKPOINT_V6_INDEX_FIXTURE).unwrap();
    assert!(back == st);
    assert_eq!(back.index_digest(id), st.index_digest(id));
}

/// Writes the index fixtures: `TARN_WRITE_FIXTURES=1 cargo test -p tarn-core
/// write_index_fixtures -- --ignored` (record format 3, checkpoint format 6). Only on the
/// build whose formats they pin.
#[test]
#[ignore]
fn write_index_fixtures() {
    if std::env::var_os("TARN_WRITE_FIXTURES").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tests/fixtures");
    let (_, log, st) = index_fixture();
    std::fs::write(dir.join("records-v3-index.bin"), join_records(&log)).unwrap();
    std::fs::write(dir.join("checkpoint-v6-index.bin"), &st.to_checkpoint()[..]).unwrap();
}
