//! One timestamp rule on every input path (docs/SQL.md, "Timestamps"): the same strings fed
//! through JSON INGEST, `tarn upsert` (the CLI converts rows itself; the Rust client takes typed
//! values only, so the CLI covers client-side parsing) and a SQL `TIMESTAMP '…'` literal give
//! the value `tarn_core::timestamp::parse_rfc3339_us` gives, or all fail with its reason.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use tarn_net::{IngestBody, IngestRequest};

/// Strings covering every clause of the rule: offsets, separators, case, fraction digits, leap
/// seconds, the year range, and malformed text.
const CASES: &[&str] = &[
    "2026-11-26T01:02:03Z",
    "2026-11-26t01:02:03z",
    "2026-11-26 01:02:03Z",
    "2026-11-26T01:02:03+05:30",
    "2026-11-26T01:02:03-08:00",
    "2026-11-26T01:02:03-00:00",
    "2026-11-27T00:01:03+23:59",
    "2026-11-26T01:02:03.5Z",
    "2026-11-26T01:02:03.000004Z",
    "2026-11-26T01:02:03.123456000Z",
    "2026-11-26T01:02:03.1234567Z",
    "2026-11-26T01:02:03.123456789Z",
    "2026-11-26T01:02:03.0000000000Z",
    "2026-11-26T01:02:03.Z",
    "2026-11-26T01:02:03,5Z",
    "2016-12-31T23:59:60Z",
    "2016-12-31T23:59:60.5Z",
    "2017-01-01T05:29:60+05:30",
    "2016-12-30T23:59:60Z",
    "2026-11-26T12:00:60Z",
    "1969-12-31T23:59:59.999999Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-01:00",
    "10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-26T24:00:00Z",
    "2026-11-26T01:02:03+24:00",
    "2026-11-26T01:02:03+0530",
    "2026-11-26T01:02:03+05",
    "2026-11-26T01:02:03",
    "2026-11-26T01:02Z",
    "2026-11-26",
    " 2026-11-26T01:02:03Z",
    "2026-11-26T01:02:03Z ",
    "",
    "garbage",
    "1795654923000000",
];

/// What a path made of one input: the value, or the error message.
type Outcome = Result<i64, String>;

