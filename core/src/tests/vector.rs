//! VECTOR(n): the conversion rule, the SQL type and literals, batch validation, and the log
//! and checkpoint encodings of vector values.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_types::{encode_key, ColumnType, Value};

use crate::batch::{validate_upsert, UpsertMode};
use crate::record::{decode_record, encode_record_to_vec, Mutation, Record};
use crate::sql::insert::resolve_insert;
use crate::sql::{parse, Statement};
use crate::state::ShardState;
use crate::vector::{from_json, parse_text, to_json, to_text};
use crate::{CoreError, ErrorKind};

use super::{catalog_with, def_of};

const DOCS: &str = "CREATE TABLE docs (id BIGINT PRIMARY KEY, emb VECTOR(3), title TEXT)";

fn bad_vector(e: &CoreError) -> String {
    assert_eq!(e.kind(), ErrorKind::BadVector, "{e}");
    e.to_string()
}

/// Random f32 values of every kind the text form must carry exactly: zero and -0, subnormals,
/// tiny, ordinary, large up to the component limit.
fn random_component(rng: &mut StdRng) -> f32 {
    match rng.random_range(0..6) {
        0 => 0.0,
        1 => -0.0,
        2 => f32::from_bits(rng.random_range(1..0x0080_0000)),
        3 => rng.random_range(-1.0e-30f32..1.0e-30),
        4 => rng.random_range(-1.0e16f32..1.0e16),
        _ => rng.random_range(-2.0f32..2.0),
    }
}

#[test]
fn text_and_json_forms_round_trip_bit_exactly() {
    let mut rng = StdRng::seed_from_u64(0x7ec7);
    for _ in 0..2000 {
        let n = rng.random_range(1..20u32);
        let v: Vec<f32> = (0..n).map(|_| random_component(&mut rng)).collect();
        let text = to_text(&v);
        let back = parse_text(&text, n).unwrap_or_else(|e| panic!("{text}: {e}"));
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&v), "{text}");
        let json = serde_json::to_string(&to_json(&v)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let back = from_json(&parsed, n).unwrap();
        // JSON has no -0 distinct from 0 in every parser; serde_json keeps it.
        assert_eq!(bits(&back), bits(&v), "{json}");
    }
    assert_eq!(to_text(&[1.0, 2.5, -3.0]), "[1,2.5,-3]");
    assert_eq!(to_text(&[0.1, 1e-7, -0.0]), "[0.1,1e-7,-0]");
}

#[test]
fn numbers_round_to_the_nearest_f32() {
    // 0.1 as f64, rounded to f32, is 0.1f32; 16777217 (2^24 + 1) ties to even, 16777216.
    let v = parse_text("[0.1, 16777217, 3.4028235e38]", 3).unwrap_err();
    assert!(v.contains("component 2"), "{v}"); // over the magnitude limit, not overflow
    let v = parse_text("[ 0.1 ,16777217 , -1e-3 ]", 3).unwrap();
    assert_eq!(&v[..], &[0.1f32, 16_777_216.0, -0.001]);
}

#[test]
fn every_bad_vector_has_a_specific_reason() {
    let cases: &[(&str, &str)] = &[
        ("[]", "empty vector"),
        ("[1, 2]", "vector has 2 dimensions, expected 3"),
        ("[1, 2, 3, 4]", "vector has 4 dimensions, expected 3"),
        ("[1, NaN, 3]", "component 1 is NaN"),
        ("[1, 2, inf]", "component 2 is +infinity"),
        ("[-Infinity, 2, 3]", "component 0 is -infinity"),
        (
            "[1, 1e39, 3]",
            "component 1 is 1e39, which overflows a 32-bit float",
        ),
        (
            "[1, 2, 1e400]",
            "component 2 is inf, which overflows a 32-bit float",
        ),
        ("[1, x, 3]", "component 1 is not a decimal number"),
        ("[1, , 3]", "component 1 is empty, not a number"),
        (
            "[1, 1e17, 3]",
            "vector component 1 is 1e17, larger in magnitude than the limit",
        ),
        ("1, 2, 3", "expected a VECTOR(3) as text `[x, y, …]`"),
    ];
    for (text, needle) in cases {
        let e = parse_text(text, 3).unwrap_err();
        assert!(e.contains(needle), "{text}: `{e}` lacks `{needle}`");
    }
    let json = |s: &str| from_json(&serde_json::from_str(s).unwrap(), 3).unwrap_err();
    assert!(json("[1, \"2\", 3]").contains("component 1 is a string, not a number"));
    assert!(json("[1, null, 3]").contains("component 1 is null"));
    assert!(json("{\"a\": 1}").contains("as a JSON array of numbers, got an object"));
    assert!(json("\"[1,2,3]\"").contains("got a string"));
    assert!(json("[]").contains("empty vector"));
    assert!(json("[1e39, 0, 0]").contains("component 0 is 1e39, which overflows"));
}

