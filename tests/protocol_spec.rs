//! docs/PROTOCOL.md end to end, for the rules a client written from the spec alone relies on:
//! request id 0, BATCH_EMPTY, several SQL statements in one request, LIMIT_EXCEEDED and
//! INVALID_ARGUMENT, what `row` means per opcode, key coercions, CREATE MATERIALIZED VIEW's
//! back-fill result set, and the frame limit before the handshake.

mod common;

use std::time::Duration;

use common::*;
use tarn_net::{
    Column, FeaturesRequest, HistoryRequest, IngestBody, IngestRequest, CONNECTION_REQUEST_ID,
};

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn server() -> TarnServer {
    TarnServer::start_ok(ServerOpts::shards(2))
}

fn frame(id: u64, req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    tarn_net::encode_request(id, req, &mut out);
    out
}

fn hello() -> Request {
    Request::Hello(Hello {
        min_version: 1,
        max_version: 1,
        client_name: "protocol-spec".into(),
        auth_token: String::new(),
    })
}

/// The error of a request that must fail.
fn fails<T: std::fmt::Debug>(r: CResult<T>, what: &str) -> ErrorReply {
    match r {
        Err(ClientError::Server(e)) => e,
        other => panic!("{what}: expected an ERROR reply, got {other:?}"),
    }
}

fn table_names(c: &mut Conn) -> Vec<String> {
    c.sql("SHOW TABLES")
        .unwrap()
        .rows
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            v => panic!("table name {v:?}"),
        })
        .collect()
}

fn ingest_rows(columns: &[&str], rows: Vec<Vec<Value>>) -> Request {
    Request::Ingest(IngestRequest {
        stream: "tx".into(),
        producer: None,
        body: IngestBody::Rows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        },
    })
}

/// Creates stream `tx (ts TIMESTAMP, card TEXT, amount DOUBLE)`.
fn create_stream(c: &mut Conn) {
    c.sql(
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE) \
         WITH (event_time = 'ts', partition = 'card')",
    )
    .unwrap();
}

const VIEW: &str =
    "CREATE MATERIALIZED VIEW card_10m WITH (window = '10 minutes', bucket = '1 minute') \
                    AS SELECT card, count(*) AS n FROM tx GROUP BY card";

#[test]
fn request_id_zero_is_refused_with_bad_request_id() {
    let server = server();

    // A HELLO with id 0 fails the handshake: BAD_REQUEST_ID (id 0), then the server closes.
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    raw.send_raw(&frame(CONNECTION_REQUEST_ID, &hello()))
        .unwrap();
    let (id, resp) = raw.recv().unwrap();
    match resp {
        Response::Error(e) => {
            assert_eq!((id, e.code), (0, ErrorCode::BadRequestId), "{e}");
            assert!(e.message.contains("request id 0"), "{e}");
        }
        other => panic!("HELLO with id 0 answered {other:?}"),
    }
    let mut seen = Vec::new();
    assert!(
        raw.expect_closed(Duration::from_secs(10), &mut seen),
        "a HELLO with id 0 must close the connection"
    );
    assert!(seen.is_empty(), "{seen:?}");

    // After the handshake: every request with id 0 is refused unread (a HELLO, a PING, an
    // undecodable frame, a SQL statement that is then not executed); the connection serves on.
    let mut c = server.client();
    let create = Request::Sql("CREATE TABLE z (id BIGINT PRIMARY KEY)".into());
    let undecodable = raw_frame(1, 0x0005, 0, &[0xff]);
    for (what, bytes) in [
        ("HELLO", frame(0, &hello())),
        ("PING", frame(0, &Request::Ping(b"x".to_vec()))),
        ("truncated GET", undecodable),
        ("SQL", frame(0, &create)),
    ] {
        c.send_raw(&bytes).unwrap();
        let (id, resp) = c.recv().unwrap();
        match resp {
            Response::Error(e) => {
                assert_eq!((id, e.code), (0, ErrorCode::BadRequestId), "{what}: {e}");
                assert_eq!((e.row, e.column), (None, None), "{what}");
            }
            other => panic!("{what} with id 0 answered {other:?}"),
        }
        c.ping()
            .unwrap_or_else(|e| panic!("after {what} with id 0: {e}"));
    }
    assert!(
        table_names(&mut c).is_empty(),
        "a SQL request with id 0 must not run"
    );
    // The same statement with a proper id runs.
    c.call(&create).unwrap();
    assert_eq!(table_names(&mut c), ["z"]);
}

