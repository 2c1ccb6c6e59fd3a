//! Streams end to end: CREATE STREAM, INGEST (typed rows and JSON), validation errors with the
//! event index and nothing applied, producer dedup across retries and restarts, counters.

mod common;

use common::*;
use tarn_net::{IngestBody, IngestReply, IngestRequest, Producer};

const SHARDS: u32 = 2;
const NOW_2026: i64 = 1_790_000_000_000_000; // 2026-09, in the past of the test machine

fn ingest(c: &mut Conn, body: IngestBody, producer: Option<(u64, u64)>) -> CResult<IngestReply> {
    match c.call(&Request::Ingest(IngestRequest {
        stream: "tx".into(),
        producer: producer.map(|(id, seq)| Producer { id, seq }),
        body,
    }))? {
        Response::Ingest(r) => Ok(r),
        o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
    }
}

fn rows_body(rows: Vec<Vec<Value>>) -> IngestBody {
    IngestBody::Rows {
        columns: vec!["ts".into(), "card".into(), "amount".into()],
        rows,
    }
}

fn json_body(text: &str) -> IngestBody {
    IngestBody::Json {
        layout: 0,
        data: text.as_bytes().to_vec(),
    }
}

fn event(i: i64) -> Vec<Value> {
    vec![
        Value::Timestamp(NOW_2026 + i),
        Value::Text(format!("card-{}", i % 50)),
        Value::Double(i as f64 / 4.0),
    ]
}

/// (events, newest event time) of stream tx from SHOW STREAMS.
fn counters(c: &mut Conn) -> (i64, Value) {
    let r = c.sql("SHOW STREAMS").unwrap();
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    let ev = names.iter().position(|n| *n == "events").unwrap();
    let nt = names
        .iter()
        .position(|n| *n == "newest_event_time")
        .unwrap();
    let row = r
        .rows
        .iter()
        .find(|row| row[0] == Value::Text("tx".into()))
        .expect("stream tx listed");
    let Value::Int(n) = row[ev] else {
        panic!("{row:?}")
    };
    (n, row[nt].clone())
}

fn setup() -> (TarnServer, Conn) {
    let server = TarnServer::start_ok(ServerOpts::shards(SHARDS).durability("sync"));
    let mut c = server.client();
    c.sql(
        "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE, note TEXT) \
         WITH (event_time = 'ts', partition = 'card', retention = '1 day')",
    )
    .unwrap();
    (server, c)
}

#[test]
fn ingest_rows_and_json_counts_and_describe() {
    let (server, mut c) = setup();
    let r = ingest(&mut c, rows_body((0..1000).map(event).collect()), None).unwrap();
    assert_eq!(
        r,
        IngestReply {
            events: 1000,
            duplicate: false
        }
    );
    let json = "{\"ts\": \"2026-09-21T11:46:40Z\", \"card\": \"card-1\", \"amount\": 1.5}\n\
                \n\
                {\"ts\": 1790000000000999, \"card\": \"card-2\", \"amount\": 2, \"note\": null}\n";
    let r = ingest(&mut c, json_body(json), None).unwrap();
    assert_eq!(r.events, 2);
    let arr = "[{\"ts\": 1790000000001000, \"card\": \"x\"}, {\"ts\": 1790000000000001, \"card\": \"y\", \"note\": \"hi\"}]";
    assert_eq!(ingest(&mut c, json_body(arr), None).unwrap().events, 2);
    assert_eq!(
        counters(&mut c),
        (1004, Value::Timestamp(1_790_000_000_001_000))
    );
    // Events spread over both shards (their home is the partition column's shard).
    let homes: std::collections::BTreeSet<u32> = (0..50)
        .map(|i| shard_of(&Value::Text(format!("card-{i}")), SHARDS))
        .collect();
    assert_eq!(homes.len(), SHARDS as usize);
    let d = c.sql("DESCRIBE tx").unwrap();
    assert_eq!(d.rows.len(), 4);
    assert_eq!(d.rows[0][2], Value::Text("event time".into()));
    assert_eq!(d.rows[1][2], Value::Text("partition".into()));
    // Survives a restart (log replay / checkpoint).
    let mut server = server;
    server.kill9();
    server.restart_ok();
    let mut c = server.client();
    assert_eq!(counters(&mut c).0, 1004);
    server.stop_ok();
    server.restart_ok();
    let mut c = server.client();
    assert_eq!(counters(&mut c).0, 1004);
}