#[test]
fn create_table_takes_vector_n_and_refuses_bad_dimensions_and_vector_keys() {
    let def = def_of("CREATE TABLE t (id BIGINT PRIMARY KEY, emb VECTOR(64), e2 vector(4096))");
    assert_eq!(def.columns[1].ty, ColumnType::Vector(64));
    assert_eq!(def.columns[2].ty, ColumnType::Vector(4096));
    assert_eq!(def.columns[1].ty.to_string(), "VECTOR(64)");
    let err = |sql: &str| parse(sql).expect_err(sql);
    for (sql, needle) in [
        (
            "CREATE TABLE t (id BIGINT PRIMARY KEY, e VECTOR(0))",
            "dimension 0 is out of range: must be 1..=4096",
        ),
        (
            "CREATE TABLE t (id BIGINT PRIMARY KEY, e VECTOR(5000))",
            "dimension 5000 is out of range",
        ),
        (
            "CREATE TABLE t (id BIGINT PRIMARY KEY, e VECTOR(99999999999))",
            "dimension 99999999999 is out of range",
        ),
        (
            "CREATE TABLE t (id BIGINT PRIMARY KEY, e VECTOR)",
            "VECTOR needs its dimension",
        ),
        (
            "CREATE TABLE t (id BIGINT PRIMARY KEY, e VECTOR(3, 4))",
            "VECTOR needs its dimension",
        ),
    ] {
        let e = err(sql);
        let m = bad_vector(&e);
        assert!(
            m.contains(needle) && m.contains("column \"e\""),
            "{sql}: {m}"
        );
    }
    let e = err("CREATE TABLE t (e VECTOR(3) PRIMARY KEY, x TEXT)");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string()
            .contains("VECTOR(3) primary key on column \"e\""),
        "{e}"
    );
    let e =
        err("CREATE STREAM s (ts TIMESTAMP, e VECTOR(3)) WITH (event_time = ts, partition = e)");
    assert!(
        e.to_string()
            .contains("partition column \"e\" is VECTOR(3)"),
        "{e}"
    );
    // 65 columns of 4,096 components: over MAX_VECTOR_COMPONENTS_PER_ROW (64 fit).
    let cols: Vec<String> = (0..65).map(|i| format!("e{i} VECTOR(4096)")).collect();
    let e = err(&format!(
        "CREATE TABLE w (id BIGINT PRIMARY KEY, {})",
        cols.join(", ")
    ));
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(
        e.to_string().contains("266240 vector components per row"),
        "{e}"
    );
    def_of(&format!(
        "CREATE TABLE w (id BIGINT PRIMARY KEY, {})",
        cols[..64].join(", ")
    ));
}

#[test]
fn catalog_json_spells_the_dimension_and_describe_shows_it() {
    let cat = catalog_with(&[DOCS]);
    let json = String::from_utf8(cat.to_bytes()).unwrap();
    assert!(json.contains("\"Vector\": 3"), "{json}");
    let back = crate::catalog::Catalog::from_bytes(&cat.to_bytes()).unwrap();
    assert_eq!(back, cat);
    let listing = crate::listing::describe(&cat, "docs", &|_| (0, 0)).unwrap();
    assert_eq!(listing.rows[1][1], Value::Text("VECTOR(3)".into()));
    let broken = json.replace("\"Vector\": 3", "\"Vector\": 0");
    let e = crate::catalog::Catalog::from_bytes(broken.as_bytes()).unwrap_err();
    assert!(e.is_corrupt(), "{e}");
}

fn insert(sql: &str) -> Result<(Vec<String>, Vec<Vec<Value>>), CoreError> {
    let cat = catalog_with(&[DOCS]);
    match parse(sql)?.remove(0) {
        Statement::Insert {
            table,
            columns,
            rows,
        } => resolve_insert(cat.table(&table).unwrap(), columns, rows),
        other => panic!("not an INSERT: {other:?}"),
    }
}

