//! Bad input of every kind gets a clear error, nothing of a bad request is applied, and the
//! server keeps serving: the same connection for non-fatal errors, and always a second one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Breaks one row of a batch in a specific way.
type RowFault = Box<dyn Fn(&mut Vec<Value>)>;

use common::*;
use tarn_net::limits::{MAX_BATCH_ROWS, MAX_FRAME_PAYLOAD_BYTES, MAX_IN_FLIGHT_PER_CONNECTION};

const OP_HELLO: u16 = 1;
const OP_PING: u16 = 2;
const OP_UPSERT: u16 = 4;
const OP_GET: u16 = 5;

const TAG_INT: u8 = 2;
const TAG_TEXT: u8 = 4;

const ALL_TYPES: &str =
    "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE, ok BOOLEAN, data BYTES, at TIMESTAMP)";
const COLS: [&str; 6] = ["id", "name", "score", "ok", "data", "at"];

fn probe_row() -> Vec<Value> {
    vec![
        Value::Int(1),
        Value::Text("probe".into()),
        Value::Double(1.5),
        Value::Bool(true),
        Value::Bytes(vec![0, 1, 2, 255]),
        Value::Timestamp(1_700_000_000_000_000),
    ]
}

fn good_row(id: i64) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(format!("row {id}")),
        Value::Double(id as f64),
        Value::Bool(id % 2 == 0),
        Value::Bytes(id.to_le_bytes().to_vec()),
        Value::Timestamp(id * 1_000),
    ]
}

/// A server with table `t` holding the probe row (key 1).
fn server() -> TarnServer {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    c.sql(ALL_TYPES).expect("create table");
    assert_eq!(c.upsert("t", &COLS, vec![probe_row()]).unwrap(), 1);
    server
}

/// The connection (if given) and a brand-new one both still work: PING and a GET of the probe.
fn assert_serving(server: &TarnServer, conn: Option<&mut Conn>, after: &str) {
    let check = |c: &mut Conn, which: &str| {
        c.ping().unwrap_or_else(|e| {
            panic!("after {after}: PING on the {which} connection failed: {e}")
        });
        let r = c
            .get("t", vec![Value::Int(1)])
            .unwrap_or_else(|e| panic!("after {after}: GET on the {which} connection: {e}"));
        assert_eq!(
            r.rows,
            vec![Some(probe_row())],
            "after {after}: probe row on the {which} connection"
        );
    };
    if let Some(c) = conn {
        check(c, "same");
    }
    let mut fresh = Conn::connect(server.addr())
        .unwrap_or_else(|e| panic!("after {after}: a new connection failed: {e}"));
    check(&mut fresh, "second");
}

/// Sends raw bytes and returns the one reply, which must be an ERROR for request `id`.
fn raw_error(c: &mut Conn, bytes: &[u8], id: u64) -> ErrorReply {
    c.send_raw(bytes).expect("send");
    let (rid, resp) = c
        .recv()
        .unwrap_or_else(|e| panic!("no reply to request {id}: {e}"));
    assert_eq!(rid, id, "reply id");
    match resp {
        Response::Error(e) => e,
        other => panic!("expected an ERROR reply, got {other:?}"),
    }
}

fn expect_code(r: CResult<impl std::fmt::Debug>, code: ErrorCode, what: &str) -> ErrorReply {
    match r {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, code, "{what}: {e}");
            assert!(!e.message.is_empty(), "{what}: empty error message");
            e
        }
        other => panic!("{what}: expected {code}, got {other:?}"),
    }
}

fn assert_closed(c: &mut Conn, what: &str) {
    let mut seen = Vec::new();
    assert!(
        c.expect_closed(Duration::from_secs(10), &mut seen),
        "{what}: the server kept the connection open"
    );
    assert!(
        seen.iter().all(|(_, r)| matches!(r, Response::Error(_))),
        "{what}: unexpected frames {seen:?}"
    );
}

