//! `run` (drive load against a server, closed or open loop, key/value GET/UPSERT or a
//! fraud-stream workload) and `preload` (load keys 0..K and exit).

use std::net::TcpStream;

use clap::{Args, ValueEnum};

use super::features::ShapeArgs;
use super::{cpu_mark, emit, interference_pct, resolve, RecordArgs, Target};
use crate::clock::secs_to_ns;
use crate::engine::{self, EngineConfig, LoadMode};
use crate::fraud::{self, View};
use crate::report::BenchRecord;
use crate::stats::LatSummary;
use crate::sys::pin_current_thread;
use crate::target::{blocking_pipeline, CodecFactory, RedisFactory};
use crate::tarn::{self as tarn_adapter, TarnFactory};
use crate::workload::{make_value, OpKind, Workload};

/// Which fraud-stream workload `run` drives (instead of the key/value GET/UPSERT).
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum FraudWorkload {
    /// Batches of --batch events: Tarn INGEST (producer-tagged) / Redis per-bucket commands.
    Ingest,
    /// FEATURES of one key of --view, uniform over --keys keys (Tarn only).
    Read,
}

#[derive(Args, Clone)]
pub struct TargetArgs {
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
pub struct WorkloadArgs {
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

#[derive(Args)]
pub struct RunArgs {
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
pub const EXIT_INTERFERENCE: u8 = 3;

pub enum Outcome {
    Done,
    Interfered,
}

#[derive(Args)]
pub struct PreloadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Rows per preload request.
    #[arg(long, default_value_t = 500)]
    pub chunk: usize,
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

pub fn preload(t: &TargetArgs, w: &WorkloadArgs, chunk: usize) -> Result<(), String> {
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

pub fn run(a: &RunArgs) -> Result<Outcome, String> {
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