#[test]
fn insert_takes_text_and_array_vector_literals() {
    let (cols, rows) = insert(
        "INSERT INTO docs VALUES (1, '[1, 2.5, -3]', 'a'), (2, ARRAY[0.5, -1, +2e0], NULL), \
         (3, NULL, 'c')",
    )
    .unwrap();
    assert_eq!(cols, vec!["id", "emb", "title"]);
    assert_eq!(rows[0][1], Value::Vector(vec![1.0, 2.5, -3.0].into()));
    assert_eq!(rows[1][1], Value::Vector(vec![0.5, -1.0, 2.0].into()));
    assert_eq!(rows[2][1], Value::Null);
    let (cols, _) = insert("INSERT INTO docs (emb, id) VALUES ('[1,2,3]', 9)").unwrap();
    assert_eq!(cols, vec!["emb", "id"]);
    for (sql, needle) in [
        (
            "INSERT INTO docs VALUES (1, '[1,2,3]', 'a'), (2, '[1,2]', 'b')",
            "row 1, column \"emb\": vector has 2 dimensions, expected 3",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (1, ARRAY[1, 'x', 3])",
            "row 0, column \"emb\": vector component 1 is a string, not a number",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (1, ARRAY[])",
            "empty vector",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (1, '[1, NaN, 3]')",
            "component 1 is NaN",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (1, ARRAY[1, 2, 1e39])",
            "component 2 is 1e39, which overflows",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (1, 'not a vector')",
            "expected a VECTOR(3) as text",
        ),
    ] {
        let m = bad_vector(&insert(sql).unwrap_err());
        assert!(m.contains(needle), "{sql}: {m}");
    }
    let e = insert("INSERT INTO docs (id, title) VALUES (1, ARRAY[1, 2])").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
    let e = insert("INSERT INTO docs (id, nope) VALUES (1, ARRAY[1, 2])").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownColumn, "{e}");
    let e = insert("INSERT INTO docs (id, emb) VALUES (1, '[1,2,3]', ARRAY[1])").unwrap_err();
    assert_eq!(
        e.to_string(),
        "row 0: has 3 values, expected 2 (one per listed column)"
    );
}

#[test]
fn upsert_validation_checks_vectors_and_applies_nothing_of_a_bad_batch() {
    let cat = catalog_with(&[DOCS]);
    let def = cat.table("docs").unwrap();
    let cols = vec!["id".to_string(), "emb".to_string()];
    let row = |id: i64, v: Vec<f32>| vec![Value::Int(id), Value::Vector(v.into())];
    let ok = validate_upsert(
        def,
        UpsertMode::Replace,
        &cols,
        vec![row(1, vec![1.0, 2.0, 3.0])],
    );
    assert!(ok.is_ok());
    for (v, needle) in [
        (
            vec![1.0, 2.0],
            "row 1, column \"emb\": vector has 2 dimensions, expected 3",
        ),
        (vec![], "row 1, column \"emb\": empty vector"),
        (vec![1.0, f32::NAN, 3.0], "component 1 is NaN"),
        (vec![f32::INFINITY, 0.0, 0.0], "component 0 is +infinity"),
        (
            vec![0.0, 0.0, f32::NEG_INFINITY],
            "component 2 is -infinity",
        ),
    ] {
        let rows = vec![row(0, vec![0.0; 3]), row(1, v)];
        let e = validate_upsert(def, UpsertMode::Replace, &cols, rows).unwrap_err();
        assert_eq!(e.row(), Some(1));
        assert_eq!(e.column(), Some("emb"));
        let m = bad_vector(&e);
        assert!(m.contains(needle), "{m}");
    }
    let e = validate_upsert(
        def,
        UpsertMode::Replace,
        &cols,
        vec![vec![Value::Int(1), Value::Text("[1,2,3]".into())]],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "row 0, column \"emb\": expected VECTOR(3), got TEXT"
    );
    let mut k = Vec::new();
    assert!(encode_key(&Value::Vector(vec![1.0].into()), &mut k).is_err());
}

