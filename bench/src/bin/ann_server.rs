//! Approximate nearest-neighbour search through the full server path: a real `tarnd
//! --shards 1` pinned to one CPU, this client pinned to the other, one connection, next to
//! hnswlib and faiss HNSW in-process (one thread, `bench/peers/ann_peers.sh`) on the same
//! data and ground truth as `ann`.
//!
//! Full size (the figures; on a quiet machine only):
//! `bench/run.sh ann-server` = `cargo build --release --bin tarnd && cargo build --release -p
//! tarn-bench --bin ann_server && target/release/ann_server --server-cpu 0 --client-cpu 1`
//! (defaults: 100k × 128 f32, 100 clusters, 1000 queries, k = 10, m = 16, ef_construction =
//! 200, efs 16,32,64,128, filtered cases at ef 64, batches of 500, pipelined depth 4, async
//! durability). Smoke run: `target/release/ann_server --rows 5000 --queries 100 --out /tmp`.
//!
//! What it does, in order:
//! 1. Draws the data and computes the exact top-k of every case ([`tarn_bench::ann`]), writes
//!    the peers' files.
//! 2. Starts tarnd ([`tarn_bench::ann::server`]), creates two tables of `(id BIGINT PRIMARY
//!    KEY, emb VECTOR(dim), attr BIGINT)`.
//! 3. Loads every row into the first, unindexed (the upsert rate without an index), then
//!    `CREATE INDEX … USING hnsw` and waits until `SHOW INDEXES` says `rows_pending = 0` (the
//!    build time over a loaded table); VmRSS and RssAnon 2 s after each step (memory per
//!    vector).
//! 4. Searches: unfiltered at every `--efs`, filtered (`attr < 100`, `< 10`, `< 1`) at
//!    `--filter-ef`, one query at a time (closed loop); unfiltered again with `--depth`
//!    queries in flight. Recall@k, q/s, p50/p99 (hdrhistogram), the reply's `distances` per
//!    query (machine-independent work) and tarnd's CPU time per query.
//! 5. Creates the index on the second table first and loads every row into it: the upsert
//!    rate into an indexed table, and the time until nothing is pending (the incremental build).
//! 6. Stops tarnd, runs the peers pinned to `--peer-cpu` (default: the server's CPU), writes
//!    `bench/results/ann-server-<date>.md` (or into `--out`), which says how much of the two
//!    CPUs other processes took while tarnd ran (and warns above 5 %).
//!
//! Keep `--server-cpu 0`: glommio pins the one executor to CPU 0 whatever taskset allows; the
//! report warns when a shard thread is on another CPU.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use tarn_bench::ann::served::{self, Load, Search, WARMUP_QUERIES};
use tarn_bench::ann::server::{Tarnd, TarndOpts};
use tarn_bench::ann::server_report::{Memory, Report, ServedRow};
use tarn_bench::ann::{run_peers, Bench, Build, DataArgs, OutputArgs, CASES};
use tarn_bench::machine;
use tarn_bench::sys::{self_cpu_ns, CpuMark};
use tarn_client::{Client, ClientOptions};
use tarn_vectors::Metric;

/// The socket timeout of the benchmark's connection: longer than any one batch or query
/// (a 500-row batch into an indexed table takes well under a second), short enough that a
/// wedged server ends the run with an error instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause before each reading of tarnd's memory, so that what a step leaves behind for a
/// moment (the async log's buffers until flushed, the allocator's freed pages until purged) is
/// gone; costs a few seconds of the run.
const MEMORY_SETTLE: Duration = Duration::from_secs(2);
/// The two tables: loaded then indexed; indexed then loaded.
const BULK_TABLE: &str = "vecs_bulk";
const BULK_INDEX: &str = "vecs_bulk_emb";
const LIVE_TABLE: &str = "vecs_live";
const LIVE_INDEX: &str = "vecs_live_emb";

