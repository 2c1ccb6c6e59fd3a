//! Restart of a real `tarnd --shards 1` with a saved HNSW graph (issue 8: "graph dump with the
//! checkpoint + replay of the log tail, or a rebuild from the rows, whichever is faster —
//! measure both; restart time must not grow with the log"). `hnsw_persist` measures the same
//! in-process; this goes through the server: the checkpoint written by a graceful stop, the
//! start-up that loads it, and a kill -9 whose log tail (updates and their index steps) is
//! replayed on top of it.
//!
//! `bench/run.sh index-restart` = `cargo build --release --bin tarnd && cargo build --release
//! -p tarn-bench --bin index_restart && target/release/index_restart --server-cpu 0
//! --client-cpu 1` (defaults: 100k × 128 f32, 100 clusters, m 16, ef_construction 64, 10k
//! tail updates, 200 queries, k 10 at ef 64, sync durability). Smoke run:
//! `target/release/index_restart --rows 5000 --tail-rows 500 --queries 20 --out /tmp`.
//!
//! What it does, in order:
//! 1. Starts tarnd ([`tarn_bench::ann::server`]), loads every row into an unindexed table,
//!    then `CREATE INDEX` and waits until STATS shows no row pending and no tombstone rebuild
//!    due: the build from the rows, which every restart paid before graphs were saved. Runs
//!    the queries (ids and distances kept, bit for bit).
//! 2. SIGTERM: the time until tarnd exits (it takes its final checkpoint, graph included), the
//!    checkpoint's size. The data directory is kept.
//! 3. Restarts on the same data: spawn → listening, spawn → first KNN answer, `rows_pending`
//!    at once (0 = no rebuild), the queries again: every answer must be identical.
//! 4. Upserts `--tail-rows` updates of existing ids, waits until they are in the graph, runs
//!    the queries, kills tarnd with SIGKILL and restarts: the time to listen with the log tail
//!    replayed (checkpoint load + tail, index steps included), the tail's records (tarnd's
//!    `replayed=`) and bytes, and the answers compared with those before the kill.
//! 5. Writes `bench/results/index-restart-<date>.md` (or into `--out`).
//!
//! Keep `--server-cpu 0`: glommio pins the one executor to CPU 0 whatever taskset allows.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tarn_bench::ann::served::{self, ID};
use tarn_bench::ann::server::{Tarnd, TarndOpts};
use tarn_bench::ann::{Bench, DataArgs, Score};
use tarn_bench::machine;
use tarn_bench::vecdata::Data;
use tarn_client::{Client, ClientOptions, KnnQuery, KnnRequest, Value};
use tarn_net::IndexStats;
use tarn_vectors::{Metric, RowId, HNSW_REBUILD_TOMBSTONE_PERCENT};

/// The socket timeout of the benchmark's connection: longer than any one batch or query,
/// short enough that a wedged server ends the run with an error instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a SIGTERM'd tarnd may take to write its final checkpoint and exit before the run
/// gives up (and SIGKILLs it): the checkpoint of 1M × 128 rows and their graph is ~1.2 GB
/// written in ~1 MiB steps, well under a minute; this bounds a wedged shutdown.
const GRACEFUL_STOP_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Pause between two checks whether a signalled tarnd has exited: the resolution of the stop
/// time; costs nothing but a waitpid(2) per poll.
const EXIT_POLL: Duration = Duration::from_millis(5);
/// Bytes read at a time when looking for the end of the data in a log segment (segments are
/// preallocated and zero-filled, so the data ends at the last non-zero byte).
const EXTENT_CHUNK_BYTES: usize = 1 << 20;
const TABLE: &str = "vecs";
const INDEX: &str = "vecs_emb";
/// An empty table created after the tail is in the graph: in sync mode its acknowledgement
/// means every record before it, index steps included, is durable, so the kill -9 that
/// follows loses nothing and the restart replays the whole tail.
const BARRIER_TABLE: &str = "restart_barrier";