fn docs_upsert(cat: &crate::catalog::Catalog, rows: Vec<(i64, Option<Vec<f32>>)>) -> Mutation {
    let def = cat.table("docs").unwrap();
    let cols = vec!["id".to_string(), "emb".to_string()];
    let rows = rows
        .into_iter()
        .map(|(id, v)| {
            vec![
                Value::Int(id),
                v.map_or(Value::Null, |v| Value::Vector(v.into())),
            ]
        })
        .collect();
    validate_upsert(def, UpsertMode::Replace, &cols, rows)
        .unwrap()
        .into_mutation()
}

#[test]
fn log_records_carry_vectors_bit_exactly_and_refuse_bad_counts() {
    let cat = catalog_with(&[DOCS]);
    let v = vec![-0.0, f32::from_bits(1), 1.0e16];
    let m = docs_upsert(&cat, vec![(1, Some(v.clone())), (2, None)]);
    let rec = Record::Apply(m);
    let bytes = encode_record_to_vec(&rec);
    assert_eq!(bytes[0], 3, "record format 3");
    assert_eq!(decode_record(&bytes).unwrap(), rec);
    // The vector value: tag 7, u32 count 3, then the components' bits.
    let mut tail = vec![7u8, 3, 0, 0, 0];
    for x in &v {
        tail.extend_from_slice(&x.to_le_bytes());
    }
    assert!(bytes.windows(tail.len()).any(|w| w == tail.as_slice()));
    let at = bytes
        .windows(tail.len())
        .position(|w| w == tail.as_slice())
        .unwrap();
    for count in [0u32, 4097, u32::MAX] {
        let mut b = bytes.clone();
        b[at + 1..at + 5].copy_from_slice(&count.to_le_bytes());
        assert!(decode_record(&b).unwrap_err().is_corrupt());
    }
    // A version-1 record cannot hold a vector: tag 7 there is corruption.
    let mut old = bytes.clone();
    old[0] = 1;
    let e = decode_record(&old).unwrap_err();
    assert!(e.to_string().contains("unknown value tag 7"), "{e}");
}

#[test]
fn checkpoints_carry_vectors_bit_exactly() {
    let cat = catalog_with(&[DOCS]);
    let mut st = ShardState::new();
    let m = docs_upsert(
        &cat,
        vec![
            (1, Some(vec![0.25, -0.0, 7.0])),
            (2, None),
            (3, Some(vec![1.0, 2.0, 3.0])),
        ],
    );
    st.apply_record(&cat, 0, 1, Record::Apply(m)).unwrap();
    let ck = st.to_checkpoint();
    let back = ShardState::from_checkpoint(&ck, &cat).unwrap();
    // (Rows are chunked in hash-map order, so only the state is compared, not the bytes.)
    assert_eq!(back, st);
}

#[test]
fn checkpoint_steps_stay_bounded_in_bytes_with_large_vector_rows() {
    use crate::state::CHECKPOINT_STEP_BYTES;
    let cat = catalog_with(&["CREATE TABLE big (id BIGINT PRIMARY KEY, e VECTOR(4096))"]);
    let def = cat.table("big").unwrap();
    let cols = vec!["id".to_string(), "e".to_string()];
    let rows: Vec<Vec<Value>> = (0..200)
        .map(|i| vec![Value::Int(i), Value::Vector(vec![i as f32; 4096].into())])
        .collect();
    let m = validate_upsert(def, UpsertMode::Replace, &cols, rows)
        .unwrap()
        .into_mutation();
    let mut st = ShardState::new();
    st.apply_record(&cat, 0, 1, Record::Apply(m)).unwrap();
    let mut b = st.checkpoint_builder();
    let mut steps = 0;
    let mut before = b.remaining();
    while !b.step(&st, 4096) {
        steps += 1;
        // Rows of ~16 KiB: a step takes about 1 MiB of them, not all 200 (3.2 MiB).
        let taken = before - b.remaining();
        assert!(
            taken * 16 * 1024 <= CHECKPOINT_STEP_BYTES + 17 * 1024,
            "{taken} rows"
        );
        before = b.remaining();
    }
    assert!(steps >= 3, "{steps} steps");
    let mut ck = rkyv::util::AlignedVec::<16>::new();
    for part in b.finish() {
        ck.extend_from_slice(&part);
    }
    assert_eq!(ShardState::from_checkpoint(&ck, &cat).unwrap(), st);
}

const EVENTS: &str =
    "CREATE STREAM ev (ts TIMESTAMP, k TEXT, emb VECTOR(3)) WITH (event_time = ts)";