#[derive(Parser)]
#[command(
    name = "ann_server",
    about = "Tarn kNN through tarnd next to hnswlib and faiss"
)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// The server binary.
    #[arg(long)]
    tarnd: Option<PathBuf>,
    /// CPU tarnd is pinned to (taskset).
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// CPU this client is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// CPU of the peers' process (default: --server-cpu, tarnd is stopped by then).
    #[arg(long)]
    peer_cpu: Option<usize>,
    /// tarnd's --durability: async (ack after apply) or sync (ack after fdatasync).
    #[arg(long, default_value = "async")]
    durability: String,
    /// An extra tarnd flag (repeatable), e.g. --tarnd-arg=--spin-us=200.
    #[arg(long)]
    tarnd_arg: Vec<String>,
    /// Rows per UPSERT.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Queries in flight in the pipelined run (0: no pipelined run).
    #[arg(long, default_value_t = 4)]
    depth: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// What the server phases produce.
#[derive(Default)]
struct Served {
    builds: Vec<Build>,
    memory: Vec<Memory>,
    rows: Vec<ServedRow>,
    loads: Vec<Load>,
    /// % of the server's and the client's CPU other processes took during the session.
    interference: (Option<f64>, Option<f64>),
}

/// One connection to one tarnd, over the data of the run.
struct Session<'a> {
    c: Client,
    t: &'a Tarnd,
    b: &'a Bench,
    cli: &'a Cli,
    out: Served,
}

impl Session<'_> {
    /// (VmRSS, RssAnon) of tarnd, bytes, after [`MEMORY_SETTLE`].
    fn rss(&self) -> Result<(f64, f64), String> {
        std::thread::sleep(MEMORY_SETTLE);
        self.t.rss_bytes().map(|(v, a)| (v as f64, a as f64))
    }

    /// Records the growth from `before` to `after` per row; returns the heap's.
    fn memory(&mut self, what: String, before: (f64, f64), after: (f64, f64)) -> f64 {
        let n = self.b.base.len() as f64;
        let (vm, anon) = ((after.0 - before.0) / n, (after.1 - before.1) / n);
        self.out.memory.push(Memory {
            what,
            bytes_per_vector: vm,
            anon_per_vector: anon,
        });
        anon
    }

    /// Step 3: load the unindexed table, then build its index; memory of both.
    fn bulk_then_index(&mut self) -> Result<(), String> {
        let n = self.b.base.len();
        let before = self.rss()?;
        let l = served::load(&mut self.c, BULK_TABLE, self.b, self.cli.batch)?;
        eprintln!("loaded {BULK_TABLE}: {:.0} rows/s", l.rows_per_s());
        self.out.loads.push(l);
        let loaded = self.rss()?;
        served::create_index(&mut self.c, BULK_INDEX, BULK_TABLE, &self.cli.data)?;
        let build_s = served::wait_built(&mut self.c, BULK_INDEX)?;
        let built = self.rss()?;
        eprintln!("built {BULK_INDEX} in {build_s:.2} s");
        self.memory(
            format!("{BULK_TABLE}: rows (id, VECTOR, attr), no index"),
            before,
            loaded,
        );
        self.memory(
            format!("{BULK_INDEX}: HNSW built over the loaded rows"),
            loaded,
            built,
        );
        let both = self.memory(
            "rows + index (compare: the peers' build)".into(),
            before,
            built,
        );
        self.out.builds.push(Build {
            system: "tarnd".into(),
            version: format!(
                "CREATE INDEX over {n} loaded rows, until rows_pending = 0 (bytes: RssAnon \
                 growth over load + build, rows + index)"
            ),
            build_s,
            bytes_per_vector: both,
        });
        Ok(())
    }

    /// One search measurement (closed loop if `depth` is 0) with tarnd's CPU per query.
    fn search(&mut self, mode: String, case: usize, ef: usize, depth: usize) -> Result<(), String> {
        let s = Search {
            index: BULK_INDEX,
            case,
            ef,
            k: self.cli.data.k,
        };
        let queries = self.b.queries.len();
        let counted = (queries + WARMUP_QUERIES.min(queries)) as f64;
        let cpu0 = self.t.cpu_ns();
        let row = if depth == 0 {
            served::search_closed(&mut self.c, &s, self.b, "tarnd")?
        } else {
            served::search_pipelined(&mut self.c, &s, self.b, depth, "tarnd")?
        };
        let server_cpu_us = Some((self.t.cpu_ns() - cpu0) as f64 / 1e3 / counted);
        eprintln!("{mode} {row:?}");
        self.out.rows.push(ServedRow {
            row,
            mode,
            server_cpu_us,
        });
        Ok(())
    }

    /// Step 4: every case closed-loop, then the unfiltered efs pipelined.
    fn searches(&mut self, efs: &[usize]) -> Result<(), String> {
        for (case, c) in CASES.iter().enumerate() {
            let case_efs = if c.bound.is_none() {
                efs.to_vec()
            } else {
                vec![self.cli.data.filter_ef]
            };
            for ef in case_efs {
                self.search("closed".into(), case, ef, 0)?;
            }
        }
        let depth = self.cli.depth;
        for &ef in efs.iter().filter(|_| depth > 0) {
            self.search(format!("pipelined ×{depth}"), 0, ef, depth)?;
        }
        Ok(())
    }

    /// Step 5: the index first, then the rows; until nothing is pending.
    fn index_then_load(&mut self) -> Result<(), String> {
        let n = self.b.base.len();
        served::create_index(&mut self.c, LIVE_INDEX, LIVE_TABLE, &self.cli.data)?;
        let before = self.rss()?;
        let started = Instant::now();
        let mut l = served::load(&mut self.c, LIVE_TABLE, self.b, self.cli.batch)?;
        let pending_s = served::wait_built(&mut self.c, LIVE_INDEX)?;
        let secs = started.elapsed().as_secs_f64();
        let after = self.rss()?;
        l.indexed = true;
        eprintln!(
            "loaded {LIVE_TABLE} (indexed): {:.0} rows/s, +{pending_s:.2} s until built",
            l.rows_per_s()
        );
        self.out.loads.push(l);
        let both = self.memory(
            format!("{LIVE_TABLE}: rows + index, loaded into the indexed table"),
            before,
            after,
        );
        self.out.builds.push(Build {
            system: "tarnd".into(),
            version: format!(
                "UPSERT {n} rows ({}-row batches) into an indexed table, until rows_pending = 0 \
                 (bytes: RssAnon growth, rows + index)",
                self.cli.batch
            ),
            build_s: secs,
            bytes_per_vector: both,
        });
        Ok(())
    }
}