#[test]
fn bad_batches_are_refused_whole_with_the_event_index() {
    let (server, mut c) = setup();
    let future = Value::Timestamp(4_000_000_000_000_000);
    let mut cases: Vec<(IngestBody, ErrorCode, Option<u32>)> = Vec::new();
    // Typed rows: wrong type at row 3, missing event time at row 2, future-dated at row 1.
    let mut rows: Vec<Vec<Value>> = (0..5).map(event).collect();
    rows[3][2] = Value::Text("lots".into());
    cases.push((rows_body(rows), ErrorCode::TypeMismatch, Some(3)));
    let mut rows: Vec<Vec<Value>> = (0..5).map(event).collect();
    rows[2][0] = Value::Null;
    cases.push((rows_body(rows), ErrorCode::MissingValue, Some(2)));
    let mut rows: Vec<Vec<Value>> = (0..5).map(event).collect();
    rows[1][0] = future.clone();
    cases.push((rows_body(rows), ErrorCode::FutureEvent, Some(1)));
    cases.push((
        IngestBody::Rows {
            columns: vec!["ts".into(), "nope".into()],
            rows: vec![vec![Value::Timestamp(NOW_2026), Value::Int(1)]],
        },
        ErrorCode::UnknownColumn,
        None,
    ));
    // JSON: malformed line 1, unknown field at 2, wrong type at 0, missing partition at 1.
    let ok = "{\"ts\": 1790000000000000, \"card\": \"a\"}";
    cases.push((
        json_body(&format!("{ok}\n{{\"ts\": 1,\n")),
        ErrorCode::BadEvent,
        Some(1),
    ));
    cases.push((
        json_body(&format!(
            "{ok}\n{ok}\n{{\"ts\": 1790000000000000, \"card\": \"a\", \"colour\": 1}}\n"
        )),
        ErrorCode::BadEvent,
        Some(2),
    ));
    cases.push((
        json_body("{\"ts\": 1790000000000000, \"card\": \"a\", \"amount\": \"much\"}"),
        ErrorCode::TypeMismatch,
        Some(0),
    ));
    cases.push((
        json_body(&format!("{ok}\n{{\"ts\": 1790000000000000}}\n")),
        ErrorCode::MissingValue,
        Some(1),
    ));
    cases.push((
        json_body(&format!(
            "{ok}\n{{\"ts\": \"4000-01-01T00:00:00Z\", \"card\": \"a\"}}\n"
        )),
        ErrorCode::FutureEvent,
        Some(1),
    ));
    cases.push((json_body(""), ErrorCode::BatchEmpty, None));
    for (i, (body, code, row)) in cases.into_iter().enumerate() {
        // Each bad batch carries producer (9, i+1): the good batch with the same tag below must
        // then be applied, proving nothing of the bad one was.
        let e = ingest(&mut c, body, Some((9, i as u64 + 1)))
            .expect_err("bad batch accepted")
            .server();
        assert_eq!((e.code, e.row), (code, row), "case {i}: {e}");
        let good = ingest(
            &mut c,
            rows_body(vec![event(i as i64)]),
            Some((9, i as u64 + 1)),
        )
        .unwrap();
        assert_eq!(
            good,
            IngestReply {
                events: 1,
                duplicate: false
            },
            "case {i}"
        );
    }
    // Unknown stream.
    let e = c
        .call(&Request::Ingest(IngestRequest {
            stream: "nope".into(),
            producer: None,
            body: rows_body(vec![event(1)]),
        }))
        .unwrap_err()
        .server();
    assert_eq!(e.code, ErrorCode::UnknownStream);
    // Oversize batch.
    let e = ingest(&mut c, rows_body((0..10_001).map(event).collect()), None)
        .unwrap_err()
        .server();
    assert_eq!(e.code, ErrorCode::BatchTooLarge);
    let many: String = (0..10_001)
        .map(|i| format!("{{\"ts\": {}, \"card\": \"c\"}}\n", NOW_2026 + i))
        .collect();
    let e = ingest(&mut c, json_body(&many), None).unwrap_err().server();
    assert_eq!(e.code, ErrorCode::BatchTooLarge, "{e}");
    // The server still serves another connection.
    let mut other = server.client();
    assert_eq!(counters(&mut other).0, 10);
}

#[test]
fn producer_batches_apply_once_across_retries_and_restarts() {
    let (mut server, mut c) = setup();
    let batch = |base: i64| rows_body((base..base + 200).map(event).collect());
    assert!(!ingest(&mut c, batch(0), Some((7, 1))).unwrap().duplicate);
    assert!(ingest(&mut c, batch(0), Some((7, 1))).unwrap().duplicate);
    assert!(!ingest(&mut c, batch(200), Some((7, 3))).unwrap().duplicate);
    assert!(
        !ingest(&mut c, batch(400), Some((7, 2))).unwrap().duplicate,
        "an older seq never applied"
    );
    assert!(
        !ingest(&mut c, batch(0), Some((8, 1))).unwrap().duplicate,
        "another producer"
    );
    assert_eq!(counters(&mut c).0, 800);
    // Crash, then retry: still duplicates (dedup state is in the log).
    server.kill9();
    server.restart_ok();
    let mut c = server.client();
    for seq in 1..=3 {
        assert!(
            ingest(&mut c, batch(0), Some((7, seq))).unwrap().duplicate,
            "seq {seq}"
        );
    }
    // Clean stop (checkpoint), then retry: still duplicates (dedup state is in the checkpoint).
    server.stop_ok();
    server.restart_ok();
    let mut c = server.client();
    assert!(ingest(&mut c, batch(0), Some((8, 1))).unwrap().duplicate);
    assert!(!ingest(&mut c, batch(0), Some((8, 2))).unwrap().duplicate);
    assert_eq!(counters(&mut c).0, 1000);
    server.stop_ok();
}