/// A HELLO frame (request id `id`) whose payload is exactly `payload_len` bytes (the client
/// name pads it).
fn hello_of_len(id: u64, payload_len: usize) -> Vec<u8> {
    let base = frame(id, &hello()).len() - 16;
    let Request::Hello(mut h) = hello() else {
        unreachable!()
    };
    h.client_name.push_str(&"x".repeat(payload_len - base));
    let f = frame(id, &Request::Hello(h));
    assert_eq!(f.len(), 16 + payload_len);
    f
}

#[test]
fn frames_before_the_handshake_are_limited_to_max_handshake_frame_payload_bytes() {
    use tarn_net::limits::{MAX_FRAME_PAYLOAD_BYTES, MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES};
    let limit = MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES as usize;
    assert!(limit < 100_000 && MAX_FRAME_PAYLOAD_BYTES as usize > 1 << 21);
    let server = server();

    // A 100 kB first frame: FRAME_TOO_LARGE (the header's request id) from the header alone,
    // then closed. Only the header and a few bytes are sent.
    for (what, first) in [
        ("100 kB HELLO", hello_of_len(7, 100_000)),
        ("100 kB PING", frame(7, &Request::Ping(vec![0; 100_000]))),
        ("HELLO one byte over", hello_of_len(7, limit + 1)),
    ] {
        let mut raw = Conn::connect_raw(server.addr()).unwrap();
        raw.send_raw(&first[..64]).unwrap();
        let (id, resp) = raw.recv().unwrap();
        match resp {
            Response::Error(e) => {
                assert_eq!((id, e.code), (7, ErrorCode::FrameTooLarge), "{what}: {e}");
                assert!(e.message.contains("before the handshake"), "{what}: {e}");
            }
            other => panic!("{what}: answered {other:?}"),
        }
        let mut seen = Vec::new();
        assert!(
            raw.expect_closed(Duration::from_secs(10), &mut seen),
            "{what}: the connection must be closed"
        );
        assert!(seen.is_empty(), "{what}: {seen:?}");
    }

    // A HELLO of exactly the limit is accepted.
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    raw.send_raw(&hello_of_len(1, limit)).unwrap();
    assert!(matches!(raw.recv().unwrap(), (1, Response::Hello(_))));
    raw.ping()
        .expect("handshaken with a HELLO of exactly the limit");

    // After a normal HELLO the full frame limit applies, even for a request sent right behind
    // the HELLO in the same write: a 1 MiB UPSERT works.
    server
        .client()
        .sql("CREATE TABLE blobs (k BIGINT PRIMARY KEY, v BYTES)")
        .unwrap();
    let blob: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let upsert = upsert_req(
        "blobs",
        &["k", "v"],
        vec![vec![Value::Int(1), Value::Bytes(blob.clone())]],
    );
    let mut raw = Conn::connect_raw(server.addr()).unwrap();
    let mut bytes = frame(1, &hello());
    let big = frame(2, &upsert);
    assert!(big.len() > 1 << 20);
    bytes.extend_from_slice(&big);
    raw.send_raw(&bytes).unwrap();
    assert!(matches!(raw.recv().unwrap(), (1, Response::Hello(_))));
    match raw.recv().unwrap() {
        (2, Response::Upsert(r)) => assert_eq!(r.rows_applied, 1),
        other => panic!("1 MiB UPSERT after HELLO answered {other:?}"),
    }
    let got = server.client().get("blobs", vec![Value::Int(1)]).unwrap();
    assert_eq!(
        got.rows,
        vec![Some(vec![Value::Int(1), Value::Bytes(blob)])]
    );
}

