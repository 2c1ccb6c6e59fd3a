//! The `tarn` command-line client against a real server: each command's happy path, `--json`
//! output that parses, and exit status + `error:` on stderr for failures.

mod common;

use std::path::Path;
use std::process::ExitStatus;

use common::*;
use serde_json::{json, Value as Json};

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self, what: &str) -> Out {
        assert!(
            self.status.success(),
            "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
    fn json(&self) -> Json {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", self.stdout))
    }
    fn failed(self, what: &str) -> Out {
        assert_eq!(
            self.status.code(),
            Some(1),
            "{what}: expected exit status 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.lines().any(|l| l.starts_with("error:")),
            "{what}: stderr must have an 'error:' line:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{what}: the CLI panicked:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `tarn --addr ADDR ARGS...` with a deadline.
fn tarn(addr: &str, args: &[&str]) -> Out {
    let CliOut {
        status,
        stdout,
        stderr,
    } = run_tarn(addr, args);
    Out {
        status,
        stdout,
        stderr,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn cli_happy_paths_and_json() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let a = server.addr_string();
    let dir = tempfile::tempdir().unwrap();

    // sql "..." and sql -f FILE.
    tarn(&a, &["sql", "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE, ok BOOLEAN, data BYTES, at TIMESTAMP)"])
        .ok("sql CREATE TABLE");
    let schema = write(
        dir.path(),
        "schema.sql",
        "-- two more tables\nCREATE TABLE a (k TEXT PRIMARY KEY, v BIGINT);\n/* and */ CREATE TABLE b (k BIGINT PRIMARY KEY, note TEXT);\n",
    );
    tarn(&a, &["sql", "-f", &schema]).ok("sql -f");
    let out = tarn(&a, &["sql", "SHOW TABLES"]).ok("SHOW TABLES");
    for t in ["users", "a", "b"] {
        assert!(
            out.stdout.contains(t),
            "SHOW TABLES lacks {t}:\n{}",
            out.stdout
        );
    }
    let j = tarn(&a, &["--json", "sql", "DESCRIBE users"])
        .ok("DESCRIBE --json")
        .json();
    let rows = j["rows"].as_array().expect("rows array");
    assert_eq!(rows.len(), 6, "{j}");
    assert_eq!(rows[0][0], json!("id"), "{j}");
    assert!(j["columns"].is_array(), "{j}");

    // upsert TABLE '{json}' (several rows as arguments).
    tarn(
        &a,
        &[
            "upsert",
            "users",
            r#"{"id": 1, "name": "ann", "score": 1.5, "ok": true, "data": "\\x00ff", "at": 1700000000000000}"#,
            r#"{"id": 2, "name": "bob"}"#,
        ],
    )
    .ok("upsert rows");
    // upsert TABLE -f rows.jsonl (with a blank line).
    let mut jsonl = String::new();
    for i in 10..510 {
        jsonl.push_str(&format!(
            "{{\"id\": {i}, \"name\": \"n{i}\", \"score\": {i}.25}}\n"
        ));
        if i == 100 {
            jsonl.push('\n');
        }
    }
    let rows_file = write(dir.path(), "rows.jsonl", &jsonl);
    let j = tarn(&a, &["--json", "upsert", "users", "-f", &rows_file])
        .ok("upsert -f")
        .json();
    assert_eq!(j["upserted"], json!(500), "{j}");
    assert_eq!(j["rejected"], json!(0), "{j}");

    // What the CLI wrote is what the protocol reads.
    let mut c = server.client();
    let got = c
        .get(
            "users",
            vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(10),
                Value::Int(509),
                Value::Int(510),
            ],
        )
        .unwrap();
    assert_eq!(
        got.rows,
        vec![
            Some(vec![
                Value::Int(1),
                Value::Text("ann".into()),
                Value::Double(1.5),
                Value::Bool(true),
                Value::Bytes(vec![0, 255]),
                Value::Timestamp(1_700_000_000_000_000)
            ]),
            Some(vec![
                Value::Int(2),
                Value::Text("bob".into()),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]),
            Some(vec![
                Value::Int(10),
                Value::Text("n10".into()),
                Value::Double(10.25),
                Value::Null,
                Value::Null,
                Value::Null
            ]),
            Some(vec![
                Value::Int(509),
                Value::Text("n509".into()),
                Value::Double(509.25),
                Value::Null,
                Value::Null,
                Value::Null
            ]),
            None,
        ]
    );
    assert_eq!(total_rows(&c.stats().unwrap()), 502);

    // get (table output and --json).
    let out = tarn(&a, &["get", "users", "1", "2", "999"]).ok("get");
    assert!(
        out.stdout.contains("ann") && out.stdout.contains("bob"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("not found"),
        "missing keys are listed as not found:\n{}",
        out.stdout
    );
    let j = tarn(&a, &["--json", "get", "users", "1", "999", "2"])
        .ok("get --json")
        .json();
    let arr = j.as_array().expect("get --json is an array");
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0]["id"], json!(1));
    assert_eq!(arr[0]["name"], json!("ann"));
    assert_eq!(arr[0]["score"], json!(1.5));
    assert_eq!(arr[0]["ok"], json!(true));
    assert_eq!(arr[0]["data"], json!("\\x00ff"));
    assert_eq!(arr[0]["at"], json!(1_700_000_000_000_000i64));
    assert!(arr[1].is_null(), "{j}");
    assert_eq!(arr[2]["name"], json!("bob"));
    assert!(arr[2]["score"].is_null());

    // TEXT keys.
    tarn(&a, &["upsert", "a", r#"{"k": "x y", "v": -5}"#]).ok("upsert text key");
    let j = tarn(&a, &["--json", "get", "a", "x y"])
        .ok("get text key")
        .json();
    assert_eq!(j, json!([{"k": "x y", "v": -5}]));

    // --merge keeps other columns.
    tarn(
        &a,
        &["upsert", "--merge", "users", r#"{"id": 1, "score": 9.5}"#],
    )
    .ok("upsert --merge");
    let j = tarn(&a, &["--json", "get", "users", "1"])
        .ok("get after merge")
        .json();
    assert_eq!(j[0]["name"], json!("ann"));
    assert_eq!(j[0]["score"], json!(9.5));

    // delete.
    let j = tarn(&a, &["--json", "delete", "users", "10", "11", "12345"])
        .ok("delete --json")
        .json();
    assert_eq!(j, json!({"deleted": 2}));
    tarn(&a, &["delete", "users", "13"]).ok("delete");
    assert_eq!(
        c.get(
            "users",
            vec![Value::Int(10), Value::Int(13), Value::Int(14)]
        )
        .unwrap()
        .rows
        .iter()
        .filter(|r| r.is_some())
        .count(),
        1
    );

    // stats.
    let out = tarn(&a, &["stats"]).ok("stats");
    assert!(!out.stdout.trim().is_empty());
    let j = tarn(&a, &["--json", "stats"]).ok("stats --json").json();
    let shards = j["shards"].as_array().expect("shards array");
    assert_eq!(shards.len(), 2, "{j}");
    let rows: i64 = shards
        .iter()
        .map(|s| s["rows"].as_i64().expect("rows"))
        .sum();
    assert_eq!(rows, 502 - 3 + 1, "{j}");
    assert!(
        shards
            .iter()
            .all(|s| s["cpu"].is_i64() && s["ops"].is_array()),
        "{j}"
    );

    // ping.
    tarn(&a, &["ping"]).ok("ping");
    let j = tarn(&a, &["--json", "ping", "-c", "3"])
        .ok("ping --json")
        .json();
    assert_eq!(j["shard_count"], json!(2), "{j}");
    assert_eq!(j["rtt_us"].as_array().map(|v| v.len()), Some(3), "{j}");
    assert!(j["server_version"].is_string(), "{j}");

    // --json sql with a result set and DDL.
    let j = tarn(&a, &["--json", "sql", "SHOW TABLES"])
        .ok("SHOW TABLES --json")
        .json();
    assert_eq!(j["rows"].as_array().map(|r| r.len()), Some(3), "{j}");
    let j = tarn(&a, &["--json", "sql", "DROP TABLE b"])
        .ok("DROP --json")
        .json();
    assert!(j["message"].is_string(), "{j}");
}

#[test]
fn cli_errors_exit_nonzero() {
    let server = TarnServer::start_ok(ServerOpts::shards(1));
    let a = server.addr_string();
    let dir = tempfile::tempdir().unwrap();
    tarn(
        &a,
        &["sql", "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)"],
    )
    .ok("create");

    // Unknown table, for each command that names one.
    let out = tarn(&a, &["get", "nope", "1"]).failed("get unknown table");
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    tarn(&a, &["upsert", "nope", r#"{"id": 1}"#]).failed("upsert unknown table");
    tarn(&a, &["delete", "nope", "1"]).failed("delete unknown table");
    tarn(&a, &["sql", "DESCRIBE nope"]).failed("DESCRIBE unknown table");
    tarn(&a, &["--json", "get", "nope", "1"]).failed("get --json unknown table");

    // A bad JSON line in a file: the error names its line; nothing of that batch is applied.
    let f = write(
        dir.path(),
        "bad.jsonl",
        "{\"id\": 1, \"v\": \"a\"}\n{\"id\": 2, \"v\": \"b\"\n{\"id\": 3, \"v\": \"c\"}\n",
    );
    let out = tarn(&a, &["upsert", "t", "-f", &f]).failed("bad JSON line");
    assert!(
        out.stderr.contains('2'),
        "the error should name line 2:\n{}",
        out.stderr
    );
    let mut c = server.client();
    assert_eq!(
        c.get("t", vec![Value::Int(2), Value::Int(3)]).unwrap().rows,
        vec![None, None]
    );
    // Wrong type / unknown column in JSON.
    tarn(&a, &["upsert", "t", r#"{"id": "one", "v": "x"}"#]).failed("TEXT for a BIGINT key");
    tarn(&a, &["upsert", "t", r#"{"id": 5, "nope": 1}"#]).failed("unknown column");
    tarn(&a, &["upsert", "t", "not json"]).failed("not JSON");
    tarn(&a, &["get", "t", "abc"]).failed("non-integer BIGINT key");
    assert_eq!(c.get("t", vec![Value::Int(5)]).unwrap().rows, vec![None]);
    // SQL errors.
    tarn(&a, &["sql", "CREATE TABLE"]).failed("SQL syntax error");
    let f = write(
        dir.path(),
        "bad.sql",
        "CREATE TABLE ok1 (id BIGINT PRIMARY KEY);\nCREATE TABLE bad (id FLOATY PRIMARY KEY);\n",
    );
    tarn(&a, &["sql", "-f", &f]).failed("sql -f with a bad statement");
    tarn(
        &a,
        &[
            "sql",
            "-f",
            &dir.path().join("missing.sql").display().to_string(),
        ],
    )
    .failed("sql -f missing file");

    // Refused connection: nothing listens on this port.
    let port = free_port();
    let dead = format!("127.0.0.1:{port}");
    for args in [
        vec!["ping"],
        vec!["stats"],
        vec!["get", "t", "1"],
        vec!["sql", "SHOW TABLES"],
    ] {
        let out = tarn(&dead, &args).failed(&format!("{args:?} against a closed port"));
        assert!(
            out.stderr.contains(&port.to_string()) || out.stderr.to_lowercase().contains("refused"),
            "{}",
            out.stderr
        );
    }
    // Usage errors are status 2.
    let out = tarn(&a, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "usage error: {}", out.stderr);
}

#[test]
fn cli_auth_token() {
    let server = TarnServer::start_ok(ServerOpts::shards(1).args(&["--auth-token", "cli-tok"]));
    let a = server.addr_string();
    tarn(&a, &["ping"]).failed("ping without the token");
    tarn(&a, &["--token", "wrong", "ping"]).failed("ping with a wrong token");
    tarn(&a, &["--token", "cli-tok", "ping"]).ok("ping with the token");
}

#[test]
fn cli_ingest_reports_bad_lines_and_ingests_the_rest() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let a = server.addr_string();
    let dir = tempfile::tempdir().unwrap();
    tarn(
        &a,
        &[
            "sql",
            "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE) WITH (event_time = 'ts')",
        ],
    )
    .ok("create stream");
    let mut text = String::new();
    for i in 0..2500 {
        match i {
            2 => text.push_str("{\"ts\": \"yesterday\", \"card\": \"c\"}\n"),
            1700 => text.push_str("{\"card\": \"c\", \"amount\": 1}\n"),
            _ => text.push_str(&format!(
                "{{\"ts\": {}, \"card\": \"c{}\", \"amount\": {}.5}}\n",
                1_790_000_000_000_000i64 + i,
                i % 37,
                i
            )),
        }
        if i == 10 {
            text.push('\n'); // blank lines are skipped but counted as lines
        }
    }
    let f = write(dir.path(), "ev.jsonl", &text);
    let out = tarn(&a, &["--json", "ingest", "tx", &f]).failed("ingest with bad lines");
    let j = out.json();
    assert_eq!(j["ingested"], 2498, "{j}");
    assert_eq!(j["rejected"], 2, "{j}");
    assert_eq!(j["rejections"][0]["line"], 3, "{j}");
    assert!(
        j["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("BAD_EVENT: column \"ts\""),
        "{j}"
    );
    assert_eq!(j["rejections"][1]["line"], 1702, "{j}");
    assert!(j["rejections"][1]["reason"]
        .as_str()
        .unwrap()
        .starts_with("MISSING_VALUE"));
    let s = tarn(&a, &["--json", "sql", "SHOW STREAMS"])
        .ok("show streams")
        .json();
    assert_eq!(s["rows"][0][5], 2498, "{s}");
    // Text output; an unknown stream is an error.
    let good = write(dir.path(), "good.jsonl", "{\"ts\": 1, \"card\": \"z\"}\n");
    let out = tarn(&a, &["ingest", "tx", &good]).ok("ingest one line");
    assert!(
        out.stdout.starts_with("ingested 1 event, rejected 0 lines"),
        "{}",
        out.stdout
    );
    tarn(&a, &["ingest", "nope", &good]).failed("unknown stream");
}

#[test]
fn cli_features_and_features_history() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let a = server.addr_string();
    let dir = tempfile::tempdir().unwrap();
    tarn(
        &a,
        &[
            "sql",
            "CREATE STREAM tx (ts TIMESTAMP, card TEXT, amount DOUBLE) WITH (event_time = 'ts'); \
             CREATE MATERIALIZED VIEW cw WITH (window = '10 minutes', bucket = '10 seconds') AS \
             SELECT card, count(*) AS n, sum(amount) AS spend FROM tx GROUP BY card",
        ],
    )
    .ok("create stream and view");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let first = write(
        dir.path(),
        "a.jsonl",
        &format!("{{\"ts\": {now}, \"card\": \"c1\", \"amount\": 2.5}}\n{{\"ts\": {now}, \"card\": \"c2\", \"amount\": 1}}\n"),
    );
    tarn(&a, &["ingest", "tx", &first]).ok("ingest a");
    let j = tarn(&a, &["--json", "features", "cw", "c1", "c2", "c3"])
        .ok("features")
        .json();
    assert_eq!(j["rows"][0]["n"], 1, "{j}");
    assert_eq!(j["rows"][0]["spend"], 2.5, "{j}");
    assert_eq!(j["rows"][2]["n"], 0, "{j}");
    assert!(j["rows"][2]["newest_event_time"].is_null(), "{j}");
    let t1 = j["as_of_us"].as_i64().unwrap();
    let second = write(
        dir.path(),
        "b.jsonl",
        &format!("{{\"ts\": {now}, \"card\": \"c1\", \"amount\": 4}}\n"),
    );
    tarn(&a, &["ingest", "tx", &second]).ok("ingest b");
    let t2 = tarn(&a, &["--json", "features", "cw", "c1"])
        .ok("features")
        .json()["as_of_us"]
        .as_i64()
        .unwrap();
    // History at t1 sees one c1 event, at t2 two; text table output works too.
    let pairs = write(
        dir.path(),
        "pairs.jsonl",
        &format!(
            "{{\"key\": \"c1\", \"as_of\": {t1}}}\n\n{{\"key\": \"c1\", \"as_of\": {t2}}}\n{{\"key\": \"c2\", \"as_of\": {t2}}}\n"
        ),
    );
    let out = tarn(&a, &["features-history", "cw", &pairs]).ok("features-history");
    let lines: Vec<Json> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(
        (lines[0]["n"].clone(), lines[0]["spend"].clone()),
        (Json::from(1), Json::from(2.5))
    );
    assert_eq!(
        (lines[1]["n"].clone(), lines[1]["spend"].clone()),
        (Json::from(2), Json::from(6.5))
    );
    assert_eq!(lines[2]["card"], "c2");
    assert_eq!(lines[1]["as_of_us"], t2);
    let text = tarn(&a, &["features", "cw", "c1", "--as-of", &t1.to_string()]).ok("as-of read");
    assert!(text.stdout.contains("as of"), "{}", text.stdout);
    // Bad pairs line: error naming the line; an unknown view: error.
    let bad = write(
        dir.path(),
        "bad.jsonl",
        "{\"key\": \"c1\", \"as_of\": 1}\n{\"as_of\": 5}\n",
    );
    let out = tarn(&a, &["features-history", "cw", &bad]).failed("bad pairs");
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
    tarn(&a, &["features", "nope", "c1"]).failed("unknown view");
}
