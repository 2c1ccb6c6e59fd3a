//! tarn-bench: load generator and floors. See bench/README.md.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use tarn_bench::clock::secs_to_ns;
use tarn_bench::engine::{self, EngineConfig, LoadMode};
use tarn_bench::floors::{self, FsyncMode, PingMode};
use tarn_bench::pglog;
use tarn_bench::report::{self, BenchRecord};
use tarn_bench::stats::LatSummary;
use tarn_bench::sys::{clock_ticks_per_sec, cpu_ticks, pin_current_thread, self_cpu_ns};
use tarn_bench::target::{blocking_pipeline, CodecFactory, RedisFactory};
use tarn_bench::tarn::{self as tarn_adapter, TarnFactory};
use tarn_bench::workload::{make_value, OpKind, Workload};

#[derive(Parser)]
#[command(
    name = "tarn-bench",
    version,
    about = "Tarn load generator, peers and floors"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive load against a server (closed loop by default, open loop with --rate).
    Run(RunArgs),
    /// Preload keys 0..K (batched upserts / MSETs) and exit.
    Preload(PreloadArgs),
    /// Loopback TCP ping-pong floor: same-core, cross-core parked, cross-core busy-poll.
    FloorPingpong(PingArgs),
    /// 4 KiB fdatasync floor: append+fdatasync, O_DIRECT overwrite+fdatasync, O_DIRECT|O_DSYNC.
    FloorFsync(FsyncArgs),
    /// Summarise pgbench per-transaction logs (pgbench -l) into a result record.
    PgbenchLog(PgArgs),
    /// Render a JSONL results file as Markdown tables.
    Report { file: PathBuf },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Target {
    Tarn,
    Redis,
}

#[derive(Args, Clone)]
struct TargetArgs {
    #[arg(long, value_enum)]
    target: Target,
    #[arg(long)]
    addr: String,
    /// Tarn table name.
    #[arg(long, default_value = "bench_kv")]
    table: String,
    /// Tarn DDL run by --preload (an "already exists" error is ignored).
    #[arg(long)]
    tarn_create_sql: Option<String>,
}

#[derive(Args, Clone)]
struct WorkloadArgs {
    /// Distinct keys (key:%08d, uniform).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Fraction of writes (SET / UPSERT); 0 = all GET.
    #[arg(long, default_value_t = 0.0)]
    write_ratio: f64,
    /// Keys (GET) or rows (UPSERT) per request; Redis uses MGET/MSET for >1.
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

#[derive(Args, Clone)]
struct RecordArgs {
    /// Append the result as one JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Section name in the report.
    #[arg(long, default_value = "adhoc")]
    suite: String,
    /// System label in the report (default: the target name).
    #[arg(long)]
    label: Option<String>,
    /// Workload label in the report (default: derived).
    #[arg(long)]
    workload_label: Option<String>,
    #[arg(long, default_value = "")]
    notes: String,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    workload: WorkloadArgs,
    #[command(flatten)]
    record: RecordArgs,
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Closed loop: requests kept in flight per connection. Open loop: per-connection cap.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Open loop: total requests per second (intended-time latency).
    #[arg(long)]
    rate: Option<f64>,
    /// Busy-poll (epoll_wait timeout 0) instead of parking.
    #[arg(long)]
    spin: bool,
    /// Pin the generator thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Measured seconds (after warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds to wait for in-flight replies after the run.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
    /// Closed loop: expected interval (µs) for record_correct; default = mean warm-up latency.
    #[arg(long)]
    expected_interval_us: Option<f64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Preload keys 0..K before measuring.
    #[arg(long)]
    preload: bool,
    /// With --cpu: if other processes took more than this % of the client CPU, discard the
    /// result (nothing written to --json) and exit with status 3 so the caller can retry.
    #[arg(long)]
    max_interference: Option<f64>,
}

/// Exit status of `run` when the result was discarded because of interference.
const EXIT_INTERFERENCE: u8 = 3;

enum Outcome {
    Done,
    Interfered,
}

#[derive(Args)]
struct PreloadArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Rows per preload request.
    #[arg(long, default_value_t = 500)]
    chunk: usize,
}

#[derive(Args)]
struct PingArgs {
    /// Payload bytes after the 16-byte header.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    #[arg(long, default_value_t = 0)]
    cpu_a: usize,
    #[arg(long, default_value_t = 1)]
    cpu_b: usize,
    /// Measured seconds per variant.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Variants: same-core, parked, spin (comma-separated).
    #[arg(long, default_value = "same-core,parked,spin", value_delimiter = ',')]
    modes: Vec<String>,
    #[command(flatten)]
    record: RecordArgs,
}

