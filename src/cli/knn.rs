//! `tarn knn`: the nearest rows of a vector index's table to a query vector, or to the vector
//! of a row given by its key.

use clap::Args;
use tarn_client::{Client, ClientError, ErrorCode, KnnQuery, KnnReply, KnnRequest, SqlReply};
use tarn_net::limits::{MAX_KNN_EF, MAX_KNN_K};
use tarn_types::Value;

use super::output::{emit, emit_json, plural};
use super::table::{num_cell, value_cell, Table};
use super::value::value_to_json;
use super::{client_err, connect, describe, parse_keys, Cli, Result};

#[derive(Args, Debug)]
pub(super) struct KnnArgs {
    /// Vector index name (CREATE INDEX … USING hnsw)
    pub(super) index: String,
    /// Query vector, e.g. '[0.1, 0.2, 0.3]' (exactly the index's dimension)
    #[arg(
        long,
        value_name = "VECTOR",
        required_unless_present = "like",
        conflicts_with = "like",
        allow_hyphen_values = true
    )]
    pub(super) vector: Option<String>,
    /// Use the vector of the row with this primary key as the query
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub(super) like: Option<String>,
    /// Number of rows to return
    #[arg(
        short = 'k',
        value_name = "N",
        required = true,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_KNN_K))
    )]
    pub(super) k: u32,
    /// Candidates the graph search keeps [default: the index's ef_search]
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_KNN_EF))
    )]
    pub(super) ef: Option<u32>,
    /// Only rows matching this SQL condition on the table's columns, e.g. "lang = 'en'"
    #[arg(long, value_name = "CONDITION")]
    pub(super) filter: Option<String>,
    /// Columns to return, comma-separated [default: all, in table order]
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub(super) columns: Vec<String>,
}

pub(super) fn cmd_knn(cli: &Cli, a: &KnnArgs) -> Result<()> {
    // Everything that can be judged without the server is, before connecting.
    let vector = a.vector.as_deref().map(parse_query_vector).transpose()?;
    let mut client = connect(cli)?;
    let query = match (vector, &a.like) {
        (Some(v), _) => KnnQuery::Vector(v),
        (None, Some(key)) => KnnQuery::Like(like_key(&mut client, &a.index, key)?),
        (None, None) => unreachable!("clap requires --vector or --like"),
    };
    let req = KnnRequest {
        index: a.index.clone(),
        query,
        k: a.k,
        ef: a.ef,
        filter: a.filter.clone().unwrap_or_default(),
        columns: a.columns.clone(),
    };
    let reply = client.knn(&req).map_err(client_err)?;
    if cli.json {
        emit_json(&reply_json(&reply))
    } else {
        emit(&reply_table(&reply))
    }
}

/// Parses `--vector`: `[x, y, …]` of any length (the server checks it against the index's
/// dimension), every component a finite number that fits an f32.
pub(super) fn parse_query_vector(s: &str) -> Result<Vec<f32>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("--vector {s:?}: expected a vector as text `[x, y, …]`"))?;
    let n = if inner.trim().is_empty() {
        0
    } else {
        inner.split(',').count()
    };
    let dim = u32::try_from(n).map_err(|_| format!("--vector: {n} components are too many"))?;
    tarn_core::vector::parse_text(s, dim)
        .map(Vec::from)
        .map_err(|e| format!("--vector: {e}").into())
}

/// The `--like` key, typed by the key column of the index's table (SHOW INDEXES names the
/// table, DESCRIBE its key). Without that (a server that cannot list indexes, or an index it
/// does not know: its KNN reply will say so) the key goes as BIGINT when it is an integer and
/// as TEXT otherwise.
fn like_key(client: &mut Client, index: &str, key: &str) -> Result<Value> {
    match index_table(client, index)? {
        Some(table) => {
            let schema = describe(client, &table)?;
            let mut keys = parse_keys(&schema, std::slice::from_ref(&key.to_owned()))?;
            assert_eq!(keys.len(), 1, "one key parsed");
            Ok(keys.remove(0))
        }
        None => Ok(untyped_key(key)),
    }
}

pub(super) fn untyped_key(key: &str) -> Value {
    key.parse::<i64>()
        .map_or_else(|_| Value::Text(key.to_owned()), Value::Int)
}

/// The table of `index` from SHOW INDEXES (its `index` or `name` column and its `table`
/// column), or None when the server has no such statement or no such index.
fn index_table(client: &mut Client, index: &str) -> Result<Option<String>> {
    let r = match client.sql("SHOW INDEXES") {
        Ok(r) => r,
        Err(ClientError::Server(e))
            if matches!(e.code, ErrorCode::SqlParse | ErrorCode::Unsupported) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(client_err(e)),
    };
    Ok(table_of(&r, index))
}

/// The `table` of the row of a SHOW INDEXES result set whose `index` (or `name`) is `index`.
pub(super) fn table_of(r: &SqlReply, index: &str) -> Option<String> {
    let col = |names: &[&str]| {
        r.columns
            .iter()
            .position(|c| names.contains(&c.name.as_str()))
    };
    let (name_at, table_at) = (col(&["index", "name"])?, col(&["table"])?);
    r.rows
        .iter()
        .find_map(|row| match (&row[name_at], &row[table_at]) {
            (Value::Text(n), Value::Text(t)) if n == index => Some(t.clone()),
            _ => None,
        })
}

