//! The server-path measurements, through `tarn_client::Client` on one connection: loading
//! rows, building an index over a loaded table (until `SHOW INDEXES` says no row is pending),
//! and KNN searches one at a time (closed loop) or with a few in flight (pipelined).
//!
//! Latency is each request's own service time from send to reply (hdrhistogram, ns): in a
//! closed loop there is no schedule to omit; in the pipelined run a query's wait behind the
//! others in flight is part of its latency, as it would be for a client.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tarn_client::{Client, KnnQuery, KnnReply, KnnRequest, Request, Response, SqlReply, Value};
use tarn_vectors::RowId;

use super::{Bench, DataArgs, Row, Score, CASES};

/// The one table layout of the benchmark: key, vector, filter attribute.
pub const ID: &str = "id";
pub const EMB: &str = "emb";
pub const ATTR: &str = "attr";

/// How long an index build may take before the run gives up: a 100k × 128 build at
/// ef_construction 200 takes about a minute on one core; this bounds a wedged build.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Pause between two `SHOW INDEXES` polls of a build: the build time's resolution, and small
/// enough a load on the shard (one catalog listing per poll) not to slow the build.
pub const BUILD_POLL: Duration = Duration::from_millis(20);
/// Queries run before each measurement and not counted (caches, branch predictors, the
/// server's first allocations).
pub const WARMUP_QUERIES: usize = 50;

/// `CREATE TABLE name (id BIGINT PRIMARY KEY, emb VECTOR(dim), attr BIGINT)`.
pub fn create_table(c: &mut Client, table: &str, dim: usize) -> Result<(), String> {
    let sql = format!(
        "CREATE TABLE {table} ({ID} BIGINT PRIMARY KEY, {EMB} VECTOR({dim}), {ATTR} BIGINT)"
    );
    c.sql(&sql).map(drop).map_err(|e| format!("{sql}: {e}"))
}

/// `CREATE INDEX index ON table USING hnsw (emb) WITH (metric, m, ef_construction)`.
pub fn create_index(c: &mut Client, index: &str, table: &str, a: &DataArgs) -> Result<(), String> {
    let sql = format!(
        "CREATE INDEX {index} ON {table} USING hnsw ({EMB}) WITH (metric = '{}', m = {}, \
         ef_construction = {})",
        a.metric, a.m, a.ef_construction
    );
    c.sql(&sql).map(drop).map_err(|e| format!("{sql}: {e}"))
}

/// Rows still to be built into `index`, from `SHOW INDEXES`.
pub fn rows_pending(c: &mut Client, index: &str) -> Result<i64, String> {
    let r = c
        .sql("SHOW INDEXES")
        .map_err(|e| format!("SHOW INDEXES: {e}"))?;
    pending_of(&r, index)
}

/// `rows_pending` of `index` in a `SHOW INDEXES` reply.
pub fn pending_of(r: &SqlReply, index: &str) -> Result<i64, String> {
    let col = |name: &str| {
        r.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| format!("SHOW INDEXES has no {name} column"))
    };
    let (name, pending) = (col("name")?, col("rows_pending")?);
    let row = r
        .rows
        .iter()
        .find(|row| row.get(name) == Some(&Value::Text(index.to_string())))
        .ok_or_else(|| format!("SHOW INDEXES does not list {index}"))?;
    match row.get(pending) {
        Some(Value::Int(n)) if *n >= 0 => Ok(*n),
        other => Err(format!("rows_pending of {index} is {other:?}")),
    }
}

