//! kNN through a real server: CREATE INDEX … USING hnsw over existing rows (built while the
//! server serves), KNN requests fanned out over shards and merged, filters, `Like`, every live
//! row reachable by its own vector after a build under concurrent writes, updated and deleted
//! rows never returned with old vectors while another connection hammers them, results after
//! restart and kill -9, and every bad input with its error.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_net::{KnnQuery, KnnReply, KnnRequest};

const DIM: usize = 16;

fn items_sql(metric: &str) -> String {
    format!(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, emb VECTOR({DIM}), grp BIGINT, tag TEXT); \
         CREATE INDEX items_emb ON items USING hnsw (emb) WITH (metric = '{metric}')"
    )
}

fn random_vector(rng: &mut StdRng) -> Vec<f32> {
    (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn row(id: i64, v: &[f32]) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Vector(v.to_vec().into()),
        Value::Int(id % 100),
        Value::Text(format!("t{}", id % 7)),
    ]
}

/// Writes `n` rows (ids from `first`) in batches; returns them.
fn write_rows(c: &mut Conn, rng: &mut StdRng, first: i64, n: i64) -> BTreeMap<i64, Vec<f32>> {
    let mut out = BTreeMap::new();
    let ids: Vec<i64> = (first..first + n).collect();
    for chunk in ids.chunks(500) {
        let rows: Vec<Vec<Value>> = chunk
            .iter()
            .map(|&id| {
                let v = random_vector(rng);
                let r = row(id, &v);
                out.insert(id, v);
                r
            })
            .collect();
        c.upsert("items", &["id", "emb", "grp", "tag"], rows)
            .unwrap();
    }
    out
}

fn knn_req(q: KnnQuery, k: u32, filter: &str, columns: &[&str]) -> KnnRequest {
    KnnRequest {
        index: "items_emb".into(),
        query: q,
        k,
        ef: None,
        filter: filter.into(),
        columns: columns.iter().map(|s| s.to_string()).collect(),
    }
}

fn knn(c: &mut Conn, req: KnnRequest) -> Result<KnnReply, ClientError> {
    match c.call(&Request::Knn(req))? {
        Response::Knn(r) => Ok(r),
        o => Err(ClientError::Protocol(format!("unexpected {o:?}"))),
    }
}

