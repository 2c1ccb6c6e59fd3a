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

use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use tarn_bench::ann::{run_peers, Bench, Build, DataArgs, OutputArgs, Row, Score, CASES};
use tarn_bench::machine;
use tarn_vectors::{
    search_planned, HnswIndex, HnswParams, Index, Metric, Neighbor, RowId, SearchParams,
    VectorIndex,
};

#[derive(Parser)]
#[command(
    name = "ann",
    about = "Tarn HNSW next to hnswlib and faiss, same data, one thread"
)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Pin this process to a CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Pin the peers' process to a CPU.
    #[arg(long)]
    peer_cpu: Option<usize>,
    #[command(flatten)]
    output: OutputArgs,
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
    let mut score = Score::default();
    let started = Instant::now();
    for (q, truth) in b.queries.iter().zip(&b.truth[case]) {
        let t = Instant::now();
        let found = search(q);
        hist.saturating_record(t.elapsed().as_nanos() as u64);
        let ids: Vec<RowId> = found.iter().map(|n| n.row).collect();
        score.add(truth, &ids, k);
    }
    let secs = started.elapsed().as_secs_f64();
    Row {
        system: system.into(),
        case: CASES[case].name.into(),
        ef,
        recall: score.recall(),
        qps: b.queries.len() as f64 / secs,
        p50_us: hist.value_at_quantile(0.50) as f64 / 1e3,
        p99_us: hist.value_at_quantile(0.99) as f64 / 1e3,
        short: score.short,
        distances: None,
    }
}

/// Tarn's side: build, then every case. Returns the rows and (build seconds, bytes/vector).
fn run_tarn(cli: &Cli, metric: Metric, b: &Bench, efs: &[usize]) -> (Vec<Row>, f64, f64) {
    let d = &cli.data;
    let params = HnswParams {
        m: d.m,
        ef_construction: d.ef_construction,
        ..HnswParams::default()
    };
    let mut idx = HnswIndex::new(metric, d.dim, params).expect("valid parameters");
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
        let case_efs = if case.bound.is_none() {
            efs.to_vec()
        } else {
            vec![d.filter_ef]
        };
        for ef in case_efs {
            let sp = SearchParams { ef: Some(ef) };
            let row = measure("tarn", c, ef, b, d.k, |q| {
                search_planned(&idx, q, d.k, &filter, &sp)
                    .expect("valid query")
                    .1
            });
            eprintln!("{row:?}");
            rows.push(row);
        }
    }
    let exact = exact_floor(metric, b, d.k);
    eprintln!("{exact:?}");
    rows.push(exact);
    (rows, build_s, bytes_per_vector)
}

/// The floor: the exact scan, one query at a time, over the first 150 queries.
fn exact_floor(metric: Metric, b: &Bench, k: usize) -> Row {
    let exact = b.exact_index(metric);
    let few = Bench {
        base: Vec::new(),
        queries: b.queries[..b.queries.len().min(150)].to_vec(),
        attr: Vec::new(),
        truth: b
            .truth
            .iter()
            .map(|t| t[..t.len().min(150)].to_vec())
            .collect(),
    };
    let all = |_: RowId| true;
    let mut row = measure("exact scan (floor)", 0, 0, &few, k, |q| {
        exact
            .search(q, k, &all, &SearchParams::default())
            .expect("valid query")
    });
    row.ef = 0;
    row
}

fn report(cli: &Cli, rows: &[Row], builds: &[Build]) -> String {
    let d = &cli.data;
    let (date, time) = machine::utc_now();
    let mut md = format!("# ANN benchmark, {date} {time} UTC\n\n");
    md.push_str(&format!(
        "Machine: {}.\n\nData: {} × {} f32, {} gaussian clusters, seed {:#x}; {} queries, k = {}; \
         metric {}; m = {}, ef_construction = {} for every system; one thread each{}.\n\
         Command: `cargo run --release -p tarn-bench --bin ann --{}`\n\n",
        machine::describe(),
        d.rows,
        d.dim,
        d.clusters,
        d.seed,
        d.queries,
        d.k,
        d.metric,
        d.m,
        d.ef_construction,
        match (cli.cpu, cli.peer_cpu) {
            (Some(a), Some(b)) => format!(", Tarn pinned to CPU {a}, peers to CPU {b}"),
            _ => String::new(),
        },
        std::env::args()
            .skip(1)
            .map(|a| format!(" {a}"))
            .collect::<String>(),
    ));
    md.push_str("## Build\n\n| system | version | build s | bytes/vector |\n|---|---|---:|---:|\n");
    for b in builds {
        md.push_str(&format!(
            "| {} | {} | {:.1} | {:.0} |\n",
            b.system, b.version, b.build_s, b.bytes_per_vector
        ));
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
    let fail = |e: String| -> ! {
        eprintln!("ann: {e}");
        std::process::exit(2);
    };
    let metric = Metric::parse(&cli.data.metric).unwrap_or_else(|e| fail(e.to_string()));
    let efs = cli.data.ef_list().unwrap_or_else(|e| fail(e));
    let t = Instant::now();
    let b = Bench::generate(&cli.data, metric);
    eprintln!(
        "data and ground truth in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let dir = cli.output.data_dir_or("tarn-ann");
    b.write_data(&dir, cli.data.k)?;

    let (mut rows, build_s, bpv) = run_tarn(&cli, metric, &b, &efs);
    let mut builds = vec![Build {
        system: "tarn".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        build_s,
        bytes_per_vector: bpv,
    }];
    if !cli.output.no_peers {
        let (peer_rows, peer_builds) =
            run_peers(&cli.data, &dir, cli.peer_cpu).unwrap_or_else(|e| fail(e));
        rows.extend(peer_rows);
        builds.extend(peer_builds);
    }
    let md = report(&cli, &rows, &builds);
    println!("{md}");
    let (date, _) = machine::utc_now();
    let path = cli
        .output
        .write_report(&format!("ann-{date}-{}.md", cli.data.metric), &md)?;
    eprintln!("report: {}", path.display());
    cli.output.clean_data_dir(&dir)?;
    Ok(())
}
