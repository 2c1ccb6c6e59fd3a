//! Bad vector input against a real server: every case gets a clear, specific error with its
//! code, nothing of the batch is applied, and the server (and the connection) keeps serving.

mod common;

use common::*;

const DOCS: &str = "CREATE TABLE docs (id BIGINT PRIMARY KEY, emb VECTOR(3), title TEXT)";
const EVENTS: &str =
    "CREATE STREAM ev (ts TIMESTAMP, k TEXT, emb VECTOR(3)) WITH (event_time = ts)";

/// INGEST of JSON lines into stream `ev`.
fn ingest_json(c: &mut Conn, data: &str) -> CResult<Response> {
    c.call(&Request::Ingest(tarn_net::IngestRequest {
        stream: "ev".into(),
        producer: None,
        body: tarn_net::IngestBody::Json {
            layout: 1,
            data: data.as_bytes().to_vec(),
        },
    }))
}

fn expect(
    r: CResult<impl std::fmt::Debug>,
    code: ErrorCode,
    needle: &str,
    what: &str,
) -> ErrorReply {
    match r {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, code, "{what}: {e}");
            assert!(
                e.message.contains(needle),
                "{what}: `{}` lacks `{needle}`",
                e.message
            );
            e
        }
        other => panic!("{what}: expected {code}, got {other:?}"),
    }
}

fn vector(v: &[f32]) -> Value {
    Value::Vector(v.to_vec().into())
}

/// Row 0 is good, row 1 carries `bad`: the error names row 1 and column emb, and row 0 (key
/// `id`) is not applied.
fn upsert_bad_second_row(c: &mut Conn, id: i64, bad: Value, needle: &str) {
    let rows = vec![
        vec![Value::Int(id), vector(&[1.0, 2.0, 3.0])],
        vec![Value::Int(id + 1), bad],
    ];
    let e = expect(
        c.upsert("docs", &["id", "emb"], rows),
        ErrorCode::BadVector,
        needle,
        needle,
    );
    assert_eq!(e.row, Some(1), "{needle}: {e}");
    assert_eq!(e.column.as_deref(), Some("emb"), "{needle}: {e}");
    assert!(
        e.message.starts_with("row 1, column \"emb\": "),
        "{}",
        e.message
    );
    let got = c
        .get("docs", vec![Value::Int(id), Value::Int(id + 1)])
        .unwrap();
    assert_eq!(got.rows, vec![None, None], "{needle}: nothing applied");
}

/// The probe row is there and the connection answers.
fn assert_serving(c: &mut Conn, what: &str) {
    c.ping()
        .unwrap_or_else(|e| panic!("after {what}: PING failed: {e}"));
    let r = c.get("docs", vec![Value::Int(1)]).unwrap();
    assert_eq!(
        r.rows,
        vec![Some(vec![
            Value::Int(1),
            vector(&[0.5, -1.0, 2.0]),
            Value::Text("probe".into())
        ])],
        "after {what}"
    );
}

fn setup() -> (TarnServer, Conn) {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    c.sql(DOCS).unwrap();
    c.upsert(
        "docs",
        &["id", "emb", "title"],
        vec![vec![
            Value::Int(1),
            vector(&[0.5, -1.0, 2.0]),
            Value::Text("probe".into()),
        ]],
    )
    .unwrap();
    (server, c)
}

