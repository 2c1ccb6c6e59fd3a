//! Machinery of the wire fuzzer (`tests/wire_fuzz.rs`, described in `docs/FUZZING.md`): the
//! schema the fuzzer creates, the seed corpus of valid frames, the mutations, a model of how the
//! server frames and answers a byte stream (`Shadow`), a non-blocking connection driver
//! (`Wire`), and small process helpers (RSS, fd limit, SO_LINGER).
//!
//! Included by `wire_fuzz.rs` with `#[path = "common/fuzz.rs"]`; `common/mod.rs` does not
//! declare it, so other tests do not compile it.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use tarn_net::limits::{
    MAX_BATCH_ROWS, MAX_COLUMNS, MAX_FRAME_PAYLOAD_BYTES, MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES,
    MAX_IN_FLIGHT_PER_CONNECTION, MAX_PING_BYTES, MAX_SQL_BYTES,
};
use tarn_net::{
    ErrorCode, FeaturesRequest, FrameHeader, Hello, HistoryRequest, IngestBody, IngestRequest,
    KeysRequest, Opcode, Producer, Request, Response, UpsertMode, UpsertRequest, Value, HEADER_LEN,
};

// -------------------------------------------------------------------------------------------
// Schema

/// Table with every column type (BIGINT key); the fuzzer's main write target.
pub const T_ALL: &str = "fz_all";
/// Stream with every column type, partitioned by `k`, read through two feature views.
pub const S_EV: &str = "fz_ev";
/// Lifetime feature view over `fz_ev` (compared before and after the restart).
pub const V_LIFE: &str = "fz_life";
/// Sliding-window feature view over `fz_ev`.
pub const V_WIN: &str = "fz_win";
/// The canary's table; no fuzz frame names it.
pub const T_CANARY: &str = "canary_kv";
/// Rows of `BIG_VALUE_BYTES` that the never-reading client GETs (reply amplification).
pub const T_BIG: &str = "fz_big";
pub const BIG_VALUE_BYTES: usize = 256 * 1024;

/// Names the fuzz traffic must never drop or write: the canary's checks and the restart
/// comparison depend on them. DDL seeds only create and drop `fz_tmp*` objects.
pub const PROTECTED: [&str; 10] = [
    T_ALL, S_EV, V_LIFE, V_WIN, T_CANARY, T_BIG, "fz_txt", "fz_bkey", "fz_tkey", T_VEC,
];

/// A table with a VECTOR(4) column: vector values, good and bad, over the wire.
pub const T_VEC: &str = "fz_vec";

/// Statements run once at start (with the harness client) before any fuzz traffic.
pub const SCHEMA: [&str; 10] = [
    "CREATE TABLE fz_vec (id BIGINT PRIMARY KEY, emb VECTOR(4), note TEXT)",
    "CREATE TABLE fz_all (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE, ok BOOLEAN, data BYTES, at TIMESTAMP)",
    "CREATE TABLE fz_txt (k TEXT PRIMARY KEY, v BIGINT, note TEXT)",
    "CREATE TABLE fz_bkey (k BYTES PRIMARY KEY, v DOUBLE, flag BOOLEAN)",
    "CREATE TABLE fz_tkey (k TIMESTAMP PRIMARY KEY, v TEXT)",
    "CREATE TABLE canary_kv (k TEXT PRIMARY KEY, v BIGINT, note TEXT)",
    "CREATE TABLE fz_big (k BIGINT PRIMARY KEY, blob BYTES)",
    "CREATE STREAM fz_ev (ts TIMESTAMP, k TEXT, n BIGINT, x DOUBLE, ok BOOLEAN, blob BYTES) \
     WITH (event_time = 'ts', partition = 'k', retention = '1 minute', max_future = '1 minute')",
    "CREATE MATERIALIZED VIEW fz_life WITH (window = 'lifetime') AS \
     SELECT k, count(*) AS c, sum(n) AS sn, sum(x) AS sx, min(x) AS mn, max(n) AS mx, \
            count(DISTINCT blob) AS db, first(ok) AS f, last(n) AS l \
     FROM fz_ev GROUP BY k",
    "CREATE MATERIALIZED VIEW fz_win WITH (window = '60 seconds', bucket = '5 seconds') AS \
     SELECT k, count(*) AS c, avg(x) AS ax, stddev(x) AS sd, max(x) AS mx \
     FROM fz_ev WHERE n >= 0 GROUP BY k",
];

/// Keys of the feature views that the seeds ingest into (and the restart check reads).
pub const VIEW_KEYS: [&str; 6] = ["k0", "k1", "k2", "k3", "k4", "k5"];

// -------------------------------------------------------------------------------------------
// Seed corpus

/// One valid (or deliberately invalid, but well-framed) request frame.
#[derive(Clone, Debug)]
pub struct Seed {
    pub name: String,
    /// The request opcode name, or `vector` for frames of docs/protocol-vectors.json.
    pub kind: &'static str,
    /// The whole frame; bytes 8..16 (request id) are overwritten when it is sent.
    pub frame: Vec<u8>,
    pub weight: u32,
}

fn seed(name: impl Into<String>, weight: u32, req: &Request) -> Seed {
    let mut frame = Vec::new();
    tarn_net::encode_request(0, req, &mut frame);
    Seed {
        name: name.into(),
        kind: req.opcode().name(),
        frame,
        weight,
    }
}

fn raw_seed(name: &str, kind: &'static str, weight: u32, opcode: u16, payload: &[u8]) -> Seed {
    let h = FrameHeader {
        payload_len: payload.len() as u32,
        opcode,
        flags: 0,
        request_id: 0,
    };
    let mut frame = h.encode().to_vec();
    frame.extend_from_slice(payload);
    Seed {
        name: name.into(),
        kind,
        frame,
        weight,
    }
}

pub fn hello_req(min: u16, max: u16, name: &str, token: &str) -> Request {
    Request::Hello(Hello {
        min_version: min,
        max_version: max,
        client_name: name.into(),
        auth_token: token.into(),
    })
}

/// A valid HELLO frame with request id `id`.
pub fn hello_frame(id: u64) -> Vec<u8> {
    let mut f = Vec::new();
    tarn_net::encode_request(id, &hello_req(1, 1, "tarn-wire-fuzz", ""), &mut f);
    f
}

fn all_row(id: i64) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(format!("név-{id} ✓")),
        Value::Double(id as f64 * 0.25),
        Value::Bool(id % 2 == 0),
        Value::Bytes(vec![id as u8, 0, 0xff, 0x7f]),
        Value::Timestamp(1_700_000_000_000_000 + id),
    ]
}

const ALL_COLS: [&str; 6] = ["id", "name", "score", "ok", "data", "at"];
const EV_COLS: [&str; 6] = ["ts", "k", "n", "x", "ok", "blob"];

