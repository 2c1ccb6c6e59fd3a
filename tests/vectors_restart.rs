//! The referee of vector-index persistence (issue 8, "identical results before and after
//! restart and after kill -9"): a history that goes through every path an HNSW graph can take
//! (CREATE INDEX over existing rows, a build interleaved with upserts, updates and deletes, a
//! tombstone rebuild, checkpoints taken mid-history), then graph searches at a small `ef` whose
//! answers are visibly approximate, compared bit for bit (ids, distances and the work done)
//! across kill -9 with a full log replay, a graceful stop, and a kill -9 after checkpoints.
//!
//! A graph rebuilt from the rows at start-up is a different graph: its approximate answers
//! differ, and this test fails. Only a graph that is a pure function of the log passes.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_net::{IndexStats, KnnQuery, KnnReply, KnnRequest};
use tarn_vectors::{HNSW_REBUILD_TOMBSTONE_PERCENT, PLANNER_EXACT_ROWS_PER_EF};

const DIM: usize = 16;
/// Query-time `ef` (and the index's `ef_search`): small, so graph answers miss some of the
/// true nearest neighbours and any change of the graph shows in them.
const EF: u32 = 10;
const K: u32 = 10;
/// Unfiltered queries, and queries per filter.
const UNFILTERED: usize = 100;
const PER_FILTER: usize = 30;
/// Rows written before CREATE INDEX: 5,000 per shard, so `grp < 40` (~2,000 per shard) is
/// above the planner's exact-scan bound of 64 · max(ef, k) = 640 and goes through the graph,
/// while `grp < 2` (~100) is scanned exactly; and enough for the build to outlast several
/// write rounds.
const INITIAL_ROWS: i64 = 10_000;
/// Filters whose answers are compared, with the predicate brute force applies.
const FILTERS: [(&str, i64); 2] = [("grp < 40", 40), ("grp < 2", 2)];
/// Bound of every wait for background index work.
const QUIET_DEADLINE: Duration = Duration::from_secs(120);
/// Rows upserted per request.
const BATCH: usize = 500;

fn row(id: i64, v: &[f32]) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Vector(v.to_vec().into()),
        Value::Int(id % 100),
        Value::Text(format!("t{}", id % 7)),
    ]
}