#[test]
fn bad_vector_values_over_the_wire_are_refused_whole() {
    let (_server, mut c) = setup();
    let cases: Vec<(Value, &str)> = vec![
        (vector(&[1.0, 2.0]), "vector has 2 dimensions, expected 3"),
        (
            vector(&[1.0, 2.0, 3.0, 4.0]),
            "vector has 4 dimensions, expected 3",
        ),
        (vector(&[]), "empty vector"),
        (vector(&[1.0, f32::NAN, 3.0]), "vector component 1 is NaN"),
        (
            vector(&[1.0, 2.0, f32::INFINITY]),
            "vector component 2 is +infinity",
        ),
        (
            vector(&[f32::NEG_INFINITY, 2.0, 3.0]),
            "vector component 0 is -infinity",
        ),
        (
            vector(&[1.0, 1e17, 3.0]),
            "vector component 1 is 1e17, larger in magnitude",
        ),
    ];
    for (i, (bad, needle)) in cases.into_iter().enumerate() {
        upsert_bad_second_row(&mut c, 100 + 10 * i as i64, bad, needle);
        assert_serving(&mut c, needle);
    }
    // Not a vector at all: a TEXT value for the VECTOR column.
    let e = expect(
        c.upsert(
            "docs",
            &["id", "emb"],
            vec![vec![Value::Int(9), Value::Text("[1,2,3]".into())]],
        ),
        ErrorCode::TypeMismatch,
        "row 0, column \"emb\": expected VECTOR(3), got TEXT",
        "TEXT for a vector",
    );
    assert_eq!(e.row, Some(0));
    // A vector for a key: the key column is BIGINT.
    expect(
        c.get("docs", vec![vector(&[1.0, 2.0, 3.0])]),
        ErrorCode::TypeMismatch,
        "expected BIGINT, got VECTOR(3)",
        "vector key",
    );
    assert_serving(&mut c, "type mismatches");
}

