use tarn_types::{encode_key, shard_for, ColumnType, Value, MAX_VALUE_BYTES};

use crate::batch::{by_owner, split_by_shard, validate_keys, validate_upsert, UpsertMode};
use crate::record::Mutation;
use crate::schema::TableDef;
use crate::{CoreError, ErrorKind};

use super::{catalog_with, CARDS};

fn cards() -> TableDef {
    catalog_with(&[CARDS]).table("cards").unwrap().clone()
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn key(v: Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(&v, &mut out).unwrap();
    out
}

fn upsert(
    names: &[&str],
    rows: Vec<Vec<Value>>,
) -> Result<crate::batch::ValidatedUpsert, CoreError> {
    validate_upsert(&cards(), UpsertMode::Replace, &cols(names), rows)
}

#[test]
fn valid_batch_is_encoded_and_coerced() {
    let v = validate_upsert(
        &cards(),
        UpsertMode::Merge,
        &cols(&["risk", "card_id", "seen"]),
        vec![
            vec![Value::Double(0.5), text("c1"), Value::Timestamp(7)],
            vec![Value::Int(3), text("c2"), Value::Int(9)],
            vec![Value::Null, text("c3"), Value::Null],
        ],
    )
    .unwrap();
    assert_eq!(v.table_id, 1);
    assert_eq!(v.mode, UpsertMode::Merge);
    assert_eq!(v.column_idx, vec![3, 0, 5]);
    assert_eq!(
        v.keys,
        vec![key(text("c1")), key(text("c2")), key(text("c3"))]
    );
    // Int coerced to the column's type.
    assert_eq!(
        v.rows[1],
        vec![Value::Double(3.0), text("c2"), Value::Timestamp(9)]
    );
}

#[test]
fn each_error_class_names_row_and_column() {
    let e = upsert(&["card_id"], vec![]).unwrap_err();
    assert_eq!(e, CoreError::BatchEmpty);

    let e = upsert(&["card_id", "nope"], vec![vec![text("a"), Value::Null]]).unwrap_err();
    assert_eq!(
        e,
        CoreError::UnknownColumn {
            table: "cards".into(),
            column: "nope".into()
        }
    );
    assert_eq!(e.to_string(), "table \"cards\" has no column \"nope\"");

    let e = upsert(&["card_id", "risk", "risk"], vec![]).unwrap_err();
    assert_eq!(e, CoreError::BatchEmpty, "emptiness is checked first");
    let e = upsert(
        &["card_id", "risk", "risk"],
        vec![vec![text("a"), Value::Null, Value::Null]],
    )
    .unwrap_err();
    assert_eq!(
        e,
        CoreError::DuplicateColumn {
            column: "risk".into()
        }
    );

    let e = upsert(&["risk"], vec![vec![Value::Null]]).unwrap_err();
    assert_eq!(
        e,
        CoreError::MissingKey {
            column: "card_id".into()
        }
    );
    assert_eq!(e.column(), Some("card_id"));

    let good = || vec![text("a"), Value::Double(1.0)];
    let e = upsert(
        &["card_id", "risk"],
        vec![good(), good(), good(), vec![text("d"), text("high")]],
    )
    .unwrap_err();
    assert_eq!(
        e,
        CoreError::TypeMismatch {
            row: Some(3),
            column: Some("risk".into()),
            expected: ColumnType::Double,
            got: ColumnType::Text
        }
    );
    assert_eq!(
        e.to_string(),
        "row 3, column \"risk\": expected DOUBLE, got TEXT"
    );
    assert_eq!((e.row(), e.column()), (Some(3), Some("risk")));

    let e = upsert(&["card_id", "risk"], vec![good(), vec![text("b")]]).unwrap_err();
    assert_eq!(
        e,
        CoreError::RowArity {
            row: Some(1),
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        e.to_string(),
        "row 1: has 1 values, expected 2 (one per listed column)"
    );

    let e = upsert(
        &["card_id", "risk"],
        vec![good(), vec![Value::Null, Value::Null]],
    )
    .unwrap_err();
    assert_eq!(
        e,
        CoreError::NullKey {
            row: Some(1),
            column: Some("card_id".into())
        }
    );
    assert_eq!(
        e.to_string(),
        "row 1, column \"card_id\": primary key is NULL"
    );

    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = upsert(
            &["card_id", "risk"],
            vec![good(), good(), vec![text("c"), Value::Double(bad)]],
        )
        .unwrap_err();
        assert_eq!(
            e,
            CoreError::NonFiniteDouble {
                row: Some(2),
                column: Some("risk".into())
            }
        );
    }

    let big = "x".repeat(MAX_VALUE_BYTES + 1);
    let e = upsert(
        &["card_id", "account_id"],
        vec![vec![text("a"), Value::Text(big.clone())]],
    )
    .unwrap_err();
    assert_eq!(
        e,
        CoreError::ValueTooLong {
            row: Some(0),
            column: Some("account_id".into()),
            len: MAX_VALUE_BYTES + 1,
            max: MAX_VALUE_BYTES
        }
    );
    let e = upsert(
        &["card_id", "blob"],
        vec![
            good_blob(),
            vec![text("a"), Value::Bytes(vec![0; MAX_VALUE_BYTES + 1])],
        ],
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueTooLong);
    assert_eq!((e.row(), e.column()), (Some(1), Some("blob")));
    let e = upsert(&["card_id"], vec![vec![Value::Text(big)]]).unwrap_err();
    assert_eq!(
        (e.kind(), e.row(), e.column()),
        (ErrorKind::ValueTooLong, Some(0), Some("card_id"))
    );
    // Exactly at the limit is fine.
    upsert(
        &["card_id", "blob"],
        vec![vec![text("a"), Value::Bytes(vec![0; MAX_VALUE_BYTES])]],
    )
    .unwrap();

    // No other coercions.
    let e = upsert(
        &["card_id", "n"],
        vec![vec![text("a"), Value::Timestamp(1)]],
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch);
    let e = upsert(&["card_id", "blob"], vec![vec![text("a"), text("x")]]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch);
    let e = upsert(
        &["card_id", "risk"],
        vec![vec![text("a"), Value::Int(1 << 60)]],
    )
    .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::TypeMismatch,
        "lossy Int -> DOUBLE is refused"
    );
    let e = upsert(&["card_id"], vec![vec![Value::Int(1)]]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "row 0, column \"card_id\": expected TEXT, got BIGINT"
    );
}