#[derive(Args)]
struct FsyncArgs {
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    #[arg(long, default_value_t = 200_000)]
    max_ops: u64,
    /// Variants: append, direct, dsync (comma-separated).
    #[arg(long, default_value = "append,direct,dsync", value_delimiter = ',')]
    modes: Vec<String>,
    #[command(flatten)]
    record: RecordArgs,
}

#[derive(Args)]
struct PgArgs {
    /// pgbench log files (pgbench -l --log-prefix=...).
    files: Vec<PathBuf>,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 32)]
    conns: u64,
    #[arg(long, default_value = "closed")]
    mode: String,
    #[command(flatten)]
    record: RecordArgs,
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {addr} resolves to nothing"))
}

fn workload(w: &WorkloadArgs) -> Workload {
    Workload {
        keys: w.keys,
        value_size: w.value_size,
        write_ratio: w.write_ratio,
        batch: w.batch.max(1),
    }
}

fn factory(t: &TargetArgs) -> Box<dyn CodecFactory> {
    match t.target {
        Target::Redis => Box::new(RedisFactory),
        Target::Tarn => Box::new(TarnFactory {
            table: t.table.clone(),
        }),
    }
}

fn emit(rec: &RecordArgs, r: BenchRecord) -> Result<(), String> {
    println!(
        "{} | {} | {} | conns={} depth={} | {:.0} ops/s | {}",
        r.system,
        r.workload,
        r.mode,
        r.conns,
        r.depth,
        r.throughput,
        r.lat.line()
    );
    if let Some(c) = &r.lat_corrected {
        println!("    CO-corrected (record_correct): {}", c.line());
    }
    if !r.notes.is_empty() {
        println!("    notes: {}", r.notes);
    }
    if let Some(p) = &rec.json {
        report::append_jsonl(p, &r).map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    Ok(())
}

fn preload(t: &TargetArgs, w: &WorkloadArgs, chunk: usize) -> Result<(), String> {
    let addr = resolve(&t.addr)?;
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let f = factory(t);
    let mut codec = f.make();
    codec
        .handshake(&mut s)
        .map_err(|e| format!("handshake: {e}"))?;
    if t.target == Target::Tarn {
        let ddl = t
            .tarn_create_sql
            .clone()
            .unwrap_or_else(|| tarn_adapter::default_create_sql(&t.table));
        match tarn_adapter::sql(&mut s, 2, &ddl).map_err(|e| format!("DDL: {e}"))? {
            Ok(msg) => eprintln!("tarn: {msg}"),
            Err(e) if e.to_lowercase().contains("exist") => eprintln!("tarn: table exists ({e})"),
            Err(e) => return Err(format!("DDL {ddl:?} failed: {e}")),
        }
    }
    let value = make_value(w.value_size);
    let keys = w.keys;
    let chunk = chunk.max(1) as u64;
    let started = std::time::Instant::now();
    let mut it = (0..keys.div_ceil(chunk)).map(|c| {
        let lo = c * chunk;
        let hi = (lo + chunk).min(keys);
        (OpKind::Set, (lo..hi).collect::<Vec<u64>>())
    });
    let errors = blocking_pipeline(&mut s, codec.as_mut(), &mut it, &value, 16)
        .map_err(|e| format!("preload: {e}"))?;
    eprintln!(
        "preloaded {} keys into {} in {:.1}s ({} error replies)",
        keys,
        f.name(),
        started.elapsed().as_secs_f64(),
        errors
    );
    if errors > 0 {
        return Err(format!("preload got {errors} error replies"));
    }
    if t.target == Target::Tarn && keys > 0 {
        let probe = [0, keys / 2, keys - 1];
        let found = tarn_adapter::count_found(&mut s, 3, &t.table, &probe)
            .map_err(|e| format!("preload check: {e}"))?;
        if found != probe.len() {
            return Err(format!(
                "preload check: only {found} of keys {probe:?} are readable after preload"
            ));
        }
    }
    Ok(())
}

fn workload_label(w: &WorkloadArgs, target: Target) -> String {
    let write = match target {
        Target::Tarn => "UPSERT",
        Target::Redis => {
            if w.batch > 1 {
                "MSET"
            } else {
                "SET"
            }
        }
    };
    let read = if target == Target::Redis && w.batch > 1 {
        "MGET"
    } else {
        "GET"
    };
    let base = if w.write_ratio <= 0.0 {
        read.to_string()
    } else if w.write_ratio >= 1.0 {
        write.to_string()
    } else {
        format!(
            "{:.0}% {read} / {:.0}% {write}",
            (1.0 - w.write_ratio) * 100.0,
            w.write_ratio * 100.0
        )
    };
    if w.batch > 1 {
        format!("{base} x{}", w.batch)
    } else {
        base
    }
}

fn run(a: &RunArgs) -> Result<Outcome, String> {
    if let Some(cpu) = a.cpu {
        pin_current_thread(cpu).map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
    }
    if a.preload {
        preload(&a.target, &a.workload, 500)?;
    }
    let addr = resolve(&a.target.addr)?;
    let mode = match a.rate {
        Some(rate) => LoadMode::Open {
            rate,
            max_outstanding: a.depth.max(1),
        },
        None => LoadMode::Closed {
            depth: a.depth.max(1),
        },
    };
    let cfg = EngineConfig {
        addr,
        conns: a.conns,
        mode,
        spin: a.spin,
        warmup_ns: secs_to_ns(a.warmup),
        measure_ns: secs_to_ns(a.seconds),
        drain_ns: secs_to_ns(a.drain),
        seed: a.seed,
        workload: workload(&a.workload),
        expected_interval_ns: a.expected_interval_us.map(|us| (us * 1000.0) as u64),
    };
    let f = factory(&a.target);
    let before = a.cpu.and_then(|c| cpu_ticks(c).map(|t| (t, self_cpu_ns())));
    let out = engine::run(&cfg, f.as_ref())?;
    // Interference check: time the client CPU spent on anything but this process.
    let interference = match (a.cpu, before) {
        (Some(c), Some(((b0, t0), own0))) => cpu_ticks(c).and_then(|(b1, t1)| {
            let hz = clock_ticks_per_sec() as f64;
            let total_s = (t1 - t0) as f64 / hz;
            let other_s = (b1 - b0) as f64 / hz - (self_cpu_ns() - own0) as f64 / 1e9;
            (total_s > 0.0).then(|| (other_s / total_s * 100.0).max(0.0))
        }),
        _ => None,
    };
    let rec = &out.recorder;
    let mut notes = a.record.notes.clone();
    let mut add = |s: String| {
        if !notes.is_empty() {
            notes.push_str("; ");
        }
        notes.push_str(&s);
    };
    if rec.errors > 0 {
        add(format!("{} error replies", rec.errors));
    }
    if out.unsent > 0 {
        add(format!(
            "{} scheduled requests never sent (overloaded)",
            out.unsent
        ));
    }
    if out.timed_out > 0 {
        add(format!("{} requests unanswered after drain", out.timed_out));
    }
    if let Some(cpu) = a.cpu {
        add(format!("client on CPU {cpu}"));
    }
    if let (Some(pct), Some(max)) = (interference, a.max_interference) {
        if pct > max {
            eprintln!(
                "tarn-bench: other processes used {pct:.0}% of CPU {} (limit {max}%): result discarded",
                a.cpu.unwrap_or(0)
            );
            return Ok(Outcome::Interfered);
        }
    }
    if let Some(pct) = interference {
        if pct >= 2.0 {
            add(format!(
                "WARNING: other processes used {pct:.0}% of the client CPU"
            ));
        }
    }
    let mode_s = match (a.rate, a.spin) {
        (Some(r), s) => format!("open {r:.0}/s{}", if s { " spin" } else { "" }),
        (None, true) => "closed spin".into(),
        (None, false) => "closed".into(),
    };
    let r = BenchRecord {
        suite: a.record.suite.clone(),
        system: a
            .record
            .label
            .clone()
            .unwrap_or_else(|| f.name().to_string()),
        workload: a
            .record
            .workload_label
            .clone()
            .unwrap_or_else(|| workload_label(&a.workload, a.target.target)),
        mode: mode_s,
        conns: a.conns as u64,
        depth: a.depth as u64,
        throughput: rec.throughput(),
        lat: LatSummary::from_ns(&rec.hist),
        lat_corrected: rec.corrected.as_ref().map(LatSummary::from_ns),
        notes,
    };
    emit(&a.record, r).map(|()| Outcome::Done)
}

fn floor_record(
    rec: &RecordArgs,
    workload: &str,
    mode: &str,
    h: &hdrhistogram::Histogram<u64>,
    seconds: f64,
) -> BenchRecord {
    BenchRecord {
        suite: rec.suite.clone(),
        system: rec.label.clone().unwrap_or_else(|| "floor".into()),
        workload: workload.into(),
        mode: mode.into(),
        conns: 1,
        depth: 1,
        throughput: h.len() as f64 / seconds,
        lat: LatSummary::from_ns(h),
        lat_corrected: None,
        notes: rec.notes.clone(),
    }
}

fn floor_ping(a: &PingArgs) -> Result<(), String> {
    for m in &a.modes {
        let mode = match m.as_str() {
            "same-core" => PingMode::SameCore,
            "parked" => PingMode::CrossCoreParked,
            "spin" => PingMode::CrossCoreSpin,
            other => return Err(format!("unknown ping-pong mode {other}")),
        };
        let h = floors::pingpong(
            mode,
            a.cpu_a,
            a.cpu_b,
            a.payload,
            secs_to_ns(a.warmup),
            secs_to_ns(a.seconds),
        )
        .map_err(|e| format!("ping-pong {}: {e}", mode.label()))?;
        let cpus = if mode == PingMode::SameCore {
            format!("CPU {}", a.cpu_a)
        } else {
            format!("CPUs {}/{}", a.cpu_a, a.cpu_b)
        };
        let mut r = floor_record(
            &a.record,
            &format!("loopback TCP ping-pong {}B", 16 + a.payload),
            mode.label(),
            &h,
            a.seconds,
        );
        if r.notes.is_empty() {
            r.notes = cpus;
        }
        emit(&a.record, r)?;
    }
    Ok(())
}

fn floor_fsync(a: &FsyncArgs) -> Result<(), String> {
    for m in &a.modes {
        let mode = match m.as_str() {
            "append" => FsyncMode::AppendFdatasync,
            "direct" => FsyncMode::DirectOverwriteFdatasync,
            "dsync" => FsyncMode::DirectOverwriteDsync,
            other => return Err(format!("unknown fsync mode {other}")),
        };
        match floors::fsync_floor(
            mode,
            &a.dir,
            secs_to_ns(a.warmup),
            secs_to_ns(a.seconds),
            a.max_ops,
        ) {
            Ok(h) => {
                let mut r = floor_record(&a.record, "fdatasync floor", mode.label(), &h, a.seconds);
                if r.notes.is_empty() {
                    r.notes = format!("dir {}", a.dir.display());
                }
                emit(&a.record, r)?;
            }
            Err(e) => eprintln!("fsync floor {}: skipped: {e}", mode.label()),
        }
    }
    Ok(())
}

fn pgbench_log(a: &PgArgs) -> Result<(), String> {
    let mut txns = Vec::new();
    for f in &a.files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        txns.extend(text.lines().filter_map(pglog::parse_line));
    }
    if txns.is_empty() {
        return Err("no transactions in the pgbench logs".into());
    }
    let s = pglog::summarize(&txns, a.warmup, a.seconds);
    let mut notes = a.record.notes.clone();
    if s.failed > 0 {
        notes.push_str(&format!("; {} failed/skipped", s.failed));
    }
    let r = BenchRecord {
        suite: a.record.suite.clone(),
        system: a
            .record
            .label
            .clone()
            .unwrap_or_else(|| "postgresql".into()),
        workload: a
            .record
            .workload_label
            .clone()
            .unwrap_or_else(|| "INSERT .. ON CONFLICT DO UPDATE".into()),
        mode: a.mode.clone(),
        conns: a.conns,
        depth: 1,
        throughput: s.throughput(),
        lat: LatSummary::from_ns(&s.hist),
        lat_corrected: None,
        notes,
    };
    emit(&a.record, r)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match &cli.cmd {
        Cmd::Run(a) => match run(a) {
            Ok(Outcome::Done) => Ok(()),
            Ok(Outcome::Interfered) => return ExitCode::from(EXIT_INTERFERENCE),
            Err(e) => Err(e),
        },
        Cmd::Preload(a) => preload(&a.target, &a.workload, a.chunk),
        Cmd::FloorPingpong(a) => floor_ping(a),
        Cmd::FloorFsync(a) => floor_fsync(a),
        Cmd::PgbenchLog(a) => pgbench_log(a),
        Cmd::Report { file } => std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|t| report::parse_jsonl(&t))
            .map(|rs| print!("{}", report::render_markdown(&rs))),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarn-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