/// Sends (raw) GET docs with one key: a vector value announcing `count` components followed
/// by only 8 bytes; returns the ERROR reply.
fn get_with_vector_count(c: &mut Conn, id: u64, count: u32) -> ErrorReply {
    let mut p = Vec::new();
    put_str(&mut p, b"docs");
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(7);
    p.extend_from_slice(&count.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    c.send_raw(&raw_frame(p.len() as u32, 0x05, id, &p))
        .unwrap();
    let (rid, resp) = c.recv().unwrap();
    assert_eq!(rid, id);
    match resp {
        Response::Error(e) => e,
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

#[test]
fn a_vector_count_over_the_limit_in_a_frame_is_refused_before_allocating() {
    let (_server, mut c) = setup();
    // GET docs with one key: a vector announcing 4,097 components, and only 8 bytes after.
    let e = get_with_vector_count(&mut c, 77, 4097);
    assert_eq!(e.code, ErrorCode::BadVector, "{e:?}");
    assert!(
        e.message
            .contains("vector component count 4097 exceeds limit 4096"),
        "{}",
        e.message
    );
    // A count within the limit whose components the frame does not hold: MALFORMED.
    let e = get_with_vector_count(&mut c, 78, 4096);
    assert_eq!(e.code, ErrorCode::Malformed, "{e:?}");
    assert_serving(&mut c, "vector counts in raw frames");
}

#[test]
fn bad_vectors_in_sql_are_refused_with_their_reason() {
    let (_server, mut c) = setup();
    let bad = ErrorCode::BadVector;
    for (sql, code, needle) in [
        (
            "CREATE TABLE t0 (id BIGINT PRIMARY KEY, e VECTOR(0))",
            bad,
            "vector dimension 0 is out of range: must be 1..=4096",
        ),
        (
            "CREATE TABLE t1 (id BIGINT PRIMARY KEY, e VECTOR(5000))",
            bad,
            "vector dimension 5000 is out of range",
        ),
        (
            "CREATE TABLE t2 (e VECTOR(3) PRIMARY KEY, x TEXT)",
            ErrorCode::Unsupported,
            "VECTOR(3) primary key on column \"e\"",
        ),
        (
            "INSERT INTO docs VALUES (5, '[1,2,3]', 'a'), (6, '[1,2]', 'b')",
            bad,
            "row 1, column \"emb\": vector has 2 dimensions, expected 3",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (5, '[]')",
            bad,
            "empty vector",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (5, '[1, NaN, 3]')",
            bad,
            "vector component 1 is NaN",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (5, '[1, 2, inf]')",
            bad,
            "vector component 2 is +infinity",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (5, '[-inf, 2, 3]')",
            bad,
            "vector component 0 is -infinity",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (5, ARRAY[1, 1e39, 3])",
            bad,
            "vector component 1 is 1e39, which overflows a 32-bit float",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (5, ARRAY[1, 'x', 3])",
            bad,
            "vector component 1 is a string, not a number",
        ),
        (
            "INSERT INTO docs (id, emb) VALUES (5, 'hello')",
            bad,
            "expected a VECTOR(3) as text",
        ),
        (
            "SELECT * FROM docs WHERE emb = '[0.5,-1,2]'",
            ErrorCode::Unsupported,
            "column \"emb\" is VECTOR(3): vectors cannot be compared",
        ),
        (
            "SELECT sum(emb) FROM docs WHERE id = 1",
            ErrorCode::Unsupported,
            "sum(emb)",
        ),
    ] {
        expect(c.sql(sql), code, needle, sql);
        assert_serving(&mut c, sql);
    }
    c.sql(EVENTS).unwrap();
    // Feature views read streams, which may carry vectors: never aggregated, never compared.
    let view = |body: &str| {
        format!(
            "CREATE MATERIALIZED VIEW v WITH (window = 'lifetime') AS SELECT k, {body} GROUP BY k"
        )
    };
    for (sql, needle) in [
        (
            view("sum(emb) AS s FROM ev"),
            "sum(emb): column \"emb\" is VECTOR(3); vectors cannot be aggregated",
        ),
        (
            view("count(emb) AS s FROM ev"),
            "vectors cannot be aggregated",
        ),
        (
            view("count(*) AS n FROM ev WHERE emb = '[1,2,3]'"),
            "column \"emb\" is VECTOR(3): vectors cannot be compared",
        ),
    ] {
        expect(c.sql(&sql), ErrorCode::Unsupported, needle, &sql);
        assert_serving(&mut c, &sql);
    }
    // INGEST converts JSON arrays by the same rule; a bad one refuses the whole batch.
    let good = r#"{"ts": 1790000000000000, "k": "a", "emb": [1, 2, 3]}"#;
    for (event, needle) in [
        (
            r#"{"ts": 1790000000000000, "k": "a", "emb": [1, 2]}"#,
            "row 1, column \"emb\": vector has 2 dimensions, expected 3",
        ),
        (
            r#"{"ts": 1790000000000000, "k": "a", "emb": [1, "x", 3]}"#,
            "row 1, column \"emb\": vector component 1 is a string, not a number",
        ),
    ] {
        let r = ingest_json(&mut c, &format!("{good}\n{event}"));
        let e = expect(r, ErrorCode::BadVector, needle, event);
        assert_eq!(e.row, Some(1));
    }
    match ingest_json(&mut c, good).unwrap() {
        Response::Ingest(r) => assert_eq!(r.events, 1, "the good event alone is appended"),
        other => panic!("{other:?}"),
    }
    let r = c.get("docs", vec![Value::Int(5), Value::Int(6)]).unwrap();
    assert_eq!(r.rows, vec![None, None], "no INSERT row applied");
    let shown = c.sql("SHOW TABLES").unwrap();
    assert_eq!(shown.rows.len(), 1, "no table created: {shown:?}");
    let shown = c.sql("SHOW VIEWS").unwrap();
    assert_eq!(shown.rows.len(), 0, "no view created: {shown:?}");
}

/// `tarn upsert` converts JSON per the column type: bad vectors fail with a clear message and
/// exit status 1, and nothing is applied.
#[test]
fn bad_vectors_through_the_cli_fail_clearly() {
    let (server, mut c) = setup();
    for (json, needle) in [
        (
            r#"{"id": 7, "emb": [1, 2]}"#,
            "vector has 2 dimensions, expected 3",
        ),
        (r#"{"id": 7, "emb": []}"#, "empty vector"),
        (
            r#"{"id": 7, "emb": [1, 1e39, 3]}"#,
            "vector component 1 is 1e39, which overflows",
        ),
        (
            r#"{"id": 7, "emb": [1, "2", 3]}"#,
            "vector component 1 is a string, not a number",
        ),
        (
            r#"{"id": 7, "emb": "[1,2,3]"}"#,
            "as a JSON array of numbers, got a string",
        ),
    ] {
        let out = run_tarn(&server.addr_string(), &["upsert", "docs", json]);
        let stderr = out.stderr;
        assert!(!out.status.success(), "{json}: tarn upsert succeeded");
        assert!(
            stderr.contains(needle),
            "{json}: stderr lacks `{needle}`:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(c.get("docs", vec![Value::Int(7)]).unwrap().rows, vec![None]);
    assert_serving(&mut c, "CLI errors");
}
