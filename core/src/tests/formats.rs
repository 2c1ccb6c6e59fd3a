//! On-disk formats stay byte-identical across refactors: the catalog file and a checkpoint
//! payload written by an earlier build (committed under `fixtures/`) decode to the state the
//! same statements and records build today, and encode back to the same bytes.

use rkyv::util::AlignedVec;
use tarn_types::{encode_key, Value};

use crate::batch::UpsertMode;
use crate::catalog::Catalog;
use crate::record::{Events, Mutation, Record, TxnId, TxnPart, HOME_TARGET};
use crate::state::ShardState;

use super::catalog_with;

/// Every kind of catalog object and every serialized shape: all column types, quoted names,
/// a table-level key, a dropped table (a gap in the ids), stream options, sliding and
/// lifetime views, every aggregate, every expression node and literal type.
const CATALOG_SQL: &[&str] = &[
    "CREATE TABLE cards (card_id TEXT PRIMARY KEY, account_id TEXT, flagged BOOLEAN, \
     risk DOUBLE, n BIGINT, seen TIMESTAMP, photo BYTES)",
    "CREATE TABLE gone (k BIGINT PRIMARY KEY)",
    "CREATE TABLE \"Odd\" (\"x\"\"y\" TEXT, k TIMESTAMP, PRIMARY KEY (k))",
    "DROP TABLE gone",
    "CREATE STREAM tx (ts TIMESTAMP, card TEXT, account TEXT, amount DOUBLE, n BIGINT, \
     ok BOOLEAN, blob BYTES) WITH (event_time = 'ts', partition = 'card', \
     retention = '2 days', max_future = '30 seconds')",
    "CREATE STREAM other (t TIMESTAMP, k BIGINT) WITH (event_time = t)",
    "CREATE MATERIALIZED VIEW card_10m WITH (window = '10 minutes', bucket = '10 seconds') AS \
     SELECT card AS card_key, count(*) AS txns, count(account), sum(amount) AS spend, \
     min(n), max(ts), avg(amount), variance(amount), stddev(n), var_pop(amount), \
     stddev_pop(amount), count(DISTINCT account) AS accounts, first(blob), last(ok), \
     max(amount) FILTER (WHERE account <> 'x' AND blob = X'00ff') AS big \
     FROM tx WHERE amount * 2 + 1 > 0.5 AND NOT (ok IS NULL) \
     AND n IN (1, 2, NULL) AND n NOT BETWEEN -5 AND 5 - 1 / 1 \
     AND ts >= TIMESTAMP '2026-11-26T01:02:03.000004Z' AND ts < 9999999999999 \
     AND (ok = TRUE OR ok <> FALSE) AND account IS NOT NULL GROUP BY card",
    "CREATE MATERIALIZED VIEW per_k WITH (window = 'lifetime') AS \
     SELECT k, count(*) FROM other GROUP BY k",
];

/// Catalog format 2 added vector indexes: [`CATALOG_SQL`] plus a table with two VECTOR
/// columns, indexes with every metric, quoted names, default and explicit parameters, and a
/// dropped index (a gap in the ids).
const INDEX_SQL: &[&str] = &[
    "CREATE TABLE docs (id BIGINT PRIMARY KEY, emb VECTOR(4), \"Title\" TEXT, img VECTOR(2))",
    "CREATE INDEX docs_emb ON docs USING hnsw (emb)",
    "CREATE INDEX gone_idx ON docs USING hnsw (img)",
    "CREATE INDEX \"Img Cos\" ON docs USING hnsw (img vector_cosine_ops) WITH (m = 8, \
     ef_construction = 100, ef_search = 64)",
    "DROP INDEX gone_idx",
    "CREATE INDEX emb_ip ON docs USING hnsw (emb) WITH (metric = 'ip')",
];

fn fixture_catalog() -> Catalog {
    catalog_with(CATALOG_SQL)
}