fn random_vector(rng: &mut StdRng) -> Vec<f32> {
    (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Upserts a fresh random vector for every id of `ids` (new rows or updates), recording it in
/// `rows`.
fn upsert_ids(c: &mut Conn, rng: &mut StdRng, rows: &mut BTreeMap<i64, Vec<f32>>, ids: &[i64]) {
    for chunk in ids.chunks(BATCH) {
        let batch: Vec<Vec<Value>> = chunk
            .iter()
            .map(|&id| {
                let v = random_vector(rng);
                let r = row(id, &v);
                rows.insert(id, v);
                r
            })
            .collect();
        c.upsert("items", &["id", "emb", "grp", "tag"], batch)
            .unwrap();
    }
}

fn delete_ids(c: &mut Conn, rows: &mut BTreeMap<i64, Vec<f32>>, ids: &[i64]) {
    for chunk in ids.chunks(BATCH) {
        c.delete("items", chunk.iter().copied().map(Value::Int).collect())
            .unwrap();
        for id in chunk {
            rows.remove(id);
        }
    }
}

/// `n` ids of live rows, chosen at random (distinct).
fn some_live(rng: &mut StdRng, rows: &BTreeMap<i64, Vec<f32>>, n: usize) -> Vec<i64> {
    let live: Vec<i64> = rows.keys().copied().collect();
    let mut picked = std::collections::BTreeSet::new();
    while picked.len() < n.min(live.len()) {
        picked.insert(live[rng.random_range(0..live.len())]);
    }
    picked.into_iter().collect()
}

fn knn(c: &mut Conn, q: &[f32], filter: &str) -> KnnReply {
    let req = KnnRequest {
        index: "items_emb".into(),
        query: KnnQuery::Vector(q.to_vec()),
        k: K,
        ef: Some(EF),
        filter: filter.into(),
        columns: vec!["id".into()],
    };
    match c.call(&Request::Knn(req)).unwrap() {
        Response::Knn(r) => r,
        o => panic!("unexpected reply {o:?}"),
    }
}

/// Ids of the `k` nearest rows with `grp < grp_below`, by L2 (ties by id).
fn brute(rows: &BTreeMap<i64, Vec<f32>>, q: &[f32], grp_below: i64) -> Vec<i64> {
    let mut all: Vec<(f32, i64)> = rows
        .iter()
        .filter(|(id, _)| **id % 100 < grp_below)
        .map(|(&id, v)| (l2(q, v), id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(K as usize).map(|x| x.1).collect()
}

/// One query's answer as compared across restarts: ids with the bits of their distances, and
/// the distances the search computed (the same graph walked the same way computes the same).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    what: String,
    rows: Vec<(i64, u64)>,
    work: u64,
}

fn answer(what: String, r: &KnnReply) -> Answer {
    Answer {
        what,
        rows: knn_ids(r)
            .into_iter()
            .zip(r.rows.iter().map(|row| u64::from(row.distance.to_bits())))
            .collect(),
        work: r.distances,
    }
}

/// The fixed query set: unfiltered, then each filter; a few through SQL.
struct Queries {
    vectors: Vec<Vec<f32>>,
}

impl Queries {
    fn new(rng: &mut StdRng) -> Queries {
        let n = UNFILTERED.max(PER_FILTER);
        Queries {
            vectors: (0..n).map(|_| random_vector(rng)).collect(),
        }
    }

    fn run(&self, c: &mut Conn) -> Vec<Answer> {
        let mut out = Vec::new();
        for (i, q) in self.vectors.iter().take(UNFILTERED).enumerate() {
            out.push(answer(format!("unfiltered query {i}"), &knn(c, q, "")));
        }
        for (filter, _) in FILTERS {
            for (i, q) in self.vectors.iter().take(PER_FILTER).enumerate() {
                out.push(answer(format!("`{filter}` query {i}"), &knn(c, q, filter)));
            }
        }
        for (i, q) in self.vectors.iter().take(5).enumerate() {
            out.push(sql_answer(c, i, q));
        }
        out
    }
}

/// A kNN SELECT (answered with the index's own `ef_search`, = [`EF`]); the distance column
/// compared by its bits.
fn sql_answer(c: &mut Conn, i: usize, q: &[f32]) -> Answer {
    let lit = format!(
        "[{}]",
        q.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let r = c
        .sql(&format!(
            "SELECT id, emb <-> '{lit}' AS d FROM items ORDER BY emb <-> '{lit}' LIMIT {K}"
        ))
        .unwrap();
    let rows = r
        .rows
        .iter()
        .map(|row| match (&row[0], &row[1]) {
            (Value::Int(id), Value::Double(d)) => (*id, d.to_bits()),
            o => panic!("SQL kNN row {o:?}"),
        })
        .collect();
    Answer {
        what: format!("SQL query {i}"),
        rows,
        work: 0,
    }
}

/// Each shard's part of the index, from STATS.
fn index_parts(c: &mut Conn) -> Vec<IndexStats> {
    let st = c.stats().unwrap();
    let parts: Vec<IndexStats> = st
        .shards
        .iter()
        .flat_map(|s| s.indexes.iter().cloned())
        .collect();
    assert!(parts.iter().all(|p| p.index == "items_emb"), "{parts:?}");
    parts
}

/// Whether a shard's graph is past its tombstone share (a rebuild is due or running): the
/// same test as `HnswIndex::needs_rebuild`.
fn past_tombstone_share(p: &IndexStats) -> bool {
    let nodes = p.rows_indexed + p.tombstones;
    p.tombstones * 100 > HNSW_REBUILD_TOMBSTONE_PERCENT as u64 * nodes
}

/// Waits (bounded) until no index has work left: no pending row, no graph past its tombstone
/// share; then until two consecutive answer sets are equal (work the stats cannot show).
fn wait_quiet(c: &mut Conn, queries: &Queries) -> Vec<Answer> {
    let deadline = Instant::now() + QUIET_DEADLINE;
    loop {
        let parts = index_parts(c);
        if parts
            .iter()
            .all(|p| p.rows_pending == 0 && !past_tombstone_share(p))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "index work did not end: {parts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut last = queries.run(c);
    loop {
        let again = queries.run(c);
        if again == last {
            return again;
        }
        assert!(Instant::now() < deadline, "answers kept changing");
        last = again;
    }
}

/// What must survive a restart besides the answers: live rows, rows in the index.
fn counts(c: &mut Conn) -> (u64, i64) {
    let rows = total_rows(&c.stats().unwrap());
    let r = c.sql("SHOW INDEXES").unwrap();
    let col = r
        .columns
        .iter()
        .position(|c| c.name == "rows_indexed")
        .unwrap();
    let Value::Int(indexed) = r.rows[0][col] else {
        panic!("rows_indexed {:?}", r.rows[0][col])
    };
    (rows, indexed)
}

/// How many answers of each kind (unfiltered, each filter, SQL) are in `answers`.
fn per_kind<'a>(answers: impl Iterator<Item = &'a Answer>) -> String {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for a in answers {
        *n.entry(a.what.rsplit_once(" query").map_or("?", |x| x.0))
            .or_default() += 1;
    }
    n.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Asserts `after` equals `before` query by query, naming how many and the first that changed.
fn assert_same(before: &[Answer], after: &[Answer], when: &str) {
    assert_eq!(before.len(), after.len());
    let pairs = |differ: fn(&Answer, &Answer) -> bool| -> Vec<(&Answer, &Answer)> {
        before
            .iter()
            .zip(after)
            .filter(|(b, a)| differ(b, a))
            .collect()
    };
    let changed = pairs(|b, a| b.rows != a.rows);
    if let Some((b, a)) = changed.first() {
        panic!(
            "graph answers differ {when}: {} of {} queries changed ({}); first: {}\n  before: {:?}\n  after:  {:?}",
            changed.len(),
            before.len(),
            per_kind(changed.iter().map(|c| c.0)),
            b.what,
            b.rows,
            a.rows
        );
    }
    let worked = pairs(|b, a| b.work != a.work);
    if let Some((b, a)) = worked.first() {
        panic!(
            "same answers {when} but a different graph walk: {} queries computed other distance \
             counts; first: {} ({} before, {} after)",
            worked.len(),
            b.what,
            b.work,
            a.work
        );
    }
}

/// Checks the answers are those of the routes meant: the unfiltered and `grp < 40` searches
/// walk the graph (fewer distances than matching rows) and at least one unfiltered answer
/// misses brute force (else an identical result would prove nothing about the graph); the
/// `grp < 2` searches are exact.
fn assert_routes(answers: &[Answer], queries: &Queries, rows: &BTreeMap<i64, Vec<f32>>) {
    let live = rows.len() as u64;
    let unfiltered = &answers[..UNFILTERED];
    let approximate = unfiltered
        .iter()
        .zip(&queries.vectors)
        .filter(|(a, q)| a.rows.iter().map(|r| r.0).collect::<Vec<_>>() != brute(rows, q, 100))
        .count();
    assert!(
        approximate >= 1,
        "every unfiltered graph answer equals brute force: the test could not see a changed graph"
    );
    assert!(
        unfiltered.iter().all(|a| a.work < live / 2),
        "unfiltered: not graph searches"
    );
    let grp40 = &answers[UNFILTERED..UNFILTERED + PER_FILTER];
    let matching40 = rows.keys().filter(|id| *id % 100 < 40).count() as u64;
    // Two shards of about equal share: each holds well above the exact-scan bound.
    let bound = (PLANNER_EXACT_ROWS_PER_EF * EF.max(K) as usize) as u64;
    assert!(
        matching40 / 2 > bound * 5 / 4,
        "`grp < 40` matches {matching40} rows: too few for a graph plan (bound {bound} a shard)"
    );
    assert!(
        grp40.iter().all(|a| a.work < matching40),
        "`grp < 40`: not graph searches ({:?})",
        grp40.iter().map(|a| a.work).collect::<Vec<_>>()
    );
    let grp2 = &answers[UNFILTERED + PER_FILTER..UNFILTERED + 2 * PER_FILTER];
    for (a, q) in grp2.iter().zip(&queries.vectors) {
        assert_eq!(
            a.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            brute(rows, q, 2)
        );
    }
    eprintln!("{approximate} of {UNFILTERED} unfiltered graph answers differ from brute force");
}

/// Sets `--checkpoint-mib` of the next start.
fn set_checkpoint_mib(server: &mut TarnServer, mib: u64) {
    let args = &mut server.opts_mut().extra_args;
    let at = args.iter().position(|a| a == "--checkpoint-mib").unwrap();
    args[at + 1] = mib.to_string();
}

/// Restarts `server` (after `kill9` when `kill`, else a graceful stop) and asserts the
/// answers, row count and indexed rows are as before.
fn restart_and_compare(
    server: &mut TarnServer,
    kill: bool,
    queries: &Queries,
    before: &[Answer],
    counts_before: (u64, i64),
    when: &str,
) {
    if kill {
        server.kill9();
    } else {
        server.stop_ok();
    }
    let t = Instant::now();
    server.restart_ok();
    let mut c = server.client();
    let after = wait_quiet(&mut c, queries);
    eprintln!("{when}: ready and quiet in {:?}", t.elapsed());
    assert_eq!(counts(&mut c), counts_before, "rows / rows_indexed {when}");
    assert_same(before, &after, when);
}

/// The history up to a quiet, rebuilt index: rows, CREATE INDEX, a build interleaved with
/// writes, then updates and deletes past the tombstone share. Returns the live rows and how
/// many rows that last phase replaced or deleted (each leaves a tombstone until a rebuild).
fn build_history(c: &mut Conn, rng: &mut StdRng) -> (BTreeMap<i64, Vec<f32>>, u64) {
    c.sql(&format!(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, emb VECTOR({DIM}), grp BIGINT, tag TEXT)"
    ))
    .unwrap();
    let mut rows = BTreeMap::new();
    let first: Vec<i64> = (0..INITIAL_ROWS).collect();
    upsert_ids(c, rng, &mut rows, &first);
    c.sql(&format!(
        "CREATE INDEX items_emb ON items USING hnsw (emb) WITH (m = 8, ef_construction = 128, ef_search = {EF})"
    ))
    .unwrap();
    // While the build runs: new rows, new vectors for old ones, deletes, same connection, in
    // small rounds so build steps fall between them; rows pending just before a round prove
    // that round's writes were sent during the build. (On main a write sent during the build
    // is acknowledged only about when the build ends: the first round takes ~1 s.)
    let mut next_id = INITIAL_ROWS;
    let mut pending_seen = Vec::new();
    for _ in 0..50 {
        pending_seen.push(index_parts(c).iter().map(|p| p.rows_pending).sum::<u64>());
        let fresh: Vec<i64> = (next_id..next_id + 20).collect();
        next_id += 20;
        upsert_ids(c, rng, &mut rows, &fresh);
        let old = some_live(rng, &rows, 10);
        upsert_ids(c, rng, &mut rows, &old);
        let gone = some_live(rng, &rows, 12);
        delete_ids(c, &mut rows, &gone);
    }
    assert!(
        pending_seen.iter().any(|&p| p > 0),
        "the build never overlapped the writes: {pending_seen:?}"
    );
    // Past the tombstone share: rewrite 30 % of the rows, delete 5 %.
    let rewrite = some_live(rng, &rows, rows.len() * 30 / 100);
    upsert_ids(c, rng, &mut rows, &rewrite);
    let gone = some_live(rng, &rows, rows.len() * 5 / 100);
    delete_ids(c, &mut rows, &gone);
    (rows, (rewrite.len() + gone.len()) as u64)
}

/// About 2 MiB of log per shard (~22,000 row writes of ~100 bytes: updates of live rows, new
/// rows, deletes): past a `--checkpoint-mib 1` interval, so checkpoints are taken in the middle
/// of this history (6 rounds of 3,500 rows were measured not to be enough).
fn write_megabytes(c: &mut Conn, rng: &mut StdRng, rows: &mut BTreeMap<i64, Vec<f32>>) {
    let mut next_id = rows.keys().last().unwrap() + 1;
    for _ in 0..10 {
        let old = some_live(rng, rows, 4000);
        upsert_ids(c, rng, rows, &old);
        let fresh: Vec<i64> = (next_id..next_id + 500).collect();
        next_id += 500;
        upsert_ids(c, rng, rows, &fresh);
        let gone = some_live(rng, rows, 400);
        delete_ids(c, rows, &gone);
    }
}

#[test]
fn graph_results_are_identical_after_restart_and_kill_9() {
    let mut server = TarnServer::start_ok(
        ServerOpts::shards(2)
            .durability("sync")
            .args(&["--checkpoint-mib", "100000"]),
    );
    let mut c = server.client();
    let mut rng = StdRng::seed_from_u64(81);
    let (mut rows, replaced) = build_history(&mut c, &mut rng);
    let queries = Queries::new(&mut rng);
    let before = wait_quiet(&mut c, &queries);
    // Without a rebuild every row replaced or deleted after the build is still a tombstone.
    let parts = index_parts(&mut c);
    assert!(
        parts.iter().map(|p| p.tombstones).sum::<u64>() < replaced,
        "no tombstone rebuild ran ({replaced} rows replaced or deleted): {parts:?}"
    );
    assert_routes(&before, &queries, &rows);
    let counts_before = counts(&mut c);
    assert_eq!(counts_before, (rows.len() as u64, rows.len() as i64));
    for s in 0..2 {
        assert!(
            checkpoints(server.data_dir(), s).is_empty(),
            "shard {s} checkpointed"
        );
    }

    // (a) kill -9 with no checkpoint: recovery replays the whole log. (b) A graceful stop:
    // the final checkpoint holds the state. (c) Then a small checkpoint interval, MiBs of
    // writes, checkpoints taken mid-history.
    for (kill, checkpoint_mib, when) in [
        (true, None, "after kill -9 (full log replay)"),
        (false, None, "after a graceful restart"),
        (false, Some(1), "after a restart with --checkpoint-mib 1"),
    ] {
        if let Some(mib) = checkpoint_mib {
            set_checkpoint_mib(&mut server, mib);
        }
        restart_and_compare(&mut server, kill, &queries, &before, counts_before, when);
    }
    let mut c = server.client();
    let newest =
        |server: &TarnServer, s: u32| checkpoints(server.data_dir(), s).last().map(|x| x.0);
    let ckp_before: Vec<Option<u64>> = (0..2).map(|s| newest(&server, s)).collect();
    write_megabytes(&mut c, &mut rng, &mut rows);
    // A short tail after the last checkpoint, so recovery loads one and replays records.
    let old = some_live(&mut rng, &rows, 100);
    upsert_ids(&mut c, &mut rng, &mut rows, &old);
    let gone = some_live(&mut rng, &rows, 40);
    delete_ids(&mut c, &mut rows, &gone);
    let later = wait_quiet(&mut c, &queries);
    let stats = c.stats().unwrap();
    for s in 0..2 {
        let now = newest(&server, s);
        let last = stats
            .shards
            .iter()
            .find(|x| x.shard == s)
            .unwrap()
            .durable_lsn;
        assert!(
            now.is_some() && now > ckp_before[s as usize] && now < Some(last),
            "shard {s}: no checkpoint taken mid-history (newest at LSN {:?}, then {now:?}; log \
             ends at {last})",
            ckp_before[s as usize]
        );
    }
    assert_routes(&later, &queries, &rows);
    let counts_later = counts(&mut c);
    assert_eq!(counts_later, (rows.len() as u64, rows.len() as i64));
    for (kill, when) in [
        (true, "after kill -9 past checkpoints"),
        (false, "after a second graceful restart"),
    ] {
        restart_and_compare(&mut server, kill, &queries, &later, counts_later, when);
    }
}