/// Waits until `index` has no pending row; the seconds it took.
pub fn wait_built(c: &mut Client, index: &str) -> Result<f64, String> {
    let started = Instant::now();
    loop {
        if rows_pending(c, index)? == 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > BUILD_TIMEOUT {
            return Err(format!(
                "{index}: build not finished after {BUILD_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(BUILD_POLL);
    }
}

/// A load of every base row into a table, `batch` rows per UPSERT, one batch in flight.
#[derive(Clone, Debug)]
pub struct Load {
    pub table: String,
    pub indexed: bool,
    pub rows: usize,
    pub batch: usize,
    pub secs: f64,
    pub batch_p50_ms: f64,
    pub batch_p99_ms: f64,
}

impl Load {
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.secs
    }
}

/// Upserts every row of `b` (id = position) into `table`.
pub fn load(c: &mut Client, table: &str, b: &Bench, batch: usize) -> Result<Load, String> {
    assert!(batch > 0, "batch of zero rows");
    let mut hist = new_hist();
    let started = Instant::now();
    for (chunk_no, chunk) in b.base.chunks(batch).enumerate() {
        let first = chunk_no * batch;
        let rows: Vec<Vec<Value>> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = first + i;
                vec![
                    Value::Int(id as i64),
                    Value::Vector(v.clone().into_boxed_slice()),
                    Value::Int(i64::from(b.attr[id])),
                ]
            })
            .collect();
        let t = Instant::now();
        let applied = c
            .upsert(table, &[ID, EMB, ATTR], rows)
            .map_err(|e| format!("UPSERT into {table} (rows {first}..): {e}"))?;
        hist.saturating_record(t.elapsed().as_nanos() as u64);
        if applied != chunk.len() as u64 {
            return Err(format!(
                "UPSERT into {table}: {applied} of {} rows applied",
                chunk.len()
            ));
        }
    }
    Ok(Load {
        table: table.into(),
        indexed: false,
        rows: b.base.len(),
        batch,
        secs: started.elapsed().as_secs_f64(),
        batch_p50_ms: hist.value_at_quantile(0.50) as f64 / 1e6,
        batch_p99_ms: hist.value_at_quantile(0.99) as f64 / 1e6,
    })
}

/// One search measurement's request shape.
#[derive(Clone, Copy, Debug)]
pub struct Search<'a> {
    pub index: &'a str,
    /// Position in [`CASES`].
    pub case: usize,
    pub ef: usize,
    pub k: usize,
}

impl Search<'_> {
    fn request(&self, q: &[f32]) -> KnnRequest {
        KnnRequest {
            index: self.index.into(),
            query: KnnQuery::Vector(q.to_vec()),
            k: self.k as u32,
            ef: Some(self.ef as u32),
            filter: CASES[self.case].filter_sql(),
            columns: vec![ID.into()],
        }
    }
}

/// The row ids of a reply (its only column is `id`).
fn reply_ids(r: &KnnReply) -> Result<Vec<RowId>, String> {
    r.rows
        .iter()
        .map(|row| match row.values.first() {
            Some(Value::Int(id)) if *id >= 0 => Ok(*id as RowId),
            other => Err(format!("KNN reply row holds {other:?}, not an id")),
        })
        .collect()
}

/// What one measurement accumulates.
struct Tally {
    hist: Histogram<u64>,
    score: Score,
    distances: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            hist: new_hist(),
            score: Score::default(),
            distances: 0,
        }
    }

    fn add(&mut self, s: &Search, truth: &[RowId], r: &KnnReply, ns: u64) -> Result<(), String> {
        self.hist.saturating_record(ns);
        self.score.add(truth, &reply_ids(r)?, s.k);
        self.distances += r.distances;
        Ok(())
    }

    fn row(&self, system: &str, s: &Search, queries: usize, secs: f64) -> Row {
        Row {
            system: system.into(),
            case: CASES[s.case].name.into(),
            ef: s.ef,
            recall: self.score.recall(),
            qps: queries as f64 / secs,
            p50_us: self.hist.value_at_quantile(0.50) as f64 / 1e3,
            p99_us: self.hist.value_at_quantile(0.99) as f64 / 1e3,
            short: self.score.short,
            distances: Some(self.distances as f64 / queries.max(1) as f64),
        }
    }
}

fn knn(c: &mut Client, req: &KnnRequest) -> Result<KnnReply, String> {
    c.knn(req).map_err(|e| format!("KNN on {}: {e}", req.index))
}