/// UPSERT payload for table `t` with columns (id, name) and one row (id, raw TEXT bytes).
fn upsert_payload_raw_text(table: &[u8], id: i64, text: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    put_str(&mut p, table);
    p.push(0); // mode: replace
    p.extend_from_slice(&2u32.to_le_bytes());
    put_str(&mut p, b"id");
    put_str(&mut p, b"name");
    p.extend_from_slice(&1u32.to_le_bytes()); // rows
    p.extend_from_slice(&2u32.to_le_bytes()); // values in the row
    p.push(TAG_INT);
    p.extend_from_slice(&id.to_le_bytes());
    p.push(TAG_TEXT);
    put_str(&mut p, text);
    p
}

#[test]
fn framing_errors() {
    let server = server();

    // Truncated: a valid header whose payload stops in the middle of a TEXT value.
    let mut c = server.client();
    let full = upsert_payload_raw_text(b"t", 50, b"a perfectly fine text value");
    let cut = &full[..full.len() - 10];
    let e = raw_error(&mut c, &raw_frame(cut.len() as u32, OP_UPSERT, 77, cut), 77);
    assert_eq!(e.code, ErrorCode::Malformed, "{e}");
    assert_serving(&server, Some(&mut c), "a truncated UPSERT");
    assert_eq!(
        c.get("t", vec![Value::Int(50)]).unwrap().rows,
        vec![None],
        "a truncated UPSERT must not apply"
    );

    // Trailing bytes after a complete message.
    let mut long = upsert_payload_raw_text(b"t", 51, b"x");
    long.extend_from_slice(&[9, 9, 9]);
    let e = raw_error(
        &mut c,
        &raw_frame(long.len() as u32, OP_UPSERT, 78, &long),
        78,
    );
    assert_eq!(e.code, ErrorCode::Malformed, "{e}");
    assert_serving(&server, Some(&mut c), "trailing bytes");
    assert_eq!(c.get("t", vec![Value::Int(51)]).unwrap().rows, vec![None]);

    // Unknown opcode: answered, connection stays open.
    let e = raw_error(&mut c, &raw_frame(3, 0x42, 79, b"abc"), 79);
    assert_eq!(e.code, ErrorCode::UnknownOpcode, "{e}");
    assert_serving(&server, Some(&mut c), "an unknown opcode");

    // Unknown value tag inside a row.
    let mut bad_tag = upsert_payload_raw_text(b"t", 52, b"x");
    let n = bad_tag.len();
    bad_tag[n - 6] = 0x66; // the TEXT tag
    let e = raw_error(
        &mut c,
        &raw_frame(bad_tag.len() as u32, OP_UPSERT, 80, &bad_tag),
        80,
    );
    assert_eq!(e.code, ErrorCode::Malformed, "{e}");
    assert_serving(&server, Some(&mut c), "an unknown value tag");

    // A row count far beyond the bytes present must not make the server allocate or hang.
    let mut huge = Vec::new();
    put_str(&mut huge, b"t");
    huge.push(0);
    huge.extend_from_slice(&1u32.to_le_bytes());
    put_str(&mut huge, b"id");
    huge.extend_from_slice(&(MAX_BATCH_ROWS - 1).to_le_bytes());
    let e = raw_error(
        &mut c,
        &raw_frame(huge.len() as u32, OP_UPSERT, 81, &huge),
        81,
    );
    assert_eq!(e.code, ErrorCode::Malformed, "{e}");
    assert_serving(&server, Some(&mut c), "a row count larger than the payload");

    // Oversize length: FRAME_TOO_LARGE, then the connection is closed.
    let e = raw_error(
        &mut c,
        &raw_frame(MAX_FRAME_PAYLOAD_BYTES + 1, OP_UPSERT, 82, b"xxxx"),
        82,
    );
    assert_eq!(e.code, ErrorCode::FrameTooLarge, "{e}");
    assert_closed(&mut c, "FRAME_TOO_LARGE");
    assert_serving(&server, None, "an oversize frame");

    let mut c = server.client();
    let e = raw_error(&mut c, &raw_frame(u32::MAX, OP_GET, 83, b""), 83);
    assert_eq!(e.code, ErrorCode::FrameTooLarge, "{e}");
    assert_closed(&mut c, "FRAME_TOO_LARGE (u32::MAX)");
    assert_serving(&server, None, "a u32::MAX frame length");

    // A request before HELLO: HANDSHAKE_REQUIRED, closed.
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    let mut ping = Vec::new();
    put_str(&mut ping, b"ping");
    let e = raw_error(
        &mut raw,
        &raw_frame(ping.len() as u32, OP_PING, 5, &ping),
        5,
    );
    assert_eq!(e.code, ErrorCode::HandshakeRequired, "{e}");
    assert_closed(&mut raw, "HANDSHAKE_REQUIRED");
    assert_serving(&server, None, "a request before HELLO");

    // An UPSERT before HELLO is not applied either.
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    let p = upsert_payload_raw_text(b"t", 53, b"sneaky");
    let e = raw_error(&mut raw, &raw_frame(p.len() as u32, OP_UPSERT, 6, &p), 6);
    assert_eq!(e.code, ErrorCode::HandshakeRequired, "{e}");
    assert_closed(&mut raw, "UPSERT before HELLO");
    assert_eq!(
        server.client().get("t", vec![Value::Int(53)]).unwrap().rows,
        vec![None]
    );

    // Unsupported protocol version.
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    let mut p = Vec::new();
    p.extend_from_slice(&7u16.to_le_bytes());
    p.extend_from_slice(&9u16.to_le_bytes());
    put_str(&mut p, b"future-client");
    put_str(&mut p, b"");
    let e = raw_error(&mut raw, &raw_frame(p.len() as u32, OP_HELLO, 1, &p), 1);
    assert_eq!(e.code, ErrorCode::UnsupportedVersion, "{e}");
    assert_closed(&mut raw, "UNSUPPORTED_VERSION");

    // Random garbage instead of a handshake (a port scanner, a HTTP client...).
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    raw.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_closed(&mut raw, "HTTP request bytes");
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = raw.send_raw(&noise);
    assert_closed(&mut raw, "random bytes");

    // A client that sends half a frame and disconnects.
    let mut raw = Conn::connect(server.addr()).unwrap();
    let p = upsert_payload_raw_text(b"t", 54, b"half");
    raw.send_raw(&raw_frame(p.len() as u32, OP_UPSERT, 9, &p[..p.len() / 2]))
        .unwrap();
    drop(raw);
    assert_serving(&server, None, "a client that disconnected mid-frame");
    assert_eq!(
        server.client().get("t", vec![Value::Int(54)]).unwrap().rows,
        vec![None]
    );
}