fn cols(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

fn upsert(table: &str, mode: UpsertMode, columns: &[&str], rows: Vec<Vec<Value>>) -> Request {
    Request::Upsert(UpsertRequest {
        table: table.into(),
        mode,
        columns: cols(columns),
        rows,
    })
}

fn keys(op: Opcode, table: &str, keys: Vec<Value>) -> Request {
    let k = KeysRequest {
        table: table.into(),
        keys,
    };
    if op == Opcode::Get {
        Request::Get(k)
    } else {
        Request::Delete(k)
    }
}

/// Vector values for [`T_VEC`]: valid rows, every validator error (dimension, empty, NaN,
/// infinities, over the magnitude limit), SQL INSERT literals, and a raw count over the limit.
fn vector_value_seeds() -> Vec<Seed> {
    let v = |x: &[f32]| Value::Vector(x.to_vec().into());
    let row = |id: i64, e: Value| vec![Value::Int(id), e, Value::Text(format!("v{id}"))];
    let cols = ["id", "emb", "note"];
    let mut s = Vec::new();
    let good: Vec<Vec<Value>> = (0..8)
        .map(|i| row(i, v(&[i as f32, -0.0, 1e-30, -1e16])))
        .collect();
    s.push(seed(
        "UPSERT vectors",
        6,
        &upsert(T_VEC, UpsertMode::Replace, &cols, good),
    ));
    for (name, bad) in [
        ("UPSERT vector short", v(&[1.0, 2.0])),
        ("UPSERT vector empty", v(&[])),
        ("UPSERT vector NaN", v(&[1.0, f32::NAN, 0.0, 0.0])),
        ("UPSERT vector +inf", v(&[f32::INFINITY, 0.0, 0.0, 0.0])),
        ("UPSERT vector -inf", v(&[0.0, 0.0, 0.0, f32::NEG_INFINITY])),
        ("UPSERT vector huge", v(&[0.0, 1e17, 0.0, 0.0])),
        ("UPSERT vector as text", Value::Text("[1,2,3,4]".into())),
    ] {
        let rows = vec![row(100, v(&[1.0; 4])), row(101, bad)];
        s.push(seed(
            name,
            1,
            &upsert(T_VEC, UpsertMode::Replace, &cols, rows),
        ));
    }
    s.push(seed(
        "GET vectors",
        4,
        &keys(Opcode::Get, T_VEC, (0..9).map(Value::Int).collect()),
    ));
    s.push(seed(
        "GET vector key",
        1,
        &keys(Opcode::Get, T_VEC, vec![v(&[1.0; 4])]),
    ));
    for (name, sql) in [
        ("SQL INSERT vectors", "INSERT INTO fz_vec VALUES (20, '[1, 2.5, -3, 0]', 'a'), (21, ARRAY[0.5, -1, 2, 3], NULL)"),
        ("SQL INSERT bad vector", "INSERT INTO fz_vec (id, emb) VALUES (22, '[1, NaN, 3, 4]')"),
        ("SQL SELECT vectors", "SELECT id, emb FROM fz_vec WHERE id IN (1, 20, 21)"),
        ("SQL compare vector", "SELECT * FROM fz_vec WHERE emb = '[1,2,3,4]'"),
    ] {
        s.push(seed(name, 1, &Request::Sql(sql.into())));
    }
    let mut p = Vec::new();
    p.extend_from_slice(&(T_VEC.len() as u32).to_le_bytes());
    p.extend_from_slice(T_VEC.as_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(7);
    p.extend_from_slice(&(tarn_net::limits::MAX_VECTOR_COMPONENTS + 1).to_le_bytes());
    s.push(raw_seed(
        "GET vector count over limit",
        "raw",
        1,
        Opcode::Get.as_u16(),
        &p,
    ));
    s
}

fn ev_row(ts: i64, k: &str, n: i64) -> Vec<Value> {
    vec![
        Value::Timestamp(ts),
        Value::Text(k.into()),
        Value::Int(n),
        Value::Double(n as f64 / 8.0),
        Value::Bool(n % 3 == 0),
        Value::Bytes(vec![n as u8, 1, 2]),
    ]
}

fn ingest(stream: &str, producer: Option<(u64, u64)>, body: IngestBody) -> Request {
    Request::Ingest(IngestRequest {
        stream: stream.into(),
        producer: producer.map(|(id, seq)| Producer { id, seq }),
        body,
    })
}

fn text_keys(ks: &[&str]) -> Vec<Value> {
    ks.iter().map(|k| Value::Text(k.to_string())).collect()
}

/// The seed corpus against the fuzzer's schema, timestamps relative to `now` (so events are
/// neither future nor far in the past), producer tags with `producer` as id base, plus every
/// request vector of docs/protocol-vectors.json (responses too: a response frame sent as a
/// request is MALFORMED). Expensive requests (HISTORY, FEATURES with a past as_of: each
/// replays the owner's retained log) get a low weight. With `suppress`, seeds that trigger a
/// known server bug (see [`known_bug`]) are left out.
pub fn corpus(now: i64, producer: u64, suppress: bool) -> Vec<Seed> {
    use Opcode::{Delete, Get};
    use UpsertMode::{Merge, Replace};
    let mut s: Vec<Seed> = Vec::with_capacity(160);

    // HELLO: valid, a wider range, a token (the server has none: accepted), an unsupported
    // range (after the handshake every HELLO gets UNSUPPORTED).
    s.push(seed("HELLO v1", 2, &hello_req(1, 1, "fz", "")));
    s.push(seed("HELLO v1..3", 1, &hello_req(1, 3, "fz-wide", "tok")));
    s.push(seed("HELLO v2..3", 1, &hello_req(2, 3, "fz-future", "")));

    // PING: empty, small, 1 KiB, the limit, over the limit.
    s.push(seed("PING empty", 4, &Request::Ping(Vec::new())));
    s.push(seed("PING 4", 8, &Request::Ping(b"tarn".to_vec())));
    s.push(seed("PING 1KiB", 3, &Request::Ping(vec![0xa5; 1024])));
    s.push(seed(
        "PING max",
        1,
        &Request::Ping(vec![7; MAX_PING_BYTES as usize]),
    ));
    s.push(seed(
        "PING max+1",
        1,
        &Request::Ping(vec![7; MAX_PING_BYTES as usize + 1]),
    ));

    // SQL: reads of the catalog and of the views, DDL on scratch objects, errors.
    for (name, w, sql) in [
        ("SQL SHOW TABLES", 3, "SHOW TABLES".to_string()),
        ("SQL SHOW STREAMS", 2, "SHOW STREAMS".into()),
        ("SQL SHOW VIEWS", 2, "SHOW VIEWS".into()),
        ("SQL DESCRIBE table", 2, "DESCRIBE fz_all".into()),
        ("SQL DESCRIBE stream", 1, "DESC fz_ev".into()),
        ("SQL DESCRIBE view", 1, "DESCRIBE fz_life".into()),
        (
            "SQL SELECT view =",
            3,
            "SELECT * FROM fz_life WHERE k = 'k1'".into(),
        ),
        (
            "SQL SELECT view IN",
            2,
            "SELECT c, sx, l FROM fz_life WHERE k IN ('k1', 'k2', 'zz')".into(),
        ),
        (
            "SQL SELECT window view",
            2,
            "SELECT * FROM fz_win WHERE k = 'k3'".into(),
        ),
        (
            "SQL CREATE TABLE",
            2,
            "CREATE TABLE IF NOT EXISTS fz_tmp_t (id BIGINT PRIMARY KEY, s TEXT, d DOUBLE, b BOOLEAN, x BYTES, t TIMESTAMP)".into(),
        ),
        ("SQL DROP TABLE", 2, "DROP TABLE IF EXISTS fz_tmp_t".into()),
        (
            "SQL CREATE STREAM",
            1,
            "CREATE STREAM IF NOT EXISTS fz_tmp_s (ts TIMESTAMP, k TEXT, v DOUBLE) WITH (event_time = 'ts', retention = '1 minute')".into(),
        ),
        (
            "SQL CREATE VIEW",
            1,
            "CREATE MATERIALIZED VIEW IF NOT EXISTS fz_tmp_v WITH (window = 'lifetime') AS SELECT k, count(*) AS c FROM fz_tmp_s GROUP BY k".into(),
        ),
        (
            "SQL DROP VIEW",
            1,
            "DROP MATERIALIZED VIEW IF EXISTS fz_tmp_v".into(),
        ),
        ("SQL DROP STREAM", 1, "DROP STREAM IF EXISTS fz_tmp_s".into()),
        (
            "SQL multi",
            1,
            "SHOW TABLES; DESCRIBE fz_txt; SHOW VIEWS".into(),
        ),
        ("SQL parse error", 2, "SELEC * FROM".into()),
        ("SQL unsupported", 1, "SELECT 1".into()),
        ("SQL empty", 1, String::new()),
        (
            "SQL unknown table",
            1,
            "DESCRIBE fz_no_such_table".into(),
        ),
        (
            "SQL over limit",
            1,
            format!("SHOW TABLES {}", " ".repeat(MAX_SQL_BYTES as usize)),
        ),
    ] {
        s.push(seed(name, w, &Request::Sql(sql)));
    }

    // UPSERT: replace and merge, every column type, every key type, one and several shards,
    // extreme values, and every validator error.
    let ids = |r: std::ops::Range<i64>| r.map(all_row).collect::<Vec<_>>();
    s.push(seed(
        "UPSERT replace 1",
        8,
        &upsert(T_ALL, Replace, &ALL_COLS, ids(1..2)),
    ));
    s.push(seed(
        "UPSERT replace 16 (both shards)",
        5,
        &upsert(T_ALL, Replace, &ALL_COLS, ids(0..16)),
    ));
    s.push(seed(
        "UPSERT merge subset",
        5,
        &upsert(
            T_ALL,
            Merge,
            &["id", "score", "ok"],
            vec![
                vec![Value::Int(3), Value::Double(-0.0), Value::Bool(false)],
                vec![Value::Int(40), Value::Int(7), Value::Null],
            ],
        ),
    ));
    s.push(seed(
        "UPSERT extremes",
        3,
        &upsert(
            T_ALL,
            Replace,
            &ALL_COLS,
            vec![
                vec![
                    Value::Int(i64::MIN),
                    Value::Text(String::new()),
                    Value::Double(f64::MAX),
                    Value::Bool(true),
                    Value::Bytes(Vec::new()),
                    Value::Timestamp(i64::MIN),
                ],
                vec![
                    Value::Int(i64::MAX),
                    Value::Text("\u{10FFFF}\u{0}".into()),
                    Value::Double(f64::MIN_POSITIVE / 2.0),
                    Value::Null,
                    Value::Null,
                    Value::Timestamp(i64::MAX),
                ],
            ],
        ),
    ));
    s.push(seed(
        "UPSERT text key merge",
        4,
        &upsert(
            "fz_txt",
            Merge,
            &["k", "v"],
            vec![
                vec![Value::Text("a".into()), Value::Int(1)],
                vec![Value::Text("ü".into()), Value::Int(-1)],
            ],
        ),
    ));
    s.push(seed(
        "UPSERT bytes key",
        2,
        &upsert(
            "fz_bkey",
            Replace,
            &["k", "v", "flag"],
            vec![vec![
                Value::Bytes(vec![0, 1, 2]),
                Value::Double(2.5),
                Value::Bool(true),
            ]],
        ),
    ));
    s.push(seed(
        "UPSERT timestamp key",
        2,
        &upsert(
            "fz_tkey",
            Replace,
            &["k", "v"],
            vec![vec![Value::Timestamp(now), Value::Text("t".into())]],
        ),
    ));
    type Bad<'a> = (&'a str, Vec<&'a str>, Vec<Vec<Value>>);
    let bad: [Bad; 8] = [
        (
            "type mismatch",
            vec!["id", "score"],
            vec![vec![Value::Int(1), Value::Text("x".into())]],
        ),
        (
            "NULL key",
            vec!["id", "name"],
            vec![vec![Value::Null, Value::Text("x".into())]],
        ),
        (
            "missing key",
            vec!["name"],
            vec![vec![Value::Text("x".into())]],
        ),
        (
            "duplicate column",
            vec!["id", "id"],
            vec![vec![Value::Int(1), Value::Int(1)]],
        ),
        (
            "unknown column",
            vec!["id", "nope"],
            vec![vec![Value::Int(1), Value::Int(1)]],
        ),
        (
            "NaN",
            vec!["id", "score"],
            vec![vec![Value::Int(1), Value::Double(f64::NAN)]],
        ),
        (
            "arity",
            vec!["id", "name"],
            vec![vec![Value::Int(1)], vec![Value::Int(2), Value::Null]],
        ),
        ("empty batch", vec!["id"], vec![]),
    ];
    for (name, c, rows) in bad {
        s.push(seed(
            format!("UPSERT {name}"),
            1,
            &upsert(T_ALL, Replace, &c, rows),
        ));
    }
    s.push(seed(
        "UPSERT unknown table",
        1,
        &upsert("fz_nope", Replace, &["id"], vec![vec![Value::Int(1)]]),
    ));
    s.push(seed(
        "UPSERT value too long",
        1,
        &upsert(
            T_ALL,
            Replace,
            &["id", "data"],
            vec![vec![
                Value::Int(5),
                Value::Bytes(vec![1; tarn_types::MAX_VALUE_BYTES + 1]),
            ]],
        ),
    ));
    s.push(seed(
        "UPSERT rows over limit",
        1,
        &upsert(
            T_ALL,
            Replace,
            &["id"],
            (0..=MAX_BATCH_ROWS as i64)
                .map(|i| vec![Value::Int(i % 64)])
                .collect(),
        ),
    ));

    // GET / DELETE.
    for (name, w, op, table, ks) in [
        ("GET 1", 10, Get, T_ALL, vec![Value::Int(1)]),
        (
            "GET many (both shards)",
            5,
            Get,
            T_ALL,
            (0..24).map(Value::Int).collect::<Vec<_>>(),
        ),
        (
            "GET missing+extremes",
            3,
            Get,
            T_ALL,
            vec![
                Value::Int(i64::MIN),
                Value::Int(999_999),
                Value::Int(i64::MAX),
            ],
        ),
        (
            "GET text keys",
            3,
            Get,
            "fz_txt",
            text_keys(&["a", "ü", "none"]),
        ),
        (
            "GET bytes key",
            1,
            Get,
            "fz_bkey",
            vec![Value::Bytes(vec![0, 1, 2])],
        ),
        (
            "GET timestamp key",
            1,
            Get,
            "fz_tkey",
            vec![Value::Timestamp(now)],
        ),
        (
            "DELETE timestamp key as BIGINT",
            1,
            Delete,
            "fz_tkey",
            vec![Value::Int(now - 1)],
        ),
        ("GET NULL key", 1, Get, T_ALL, vec![Value::Null]),
        (
            "GET wrong key type",
            1,
            Get,
            T_ALL,
            vec![Value::Text("1".into())],
        ),
        ("GET double key", 1, Get, T_ALL, vec![Value::Double(1.0)]),
        ("GET no keys", 1, Get, T_ALL, vec![]),
        ("GET unknown table", 1, Get, "fz_nope", vec![Value::Int(1)]),
        (
            "GET keys over limit",
            1,
            Get,
            T_ALL,
            vec![Value::Int(1); MAX_BATCH_ROWS as usize + 1],
        ),
        (
            "DELETE some",
            3,
            Delete,
            T_ALL,
            vec![Value::Int(5), Value::Int(6), Value::Int(700)],
        ),
        ("DELETE text", 1, Delete, "fz_txt", text_keys(&["a"])),
        ("DELETE NULL key", 1, Delete, T_ALL, vec![Value::Null]),
        ("DELETE no keys", 1, Delete, T_ALL, vec![]),
    ] {
        s.push(seed(name, w, &keys(op, table, ks)));
    }

    if !suppress {
        s.push(seed(
            "GET timestamp key as BIGINT",
            1,
            &keys(Get, "fz_tkey", vec![Value::Int(now), Value::Int(now - 1)]),
        ));
    }
    s.push(seed(
        "UPSERT timestamp key as BIGINT",
        1,
        &upsert(
            "fz_tkey",
            Replace,
            &["k", "v"],
            vec![vec![Value::Int(now - 1), Value::Text("coerced".into())]],
        ),
    ));

    s.push(seed("STATS", 3, &Request::Stats));

    // INGEST: typed rows, JSON lines, JSON array, detected layout, with and without producer
    // tags, and event errors.
    let rows: Vec<Vec<Value>> = (0..8)
        .map(|i| ev_row(now - 1_000_000 * i, VIEW_KEYS[i as usize % 6], i))
        .collect();
    s.push(seed(
        "INGEST rows",
        6,
        &ingest(
            S_EV,
            None,
            IngestBody::Rows {
                columns: cols(&EV_COLS),
                rows: rows.clone(),
            },
        ),
    ));
    s.push(seed(
        "INGEST rows producer",
        4,
        &ingest(
            S_EV,
            Some((producer, 1)),
            IngestBody::Rows {
                columns: cols(&EV_COLS),
                rows: rows[..2].to_vec(),
            },
        ),
    ));
    s.push(seed(
        "INGEST rows subset",
        2,
        &ingest(
            S_EV,
            None,
            IngestBody::Rows {
                columns: cols(&["k", "ts"]),
                rows: vec![vec![Value::Text("k2".into()), Value::Timestamp(now)]],
            },
        ),
    ));
    let line = |ts: &str, k: &str, n: i64| {
        format!(
            r#"{{"ts": {ts}, "k": "{k}", "n": {n}, "x": {n}.5, "ok": true, "blob": "AAEC/w=="}}"#
        )
    };
    let t1 = (now - 2_000_000).to_string();
    let lines = format!(
        "{}\n\n{}\n{}\n",
        line(&t1, "k1", 1),
        line("\"2026-01-02T03:04:05.123456Z\"", "k2", -2),
        line(&t1, "k3", 3)
    );
    let array = format!("[{}, {}]", line(&t1, "k4", 4), line(&t1, "k5", 5));
    for (name, w, producer, layout, data) in [
        ("INGEST JSON lines", 4, None, 1u8, lines.clone()),
        (
            "INGEST JSON lines producer",
            3,
            Some((producer + 1, 7)),
            0,
            lines,
        ),
        ("INGEST JSON array", 3, None, 2, array.clone()),
        (
            "INGEST JSON detect array",
            2,
            Some((producer + 2, 1)),
            0,
            array,
        ),
        ("INGEST JSON bad", 1, None, 1, "{\"ts\": ".to_string()),
        (
            "INGEST JSON not an object",
            1,
            None,
            2,
            "[1, \"x\"]".to_string(),
        ),
        (
            "INGEST JSON unknown field",
            1,
            None,
            1,
            format!(r#"{{"ts": {t1}, "k": "k1", "zz": 1}}"#),
        ),
        (
            "INGEST JSON future",
            1,
            None,
            1,
            format!(r#"{{"ts": {}, "k": "k1"}}"#, now + 3_600_000_000),
        ),
        (
            "INGEST JSON missing ts",
            1,
            None,
            1,
            r#"{"k": "k1"}"#.to_string(),
        ),
    ] {
        s.push(seed(
            name,
            w,
            &ingest(
                S_EV,
                producer,
                IngestBody::Json {
                    layout,
                    data: data.into_bytes(),
                },
            ),
        ));
    }
    s.push(seed(
        "INGEST unknown stream",
        1,
        &ingest(
            "fz_nope",
            None,
            IngestBody::Rows {
                columns: cols(&["ts"]),
                rows: vec![vec![Value::Timestamp(now)]],
            },
        ),
    ));
    s.push(seed(
        "INGEST rows type mismatch",
        1,
        &ingest(
            S_EV,
            None,
            IngestBody::Rows {
                columns: cols(&["ts", "k", "n"]),
                rows: vec![vec![
                    Value::Timestamp(now),
                    Value::Text("k1".into()),
                    Value::Text("n".into()),
                ]],
            },
        ),
    ));

    // FEATURES (now, past as_of = history path, future as_of, errors) and HISTORY.
    let feats = |view: &str, ks: Vec<Value>, as_of: Option<i64>| {
        Request::Features(FeaturesRequest {
            view: view.into(),
            keys: ks,
            as_of_us: as_of,
        })
    };
    s.push(seed(
        "FEATURES life",
        5,
        &feats(V_LIFE, text_keys(&["k1", "k2", "nokey"]), None),
    ));
    s.push(seed(
        "FEATURES window",
        3,
        &feats(V_WIN, text_keys(&VIEW_KEYS), None),
    ));
    s.push(seed(
        "FEATURES as_of past",
        1,
        &feats(V_LIFE, text_keys(&["k1"]), Some(now - 2_000_000)),
    ));
    s.push(seed(
        "FEATURES as_of future",
        1,
        &feats(V_LIFE, text_keys(&["k1"]), Some(now + 3_600_000_000)),
    ));
    s.push(seed("FEATURES no keys", 1, &feats(V_LIFE, vec![], None)));
    s.push(seed(
        "FEATURES NULL key",
        1,
        &feats(V_LIFE, vec![Value::Null], None),
    ));
    s.push(seed(
        "FEATURES wrong key type",
        1,
        &feats(V_WIN, vec![Value::Int(1)], None),
    ));
    s.push(seed(
        "FEATURES unknown view",
        1,
        &feats("fz_noview", text_keys(&["k1"]), None),
    ));
    let hist = |pairs: Vec<(Value, i64)>| {
        Request::History(HistoryRequest {
            view: V_LIFE.into(),
            pairs,
        })
    };
    s.push(seed(
        "HISTORY past",
        1,
        &hist(vec![
            (Value::Text("k1".into()), now - 1_000_000),
            (Value::Text("k2".into()), now - 5_000_000),
        ]),
    ));
    s.push(seed(
        "HISTORY future",
        1,
        &hist(vec![(Value::Text("k1".into()), now + 3_600_000_000)]),
    ));
    s.push(seed("HISTORY empty", 1, &hist(vec![])));

    // Zero-length payloads of every opcode and unknown opcodes (well framed).
    for op in [1u16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 11, 12, 0xff, 0xffff] {
        s.push(raw_seed("zero-length payload", "raw", 1, op, &[]));
    }
    s.push(raw_seed("unknown opcode", "raw", 1, 0x42, b"abc"));
    s.extend(vector_value_seeds());

    s.extend(vector_seeds());
    s
}

/// Every frame of docs/protocol-vectors.json, both directions.
pub fn vector_seeds() -> Vec<Seed> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol-vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let vectors: serde_json::Value = serde_json::from_str(&text).expect("vectors parse");
    vectors
        .as_array()
        .expect("a JSON list")
        .iter()
        .map(|v| Seed {
            name: format!("vector {}", v["name"].as_str().expect("name")),
            kind: "vector",
            frame: unhex(v["hex"].as_str().expect("hex")),
            weight: 1,
        })
        .collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Weighted choice of a seed index.
pub struct Picker {
    cumulative: Vec<u64>,
}

impl Picker {
    pub fn new(seeds: &[Seed]) -> Picker {
        let mut acc = 0;
        Picker {
            cumulative: seeds
                .iter()
                .map(|s| {
                    acc += u64::from(s.weight);
                    acc
                })
                .collect(),
        }
    }

    pub fn pick(&self, rng: &mut StdRng) -> usize {
        let total = *self.cumulative.last().expect("non-empty corpus");
        let x = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// The known server bug `frame` (decoded on its own) would trigger, if any. Suppressed by
/// default (docs/FUZZING.md, *Status on main*); `TARN_FUZZ_SUPPRESS=0` sends them.
///
/// - A GET of a TIMESTAMP-keyed table with a BIGINT key (integer µs, an allowed coercion) is
///   answered inline by the shard owning the BIGINT key bytes, not the TIMESTAMP ones: a debug
///   build panics the shard (`GET routed to a non-owner`), a release build answers "not found"
///   for an existing row.
pub fn known_bug(frame: &[u8]) -> Option<&'static str> {
    let h = tarn_net::peek_header(frame)?;
    if frame.len() != h.frame_len() {
        return None;
    }
    match tarn_net::decode_request(&h, &frame[HEADER_LEN..]) {
        Ok(Request::Get(k))
            if k.table == "fz_tkey" && k.keys.iter().any(|v| matches!(v, Value::Int(_))) =>
        {
            Some("inline GET of a TIMESTAMP key given as BIGINT")
        }
        _ => None,
    }
}

/// True when `frame`, decoded on its own, would touch a protected object: a statement that
/// drops one of them, or a write to the canary's or the big rows' table. Such frames are
/// never sent (mutations could in principle produce one; none has been seen).
pub fn dangerous(frame: &[u8]) -> bool {
    let Some(h) = tarn_net::peek_header(frame) else {
        return false;
    };
    if frame.len() != h.frame_len() {
        return false;
    }
    match tarn_net::decode_request(&h, &frame[HEADER_LEN..]) {
        Ok(Request::Sql(sql)) => {
            let l = sql.to_lowercase();
            l.contains("drop") && PROTECTED.iter().any(|p| l.contains(p))
        }
        Ok(Request::Upsert(u)) => u.table == T_CANARY || u.table == T_BIG,
        Ok(Request::Delete(k)) => k.table == T_CANARY || k.table == T_BIG,
        _ => false,
    }
}

// -------------------------------------------------------------------------------------------
// Mutations

pub fn set_request_id(frame: &mut [u8], id: u64) {
    if frame.len() >= HEADER_LEN {
        frame[8..16].copy_from_slice(&id.to_le_bytes());
    }
}

fn set_payload_len(frame: &mut [u8], len: u32) {
    if frame.len() >= 4 {
        frame[0..4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Rewrites `payload_len` to the bytes actually present (keeps the frame well framed).
fn fix_len(frame: &mut [u8]) {
    if frame.len() >= HEADER_LEN {
        let n = (frame.len() - HEADER_LEN) as u32;
        set_payload_len(frame, n);
    }
}

/// Offsets in the payload of u32 values that look like a length or a count (they fit in the
/// rest of the payload): real `str`/`bytes` lengths and counts, and a few false positives.
fn length_fields(frame: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    if frame.len() < HEADER_LEN + 4 {
        return out;
    }
    for p in HEADER_LEN..=frame.len() - 4 {
        let v = u32::from_le_bytes(frame[p..p + 4].try_into().unwrap()) as usize;
        if v <= frame.len() - p - 4 && (v > 0 || out.len() < 8) {
            out.push(p);
        }
    }
    out
}

/// Applies one random mutation to `frame`; returns its name. `other` is another frame for
/// splicing, `prev_id` the id of the previous frame on the connection (duplicate ids).
pub fn mutate(rng: &mut StdRng, frame: &mut Vec<u8>, other: &[u8], prev_id: u64) -> &'static str {
    let len = frame.len();
    let pos = |rng: &mut StdRng, n: usize| {
        if n == 0 {
            0
        } else if n > HEADER_LEN && rng.random_bool(0.8) {
            rng.random_range(HEADER_LEN..n)
        } else {
            rng.random_range(0..n)
        }
    };
    match rng.random_range(0..16) {
        0 if len > 0 => {
            let p = pos(rng, len);
            frame[p] ^= 1 << rng.random_range(0..8);
            "bit flip"
        }
        1 if len > 0 => {
            let p = pos(rng, len);
            frame[p] = *[0u8, 1, 0x7f, 0x80, 0xff]
                .get(rng.random_range(0..6))
                .unwrap_or(&rng.random());
            "byte set"
        }
        2 => {
            let p = pos(rng, len + 1).min(len);
            let n = rng.random_range(1..=16);
            let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            frame.splice(p..p, junk);
            if rng.random_bool(0.7) {
                fix_len(frame);
            }
            "byte insert"
        }
        3 if len > 0 => {
            let p = pos(rng, len);
            let n = rng.random_range(1..=16).min(len - p);
            frame.drain(p..p + n);
            if rng.random_bool(0.7) {
                fix_len(frame);
            }
            "byte delete"
        }
        4 if len > 1 => {
            let p = rng.random_range(1..len);
            frame.truncate(p);
            if rng.random_bool(0.5) {
                fix_len(frame);
            }
            "truncate"
        }
        5 => {
            let cur = len.saturating_sub(HEADER_LEN) as u32;
            let v = match rng.random_range(0..9) {
                0 => 0,
                1 => cur.saturating_sub(1),
                2 => cur + 1,
                3 => u32::MAX,
                4 => MAX_FRAME_PAYLOAD_BYTES,
                5 => MAX_FRAME_PAYLOAD_BYTES + 1,
                6 => rng.random(),
                7 => rng.random_range(0..=65_536),
                _ => cur + rng.random_range(2..=64),
            };
            set_payload_len(frame, v);
            "payload_len edit"
        }
        6 | 7 => {
            let fields = length_fields(frame);
            if fields.is_empty() {
                return "payload_len edit (no inner field)";
            }
            let p = fields[rng.random_range(0..fields.len())];
            let cur = u32::from_le_bytes(frame[p..p + 4].try_into().unwrap());
            let rest = (frame.len() - p - 4) as u32;
            let v = match rng.random_range(0..12) {
                0 => 0,
                1 => cur.wrapping_sub(1),
                2 => cur + 1,
                3 => u32::MAX,
                4 => 0x8000_0000,
                5 => MAX_BATCH_ROWS,
                6 => MAX_BATCH_ROWS + 1,
                7 => MAX_COLUMNS + 1,
                8 => MAX_SQL_BYTES + 1,
                9 => rest,
                10 => rest + 1,
                _ => rng.random(),
            };
            frame[p..p + 4].copy_from_slice(&v.to_le_bytes());
            "inner length edit"
        }
        8 if len >= HEADER_LEN => {
            let op: u16 = match rng.random_range(0..5) {
                0..=2 => rng.random_range(1..=10),
                3 => *[0u16, 11, 0xff, 0x100, 0xffff]
                    .get(rng.random_range(0..5))
                    .unwrap(),
                _ => rng.random(),
            };
            frame[4..6].copy_from_slice(&op.to_le_bytes());
            "opcode swap"
        }
        9 if len >= HEADER_LEN => {
            let f: u16 = match rng.random_range(0..4) {
                0 => 1,
                1 => 2,
                2 => 0x8000,
                _ => rng.random(),
            };
            frame[6..8].copy_from_slice(&f.to_le_bytes());
            "flags bits"
        }
        10 if len >= HEADER_LEN => {
            let id = match rng.random_range(0..3) {
                0 => 0,
                1 => prev_id,
                _ => u64::MAX,
            };
            set_request_id(frame, id);
            "request id 0/dup/max"
        }
        11 if !other.is_empty() && len > 0 => {
            let a = rng.random_range(0..=len);
            let b = rng.random_range(0..other.len());
            frame.truncate(a);
            frame.extend_from_slice(&other[b..]);
            if rng.random_bool(0.7) {
                fix_len(frame);
            }
            "splice"
        }
        12 if len >= HEADER_LEN => {
            frame.truncate(HEADER_LEN);
            set_payload_len(frame, 0);
            "zero-length payload"
        }
        13 if len > HEADER_LEN => {
            // Invalid UTF-8 inside the payload (lands in a str field often enough).
            let p = rng.random_range(HEADER_LEN..len);
            frame[p] = *[0xc0u8, 0xff, 0xed, 0x80]
                .get(rng.random_range(0..4))
                .unwrap();
            "invalid utf-8"
        }
        14 if len > HEADER_LEN => {
            // A value tag / flag / mode byte set to a small out-of-range value.
            let p = rng.random_range(HEADER_LEN..len);
            frame[p] = rng.random_range(0..=9);
            "tag byte"
        }
        15 => {
            let copy = frame.clone();
            frame.extend_from_slice(&copy);
            "frame doubled"
        }
        _ => {
            if len > 0 {
                let p = pos(rng, len);
                frame[p] = rng.random();
            }
            "byte set"
        }
    }
}

// -------------------------------------------------------------------------------------------
// Server model

/// What the server must answer to one frame, as the model of its framing predicts.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// The first HELLO: a HelloReply with version 1, this shard count and the limits.
    HelloOk,
    /// A decoded PING: the same bytes back (or TOO_MANY_IN_FLIGHT).
    Pong(Vec<u8>),
    /// A decoded GET/FEATURES/HISTORY of n keys: a reply of exactly n rows, or an error.
    Rows(Opcode, usize),
    /// Like `Rows` (`Plain` for SQL), for a request that replays a shard's retained log
    /// (HISTORY, FEATURES with as_of, CREATE MATERIALIZED VIEW and its back-fill): expensive,
    /// so a connection keeps few outstanding.
    Scan(Opcode, usize),
    /// Another decoded request: its own opcode, or an error.
    Plain(Opcode),
    /// Exactly this error (decode errors, closing errors).
    Exact(ErrorCode),
    /// This error, or TOO_MANY_IN_FLIGHT (checked before dispatch): a second HELLO.
    ExactOrBusy(ErrorCode),
}

impl Expect {
    fn costly(&self) -> bool {
        matches!(self, Expect::Scan(..))
    }
}

/// Error codes a decoded request may legitimately get. Not: decode or connection-level codes,
/// UNKNOWN (never sent), INTERNAL (a bug), STORAGE (disk failure), SHUTTING_DOWN (not during
/// the run).
fn request_error_ok(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::Unknown
            | ErrorCode::UnknownOpcode
            | ErrorCode::FrameTooLarge
            | ErrorCode::UnsupportedVersion
            | ErrorCode::AuthFailed
            | ErrorCode::HandshakeRequired
            | ErrorCode::TooManyConnections
            | ErrorCode::Internal
            | ErrorCode::Storage
            | ErrorCode::ShuttingDown
    )
}

fn accepts(e: &Expect, r: &Response, shards: u32) -> bool {
    if let Expect::Scan(op, n) = e {
        let inner = if *op == Opcode::Sql {
            Expect::Plain(Opcode::Sql)
        } else {
            Expect::Rows(*op, *n)
        };
        return accepts(&inner, r, shards);
    }
    match (e, r) {
        (Expect::Exact(c), Response::Error(x)) => x.code == *c,
        (Expect::ExactOrBusy(c), Response::Error(x)) => {
            x.code == *c || x.code == ErrorCode::TooManyInFlight
        }
        (Expect::Exact(_) | Expect::ExactOrBusy(_), _) => false,
        (Expect::HelloOk, Response::Hello(h)) => {
            h.version == 1
                && h.shard_count == shards
                && h.max_frame_payload_bytes == MAX_FRAME_PAYLOAD_BYTES
                && h.max_batch_rows == MAX_BATCH_ROWS
                && h.max_in_flight == MAX_IN_FLIGHT_PER_CONNECTION
        }
        (Expect::HelloOk, _) => false,
        (Expect::Pong(d), Response::Pong(x)) => d == x,
        (Expect::Pong(_), Response::Error(x)) => x.code == ErrorCode::TooManyInFlight,
        (_, Response::Error(x)) => request_error_ok(x.code),
        (Expect::Rows(Opcode::Get, n), Response::Get(g)) => g.rows.len() == *n,
        (Expect::Rows(Opcode::Features, n), Response::Features(f)) => f.rows.len() == *n,
        (Expect::Rows(Opcode::History, n), Response::History(h)) => h.rows.len() == *n,
        (Expect::Plain(Opcode::Stats), Response::Stats(s)) => s.shards.len() == shards as usize,
        (Expect::Plain(op), r) => r.opcode() == *op,
        _ => false,
    }
}

/// Bipartite matching of replies to the expectations they satisfy (`ok[reply][expect]`),
/// kept incrementally: `owner[expect]` is the reply matched to it. Adds reply `r` with one
/// augmenting path; false if it cannot be matched without unmatching an earlier reply (then no
/// assignment of all replies exists). Polynomial, unlike a backtracking search, which explodes
/// on many requests sharing an id.
fn augment(r: usize, ok: &[Vec<bool>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for e in 0..owner.len() {
        if ok[r][e] && !seen[e] {
            seen[e] = true;
            if owner[e].is_none_or(|other| augment(other, ok, owner, seen)) {
                owner[e] = Some(r);
                return true;
            }
        }
    }
    false
}

/// The STORAGE error a log scan (HISTORY, FEATURES as_of, a view's back-fill) gets when a checkpoint removes a
/// segment it has listed but not opened yet (known server bug, docs/FUZZING.md).
fn is_scan_enoent(r: &Response) -> bool {
    matches!(r, Response::Error(x) if x.code == ErrorCode::Storage
        && x.message.contains("opening log segment for reading"))
}

fn tolerated(tolerate: bool, e: &Expect, r: &Response) -> bool {
    tolerate && e.costly() && is_scan_enoent(r)
}

/// A short description of a reply for messages.
pub fn describe(r: &Response) -> String {
    match r {
        Response::Error(e) => format!("ERROR {e}"),
        Response::Pong(d) => format!("PONG ({} bytes)", d.len()),
        Response::Get(g) => format!("GET reply ({} rows)", g.rows.len()),
        Response::Features(f) => format!("FEATURES reply ({} rows)", f.rows.len()),
        Response::History(h) => format!("HISTORY reply ({} rows)", h.rows.len()),
        other => format!("{} reply", other.opcode()),
    }
}

/// The category a reply is counted under in the summary.
pub fn reply_category(r: &Response) -> String {
    match r {
        Response::Error(e) => format!("error {}", e.code),
        other => format!("ok {}", other.opcode()),
    }
}

#[derive(Default)]
struct Slot {
    expects: Vec<Expect>,
    /// Replies received so far (descriptions) and which expectations each satisfies.
    got: Vec<String>,
    ok: Vec<Vec<bool>>,
    owner: Vec<Option<usize>>,
}

/// A model of the server's side of one connection, fed with every byte the client sends (in
/// order): it frames the stream exactly as `src/server/conn.rs` does (header check as soon as
/// 16 bytes are there, then the whole frame), decodes each frame with tarn-net, follows the
/// handshake and the closing errors, and so knows which request ids the server must answer,
/// with what kind of reply, and whether it must close the connection.
pub struct Shadow {
    shards: u32,
    buf: Vec<u8>,
    start: usize,
    handshaken: bool,
    /// The server answers the frames before this point and then closes: it reads no more.
    pub closing: Option<ErrorCode>,
    /// Request id of the frame that gets the closing error.
    closing_id: u64,
    slots: HashMap<u64, Slot>,
    /// Requests the server must still answer.
    pub open: usize,
    /// HISTORY requests outstanding (each replays a shard's log; the fuzzer keeps few).
    pub costly: usize,
    /// The server's read buffer for this connection: it grows to the largest frame announced
    /// (within the limit) and never shrinks.
    pub server_buf: usize,
    /// Frames the server will have decoded, by `decoded OPCODE` or `decode error CODE`.
    pub seen: BTreeMap<String, u64>,
    /// Acknowledged rows (UPSERT) and events (INGEST): stored data the RSS bound allows for.
    pub acked_rows: u64,
    pub acked_events: u64,
    /// Accept the known STORAGE error of a log scan (see [`is_scan_enoent`]).
    pub tolerate_scan_enoent: bool,
    /// Known server bugs met and tolerated, by name.
    pub known: BTreeMap<String, u64>,
}

impl Shadow {
    pub fn new(shards: u32) -> Shadow {
        Shadow {
            shards,
            buf: Vec::new(),
            start: 0,
            handshaken: false,
            closing: None,
            closing_id: 0,
            slots: HashMap::new(),
            open: 0,
            costly: 0,
            server_buf: tarn::server::limits::READ_CHUNK_BYTES,
            seen: BTreeMap::new(),
            acked_rows: 0,
            acked_events: 0,
            tolerate_scan_enoent: false,
            known: BTreeMap::new(),
        }
    }

    /// Bytes of an incomplete frame the server is still waiting for (0 if none started).
    pub fn missing(&self) -> usize {
        let avail = &self.buf[self.start..];
        match tarn_net::peek_header(avail) {
            None if avail.is_empty() => 0,
            None => HEADER_LEN - avail.len(),
            Some(h) => h.frame_len().saturating_sub(avail.len()),
        }
    }

    fn expect(&mut self, id: u64, e: Expect) {
        if e.costly() {
            self.costly += 1;
        }
        let slot = self.slots.entry(id).or_default();
        slot.expects.push(e);
        slot.owner.push(None);
        // A reply received before this request was sent cannot be its answer.
        for row in &mut slot.ok {
            row.push(false);
        }
        self.open += 1;
    }

    fn bump(&mut self, key: String) {
        *self.seen.entry(key).or_insert(0) += 1;
    }

    /// Feeds bytes the client is about to send.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closing.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let avail = &self.buf[self.start..];
            let Some(h) = tarn_net::peek_header(avail) else {
                break;
            };
            if let Err(e) = h.check(MAX_FRAME_PAYLOAD_BYTES) {
                self.bump(format!("decode error {}", e.code));
                self.expect(h.request_id, Expect::Exact(e.code));
                self.closing = Some(e.code);
                self.closing_id = h.request_id;
                break;
            }
            if !self.handshaken && h.payload_len > MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES {
                // An unauthenticated peer gets no large read buffer: refused and closed.
                self.bump("decode error FRAME_TOO_LARGE (before HELLO)".into());
                self.expect(h.request_id, Expect::Exact(ErrorCode::FrameTooLarge));
                self.closing = Some(ErrorCode::FrameTooLarge);
                self.closing_id = h.request_id;
                break;
            }
            self.server_buf = self.server_buf.max(h.frame_len());
            let n = h.frame_len();
            if avail.len() < n {
                break;
            }
            let (e, close) = self.judge(&h, n);
            self.expect(h.request_id, e);
            self.start += n;
            if let Some(code) = close {
                self.closing = Some(code);
                self.closing_id = h.request_id;
                break;
            }
        }
        if self.closing.is_some() {
            self.buf = Vec::new();
            self.start = 0;
        } else if self.start > 0 && (self.start == self.buf.len() || self.start > 1 << 20) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    fn judge(&mut self, h: &FrameHeader, n: usize) -> (Expect, Option<ErrorCode>) {
        if h.request_id == tarn_net::CONNECTION_REQUEST_ID {
            // Refused unread: its reply could not be told from a connection-level error.
            // Before the handshake every refusal closes.
            self.bump("request id 0".into());
            let close = (!self.handshaken).then_some(ErrorCode::BadRequestId);
            return (Expect::Exact(ErrorCode::BadRequestId), close);
        }
        let payload = &self.buf[self.start + HEADER_LEN..self.start + n];
        let req = match tarn_net::decode_request(h, payload) {
            Ok(r) => r,
            Err(e) => {
                self.bump(format!("decode error {}", e.code));
                // A first frame that does not decode: not a Tarn client, closed.
                let close = (!self.handshaken).then_some(e.code);
                return (Expect::Exact(e.code), close);
            }
        };
        self.bump(format!("decoded {}", req.opcode()));
        if !self.handshaken {
            return match req {
                Request::Hello(hello) => {
                    if tarn_net::negotiate_version(hello.min_version, hello.max_version).is_none() {
                        (
                            Expect::Exact(ErrorCode::UnsupportedVersion),
                            Some(ErrorCode::UnsupportedVersion),
                        )
                    } else {
                        self.handshaken = true;
                        (Expect::HelloOk, None)
                    }
                }
                _ => (
                    Expect::Exact(ErrorCode::HandshakeRequired),
                    Some(ErrorCode::HandshakeRequired),
                ),
            };
        }
        let e = match req {
            Request::Hello(_) => Expect::ExactOrBusy(ErrorCode::Unsupported),
            Request::Ping(d) => Expect::Pong(d),
            Request::Get(k) => Expect::Rows(Opcode::Get, k.keys.len()),
            Request::Features(f) if f.as_of_us.is_some() => {
                Expect::Scan(Opcode::Features, f.keys.len())
            }
            Request::Features(f) => Expect::Rows(Opcode::Features, f.keys.len()),
            Request::History(q) => Expect::Scan(Opcode::History, q.pairs.len()),
            Request::Sql(t) if t.to_lowercase().contains("materialized view") => {
                Expect::Scan(Opcode::Sql, 0)
            }
            other => Expect::Plain(other.opcode()),
        };
        (e, None)
    }

    /// Checks one reply against the outstanding requests. `Err` describes a violation.
    /// `Ok(true)` for a connection-level error (request id 0) that was not a reply.
    pub fn answer(&mut self, id: u64, r: Response) -> Result<bool, String> {
        let shards = self.shards;
        let tol = self.tolerate_scan_enoent;
        if tol && is_scan_enoent(&r) {
            *self
                .known
                .entry("log scan lost a segment (STORAGE)".into())
                .or_insert(0) += 1;
        }
        if id == 0 {
            // A connection-level error (TOO_MANY_CONNECTIONS at accept, SHUTTING_DOWN, a
            // timeout: TIMEOUT, or HANDSHAKE_REQUIRED when no HELLO completed in time) is not
            // the answer to a request, even if the fuzzer sent requests with id 0.
            if let Response::Error(e) = &r {
                let connection_level = match e.code {
                    ErrorCode::TooManyConnections | ErrorCode::ShuttingDown => true,
                    // With id 0 only the handshake timeout sends it (a request with id 0 gets
                    // BAD_REQUEST_ID): it may race the HELLO's last bytes.
                    ErrorCode::Timeout | ErrorCode::HandshakeRequired => true,
                    _ => false,
                };
                if connection_level {
                    return Ok(true);
                }
            }
        }
        if let Some(slot) = self.slots.get_mut(&id) {
            if slot.expects.len() == 1 {
                let e = slot.expects.pop().expect("one");
                if !self.accepts(&e, &r) {
                    return Err(format!(
                        "reply to request id {id} is {}, expected {e:?}",
                        describe(&r)
                    ));
                }
                self.slots.remove(&id);
                self.settle(&e, &r);
                return Ok(false);
            }
            // Several outstanding requests share this id: every reply so far must fit a
            // distinct one of them.
            slot.got.push(describe(&r));
            slot.ok.push(
                slot.expects
                    .iter()
                    .map(|e| tolerated(tol, e, &r) || accepts(e, &r, shards))
                    .collect(),
            );
            let r_idx = slot.ok.len() - 1;
            // Fast path: a satisfied expectation no earlier reply holds.
            let free =
                (0..slot.owner.len()).find(|&e| slot.ok[r_idx][e] && slot.owner[e].is_none());
            let matched = match free {
                Some(e) => {
                    slot.owner[e] = Some(r_idx);
                    true
                }
                None => {
                    let mut seen = vec![false; slot.expects.len()];
                    augment(r_idx, &slot.ok, &mut slot.owner, &mut seen)
                }
            };
            if !matched {
                return Err(format!(
                    "replies to request id {id} ({}) do not match the {} requests sent with that id: {:?}",
                    slot.got.join(", "),
                    slot.expects.len(),
                    slot.expects
                ));
            }
            let costly_slot = slot.expects.iter().any(Expect::costly);
            if slot.got.len() == slot.expects.len() {
                self.slots.remove(&id);
            }
            self.open -= 1;
            if costly_slot && matches!(r, Response::History(_) | Response::Error(_)) {
                self.costly = self.costly.saturating_sub(1);
            }
            match &r {
                Response::Upsert(u) => self.acked_rows += u.rows_applied,
                Response::Ingest(i) => self.acked_events += i.events,
                _ => {}
            }
            return Ok(false);
        }
        Err(format!(
            "reply {} echoes request id {id}, which no outstanding request carries",
            describe(&r)
        ))
    }

    fn accepts(&self, e: &Expect, r: &Response) -> bool {
        tolerated(self.tolerate_scan_enoent, e, r) || accepts(e, r, self.shards)
    }

    fn settle(&mut self, e: &Expect, r: &Response) {
        self.open -= 1;
        if e.costly() {
            self.costly = self.costly.saturating_sub(1);
        }
        match r {
            Response::Upsert(u) => self.acked_rows += u.rows_applied,
            Response::Ingest(i) => self.acked_events += i.events,
            _ => {}
        }
    }

    /// The outstanding requests, for messages.
    pub fn outstanding(&self) -> String {
        let mut v: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.expects.len() > s.got.len())
            .take(8)
            .map(|(id, s)| format!("{id}: {:?}", s.expects))
            .collect();
        v.sort();
        v.join("; ")
    }

    /// True while the closing error has not been received.
    pub fn closing_unanswered(&self) -> bool {
        self.closing.is_some()
            && self.slots.get(&self.closing_id).is_some_and(|s| {
                s.expects
                    .iter()
                    .any(|e| matches!(e, Expect::Exact(c) if Some(*c) == self.closing))
            })
    }

    /// Forgets every expectation (the connection was rejected or reset).
    pub fn forget(&mut self) {
        self.slots.clear();
        self.open = 0;
        self.costly = 0;
    }
}

// -------------------------------------------------------------------------------------------
// Non-blocking connection

/// How a connection ended, from the client's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    Open,
    /// The server closed (FIN).
    Eof,
    /// The server reset the connection (RST), or a write failed.
    Reset,
}

/// A non-blocking TCP connection: bytes queued by the caller are written as the socket takes
/// them; reply frames are split and decoded as they arrive.
pub struct Wire {
    pub sock: TcpStream,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    pub peer: PeerState,
    pub written: u64,
    pub write_closed: bool,
}

/// One reply frame from the server.
pub struct Reply {
    pub header: FrameHeader,
    pub response: Response,
    pub frame_len: usize,
}

impl Wire {
    pub fn connect(addr: SocketAddr) -> io::Result<Wire> {
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        sock.set_nodelay(true)?;
        sock.set_nonblocking(true)?;
        Ok(Wire {
            sock,
            out: Vec::new(),
            out_pos: 0,
            inbuf: Vec::new(),
            peer: PeerState::Open,
            written: 0,
            write_closed: false,
        })
    }

    pub fn queue(&mut self, bytes: &[u8]) {
        if self.out_pos > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.out.extend_from_slice(bytes);
    }

    /// Bytes queued but not written yet.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Waits up to `wait` for the socket, writes what it takes (at most `max_write` bytes),
    /// reads what is there if `read`. Returns the complete reply frames received, or a
    /// description of a frame that does not parse.
    pub fn step(
        &mut self,
        wait: Duration,
        read: bool,
        max_write: usize,
    ) -> Result<Vec<Reply>, String> {
        let want_write = self.unsent() > 0 && self.peer == PeerState::Open;
        let mut events = 0;
        if read {
            events |= libc::POLLIN;
        }
        if want_write {
            events |= libc::POLLOUT;
        }
        if events != 0 {
            let mut pfd = libc::pollfd {
                fd: self.sock.as_raw_fd(),
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            unsafe { libc::poll(&mut pfd, 1, wait.as_millis().min(i32::MAX as u128) as i32) };
        } else {
            std::thread::sleep(wait);
        }
        if want_write {
            let end = self.out.len().min(self.out_pos + max_write);
            match self.sock.write(&self.out[self.out_pos..end]) {
                Ok(n) => {
                    self.out_pos += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.peer = PeerState::Reset,
            }
        }
        let mut replies = Vec::new();
        if read {
            let mut chunk = [0u8; 64 * 1024];
            for _ in 0..64 {
                match self.sock.read(&mut chunk) {
                    Ok(0) => {
                        if self.peer == PeerState::Open {
                            self.peer = PeerState::Eof;
                        }
                        break;
                    }
                    Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.peer = PeerState::Reset;
                        break;
                    }
                }
            }
            self.split(&mut replies)?;
        }
        Ok(replies)
    }

    fn split(&mut self, replies: &mut Vec<Reply>) -> Result<(), String> {
        let mut at = 0;
        while let Some(h) = tarn_net::peek_header(&self.inbuf[at..]) {
            if h.payload_len > MAX_FRAME_PAYLOAD_BYTES {
                return Err(format!(
                    "server frame header announces {} payload bytes (over the limit): {}",
                    h.payload_len,
                    hex(&self.inbuf[at..at + HEADER_LEN])
                ));
            }
            let n = h.frame_len();
            if self.inbuf.len() - at < n {
                break;
            }
            let payload = &self.inbuf[at + HEADER_LEN..at + n];
            match tarn_net::decode_response(&h, payload) {
                Ok(response) => replies.push(Reply {
                    header: h,
                    response,
                    frame_len: n,
                }),
                Err(e) => {
                    return Err(format!(
                        "server frame does not decode ({e}): {}",
                        hex(&self.inbuf[at..at + n.min(512)])
                    ))
                }
            }
            at += n;
        }
        self.inbuf.drain(..at);
        Ok(())
    }

    /// Bytes of a partial reply frame received.
    pub fn partial_reply(&self) -> usize {
        self.inbuf.len()
    }

    /// Half-closes (FIN) once everything queued is written.
    pub fn close_write(&mut self) {
        if !self.write_closed {
            let _ = self.sock.shutdown(Shutdown::Write);
            self.write_closed = true;
        }
    }

    /// Closes with a reset (SO_LINGER 0): the server sees ECONNRESET, nothing is flushed.
    pub fn reset(self) {
        set_linger_zero(&self.sock);
        drop(self.sock);
    }
}

// -------------------------------------------------------------------------------------------
// Process helpers

/// SO_LINGER {on, 0}: closing the socket sends RST instead of FIN.
pub fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a valid fd and a linger struct of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Raises this process's soft RLIMIT_NOFILE to `want` (capped by the hard limit) if it is
/// lower; children (tarnd) inherit it. Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        }
    }
    r.rlim_cur
}

/// VmRSS of process `pid` in bytes (None once it is gone).
pub fn vm_rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// True while process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// SplitMix64: derives independent seeds from one.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A bounded ring of the last frames sent on a connection, for failure reports.
#[derive(Default)]
pub struct Recent {
    frames: VecDeque<Vec<u8>>,
}

impl Recent {
    pub fn push(&mut self, f: &[u8]) {
        if self.frames.len() == 6 {
            self.frames.pop_front();
        }
        self.frames.push_back(f[..f.len().min(256)].to_vec());
    }

    pub fn dump(&self) -> String {
        self.frames
            .iter()
            .map(|f| format!("    {}", hex(f)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

pub fn elapsed_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}