#[derive(Parser)]
#[command(
    name = "index_restart",
    about = "tarnd restart with a saved HNSW graph vs building it from the rows"
)]
struct Cli {
    /// Base rows (ids 0..rows).
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// HNSW `m`.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW `ef_construction`.
    #[arg(long, default_value_t = 64)]
    ef_construction: usize,
    /// Updates of existing ids written before the kill -9 (the log tail to replay).
    #[arg(long, default_value_t = 10_000)]
    tail_rows: usize,
    /// KNN queries compared across each restart.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// `ef` of every query.
    #[arg(long, default_value_t = 64)]
    ef: usize,
    /// Gaussian clusters of the data.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Seed of the data.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Rows per UPSERT.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// tarnd's --durability: sync (ack after fdatasync) or async.
    #[arg(long, default_value = "sync")]
    durability: String,
    /// CPU tarnd is pinned to (taskset).
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// CPU this client is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// The server binary (default: target/release/tarnd).
    #[arg(long)]
    tarnd: Option<PathBuf>,
    /// An extra tarnd flag, passed as is (repeatable).
    #[arg(long = "tarnd-arg", allow_hyphen_values = true)]
    tarnd_arg: Vec<String>,
    /// Directory of the Markdown report (default: bench/results).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Cli {
    /// The shared ANN arguments (data, index options) these figures correspond to.
    fn data_args(&self) -> DataArgs {
        DataArgs {
            rows: self.rows,
            dim: self.dim,
            clusters: self.clusters,
            queries: self.queries,
            k: self.k,
            m: self.m,
            ef_construction: self.ef_construction,
            efs: self.ef.to_string(),
            filter_ef: self.ef,
            metric: "l2".into(),
            seed: self.seed,
        }
    }

    fn check(&self) -> Result<(), String> {
        if !["sync", "async"].contains(&self.durability.as_str()) {
            return Err(format!("--durability {:?}: sync or async", self.durability));
        }
        if self.rows == 0 || self.queries == 0 || self.batch == 0 || self.k == 0 {
            return Err("--rows, --queries, --batch and --k must be positive".into());
        }
        if self.tail_rows > self.rows {
            return Err(format!(
                "--tail-rows {} > --rows {}: the tail updates existing ids",
                self.tail_rows, self.rows
            ));
        }
        Ok(())
    }
}

/// One query's answer: (id, distance bits), in rank order.
type Answer = Vec<(i64, u32)>;

/// Step 1's figures.
struct Built {
    load_s: f64,
    build_s: f64,
    index: IndexStats,
    recall: f64,
    answers: Vec<Answer>,
}

/// One restart's figures.
struct Restarted {
    /// Spawn → tarnd accepts connections (polled every 50 ms by `Tarnd::start`).
    listen_s: f64,
    /// Spawn → tarnd's own "recovered" log line (its clock, µs resolution), if found.
    recovered_s: Option<f64>,
    /// Spawn → the first KNN answer (connect + HELLO + one query).
    first_knn_s: f64,
    /// `rows_pending` right after the restart (before any wait).
    pending_at_start: u64,
    /// tarnd's `replayed=` (log records replayed on top of the checkpoint).
    replayed: Option<u64>,
    /// Answers that differ from those before the stop: each query once after the restart,
    /// and the first query also the moment tarnd listened (`--queries` + 1 compared).
    mismatches: usize,
    index: IndexStats,
}

/// Step 4's figures before the kill.
struct Tail {
    upsert_s: f64,
    settle_s: f64,
    index: IndexStats,
    answers: Vec<Answer>,
    /// Bytes of log data written after the checkpoint (end of the data in every segment,
    /// summed, after the kill minus after the graceful stop).
    log_bytes: u64,
}

/// The checkpoint of the graceful stop.
struct Stopped {
    stop_s: f64,
    checkpoint: String,
    checkpoint_bytes: u64,
    log_extent: u64,
}

/// A running tarnd with the data directory it serves (from its ready line) and when it was
/// spawned.
struct Server {
    t: Tarnd,
    data: PathBuf,
    /// The spawn, by the wall clock (to read tarnd's log timestamps against) and monotonic.
    spawned: SystemTime,
    started: Instant,
    listen_s: f64,
    start_log: String,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("index_restart: {e}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    cli.check()?;
    let load_start = load_average();
    tarn_bench::sys::pin_current_thread(cli.client_cpu)
        .map_err(|e| format!("pin to CPU {}: {e}", cli.client_cpu))?;
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful numbers");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent");
    let opts = TarndOpts {
        shards: 1,
        binary: cli
            .tarnd
            .clone()
            .unwrap_or_else(|| root.join("target/release/tarnd")),
        cpu: cli.server_cpu,
        durability: cli.durability.clone(),
        extra: cli.tarnd_arg.clone(),
    };
    let started = Instant::now();
    let b = Bench::generate(&cli.data_args(), Metric::L2);
    eprintln!(
        "data and ground truth in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let figures = measure(cli, &b, &opts)?;
    let md = render(cli, &opts, &figures, &load_start);
    println!("{md}");
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| root.join("bench/results"));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let path = out.join(format!("index-restart-{}.md", machine::utc_now().0));
    std::fs::write(&path, md).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("report: {}", path.display());
    Ok(())
}

