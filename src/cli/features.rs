//! `tarn features`: a feature view's values for some keys, now or as of a past time.

use serde_json::json;
use tarn_types::Value;

use super::output::{emit, emit_json};
use super::table::{value_cell, Table};
use super::value::value_to_json;
use super::{client_err, connect, describe, parse_keys, Cli, FeaturesArgs, Result};

pub(super) fn cmd_features(cli: &Cli, a: &FeaturesArgs) -> Result<()> {
    let as_of_us = match &a.as_of {
        None => None,
        Some(t) => Some(match t.parse::<i64>() {
            Ok(us) => us,
            Err(_) => tarn_core::timestamp::parse_rfc3339_us(t)
                .map_err(|e| format!("--as-of {t:?}: not µs since the epoch nor RFC 3339: {e}"))?,
        }),
    };
    let mut client = connect(cli)?;
    let schema = describe(&mut client, &a.view)?;
    let keys = parse_keys(&schema, &a.keys)?;
    let reply = client
        .features(&a.view, keys, as_of_us)
        .map_err(client_err)?;
    let as_of = tarn_core::timestamp::format_rfc3339_us(reply.as_of_us);
    if cli.json {
        let rows = reply
            .rows
            .iter()
            .map(|r| {
                let mut obj: serde_json::Map<String, serde_json::Value> = reply
                    .columns
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| (c.name.clone(), value_to_json(v)))
                    .collect();
                obj.insert("newest_event_time".into(), json!(r.newest_event_time_us));
                serde_json::Value::Object(obj)
            })
            .collect::<Vec<_>>();
        return emit_json(&json!({"as_of": as_of, "as_of_us": reply.as_of_us, "rows": rows}));
    }
    let mut t = Table::new(
        reply
            .columns
            .iter()
            .map(|c| c.name.clone())
            .chain(std::iter::once("newest_event_time".to_string())),
    );
    for r in &reply.rows {
        let mut cells: Vec<_> = r.values.iter().map(value_cell).collect();
        cells.push(value_cell(
            &r.newest_event_time_us.map_or(Value::Null, Value::Timestamp),
        ));
        t.row(cells);
    }
    emit(&format!("as of {as_of}\n{}", t.render()))
}