#[test]
fn value_and_schema_errors() {
    let server = server();
    let mut c = server.client();

    // Invalid UTF-8 in a table name (GET) and in a TEXT value (UPSERT).
    let mut p = Vec::new();
    put_str(&mut p, &[b't', 0xff, 0xfe]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(TAG_INT);
    p.extend_from_slice(&1i64.to_le_bytes());
    let e = raw_error(&mut c, &raw_frame(p.len() as u32, OP_GET, 1001, &p), 1001);
    assert_eq!(e.code, ErrorCode::InvalidUtf8, "{e}");
    assert_serving(&server, Some(&mut c), "invalid UTF-8 in a table name");

    let p = upsert_payload_raw_text(b"t", 60, &[b'o', b'k', 0xc3, 0x28]);
    let e = raw_error(
        &mut c,
        &raw_frame(p.len() as u32, OP_UPSERT, 1002, &p),
        1002,
    );
    assert_eq!(e.code, ErrorCode::InvalidUtf8, "{e}");
    assert_serving(&server, Some(&mut c), "invalid UTF-8 in a TEXT value");
    assert_eq!(c.get("t", vec![Value::Int(60)]).unwrap().rows, vec![None]);

    // Wrong type: BIGINT column given TEXT in row 3 -> TYPE_MISMATCH naming row 3 and "id".
    let mut rows: Vec<Vec<Value>> = (100..105).map(good_row).collect();
    rows[3][0] = Value::Text("103".into());
    let e = expect_code(
        c.upsert("t", &COLS, rows),
        ErrorCode::TypeMismatch,
        "TEXT in a BIGINT key column",
    );
    assert!(
        e.message.contains("row 3") && e.message.contains("id"),
        "message must name row and column: {e}"
    );
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(3), Some("id")),
        "TYPE_MISMATCH must carry row and column: {e:?}"
    );
    let mut rows: Vec<Vec<Value>> = (100..105).map(good_row).collect();
    rows[2][2] = Value::Text("7.5".into()); // DOUBLE column given TEXT (BIGINT would be coerced)
    let e = expect_code(
        c.upsert("t", &COLS, rows),
        ErrorCode::TypeMismatch,
        "TEXT in a DOUBLE column",
    );
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(2), Some("score")),
        "{e:?}"
    );
    assert_eq!(
        c.get("t", (100..105).map(Value::Int).collect())
            .unwrap()
            .rows,
        vec![None; 5]
    );
    assert_serving(&server, Some(&mut c), "TYPE_MISMATCH");

    // NULL primary key, and a column list without the key.
    let mut rows: Vec<Vec<Value>> = (110..113).map(good_row).collect();
    rows[1][0] = Value::Null;
    let e = expect_code(c.upsert("t", &COLS, rows), ErrorCode::NullKey, "NULL key");
    assert_eq!(e.row, Some(1), "{e:?}");
    expect_code(
        c.get("t", vec![Value::Null]),
        ErrorCode::NullKey,
        "GET of a NULL key",
    );
    expect_code(
        c.upsert(
            "t",
            &["name", "score"],
            vec![vec![Value::Text("x".into()), Value::Double(1.0)]],
        ),
        ErrorCode::MissingKey,
        "no key column",
    );
    // A GET key of the wrong type.
    expect_code(
        c.get("t", vec![Value::Text("1".into())]),
        ErrorCode::TypeMismatch,
        "GET with a TEXT key",
    );
    assert_serving(&server, Some(&mut c), "NULL/missing key");

    // Unknown / duplicate column, unknown table.
    expect_code(
        c.upsert(
            "t",
            &["id", "nope"],
            vec![vec![Value::Int(1), Value::Int(2)]],
        ),
        ErrorCode::UnknownColumn,
        "unknown column",
    );
    expect_code(
        c.upsert(
            "t",
            &["id", "name", "name"],
            vec![vec![Value::Int(120), Value::Null, Value::Null]],
        ),
        ErrorCode::DuplicateColumn,
        "duplicate column",
    );
    expect_code(
        c.upsert("nope", &["id"], vec![vec![Value::Int(1)]]),
        ErrorCode::UnknownTable,
        "UPSERT unknown table",
    );
    expect_code(
        c.get("nope", vec![Value::Int(1)]),
        ErrorCode::UnknownTable,
        "GET unknown table",
    );
    expect_code(
        c.delete("nope", vec![Value::Int(1)]),
        ErrorCode::UnknownTable,
        "DELETE unknown table",
    );
    expect_code(
        c.sql("DESCRIBE nope"),
        ErrorCode::UnknownTable,
        "DESCRIBE unknown table",
    );
    expect_code(
        c.sql("DROP TABLE nope"),
        ErrorCode::UnknownTable,
        "DROP unknown table",
    );
    assert_serving(&server, Some(&mut c), "unknown names");

    // Row arity differs from the column list.
    let e = c
        .upsert(
            "t",
            &["id", "name"],
            vec![vec![Value::Int(121), Value::Null], vec![Value::Int(122)]],
        )
        .unwrap_err()
        .server();
    assert!(
        e.row == Some(1) || e.message.contains("row 1"),
        "arity error must name row 1: {e:?}"
    );
    assert_eq!(c.get("t", vec![Value::Int(121)]).unwrap().rows, vec![None]);

    // Over-long TEXT (1 MiB + 1) and BYTES.
    let long = "x".repeat(tarn_types::MAX_VALUE_BYTES + 1);
    let mut row = good_row(130);
    row[1] = Value::Text(long);
    let e = expect_code(
        c.upsert("t", &COLS, vec![good_row(131), row]),
        ErrorCode::ValueTooLong,
        "TEXT over 1 MiB",
    );
    assert_eq!(
        (e.row, e.column.as_deref()),
        (Some(1), Some("name")),
        "{e:?}"
    );
    let mut row = good_row(132);
    row[4] = Value::Bytes(vec![7; tarn_types::MAX_VALUE_BYTES + 1]);
    expect_code(
        c.upsert("t", &COLS, vec![row]),
        ErrorCode::ValueTooLong,
        "BYTES over 1 MiB",
    );
    // Exactly the limit is fine.
    let mut row = good_row(133);
    row[1] = Value::Text("y".repeat(tarn_types::MAX_VALUE_BYTES));
    assert_eq!(c.upsert("t", &COLS, vec![row.clone()]).unwrap(), 1);
    assert_eq!(
        c.get("t", vec![Value::Int(133)]).unwrap().rows,
        vec![Some(row)]
    );
    assert_eq!(
        c.get("t", (130..133).map(Value::Int).collect())
            .unwrap()
            .rows,
        vec![None; 3]
    );
    assert_serving(&server, Some(&mut c), "VALUE_TOO_LONG");

    // NaN and infinities in a DOUBLE column.
    for (i, bad) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
        .into_iter()
        .enumerate()
    {
        let mut row = good_row(140 + i as i64);
        row[2] = Value::Double(bad);
        let e = expect_code(
            c.upsert("t", &COLS, vec![row]),
            ErrorCode::NonFiniteDouble,
            "non-finite DOUBLE",
        );
        assert_eq!(e.column.as_deref(), Some("score"), "{e:?}");
    }
    assert_eq!(
        c.get("t", (140..143).map(Value::Int).collect())
            .unwrap()
            .rows,
        vec![None; 3]
    );

    // Batch limits: too many rows, too many keys, no rows.
    let rows: Vec<Vec<Value>> = (0..MAX_BATCH_ROWS as i64 + 1)
        .map(|i| vec![Value::Int(1_000_000 + i)])
        .collect();
    expect_code(
        c.upsert("t", &["id"], rows),
        ErrorCode::BatchTooLarge,
        "MAX_BATCH_ROWS + 1 rows",
    );
    assert_eq!(
        c.get("t", vec![Value::Int(1_000_000)]).unwrap().rows,
        vec![None]
    );
    let keys: Vec<Value> = (0..MAX_BATCH_ROWS as i64 + 1).map(Value::Int).collect();
    expect_code(
        c.get("t", keys),
        ErrorCode::BatchTooLarge,
        "MAX_BATCH_ROWS + 1 GET keys",
    );
    expect_code(
        c.upsert("t", &COLS, vec![]),
        ErrorCode::BatchEmpty,
        "empty batch",
    );
    // Exactly MAX_BATCH_ROWS is accepted.
    let rows: Vec<Vec<Value>> = (0..MAX_BATCH_ROWS as i64)
        .map(|i| vec![Value::Int(2_000_000 + i)])
        .collect();
    assert_eq!(c.upsert("t", &["id"], rows).unwrap(), MAX_BATCH_ROWS as u64);
    assert_serving(&server, Some(&mut c), "batch limits");

    // SQL errors.
    expect_code(
        c.sql("CREATE TABLE (id BIGINT PRIMARY KEY"),
        ErrorCode::SqlParse,
        "SQL syntax error",
    );
    expect_code(
        c.sql("SELEKT * FROM t"),
        ErrorCode::SqlParse,
        "SQL syntax error",
    );
    let e = expect_code(
        c.sql("CREATE TABLE x (id BIGINT PRIMARY KEY, v FLOATY)"),
        ErrorCode::Unsupported,
        "bad SQL type",
    );
    assert!(
        e.message.contains("FLOATY"),
        "the message must name the bad type: {e}"
    );
    expect_code(
        c.sql("CREATE TABLE x (a BIGINT, b TEXT)"),
        ErrorCode::Unsupported,
        "no primary key",
    );
    expect_code(
        c.sql("CREATE TABLE x (id DOUBLE PRIMARY KEY)"),
        ErrorCode::Unsupported,
        "DOUBLE key",
    );
    expect_code(
        c.sql(ALL_TYPES),
        ErrorCode::TableExists,
        "CREATE of an existing table",
    );
    expect_code(
        c.sql("CREATE TABLE x (id BIGINT PRIMARY KEY, id TEXT)"),
        ErrorCode::DuplicateColumn,
        "duplicate column in CREATE",
    );
    let shown = c.sql("SHOW TABLES").unwrap();
    assert_eq!(
        shown.rows.len(),
        1,
        "failed CREATEs must not create tables: {shown:?}"
    );
    assert_serving(&server, Some(&mut c), "SQL errors");
}