fn fixture_catalog_v2() -> Catalog {
    let sql: Vec<&str> = CATALOG_SQL.iter().chain(INDEX_SQL).copied().collect();
    catalog_with(&sql)
}

const CATALOG_FIXTURE: &[u8] = include_bytes!("fixtures/catalog-v1.json");
const CATALOG_V2_FIXTURE: &[u8] = include_bytes!("fixtures/catalog-v2.json");
const CATALOG_V3_FIXTURE: &[u8] = include_bytes!("fixtures/catalog-v3.json");
const CATALOG_V4_FIXTURE: &[u8] = include_bytes!("fixtures/catalog-v4.json");

/// The statements of the format-3 fixture after those of format 2: a named context.
const CONTEXT_SQL: &[&str] = &["CREATE CONTEXT card_ctx (card TEXT) AS SELECT row(cards, card) AS c, features(card_10m, card, columns => (txns)) AS f"];

fn fixture_catalog_v3() -> Catalog {
    let sql: Vec<&str> = CATALOG_SQL
        .iter()
        .chain(INDEX_SQL)
        .chain(CONTEXT_SQL)
        .copied()
        .collect();
    catalog_with(&sql)
}

/// The statements of the format-4 fixture after those of format 3: a logistic model with
/// every option (negative, integer and decimal numbers, log1p) and a linear one with the
/// defaults.
const MODEL_SQL: &[&str] = &[
    "CREATE MODEL card_lr ON CONTEXT card_ctx INPUTS (f.txns, c.risk, c.flagged, c.n) \
     USING logistic_regression WITH (weights = (0.75, -2, 1.5e-3, 3), intercept = -1.25, \
     impute = (0, 0.5, 0, -0.5), mean = (1.5, 0, 0, 2), std = (2, 1, 1, 0.25), \
     log1p = (f.txns), threshold = 0.7)",
    "CREATE MODEL card_lin ON CONTEXT card_ctx INPUTS (c.risk) USING linear_regression \
     WITH (weights = 1, intercept = 0)",
];

fn fixture_catalog_v4() -> Catalog {
    let sql: Vec<&str> = CATALOG_SQL
        .iter()
        .chain(INDEX_SQL)
        .chain(CONTEXT_SQL)
        .chain(MODEL_SQL)
        .copied()
        .collect();
    catalog_with(&sql)
}

/// A format-1 file (before indexes) still reads, to the catalog the same statements build
/// today; it is written back as format 4.
#[test]
fn catalog_file_written_by_an_earlier_build_decodes() {
    let built = fixture_catalog();
    let decoded = Catalog::from_bytes(CATALOG_FIXTURE).expect("the fixture decodes");
    assert_eq!(decoded, built);
    assert!(decoded.indexes().next().is_none());
    let v4 = decoded.to_bytes();
    assert!(v4.starts_with(b"{\n  \"format\": 4,"));
    assert_eq!(Catalog::from_bytes(&v4).unwrap(), built);
}

/// A format-2 file (indexes, before contexts) still reads; it is written back as format 4.
#[test]
fn catalog_file_with_indexes_decodes() {
    let built = fixture_catalog_v2();
    assert_eq!(built.indexes().count(), 3);
    let decoded = Catalog::from_bytes(CATALOG_V2_FIXTURE).expect("the fixture decodes");
    assert_eq!(decoded, built);
    assert!(decoded.to_bytes().starts_with(b"{\n  \"format\": 4,"));
}

/// A format-3 file (contexts, before models) still reads; it is written back as format 4.
#[test]
fn catalog_file_with_contexts_decodes() {
    let built = fixture_catalog_v3();
    assert_eq!(built.contexts().count(), 1);
    let decoded = Catalog::from_bytes(CATALOG_V3_FIXTURE).expect("the fixture decodes");
    assert_eq!(decoded, built);
    let v4 = decoded.to_bytes();
    assert!(v4.starts_with(b"{\n  \"format\": 4,"));
    assert_eq!(Catalog::from_bytes(&v4).unwrap(), built);
}

