//! `tarn get` and `tarn delete`: rows by primary key.

use serde_json::json;

use super::output::{emit, emit_json, plural};
use super::table::{value_cell, Table};
use super::value::value_to_json;
use super::{client_err, connect, describe, parse_keys, Cli, KeysArgs, Result};

pub(super) fn cmd_get(cli: &Cli, a: &KeysArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let schema = describe(&mut client, &a.table)?;
    let keys = parse_keys(&schema, &a.keys)?;
    let reply = client.get(&a.table, keys).map_err(client_err)?;
    if cli.json {
        let arr = reply
            .rows
            .iter()
            .map(|r| match r {
                None => serde_json::Value::Null,
                Some(vals) => serde_json::Value::Object(
                    reply
                        .columns
                        .iter()
                        .zip(vals)
                        .map(|(c, v)| (c.name.clone(), value_to_json(v)))
                        .collect(),
                ),
            })
            .collect();
        return emit_json(&serde_json::Value::Array(arr));
    }
    let mut out = String::new();
    let mut t = Table::new(reply.columns.iter().map(|c| c.name.clone()));
    let mut missing = Vec::new();
    for (key, row) in a.keys.iter().zip(&reply.rows) {
        match row {
            Some(vals) => t.row(vals.iter().map(value_cell).collect()),
            None => missing.push(key),
        }
    }
    if t.len() > 0 {
        out.push_str(&t.render());
    }
    for k in missing {
        out.push_str(&format!("not found: {k}\n"));
    }
    emit(&out)
}

pub(super) fn cmd_delete(cli: &Cli, a: &KeysArgs) -> Result<()> {
    let mut client = connect(cli)?;
    let schema = describe(&mut client, &a.table)?;
    let keys = parse_keys(&schema, &a.keys)?;
    let n = client.delete(&a.table, keys).map_err(client_err)?;
    if cli.json {
        emit_json(&json!({ "deleted": n }))
    } else {
        emit(&format!("deleted {n} row{}\n", plural(n)))
    }
}