/// Steps 2–5 on a fresh tarnd; returns the results and the shard threads' CPU affinity.
fn run_server(
    b: &Bench,
    cli: &Cli,
    efs: &[usize],
    opts: &TarndOpts,
) -> Result<(Served, Vec<String>), String> {
    let t = Tarnd::start(opts)?;
    let threads = affinity_text(&t.shard_affinity(), opts.cpu);
    eprintln!(
        "tarnd pid {} on {} (shard threads: {threads})",
        t.pid(),
        t.addr
    );
    let copts = ClientOptions {
        io_timeout: Some(IO_TIMEOUT),
        ..ClientOptions::default()
    };
    let c = Client::connect_with(&t.addr, copts).map_err(|e| format!("connect {}: {e}", t.addr))?;
    let server_mark = CpuMark::take(opts.cpu, t.cpu_ns());
    let client_mark = CpuMark::take(cli.client_cpu, self_cpu_ns());
    let mut s = Session {
        c,
        t: &t,
        b,
        cli,
        out: Served::default(),
    };
    let steps = served::create_table(&mut s.c, BULK_TABLE, cli.data.dim)
        .and_then(|()| served::create_table(&mut s.c, LIVE_TABLE, cli.data.dim))
        .and_then(|()| s.bulk_then_index())
        .and_then(|()| s.searches(efs))
        .and_then(|()| s.index_then_load());
    if let Err(e) = steps {
        return Err(format!("{e} (tarnd log: {})", t.log_tail()));
    }
    let mut affinity = t.shard_affinity();
    affinity.dedup();
    let mut out = s.out;
    out.interference = (
        server_mark.and_then(|m| m.other_pct(t.cpu_ns())),
        client_mark.and_then(|m| m.other_pct(self_cpu_ns())),
    );
    drop(s.c);
    t.stop()?;
    Ok((out, affinity))
}

/// Interference above which the report says its figures are not to be published: the
/// threshold `run.sh` uses to discard a load generator's attempt.
const INTERFERENCE_WARN_PCT: f64 = 5.0;

/// What other processes took of the two CPUs while tarnd ran, with a warning if too much.
fn interference_text(cli: &Cli, (server, client): (Option<f64>, Option<f64>)) -> String {
    let pct = |x: Option<f64>| x.map_or("unknown".to_string(), |p| format!("{p:.1} %"));
    let mut text = format!(
        "Other processes took {} of CPU {} (server) and {} of CPU {} (client) while tarnd ran.",
        pct(server),
        cli.server_cpu,
        pct(client),
        cli.client_cpu
    );
    if [server, client]
        .iter()
        .flatten()
        .any(|&p| p > INTERFERENCE_WARN_PCT)
    {
        text.push_str(" **WARNING: contended run; do not publish these figures.**");
    }
    text
}