fn setup(c: &mut Conn) {
    for sql in [
        "CREATE TABLE t (k TEXT PRIMARY KEY, v TIMESTAMP)",
        "CREATE STREAM s (ts TIMESTAMP, k TEXT, v TIMESTAMP) WITH (event_time = 'ts', partition = 'k')",
        // The last v per key: what INGEST parsed.
        "CREATE MATERIALIZED VIEW by_k WITH (window = 'lifetime') AS \
         SELECT k, last(v) AS v FROM s GROUP BY k",
        // Keyed by a TIMESTAMP: a read by key echoes the parsed SQL literal.
        "CREATE MATERIALIZED VIEW by_v WITH (window = 'lifetime') AS \
         SELECT v, count(*) AS n FROM s GROUP BY v",
    ] {
        c.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn timestamp_of(v: &Value) -> i64 {
    match v {
        Value::Timestamp(t) => *t,
        other => panic!("expected a TIMESTAMP, got {other:?}"),
    }
}

/// INGEST of one JSON event whose `v` is `json_v`, then a read of what the view holds.
fn via_ingest(c: &mut Conn, i: usize, json_v: &str) -> Outcome {
    let data = format!("{{\"ts\": 1000000, \"k\": \"k{i}\", \"v\": {json_v}}}");
    let req = Request::Ingest(IngestRequest {
        stream: "s".into(),
        producer: None,
        body: IngestBody::Json {
            layout: 0,
            data: data.into_bytes(),
        },
    });
    match c.call(&req) {
        Ok(Response::Ingest(_)) => {}
        Ok(other) => panic!("INGEST answered {other:?}"),
        Err(ClientError::Server(e)) => {
            // Bad text is BAD_EVENT; a JSON number that is not an integer, TYPE_MISMATCH.
            assert!(
                matches!(e.code, ErrorCode::BadEvent | ErrorCode::TypeMismatch),
                "{json_v}: {e:?}"
            );
            assert_eq!((e.row, e.column.as_deref()), (Some(0), Some("v")), "{e:?}");
            return Err(e.message);
        }
        Err(e) => panic!("INGEST: {e}"),
    }
    let r = c
        .sql(&format!("SELECT v FROM by_k WHERE k = 'k{i}'"))
        .unwrap();
    Ok(timestamp_of(&r.rows[0][0]))
}

/// A SQL read keyed by the literal `lit`: the key echoed is the parsed literal (an integer
/// literal is echoed as the BIGINT it was written as; the server reads it as that many µs).
fn via_sql(c: &mut Conn, lit: &str) -> Outcome {
    match c.sql(&format!("SELECT v FROM by_v WHERE v = {lit}")) {
        Ok(r) => Ok(match &r.rows[0][0] {
            Value::Int(us) => *us,
            v => timestamp_of(v),
        }),
        Err(ClientError::Server(e)) => Err(format!("{:?}: {}", e.code, e.message)),
        Err(e) => panic!("SQL: {e}"),
    }
}

/// `tarn upsert t --keep-going --json` of one row per value (JSON text of `v`), then a GET of
/// each row: the value stored, or the CLI's rejection reason.
fn via_cli(server: &TarnServer, c: &mut Conn, json_vs: &[String]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.jsonl");
    let rows: String = json_vs
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{{\"k\": \"k{i}\", \"v\": {v}}}\n"))
        .collect();
    std::fs::write(&file, rows).unwrap();
    let mut child = Command::new(tarn_bin())
        .args(["--addr", &server.addr_string(), "--json", "upsert", "t"])
        .arg("-f")
        .arg(&file)
        .arg("--keep-going")
        .env_remove("TARN_ADDR")
        .env_remove("TARN_TOKEN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .expect("spawn tarn");
    wait_with_deadline(&mut child, Duration::from_secs(60)).expect("tarn upsert finishes");
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("tarn --json upsert: {e}: {out}"));
    let mut reasons = std::collections::HashMap::new();
    for r in summary["rejections"].as_array().expect("rejections") {
        let line = r["line"].as_u64().unwrap() as usize;
        reasons.insert(line - 1, r["reason"].as_str().unwrap().to_string());
    }
    (0..json_vs.len())
        .map(|i| match reasons.remove(&i) {
            Some(reason) => Err(reason),
            None => {
                let r = c.get("t", vec![Value::Text(format!("k{i}"))]).unwrap();
                let row = r.rows[0].as_ref().expect("upserted row");
                Ok(timestamp_of(&row[1]))
            }
        })
        .collect()
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn every_path_reads_timestamp_text_by_the_same_rule() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    setup(&mut c);
    let json: Vec<String> = CASES
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    let cli = via_cli(&server, &mut c, &json);
    let (mut accepted, mut refused) = (0, 0);
    for (i, s) in CASES.iter().enumerate() {
        let want = tarn_core::timestamp::parse_rfc3339_us(s);
        let paths = [
            ("INGEST", via_ingest(&mut c, i, &json[i])),
            ("tarn upsert", cli[i].clone()),
            (
                "SQL",
                via_sql(&mut c, &format!("TIMESTAMP {}", sql_quote(s))),
            ),
        ];
        for (path, got) in &paths {
            match (&want, got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{path} read {s:?} as {g}, the rule says {w}"),
                (Err(why), Err(msg)) => assert!(
                    msg.contains(why.as_str()),
                    "{path} refused {s:?} with `{msg}`, not the rule's reason `{why}`"
                ),
                _ => panic!("{path}: {s:?} gave {got:?}, the rule says {want:?}"),
            }
        }
        if want.is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(accepted >= 15 && refused >= 20, "{accepted} / {refused}");
}

/// Where a path takes a number, an integer is the µs count as is; a fraction is refused.
#[test]
fn integers_are_microseconds_on_every_path() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    setup(&mut c);
    let ints = [0_i64, -1, 1_795_654_923_000_004, i64::MAX, i64::MIN];
    let mut json: Vec<String> = ints.iter().map(i64::to_string).collect();
    json.extend(["1.5".to_string(), "1e6".to_string()]);
    let cli = via_cli(&server, &mut c, &json);
    for (i, v) in json.iter().enumerate() {
        let ingest = via_ingest(&mut c, 100 + i, v);
        let sql = via_sql(&mut c, v);
        match ints.get(i) {
            Some(&us) => {
                assert_eq!(ingest, Ok(us), "INGEST {v}");
                assert_eq!(cli[i], Ok(us), "tarn upsert {v}");
                assert_eq!(sql, Ok(us), "SQL {v}");
            }
            None => {
                assert!(ingest.is_err(), "INGEST accepted {v}");
                assert!(cli[i].is_err(), "tarn upsert accepted {v}");
                assert!(sql.is_err(), "SQL accepted {v} as a TIMESTAMP key");
            }
        }
    }
}