#[test]
fn catalog_file_with_models_decodes_and_re_encodes_identically() {
    let built = fixture_catalog_v4();
    assert_eq!(built.models().count(), 2);
    let decoded = Catalog::from_bytes(CATALOG_V4_FIXTURE).expect("the fixture decodes");
    assert_eq!(decoded, built);
    let lr = decoded.model("card_lr").unwrap();
    assert_eq!(lr.model.weights(), [0.75, -2.0, 1.5e-3, 3.0]);
    assert_eq!(lr.threshold, Some(0.7));
    assert_eq!(decoded.to_bytes(), CATALOG_V4_FIXTURE);
    assert_eq!(built.to_bytes(), CATALOG_V4_FIXTURE);
}

fn key(v: &Value) -> Vec<u8> {
    let mut k = Vec::new();
    encode_key(v, &mut k).unwrap();
    k
}

/// A Replace upsert of one `cards` row with a value of every type.
fn every_type_upsert(cat: &Catalog) -> Mutation {
    let row = vec![
        Value::Text("c1".into()),
        Value::Null,
        Value::Bool(true),
        Value::Double(-2.5),
        Value::Int(i64::MIN),
        Value::Timestamp(1_790_000_000_000_001),
        Value::Bytes(vec![0, 1, 255]),
    ];
    Mutation::Upsert {
        table_id: cat.table("cards").unwrap().id,
        mode: UpsertMode::Replace,
        column_idx: (0..7).collect(),
        rows: vec![(key(&row[0]), row)],
    }
}

/// Producer-tagged events of `tx` (one per amount) for the home copy and `card_10m`.
fn tx_events(cat: &Catalog, amounts: &[f64]) -> Events {
    let event = |amount: f64| {
        vec![
            Value::Timestamp(1_790_000_000_000_000),
            Value::Text("c1".into()),
            Value::Text("a1".into()),
            Value::Double(amount),
            Value::Int(3),
            Value::Bool(false),
            Value::Bytes(vec![0, 255]),
        ]
    };
    Events {
        stream_id: cat.stream("tx").unwrap().id,
        append_time_us: 1_790_000_000_500_000,
        producer: Some((77, 1)),
        duplicate: false,
        routing_version: cat.version,
        targets: vec![HOME_TARGET, cat.view("card_10m").unwrap().id],
        rows: amounts.iter().map(|&a| (0b11, event(a))).collect(),
    }
}

fn delete_c9(cat: &Catalog) -> Mutation {
    Mutation::Delete {
        table_id: cat.table("cards").unwrap().id,
        keys: vec![key(&Value::Text("c9".into()))],
    }
}

fn two_shard_txn() -> TxnPart {
    TxnPart {
        coordinator: 1,
        parts: vec![(0, 1), (1, 1)],
    }
}

/// One table with one row of every type, one view key, stream counters, a producer window,
/// a high-water mark and a part set aside: one entry of each, so the chunk order (hash-map
/// order otherwise) is fixed and the bytes are deterministic.
fn fixture_state(cat: &Catalog) -> ShardState {
    let mut st = ShardState::new();
    st.apply_record(cat, 0, 1, Record::Apply(every_type_upsert(cat)))
        .unwrap();
    let events = tx_events(cat, &[10.0, 20.0]);
    assert!(st.take_producer_seq(77, 1));
    st.apply_record(cat, 0, 2, Record::Apply(Mutation::Events(events)))
        .unwrap();
    let (part, txn) = (delete_c9(cat), two_shard_txn());
    st.apply_record(
        cat,
        0,
        3,
        Record::Prepare {
            txn,
            mutation: part,
        },
    )
    .unwrap();
    assert_eq!(
        st.txns().stash().keys().next(),
        Some(&TxnId {
            coordinator: 1,
            seq: 1
        })
    );
    st
}