fn preamble(cli: &Cli, opts: &TarndOpts, affinity: &[String], load_start: &str) -> String {
    let (date, time) = machine::utc_now();
    let d = &cli.data;
    let built = std::fs::metadata(&opts.binary)
        .and_then(|m| m.modified())
        .map(|t| {
            format!(
                "{:.0} min before the run",
                t.elapsed().unwrap_or_default().as_secs_f64() / 60.0
            )
        })
        .unwrap_or_else(|_| "unknown age".into());
    format!(
        "# ANN through the server, {date} {time} UTC\n\n\
         Machine: {}. Load average at start {load_start}, at end {}.\n\n\
         Data: {} × {} f32, {} gaussian clusters, seed {:#x} (`tarn_bench::vecdata`, the same bytes \
         as `ann`); {} queries per case, k = {}; metric {}; m = {}, ef_construction = {} for every \
         system.\n\n\
         Server: `{}` (built {built}{}) `--shards 1 --durability {}{}`, pinned with taskset to CPU {} \
         (shard threads: {}). Client: this process, pinned to CPU {}, one connection, \
         `tarn_client::Client`; KNN requests return the `id` column only. Peers: in-process, one \
         thread, pinned to CPU {}, after tarnd stopped.\n\n\
         Command: `{}`\n\n",
        machine::describe(),
        load_average(),
        d.rows, d.dim, d.clusters, d.seed, d.queries, d.k, d.metric, d.m, d.ef_construction,
        opts.binary.display(),
        if cfg!(debug_assertions) { "; **this client is a debug build**" } else { "" },
        opts.durability,
        opts.extra.iter().map(|a| format!(" {a}")).collect::<String>(),
        opts.cpu,
        affinity_text(affinity, opts.cpu),
        cli.client_cpu,
        cli.peer_cpu.unwrap_or(cli.server_cpu),
        std::env::args().collect::<Vec<_>>().join(" "),
    )
}

