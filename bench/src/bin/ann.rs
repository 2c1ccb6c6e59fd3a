//! Approximate nearest-neighbour benchmark: Tarn's HNSW (`tarn_vectors`, in-process) next to
//! hnswlib and faiss HNSW (from PyPI, in-process, one thread) on the same data, with the exact
//! scan as the floor.
//!
//! `cargo run --release -p tarn-bench --bin ann [-- --cpu 0 --peer-cpu 0 --rows 100000 ...]`
//! (`bench/run.sh ann` runs it with the defaults and pins both sides to `SERVER_CPU`).
//!
//! What it does, in order:
//! 1. Draws `--rows` base vectors and `--queries` queries of `--dim` from `--clusters` gaussian
//!    clusters ([`tarn_bench::vecdata`], seeded), and one attribute per row, uniform in
//!    `0..1000`, for the filter cases `attr < 100` (10 %), `< 10` (1 %) and `< 1` (0.1 %).
//! 2. Computes the exact top-k of every query for every case with `ExactIndex` (the ground
//!    truth), and writes base, queries, attributes and ground truth to `--data-dir` so the peers
//!    read the same bytes.
//! 3. Builds Tarn's HNSW (one thread) and measures, one query at a time: queries/s, p50/p99
//!    latency (hdrhistogram; closed loop, each query's own service time, so there is no
//!    schedule to omit), recall@k = found true neighbours / Σ min(k, matching rows), and the
//!    number of queries answered with fewer than min(k, matching) rows.
//! 4. Runs `bench/peers/ann_peers.sh` (hnswlib, faiss) on the same files and the same cases.
//! 5. Writes a Markdown report to `bench/results/ann-<date>-<metric>.md` (or `--out`).
//!
//! Memory per vector: Tarn's `memory_bytes()` (heap capacity held by the index) and, for the
//! peers, the growth of the process RSS over the build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::Value as Json;
use tarn_bench::machine;
use tarn_bench::vecdata::{write_fvecs, write_ivecs, Data, Rng};
use tarn_vectors::{
    search_planned, ExactIndex, HnswIndex, HnswParams, Index, Metric, Neighbor, RowId,
    SearchParams, VectorIndex,
};

#[derive(Parser)]
#[command(name = "ann", about = "Tarn HNSW next to hnswlib and faiss, same data, one thread")]
struct Cli {
    /// Base vectors.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Gaussian clusters of the data.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Queries per case.
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// HNSW `m` (hnswlib's M) for every system.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW `ef_construction` for every system.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// `ef_search` values of the unfiltered case, comma-separated.
    #[arg(long, default_value = "16,32,64,128")]
    efs: String,
    /// `ef_search` of the filtered cases.
    #[arg(long, default_value_t = 64)]
    filter_ef: usize,
    /// l2, cosine or ip.
    #[arg(long, default_value = "l2")]
    metric: String,
    /// Seed of the data.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Pin this process to a CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Pin the peers' process to a CPU.
    #[arg(long)]
    peer_cpu: Option<usize>,
    /// Leave the peers out (Tarn only).
    #[arg(long)]
    no_peers: bool,
    /// Where the shared data files go (default: a directory under the system temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Directory of the Markdown report (default: bench/results).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One search case: every query, optionally restricted to `attr < bound`.
struct Case {
    name: &'static str,
    bound: Option<u32>,
}

const CASES: [Case; 4] = [
    Case { name: "unfiltered", bound: None },
    Case { name: "filter-10pct", bound: Some(100) },
    Case { name: "filter-1pct", bound: Some(10) },
    Case { name: "filter-0.1pct", bound: Some(1) },
];

/// The result of one (system, case, ef) measurement, as the peers report it too.
#[derive(Clone, Debug)]
struct Row {
    system: String,
    case: String,
    ef: usize,
    recall: f64,
    qps: f64,
    p50_us: f64,
    p99_us: f64,
    short: u64,
}

struct Bench {
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    attr: Vec<u32>,
    /// Per case, per query: the exact top-k row ids.
    truth: Vec<Vec<Vec<RowId>>>,
}

fn generate(cli: &Cli) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<u32>) {
    let mut data = Data::new(cli.seed, cli.dim, cli.clusters);
    let base: Vec<Vec<f32>> = (0..cli.rows).map(|_| data.draw()).collect();
    let queries: Vec<Vec<f32>> = (0..cli.queries).map(|_| data.draw()).collect();
    let mut rng = Rng(cli.seed ^ 0xa77);
    let attr = (0..cli.rows).map(|_| (rng.next() % 1000) as u32).collect();
    (base, queries, attr)
}