const CHECKPOINT_FIXTURE: &[u8] = include_bytes!("fixtures/checkpoint-v4.bin");

#[test]
fn checkpoint_written_by_an_earlier_build_decodes_and_re_encodes_identically() {
    let cat = fixture_catalog();
    let built = fixture_state(&cat);
    let mut aligned = AlignedVec::<16>::new();
    aligned.extend_from_slice(CHECKPOINT_FIXTURE);
    let decoded = ShardState::from_checkpoint(&aligned, &cat).expect("the fixture decodes");
    // A restored window remembers it came from a checkpoint (replay skips records it holds),
    // so compare with the restore of today's checkpoint of the same state.
    let ours = built.to_checkpoint();
    // Versions 5 to 7 archive every pre-vector value exactly as version 4 did: only the
    // header's version (byte 8: 7, was 4) and the version byte of the prepared part's log
    // record (byte 96: record format 3, was 1) differ, and version 6 appends the index
    // position chunk (32 bytes, kind 3).
    let old_len = CHECKPOINT_FIXTURE.len();
    let diff: Vec<(usize, u8, u8)> = (0..old_len)
        .filter(|&i| ours[i] != CHECKPOINT_FIXTURE[i])
        .map(|i| (i, ours[i], CHECKPOINT_FIXTURE[i]))
        .collect();
    assert_eq!(ours.len(), old_len + 32);
    assert_eq!(ours[old_len + 8], 3);
    assert_eq!(diff, vec![(8, 7, 4), (96, 3, 1)]);
    assert_eq!(decoded, ShardState::from_checkpoint(&ours, &cat).unwrap());
    // A restored state does not know the log position its indexes were taken at (0 until a
    // record is applied): only the index position chunk differs.
    assert_eq!(&decoded.to_checkpoint()[..old_len], &ours[..old_len]);
}

/// Writes the fixtures with this build: `TARN_WRITE_FIXTURES=1 cargo test -p tarn-core
/// write_fixtures -- --ignored`. Only ever run on the build whose format the fixtures pin:
/// `catalog-v4.json` (catalog format 4, with models). `catalog-v3.json` pins format 3 (a
/// context, before models; written by commit b1dad48), `catalog-v2.json` format 2
/// (indexes, before contexts; written by commit 26eddf7), `catalog-v1.json` format 1 (before
/// indexes; written by commit 2210249) and `checkpoint-v4.bin` the format before VECTOR; they
/// are no longer written.
/// `records-v1.bin` was written by commit 791487a (before VECTOR) with the same
/// `fixture_records` as below.
#[test]
#[ignore]
fn write_fixtures() {
    if std::env::var_os("TARN_WRITE_FIXTURES").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tests/fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let cat = fixture_catalog_v4();
    std::fs::write(dir.join("catalog-v4.json"), cat.to_bytes()).unwrap();
}

/// Log records of every kind and every value type, as the record fixture holds them.
fn fixture_records(cat: &Catalog) -> Vec<Record> {
    let merge = Mutation::Upsert {
        table_id: cat.table("cards").unwrap().id,
        mode: UpsertMode::Merge,
        column_idx: vec![0, 3],
        rows: vec![(
            key(&Value::Text("c2".into())),
            vec![Value::Text("c2".into()), Value::Double(0.1)],
        )],
    };
    let id = TxnId {
        coordinator: 1,
        seq: 1,
    };
    vec![
        Record::Apply(every_type_upsert(cat)),
        Record::Apply(merge),
        Record::Apply(delete_c9(cat)),
        Record::Apply(Mutation::Events(tx_events(cat, &[10.0]))),
        Record::Prepare {
            txn: two_shard_txn(),
            mutation: delete_c9(cat),
        },
        Record::Commit(id, 1_790_000_000_600_000),
        Record::Abort(id),
    ]
}

/// Splits a records fixture (u32 LE length + payload, repeated).
fn split_records(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
        out.push(&b[4..4 + n]);
        b = &b[4 + n..];
    }
    out
}

