//! The commands of the `tarn-bench` binary (`src/bin/tarn-bench.rs` parses the arguments and
//! dispatches): their options (clap `Args`) and what they run.
//!
//! * [`run`] — `run` and `preload`: key/value or fraud-stream load through the load engine;
//! * [`floor`] — `floor-pingpong` and `floor-fsync`: the physical floors;
//! * [`pgbench`] — `pgbench-log`: pgbench per-transaction logs as a result record;
//! * [`features`] — `features-setup`, `features-load`, `features-fresh`: the features suite.
//!
//! This module holds what they share: the target, the result-record options, address
//! resolution, printing/appending a result, and the client-CPU interference check.

pub mod features;
pub mod floor;
pub mod pgbench;
pub mod run;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::report::{self, BenchRecord};
use crate::sys::{self_cpu_ns, CpuMark};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Target {
    Tarn,
    Redis,
}

#[derive(Args, Clone)]
pub struct RecordArgs {
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

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {addr} resolves to nothing"))
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

/// /proc/stat ticks of the client CPU and this process's CPU time at one moment.
fn cpu_mark(cpu: Option<usize>) -> Option<CpuMark> {
    CpuMark::take(cpu?, self_cpu_ns())
}

/// Interference check: the % of the client CPU's time since `m` that went to anything but
/// this process.
fn interference_pct(m: Option<CpuMark>) -> Option<f64> {
    m?.other_pct(self_cpu_ns())
}
