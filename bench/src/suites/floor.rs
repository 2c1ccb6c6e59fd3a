//! `floor-pingpong` (loopback TCP ping-pong) and `floor-fsync` (4 KiB fdatasync variants):
//! the physical floors, one result record per variant.

use std::path::PathBuf;

use clap::Args;

use super::{emit, RecordArgs};
use crate::clock::secs_to_ns;
use crate::floors::{self, FsyncMode, PingMode};
use crate::report::BenchRecord;
use crate::stats::LatSummary;

#[derive(Args)]
pub struct PingArgs {
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
pub struct FsyncArgs {
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

pub fn floor_ping(a: &PingArgs) -> Result<(), String> {
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

pub fn floor_fsync(a: &FsyncArgs) -> Result<(), String> {
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