#[test]
fn ingest_json_arrays_become_vectors_with_the_same_rule() {
    let cat = catalog_with(&[EVENTS]);
    let st = cat.stream("ev").unwrap();
    let parse = |input: &str| {
        let mut bytes = input.as_bytes().to_vec();
        crate::ingest::parse_json_events(
            &st.columns,
            &st.required(),
            &mut bytes,
            crate::ingest::JsonLayout::Lines,
            100,
        )
    };
    let rows = parse(
        "{\"ts\": 1, \"k\": \"a\", \"emb\": [1, -2.5, 0.1]}\n\
         {\"ts\": 2, \"k\": \"b\", \"emb\": null}\n{\"ts\": 3, \"k\": \"c\"}",
    )
    .unwrap();
    assert_eq!(rows[0][2], Value::Vector(vec![1.0, -2.5, 0.1].into()));
    assert_eq!(rows[1][2], Value::Null);
    assert_eq!(rows[2][2], Value::Null);
    for (event, needle) in [
        (
            "[1, 2]",
            "row 1, column \"emb\": vector has 2 dimensions, expected 3",
        ),
        ("[]", "row 1, column \"emb\": empty vector"),
        (
            "[1, [2], 3]",
            "vector component 1 is an array, not a number",
        ),
        (
            "[1, {\"a\": [1, 2]}, 3]",
            "vector component 1 is an object, not a number",
        ),
        (
            "[1, \"x\", 3]",
            "vector component 1 is a string, not a number",
        ),
        (
            "[1, 2, 1e39]",
            "vector component 2 is 1e39, which overflows",
        ),
    ] {
        let input = format!(
            "{{\"ts\": 1, \"k\": \"a\", \"emb\": [0, 0, 0]}}\n{{\"ts\": 1, \"k\": \"a\", \"emb\": {event}}}"
        );
        let m = bad_vector(&parse(&input).unwrap_err());
        assert!(m.contains(needle), "{event}: {m}");
    }
    // Nested arrays before the vector field do not shift the fields after them.
    let e = parse("{\"emb\": [1, [2, 3], 4], \"ts\": 1, \"k\": \"a\"}").unwrap_err();
    assert!(bad_vector(&e).contains("component 1 is an array"));
    let e = parse("{\"ts\": 1, \"k\": \"a\", \"emb\": \"[1,2,3]\"}").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
}

#[test]
fn views_neither_aggregate_nor_compare_vectors() {
    let view_where = |select: &str, cond: &str| {
        let sql = format!(
            "CREATE MATERIALIZED VIEW v WITH (window = 'lifetime') AS {select} FROM ev {cond} \
             GROUP BY k"
        );
        let cat = catalog_with(&[EVENTS]);
        let stmt = parse(&sql).unwrap().remove(0);
        cat.apply_ddl(&stmt).map(|_| ())
    };
    let view = |select: &str| view_where(select, "");
    for f in ["sum", "count", "min", "max", "avg", "first", "last"] {
        let e = view(&format!("SELECT k, {f}(emb) AS x")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{f}: {e}");
        assert!(
            e.to_string()
                .contains("column \"emb\" is VECTOR(3); vectors cannot be aggregated"),
            "{f}: {e}"
        );
    }
    let e = view("SELECT k, count(DISTINCT emb) AS x").unwrap_err();
    assert!(
        e.to_string().contains("vectors cannot be aggregated"),
        "{e}"
    );
    for cond in [
        "emb = '[1,2,3]'",
        "emb IN (emb)",
        "emb < emb",
        "emb BETWEEN 1 AND 2",
    ] {
        let e = view_where("SELECT k, count(*) AS n", &format!("WHERE {cond}")).unwrap_err();
        assert!(
            e.to_string()
                .contains("column \"emb\" is VECTOR(3): vectors cannot be compared"),
            "{cond}: {e}"
        );
    }
    view_where("SELECT k, count(*) AS n", "WHERE emb IS NOT NULL").unwrap();
    let sql = "CREATE MATERIALIZED VIEW v WITH (window = 'lifetime') AS \
               SELECT emb, count(*) AS n FROM ev GROUP BY emb";
    let e = catalog_with(&[EVENTS])
        .apply_ddl(&parse(sql).unwrap().remove(0))
        .unwrap_err();
    assert!(e.to_string().contains("VECTOR(3)"), "{e}");
}
