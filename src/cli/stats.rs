//! `tarn stats` (per-shard counters and operation latencies) and `tarn ping` (round-trip
//! time).

use std::time::Instant;

use serde_json::json;

use super::output::{emit, emit_json, plural};
use super::table::{num_cell, text_cell, Table};
use super::{client_err, connect, Cli, PingArgs, Result};

pub(super) fn cmd_stats(cli: &Cli) -> Result<()> {
    let mut client = connect(cli)?;
    let s = client.stats().map_err(client_err)?;
    if cli.json {
        let shards: Vec<_> = s
            .shards
            .iter()
            .map(|sh| {
                json!({
                    "shard": sh.shard,
                    "cpu": sh.cpu,
                    "rows": sh.rows,
                    "log_bytes": sh.log_bytes,
                    "durable_lsn": sh.durable_lsn,
                    "connections": sh.connections,
                    "ops": sh.ops.iter().map(|o| json!({
                        "op": o.op,
                        "count": o.count,
                        "p50_us": o.p50_us,
                        "p99_us": o.p99_us,
                        "p999_us": o.p999_us,
                        "max_us": o.max_us,
                    })).collect::<Vec<_>>(),
                    "indexes": sh.indexes.iter().map(|x| json!({
                        "index": x.index,
                        "rows_indexed": x.rows_indexed,
                        "rows_pending": x.rows_pending,
                        "tombstones": x.tombstones,
                        "memory_bytes": x.memory_bytes,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return emit_json(&json!({ "shards": shards }));
    }
    let mut t = Table::new([
        "shard",
        "cpu",
        "rows",
        "log bytes",
        "durable lsn",
        "connections",
    ]);
    for sh in &s.shards {
        t.row(vec![
            num_cell(sh.shard),
            if sh.cpu < 0 {
                text_cell("-")
            } else {
                num_cell(sh.cpu)
            },
            num_cell(sh.rows),
            num_cell(sh.log_bytes),
            num_cell(sh.durable_lsn),
            num_cell(sh.connections),
        ]);
    }
    let mut ops = Table::new([
        "shard",
        "op",
        "count",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
    ]);
    for sh in &s.shards {
        for o in &sh.ops {
            ops.row(vec![
                num_cell(sh.shard),
                text_cell(o.op.clone()),
                num_cell(o.count),
                num_cell(o.p50_us),
                num_cell(o.p99_us),
                num_cell(o.p999_us),
                num_cell(o.max_us),
            ]);
        }
    }
    let mut out = format!("{}\n{}", t.render(), ops.render());
    if s.shards.iter().any(|sh| !sh.indexes.is_empty()) {
        out.push_str(&format!("\n{}", index_table(&s.shards).render()));
    }
    emit(&out)
}

/// Every shard's part of every vector index: build progress, tombstones, memory.
fn index_table(shards: &[tarn_client::ShardStats]) -> Table {
    let mut t = Table::new([
        "shard",
        "index",
        "rows indexed",
        "rows pending",
        "tombstones",
        "memory bytes",
    ]);
    for sh in shards {
        for x in &sh.indexes {
            t.row(vec![
                num_cell(sh.shard),
                text_cell(x.index.clone()),
                num_cell(x.rows_indexed),
                num_cell(x.rows_pending),
                num_cell(x.tombstones),
                num_cell(x.memory_bytes),
            ]);
        }
    }
    t
}

pub(super) fn cmd_ping(cli: &Cli, a: &PingArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let info = client.server_info().clone();
    let mut rtts = Vec::new();
    for _ in 0..a.count.max(1) {
        let t0 = Instant::now();
        client.ping().map_err(client_err)?;
        rtts.push(t0.elapsed().as_micros() as u64);
    }
    if cli.json {
        return emit_json(&json!({
            "addr": cli.addr,
            "server_version": info.server_version,
            "protocol_version": info.version,
            "shard_count": info.shard_count,
            "rtt_us": rtts,
        }));
    }
    let mut out = format!(
        "server {} at {} (protocol {}, {} shard{})\n",
        info.server_version,
        cli.addr,
        info.version,
        info.shard_count,
        plural(u64::from(info.shard_count))
    );
    for r in &rtts {
        out.push_str(&format!("pong: {r} µs\n"));
    }
    if rtts.len() > 1 {
        let min = rtts.iter().min().copied().unwrap_or(0);
        let max = rtts.iter().max().copied().unwrap_or(0);
        let avg = rtts.iter().sum::<u64>() / rtts.len() as u64;
        out.push_str(&format!("min/avg/max: {min}/{avg}/{max} µs\n"));
    }
    emit(&out)
}
