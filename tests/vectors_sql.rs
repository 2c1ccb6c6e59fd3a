//! kNN in SQL through a real server: `SELECT … ORDER BY col <op> <vector> LIMIT k` gives the
//! KNN opcode's answer for the same query and filter, with each operator served by the index
//! of its metric; the select list, the literal forms, fewer rows than LIMIT, reads by key
//! unchanged, and every refusal with its error.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_net::{KnnQuery, KnnReply, KnnRequest};

const DIM: usize = 8;
const ROWS: i64 = 1500;

/// One table per metric, each with the one index of its metric; the operator that uses it.
const TABLES: [(&str, &str, &str); 3] = [
    ("items_l2", "l2", "<->"),
    ("items_cos", "cosine", "<=>"),
    ("items_ip", "ip", "<#>"),
];

fn random_vector(rng: &mut StdRng) -> Vec<f32> {
    (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `[x,y,…]`: f32 `Display` is the shortest text that reads back as the same f32.
fn text(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// Creates the three tables and their indexes and writes the same rows into each; waits for
/// the builds.
fn setup(c: &mut Conn, rng: &mut StdRng) {
    for (table, metric, _) in TABLES {
        c.sql(&format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, emb VECTOR({DIM}), grp BIGINT, tag TEXT); \
             CREATE INDEX {table}_emb ON {table} USING hnsw (emb) WITH (metric = '{metric}')"
        ))
        .unwrap();
    }
    let ids: Vec<i64> = (0..ROWS).collect();
    for chunk in ids.chunks(500) {
        let rows: Vec<Vec<Value>> = chunk
            .iter()
            .map(|&id| {
                vec![
                    Value::Int(id),
                    Value::Vector(random_vector(rng).into()),
                    Value::Int(id % 10),
                    Value::Text(format!("t{}", id % 7)),
                ]
            })
            .collect();
        for (table, _, _) in TABLES {
            c.upsert(table, &["id", "emb", "grp", "tag"], rows.clone())
                .unwrap();
        }
    }
    wait_built(c);
}

/// Waits (bounded) until SHOW INDEXES reports no row pending.
fn wait_built(c: &mut Conn) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let r = c.sql("SHOW INDEXES").unwrap();
        let col = r.columns.iter().position(|c| c.name == "rows_pending");
        let pending: i64 = r
            .rows
            .iter()
            .map(|row| match row[col.expect("rows_pending")] {
                Value::Int(n) => n,
                _ => panic!("rows_pending"),
            })
            .sum();
        if pending == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{pending} pending");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn knn(c: &mut Conn, index: &str, q: &[f32], k: u32, filter: &str) -> KnnReply {
    let req = KnnRequest {
        index: index.into(),
        query: KnnQuery::Vector(q.to_vec()),
        k,
        ef: None,
        filter: filter.into(),
        columns: vec!["id".into()],
    };
    match c.call(&Request::Knn(req)).unwrap() {
        Response::Knn(r) => r,
        o => panic!("unexpected {o:?}"),
    }
}

/// `(id, distance)` of a SQL result whose first two columns are the id and the distance.
fn id_distance(rows: &[Vec<Value>]) -> Vec<(i64, f64)> {
    rows.iter()
        .map(|r| match (&r[0], &r[1]) {
            (Value::Int(id), Value::Double(d)) => (*id, *d),
            other => panic!("row {other:?}"),
        })
        .collect()
}

#[test]
fn sql_knn_equals_the_knn_opcode_for_each_operator_and_filter() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(11);
    setup(&mut c, &mut rng);
    for (table, _, op) in TABLES {
        for filter in [
            "",
            "grp < 3",
            "grp IN (1, 4) AND tag <> 't2'",
            "NOT (grp = 0) OR id < 10",
        ] {
            let q = random_vector(&mut rng);
            let v = text(&q);
            let where_clause = if filter.is_empty() {
                String::new()
            } else {
                format!("WHERE {filter}")
            };
            let sql = format!(
                "SELECT id, emb {op} '{v}' AS d FROM {table} {where_clause} ORDER BY emb {op} '{v}' LIMIT 20"
            );
            let got = c.sql(&sql).unwrap();
            assert_eq!(got.columns[0].name, "id");
            assert_eq!(got.columns[1].name, "d");
            assert_eq!(got.columns[1].ty, ColumnType::Double);
            let want = knn(&mut c, &format!("{table}_emb"), &q, 20, filter);
            let want: Vec<(i64, f64)> = want
                .rows
                .iter()
                .map(|r| match r.values[0] {
                    Value::Int(id) => (id, f64::from(r.distance)),
                    ref o => panic!("{o:?}"),
                })
                .collect();
            assert_eq!(want.len(), 20, "{sql}");
            assert_eq!(id_distance(&got.rows), want, "{sql}");
            assert_eq!(got.message, "20 row(s)");
        }
    }
}

