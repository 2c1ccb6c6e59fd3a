use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rkyv::util::AlignedVec;
use tarn_types::{encode_key, ColumnType, Value};

use crate::batch::{validate_upsert, UpsertMode};
use crate::catalog::Catalog;
use crate::record::{decode, encode_to_vec, Mutation};
use crate::state::ShardState;
use crate::ErrorKind;

use super::{catalog_with, CARDS};

fn key(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(&Value::Text(s.into()), &mut out).unwrap();
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn up(cat: &Catalog, mode: UpsertMode, cols: &[&str], rows: Vec<Vec<Value>>) -> Mutation {
    let def = cat.table("cards").unwrap();
    let cols: Vec<String> = cols.iter().map(|s| s.to_string()).collect();
    validate_upsert(def, mode, &cols, rows)
        .unwrap()
        .into_mutation()
}

#[test]
fn replace_merge_delete() {
    let cat = catalog_with(&[CARDS]);
    let mut st = ShardState::new();
    let n = st.apply(
        &cat,
        &up(
            &cat,
            UpsertMode::Replace,
            &["card_id", "risk", "n"],
            vec![
                vec![text("a"), Value::Double(0.5), Value::Int(1)],
                vec![text("b"), Value::Null, Value::Int(2)],
            ],
        ),
    );
    assert_eq!(n, 2);
    assert_eq!(
        st.get(1, &key("a")).unwrap(),
        &[
            text("a"),
            Value::Null,
            Value::Null,
            Value::Double(0.5),
            Value::Int(1),
            Value::Null,
            Value::Null
        ]
    );
    assert_eq!(st.table_len(1), 2);

    // Merge: listed columns change, others kept; a new row gets NULLs.
    st.apply(
        &cat,
        &up(
            &cat,
            UpsertMode::Merge,
            &["card_id", "flagged"],
            vec![
                vec![text("a"), Value::Bool(true)],
                vec![text("c"), Value::Bool(false)],
            ],
        ),
    );
    assert_eq!(
        st.get(1, &key("a")).unwrap(),
        &[
            text("a"),
            Value::Null,
            Value::Bool(true),
            Value::Double(0.5),
            Value::Int(1),
            Value::Null,
            Value::Null
        ]
    );
    assert_eq!(
        st.get(1, &key("c")).unwrap(),
        &[
            text("c"),
            Value::Null,
            Value::Bool(false),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null
        ]
    );

    // Replace: unlisted columns become NULL.
    st.apply(
        &cat,
        &up(
            &cat,
            UpsertMode::Replace,
            &["card_id", "n"],
            vec![vec![text("a"), Value::Int(9)]],
        ),
    );
    assert_eq!(
        st.get(1, &key("a")).unwrap(),
        &[
            text("a"),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Int(9),
            Value::Null,
            Value::Null
        ]
    );

    // Repeated key within a batch: applied in order, last wins.
    st.apply(
        &cat,
        &up(
            &cat,
            UpsertMode::Merge,
            &["card_id", "n"],
            vec![
                vec![text("d"), Value::Int(1)],
                vec![text("d"), Value::Int(2)],
            ],
        ),
    );
    assert_eq!(st.get(1, &key("d")).unwrap()[4], Value::Int(2));
    assert_eq!(st.total_rows(), 4);

    let del = Mutation::Delete {
        table_id: 1,
        keys: vec![key("a"), key("zz"), key("c")],
    };
    assert_eq!(st.apply(&cat, &del), 2);
    assert!(st.get(1, &key("a")).is_none());
    assert_eq!(st.table_len(1), 2);
    assert_eq!(st.apply(&cat, &del), 0);

    // Records of unknown (dropped) tables are skipped.
    let gone = Mutation::Delete {
        table_id: 77,
        keys: vec![key("b")],
    };
    assert_eq!(st.apply(&cat, &gone), 0);
    let (cat2, _) = cat
        .apply_ddl(&crate::sql::parse("DROP TABLE cards").unwrap()[0])
        .unwrap();
    let m = Mutation::Upsert {
        table_id: 1,
        mode: UpsertMode::Replace,
        column_idx: vec![0],
        rows: vec![(key("q"), vec![text("q")])],
    };
    assert_eq!(st.apply(&cat2, &m), 0);
    assert!(st.get(1, &key("q")).is_none());
    st.drop_table(1);
    assert_eq!(st.total_rows(), 0);
    assert_eq!(st.table_len(1), 0);
}

fn random_state(rng: &mut StdRng, cat: &Catalog, n: usize) -> (ShardState, Vec<Mutation>) {
    let def = cat.table("cards").unwrap();
    let mut st = ShardState::new();
    let mut log = Vec::new();
    let all = [
        "card_id",
        "account_id",
        "flagged",
        "risk",
        "n",
        "seen",
        "blob",
    ];
    for _ in 0..n {
        let m = if rng.random_bool(0.15) {
            Mutation::Delete {
                table_id: def.id,
                keys: (0..3)
                    .map(|_| key(&format!("k{}", rng.random_range(0..40))))
                    .collect(),
            }
        } else {
            let mut cols: Vec<String> = vec!["card_id".into()];
            for c in &all[1..] {
                if rng.random_bool(0.5) {
                    cols.push(c.to_string());
                }
            }
            let rows = (0..rng.random_range(1..5))
                .map(|_| {
                    cols.iter()
                        .map(|c| {
                            let i = def.column_index(c).unwrap();
                            if i == def.key_column {
                                return Value::Text(format!("k{}", rng.random_range(0..40)));
                            }
                            if rng.random_bool(0.2) {
                                return Value::Null;
                            }
                            match def.columns[i].ty {
                                ColumnType::Boolean => Value::Bool(rng.random()),
                                ColumnType::BigInt => Value::Int(rng.random()),
                                ColumnType::Double => Value::Double(rng.random_range(-1e9..1e9)),
                                ColumnType::Text => {
                                    Value::Text(format!("t{}é", rng.random::<u32>()))
                                }
                                ColumnType::Bytes => Value::Bytes(
                                    (0..rng.random_range(0..9)).map(|_| rng.random()).collect(),
                                ),
                                ColumnType::Timestamp => Value::Timestamp(rng.random()),
                                ColumnType::Vector(d) => Value::Vector(
                                    (0..d).map(|_| rng.random_range(-1.0..1.0)).collect(),
                                ),
                            }
                        })
                        .collect()
                })
                .collect();
            let mode = if rng.random() {
                UpsertMode::Replace
            } else {
                UpsertMode::Merge
            };
            validate_upsert(def, mode, &cols, rows)
                .unwrap()
                .into_mutation()
        };
        // Through the log encoding, as replay would.
        let m = decode(&encode_to_vec(&m)).unwrap();
        st.apply(cat, &m);
        log.push(m);
    }
    (st, log)
}

#[test]
fn replay_is_deterministic() {
    let cat = catalog_with(&[CARDS]);
    let mut rng = StdRng::seed_from_u64(7);
    let (st, log) = random_state(&mut rng, &cat, 500);
    let mut again = ShardState::new();
    for m in &log {
        again.apply(&cat, m);
    }
    assert_eq!(again, st);
    let mut owned = ShardState::new();
    for m in log {
        owned.apply_owned(&cat, m);
    }
    assert_eq!(owned, st);
    assert!(st.total_rows() > 10);
}

fn aligned(b: &[u8]) -> AlignedVec<16> {
    let mut v = AlignedVec::<16>::new();
    v.extend_from_slice(b);
    v
}

#[test]
fn checkpoint_roundtrip() {
    let cat = catalog_with(&[CARDS, "CREATE TABLE other (k BIGINT PRIMARY KEY, v TEXT)"]);
    let mut rng = StdRng::seed_from_u64(99);
    let (mut st, _) = random_state(&mut rng, &cat, 300);
    // A row with every type and one with all NULLs.
    let all = up(
        &cat,
        UpsertMode::Replace,
        &[
            "card_id",
            "account_id",
            "flagged",
            "risk",
            "n",
            "seen",
            "blob",
        ],
        vec![
            vec![
                text("every"),
                text("ü"),
                Value::Bool(true),
                Value::Double(-0.0),
                Value::Int(i64::MIN),
                Value::Timestamp(i64::MAX),
                Value::Bytes(vec![]),
            ],
            vec![
                text("nulls"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        ],
    );
    st.apply(&cat, &all);
    let other = cat.table("other").unwrap();
    let mut k = Vec::new();
    encode_key(&Value::Int(1), &mut k).unwrap();
    st.apply(
        &cat,
        &Mutation::Upsert {
            table_id: other.id,
            mode: UpsertMode::Replace,
            column_idx: vec![0, 1],
            rows: vec![(k.clone(), vec![Value::Int(1), text("x")])],
        },
    );

    let bytes = st.to_checkpoint();
    assert_eq!(&bytes[..8], b"TARNCKPT");
    let back = ShardState::from_checkpoint(&bytes, &cat).unwrap();
    assert_eq!(back, st);
    assert_eq!(back.get(other.id, &k).unwrap(), &[Value::Int(1), text("x")]);
    // A checkpoint of the restored state restores the same state again.
    assert_eq!(
        ShardState::from_checkpoint(&back.to_checkpoint(), &cat).unwrap(),
        st
    );

    // Empty state.
    let empty = ShardState::new().to_checkpoint();
    assert_eq!(
        ShardState::from_checkpoint(&empty, &cat).unwrap(),
        ShardState::new()
    );

    // Tables dropped since the checkpoint are skipped.
    let (cat2, _) = cat
        .apply_ddl(&crate::sql::parse("DROP TABLE other").unwrap()[0])
        .unwrap();
    let back = ShardState::from_checkpoint(&bytes, &cat2).unwrap();
    assert_eq!(back.table_len(other.id), 0);
    assert_eq!(back.table_len(1), st.table_len(1));
}

#[test]
fn corrupted_checkpoint_is_corrupt() {
    let cat = catalog_with(&[CARDS]);
    let mut rng = StdRng::seed_from_u64(3);
    let (st, _) = random_state(&mut rng, &cat, 50);
    let bytes = st.to_checkpoint();

    let check = |b: &[u8]| match ShardState::from_checkpoint(&aligned(b), &cat) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
    };
    let must_fail = |b: &[u8]| {
        let e = ShardState::from_checkpoint(&aligned(b), &cat).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    };
    must_fail(&[]);
    must_fail(&bytes[..10]);
    must_fail(&bytes[..bytes.len() - 1]);
    must_fail(&bytes[..bytes.len() / 2]);
    let mut b = bytes.to_vec();
    b[0] = b'X';
    must_fail(&b);
    let mut b = bytes.to_vec();
    b[8] = 1; // the old single-archive format
    must_fail(&b);
    let mut b = bytes.to_vec();
    // The last table chunk ends before the index position chunk (16-byte header, 16-byte
    // archive, kind 3).
    let n = b.len() - 32;
    assert_eq!(b[n + 8], 3, "the index position chunk comes last");
    b[n - 4..n].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]); // root pointer out of range
    must_fail(&b);
    // Without the index position chunk (required from format 6 on).
    must_fail(&bytes[..bytes.len() - 32]);
    // Random byte flips in the archive: never a panic; an error is always Corrupt.
    for _ in 0..2000 {
        let mut b = bytes.to_vec();
        let i = rng.random_range(16..b.len());
        b[i] = rng.random();
        check(&b);
    }
    // A table whose width disagrees with the catalog.
    let narrow = catalog_with(&["CREATE TABLE cards (card_id TEXT PRIMARY KEY)"]);
    let e = ShardState::from_checkpoint(&bytes, &narrow).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
}

