//! tarn-bench: load generator and floors. See bench/README.md.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use tarn_bench::clock::secs_to_ns;
use tarn_bench::engine::{self, EngineConfig, LoadMode};
use tarn_bench::floors::{self, FsyncMode, PingMode};
use tarn_bench::fraud::{self, FraudShape, View};
use tarn_bench::pglog;
use tarn_bench::report::{self, BenchRecord, MemRecord};
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
    /// Features suite: create the fraud stream and its feature views on tarnd.
    FeaturesSetup(FeatSetupArgs),
    /// Features suite: bulk-load fraud events (Tarn or Redis), optionally recording the
    /// server's RSS before and after (--pid).
    FeaturesLoad(FeatLoadArgs),
    /// Features suite: freshness probe (ack → visible on another connection) under
    /// background ingest.
    FeaturesFresh(FeatFreshArgs),
}

/// Which fraud-stream workload `run` drives (instead of the key/value GET/UPSERT).
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum FraudWorkload {
    /// Batches of --batch events: Tarn INGEST (producer-tagged) / Redis per-bucket commands.
    Ingest,
    /// FEATURES of one key of --view, uniform over --keys keys (Tarn only).
    Read,
}

#[derive(Args, Clone)]
struct ShapeArgs {
    /// Distinct cards (card:%07d); account = card / 4.
    #[arg(long, default_value_t = 1_000_000)]
    cards: u64,
    /// Distinct devices (dev:%06d).
    #[arg(long, default_value_t = 300_000)]
    devices: u64,
    #[arg(long, default_value_t = 1000)]
    merchants: u64,
    #[arg(long, default_value_t = 10_000)]
    ips: u64,
}

impl ShapeArgs {
    fn shape(&self) -> FraudShape {
        FraudShape {
            cards: self.cards.max(1),
            devices: self.devices.max(1),
            merchants: self.merchants.max(1),
            ips: self.ips.max(1),
        }
    }
}

fn parse_views(list: &str) -> Result<Vec<View>, String> {
    if list.trim().is_empty() || list == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|v| View::parse(v.trim()).ok_or_else(|| format!("unknown view {v:?}")))
        .collect()
}

#[derive(Args)]
struct FeatSetupArgs {
    #[arg(long)]
    addr: String,
    /// Views to create: comma-separated card,account,device, or "none" (stream only).
    #[arg(long, default_value = "card,account,device")]
    views: String,
}