#[test]
fn select_list_literal_forms_and_fewer_rows_than_limit() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(12);
    setup(&mut c, &mut rng);
    let q = random_vector(&mut rng);
    let v = text(&q);
    let base = c
        .sql(&format!(
            "SELECT id, emb <-> '{v}' FROM items_l2 ORDER BY emb <-> '{v}' LIMIT 7"
        ))
        .unwrap();
    assert_eq!(base.columns[1].name, "distance");
    let base = id_distance(&base.rows);
    assert_eq!(base.len(), 7);
    assert!(base.windows(2).all(|w| w[0].1 <= w[1].1), "nearest first");
    // The same query spelled with ARRAY[…], a ::vector cast, CAST(… AS vector(n)) and the
    // vector on the left.
    let array = format!("ARRAY[{}]", &v[1..v.len() - 1]);
    for vector in [
        array.clone(),
        format!("'{v}'::vector"),
        format!("CAST('{v}' AS vector({DIM}))"),
        format!("{array}::vector"),
    ] {
        let sql = format!(
            "SELECT id, emb <-> {vector} AS distance FROM items_l2 ORDER BY {vector} <-> emb LIMIT 7"
        );
        let r = c.sql(&sql).unwrap();
        assert_eq!(id_distance(&r.rows), base, "{sql}");
    }
    // `*` and the distance anywhere in the list: columns in select-list order, with types.
    let r = c
        .sql(&format!(
            "SELECT tag, emb <-> '{v}' AS d, * FROM items_l2 WHERE grp = 3 ORDER BY emb <-> '{v}' LIMIT 3"
        ));
    let e = r.unwrap_err().server();
    assert_eq!(e.code, ErrorCode::DuplicateColumn, "{e}");
    let r = c
        .sql(&format!(
            "SELECT emb <-> '{v}' AS d, * FROM items_l2 WHERE grp = 3 ORDER BY emb <-> '{v}' LIMIT 3"
        ))
        .unwrap();
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["d", "id", "emb", "grp", "tag"]);
    assert_eq!(r.columns[2].ty, ColumnType::Vector(DIM as u32));
    assert_eq!(r.rows.len(), 3);
    for row in &r.rows {
        let (Value::Double(d), Value::Vector(emb), Value::Int(grp)) = (&row[0], &row[2], &row[3])
        else {
            panic!("{row:?}")
        };
        assert_eq!(*grp, 3);
        let l2 = emb
            .iter()
            .zip(&q)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        assert!((*d as f32 - l2).abs() <= 1e-5 * (1.0 + l2), "{d} vs {l2}");
    }
    // Only the distance.
    let r = c
        .sql(&format!(
            "SELECT emb <-> '{v}' FROM items_l2 ORDER BY emb <-> '{v}' LIMIT 7"
        ))
        .unwrap();
    assert_eq!(r.columns.len(), 1);
    let ds: Vec<f64> = base.iter().map(|x| x.1).collect();
    assert_eq!(
        r.rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        ds.into_iter().map(Value::Double).collect::<Vec<_>>()
    );
    // Fewer matching rows than LIMIT: every match, no error.
    for (table, _, op) in TABLES {
        let r = c
            .sql(&format!(
                "SELECT id FROM {table} WHERE id < 5 ORDER BY emb {op} '{v}' LIMIT 100"
            ))
            .unwrap();
        let mut ids: Vec<Value> = r.rows.iter().map(|r| r[0].clone()).collect();
        ids.sort_by_key(|v| match v {
            Value::Int(i) => *i,
            _ => panic!("id"),
        });
        assert_eq!(ids, (0..5).map(Value::Int).collect::<Vec<_>>(), "{table}");
    }
    // Reads by key are unchanged.
    let r = c
        .sql("SELECT id, grp FROM items_l2 WHERE id IN (3, 4)")
        .unwrap();
    assert_eq!(
        r.rows,
        vec![
            vec![Value::Int(3), Value::Int(3)],
            vec![Value::Int(4), Value::Int(4)]
        ]
    );
}