/// Every figure of the run.
struct Figures {
    built: Built,
    stopped: Stopped,
    clean: Restarted,
    tail: Tail,
    crash: Restarted,
}

/// Steps 1–4. The data directory of the first start is reused by every restart (the one
/// `Tarnd` start path, called again by this same process, names the same directory: checked
/// on each restart from tarnd's ready line) and removed by the last stop.
fn measure(cli: &Cli, b: &Bench, opts: &TarndOpts) -> Result<Figures, String> {
    let first = Server::start(opts, None)?;
    let built = with_log(&first, build(cli, b, &first))?;
    let data = first.data.clone();
    let _kept = KeptData(data.clone());
    let stopped = first.stop_keeping_data(libc::SIGTERM)?;
    let shard = data.join("shard-0");
    let (checkpoint, checkpoint_bytes) = newest_checkpoint(&shard)?;
    let stopped = Stopped {
        stop_s: stopped,
        checkpoint,
        checkpoint_bytes,
        log_extent: log_extent(&shard)?,
    };
    eprintln!(
        "graceful stop in {:.3} s; {checkpoint_bytes} bytes of checkpoint",
        stopped.stop_s
    );

    let second = Server::start(opts, Some(&data))?;
    let (clean, mut c) = with_log(&second, restarted(cli, b, &second, &built.answers))?;
    let tail = with_log(&second, write_tail(cli, b, &mut c))?;
    drop(c);
    second.stop_keeping_data(libc::SIGKILL)?;
    let (after, _) = newest_checkpoint(&shard)?;
    if after != stopped.checkpoint {
        return Err(format!(
            "a checkpoint ({after}) was taken during the tail: the restart would not replay it; \
             use a smaller --tail-rows or a larger --checkpoint-mib (--tarnd-arg)"
        ));
    }
    let tail = Tail {
        log_bytes: log_extent(&shard)?.saturating_sub(stopped.log_extent),
        ..tail
    };

    let third = Server::start(opts, Some(&data))?;
    let (crash, c) = with_log(&third, restarted(cli, b, &third, &tail.answers))?;
    drop(c);
    third.t.stop()?;
    Ok(Figures {
        built,
        stopped,
        clean,
        tail,
        crash,
    })
}

/// A data directory kept between a stop and the next start: removed when the run ends, also
/// on an error between the two (when no `Tarnd` is there to remove it). Declared before the
/// servers, so dropped after them (they stop tarnd first).
struct KeptData(PathBuf);

impl Drop for KeptData {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                eprintln!("index_restart: cannot remove {}: {e}", self.0.display())
            }
            _ => {}
        }
    }
}

/// Adds the end of tarnd's log to an error (what the server said about it).
fn with_log<T>(s: &Server, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| format!("{e} (tarnd log: {})", s.t.log_tail()))
}

impl Server {
    /// Starts tarnd; with `expect`, on that existing data directory (the restart), else on a
    /// new one.
    fn start(opts: &TarndOpts, expect: Option<&Path>) -> Result<Server, String> {
        let spawned = SystemTime::now();
        let started = Instant::now();
        let t = Tarnd::start(opts)?;
        let listen_s = started.elapsed().as_secs_f64();
        let start_log = t.log_tail();
        let (data, new) = parse_ready(&start_log)
            .ok_or_else(|| format!("no ready line in tarnd's log: {start_log}"))?;
        match expect {
            None if !new => return Err(format!("{} was not a new data dir", data.display())),
            Some(want) if new || data != want => {
                return Err(format!(
                    "the restart served {} (new: {new}), not the data of the first start {}",
                    data.display(),
                    want.display()
                ))
            }
            _ => {}
        }
        eprintln!(
            "tarnd pid {} on {} listening after {listen_s:.3} s",
            t.pid(),
            t.addr
        );
        Ok(Server {
            t,
            data,
            spawned,
            started,
            listen_s,
            start_log,
        })
    }

    fn connect(&self) -> Result<Client, String> {
        let copts = ClientOptions {
            io_timeout: Some(IO_TIMEOUT),
            ..ClientOptions::default()
        };
        Client::connect_with(&self.t.addr, copts)
            .map_err(|e| format!("connect {}: {e}", self.t.addr))
    }