#[test]
fn empty_batches_are_batch_empty_for_every_opcode() {
    let server = server();
    let mut c = server.client();
    c.sql("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        .unwrap();
    create_stream(&mut c);
    c.sql(VIEW).unwrap();
    let json = |text: &str| {
        Request::Ingest(IngestRequest {
            stream: "tx".into(),
            producer: None,
            body: IngestBody::Json {
                layout: 0,
                data: text.as_bytes().to_vec(),
            },
        })
    };
    let past = now_us() - 1_000_000;
    let cases: Vec<(&str, Request)> = vec![
        ("UPSERT", upsert_req("t", &["id", "v"], vec![])),
        (
            "GET",
            Request::Get(KeysRequest {
                table: "t".into(),
                keys: vec![],
            }),
        ),
        (
            "DELETE",
            Request::Delete(KeysRequest {
                table: "t".into(),
                keys: vec![],
            }),
        ),
        ("INGEST typed rows", ingest_rows(&["ts", "card"], vec![])),
        ("INGEST JSON empty", json("")),
        ("INGEST JSON blank lines", json("\n  \n")),
        ("INGEST JSON []", json(" [ ] ")),
        (
            "FEATURES",
            Request::Features(FeaturesRequest {
                view: "card_10m".into(),
                keys: vec![],
                as_of_us: None,
            }),
        ),
        (
            "FEATURES as_of",
            Request::Features(FeaturesRequest {
                view: "card_10m".into(),
                keys: vec![],
                as_of_us: Some(past),
            }),
        ),
        (
            "HISTORY",
            Request::History(HistoryRequest {
                view: "card_10m".into(),
                pairs: vec![],
            }),
        ),
    ];
    for (what, req) in cases {
        let e = fails(c.call(&req), what);
        assert_eq!(e.code, ErrorCode::BatchEmpty, "{what}: {e}");
        assert_eq!((e.row, e.column), (None, None), "{what}");
    }
    // The name is checked first: an empty batch for an unknown table is UNKNOWN_TABLE.
    let e = fails(
        c.call(&Request::Get(KeysRequest {
            table: "nope".into(),
            keys: vec![],
        })),
        "GET of an unknown table",
    );
    assert_eq!(e.code, ErrorCode::UnknownTable, "{e}");
    // Empty SQL text is SQL_PARSE (no statement).
    for text in ["", "  ", " ; ;"] {
        let e = fails(c.sql(text), "empty SQL");
        assert_eq!(e.code, ErrorCode::SqlParse, "{text:?}: {e}");
    }
    c.ping().unwrap();
}

#[test]
fn several_sql_statements_run_in_order_and_stop_at_the_first_error() {
    let server = server();
    let mut c = server.client();

    // Success: one message line per statement, no result set without a listing.
    let r = c
        .sql("CREATE TABLE a (id BIGINT PRIMARY KEY); CREATE TABLE b (id TEXT PRIMARY KEY);")
        .unwrap();
    assert_eq!(r.message, "CREATE TABLE a\nCREATE TABLE b");
    assert!(r.columns.is_empty() && r.rows.is_empty(), "{r:?}");

    // The result set is the last statement's that has one.
    let r = c
        .sql("SHOW TABLES; CREATE TABLE c (id BIGINT PRIMARY KEY)")
        .unwrap();
    assert_eq!(r.message, "2 table(s)\nCREATE TABLE c");
    assert_eq!(r.rows.len(), 2, "SHOW TABLES ran before c existed: {r:?}");
    let r = c
        .sql("CREATE TABLE d (id BIGINT PRIMARY KEY); SHOW TABLES")
        .unwrap();
    assert_eq!(r.message, "CREATE TABLE d\n4 table(s)");
    assert_eq!(r.rows.len(), 4, "{r:?}");

    // A failing statement: the earlier ones stay applied, the later ones do not run; `row` is
    // the failing statement's 0-based index, the message names it 1-based.
    let e = fails(
        c.sql(
            "CREATE TABLE e (id BIGINT PRIMARY KEY); CREATE TABLE a (id BIGINT PRIMARY KEY); \
             CREATE TABLE f (id BIGINT PRIMARY KEY)",
        ),
        "second of three fails",
    );
    assert_eq!((e.code, e.row), (ErrorCode::TableExists, Some(1)), "{e}");
    assert!(
        e.message.starts_with(
            "statement 2 of 3 failed (statement 1 was applied, the statements after it were not run): "
        ),
        "{e}"
    );
    assert_eq!(table_names(&mut c), ["a", "b", "c", "d", "e"]);

    let e = fails(
        c.sql(
            "CREATE TABLE g (id BIGINT PRIMARY KEY); CREATE TABLE h (id BIGINT PRIMARY KEY); \
             DROP TABLE nope",
        ),
        "third of three fails",
    );
    assert_eq!((e.code, e.row), (ErrorCode::UnknownTable, Some(2)), "{e}");
    assert!(
        e.message
            .starts_with("statement 3 of 3 failed (statements 1 to 2 were applied"),
        "{e}"
    );
    let e = fails(
        c.sql("DROP TABLE nope; CREATE TABLE i (id BIGINT PRIMARY KEY)"),
        "first of two fails",
    );
    assert_eq!((e.code, e.row), (ErrorCode::UnknownTable, Some(0)), "{e}");
    assert!(
        e.message
            .starts_with("statement 1 of 2 failed (nothing was applied): "),
        "{e}"
    );
    assert_eq!(table_names(&mut c), ["a", "b", "c", "d", "e", "g", "h"]);

    // A single statement's error has no row.
    let e = fails(c.sql("DROP TABLE nope"), "single statement");
    assert_eq!((e.code, e.row), (ErrorCode::UnknownTable, None), "{e}");
    assert!(!e.message.contains("statement 1"), "{e}");

    // The whole text is parsed before anything runs: a parse error anywhere applies nothing.
    for text in [
        "CREATE TABLE j (id BIGINT PRIMARY KEY); SELEKT 1",
        "CREATE TABLE j (id BIGINT PRIMARY KEY); CREATE TABLE k (id DOUBLE PRIMARY KEY)",
    ] {
        let e = fails(c.sql(text), text);
        assert!(
            matches!(e.code, ErrorCode::SqlParse | ErrorCode::Unsupported),
            "{text}: {e}"
        );
        assert_eq!(e.row, None, "{text}: {e}");
    }
    assert!(!table_names(&mut c).contains(&"j".to_string()));

    // In a SELECT of a feature view, a bad key is named in the message, never in `row`.
    create_stream(&mut c);
    c.sql(VIEW).unwrap();
    let e = fails(
        c.sql("SELECT * FROM card_10m WHERE card IN ('a', 7)"),
        "SELECT with a BIGINT key for a TEXT view key",
    );
    assert_eq!((e.code, e.row), (ErrorCode::TypeMismatch, None), "{e}");
    assert!(e.message.contains("row 1"), "{e}");
    let e = fails(
        c.sql("SHOW TABLES; SELECT * FROM card_10m WHERE card IN ('a', 7)"),
        "the same as a second statement",
    );
    assert_eq!((e.code, e.row), (ErrorCode::TypeMismatch, Some(1)), "{e}");
}

#[test]
fn named_limits_are_limit_exceeded_and_as_of_in_the_future_is_invalid_argument() {
    let server = server();
    let mut c = server.client();
    create_stream(&mut c);

    let long = "x".repeat(65);
    let e = fails(
        c.sql(&format!("CREATE TABLE {long} (id BIGINT PRIMARY KEY)")),
        "65-byte table name",
    );
    assert_eq!(e.code, ErrorCode::LimitExceeded, "{e}");

    let e = fails(
        c.sql(
            "CREATE MATERIALIZED VIEW v WITH (window = '1 day', bucket = '1 second') \
             AS SELECT card, count(*) AS n FROM tx GROUP BY card",
        ),
        "86,400 buckets",
    );
    assert_eq!(e.code, ErrorCode::LimitExceeded, "{e}");

    let aggs: Vec<String> = (0..65).map(|i| format!("sum(amount) AS a{i}")).collect();
    let e = fails(
        c.sql(&format!(
            "CREATE MATERIALIZED VIEW v WITH (window = 'lifetime') AS SELECT card, {} FROM tx GROUP BY card",
            aggs.join(", ")
        )),
        "65 aggregates",
    );
    assert_eq!(e.code, ErrorCode::LimitExceeded, "{e}");
    assert_eq!(table_names(&mut c), Vec::<String>::new());

    // Too many keys is BATCH_TOO_LARGE, not LIMIT_EXCEEDED.
    c.sql(VIEW).unwrap();
    let e = fails(
        c.call(&Request::History(HistoryRequest {
            view: "card_10m".into(),
            pairs: (0..10_001)
                .map(|i| (Value::Text(format!("c{i}")), 1))
                .collect(),
        })),
        "10,001 pairs",
    );
    assert_eq!(e.code, ErrorCode::BatchTooLarge, "{e}");

    // An as-of time not in the past: HISTORY names the pair, FEATURES no key.
    let (past, future) = (now_us() - 1_000_000, now_us() + 60_000_000);
    let e = fails(
        c.call(&Request::History(HistoryRequest {
            view: "card_10m".into(),
            pairs: vec![
                (Value::Text("a".into()), past),
                (Value::Text("a".into()), future),
            ],
        })),
        "HISTORY in the future",
    );
    assert_eq!(
        (e.code, e.row),
        (ErrorCode::InvalidArgument, Some(1)),
        "{e}"
    );
    let e = fails(
        c.call(&Request::Features(FeaturesRequest {
            view: "card_10m".into(),
            keys: vec![Value::Text("a".into()), Value::Text("b".into())],
            as_of_us: Some(future),
        })),
        "FEATURES in the future",
    );
    assert_eq!((e.code, e.row), (ErrorCode::InvalidArgument, None), "{e}");

    // `row` per opcode: INGEST the event's index, HISTORY the pair's, FEATURES the key's.
    let ok = |card: &str| vec![Value::Timestamp(past), Value::Text(card.into())];
    let e = fails(
        c.call(&ingest_rows(
            &["ts", "card"],
            vec![
                ok("a"),
                ok("b"),
                vec![Value::Timestamp(past), Value::Int(3)],
            ],
        )),
        "INGEST with a bad third event",
    );
    assert_eq!(
        (e.code, e.row, e.column.as_deref()),
        (ErrorCode::TypeMismatch, Some(2), Some("card")),
        "{e}"
    );
    let e = fails(
        c.call(&Request::History(HistoryRequest {
            view: "card_10m".into(),
            pairs: vec![(Value::Text("a".into()), past), (Value::Null, past)],
        })),
        "HISTORY with a NULL second key",
    );
    assert_eq!((e.code, e.row), (ErrorCode::NullKey, Some(1)), "{e}");
    let e = fails(
        c.call(&Request::Features(FeaturesRequest {
            view: "card_10m".into(),
            keys: vec![Value::Text("a".into()), Value::Bytes(b"b".to_vec())],
            as_of_us: Some(past),
        })),
        "FEATURES as_of with a BYTES second key",
    );
    assert_eq!((e.code, e.row), (ErrorCode::TypeMismatch, Some(1)), "{e}");
    c.ping().unwrap();
}

/// Key values are accepted for a key column of another type only as BIGINT for TIMESTAMP.
#[test]
fn key_coercions() {
    let server = server();
    let mut c = server.client();
    c.sql(
        "CREATE TABLE at_ts (k TIMESTAMP PRIMARY KEY, v TEXT); \
         CREATE TABLE by_int (k BIGINT PRIMARY KEY, d DOUBLE); \
         CREATE TABLE by_text (k TEXT PRIMARY KEY); \
         CREATE TABLE by_bytes (k BYTES PRIMARY KEY)",
    )
    .unwrap();

    // BIGINT for a TIMESTAMP key: stored as TIMESTAMP; found by either form.
    assert_eq!(
        c.upsert(
            "at_ts",
            &["k", "v"],
            vec![vec![
                Value::Int(1_700_000_000_000_000),
                Value::Text("x".into())
            ]]
        )
        .unwrap(),
        1
    );
    let got = c
        .get(
            "at_ts",
            vec![
                Value::Timestamp(1_700_000_000_000_000),
                Value::Int(1_700_000_000_000_000),
            ],
        )
        .unwrap();
    let row = vec![
        Value::Timestamp(1_700_000_000_000_000),
        Value::Text("x".into()),
    ];
    assert_eq!(got.rows, vec![Some(row.clone()), Some(row)]);
    assert_eq!(
        got.columns[0],
        Column {
            name: "k".into(),
            ty: ColumnType::Timestamp
        }
    );

    // No other coercion for keys: each is TYPE_MISMATCH with the key's index and column.
    let cases: Vec<(&str, Value)> = vec![
        ("by_int", Value::Timestamp(5)),
        ("by_int", Value::Double(5.0)),
        ("by_int", Value::Text("5".into())),
        ("by_text", Value::Bytes(b"a".to_vec())),
        ("by_bytes", Value::Text("a".into())),
        ("at_ts", Value::Text("2026-01-01T00:00:00Z".into())),
        ("at_ts", Value::Double(1.0)),
    ];
    for (table, key) in cases {
        let what = format!("{table} key {key:?}");
        for req in [
            Request::Get(KeysRequest {
                table: table.into(),
                keys: vec![Value::Null, key.clone()],
            }),
            Request::Get(KeysRequest {
                table: table.into(),
                keys: vec![key.clone()],
            }),
            Request::Delete(KeysRequest {
                table: table.into(),
                keys: vec![key.clone()],
            }),
            upsert_req(table, &["k"], vec![vec![key.clone()]]),
        ] {
            let e = fails(c.call(&req), &what);
            let expected = match &req {
                Request::Get(k) if k.keys.len() == 2 => (ErrorCode::NullKey, Some(0)),
                _ => (ErrorCode::TypeMismatch, Some(0)),
            };
            assert_eq!(
                (e.code, e.row),
                expected,
                "{what} in {:?}: {e}",
                req.opcode()
            );
            assert_eq!(e.column.as_deref(), Some("k"), "{what}: {e}");
        }
    }

    // Non-key DOUBLE columns also take a BIGINT of magnitude at most 2^53.
    let big = 1i64 << 53;
    c.upsert(
        "by_int",
        &["k", "d"],
        vec![vec![Value::Int(1), Value::Int(big)]],
    )
    .unwrap();
    assert_eq!(
        c.get("by_int", vec![Value::Int(1)]).unwrap().rows,
        vec![Some(vec![Value::Int(1), Value::Double(big as f64)])]
    );
    let e = fails(
        c.upsert(
            "by_int",
            &["k", "d"],
            vec![
                vec![Value::Int(2), Value::Int(1)],
                vec![Value::Int(3), Value::Int(big + 1)],
            ],
        ),
        "2^53 + 1 for DOUBLE",
    );
    assert_eq!(
        (e.code, e.row, e.column.as_deref()),
        (ErrorCode::TypeMismatch, Some(1), Some("d")),
        "{e}"
    );

    // DELETE with the BIGINT form of a TIMESTAMP key deletes the row.
    assert_eq!(
        c.delete("at_ts", vec![Value::Int(1_700_000_000_000_000)])
            .unwrap(),
        1
    );

    // Feature-view keys follow the same rule (BIGINT for a TIMESTAMP key).
    c.sql(
        "CREATE STREAM ev (ts TIMESTAMP, day TIMESTAMP, n BIGINT) \
         WITH (event_time = 'ts', partition = 'n'); \
         CREATE MATERIALIZED VIEW per_day WITH (window = 'lifetime') \
         AS SELECT day, count(*) AS c FROM ev GROUP BY day; \
         CREATE MATERIALIZED VIEW per_n WITH (window = 'lifetime') \
         AS SELECT n, count(*) AS c FROM ev GROUP BY n",
    )
    .unwrap();
    let t = now_us() - 1_000_000;
    c.call(&Request::Ingest(IngestRequest {
        stream: "ev".into(),
        producer: None,
        body: IngestBody::Rows {
            columns: vec!["ts".into(), "day".into(), "n".into()],
            // BIGINT values for the TIMESTAMP columns are coerced in events too.
            rows: vec![vec![
                Value::Int(t),
                Value::Int(86_400_000_000),
                Value::Int(7),
            ]],
        },
    }))
    .unwrap();
    let features = |c: &mut Conn, view: &str, key: Value| {
        c.call(&Request::Features(FeaturesRequest {
            view: view.into(),
            keys: vec![key],
            as_of_us: None,
        }))
    };
    for key in [Value::Int(86_400_000_000), Value::Timestamp(86_400_000_000)] {
        match features(&mut c, "per_day", key.clone()).unwrap() {
            Response::Features(r) => assert_eq!(
                r.rows[0].values,
                [Value::Timestamp(86_400_000_000), Value::Int(1)],
                "{key:?}"
            ),
            o => panic!("{o:?}"),
        }
    }
    let e = fails(
        features(&mut c, "per_n", Value::Timestamp(7)),
        "TIMESTAMP for a BIGINT view key",
    );
    assert_eq!((e.code, e.row), (ErrorCode::TypeMismatch, Some(0)), "{e}");
}

/// Which shard a new connection landed on (SO_REUSEPORT picks it): the shard whose
/// `connections` grew, as seen by `monitor`.
fn connect_to_shard(server: &TarnServer, monitor: &mut Conn, shard: u32) -> Conn {
    let count = |m: &mut Conn| -> Vec<u32> {
        let mut v = vec![0; 2];
        for s in m.stats().unwrap().shards {
            v[s.shard as usize] = s.connections;
        }
        v
    };
    for _ in 0..200 {
        let before = count(monitor);
        let c = server.client();
        let after = count(monitor);
        if after[shard as usize] == before[shard as usize] + 1 {
            return c;
        }
    }
    panic!("no connection landed on shard {shard}");
}

#[test]
fn create_materialized_view_returns_the_backfilled_event_count() {
    let server = server();
    let mut monitor = server.client();
    let mut c = server.client();
    create_stream(&mut c);
    let t = now_us() - 1_000_000;
    let rows: Vec<Vec<Value>> = (0..25)
        .map(|i| vec![Value::Timestamp(t), Value::Text(format!("card-{i}"))])
        .collect();
    c.call(&ingest_rows(&["ts", "card"], rows)).unwrap();

    let expect = |r: &SqlReply, view: &str, n: i64| {
        assert_eq!(
            r.columns,
            [
                Column {
                    name: "view".into(),
                    ty: ColumnType::Text
                },
                Column {
                    name: "backfilled_events".into(),
                    ty: ColumnType::BigInt
                },
            ],
            "{r:?}"
        );
        assert_eq!(
            r.rows,
            [vec![Value::Text(view.into()), Value::Int(n)]],
            "{r:?}"
        );
    };
    // From a connection on shard 0 (where DDL runs) and on shard 1 (forwarded to shard 0).
    for (shard, view) in [(0, "v0"), (1, "v1")] {
        let mut on = connect_to_shard(&server, &mut monitor, shard);
        let r = on
            .sql(&format!(
                "CREATE MATERIALIZED VIEW {view} WITH (window = 'lifetime') \
                 AS SELECT card, count(*) AS n FROM tx GROUP BY card"
            ))
            .unwrap();
        expect(&r, view, 25);
        assert_eq!(
            r.message,
            format!("CREATE MATERIALIZED VIEW {view} (back-filled 25 events)")
        );
        // IF NOT EXISTS of an existing view: skipped, nothing back-filled.
        let r = on
            .sql(&format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {view} WITH (window = 'lifetime') \
                 AS SELECT card, count(*) AS n FROM tx GROUP BY card"
            ))
            .unwrap();
        expect(&r, view, 0);
        assert!(r.message.contains("skipped"), "{}", r.message);
    }
    // A view over an empty stream, as the last of several statements.
    let r = c
        .sql(
            "CREATE STREAM quiet (ts TIMESTAMP, k TEXT) WITH (event_time = 'ts', partition = 'k'); \
             CREATE MATERIALIZED VIEW q WITH (window = 'lifetime') \
             AS SELECT k, count(*) AS n FROM quiet GROUP BY k",
        )
        .unwrap();
    expect(&r, "q", 0);
    assert_eq!(
        r.message,
        "CREATE STREAM quiet\nCREATE MATERIALIZED VIEW q (back-filled 0 events)"
    );
    // Other DDL has no result set.
    let r = c.sql("DROP MATERIALIZED VIEW q").unwrap();
    assert!(r.columns.is_empty() && r.rows.is_empty(), "{r:?}");
}