fn ground_truth(metric: Metric, b: &Bench, k: usize, bound: Option<u32>) -> Vec<Vec<RowId>> {
    let dim = b.base[0].len();
    let mut exact = ExactIndex::new(metric, dim).expect("valid dimension");
    for (i, v) in b.base.iter().enumerate() {
        exact.upsert(i as RowId, v).expect("valid vector");
    }
    let filter = |row: RowId| bound.is_none_or(|x| b.attr[row as usize] < x);
    b.queries
        .iter()
        .map(|q| {
            let hits = exact.search(q, k, &filter, &SearchParams::default());
            hits.expect("valid query").iter().map(|n| n.row).collect()
        })
        .collect()
}

fn write_data(dir: &Path, b: &Bench, k: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_fvecs(&dir.join("base.fvecs"), &b.base)?;
    write_fvecs(&dir.join("query.fvecs"), &b.queries)?;
    let attr: Vec<u8> = b.attr.iter().flat_map(|a| a.to_le_bytes()).collect();
    std::fs::write(dir.join("attr.u32"), attr)?;
    let mut cases = Vec::new();
    for (case, truth) in CASES.iter().zip(&b.truth) {
        write_ivecs(&dir.join(format!("gt-{}.ivecs", case.name)), truth, k)?;
        cases.push(serde_json::json!({"name": case.name, "bound": case.bound}));
    }
    std::fs::write(dir.join("cases.json"), Json::Array(cases).to_string())
}