    /// Sends `signal` (SIGTERM: graceful, with the final checkpoint; SIGKILL: a crash) and
    /// waits until tarnd exits; the seconds it took. The data directory is kept for the next
    /// start: `Tarnd`'s own stop removes it, so this `Tarnd` is forgotten instead of dropped.
    fn stop_keeping_data(self, signal: libc::c_int) -> Result<f64, String> {
        let pid = self.t.pid() as libc::pid_t;
        let started = Instant::now();
        // SAFETY: kill(2) of our own child, which nothing has reaped (`Tarnd` reaps only in
        // its stop or drop, and neither runs before the waitpid below).
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(format!("kill {pid}: {}", std::io::Error::last_os_error()));
        }
        let status = wait_exit(pid, GRACEFUL_STOP_TIMEOUT);
        let secs = started.elapsed().as_secs_f64();
        let log = self.t.log_tail();
        // What is forgotten is the `Child` (a pid, reaped above, and no pipes: tarnd's stdio are
        // /dev/null and its log file) and the path of the directory, which stays for the
        // restart; the last start's `Tarnd` removes it.
        std::mem::forget(self.t);
        let status = status.map_err(|e| format!("{e} (tarnd log: {log})"))?;
        let expected = if signal == libc::SIGKILL {
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL
        } else {
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        };
        if !expected {
            return Err(format!(
                "tarnd ended with wait status {status:#x} after signal {signal}: {log}"
            ));
        }
        Ok(secs)
    }

    /// Seconds from the spawn to tarnd's "recovered" log line, by its log's timestamp.
    fn recovered_s(&self) -> Option<f64> {
        let line = self
            .start_log
            .split(" | ")
            .find(|l| l.contains("recovered"))?;
        let at = utc_seconds_of_day(line)?;
        let spawned = self.spawned.duration_since(UNIX_EPOCH).ok()?.as_secs_f64() % 86_400.0;
        Some((at - spawned).rem_euclid(86_400.0))
    }
}

/// Waits (polling) until `pid` exits; its wait status. After `timeout`: SIGKILL and an error.
fn wait_exit(pid: libc::pid_t, timeout: Duration) -> Result<libc::c_int, String> {
    let started = Instant::now();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid(2) of our own child into a local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Ok(status);
        }
        if r < 0 {
            return Err(format!(
                "waitpid {pid}: {}",
                std::io::Error::last_os_error()
            ));
        }
        if started.elapsed() > timeout {
            // SAFETY: as above; blocking wait for the SIGKILLed child so it is reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(format!("tarnd did not exit within {timeout:?}; SIGKILLed"));
        }
        std::thread::sleep(EXIT_POLL);
    }
}

/// Step 1: load, CREATE INDEX, wait for the build, answers.
fn build(cli: &Cli, b: &Bench, s: &Server) -> Result<Built, String> {
    let mut c = s.connect()?;
    served::create_table(&mut c, TABLE, cli.dim)?;
    let l = served::load(&mut c, TABLE, b, cli.batch)?;
    eprintln!(
        "loaded {} rows in {:.1} s ({:.0} rows/s)",
        l.rows,
        l.secs,
        l.rows_per_s()
    );
    let started = Instant::now();
    served::create_index(&mut c, INDEX, TABLE, &cli.data_args())?;
    let index = settle(&mut c)?;
    let build_s = started.elapsed().as_secs_f64();
    eprintln!("CREATE INDEX over {} rows built in {build_s:.1} s", l.rows);
    let answers = answers(&mut c, b, cli)?;
    Ok(Built {
        load_s: l.secs,
        build_s,
        index,
        recall: recall(b, &answers, cli.k),
        answers,
    })
}

/// Step 3 (and 4's restart): first answer, pending rows, every query compared with `before`.
fn restarted(
    cli: &Cli,
    b: &Bench,
    s: &Server,
    before: &[Answer],
) -> Result<(Restarted, Client), String> {
    let mut c = s.connect()?;
    let first = answer(&mut c, &b.queries[0], cli)?;
    let first_knn_s = s.started.elapsed().as_secs_f64();
    let pending_at_start = served::rows_pending(&mut c, INDEX)?;
    let pending_at_start = u64::try_from(pending_at_start).expect("rows_pending is checked ≥ 0");
    let index = settle(&mut c)?;
    let after = answers(&mut c, b, cli)?;
    assert_eq!(after.len(), before.len(), "the same queries on both sides");
    // The first answer (asked the moment tarnd listened) counts too: a graph still being
    // loaded or rebuilt would show there first.
    let mismatches =
        after.iter().zip(before).filter(|(a, b)| a != b).count() + usize::from(first != before[0]);
    let r = Restarted {
        listen_s: s.listen_s,
        recovered_s: s.recovered_s(),
        first_knn_s,
        pending_at_start,
        replayed: parse_replayed(&s.start_log),
        mismatches,
        index,
    };
    eprintln!(
        "restart: listening {:.3} s, first KNN {first_knn_s:.3} s, pending {pending_at_start}, \
         replayed {:?}, {mismatches} of {} answers differ",
        r.listen_s,
        r.replayed,
        before.len()
    );
    Ok((r, c))
}