#[derive(Args)]
struct FeatLoadArgs {
    #[arg(long, value_enum, default_value = "tarn")]
    target: Target,
    #[arg(long)]
    addr: String,
    #[command(flatten)]
    shape: ShapeArgs,
    /// First card of the load.
    #[arg(long, default_value_t = 0)]
    first_card: u64,
    /// Cards to load (default: --cards).
    #[arg(long)]
    load_cards: Option<u64>,
    /// One event per card in each of the N most recent 10-second buckets (1 = now only).
    #[arg(long, default_value_t = 1)]
    buckets: u32,
    /// Events per batch (default: 1000 for Tarn, 100 for Redis).
    #[arg(long)]
    batch: Option<usize>,
    /// Batches in flight.
    #[arg(long, default_value_t = 8)]
    window: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Views that exist on the server (for the memory record's key counts).
    #[arg(long, default_value = "card,account,device")]
    views: String,
    /// Record the server's VmRSS before and after the load (tarnd's pid).
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds to wait after the load before reading VmRSS again.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    #[arg(long)]
    cpu: Option<usize>,
    #[command(flatten)]
    record: RecordArgs,
}

#[derive(Args)]
struct FeatFreshArgs {
    #[arg(long)]
    addr: String,
    #[command(flatten)]
    shape: ShapeArgs,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Pause between probes, µs (from one probe's INGEST to the next).
    #[arg(long, default_value_t = 1000.0)]
    interval_us: f64,
    /// Reads per probe before giving it up as "never visible".
    #[arg(long, default_value_t = 1000)]
    max_reads: u32,
    /// Background ingest, events/s (open loop; 0 = none).
    #[arg(long, default_value_t = 20_000.0)]
    bg_rate: f64,
    #[arg(long, default_value_t = 8)]
    bg_conns: usize,
    #[arg(long, default_value_t = 100)]
    bg_batch: usize,
    /// Background batches in flight per connection at most.
    #[arg(long, default_value_t = 4)]
    bg_depth: usize,
    #[arg(long)]
    cpu: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    record: RecordArgs,
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
    /// Role of the row in the suite's goals table (e.g. ingest:tarn:async).
    #[arg(long)]
    tag: Option<String>,
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
    /// Drive a fraud-stream workload instead of key/value GET/UPSERT (features suite):
    /// `ingest` sends batches of --batch events, `read` FEATURES of one key of --view.
    #[arg(long, value_enum)]
    fraud: Option<FraudWorkload>,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Feature view read by --fraud read (card, account, device).
    #[arg(long, default_value = "card")]
    view: String,
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
        "{} | {} | {} | conns={} depth={} | {:.0} {} | {}",
        r.system,
        r.workload,
        r.mode,
        r.conns,
        r.depth,
        r.throughput,
        r.unit.as_deref().unwrap_or("ops/s"),
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

/// /proc/stat ticks of the client CPU and this process's CPU time at one moment.
struct CpuMark {
    cpu: usize,
    busy: u64,
    total: u64,
    own_ns: u64,
}

fn cpu_mark(cpu: Option<usize>) -> Option<CpuMark> {
    let cpu = cpu?;
    let (busy, total) = cpu_ticks(cpu)?;
    Some(CpuMark {
        cpu,
        busy,
        total,
        own_ns: self_cpu_ns(),
    })
}

/// Interference check: the % of the client CPU's time since `m` that went to anything but
/// this process.
fn interference_pct(m: Option<CpuMark>) -> Option<f64> {
    let m = m?;
    let (b1, t1) = cpu_ticks(m.cpu)?;
    let hz = clock_ticks_per_sec() as f64;
    let total_s = (t1 - m.total) as f64 / hz;
    let other_s = (b1 - m.busy) as f64 / hz - (self_cpu_ns() - m.own_ns) as f64 / 1e9;
    (total_s > 0.0).then(|| (other_s / total_s * 100.0).max(0.0))
}

fn run(a: &RunArgs) -> Result<Outcome, String> {
    if let Some(cpu) = a.cpu {
        pin_current_thread(cpu).map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
    }
    if a.preload && a.fraud.is_none() {
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
    let f: Box<dyn CodecFactory> = match (a.fraud, a.target.target) {
        (None, _) => factory(&a.target),
        (Some(FraudWorkload::Ingest), Target::Tarn) => {
            if a.depth > 128 {
                return Err("--depth above 128 exceeds the producer window of 128 seqs".into());
            }
            Box::new(fraud::TarnIngestFactory::new(
                a.shape.shape(),
                a.workload.batch.max(1),
                a.seed,
            ))
        }
        (Some(FraudWorkload::Ingest), Target::Redis) => Box::new(fraud::RedisFraudFactory::new(
            a.shape.shape(),
            a.workload.batch.max(1),
            a.seed,
        )),
        (Some(FraudWorkload::Read), Target::Tarn) => Box::new(fraud::TarnFeaturesFactory {
            view: View::parse(&a.view).ok_or_else(|| format!("unknown view {:?}", a.view))?,
        }),
        (Some(FraudWorkload::Read), Target::Redis) => {
            return Err("--fraud read is a Tarn FEATURES read; there is no Redis variant".into())
        }
    };
    if a.preload && a.fraud.is_some() {
        return Err("--preload loads key/value rows; use features-load for --fraud".into());
    }
    let before = cpu_mark(a.cpu);
    let out = engine::run(&cfg, f.as_ref())?;
    let interference = interference_pct(before);
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
    let batch = a.workload.batch.max(1);
    let (throughput, unit, label) = match a.fraud {
        None => (
            rec.throughput(),
            None,
            workload_label(&a.workload, a.target.target),
        ),
        Some(FraudWorkload::Ingest) => {
            notes = if notes.is_empty() {
                format!("{:.0} batches/s", rec.throughput())
            } else {
                format!("{:.0} batches/s; {notes}", rec.throughput())
            };
            let label = match a.target.target {
                Target::Tarn => format!("INGEST x{batch} events (3 views)"),
                Target::Redis => format!(
                    "x{batch} events, {} cmds/event pipelined",
                    fraud::REDIS_CMDS_PER_EVENT
                ),
            };
            (
                rec.throughput() * batch as f64,
                Some("ev/s".to_string()),
                label,
            )
        }
        Some(FraudWorkload::Read) => (
            rec.throughput(),
            None,
            format!("FEATURES {} x{batch} key", a.view),
        ),
    };
    let r = BenchRecord {
        suite: a.record.suite.clone(),
        system: a
            .record
            .label
            .clone()
            .unwrap_or_else(|| f.name().to_string()),
        workload: a.record.workload_label.clone().unwrap_or(label),
        mode: mode_s,
        conns: a.conns as u64,
        depth: a.depth as u64,
        throughput,
        lat: LatSummary::from_ns(&rec.hist),
        lat_corrected: rec.corrected.as_ref().map(LatSummary::from_ns),
        notes,
        tag: a.record.tag.clone(),
        unit,
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
        tag: rec.tag.clone(),
        unit: None,
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
        tag: a.record.tag.clone(),
        unit: None,
    };
    emit(&a.record, r)
}

fn features_setup(a: &FeatSetupArgs) -> Result<(), String> {
    let views = parse_views(&a.views)?;
    for m in fraud::setup(resolve(&a.addr)?, &views)? {
        eprintln!("tarn: {m}");
    }
    Ok(())
}

fn features_load(a: &FeatLoadArgs) -> Result<(), String> {
    if let Some(cpu) = a.cpu {
        pin_current_thread(cpu).map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
    }
    let addr = resolve(&a.addr)?;
    let shape = a.shape.shape();
    let views = parse_views(&a.views)?;
    let plan = fraud::LoadPlan {
        first_card: a.first_card,
        cards: a.load_cards.unwrap_or(shape.cards),
        buckets: a.buckets.max(1),
        batch: a.batch.unwrap_or(match a.target {
            Target::Tarn => 1000,
            Target::Redis => 100,
        }),
        window: a.window.max(1),
        seed: a.seed,
    };
    let rss =
        |pid: u32| fraud::vm_rss_kib(pid).ok_or_else(|| format!("cannot read VmRSS of pid {pid}"));
    let before = a.pid.map(rss).transpose()?;
    let mut codec: Box<dyn fraud::IngestCodec> = match a.target {
        Target::Tarn => Box::new(fraud::TarnIngestCodec::new(
            shape.clone(),
            plan.batch,
            a.seed,
            Some(fraud::producer_base()),
        )),
        Target::Redis => Box::new(fraud::RedisFraudCodec::new(
            shape.clone(),
            plan.batch,
            a.seed,
        )),
    };
    let st = fraud::load(addr, codec.as_mut(), &shape, &plan)?;
    eprintln!(
        "loaded {} events ({} cards x {} buckets) in {:.1}s ({:.0} events/s, {} batches, {} error replies); active keys: {} cards, {} accounts, {} devices",
        st.events,
        st.cards,
        plan.buckets,
        st.secs,
        st.events as f64 / st.secs.max(1e-9),
        st.batches,
        st.errors,
        st.cards,
        st.accounts,
        st.devices
    );
    if st.errors > 0 {
        return Err(format!("load got {} error replies", st.errors));
    }
    if let (Some(pid), Some(before)) = (a.pid, before) {
        std::thread::sleep(std::time::Duration::from_secs_f64(a.settle.max(0.0)));
        let after = rss(pid)?;
        let keys = views
            .iter()
            .map(|v| match v {
                View::Card => st.cards,
                View::Account => st.accounts,
                View::Device => st.devices,
            })
            .collect();
        let mut notes = a.record.notes.clone();
        if !notes.is_empty() {
            notes.push_str("; ");
        }
        notes.push_str(&format!(
            "loaded at {:.0} events/s in batches of {}",
            st.events as f64 / st.secs.max(1e-9),
            plan.batch
        ));
        let m = MemRecord {
            suite: a.record.suite.clone(),
            system: a.record.label.clone().unwrap_or_else(|| "tarn".into()),
            views: views.iter().map(|v| v.name().to_string()).collect(),
            events: st.events,
            keys,
            rss_before_kib: before,
            rss_after_kib: after,
            load_secs: st.secs,
            tag: a.record.tag.clone(),
            notes,
        };
        let per_key = if m.total_keys() > 0 {
            format!(
                ", +{:.0} B per active key per view",
                m.delta_bytes() as f64 / m.total_keys() as f64
            )
        } else {
            String::new()
        };
        println!(
            "{} | memory | views {:?} | {} events | RSS {} -> {} KiB (+{} B per event{per_key})",
            m.system,
            m.views,
            m.events,
            m.rss_before_kib,
            m.rss_after_kib,
            m.delta_bytes() / m.events.max(1),
        );
        if let Some(p) = &a.record.json {
            report::append_json_line(p, &m).map_err(|e| format!("writing {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

fn features_fresh(a: &FeatFreshArgs) -> Result<(), String> {
    let cfg = fraud::FreshConfig {
        addr: resolve(&a.addr)?,
        warmup_ns: secs_to_ns(a.warmup),
        measure_ns: secs_to_ns(a.seconds),
        interval_ns: (a.interval_us.max(0.0) * 1000.0) as u64,
        max_reads: a.max_reads.max(1),
        bg: (a.bg_rate > 0.0).then(|| fraud::BgLoad {
            events_per_sec: a.bg_rate,
            conns: a.bg_conns.max(1),
            batch: a.bg_batch.max(1),
            depth: a.bg_depth.max(1),
        }),
        shape: a.shape.shape(),
        cpu: a.cpu,
        seed: a.seed,
    };
    let before = cpu_mark(a.cpu);
    let out = fraud::freshness(&cfg)?;
    let interference = interference_pct(before);
    let mut notes = a.record.notes.clone();
    let mut add = |s: String| {
        if !notes.is_empty() {
            notes.push_str("; ");
        }
        notes.push_str(&s);
    };
    let pct = |n: u64| 100.0 * n as f64 / out.probes.max(1) as f64;
    add(format!(
        "{:.2}% of probes needed more than one read (max {} reads)",
        pct(out.multi_read),
        out.max_reads
    ));
    if out.never_visible > 0 {
        add(format!(
            "{} probes ({:.2}%) never visible within {} reads",
            out.never_visible,
            pct(out.never_visible),
            a.max_reads
        ));
    }
    let mode = match &out.bg {
        None => "no background load".to_string(),
        Some(Ok(bg)) => {
            let r = &bg.recorder;
            add(format!(
                "background: {:.0} ev/s achieved of {:.0} ({} conns, batches of {}, batch ack p99 {:.0} µs{}{})",
                r.throughput() * a.bg_batch as f64,
                a.bg_rate,
                a.bg_conns,
                a.bg_batch,
                LatSummary::from_ns(&r.hist).p99_us,
                if r.errors > 0 { format!(", {} error replies", r.errors) } else { String::new() },
                if bg.unsent > 0 { format!(", {} batches never sent (overloaded)", bg.unsent) } else { String::new() },
            ));
            format!(
                "bg {:.0} ev/s, probe every {:.0} µs",
                a.bg_rate, a.interval_us
            )
        }
        Some(Err(e)) => {
            add(format!("background load FAILED: {e}"));
            format!("bg {:.0} ev/s (failed)", a.bg_rate)
        }
    };
    if let Some(cpu) = a.cpu {
        add(format!("client on CPU {cpu}"));
    }
    if let Some(pct) = interference.filter(|p| *p >= 2.0) {
        add(format!(
            "WARNING: other processes used {pct:.0}% of the client CPU"
        ));
    }
    let system = a.record.label.clone().unwrap_or_else(|| "tarn".into());
    let secs = out.measure_secs.max(1e-9);
    let visible = BenchRecord {
        suite: a.record.suite.clone(),
        system: system.clone(),
        workload: a
            .record
            .workload_label
            .clone()
            .unwrap_or_else(|| "freshness: INGEST ack → FEATURES on 2nd conn sees it".into()),
        mode: mode.clone(),
        conns: 2,
        depth: 1,
        throughput: out.probes as f64 / secs,
        lat: LatSummary::from_ns(&out.visible),
        lat_corrected: None,
        notes,
        tag: a.record.tag.clone(),
        unit: Some("probes/s".into()),
    };
    emit(&a.record, visible)?;
    let ack = BenchRecord {
        suite: a.record.suite.clone(),
        system,
        workload: "INGEST x1 event (freshness probe, tagged)".into(),
        mode,
        conns: 1,
        depth: 1,
        throughput: out.probes as f64 / secs,
        lat: LatSummary::from_ns(&out.ack),
        lat_corrected: None,
        notes: "ack latency of the probe events above".into(),
        tag: None,
        unit: Some("ev/s".into()),
    };
    emit(&a.record, ack)
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
            .and_then(|t| report::parse_lines(&t))
            .map(|ls| print!("{}", report::render_all(&ls))),
        Cmd::FeaturesSetup(a) => features_setup(a),
        Cmd::FeaturesLoad(a) => features_load(a),
        Cmd::FeaturesFresh(a) => features_fresh(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarn-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