/// The incremental checkpoint is fuzzy (rows may already include mutations applied while it
/// was being built); restoring it and replaying every mutation applied after the builder
/// started must give exactly the live state.
#[test]
fn fuzzy_incremental_checkpoint_plus_replay_is_exact() {
    let cat = catalog_with(&[CARDS]);
    for seed in 0..20 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        let (mut st, _) = random_state(&mut rng, &cat, 200);
        let (_, later) = random_state(&mut rng, &cat, 300);
        let mut b = st.checkpoint_builder();
        let mut applied_after_start = Vec::new();
        let mut pending = later.into_iter();
        loop {
            // Interleave: a few mutations, then a small step of the checkpoint.
            for m in pending.by_ref().take(rng.random_range(0..4)) {
                st.apply(&cat, &m);
                applied_after_start.push(m);
            }
            if b.step(&st, rng.random_range(1..5)) {
                break;
            }
        }
        for m in pending {
            st.apply(&cat, &m);
            applied_after_start.push(m);
        }
        let mut bytes = AlignedVec::<16>::new();
        for part in b.finish() {
            bytes.extend_from_slice(&part);
        }
        let mut restored = ShardState::from_checkpoint(&bytes, &cat).unwrap();
        for m in &applied_after_start {
            restored.apply(&cat, m);
        }
        assert_eq!(restored, st, "seed {seed}");
    }
}