/// Step 4 before the kill: `--tail-rows` updates of ids spread over the table, until they are
/// in the graph and durable; the answers then.
fn write_tail(cli: &Cli, b: &Bench, c: &mut Client) -> Result<Tail, String> {
    let mut data = Data::new(cli.seed, cli.dim, cli.clusters);
    for _ in 0..b.base.len() + b.queries.len() {
        data.draw(); // the tail's vectors come after those of the base rows and the queries
    }
    let ids: Vec<usize> = (0..cli.tail_rows)
        .map(|i| tail_id(i, cli.tail_rows, cli.rows))
        .collect();
    let started = Instant::now();
    for chunk in ids.chunks(cli.batch) {
        let rows: Vec<Vec<Value>> = chunk
            .iter()
            .map(|&id| {
                vec![
                    Value::Int(id as i64),
                    Value::Vector(data.draw().into_boxed_slice()),
                    Value::Int(i64::from(b.attr[id])),
                ]
            })
            .collect();
        let applied = c
            .upsert(TABLE, &[ID, served::EMB, served::ATTR], rows)
            .map_err(|e| format!("UPSERT of the tail into {TABLE}: {e}"))?;
        assert_eq!(applied, chunk.len() as u64, "every tail row applied");
    }
    let upsert_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let index = settle(c)?;
    let settle_s = started.elapsed().as_secs_f64();
    let sql = format!("CREATE TABLE {BARRIER_TABLE} ({ID} BIGINT PRIMARY KEY)");
    c.sql(&sql).map_err(|e| format!("{sql}: {e}"))?;
    eprintln!(
        "tail of {} updates in {upsert_s:.1} s, +{settle_s:.2} s until built",
        ids.len()
    );
    Ok(Tail {
        upsert_s,
        settle_s,
        index,
        answers: answers(c, b, cli)?,
        log_bytes: 0,
    })
}

/// The `i`-th of `n` tail ids, spread evenly over `0..rows` (distinct while `n ≤ rows`).
fn tail_id(i: usize, n: usize, rows: usize) -> usize {
    assert!(i < n && n <= rows, "tail id {i} of {n} over {rows} rows");
    (i as u128 * rows as u128 / n as u128) as usize
}

/// Waits until STATS shows the index with no row pending and no tombstone rebuild due; its
/// stats then.
fn settle(c: &mut Client) -> Result<IndexStats, String> {
    let started = Instant::now();
    loop {
        let stats = c.stats().map_err(|e| format!("STATS: {e}"))?;
        let ix = stats
            .shards
            .iter()
            .flat_map(|s| &s.indexes)
            .find(|ix| ix.index == INDEX)
            .ok_or_else(|| format!("STATS does not list {INDEX}"))?;
        let rebuild_due =
            ix.tombstones * 100 >= ix.rows_indexed * HNSW_REBUILD_TOMBSTONE_PERCENT as u64;
        if ix.rows_pending == 0 && (ix.tombstones == 0 || !rebuild_due) {
            return Ok(ix.clone());
        }
        if started.elapsed() > served::BUILD_TIMEOUT {
            return Err(format!(
                "{INDEX} not settled after {:?}: {ix:?}",
                served::BUILD_TIMEOUT
            ));
        }
        std::thread::sleep(served::BUILD_POLL);
    }
}

fn answers(c: &mut Client, b: &Bench, cli: &Cli) -> Result<Vec<Answer>, String> {
    b.queries.iter().map(|q| answer(c, q, cli)).collect()
}

/// One unfiltered KNN at `--ef`: ids and distance bits.
fn answer(c: &mut Client, q: &[f32], cli: &Cli) -> Result<Answer, String> {
    let req = KnnRequest {
        index: INDEX.into(),
        query: KnnQuery::Vector(q.to_vec()),
        k: cli.k as u32,
        ef: Some(cli.ef as u32),
        filter: String::new(),
        columns: vec![ID.into()],
    };
    let r = c.knn(&req).map_err(|e| format!("KNN on {INDEX}: {e}"))?;
    r.rows
        .iter()
        .map(|row| match row.values.first() {
            Some(Value::Int(id)) => Ok((*id, row.distance.to_bits())),
            other => Err(format!("KNN reply row holds {other:?}, not an id")),
        })
        .collect()
}

/// Recall@k of the answers against the exact top-k of the unfiltered case.
fn recall(b: &Bench, answers: &[Answer], k: usize) -> f64 {
    let mut score = Score::default();
    for (truth, a) in b.truth[0].iter().zip(answers) {
        let found: Vec<RowId> = a.iter().map(|&(id, _)| id as RowId).collect();
        score.add(truth, &found, k);
    }
    score.recall()
}