/// The result sets of SHOW and DESCRIBE, as docs/PROTOCOL.md lists them.
#[test]
fn listing_result_sets_match_the_spec() {
    let server = server();
    let mut c = server.client();
    c.sql("CREATE TABLE cards (card_id TEXT PRIMARY KEY, risk DOUBLE, seen TIMESTAMP)")
        .unwrap();
    create_stream(&mut c);
    c.sql(VIEW).unwrap();
    let schema = |r: &SqlReply| -> Vec<(String, ColumnType)> {
        r.columns.iter().map(|c| (c.name.clone(), c.ty)).collect()
    };
    let cols = |spec: &[(&str, ColumnType)]| -> Vec<(String, ColumnType)> {
        spec.iter().map(|(n, t)| (n.to_string(), *t)).collect()
    };
    use ColumnType::{BigInt, Boolean, Text, Timestamp};
    let text = |s: &str| Value::Text(s.into());

    let r = c.sql("SHOW TABLES").unwrap();
    assert_eq!(
        schema(&r),
        cols(&[("table", Text), ("key", Text), ("columns", BigInt)])
    );
    assert_eq!(
        r.rows,
        [vec![text("cards"), text("card_id"), Value::Int(3)]]
    );
    assert_eq!(r.message, "1 table(s)");

    let r = c.sql("SHOW STREAMS").unwrap();
    assert_eq!(
        schema(&r),
        cols(&[
            ("stream", Text),
            ("event_time", Text),
            ("partition", Text),
            ("retention", Text),
            ("max_future", Text),
            ("events", BigInt),
            ("newest_event_time", Timestamp),
            ("recent", BigInt),
        ])
    );
    assert_eq!(r.rows.len(), 1, "{r:?}");
    assert_eq!(r.rows[0][..3], [text("tx"), text("ts"), text("card")]);
    assert_eq!(
        r.rows[0][5..],
        [Value::Int(0), Value::Null, Value::Int(0)],
        "{r:?}"
    );

    let r = c.sql("SHOW VIEWS").unwrap();
    assert_eq!(
        schema(&r),
        cols(&[
            ("view", Text),
            ("stream", Text),
            ("key", Text),
            ("window", Text),
            ("keys", BigInt),
            ("window_bytes", BigInt),
            ("events", BigInt),
            ("late_events", BigInt),
        ])
    );
    assert_eq!(
        r.rows[0][..4],
        [
            text("card_10m"),
            text("tx"),
            text("card"),
            text("10 minutes / 1 minute")
        ]
    );

    let describe = cols(&[("column", Text), ("type", Text), ("key", Boolean)]);
    let r = c.sql("DESCRIBE cards").unwrap();
    assert_eq!(schema(&r), describe);
    assert_eq!(
        r.rows,
        [
            vec![text("card_id"), text("TEXT"), Value::Bool(true)],
            vec![text("risk"), text("DOUBLE"), Value::Bool(false)],
            vec![text("seen"), text("TIMESTAMP"), Value::Bool(false)],
        ]
    );
    assert_eq!(r.message, "table cards");
    let r = c.sql("DESCRIBE tx").unwrap();
    assert_eq!(
        schema(&r),
        cols(&[("column", Text), ("type", Text), ("role", Text)])
    );
    assert_eq!(
        r.rows,
        [
            vec![text("ts"), text("TIMESTAMP"), text("event time")],
            vec![text("card"), text("TEXT"), text("partition")],
            vec![text("amount"), text("DOUBLE"), text("")],
        ]
    );
    let r = c.sql("DESCRIBE card_10m").unwrap();
    assert_eq!(schema(&r), describe);
    assert_eq!(
        r.rows,
        [
            vec![text("card"), text("TEXT"), Value::Bool(true)],
            vec![text("n"), text("BIGINT"), Value::Bool(false)],
        ]
    );
    assert!(
        r.message.starts_with("CREATE MATERIALIZED VIEW"),
        "{}",
        r.message
    );
    let e = fails(c.sql("DESCRIBE nope"), "DESCRIBE of nothing");
    assert_eq!(e.code, ErrorCode::UnknownTable, "{e}");

    // SQL text over MAX_SQL_BYTES is VALUE_TOO_LONG; the connection serves on.
    let long = format!(
        "SHOW TABLES; {}",
        " ".repeat(tarn_net::limits::MAX_SQL_BYTES as usize)
    );
    let e = fails(c.sql(&long), "over-long SQL");
    assert_eq!((e.code, e.row), (ErrorCode::ValueTooLong, None), "{e}");

    // A client that half-closes still gets the replies to what it sent, then EOF.
    let (a, first) = c.encode(&Request::Sql("SHOW TABLES".into()));
    let (b, second) = c.encode(&Request::Ping(b"bye".to_vec()));
    c.send_raw(&[first, second].concat()).unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ids = vec![c.recv().unwrap().0, c.recv().unwrap().0];
    ids.sort();
    assert_eq!(ids, [a, b]);
    let mut seen = Vec::new();
    assert!(c.expect_closed(Duration::from_secs(10), &mut seen));
    assert!(seen.is_empty(), "{seen:?}");
}