const RECORDS_V1_FIXTURE: &[u8] = include_bytes!("fixtures/records-v1.bin");

/// `fixtures/records-v1.bin` was written by the build before VECTOR (record format 1, commit
/// 791487a): every record still decodes to the same record, and today's encoding differs only
/// in the version byte.
#[test]
fn log_records_written_before_vectors_decode_identically() {
    let expected = fixture_records(&fixture_catalog());
    let old = split_records(RECORDS_V1_FIXTURE);
    assert_eq!(old.len(), expected.len());
    for (bytes, rec) in old.iter().zip(&expected) {
        assert_eq!(bytes[0], 1, "a version-1 record");
        assert_eq!(&crate::record::decode_record(bytes).unwrap(), rec);
        let ours = crate::record::encode_record_to_vec(rec);
        assert_eq!(ours[0], crate::record::RECORD_FORMAT_VERSION);
        assert_eq!(&ours[1..], &bytes[1..], "{rec:?}");
    }
}

/// A table with a vector column, one row of it in a record and a checkpoint: the fixtures
/// pinning record format 2 and checkpoint format 5 with vectors.
fn vector_fixture() -> (Catalog, Record, ShardState) {
    let cat = catalog_with(&["CREATE TABLE docs (id BIGINT PRIMARY KEY, emb VECTOR(4), t TEXT)"]);
    let docs = cat.table("docs").unwrap();
    let row = vec![
        Value::Int(7),
        Value::Vector(vec![1.0, -0.0, 0.1, -3.5e-12].into()),
        Value::Null,
    ];
    let rec = Record::Apply(Mutation::Upsert {
        table_id: docs.id,
        mode: UpsertMode::Replace,
        column_idx: vec![0, 1, 2],
        rows: vec![(key(&row[0]), row)],
    });
    let mut st = ShardState::new();
    st.apply_record(&cat, 0, 1, rec.clone()).unwrap();
    (cat, rec, st)
}

const RECORD_V2_VECTOR_FIXTURE: &[u8] = include_bytes!("fixtures/record-v2-vector.bin");
const CHECKPOINT_V5_VECTOR_FIXTURE: &[u8] = include_bytes!("fixtures/checkpoint-v5-vector.bin");

#[test]
fn vector_record_and_checkpoint_fixtures_decode_and_re_encode_identically() {
    let (cat, rec, st) = vector_fixture();
    assert_eq!(
        crate::record::decode_record(RECORD_V2_VECTOR_FIXTURE).unwrap(),
        rec
    );
    // Record format 3 lays vectors out as format 2 did: only the version byte differs.
    let ours = crate::record::encode_record_to_vec(&rec);
    assert_eq!((ours[0], RECORD_V2_VECTOR_FIXTURE[0]), (3, 2));
    assert_eq!(&ours[1..], &RECORD_V2_VECTOR_FIXTURE[1..]);
    let mut aligned = AlignedVec::<16>::new();
    aligned.extend_from_slice(CHECKPOINT_V5_VECTOR_FIXTURE);
    let decoded = ShardState::from_checkpoint(&aligned, &cat).unwrap();
    assert_eq!(decoded, st);
    // Checkpoint format 7 (no stream keeps recent events here): the version byte, then the
    // same chunks and the index position.
    let ours = st.to_checkpoint();
    let old = CHECKPOINT_V5_VECTOR_FIXTURE;
    assert_eq!((ours[8], old[8]), (7, 5));
    assert_eq!(&ours[9..old.len()], &old[9..]);
    assert_eq!(ours.len(), old.len() + 32);
}

// The vector fixtures (`record-v2-vector.bin`, `checkpoint-v5-vector.bin`) were written by
// commit ee2b7db (record format 2, checkpoint format 5) and are no longer written; the index
// fixtures pinning formats 3 and 6 are in `index_persist`.
