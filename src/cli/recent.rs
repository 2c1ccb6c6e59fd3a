//! `tarn recent`: the newest events of some partition keys of a stream kept with
//! `recent = N`.

use clap::Args;
use serde_json::json;
use tarn_net::limits::MAX_RECENT_N;
use tarn_types::{ColumnType, Value};

use super::output::{emit, emit_json};
use super::table::{value_cell, Table};
use super::value::{parse_text_value, value_to_json};
use super::{client_err, connect, Cli, CliError, Result};

#[derive(Args, Debug)]
pub(super) struct RecentArgs {
    /// Stream name (created WITH (recent = N))
    pub(super) stream: String,
    /// Partition-key values
    #[arg(required = true)]
    pub(super) keys: Vec<String>,
    /// Events per key, newest first (a key keeps at most the stream's N)
    #[arg(
        short = 'n',
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RECENT_N))
    )]
    pub(super) n: u32,
    /// Columns to return, comma-separated [default: all, in stream order]
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub(super) columns: Vec<String>,
}

pub(super) fn cmd_recent(cli: &Cli, a: &RecentArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let ty = partition_type(&mut client, &a.stream)?;
    let keys = a
        .keys
        .iter()
        .map(|k| parse_text_value(k, ty).map_err(|e| CliError(format!("key {k:?}: {e}"))))
        .collect::<Result<Vec<Value>>>()?;
    let columns: Vec<&str> = a.columns.iter().map(String::as_str).collect();
    let reply = client
        .recent(&a.stream, keys.clone(), a.n, &columns)
        .map_err(client_err)?;
    if cli.json {
        let per_key: Vec<serde_json::Value> = keys
            .iter()
            .zip(&reply.keys)
            .map(|(k, rows)| {
                let events: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        let obj: serde_json::Map<String, serde_json::Value> = (reply.columns)
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.name.clone(), value_to_json(v)))
                            .collect();
                        serde_json::Value::Object(obj)
                    })
                    .collect();
                json!({"key": value_to_json(k), "events": events})
            })
            .collect();
        return emit_json(&json!(per_key));
    }
    let mut t = Table::new(
        std::iter::once("key".to_string()).chain(reply.columns.iter().map(|c| c.name.clone())),
    );
    let mut none = Vec::new();
    for (k, rows) in keys.iter().zip(&reply.keys) {
        if rows.is_empty() {
            none.push(value_cell(k).0);
        }
        for r in rows {
            t.row(
                std::iter::once(value_cell(k))
                    .chain(r.iter().map(value_cell))
                    .collect(),
            );
        }
    }
    let mut out = t.render();
    if !none.is_empty() {
        out.push_str(&format!("no events: {}\n", none.join(", ")));
    }
    emit(&out)
}

/// The type of the stream's partition column, from `DESCRIBE` (the row whose role is
/// `partition`).
fn partition_type(client: &mut tarn_client::Client, stream: &str) -> Result<ColumnType> {
    let r = client
        .sql(&format!("DESCRIBE {stream}"))
        .map_err(client_err)?;
    let role = r.columns.iter().position(|c| c.name == "role");
    let row = role.and_then(|i| {
        (r.rows.iter()).find(|row| matches!(&row[i], Value::Text(s) if s == "partition"))
    });
    let Some(row) = row else {
        return Err(CliError(format!(
            "{stream} is not a stream (DESCRIBE shows no partition column)"
        )));
    };
    match &row[1] {
        Value::Text(t) => super::schema::parse_type(&t.to_ascii_uppercase())
            .ok_or_else(|| CliError(format!("partition column type {t} is not readable"))),
        other => Err(CliError(format!("DESCRIBE {stream}: type is {other:?}"))),
    }
}