/// A BIGINT given for a TIMESTAMP key is routed by the key as stored (the TIMESTAMP), on the
/// inline path too: from a connection on either shard, every row is found and the server keeps
/// serving. (Found by the wire fuzzer: the inline check once routed by the BIGINT's bytes, so
/// a GET landed on a shard that does not own the row.)
#[test]
fn timestamp_keys_given_as_bigint_are_routed_as_stored() {
    let mut server = server();
    let mut monitor = server.client();
    monitor
        .sql("CREATE TABLE by_ts (k TIMESTAMP PRIMARY KEY, v BIGINT)")
        .unwrap();
    let keys: Vec<i64> = (0..64).map(|i| 1_700_000_000_000_000 + i * 7_919).collect();
    let rows = keys
        .iter()
        .map(|&k| vec![Value::Timestamp(k), Value::Int(k)])
        .collect();
    assert_eq!(monitor.upsert("by_ts", &["k", "v"], rows).unwrap(), 64);
    for shard in 0..2 {
        let mut c = connect_to_shard(&server, &mut monitor, shard);
        for &k in &keys {
            let got = c.get("by_ts", vec![Value::Int(k)]).unwrap();
            assert_eq!(
                got.rows,
                vec![Some(vec![Value::Timestamp(k), Value::Int(k)])],
                "key {k} from a connection on shard {shard}"
            );
        }
        // Several keys at once, some owned by each shard.
        let all: Vec<Value> = keys.iter().map(|&k| Value::Int(k)).collect();
        let got = c.get("by_ts", all).unwrap();
        assert!(
            got.rows.iter().all(Option::is_some),
            "shard {shard}: {got:?}"
        );
    }
    assert!(server.is_running(), "every shard still serves");
}
