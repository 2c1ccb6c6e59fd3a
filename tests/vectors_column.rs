//! VECTOR(n) columns end to end against a real server: create, write through the protocol
//! client, SQL INSERT and the CLI, read back bit for bit through GET, SQL and the CLI, and
//! identical after a SIGTERM restart, after kill -9, and after a checkpoint.

mod common;

use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: u32 = 8;

/// Components of every kind that must survive bit for bit: ±0, subnormals, tiny, ordinary,
/// and large up to the component limit (1e16).
fn component(rng: &mut StdRng) -> f32 {
    match rng.random_range(0..6) {
        0 => 0.0,
        1 => -0.0,
        2 => f32::from_bits(rng.random_range(1..0x0080_0000)),
        3 => rng.random_range(-1.0e-30f32..1.0e-30),
        4 => rng.random_range(-1.0e16f32..1.0e16),
        _ => rng.random_range(-1.0f32..1.0),
    }
}

fn vector(rng: &mut StdRng, dim: u32) -> Vec<f32> {
    (0..dim).map(|_| component(rng)).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs `tarn --addr ADDR ARGS…` (bounded); returns stdout, panics on failure.
fn tarn_ok(addr: &str, args: &[&str]) -> String {
    let out = run_tarn(addr, args);
    assert!(
        out.status.success(),
        "tarn {args:?}: {:?}\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// What the table must hold: `(id, vector or NULL)`.
type Expected = Vec<(i64, Option<Vec<f32>>)>;

/// GET every expected id and compare bits; then the same rows through SQL.
fn check_rows(server: &TarnServer, table: &str, expected: &Expected, what: &str) {
    let mut c = server.client();
    let keys: Vec<Value> = expected.iter().map(|(id, _)| Value::Int(*id)).collect();
    let rows = c.get_many(table, &keys, 500).unwrap();
    for ((id, want), got) in expected.iter().zip(&rows) {
        let got = got
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: row {id} missing"));
        match (want, &got[1]) {
            (None, Value::Null) => {}
            (Some(w), Value::Vector(g)) => assert_eq!(bits(g), bits(w), "{what}: row {id}"),
            (w, g) => panic!("{what}: row {id}: expected {w:?}, got {g:?}"),
        }
    }
    let sample: Vec<String> = expected
        .iter()
        .take(50)
        .map(|(id, _)| id.to_string())
        .collect();
    let sql = format!(
        "SELECT id, emb FROM {table} WHERE id IN ({})",
        sample.join(", ")
    );
    let reply = c.sql(&sql).unwrap();
    assert_eq!(
        reply.columns[1].ty,
        ColumnType::Vector(expected_dim(expected))
    );
    assert_eq!(reply.rows.len(), sample.len(), "{what}: {sql}");
    for (row, (id, want)) in reply.rows.iter().zip(expected) {
        assert_eq!(row[0], Value::Int(*id));
        match want {
            None => assert_eq!(row[1], Value::Null),
            Some(w) => assert_eq!(row[1], Value::Vector(w.clone().into()), "{what}: {id}"),
        }
    }
}

fn expected_dim(expected: &Expected) -> u32 {
    expected
        .iter()
        .find_map(|(_, v)| v.as_ref().map(|v| v.len() as u32))
        .expect("some vector")
}

/// Writes `docs` through the protocol client, SQL INSERT (both literal forms) and the CLI.
fn write_docs(server: &TarnServer, rng: &mut StdRng) -> Expected {
    let a = server.addr_string();
    let mut c = server.client();
    c.sql(&format!(
        "CREATE TABLE docs (id BIGINT PRIMARY KEY, emb VECTOR({DIM}), title TEXT)"
    ))
    .unwrap();
    let mut expected: Expected = Vec::new();
    let mut rows = Vec::new();
    for id in 0..300 {
        let v = (id % 10 != 3).then(|| vector(rng, DIM));
        let cell = v.clone().map_or(Value::Null, |v| Value::Vector(v.into()));
        rows.push(vec![Value::Int(id), cell, Value::Text(format!("doc {id}"))]);
        expected.push((id, v));
    }
    assert_eq!(
        c.upsert("docs", &["id", "emb", "title"], rows).unwrap(),
        300
    );
    let (v1, v2) = (vector(rng, DIM), vector(rng, DIM));
    let text = |v: &[f32]| tarn_core::vector::to_text(v);
    c.sql(&format!(
        "INSERT INTO docs (id, emb) VALUES (1000, '{}'), (1001, ARRAY{})",
        text(&v1),
        text(&v2)
    ))
    .unwrap();
    expected.push((1000, Some(v1)));
    expected.push((1001, Some(v2)));
    // The Rust client crate (tarn_client) writes and reads vectors too.
    let mut rc = tarn_client::Client::connect(&a).unwrap();
    let v4 = vector(rng, DIM);
    rc.upsert(
        "docs",
        &["id", "emb"],
        vec![vec![Value::Int(3000), Value::Vector(v4.clone().into())]],
    )
    .unwrap();
    let got = rc.get("docs", vec![Value::Int(3000)]).unwrap();
    assert_eq!(got.columns[1].ty, ColumnType::Vector(DIM));
    match &got.rows[0].as_ref().unwrap()[1] {
        Value::Vector(g) => assert_eq!(bits(g), bits(&v4)),
        other => panic!("tarn_client GET: {other:?}"),
    }
    expected.push((3000, Some(v4)));
    let v3 = vector(rng, DIM);
    let json = serde_json::json!({"id": 2000, "emb": tarn_core::vector::to_json(&v3)});
    tarn_ok(&a, &["upsert", "docs", &json.to_string()]);
    expected.push((2000, Some(v3)));
    expected
}

/// The CLI reads the vectors back exactly (`--json get`) and prints them (`sql`, `DESCRIBE`).
fn check_cli(server: &TarnServer, expected: &Expected) {
    let a = server.addr_string();
    let (id, want) = expected.iter().rev().find(|(_, v)| v.is_some()).unwrap();
    let want = want.as_ref().unwrap();
    let out = tarn_ok(&a, &["--json", "get", "docs", &id.to_string()]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let row = j.as_array().map_or(&j, |a| &a[0]);
    let got: Vec<f32> = row["emb"]
        .as_array()
        .unwrap_or_else(|| panic!("emb is an array: {out}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(bits(&got), bits(want), "{out}");
    let out = tarn_ok(
        &a,
        &["sql", &format!("SELECT emb FROM docs WHERE id = {id}")],
    );
    assert!(out.contains(&tarn_core::vector::to_text(want)), "{out}");
    let out = tarn_ok(&a, &["sql", "DESCRIBE docs"]);
    assert!(out.contains(&format!("VECTOR({DIM})")), "{out}");
}

#[test]
fn vectors_are_written_read_and_kept_bit_exactly_across_restarts() {
    let mut rng = StdRng::seed_from_u64(0x7ec7_0001);
    // Checkpoints after every MiB of log, so the large table below is checkpointed.
    let mut server = TarnServer::start_ok(ServerOpts::shards(2).args(&["--checkpoint-mib", "1"]));
    let expected = write_docs(&server, &mut rng);
    check_rows(&server, "docs", &expected, "written");
    check_cli(&server, &expected);

    server.stop_ok();
    server.restart_ok();
    check_rows(&server, "docs", &expected, "after SIGTERM restart");

    server.kill9();
    server.restart_ok();
    check_rows(&server, "docs", &expected, "after kill -9");

    // 600 rows of VECTOR(1024) (2.4 MiB of log): every shard passes its checkpoint interval.
    let mut c = server.client();
    c.sql("CREATE TABLE big (id BIGINT PRIMARY KEY, emb VECTOR(1024))")
        .unwrap();
    let mut big: Expected = Vec::new();
    for chunk in 0..6 {
        let mut rows = Vec::new();
        for i in 0..100 {
            let id = chunk * 100 + i;
            let v = vector(&mut rng, 1024);
            rows.push(vec![Value::Int(id), Value::Vector(v.clone().into())]);
            big.push((id, Some(v)));
        }
        c.upsert("big", &["id", "emb"], rows).unwrap();
    }
    wait_for_checkpoints(&server, 2);
    server.kill9();
    server.restart_ok();
    check_rows(&server, "big", &big, "after a checkpoint and kill -9");
    check_rows(
        &server,
        "docs",
        &expected,
        "docs after a checkpoint and kill -9",
    );
    check_cli(&server, &expected);
}

/// Waits (bounded by a number of polls, not a time budget) until every shard has written a
/// checkpoint.
fn wait_for_checkpoints(server: &TarnServer, shards: u32) {
    for _ in 0..600 {
        if (0..shards).all(|s| !checkpoints(server.data_dir(), s).is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no checkpoint on every shard after 2.4 MiB of log with --checkpoint-mib 1");
}