#[test]
fn nothing_partial_is_applied() {
    let server = server();
    let mut c = server.client();
    // Ten fresh keys spread over both shards; row 7 is bad in several ways.
    let ids: Vec<i64> = (500..510).collect();
    let shards: BTreeSet<u32> = ids.iter().map(|&i| shard_of(&Value::Int(i), 2)).collect();
    assert_eq!(shards.len(), 2, "the batch must span both shards");
    let corruptions: Vec<(&str, ErrorCode, RowFault)> = vec![
        (
            "TEXT in BIGINT",
            ErrorCode::TypeMismatch,
            Box::new(|r| r[0] = Value::Text("k".into())),
        ),
        (
            "NULL key",
            ErrorCode::NullKey,
            Box::new(|r| r[0] = Value::Null),
        ),
        (
            "NaN",
            ErrorCode::NonFiniteDouble,
            Box::new(|r| r[2] = Value::Double(f64::NAN)),
        ),
        (
            "BOOLEAN in TIMESTAMP",
            ErrorCode::TypeMismatch,
            Box::new(|r| r[5] = Value::Bool(true)),
        ),
        (
            "over-long TEXT",
            ErrorCode::ValueTooLong,
            Box::new(|r| r[1] = Value::Text("z".repeat(tarn_types::MAX_VALUE_BYTES + 1))),
        ),
        ("short row", ErrorCode::Unknown, Box::new(|r| r.truncate(3))),
    ];
    let keys: Vec<Value> = ids.iter().map(|&i| Value::Int(i)).collect();
    for (what, code, corrupt) in &corruptions {
        let mut rows: Vec<Vec<Value>> = ids.iter().map(|&i| good_row(i)).collect();
        corrupt(&mut rows[7]);
        let e = c.upsert("t", &COLS, rows).unwrap_err().server();
        if *code != ErrorCode::Unknown {
            assert_eq!(e.code, *code, "{what}: {e}");
        }
        assert!(
            e.row == Some(7) || e.message.contains("row 7"),
            "{what}: the error must name row 7: {e:?}"
        );
        let got = c.get("t", keys.clone()).unwrap();
        assert_eq!(
            got.rows,
            vec![None; 10],
            "{what}: a rejected batch left rows behind"
        );
    }
    // The same batch, fixed, applies completely.
    let rows: Vec<Vec<Value>> = ids.iter().map(|&i| good_row(i)).collect();
    assert_eq!(c.upsert("t", &COLS, rows.clone()).unwrap(), 10);
    assert_eq!(
        c.get("t", keys.clone()).unwrap().rows,
        rows.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    // A rejected batch does not change existing rows either.
    let mut update: Vec<Vec<Value>> = ids.iter().map(|&i| good_row(i + 1000)).collect();
    for (r, &i) in update.iter_mut().zip(&ids) {
        r[0] = Value::Int(i);
    }
    update[9][3] = Value::Int(1);
    expect_code(
        c.upsert("t", &COLS, update),
        ErrorCode::TypeMismatch,
        "bad last row of an update",
    );
    assert_eq!(
        c.get("t", keys.clone()).unwrap().rows,
        rows.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    // And a DELETE with one bad key deletes nothing.
    let mut del = keys.clone();
    del[4] = Value::Null;
    assert!(c.delete("t", del).is_err());
    assert_eq!(
        c.get("t", keys)
            .unwrap()
            .rows
            .iter()
            .filter(|r| r.is_some())
            .count(),
        10
    );
    // Survives a restart unchanged (nothing partial was logged either).
    drop(c);
    let mut server = server;
    server.stop_ok();
    server.restart_ok();
    let mut c = server.client();
    assert_eq!(
        c.get("t", ids.iter().map(|&i| Value::Int(i)).collect())
            .unwrap()
            .rows,
        rows.into_iter().map(Some).collect::<Vec<_>>()
    );
    let st = c.stats().unwrap();
    assert_eq!(total_rows(&st), 11, "{st:?}");
}

#[test]
fn auth_token() {
    let server = TarnServer::start_ok(ServerOpts::shards(2).args(&["--auth-token", "s3cret"]));
    for bad in ["", "wrong", "s3cret-but-longer", "s3cre"] {
        let e = expect_code(
            server.client_with_token(bad).map(|_| ()),
            ErrorCode::AuthFailed,
            &format!("token {bad:?}"),
        );
        assert!(
            !e.message.contains("s3cret"),
            "the error must not leak the token: {e}"
        );
    }
    // The failed connection is closed.
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    assert_eq!(
        raw.handshake("nope").unwrap_err().code(),
        Some(ErrorCode::AuthFailed)
    );
    assert_closed(&mut raw, "AUTH_FAILED");
    let mut c = server
        .client_with_token("s3cret")
        .expect("the right token is accepted");
    c.ping().unwrap();
    c.sql("CREATE TABLE a (id BIGINT PRIMARY KEY)").unwrap();
    assert_eq!(
        c.upsert("a", &["id"], vec![vec![Value::Int(1)]]).unwrap(),
        1
    );
}

#[test]
fn too_many_in_flight() {
    let server = server();
    let mut c = server.client();
    let max = c.hello.as_ref().unwrap().max_in_flight;
    assert_eq!(max, MAX_IN_FLIGHT_PER_CONNECTION);
    let n = max as i64 + 50;
    // Sync-mode UPSERTs (each waits for fdatasync), all in one write, without reading.
    let mut buf = Vec::new();
    let mut key_of = BTreeMap::new();
    for i in 0..n {
        let (id, frame) = c.encode(&upsert_req("t", &COLS, vec![good_row(10_000 + i)]));
        buf.extend_from_slice(&frame);
        key_of.insert(id, 10_000 + i);
    }
    c.send_raw(&buf).unwrap();
    let mut replies: BTreeMap<u64, Response> = BTreeMap::new();
    for _ in 0..n {
        let (id, r) = c
            .recv()
            .unwrap_or_else(|e| panic!("after {} replies: {e}", replies.len()));
        assert!(
            key_of.contains_key(&id),
            "reply for an unknown request id {id}"
        );
        assert!(
            replies.insert(id, r).is_none(),
            "two replies for request {id}"
        );
    }
    let mut too_many = BTreeSet::new();
    let mut ok = BTreeSet::new();
    for (id, r) in &replies {
        match r {
            Response::Upsert(u) => {
                assert_eq!(u.rows_applied, 1);
                ok.insert(key_of[id]);
            }
            Response::Error(e) if e.code == ErrorCode::TooManyInFlight => {
                too_many.insert(key_of[id]);
            }
            other => panic!("request {id}: unexpected reply {other:?}"),
        }
    }
    eprintln!(
        "{} applied, {} refused with TOO_MANY_IN_FLIGHT",
        ok.len(),
        too_many.len()
    );
    assert!(
        !too_many.is_empty(),
        "{n} requests in one write: none was refused with TOO_MANY_IN_FLIGHT"
    );
    assert!(
        ok.len() >= max as usize,
        "at least {max} requests must be accepted, {} were",
        ok.len()
    );
    // Exactly the acknowledged rows exist.
    let keys: Vec<Value> = (0..n).map(|i| Value::Int(10_000 + i)).collect();
    let got = c.get("t", keys).unwrap();
    for (i, r) in got.rows.iter().enumerate() {
        let k = 10_000 + i as i64;
        assert_eq!(
            r.is_some(),
            ok.contains(&k),
            "key {k}: present {} but acked {}",
            r.is_some(),
            ok.contains(&k)
        );
    }
    // No more replies are pending on this connection; it keeps working.
    assert_serving(&server, Some(&mut c), "TOO_MANY_IN_FLIGHT");
}

#[test]
fn reply_over_the_frame_limit_is_an_error_not_a_broken_frame() {
    let server = server();
    let mut c = server.client();
    // Nine rows of 1 MiB: one GET of all of them would need a ~9 MiB reply.
    for i in 0..9 {
        let mut row = good_row(700 + i);
        row[1] = Value::Text(
            char::from(b'a' + i as u8)
                .to_string()
                .repeat(tarn_types::MAX_VALUE_BYTES),
        );
        assert_eq!(c.upsert("t", &COLS, vec![row]).unwrap(), 1);
    }
    let keys: Vec<Value> = (700..709).map(Value::Int).collect();
    match c.get("t", keys) {
        Err(ClientError::Server(e)) => eprintln!("oversize reply refused with {e}"),
        other => panic!(
            "a GET whose reply exceeds MAX_FRAME_PAYLOAD_BYTES must be an error, got {:?}",
            other.map(|r| r.rows.len())
        ),
    }
    assert_serving(&server, Some(&mut c), "an oversize reply");
    let got = c.get("t", (700..705).map(Value::Int).collect()).unwrap();
    assert!(got.rows.iter().all(|r| r.is_some()));
}

/// A closing error reaches the client even when more of its input is still unread: the server
/// closes with FIN after the error and drops what the client still sends (a close with unread
/// input would be a reset, and the client could lose the error). Found by the wire fuzzer.
#[test]
fn a_closing_error_is_delivered_before_the_close_even_with_unread_input() {
    let server = server();
    for round in 0..10u64 {
        let mut c = server.client();
        let id = 100 + round;
        // An oversize header, then 8 MiB the server never reads as frames: more than the
        // socket buffers hold, so the client is still sending when the server closes.
        let mut bytes = raw_frame(MAX_FRAME_PAYLOAD_BYTES + 1, OP_UPSERT, id, b"");
        bytes.extend(std::iter::repeat_n(0xA5u8, 8 << 20));
        let e = raw_error(&mut c, &bytes, id);
        assert_eq!(e.code, ErrorCode::FrameTooLarge, "round {round}: {e}");
        assert_closed(&mut c, "FRAME_TOO_LARGE with unread input");
    }
    // Before HELLO, the same for a first frame that is not one.
    for round in 0..10u64 {
        let mut raw = Conn::connect_raw(server.addr()).unwrap();
        let id = 200 + round;
        let mut bytes = raw_frame(4, OP_PING, id, b"\0\0\0\0");
        bytes.extend(std::iter::repeat_n(0x5Au8, 8 << 20));
        let e = raw_error(&mut raw, &bytes, id);
        assert_eq!(e.code, ErrorCode::HandshakeRequired, "round {round}: {e}");
        assert_closed(&mut raw, "HANDSHAKE_REQUIRED with unread input");
    }
    assert_serving(&server, None, "closing errors with unread input");
}
