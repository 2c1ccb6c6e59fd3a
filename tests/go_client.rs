//! The Go client (`clients/go`) against a real tarnd: `gofmt -l`, `go vet` and `go test` of
//! the Go module (the `tarn-go-context` tool included), with `TARND_BIN` pointing at the tarnd
//! cargo built for this test run. The Go tests start their own servers (temp data dir, loopback
//! port in 20000..32000). Then the `tarn-go-context` tool against the `tarn context --json` CLI:
//! the same context calls give the same JSON document.
//!
//! Go is found or installed by `tests/common/go.rs`; with `CI=true` a missing Go is a failure,
//! never a skip.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::go::{check, ensure_go, run};
use common::*;

/// Upper bound for the whole Go test run (`go test -timeout`); the Go tests bound each wait.
const GO_TEST_TIMEOUT: &str = "300s";

#[test]
fn go_client_vet_fmt_and_tests() {
    let go = match ensure_go() {
        Ok(go) => go,
        Err(e) => {
            eprintln!("SKIPPED go_client_vet_fmt_and_tests: {e}");
            return;
        }
    };
    let goroot = run(&go, &["env", "GOROOT"]);
    check(&go, &["env", "GOROOT"], &goroot);
    let gofmt = PathBuf::from(String::from_utf8_lossy(&goroot.stdout).trim()).join("bin/gofmt");
    let fmt = run(&gofmt, &["-l", "."]);
    check(&gofmt, &["-l", "."], &fmt);
    assert!(
        fmt.stdout.is_empty(),
        "gofmt -l lists unformatted files:\n{}",
        String::from_utf8_lossy(&fmt.stdout)
    );
    let vet = ["vet", "./..."];
    check(&go, &vet, &run(&go, &vet));
    let test = ["test", "-count=1", "-timeout", GO_TEST_TIMEOUT, "./..."];
    let out = run(&go, &test);
    check(&go, &test, &out);
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// Every value type in a table (`things`), a second table keyed by BIGINT (`owners`), a
/// stream with `recent = 3`, a feature view over it, a vector index, and a context using all
/// four item kinds, references (`t.n`, `near.n`) and a list item (`near_o`).
const SCHEMA: &str = "\
    CREATE TABLE things (id TEXT PRIMARY KEY, flag BOOLEAN, n BIGINT, x DOUBLE, blob BYTES, \
      at TIMESTAMP, emb VECTOR(3), note TEXT); \
    CREATE TABLE owners (id BIGINT PRIMARY KEY, name TEXT, since TIMESTAMP); \
    CREATE STREAM ev (ts TIMESTAMP, thing TEXT, amount DOUBLE, tag BYTES) \
      WITH (event_time = 'ts', partition = 'thing', recent = 3); \
    CREATE MATERIALIZED VIEW ev_life WITH (window = 'lifetime') AS \
      SELECT thing, count(*) AS cnt, sum(amount) AS total FROM ev GROUP BY thing; \
    CREATE INDEX things_emb ON things USING hnsw (emb); \
    CREATE CONTEXT all_go (thing TEXT, owner BIGINT, q VECTOR(3)) AS SELECT \
      row(things, thing) AS t, \
      row(owners, t.n) AS o, \
      features(ev_life, thing) AS f, \
      recent(ev, thing, 3) AS r, \
      knn(things_emb, like => thing, k => 2, columns => (id, n)) AS near, \
      row(owners, near.n, columns => (name)) AS near_o, \
      row(owners, owner) AS o2, \
      knn(things_emb, vector => q, k => 2, columns => (id)) AS byvec; \
    CREATE TABLE by_bytes (k BYTES PRIMARY KEY, v TEXT); \
    CREATE TABLE by_ts (k TIMESTAMP PRIMARY KEY, v TEXT); \
    CREATE TABLE by_bool (k BOOLEAN PRIMARY KEY, v TEXT); \
    CREATE CONTEXT keys_go (b BYTES, at TIMESTAMP, flag BOOLEAN) AS SELECT \
      row(by_bytes, b) AS rb, row(by_ts, at) AS rt, row(by_bool, flag) AS rf";

fn vector(v: &[f32]) -> Value {
    Value::Vector(v.to_vec().into())
}

/// t1 and t2 with every column set (awkward doubles, text that needs escaping, empty bytes),
/// t3 with NULLs and an owner (99) that does not exist; events for t1 (more than `recent`)
/// and t2.
fn load(c: &mut Conn) {
    c.sql(SCHEMA).expect("schema");
    let cols = ["id", "flag", "n", "x", "blob", "at", "emb", "note"];
    let rows = vec![
        vec![
            text("t1"),
            Value::Bool(true),
            Value::Int(1),
            Value::Double(0.1 + 0.2),
            Value::Bytes(vec![0, 0xff, 0x7f]),
            Value::Timestamp(1_714_564_800_250_000),
            vector(&[0.1, 1.0, -2.5]),
            text("quote \" backslash \\ tab\t nl\n ctl\u{1} é ✓ <&>"),
        ],
        vec![
            text("t2"),
            Value::Bool(false),
            Value::Int(2),
            Value::Double(1e300),
            Value::Bytes(vec![]),
            Value::Timestamp(-5),
            vector(&[1e-7, 3.0, 0.0]),
            Value::Null,
        ],
        vec![
            text("t3"),
            Value::Null,
            Value::Int(99),
            Value::Double(-0.0),
            Value::Null,
            Value::Null,
            vector(&[100.0, 1e15, -3.25e-9]),
            text(""),
        ],
    ];
    c.upsert("things", &cols, rows).expect("things");
    let owners = vec![
        vec![Value::Int(1), text("Ann"), Value::Timestamp(1_000_000)],
        vec![Value::Int(2), text("Bo"), Value::Null],
    ];
    c.upsert("owners", &["id", "name", "since"], owners)
        .expect("owners");
    let events: Vec<Vec<Value>> = [(1, "t1", 10.5), (2, "t1", 1e-9), (3, "t2", 7.0)]
        .into_iter()
        .chain([(4, "t1", 123456789.125), (5, "t1", -2.0), (6, "t1", 1e16)])
        .map(|(ts, thing, amount)| {
            vec![
                Value::Timestamp(ts),
                text(thing),
                Value::Double(amount),
                Value::Bytes(vec![ts as u8; 2]),
            ]
        })
        .collect();
    for (table, key) in [
        ("by_bytes", Value::Bytes(vec![0xde, 0xad])),
        ("by_ts", Value::Timestamp(1_714_564_800_000_000)),
        ("by_bool", Value::Bool(true)),
    ] {
        c.upsert(table, &["k", "v"], vec![vec![key, text(table)]])
            .expect(table);
    }
    let cols = ["ts", "thing", "amount", "tag"];
    c.call(&Request::Ingest(tarn_net::IngestRequest {
        stream: "ev".into(),
        producer: None,
        body: tarn_net::IngestBody::Rows {
            columns: cols.iter().map(|s| s.to_string()).collect(),
            rows: events,
        },
    }))
    .expect("ingest");
}

/// A JSON document's text with each `"as_of_us": N` line masked (snapshots differ per call).
fn masked(doc: &str) -> String {
    doc.lines()
        .map(|l| {
            if l.trim_start().starts_with("\"as_of_us\":") {
                "<as_of_us>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The document with every shard's `as_of_us` removed (shard ids kept).
fn without_as_of(doc: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(doc).unwrap_or_else(|e| panic!("not JSON ({e}):\n{doc}"));
    for s in v["shards"].as_array_mut().expect("shards array") {
        s.as_object_mut().expect("shard object").remove("as_of_us");
    }
    v
}

/// `tarn-go-context` and `tarn context --json` print the same document for the same call,
/// including a missing key, a NULL parameter, a missing second hop, and both refuse a bad
/// parameter.
#[test]
fn go_context_tool_matches_the_cli() {
    if let Err(e) = ensure_go() {
        eprintln!("SKIPPED go_context_tool_matches_the_cli: {e}");
        return;
    }
    let tool = go_context_tool();
    let srv = TarnServer::start_ok(ServerOpts::shards(2));
    load(&mut srv.client());
    let addr = srv.addr_string();
    let go_tool = |params: &[&str]| {
        Command::new(&tool)
            .args(["-addr", addr.as_str()])
            .args(params)
            .env_remove("TARN_AUTH_TOKEN")
            .output()
            .expect("run tarn-go-context")
    };
    let calls: [&[&str]; 7] = [
        &["all_go", "thing=t1", "owner=2", "q=[0, 1, 0]"],
        &["all_go", "thing=t2", "owner=null", "q=[1,0,0]"],
        &["all_go", "thing=nope", "owner=7", "q=[0.5,0.5,0.5]"],
        &["all_go", "thing=t3", "owner=1", "q=[100, 0, 0]"],
        &[
            "keys_go",
            "b=\\xDEad",
            "at=2024-05-01 14:00:00+02:00",
            "flag=TRUE",
        ],
        &["keys_go", "b=\\x", "at=1714564800000000", "flag=false"],
        &[
            "keys_go",
            "b=null",
            "at=2024-05-01T12:00:00.000001Z",
            "flag=null",
        ],
    ];
    for params in calls {
        let mut args = vec!["--json", "context"];
        args.extend_from_slice(params);
        let cli = run_tarn(&addr, &args);
        assert!(cli.status.success(), "tarn {args:?}: {}", cli.stderr);
        let go = go_tool(params);
        let go_out = String::from_utf8_lossy(&go.stdout).into_owned();
        assert!(
            go.status.success(),
            "tarn-go-context {params:?}: {}",
            String::from_utf8_lossy(&go.stderr)
        );
        assert_eq!(
            without_as_of(&go_out),
            without_as_of(&cli.stdout),
            "{params:?}"
        );
        assert_eq!(masked(&go_out), masked(&cli.stdout), "{params:?}: text");
        // The shards the call read (one as-of each), ids of this 2-shard server.
        let shards = without_as_of(&go_out)["shards"].clone();
        let ids: Vec<u64> = shards
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["shard"].as_u64().expect("shard id"))
            .collect();
        assert!(
            !ids.is_empty() && ids.iter().all(|&i| i < 2),
            "{params:?}: {ids:?}"
        );
    }
    // The typed parameters found their rows (BYTES in either case, RFC 3339 with an offset).
    let found = go_tool(&[
        "keys_go",
        "b=\\xDEad",
        "at=2024-05-01 14:00:00+02:00",
        "flag=TRUE",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&found.stdout).expect("JSON");
    for (item, table) in [("rb", "by_bytes"), ("rt", "by_ts"), ("rf", "by_bool")] {
        assert_eq!(doc["items"][item][0]["rows"][0]["v"], table, "{doc}");
    }
    // Errors: exit 1 and `error: …` naming the problem, like the CLI.
    let errors: [(&[&str], &[&str]); 6] = [
        (
            &["all_go", "thing=t1", "nobody=1"],
            &["nobody", "thing, owner, q"],
        ),
        (&["all_go", "thing=t1", "owner=x1"], &["owner", "BIGINT"]),
        (&["all_go", "thing=t1", "owner=1", "q=[1,2]"], &["q", "3"]),
        (&["keys_go", "at=2024-05-01T12:00:00"], &["at", "RFC 3339"]),
        (&["keys_go", "b=dead"], &["b", "\\x"]),
        (
            &["no_such_context"],
            &["UNKNOWN_CONTEXT", "no_such_context"],
        ),
    ];
    for (params, names) in errors {
        let go = go_tool(params);
        let err = String::from_utf8_lossy(&go.stderr);
        assert_eq!(go.status.code(), Some(1), "{params:?}: {err}");
        assert!(err.starts_with("error: "), "{params:?}: {err}");
        for n in names {
            assert!(err.contains(n), "{params:?}: {err} does not name {n}");
        }
        let mut args = vec!["--json", "context"];
        args.extend_from_slice(params);
        assert!(!run_tarn(&addr, &args).status.success(), "tarn {args:?}");
    }
}
