//! `tarn features-history`: a feature view's values at past times for (key, as_of) pairs read
//! as JSON lines, written as JSON lines in input order.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde_json::json;
use tarn_client::Client;
use tarn_types::Value;

use super::load::{batch_size, open_lines};
use super::output::{plural, progress_bar, tick_progress};
use super::value::{self, json_to_value, value_to_json};
use super::{client_err, connect, describe, Cli, HistoryArgs, Result};

pub(super) fn cmd_features_history(cli: &Cli, a: &HistoryArgs) -> Result<()> {
    let (lines, total_bytes) = open_lines(&a.pairs)?;
    let mut client = connect(cli)?;
    let info = client.server_info().clone();
    let batch = match a.batch_pairs {
        None => info.max_batch_rows.max(1) as usize,
        Some(_) => batch_size("--batch-pairs", a.batch_pairs, &info)?,
    };
    let schema = describe(&mut client, &a.view)?;
    let key_ty = schema
        .columns
        .iter()
        .find(|c| c.key)
        .ok_or_else(|| format!("DESCRIBE {} names no key column", a.view))?
        .ty
        .clone()
        .map_err(|t| format!("key type {t} is not supported by the CLI"))?;
    let pb = progress_bar(std::io::stderr().is_terminal(), total_bytes);
    let start = Instant::now();
    let mut last_update = Instant::now();
    let mut pending: Vec<(Value, i64)> = Vec::with_capacity(batch);
    let mut written = 0u64;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let send =
        |client: &mut Client, pairs: &mut Vec<(Value, i64)>, out: &mut dyn Write| -> Result<u64> {
            if pairs.is_empty() {
                return Ok(0);
            }
            let batch = std::mem::take(pairs);
            let reply = client.history(&a.view, batch.clone()).map_err(client_err)?;
            for ((_, t), row) in batch.iter().zip(&reply.rows) {
                let mut obj = serde_json::Map::new();
                obj.insert("as_of_us".into(), json!(t));
                for (c, v) in reply.columns.iter().zip(&row.values) {
                    obj.insert(c.name.clone(), value_to_json(v));
                }
                obj.insert("newest_event_time".into(), json!(row.newest_event_time_us));
                serde_json::to_writer(&mut *out, &serde_json::Value::Object(obj))
                    .map_err(|e| format!("cannot write output: {e}"))?;
                out.write_all(b"\n")
                    .map_err(|e| format!("cannot write output: {e}"))?;
            }
            Ok(batch.len() as u64)
        };
    for item in lines {
        let (line, bytes, consumed) = item.map_err(|e| format!("cannot read input: {e}"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let pair = (|| -> std::result::Result<(Value, i64), String> {
            let j: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
            let key = j.get("key").ok_or("no \"key\" field")?;
            let key = json_to_value(key, key_ty)?;
            let as_of = match j.get("as_of") {
                Some(serde_json::Value::Number(n)) => n
                    .as_i64()
                    .ok_or_else(|| format!("as_of {n} is not an integer of µs"))?,
                Some(serde_json::Value::String(t)) => value::parse_timestamp(t)?,
                _ => return Err("no \"as_of\" field (µs or RFC 3339)".into()),
            };
            Ok((key, as_of))
        })()
        .map_err(|e| format!("line {line}: {e}"))?;
        pending.push(pair);
        if pending.len() == batch {
            written += send(&mut client, &mut pending, &mut out)?;
        }
        tick_progress(&pb, &mut last_update, start, consumed, written, "pairs");
    }
    written += send(&mut client, &mut pending, &mut out)?;
    out.flush()
        .map_err(|e| format!("cannot write output: {e}"))?;
    pb.finish_and_clear();
    if std::io::stderr().is_terminal() {
        eprintln!(
            "{written} pair{} in {:.3} s",
            plural(written),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