/// Ids of the `k` nearest rows of `rows` passing `keep`, by L2 (ties by id).
fn brute(
    rows: &BTreeMap<i64, Vec<f32>>,
    q: &[f32],
    k: usize,
    keep: impl Fn(i64) -> bool,
) -> Vec<i64> {
    let mut all: Vec<(f32, i64)> = rows
        .iter()
        .filter(|(id, _)| keep(**id))
        .map(|(&id, v)| (l2(q, v), id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

/// Rows pending in every index (SHOW INDEXES).
fn pending(c: &mut Conn) -> i64 {
    let r = c.sql("SHOW INDEXES").unwrap();
    let pending_col = r
        .columns
        .iter()
        .position(|c| c.name == "rows_pending")
        .unwrap();
    r.rows
        .iter()
        .map(|row| match row[pending_col] {
            Value::Int(n) => n,
            _ => panic!("rows_pending"),
        })
        .sum()
}

/// Waits (bounded) until SHOW INDEXES reports no row pending.
fn wait_built(c: &mut Conn) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pending = pending(c);
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "index build did not finish: {pending} pending"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn recall(got: &[i64], want: &[i64]) -> f64 {
    let hit = got.iter().filter(|g| want.contains(g)).count();
    hit as f64 / want.len().max(1) as f64
}

#[test]
fn knn_over_shards_matches_brute_force_with_filters_columns_and_like() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(1);
    c.sql(&format!(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, emb VECTOR({DIM}), grp BIGINT, tag TEXT)"
    ))
    .unwrap();
    let rows = write_rows(&mut c, &mut rng, 0, 6000);
    // Created over existing rows: searches during the build are answered (pending rows are
    // scanned exactly), then the build finishes in the background.
    c.sql("CREATE INDEX items_emb ON items USING hnsw (emb)")
        .unwrap();
    let q = random_vector(&mut rng);
    let during = knn(
        &mut c,
        knn_req(KnnQuery::Vector(q.clone()), 10, "grp < 2", &[]),
    )
    .unwrap();
    assert_eq!(knn_ids(&during), brute(&rows, &q, 10, |id| id % 100 < 2));
    wait_built(&mut c);
    let listed = c.sql("SHOW INDEXES").unwrap();
    let indexed = listed
        .columns
        .iter()
        .position(|c| c.name == "rows_indexed")
        .unwrap();
    assert_eq!(listed.rows[0][indexed], Value::Int(6000));
    // STATS: each shard's part of the index, summing to the table.
    let stats = c.stats().unwrap();
    let parts: Vec<&tarn_net::IndexStats> = stats.shards.iter().flat_map(|s| &s.indexes).collect();
    assert_eq!(parts.len(), 2, "{stats:?}");
    assert!(parts
        .iter()
        .all(|p| p.index == "items_emb" && p.rows_pending == 0 && p.memory_bytes > 0));
    assert_eq!(parts.iter().map(|p| p.rows_indexed).sum::<u64>(), 6000);

    let mut total = 0.0;
    for _ in 0..50 {
        let q = random_vector(&mut rng);
        let r = knn(
            &mut c,
            knn_req(KnnQuery::Vector(q.clone()), 10, "", &["id", "emb"]),
        )
        .unwrap();
        assert_eq!(r.rows.len(), 10);
        assert_eq!(r.columns.len(), 2);
        assert!(
            r.distances < 3000,
            "a graph search ({} distances)",
            r.distances
        );
        // Each distance is the L2 distance to the vector returned with it; nearest first.
        for w in r.rows.windows(2) {
            assert!(w[0].distance <= w[1].distance);
        }
        for row in &r.rows {
            let Value::Vector(v) = &row.values[1] else {
                panic!("emb")
            };
            assert!((row.distance - l2(&q, v)).abs() <= 1e-5 * (1.0 + row.distance));
        }
        total += recall(&knn_ids(&r), &brute(&rows, &q, 10, |_| true));
    }
    assert!(total / 50.0 >= 0.95, "recall@10 {}", total / 50.0);

    // A selective filter (1 %): exact, min(k, matching) rows; an AND of two columns; IN; NOT.
    for (filter, keep) in [
        (
            "grp = 7",
            Box::new(|id: i64| id % 100 == 7) as Box<dyn Fn(i64) -> bool>,
        ),
        (
            "grp < 50 AND tag = 't3'",
            Box::new(|id: i64| id % 100 < 50 && id % 7 == 3),
        ),
        (
            "grp IN (1, 2, 3) OR NOT (tag <> 't0')",
            Box::new(|id: i64| (1..=3).contains(&(id % 100)) || id % 7 == 0),
        ),
        (
            "grp = 7 AND tag = 't1'",
            Box::new(|id: i64| id % 100 == 7 && id % 7 == 1),
        ),
    ] {
        let q = random_vector(&mut rng);
        let r = knn(
            &mut c,
            knn_req(KnnQuery::Vector(q.clone()), 40, filter, &["id"]),
        )
        .unwrap();
        let want = brute(&rows, &q, 40, &keep);
        assert!(
            recall(&knn_ids(&r), &want) >= 0.95,
            "filter {filter}: {:?} vs {want:?}",
            knn_ids(&r)
        );
        assert_eq!(r.rows.len(), want.len(), "filter {filter}");
        assert!(
            knn_ids(&r).iter().all(|&id| keep(id)),
            "filter {filter} not applied"
        );
    }
    // Fewer matches than k: every match, no error.
    let r = knn(
        &mut c,
        knn_req(KnnQuery::Vector(q.clone()), 100, "id < 5", &["id"]),
    )
    .unwrap();
    assert_eq!(knn_ids(&r).len(), 5);
    // Like: the row itself first at distance 0.
    let r = knn(
        &mut c,
        knn_req(KnnQuery::Like(Value::Int(1234)), 3, "", &["id"]),
    )
    .unwrap();
    assert_eq!(knn_ids(&r)[0], 1234);
    assert_eq!(r.rows[0].distance, 0.0);
}

#[test]
fn every_live_row_is_found_by_its_own_vector_after_a_build_under_concurrent_writes() {
    // One shard of 20,000 rows: far above what the planner scans exactly for k = 1 (64 · ef),
    // so every search below walks the graph (checked through the distances computed).
    let server = TarnServer::start_ok(ServerOpts::shards(1));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(2);
    c.sql(&format!(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, emb VECTOR({DIM}), grp BIGINT, tag TEXT)"
    ))
    .unwrap();
    let mut rows = write_rows(&mut c, &mut rng, 0, 20_000);
    c.sql("CREATE INDEX items_emb ON items USING hnsw (emb)")
        .unwrap();
    // While the build runs: rewrite, delete and add rows from the same connection order.
    let mut w = server.client();
    let mut pending_seen = Vec::new();
    for round in 0..10 {
        pending_seen.push(pending(&mut c));
        let base = round * 400;
        let fresh = write_rows(&mut w, &mut rng, 20_000 + base, 100);
        rows.extend(fresh);
        let rewritten = write_rows(&mut w, &mut rng, base, 50);
        rows.extend(rewritten);
        let gone: Vec<Value> = (base + 200..base + 260).map(Value::Int).collect();
        w.delete("items", gone).unwrap();
        for id in base + 200..base + 260 {
            rows.remove(&id);
        }
    }
    // The build really overlapped the writes: rows were still pending when a round began
    // (seen on the 2-core CI VM: 8 of 10 rounds; one is enough to be a concurrent build).
    let overlapped = pending_seen.iter().filter(|&&p| p > 0).count();
    assert!(
        overlapped >= 1,
        "pending rows between rounds: {pending_seen:?}"
    );
    wait_built(&mut c);
    let mut missing = Vec::new();
    for (&id, v) in &rows {
        let r = knn(&mut c, knn_req(KnnQuery::Vector(v.clone()), 1, "", &["id"])).unwrap();
        assert!(
            r.distances < rows.len() as u64 / 4,
            "a graph search ({} distances)",
            r.distances
        );
        if knn_ids(&r) != [id] {
            missing.push(id);
        }
    }
    assert!(
        missing.is_empty(),
        "{} live rows not found by their own vector: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
}

#[test]
fn updated_and_deleted_rows_never_come_back_stale_while_another_connection_writes() {
    // One shard of 3,000 rows: the unfiltered searches walk the graph.
    let server = TarnServer::start_ok(ServerOpts::shards(1));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(3);
    c.sql(&items_sql("l2")).unwrap();
    write_rows(&mut c, &mut rng, 0, 3000);
    wait_built(&mut c);
    // The writer rewrites rows 0..1000 and deletes ids 1000.. one by one (never re-added);
    // a delete counts once the server acknowledged it.
    let deleted = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr();
    let writer = {
        let (deleted, stop) = (deleted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut w = Conn::connect(addr).unwrap();
            let mut rng = StdRng::seed_from_u64(4);
            let mut next_delete = 1000;
            while !stop.load(Ordering::Relaxed) && next_delete < 3000 {
                let id = rng.random_range(0..1000);
                let v = random_vector(&mut rng);
                w.upsert("items", &["id", "emb", "grp", "tag"], vec![row(id, &v)])
                    .unwrap();
                w.delete("items", vec![Value::Int(next_delete)]).unwrap();
                deleted.lock().unwrap().push(next_delete);
                next_delete += 1;
            }
        })
    };
    let mut queries = 0;
    while queries < 300 {
        let gone_before: Vec<i64> = deleted.lock().unwrap().clone();
        let q = random_vector(&mut rng);
        let r = knn(
            &mut c,
            knn_req(KnnQuery::Vector(q.clone()), 20, "", &["id", "emb"]),
        )
        .unwrap();
        for row in &r.rows {
            let Value::Int(id) = row.values[0] else {
                panic!()
            };
            assert!(
                !gone_before.contains(&id),
                "row {id} returned after its delete was acknowledged"
            );
            let Value::Vector(v) = &row.values[1] else {
                panic!("emb")
            };
            assert!(
                (row.distance - l2(&q, v)).abs() <= 1e-5 * (1.0 + row.distance),
                "row {id}: distance {} is not that of the vector returned with it ({})",
                row.distance,
                l2(&q, v)
            );
        }
        queries += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn results_are_the_same_after_restart_and_after_kill_9() {
    let mut server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(5);
    c.sql(&items_sql("cosine")).unwrap();
    // 4,000 rows per shard: unfiltered searches walk the graph, `grp < 3` (3 %) is scanned.
    let rows = write_rows(&mut c, &mut rng, 0, 8000);
    wait_built(&mut c);
    let queries: Vec<Vec<f32>> = (0..30).map(|_| random_vector(&mut rng)).collect();
    // Every answer — filtered searches the planner answers exactly and graph searches alike —
    // is identical bit for bit: the graphs are a function of the log (tests/vectors_restart.rs
    // checks this over builds, rebuilds and checkpoints); recall is checked besides.
    let run = |c: &mut Conn| -> (Vec<KnnReply>, f64) {
        let exact: Vec<KnnReply> = queries
            .iter()
            .map(|q| {
                knn(
                    c,
                    knn_req(KnnQuery::Vector(q.clone()), 10, "grp < 3", &["id"]),
                )
                .unwrap()
            })
            .collect();
        let mut total = 0.0;
        let mut replies: Vec<KnnReply> = exact;
        for q in &queries {
            let r = knn(c, knn_req(KnnQuery::Vector(q.clone()), 10, "", &["id"])).unwrap();
            assert!(
                r.distances < 4000,
                "a graph search ({} distances)",
                r.distances
            );
            let want = brute_cosine(&rows, q, 10);
            total += recall(&knn_ids(&r), &want);
            replies.push(r);
        }
        (replies, total / queries.len() as f64)
    };
    let (before, recall_before) = run(&mut c);
    assert!(recall_before >= 0.95, "recall {recall_before}");
    server.stop_ok();
    server.restart_ok();
    let mut c = server.client();
    wait_built(&mut c);
    let (after, recall_after) = run(&mut c);
    assert_eq!(before, after, "results changed across a restart");
    assert!(recall_after >= 0.95, "recall after restart {recall_after}");
    server.kill9();
    server.restart_ok();
    let mut c = server.client();
    wait_built(&mut c);
    let (killed, recall_killed) = run(&mut c);
    assert_eq!(before, killed, "results changed across kill -9");
    assert!(
        recall_killed >= 0.95,
        "recall after kill -9 {recall_killed}"
    );
}

fn brute_cosine(rows: &BTreeMap<i64, Vec<f32>>, q: &[f32], k: usize) -> Vec<i64> {
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        1.0 - dot / (na * nb)
    };
    let mut all: Vec<(f64, i64)> = rows.iter().map(|(&id, v)| (cos(q, v), id)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

#[test]
fn bad_knn_requests_get_clear_errors_and_change_nothing() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(6);
    c.sql(&items_sql("cosine")).unwrap();
    write_rows(&mut c, &mut rng, 0, 200);
    let q = random_vector(&mut rng);
    let v = |x: Vec<f32>| KnnQuery::Vector(x);
    let cases: Vec<(KnnRequest, ErrorCode, &str)> = vec![
        (
            KnnRequest {
                index: "nope".into(),
                ..knn_req(v(q.clone()), 5, "", &[])
            },
            ErrorCode::UnknownIndex,
            "nope",
        ),
        (
            knn_req(v(q.clone()), 0, "", &[]),
            ErrorCode::InvalidArgument,
            "k must be at least 1",
        ),
        (
            knn_req(v(q.clone()), 1001, "", &[]),
            ErrorCode::LimitExceeded,
            "limit is 1000",
        ),
        (
            KnnRequest {
                ef: Some(0),
                ..knn_req(v(q.clone()), 5, "", &[])
            },
            ErrorCode::InvalidArgument,
            "ef is 0",
        ),
        (
            KnnRequest {
                ef: Some(1001),
                ..knn_req(v(q.clone()), 5, "", &[])
            },
            ErrorCode::InvalidArgument,
            "ef is 1001",
        ),
        (
            knn_req(v(vec![0.5; DIM - 1]), 5, "", &[]),
            ErrorCode::BadVector,
            "15",
        ),
        (
            knn_req(
                v({
                    let mut x = q.clone();
                    x[3] = f32::NAN;
                    x
                }),
                5,
                "",
                &[],
            ),
            ErrorCode::BadVector,
            "NaN",
        ),
        (
            knn_req(
                v({
                    let mut x = q.clone();
                    x[0] = f32::INFINITY;
                    x
                }),
                5,
                "",
                &[],
            ),
            ErrorCode::BadVector,
            "component 0",
        ),
        (
            knn_req(v(vec![0.0; DIM]), 5, "", &[]),
            ErrorCode::BadVector,
            "zero vector",
        ),
        (
            knn_req(v(q.clone()), 5, "", &["id", "nope"]),
            ErrorCode::UnknownColumn,
            "nope",
        ),
        (
            knn_req(v(q.clone()), 5, "nope = 1", &[]),
            ErrorCode::UnknownColumn,
            "nope",
        ),
        (
            knn_req(v(q.clone()), 5, "grp = 'x'", &[]),
            ErrorCode::TypeMismatch,
            "grp",
        ),
        (
            knn_req(v(q.clone()), 5, "grp +", &[]),
            ErrorCode::SqlParse,
            "",
        ),
        (
            knn_req(v(q.clone()), 5, &"x".repeat(5000), &[]),
            ErrorCode::ValueTooLong,
            "filter",
        ),
        (
            knn_req(KnnQuery::Like(Value::Int(99_999)), 5, "", &[]),
            ErrorCode::InvalidArgument,
            "99999",
        ),
        (
            knn_req(KnnQuery::Like(Value::Text("a".into())), 5, "", &[]),
            ErrorCode::TypeMismatch,
            "",
        ),
    ];
    for (req, code, needle) in cases {
        let what = format!("{req:?}").chars().take(200).collect::<String>();
        let e = knn(&mut c, req).unwrap_err().server();
        assert_eq!(e.code, code, "{what}: {e}");
        assert!(e.message.contains(needle), "{what}: {e} lacks {needle:?}");
    }
    // A zero vector is refused by an upsert into a cosine-indexed column, naming row and
    // column; nothing of the batch applied.
    let e = c
        .upsert(
            "items",
            &["id", "emb"],
            vec![
                row(500, &q)[..2].to_vec(),
                vec![Value::Int(501), Value::Vector(vec![0.0; DIM].into())],
            ],
        )
        .unwrap_err()
        .server();
    assert_eq!(e.code, ErrorCode::BadVector, "{e}");
    assert_eq!((e.row, e.column.as_deref()), (Some(1), Some("emb")), "{e}");
    assert!(c.get("items", vec![Value::Int(500)]).unwrap().rows[0].is_none());
    // DDL errors through the server: unknown metric, non-vector column, unknown table.
    for (sql, code) in [
        (
            "CREATE INDEX i2 ON items USING hnsw (emb) WITH (metric = 'hamming')",
            ErrorCode::InvalidArgument,
        ),
        (
            "CREATE INDEX i2 ON items USING hnsw (grp)",
            ErrorCode::TypeMismatch,
        ),
        (
            "CREATE INDEX i2 ON nope USING hnsw (emb)",
            ErrorCode::UnknownTable,
        ),
        ("DROP INDEX nope", ErrorCode::UnknownIndex),
    ] {
        let e = c.sql(sql).unwrap_err().server();
        assert_eq!(e.code, code, "{sql}: {e}");
    }
    // The server still serves.
    let r = knn(&mut c, knn_req(KnnQuery::Vector(q), 5, "", &["id"])).unwrap();
    assert_eq!(r.rows.len(), 5);
    c.sql("DROP INDEX items_emb").unwrap();
    let e = knn(
        &mut c,
        knn_req(KnnQuery::Vector(random_vector(&mut rng)), 5, "", &[]),
    )
    .unwrap_err()
    .server();
    assert_eq!(e.code, ErrorCode::UnknownIndex);
}

#[test]
fn the_readme_vector_walkthrough_runs_as_written() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let a = server.addr_string();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut outputs = Vec::new();
    for line in readme_block(&readme, "Vectors and nearest-neighbour search") {
        let args = shell_words(line.strip_prefix("tarn ").expect("a tarn command"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_tarn(&a, &args);
        assert!(
            out.status.success(),
            "{line}: {}\n{}",
            out.stdout,
            out.stderr
        );
        outputs.push(out.stdout);
    }
    // The nearest by cosine to [0.15, 0.85, 0.05] are 1 and 2; like 1 in stock under 20: 1 only.
    // The table: a header, a rule, one line per row (`distance | id | …`), a count line.
    let first = &outputs[3];
    let ids: Vec<&str> = first
        .lines()
        .skip(2)
        .filter_map(|l| l.split('|').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(ids, ["1", "2"], "knn output:\n{first}");
    let json: serde_json::Value =
        serde_json::from_str(outputs[4].trim()).unwrap_or_else(|e| panic!("{e}: {}", outputs[4]));
    let rows = json.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 1, "{json}");
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["distance"], 0.0);
    assert!(outputs[5].contains("products_emb"), "{}", outputs[5]);
}