/// Every query once, one at a time, after [`WARMUP_QUERIES`] uncounted ones.
pub fn search_closed(c: &mut Client, s: &Search, b: &Bench, system: &str) -> Result<Row, String> {
    for q in b.queries.iter().take(WARMUP_QUERIES) {
        knn(c, &s.request(q))?;
    }
    let mut tally = Tally::new();
    let started = Instant::now();
    for (q, truth) in b.queries.iter().zip(&b.truth[s.case]) {
        let req = s.request(q);
        let t = Instant::now();
        let r = knn(c, &req)?;
        tally.add(s, truth, &r, t.elapsed().as_nanos() as u64)?;
    }
    Ok(tally.row(system, s, b.queries.len(), started.elapsed().as_secs_f64()))
}

/// Every query once with `depth` in flight on the one connection (a new one is sent as each
/// reply arrives), after [`WARMUP_QUERIES`] uncounted closed-loop ones.
pub fn search_pipelined(
    c: &mut Client,
    s: &Search,
    b: &Bench,
    depth: usize,
    system: &str,
) -> Result<Row, String> {
    assert!(depth > 0, "pipeline depth of zero");
    for q in b.queries.iter().take(WARMUP_QUERIES) {
        knn(c, &s.request(q))?;
    }
    let mut tally = Tally::new();
    // request id -> (query position, send time)
    let mut in_flight: HashMap<u64, (usize, Instant)> = HashMap::new();
    let (mut next, mut done) = (0usize, 0usize);
    let started = Instant::now();
    while done < b.queries.len() {
        while next < b.queries.len() && in_flight.len() < depth {
            let req = Request::Knn(s.request(&b.queries[next]));
            let id = c.send(&req).map_err(|e| format!("KNN send: {e}"))?;
            in_flight.insert(id, (next, Instant::now()));
            next += 1;
        }
        let (id, resp) = c.recv().map_err(|e| format!("KNN recv: {e}"))?;
        let (qi, sent) = in_flight
            .remove(&id)
            .ok_or_else(|| format!("a reply to request {id}, which is not in flight"))?;
        match resp {
            Response::Knn(r) => tally.add(
                s,
                &b.truth[s.case][qi],
                &r,
                sent.elapsed().as_nanos() as u64,
            )?,
            other => return Err(format!("KNN query {qi}: {other:?}")),
        }
        done += 1;
    }
    assert!(in_flight.is_empty(), "every request answered");
    Ok(tally.row(system, s, b.queries.len(), started.elapsed().as_secs_f64()))
}

fn new_hist() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_client::{Column, ColumnType, KnnRow};

    fn col(name: &str, ty: ColumnType) -> Column {
        Column {
            name: name.into(),
            ty,
        }
    }

    #[test]
    fn pending_is_read_from_the_named_index_row_or_the_error_says_what_is_missing() {
        let r = SqlReply {
            message: "2 index(es)".into(),
            columns: vec![
                col("name", ColumnType::Text),
                col("rows_pending", ColumnType::BigInt),
            ],
            rows: vec![
                vec![Value::Text("a".into()), Value::Int(7)],
                vec![Value::Text("b".into()), Value::Int(0)],
            ],
        };
        assert_eq!(pending_of(&r, "a"), Ok(7));
        assert_eq!(pending_of(&r, "b"), Ok(0));
        assert!(pending_of(&r, "c").unwrap_err().contains("does not list c"));
        let no_col = SqlReply {
            columns: vec![col("name", ColumnType::Text)],
            ..r
        };
        assert!(pending_of(&no_col, "a")
            .unwrap_err()
            .contains("rows_pending"));
    }

    #[test]
    fn a_request_carries_the_case_filter_and_asks_for_ids_only() {
        let s = Search {
            index: "ix",
            case: 1,
            ef: 32,
            k: 10,
        };
        let req = s.request(&[1.0, 2.0]);
        assert_eq!(req.filter, "attr < 100");
        assert_eq!(req.columns, vec![ID.to_string()]);
        assert_eq!((req.k, req.ef), (10, Some(32)));
        let reply = |v: Value| KnnReply {
            columns: vec![col(ID, ColumnType::BigInt)],
            rows: vec![KnnRow {
                distance: 0.5,
                values: vec![v],
            }],
            distances: 3,
        };
        assert_eq!(reply_ids(&reply(Value::Int(4))), Ok(vec![4]));
        assert!(reply_ids(&reply(Value::Text("x".into()))).is_err());
    }
}