/// The key the distance gets in tables and JSON objects: `distance`, or `_distance` when the
/// table has a column of that name.
fn distance_key(reply: &KnnReply) -> &'static str {
    if reply.columns.iter().any(|c| c.name == "distance") {
        "_distance"
    } else {
        "distance"
    }
}

fn distance_text(d: f32) -> String {
    let mut s = String::new();
    tarn_core::vector::write_component(&mut s, d);
    s
}

/// `--json`: an array, nearest first, of objects {distance, column: value, …}.
pub(super) fn reply_json(reply: &KnnReply) -> serde_json::Value {
    let key = distance_key(reply);
    let rows = reply.rows.iter().map(|row| {
        let mut obj = serde_json::Map::new();
        let d = tarn_core::vector::to_json(&[row.distance]);
        obj.insert(key.to_owned(), d[0].clone());
        for (c, v) in reply.columns.iter().zip(&row.values) {
            obj.insert(c.name.clone(), value_to_json(v));
        }
        serde_json::Value::Object(obj)
    });
    serde_json::Value::Array(rows.collect())
}

/// A table with the distance first, then a line with the row count and the search's work.
pub(super) fn reply_table(reply: &KnnReply) -> String {
    let headers = std::iter::once(distance_key(reply).to_owned())
        .chain(reply.columns.iter().map(|c| c.name.clone()));
    let mut t = Table::new(headers);
    for row in &reply.rows {
        let mut cells = vec![num_cell(distance_text(row.distance))];
        cells.extend(row.values.iter().map(value_cell));
        t.row(cells);
    }
    let n = reply.rows.len() as u64;
    format!(
        "{}{n} row{} ({} distance{} computed)\n",
        t.render(),
        plural(n),
        reply.distances,
        plural(reply.distances)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_client::{Column, ColumnType, KnnRow};

    #[test]
    fn query_vectors_parse_or_say_why() {
        assert_eq!(
            parse_query_vector("[0.5, -1, 2e3]").unwrap(),
            [0.5, -1.0, 2000.0]
        );
        assert_eq!(parse_query_vector(" [1] ").unwrap(), [1.0]);
        for (bad, why) in [
            ("0.5, 1", "expected a vector as text `[x, y, …]`"),
            ("[]", "empty vector"),
            ("[1, x]", "vector component 1 is not a decimal number"),
            ("[1, , 2]", "vector component 1 is empty"),
            ("[NaN]", "vector component 0 is NaN"),
            ("[1, -inf]", "vector component 1 is -infinity"),
            ("[1e39]", "overflows a 32-bit float"),
        ] {
            let e = parse_query_vector(bad).unwrap_err().0;
            assert!(e.starts_with("--vector"), "{bad}: {e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn untyped_keys_are_integers_or_text() {
        assert_eq!(untyped_key("42"), Value::Int(42));
        assert_eq!(untyped_key("-7"), Value::Int(-7));
        assert_eq!(untyped_key("doc-7"), Value::Text("doc-7".into()));
        assert_eq!(untyped_key("1.5"), Value::Text("1.5".into()));
    }

    #[test]
    fn show_indexes_names_the_table() {
        let text = |s: &str| Value::Text(s.into());
        let col = |name: &str| Column {
            name: name.into(),
            ty: ColumnType::Text,
        };
        let r = SqlReply {
            message: "2 index(es)".into(),
            columns: vec![col("index"), col("table"), col("column")],
            rows: vec![
                vec![text("a_emb"), text("a"), text("emb")],
                vec![text("docs_emb"), text("docs"), text("emb")],
            ],
        };
        assert_eq!(table_of(&r, "docs_emb").as_deref(), Some("docs"));
        assert_eq!(table_of(&r, "nope"), None);
        let unusable = SqlReply {
            columns: vec![col("index"), col("column")],
            ..r
        };
        assert_eq!(table_of(&unusable, "docs_emb"), None);
    }

    fn reply(column: &str) -> KnnReply {
        KnnReply {
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::BigInt,
                },
                Column {
                    name: column.into(),
                    ty: ColumnType::Text,
                },
            ],
            rows: vec![
                KnnRow {
                    distance: 0.0,
                    values: vec![Value::Int(7), Value::Text("a".into())],
                },
                KnnRow {
                    distance: 0.1,
                    values: vec![Value::Int(3), Value::Null],
                },
            ],
            distances: 1,
        }
    }

    #[test]
    fn replies_print_the_distance_first() {
        let r = reply("title");
        let table = reply_table(&r);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].trim_start().starts_with("distance"), "{table}");
        assert!(lines[0].contains("title"), "{table}");
        assert!(lines[3].trim_start().starts_with("0.1 |"), "{table}");
        assert_eq!(*lines.last().unwrap(), "2 rows (1 distance computed)");
        let json = reply_json(&r);
        assert_eq!(
            json,
            serde_json::json!([
                {"distance": 0.0, "id": 7, "title": "a"},
                {"distance": 0.1, "id": 3, "title": null},
            ])
        );
        // A column called `distance` keeps its name; the search's distance moves aside.
        let json = reply_json(&reply("distance"));
        assert_eq!(json[0]["_distance"], serde_json::json!(0.0));
        assert_eq!(json[0]["distance"], serde_json::json!("a"));
    }
}