/// Runs every query once after a warm-up over the first 50, one at a time, and scores it.
fn measure(
    system: &str,
    case: usize,
    ef: usize,
    b: &Bench,
    k: usize,
    search: impl Fn(&[f32]) -> Vec<Neighbor>,
) -> Row {
    for q in b.queries.iter().take(50) {
        std::hint::black_box(search(q));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    let (mut hits, mut expected, mut short) = (0usize, 0usize, 0u64);
    let started = Instant::now();
    for (q, truth) in b.queries.iter().zip(&b.truth[case]) {
        let t = Instant::now();
        let found = search(q);
        hist.saturating_record(t.elapsed().as_nanos() as u64);
        expected += truth.len().min(k);
        if found.len() < truth.len().min(k) {
            short += 1;
        }
        hits += found.iter().filter(|n| truth.contains(&n.row)).count();
    }
    let secs = started.elapsed().as_secs_f64();
    Row {
        system: system.into(),
        case: CASES[case].name.into(),
        ef,
        recall: if expected == 0 { 1.0 } else { hits as f64 / expected as f64 },
        qps: b.queries.len() as f64 / secs,
        p50_us: hist.value_at_quantile(0.50) as f64 / 1e3,
        p99_us: hist.value_at_quantile(0.99) as f64 / 1e3,
        short,
    }
}

/// Tarn's side: build, then every case. Returns the rows and (build seconds, bytes/vector).
fn run_tarn(cli: &Cli, metric: Metric, b: &Bench, efs: &[usize]) -> (Vec<Row>, f64, f64) {
    let params = HnswParams {
        m: cli.m,
        ef_construction: cli.ef_construction,
        ..HnswParams::default()
    };
    let mut idx = HnswIndex::new(metric, cli.dim, params).expect("valid parameters");
    let t = Instant::now();
    for (i, v) in b.base.iter().enumerate() {
        idx.upsert(i as RowId, v).expect("valid vector");
    }
    let build_s = t.elapsed().as_secs_f64();
    let bytes_per_vector = idx.memory_bytes() as f64 / b.base.len() as f64;
    eprintln!("tarn: built in {build_s:.1} s, {bytes_per_vector:.0} B/vector");
    let idx = Index::from(idx);
    let mut rows = Vec::new();
    for (c, case) in CASES.iter().enumerate() {
        let filter = |row: RowId| case.bound.is_none_or(|x| b.attr[row as usize] < x);
        let case_efs = if case.bound.is_none() { efs.to_vec() } else { vec![cli.filter_ef] };
        for ef in case_efs {
            let sp = SearchParams { ef: Some(ef) };
            let row = measure("tarn", c, ef, b, cli.k, |q| {
                search_planned(&idx, q, cli.k, &filter, &sp).expect("valid query").1
            });
            eprintln!("{row:?}");
            rows.push(row);
        }
    }
    let exact = exact_floor(metric, b, cli.k);
    eprintln!("{exact:?}");
    rows.push(exact);
    (rows, build_s, bytes_per_vector)
}

/// The floor: the exact scan, one query at a time, over the first 100 queries.
fn exact_floor(metric: Metric, b: &Bench, k: usize) -> Row {
    let mut exact = ExactIndex::new(metric, b.base[0].len()).expect("valid dimension");
    for (i, v) in b.base.iter().enumerate() {
        exact.upsert(i as RowId, v).expect("valid vector");
    }
    let few = Bench {
        base: Vec::new(),
        queries: b.queries[..b.queries.len().min(150)].to_vec(),
        attr: Vec::new(),
        truth: b.truth.iter().map(|t| t[..t.len().min(150)].to_vec()).collect(),
    };
    let all = |_: RowId| true;
    let mut row = measure("exact scan (floor)", 0, 0, &few, k, |q| {
        exact.search(q, k, &all, &SearchParams::default()).expect("valid query")
    });
    row.ef = 0;
    row
}

/// The peers' side through `bench/peers/ann_peers.sh`: rows and per system (build s, B/vector).
fn run_peers(cli: &Cli, dir: &Path, efs: &str) -> (Vec<Row>, Vec<(String, f64, f64, String)>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/ann_peers.sh");
    let out = dir.join("peers.jsonl");
    let mut cmd = Command::new(&script);
    cmd.arg("run").arg(dir).arg(&out);
    cmd.args(["--m", &cli.m.to_string(), "--efc", &cli.ef_construction.to_string()]);
    cmd.args(["--efs", efs, "--filter-ef", &cli.filter_ef.to_string()]);
    cmd.args(["--metric", &cli.metric, "--k", &cli.k.to_string()]);
    if let Some(cpu) = cli.peer_cpu {
        cmd.env("PEER_CPU", cpu.to_string());
    }
    let status = cmd.status().expect("run bench/peers/ann_peers.sh");
    assert!(status.success(), "ann_peers.sh failed: {status}");
    let text = std::fs::read_to_string(&out).expect("peers' results");
    let (mut rows, mut builds) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let v: Json = serde_json::from_str(line).expect("one JSON object per line");
        let s = |f: &str| v[f].as_str().unwrap_or_default().to_string();
        let f = |f: &str| v[f].as_f64().unwrap_or(f64::NAN);
        if s("case") == "build" {
            builds.push((s("system"), f("build_s"), f("bytes_per_vector"), s("version")));
            continue;
        }
        rows.push(Row {
            system: s("system"),
            case: s("case"),
            ef: f("ef") as usize,
            recall: f("recall"),
            qps: f("qps"),
            p50_us: f("p50_us"),
            p99_us: f("p99_us"),
            short: f("short_results") as u64,
        });
    }
    (rows, builds)
}