fn good_blob() -> Vec<Value> {
    vec![text("a"), Value::Bytes(vec![1, 2])]
}

#[test]
fn keys_are_validated_and_encoded() {
    let def = cards();
    assert_eq!(
        validate_keys(&def, &[text("a"), text("b")]).unwrap(),
        vec![key(text("a")), key(text("b"))]
    );
    let e = validate_keys(&def, &[text("a"), Value::Null]).unwrap_err();
    assert_eq!(
        e,
        CoreError::NullKey {
            row: Some(1),
            column: Some("card_id".into())
        }
    );
    let e = validate_keys(&def, &[Value::Int(1)]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch);
    assert_eq!(validate_keys(&def, &[]).unwrap_err(), CoreError::BatchEmpty);

    // TIMESTAMP keys accept Int, encoded as Timestamp.
    let cat = catalog_with(&["CREATE TABLE ev (ts TIMESTAMP PRIMARY KEY, v BIGINT)"]);
    let ev = cat.table("ev").unwrap();
    assert_eq!(
        validate_keys(ev, &[Value::Int(5), Value::Timestamp(5)]).unwrap(),
        vec![key(Value::Timestamp(5)), key(Value::Timestamp(5))]
    );
    let v = validate_upsert(
        ev,
        UpsertMode::Replace,
        &cols(&["ts"]),
        vec![vec![Value::Int(5)]],
    )
    .unwrap();
    assert_eq!(v.keys[0], key(Value::Timestamp(5)));
}

#[test]
fn split_keeps_order_and_routes_by_key() {
    let rows: Vec<Vec<Value>> = (0..200)
        .map(|i| vec![text(&format!("c{}", i % 50)), Value::Int(i)])
        .collect();
    let v = upsert(&["card_id", "n"], rows).unwrap();
    let total = v.rows.len();
    let parts = split_by_shard(v.clone(), 4);
    assert_eq!(parts.len(), 4);
    let mut seen = 0;
    for (s, part) in parts.iter().enumerate() {
        let Some(part) = part else { continue };
        assert_eq!(part.column_idx, v.column_idx);
        assert_eq!(part.rows.len(), part.keys.len());
        for k in &part.keys {
            assert_eq!(shard_for(k, 4) as usize, s);
        }
        // Batch order within the part.
        let ns: Vec<i64> = part
            .rows
            .iter()
            .map(|r| match r[1] {
                Value::Int(n) => n,
                _ => panic!(),
            })
            .collect();
        assert!(ns.windows(2).all(|w| w[0] < w[1]));
        seen += part.rows.len();
    }
    assert_eq!(seen, total);

    let one = split_by_shard(v.clone(), 1);
    assert_eq!(one[0].as_ref().unwrap(), &v);
    let Mutation::Upsert { rows, .. } = v.clone().into_mutation() else {
        panic!()
    };
    assert_eq!(rows.len(), total);
    assert_eq!(rows[0], (v.keys[0].clone(), v.rows[0].clone()));

    let keys: Vec<Vec<u8>> = (0..20).map(|i| key(Value::Int(i))).collect();
    let parts = by_owner(keys.clone(), 3, |_, k| k);
    assert!(parts.windows(2).all(|w| w[0].shard < w[1].shard));
    for p in &parts {
        assert!(p.items.iter().all(|k| shard_for(k, 3) == p.shard));
    }
    let mut back: Vec<(usize, Vec<u8>)> = parts
        .into_iter()
        .flat_map(|p| p.indexes.into_iter().zip(p.items))
        .collect();
    back.sort();
    assert_eq!(back, keys.into_iter().enumerate().collect::<Vec<_>>());
}