/// The shard threads' CPUs, with a warning when one is not the server's CPU: glommio pins
/// the executor of `--shards 1` to the first online CPU (CPU 0) whatever taskset allowed, so
/// with `--server-cpu` other than 0 the executor shares the client's CPU.
fn affinity_text(affinity: &[String], cpu: usize) -> String {
    if affinity.is_empty() {
        return "not found".into();
    }
    let pinned = format!(": CPU {cpu}");
    let text = affinity.join(", ");
    if affinity.iter().all(|a| a.ends_with(&pinned)) {
        text
    } else {
        format!("{text}; **WARNING: a shard thread is not on CPU {cpu} (glommio pins the executor to CPU 0); use --server-cpu 0**")
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

const NOTES: [&str; 7] = [
    "q/s of a closed-loop row is one connection's rate with tarnd on one core: the q/s per server core at that latency; `q/s per tarnd CPU-second` is the capacity of the core were it never idle (1e6 / tarnd CPU µs per query, all tarnd threads, from /proc/<pid>/task/*/schedstat, warm-up queries included).",
    "Latency = send to reply on the client (includes loopback and both sides' framing); the peers' = around the in-process call (includes the Python call, ~1–3 µs).",
    "distances/query: tarnd's KnnReply.distances (distance computations on the shard, independent of the machine); faiss: `hnsw_stats.ndis`; hnswlib's Python binding does not expose its count (n/a).",
    "Filtered rows: tarnd plans each search (exact scan of the matching rows, graph search with the filter in the traversal, or plain graph search); hnswlib's filter is a Python callable per visited node; faiss's an `IDSelectorBitmap`. Recall = true neighbours found / Σ min(k, matching rows); short = answers with fewer than min(k, matching rows) rows.",
    "Memory: tarnd's VmRSS and RssAnon (heap: VmRSS without mapped file pages) growth over the step / rows, each read 2 s after the step. The `rows + index` totals agree between the two tables; the split between rows and index does not hold: heap the bulk load freed is returned to the OS only while the build allocates, so the index step can even come out negative. With small --rows every figure is noise. The peers' build row = their process RSS growth over the build, vectors included (compare `rows + index`).",
    "hnswlib raises when it finds fewer than k rows (always, when fewer than k rows match); the peer script counts that as an empty (short) answer.",
    "Upserts: ids 0..rows, each batch one UPSERT (Replace) awaited before the next; the indexed table's rows/s include the graph inserts made while applying; its build row adds the wait until nothing is pending.",
];

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("ann_server: {e}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let load_start = load_average();
    tarn_bench::sys::pin_current_thread(cli.client_cpu)
        .map_err(|e| format!("pin to CPU {}: {e}", cli.client_cpu))?;
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful numbers");
    }
    let metric = Metric::parse(&cli.data.metric).map_err(|e| e.to_string())?;
    let efs = cli.data.ef_list()?;
    if !["sync", "async"].contains(&cli.durability.as_str()) {
        return Err(format!("--durability {:?}: sync or async", cli.durability));
    }
    if cli.batch == 0 || cli.data.rows == 0 || cli.data.queries == 0 {
        return Err("--batch, --rows and --queries must be positive".into());
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
    let t = Instant::now();
    let b = Bench::generate(&cli.data, metric);
    eprintln!(
        "data and ground truth in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let dir = cli.output.data_dir_or("tarn-ann-server-data");
    b.write_data(&dir, cli.data.k)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    // The data directory goes whether the run succeeded or not.
    let result = measure_and_report(cli, &b, &dir, &efs, &opts, &load_start);
    let cleaned = cli
        .output
        .clean_data_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()));
    result.and(cleaned)
}

/// Steps 2–6: the server's side, the peers', the report.
fn measure_and_report(
    cli: &Cli,
    b: &Bench,
    dir: &Path,
    efs: &[usize],
    opts: &TarndOpts,
    load_start: &str,
) -> Result<(), String> {
    let (served, affinity) = run_server(b, cli, efs, opts)?;
    let (mut rows, mut peer_builds) = (served.rows, Vec::new());
    if !cli.output.no_peers {
        let (peer_rows, builds) =
            run_peers(&cli.data, dir, Some(cli.peer_cpu.unwrap_or(cli.server_cpu)))?;
        rows.extend(peer_rows.into_iter().map(|row| ServedRow {
            row,
            mode: "in-process".into(),
            server_cpu_us: None,
        }));
        peer_builds = builds
            .into_iter()
            .map(|b| Build {
                version: format!(
                    "{} `add`, in-process, one thread (bytes: vectors + graph)",
                    b.version
                ),
                ..b
            })
            .collect();
    }
    let report = Report {
        preamble: preamble(cli, opts, &affinity, load_start)
            + &interference_text(cli, served.interference)
            + "\n",
        builds: served.builds,
        peer_builds,
        memory: served.memory,
        rows,
        loads: served.loads,
        notes: NOTES.iter().map(|n| n.to_string()).collect(),
    };
    let md = report.render();
    println!("{md}");
    let (date, _) = machine::utc_now();
    let path = cli
        .output
        .write_report(&format!("ann-server-{date}.md"), &md)
        .map_err(|e| format!("the report: {e}"))?;
    eprintln!("report: {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_threads_off_the_server_cpu_are_flagged() {
        let on = vec!["tarn-shard-1: CPU 0".to_string()];
        assert_eq!(affinity_text(&on, 0), "tarn-shard-1: CPU 0");
        let off = vec![
            "tarn-shard-1: CPU 0".to_string(),
            "tarn-shard-1: CPU 1".into(),
        ];
        assert!(affinity_text(&off, 1).contains("WARNING"));
        assert_eq!(affinity_text(&[], 0), "not found");
    }

    #[test]
    fn a_contended_run_says_so_and_a_quiet_one_does_not() {
        let cli = Cli::parse_from(["ann_server", "--server-cpu", "0", "--client-cpu", "1"]);
        let quiet = interference_text(&cli, (Some(0.5), Some(1.0)));
        assert!(quiet.contains("0.5 % of CPU 0 (server)"), "{quiet}");
        assert!(!quiet.contains("WARNING"));
        assert!(interference_text(&cli, (Some(0.5), Some(40.0))).contains("WARNING"));
        assert!(interference_text(&cli, (None, None)).contains("unknown"));
    }
}
