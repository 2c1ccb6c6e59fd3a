//! `tarn context`: call a named context with typed parameters, or run ad hoc items.

use serde_json::json;
use tarn_client::ContextReply;
use tarn_types::{ColumnType, Value};

use super::output::{emit, emit_json};
use super::schema::parse_type;
use super::table::{value_cell, Table};
use super::value::{parse_text_value, value_to_json};
use super::{client_err, connect, Cli, ContextArgs, Result};

pub(super) fn cmd_context(cli: &Cli, a: &ContextArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let reply = match (&a.name, &a.items) {
        (Some(name), None) => {
            let types = param_types(&mut client, name)?;
            let params = parse_params(&types, &a.params)?;
            client.context(name, params).map_err(client_err)?
        }
        (None, Some(items)) => {
            if !a.params.is_empty() {
                return Err("ad hoc items (--items) take no parameters".into());
            }
            client.context_items(items).map_err(client_err)?
        }
        _ => return Err("give a context name or --items '…', not both".into()),
    };
    if cli.json {
        return emit_json(&reply_json(&reply));
    }
    emit(&render(&reply))
}

/// The declared parameters of context `name` (from SHOW CONTEXTS).
fn param_types(client: &mut tarn_client::Client, name: &str) -> Result<Vec<(String, ColumnType)>> {
    let r = client.sql("SHOW CONTEXTS").map_err(client_err)?;
    let wanted = name.to_lowercase();
    let row = r
        .rows
        .iter()
        .find(|row| matches!(&row[0], Value::Text(n) if *n == name || *n == wanted))
        .ok_or_else(|| format!("UNKNOWN_CONTEXT: context {name:?} does not exist"))?;
    let Value::Text(list) = &row[1] else {
        return Err("SHOW CONTEXTS: parameters are not text".into());
    };
    list.split(", ")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, t) = p
                .split_once(' ')
                .ok_or_else(|| format!("SHOW CONTEXTS: cannot read parameter {p:?}"))?;
            let ty = parse_type(&t.to_ascii_uppercase())
                .ok_or_else(|| format!("parameter {n} has a type the CLI cannot write: {t}"))?;
            Ok((n.to_string(), ty))
        })
        .collect()
}

/// `name=value` arguments, each value typed by its parameter.
fn parse_params(types: &[(String, ColumnType)], args: &[String]) -> Result<Vec<(String, Value)>> {
    args.iter()
        .map(|a| {
            let (name, text) = a
                .split_once('=')
                .ok_or_else(|| format!("parameter {a:?}: write name=value"))?;
            let Some((_, ty)) = types.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = types.iter().map(|(n, _)| n.as_str()).collect();
                return Err(
                    format!("no parameter {name} (parameters: {})", names.join(", ")).into(),
                );
            };
            let v = if text == "null" || text == "NULL" {
                Value::Null
            } else {
                parse_text_value(text, *ty).map_err(|e| format!("parameter {name}: {e}"))?
            };
            Ok((name.to_string(), v))
        })
        .collect()
}

fn render(r: &ContextReply) -> String {
    let mut out = String::new();
    let shards: Vec<String> = r
        .shards
        .iter()
        .map(|s| {
            format!(
                "shard {} {}",
                s.shard,
                tarn_core::timestamp::format_rfc3339_us(s.as_of_us)
            )
        })
        .collect();
    out.push_str(&format!("as of: {}\n", shards.join(", ")));
    for item in &r.items {
        let keyed = item.groups.len() > 1;
        let mut t = Table::new(
            keyed
                .then(|| "key".to_string())
                .into_iter()
                .chain(item.columns.iter().map(|c| c.name.clone())),
        );
        for g in &item.groups {
            for row in &g.rows {
                let mut cells = Vec::with_capacity(row.len() + 1);
                if keyed {
                    cells.push(value_cell(&g.key));
                }
                cells.extend(row.iter().map(value_cell));
                t.row(cells);
            }
        }
        let rows: usize = item.groups.iter().map(|g| g.rows.len()).sum();
        out.push_str(&format!("\n{} ({rows} row(s))\n", item.name));
        if rows == 0 {
            out.push_str("(none)\n");
            continue;
        }
        out.push_str(&t.render());
    }
    out
}

fn reply_json(r: &ContextReply) -> serde_json::Value {
    let shards: Vec<_> = r
        .shards
        .iter()
        .map(|s| json!({"shard": s.shard, "as_of_us": s.as_of_us}))
        .collect();
    let mut items = serde_json::Map::new();
    for item in &r.items {
        let groups: Vec<_> = item
            .groups
            .iter()
            .map(|g| {
                let rows: Vec<_> = g
                    .rows
                    .iter()
                    .map(|row| {
                        let obj: serde_json::Map<String, serde_json::Value> = item
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| (c.name.clone(), value_to_json(v)))
                            .collect();
                        serde_json::Value::Object(obj)
                    })
                    .collect();
                json!({"key": value_to_json(&g.key), "rows": rows})
            })
            .collect();
        items.insert(item.name.clone(), serde_json::Value::Array(groups));
    }
    json!({"shards": shards, "items": items})
}