fn report(cli: &Cli, rows: &[Row], builds: &[(String, f64, f64, String)]) -> String {
    let (date, time) = machine::utc_now();
    let mut md = format!("# ANN benchmark, {date} {time} UTC\n\n");
    md.push_str(&format!(
        "Machine: {}.\n\nData: {} × {} f32, {} gaussian clusters, seed {:#x}; {} queries, k = {}; \
         metric {}; m = {}, ef_construction = {} for every system; one thread each{}.\n\
         Command: `cargo run --release -p tarn-bench --bin ann --{}`\n\n",
        machine::describe(),
        cli.rows,
        cli.dim,
        cli.clusters,
        cli.seed,
        cli.queries,
        cli.k,
        cli.metric,
        cli.m,
        cli.ef_construction,
        match (cli.cpu, cli.peer_cpu) {
            (Some(a), Some(b)) => format!(", Tarn pinned to CPU {a}, peers to CPU {b}"),
            _ => String::new(),
        },
        std::env::args().skip(1).map(|a| format!(" {a}")).collect::<String>(),
    ));
    md.push_str("## Build\n\n| system | version | build s | bytes/vector |\n|---|---|---:|---:|\n");
    for (s, secs, bpv, v) in builds {
        md.push_str(&format!("| {s} | {v} | {secs:.1} | {bpv:.0} |\n"));
    }
    md.push_str(
        "\n## Searches (one query at a time)\n\n\
         | case | system | ef | recall@k | q/s | p50 µs | p99 µs | short results |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut sorted = rows.to_vec();
    sorted.sort_by(|a, b| (&a.case, a.ef, &a.system).cmp(&(&b.case, b.ef, &b.system)));
    for r in &sorted {
        md.push_str(&format!(
            "| {} | {} | {} | {:.4} | {:.0} | {:.1} | {:.1} | {} |\n",
            r.case, r.system, r.ef, r.recall, r.qps, r.p50_us, r.p99_us, r.short
        ));
    }
    md.push_str(
        "\nTarn's filtered rows go through the planner (`search_planned`: exact scan of the \
         matching rows, graph search with the filter inside the traversal, or plain graph \
         search, chosen from a counted sample); hnswlib's filter is a Python callable called \
         per visited node; faiss's is an `IDSelectorBitmap`. Peer latencies include the Python \
         call (~1–3 µs). Recall = true neighbours found / Σ min(k, matching rows); a short \
         result is a query answered with fewer than min(k, matching rows) rows.\n",
    );
    md
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    if let Some(cpu) = cli.cpu {
        tarn_bench::sys::pin_current_thread(cpu)?;
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful numbers");
    }
    let metric = Metric::parse(&cli.metric).unwrap_or_else(|e| {
        eprintln!("ann: {e}");
        std::process::exit(2);
    });
    let efs: Vec<usize> = cli
        .efs
        .split(',')
        .map(|x| x.trim().parse().expect("--efs: comma-separated numbers"))
        .collect();
    let (base, queries, attr) = generate(&cli);
    let mut b = Bench { base, queries, attr, truth: Vec::new() };
    let t = Instant::now();
    b.truth = CASES
        .iter()
        .map(|c| ground_truth(metric, &b, cli.k, c.bound))
        .collect();
    eprintln!("ground truth in {:.1} s", t.elapsed().as_secs_f64());
    let dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tarn-ann-{}", std::process::id())));
    write_data(&dir, &b, cli.k)?;

    let (mut rows, build_s, bpv) = run_tarn(&cli, metric, &b, &efs);
    let mut builds = vec![("tarn".to_string(), build_s, bpv, env!("CARGO_PKG_VERSION").to_string())];
    if !cli.no_peers {
        let (peer_rows, peer_builds) = run_peers(&cli, &dir, &cli.efs);
        rows.extend(peer_rows);
        builds.extend(peer_builds);
    }
    let md = report(&cli, &rows, &builds);
    println!("{md}");
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results"));
    std::fs::create_dir_all(&out)?;
    let (date, _) = machine::utc_now();
    let path = out.join(format!("ann-{date}-{}.md", cli.metric));
    std::fs::write(&path, md)?;
    eprintln!("report: {}", path.display());
    if cli.data_dir.is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
