//! `pgbench-log`: pgbench per-transaction logs (`pgbench -l`) summarised into one result
//! record.

use std::path::PathBuf;

use clap::Args;

use super::{emit, RecordArgs};
use crate::pglog;
use crate::report::BenchRecord;
use crate::stats::LatSummary;

#[derive(Args)]
pub struct PgArgs {
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

pub fn pgbench_log(a: &PgArgs) -> Result<(), String> {
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