#[test]
fn refused_knn_queries_get_clear_errors() {
    let server = TarnServer::start_ok(ServerOpts::shards(2));
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(13);
    setup(&mut c, &mut rng);
    let v = text(&random_vector(&mut rng));
    let zero = text(&[0.0; DIM]);
    let short = text(&[0.5; DIM - 1]);
    let order = |op: &str| format!("ORDER BY emb {op} '{v}'");
    let cases: Vec<(String, ErrorCode, &str)> = vec![
        (
            format!("SELECT id FROM items_l2 {} LIMIT 5", order("<=>")),
            ErrorCode::Unsupported,
            "no hnsw index on items_l2.emb with metric cosine",
        ),
        (
            format!("SELECT id FROM items_cos {} LIMIT 5", order("<#>")),
            ErrorCode::Unsupported,
            "WITH (metric = 'ip')",
        ),
        (
            format!("SELECT id FROM items_l2 {} DESC LIMIT 5", order("<->")),
            ErrorCode::Unsupported,
            "DESC",
        ),
        (
            format!("SELECT id FROM items_l2 {}", order("<->")),
            ErrorCode::InvalidArgument,
            "needs LIMIT",
        ),
        (
            format!("SELECT id FROM items_l2 {} LIMIT 0", order("<->")),
            ErrorCode::InvalidArgument,
            "k must be at least 1",
        ),
        (
            format!("SELECT id FROM items_l2 {} LIMIT 1001", order("<->")),
            ErrorCode::LimitExceeded,
            "k is 1001, the limit is 1000",
        ),
        (
            format!("SELECT id FROM items_l2 {} LIMIT 5 OFFSET 5", order("<->")),
            ErrorCode::Unsupported,
            "OFFSET",
        ),
        (
            format!(
                "SELECT id, emb <=> '{v}' FROM items_l2 {} LIMIT 5",
                order("<->")
            ),
            ErrorCode::Unsupported,
            "ORDER BY distance only",
        ),
        (
            format!("SELECT id FROM items_l2 ORDER BY emb <-> '{short}' LIMIT 5"),
            ErrorCode::BadVector,
            "7 dimensions, expected 8",
        ),
        (
            format!("SELECT id FROM items_cos ORDER BY emb <=> '{zero}' LIMIT 5"),
            ErrorCode::BadVector,
            "zero vector",
        ),
        (
            format!(
                "SELECT id FROM items_l2 WHERE nope = 1 {} LIMIT 5",
                order("<->")
            ),
            ErrorCode::UnknownColumn,
            "nope",
        ),
        (
            format!(
                "SELECT id FROM items_l2 WHERE grp = 'x' {} LIMIT 5",
                order("<->")
            ),
            ErrorCode::TypeMismatch,
            "grp",
        ),
        (
            format!("SELECT nope FROM items_l2 {} LIMIT 5", order("<->")),
            ErrorCode::UnknownColumn,
            "nope",
        ),
        (
            format!("SELECT id FROM nope {} LIMIT 5", order("<->")),
            ErrorCode::UnknownTable,
            "nope",
        ),
        (
            format!("SELECT id FROM items_l2 ORDER BY grp <-> '{v}' LIMIT 5"),
            ErrorCode::TypeMismatch,
            "expected VECTOR",
        ),
    ];
    for (sql, code, needle) in cases {
        let e = c.sql(&sql).unwrap_err().server();
        assert_eq!(e.code, code, "{sql}: {e}");
        assert!(e.message.contains(needle), "{sql}: {e} lacks {needle:?}");
    }
    // After dropping the index, the query is refused, not answered by a scan.
    c.sql("DROP INDEX items_l2_emb").unwrap();
    let e = c
        .sql(&format!("SELECT id FROM items_l2 {} LIMIT 5", order("<->")))
        .unwrap_err()
        .server();
    assert_eq!(e.code, ErrorCode::Unsupported, "{e}");
    assert!(
        e.message
            .contains("CREATE INDEX <name> ON items_l2 USING hnsw (emb) WITH (metric = 'l2')"),
        "{e}"
    );
}