/// `(data dir, new)` from tarnd's ready line ("… ready: listening on …, data dir <path>[ (new)],
/// durability …") in `log` (lines joined by " | ").
fn parse_ready(log: &str) -> Option<(PathBuf, bool)> {
    let line = log
        .split(" | ")
        .find(|l| l.contains(" ready: listening on "))?;
    let rest = line.split_once(", data dir ")?.1;
    let path = rest.rsplit_once(", durability ")?.0;
    match path.strip_suffix(" (new)") {
        Some(p) => Some((PathBuf::from(p), true)),
        None => Some((PathBuf::from(path), false)),
    }
}

/// `replayed=N` of tarnd's "recovered" log line.
fn parse_replayed(log: &str) -> Option<u64> {
    let line = log.split(" | ").find(|l| l.contains("recovered"))?;
    let n = line.split_once("replayed=")?.1;
    n.split(|ch: char| !ch.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Seconds since midnight UTC of a tracing line's leading RFC 3339 timestamp
/// (`2026-12-03T17:55:01.123456Z …`).
fn utc_seconds_of_day(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let time = stamp.split_once('T')?.1.strip_suffix('Z')?;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && h < 24.0 && m < 60.0 && s < 61.0)
        .then_some(h * 3600.0 + m * 60.0 + s)
}

/// The newest complete checkpoint file of a shard directory: (name, bytes).
fn newest_checkpoint(shard: &Path) -> Result<(String, u64), String> {
    let mut ckps: Vec<(String, u64)> = read_dir(shard)?
        .into_iter()
        .filter(|(name, _)| name.starts_with("checkpoint-") && name.ends_with(".ckp"))
        .collect();
    ckps.sort();
    ckps.pop()
        .ok_or_else(|| format!("no checkpoint-*.ckp in {}", shard.display()))
}

/// Σ over the log segments of a shard directory of where their data ends.
fn log_extent(shard: &Path) -> Result<u64, String> {
    let mut total = 0;
    for (name, _) in read_dir(shard)? {
        if name.starts_with("log-") && name.ends_with(".seg") {
            let path = shard.join(&name);
            total += data_end(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(total)
}

/// (name, size) of every file of a directory.
fn read_dir(dir: &Path) -> Result<Vec<(String, u64)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    entries
        .map(|e| {
            let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
            let len = e
                .metadata()
                .map_err(|err| format!("{}: {err}", e.path().display()))?
                .len();
            Ok((e.file_name().to_string_lossy().into_owned(), len))
        })
        .collect()
}

/// Offset just past the last non-zero byte of a file (a preallocated, zero-filled segment's
/// data end), read backwards in [`EXTENT_CHUNK_BYTES`] steps.
fn data_end(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut end = f.metadata()?.len();
    let mut buf = vec![0u8; EXTENT_CHUNK_BYTES];
    while end > 0 {
        let n = (end as usize).min(EXTENT_CHUNK_BYTES);
        let start = end - n as u64;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&x| x != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The report: preamble, one table of every figure, the generated reading.
fn render(cli: &Cli, opts: &TarndOpts, f: &Figures, load_start: &str) -> String {
    let (date, time) = machine::utc_now();
    let mut md = format!(
        "# tarnd restart with a saved vector index, {date} {time} UTC\n\n\
         Machine: {}; `nproc` {}; load average at start {load_start}, at end {} (other \
         processes' load is not subtracted).\n\n\
         Data: {} × {} f32, {} gaussian clusters, seed {:#x} (`tarn_bench::vecdata`, the same bytes \
         as `ann_server`); table `{TABLE} (id BIGINT PRIMARY KEY, emb VECTOR({}), attr BIGINT)`, \
         index `{INDEX}` `USING hnsw (emb) WITH (metric = 'l2', m = {}, ef_construction = {})`. \
         {} unfiltered KNN queries, k = {}, ef = {}: ids and distances compared bit for bit \
         across each restart.\n\n\
         Server: `{}` `--shards 1 --durability {}{}`, pinned with taskset to CPU {}; client: this \
         process on CPU {}, one connection, UPSERTs of {} rows, one in flight.\n\n\
         Command: `{}`\n\n",
        machine::describe(),
        nproc(),
        load_average(),
        cli.rows, cli.dim, cli.clusters, cli.seed, cli.dim, cli.m, cli.ef_construction,
        cli.queries, cli.k, cli.ef,
        opts.binary.display(),
        opts.durability,
        opts.extra.iter().map(|a| format!(" {a}")).collect::<String>(),
        opts.cpu,
        cli.client_cpu,
        cli.batch,
        std::env::args().collect::<Vec<_>>().join(" "),
    );
    md += "| step | figure | notes |\n|---|---:|---|\n";
    md += &build_rows(cli, f);
    md += &restart_rows("after the graceful stop", &f.clean, cli.queries, "the stop");
    md += &tail_rows(cli, f);
    md += &restart_rows("after kill -9", &f.crash, cli.queries, "the kill");
    md += "\n";
    md += &reading(cli, f);
    md += "\n";
    for n in NOTES {
        md += &format!("- {n}\n");
    }
    md
}

const NOTES: [&str; 4] = [
    "Spawn → listening: `Tarnd::start` probes the port every 50 ms; spawn → \"recovered\": the timestamp of tarnd's own log line (checkpoint loaded and log replayed) against this process's clock at the spawn; spawn → first KNN: after the connect, HELLO and one query. A fresh start on an empty data directory listens after ~0.05 s.",
    "Log records replayed (tarnd's `replayed=`): one per UPSERT batch; the graph inserts of rows written into an indexed table are made while the record is applied, so replaying the tail redoes them (its time is about the tail's write time). Build and rebuild steps are records of their own (none in this tail: no CREATE INDEX or tombstone rebuild after the checkpoint).",
    "Log written after the checkpoint: Σ over the log segments of the end of their data (segments are preallocated and zero-filled: the offset past the last non-zero byte), after the kill minus after the graceful stop; no checkpoint was taken in between (checked).",
    "Answers: each query once after the restart and the first query also at once (`--queries` + 1 compared), `(id, distance bits)` per rank against the same queries before the stop or the kill.",
];

/// Rows of steps 1 and 2.
fn build_rows(cli: &Cli, f: &Figures) -> String {
    let (b, s, n) = (&f.built, &f.stopped, cli.rows as f64);
    format!(
        "| load {} rows into the unindexed table | {:.2} s | {:.0} rows/s |\n\
         | **CREATE INDEX over the loaded rows, until STATS shows nothing pending** | **{:.2} s** | \
         the build from the rows: what every restart cost before graphs were saved (on top of \
         replaying the rows) |\n\
         | recall@{} at ef {} | {:.4} | against the exact top-{} |\n\
         | graph in memory (STATS `memory_bytes`) | {} bytes | {:.0} bytes/vector |\n\
         | graceful stop: SIGTERM → exit | {:.3} s | includes the final checkpoint with the graph |\n\
         | checkpoint file `shard-0/{}` | {} bytes | {:.0} bytes/vector (rows and graph) |\n",
        cli.rows,
        b.load_s,
        n / b.load_s,
        b.build_s,
        cli.k,
        cli.ef,
        b.recall,
        cli.k,
        b.index.memory_bytes,
        b.index.memory_bytes as f64 / n,
        s.stop_s,
        s.checkpoint,
        s.checkpoint_bytes,
        s.checkpoint_bytes as f64 / n,
    )
}

/// Rows of one restart.
fn restart_rows(what: &str, r: &Restarted, queries: usize, before: &str) -> String {
    let opt = |x: Option<f64>| x.map_or("n/a".to_string(), |s| format!("{s:.3} s"));
    format!(
        "| restart {what}: spawn → listening | {:.3} s | polled every 50 ms |\n\
         | spawn → \"recovered\" log line | {} | tarnd's log clock |\n\
         | **spawn → first KNN answer** | **{:.3} s** | connect, HELLO, one query |\n\
         | rows_pending at once · log records replayed | {} · {} | 0 pending = no rebuild |\n\
         | answers that differ from before {before} | {} of {} | must be 0 |\n\
         | index after the restart (STATS) | {} rows, {} tombstones | |\n",
        r.listen_s,
        opt(r.recovered_s),
        r.first_knn_s,
        r.pending_at_start,
        r.replayed.map_or("n/a".to_string(), |n| n.to_string()),
        r.mismatches,
        queries + 1,
        r.index.rows_indexed,
        r.index.tombstones,
    )
}

/// Rows of step 4 before the kill.
fn tail_rows(cli: &Cli, f: &Figures) -> String {
    let t = &f.tail;
    format!(
        "| tail: {} updates of existing ids | {:.2} s | {:.0} rows/s, then {:.2} s until in the \
         graph; {} tombstones |\n\
         | log written after the checkpoint | {} bytes | {:.0} bytes/updated row (rows and index \
         steps) |\n",
        cli.tail_rows,
        t.upsert_s,
        cli.tail_rows as f64 / t.upsert_s,
        t.settle_s,
        t.index.tombstones,
        t.log_bytes,
        t.log_bytes as f64 / cli.tail_rows.max(1) as f64,
    )
}

/// The generated one-paragraph reading of the figures.
fn reading(cli: &Cli, f: &Figures) -> String {
    let (b, clean, crash) = (&f.built, &f.clean, &f.crash);
    let verdict = if clean.mismatches + crash.mismatches == 0 {
        "every answer was identical"
    } else {
        "**some answers differed: the graph was not restored exactly**"
    };
    format!(
        "Reading: building the graph of {} rows from the rows took {:.1} s; a restart that \
         loads it from the checkpoint answered its first KNN {:.3} s after the spawn ({:.0}× \
         less), with {} rows pending; after a kill -9 with {} updates ({:.1} MiB of log, {} \
         records) to replay on top of the checkpoint it answered after {:.3} s, with {} pending; \
         {verdict}.\n",
        cli.rows,
        b.build_s,
        clean.first_knn_s,
        b.build_s / clean.first_knn_s,
        clean.pending_at_start,
        cli.tail_rows,
        f.tail.log_bytes as f64 / (1 << 20) as f64,
        crash.replayed.map_or("n/a".to_string(), |n| n.to_string()),
        crash.first_knn_s,
        crash.pending_at_start,
    )
}

fn nproc() -> i64 {
    // SAFETY: plain sysconf query.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_gives_the_data_dir_and_whether_it_is_new() {
        let log = "2026-12-03T17:55:01.123456Z  INFO tarn::server: recovered shard=0 \
                   checkpoint_lsn=7 replayed=1234 last_lsn=1241 | tarnd 0.1.0 ready: listening \
                   on 127.0.0.1:21001 with 1 shard(s) (pinned), data dir /tmp/x/data (new), \
                   durability Sync | serving";
        assert_eq!(parse_ready(log), Some((PathBuf::from("/tmp/x/data"), true)));
        let old = log.replace(" (new)", "");
        assert_eq!(
            parse_ready(&old),
            Some((PathBuf::from("/tmp/x/data"), false))
        );
        assert_eq!(parse_ready("nothing"), None);
        assert_eq!(parse_replayed(log), Some(1234));
        assert_eq!(parse_replayed("recovered shard=0"), None);
    }

    #[test]
    fn a_tracing_timestamp_is_read_as_seconds_of_the_utc_day() {
        let at = utc_seconds_of_day("2026-12-03T01:02:03.500000Z  INFO x").unwrap();
        assert!((at - 3723.5).abs() < 1e-9, "{at}");
        assert_eq!(utc_seconds_of_day("no timestamp here"), None);
        assert_eq!(utc_seconds_of_day("2026-12-03T25:00:00Z x"), None);
    }

    #[test]
    fn tail_ids_are_distinct_existing_ids_spread_over_the_table() {
        let ids: Vec<usize> = (0..1000).map(|i| tail_id(i, 1000, 100_000)).collect();
        assert_eq!((ids[0], ids[999]), (0, 99_900));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let all: Vec<usize> = (0..7).map(|i| tail_id(i, 7, 7)).collect();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn the_data_end_is_past_the_last_non_zero_byte() {
        let dir = std::env::temp_dir().join(format!("index-restart-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log-00000000000000000001.seg");
        let mut bytes = vec![0u8; EXTENT_CHUNK_BYTES * 2 + 10];
        bytes[EXTENT_CHUNK_BYTES + 3] = 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(data_end(&path).unwrap(), EXTENT_CHUNK_BYTES as u64 + 4);
        assert_eq!(log_extent(&dir).unwrap(), EXTENT_CHUNK_BYTES as u64 + 4);
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        assert_eq!(data_end(&path).unwrap(), 0);
        std::fs::write(dir.join("checkpoint-00000000000000000009.ckp"), b"ab").unwrap();
        std::fs::write(dir.join("checkpoint-00000000000000000010.ckp"), b"abc").unwrap();
        std::fs::write(dir.join("checkpoint-00000000000000000011.ckp.tmp"), b"x").unwrap();
        let newest = newest_checkpoint(&dir).unwrap();
        assert_eq!(
            newest,
            ("checkpoint-00000000000000000010.ckp".to_string(), 3)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_arguments_are_refused_by_name() {
        let cli = Cli::parse_from(["index_restart", "--rows", "10", "--tail-rows", "11"]);
        assert!(cli.check().unwrap_err().contains("--tail-rows 11"));
        let cli = Cli::parse_from(["index_restart", "--durability", "fast"]);
        assert!(cli.check().unwrap_err().contains("fast"));
        assert!(Cli::parse_from(["index_restart"]).check().is_ok());
    }
}
