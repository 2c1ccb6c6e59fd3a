//! `tarn sql`: one statement, or a file of ';'-separated statements run in order; replies as
//! tables or JSON.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use serde_json::json;
use tarn_client::SqlReply;

use super::output::{emit, emit_json};
use super::table::{value_cell, Table};
use super::value::value_to_json;
use super::{client_err, connect, sqlsplit, Cli, Result, SqlArgs};

fn sql_json(r: &SqlReply) -> serde_json::Value {
    json!({
        "message": r.message,
        "columns": r.columns.iter().map(|c| json!({"name": c.name, "type": c.ty.sql_name()})).collect::<Vec<_>>(),
        "rows": r.rows.iter().map(|row| row.iter().map(value_to_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
    })
}

fn sql_text(r: &SqlReply) -> String {
    let mut s = String::new();
    if !r.columns.is_empty() {
        let mut t = Table::new(r.columns.iter().map(|c| c.name.clone()));
        for row in &r.rows {
            t.row(row.iter().map(value_cell).collect());
        }
        s.push_str(&t.render());
    }
    if !r.message.is_empty() {
        s.push_str(&r.message);
        s.push('\n');
    }
    s
}

fn read_input(path: &PathBuf) -> Result<String> {
    let mut text = String::new();
    let r = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    r.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text)
}

pub(super) fn cmd_sql(cli: &Cli, a: &SqlArgs) -> Result<()> {
    let Some(path) = &a.file else {
        let stmt = a.statement.as_deref().unwrap_or_default();
        let mut client = connect(cli)?;
        let reply = client.sql(stmt).map_err(client_err)?;
        return if cli.json {
            emit_json(&sql_json(&reply))
        } else {
            emit(&sql_text(&reply))
        };
    };
    let script = read_input(path)?;
    let statements = sqlsplit::split(&script);
    let mut client = connect(cli)?;
    let mut replies = Vec::new();
    let mut failure = None;
    for st in &statements {
        match client.sql(&st.text) {
            Ok(r) => {
                if cli.json {
                    replies.push(sql_json(&r));
                } else {
                    emit(&sql_text(&r))?;
                }
            }
            Err(e) => {
                let mut first: String = st.first_line.chars().take(60).collect();
                if first.len() < st.first_line.len() {
                    first.push('…');
                }
                failure = Some(format!(
                    "statement {} at line {} `{first}`: {}",
                    st.number,
                    st.line,
                    client_err(e).0
                ));
                break;
            }
        }
    }
    if cli.json {
        emit_json(&serde_json::Value::Array(replies))?;
    }
    match failure {
        Some(f) => Err(f.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_types::Value;

    #[test]
    fn sql_replies_render() {
        use tarn_client::{Column, ColumnType};
        let r = SqlReply {
            message: "SELECT 2".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::BigInt,
                },
                Column {
                    name: "b".into(),
                    ty: ColumnType::Bytes,
                },
            ],
            rows: vec![
                vec![Value::Int(1), Value::Bytes(vec![0xab])],
                vec![Value::Int(10), Value::Null],
            ],
        };
        assert_eq!(
            sql_text(&r),
            " id |  b\n----+------\n  1 | \\xab\n 10 | NULL\nSELECT 2\n"
        );
        assert_eq!(
            sql_json(&r),
            json!({
                "message": "SELECT 2",
                "columns": [{"name": "id", "type": "BIGINT"}, {"name": "b", "type": "BYTES"}],
                "rows": [[1, "\\xab"], [10, null]],
            })
        );
        let ddl = SqlReply {
            message: "CREATE TABLE".into(),
            columns: vec![],
            rows: vec![],
        };
        assert_eq!(sql_text(&ddl), "CREATE TABLE\n");
    }
}
