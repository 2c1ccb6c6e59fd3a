//! A table's columns as learned from `DESCRIBE <table>`.
//!
//! The reply is read generically: the column giving names is the one headed `name`,
//! `column`, `column_name` or `field` (else the first), the type column is headed `type`,
//! `data_type` or `column_type` (else the second), and key membership comes from a column headed
//! `key`, `primary_key`, `pk`, `is_key` or `primary` (true / `PRI` / `YES` / `PRIMARY KEY` …) or
//! from a type spelled with `PRIMARY KEY`.

use tarn_types::{ColumnType, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct SchemaColumn {
    pub name: String,
    /// `Err(spelling)` for a type the CLI cannot read or write (e.g. `GEOMETRY`).
    pub ty: Result<ColumnType, String>,
    pub key: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub table: String,
    pub columns: Vec<SchemaColumn>,
}

impl Schema {
    pub fn from_describe(
        table: &str,
        headers: &[String],
        rows: &[Vec<Value>],
    ) -> Result<Schema, String> {
        let find = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let name_col = find(&["name", "column", "column_name", "field"]).unwrap_or(0);
        let type_col = find(&["type", "data_type", "column_type"]).unwrap_or(1);
        let key_col = find(&["key", "primary_key", "pk", "is_key", "primary"]);
        let bad = |why: String| format!("cannot read DESCRIBE {table}: {why}");
        let mut columns = Vec::with_capacity(rows.len());
        for row in rows {
            let name = match row.get(name_col) {
                Some(Value::Text(s)) => s.clone(),
                other => return Err(bad(format!("column name is {other:?}"))),
            };
            let ty_text = match row.get(type_col) {
                Some(Value::Text(s)) => s.clone(),
                other => return Err(bad(format!("type of {name} is {other:?}"))),
            };
            let upper = ty_text.to_ascii_uppercase();
            let mut key = upper.contains("PRIMARY KEY");
            if let Some(k) = key_col.and_then(|k| row.get(k)) {
                key |= match k {
                    Value::Bool(b) => *b,
                    Value::Int(i) => *i != 0,
                    Value::Text(s) => matches!(
                        s.trim().to_ascii_uppercase().as_str(),
                        "PRI"
                            | "YES"
                            | "Y"
                            | "TRUE"
                            | "T"
                            | "KEY"
                            | "PK"
                            | "PRIMARY"
                            | "PRIMARY KEY"
                    ),
                    _ => false,
                };
            }
            columns.push(SchemaColumn {
                name,
                ty: parse_type(&upper).ok_or(ty_text),
                key,
            });
        }
        if columns.is_empty() {
            return Err(bad("no columns".into()));
        }
        Ok(Schema {
            table: table.to_string(),
            columns,
        })
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn key_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&i| self.columns[i].key)
            .collect()
    }

    /// The single primary-key column, for `get` and `delete`.
    pub fn key_column(&self) -> Result<(usize, ColumnType), String> {
        match self.key_columns()[..] {
            [k] => {
                let c = &self.columns[k];
                match &c.ty {
                    Ok(ty) => Ok((k, *ty)),
                    Err(t) => Err(format!("key column {} has unsupported type {t}", c.name)),
                }
            }
            [] => Err(format!(
                "DESCRIBE {} shows no primary key column",
                self.table
            )),
            _ => Err(format!(
                "table {} has a composite primary key, which this command does not support",
                self.table
            )),
        }
    }

    pub fn names(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The column type named at the start of a type spelling (`BIGINT`, `TEXT PRIMARY KEY`, …),
/// with the usual SQL aliases.
pub fn parse_type(upper: &str) -> Option<ColumnType> {
    let word: String = upper
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(match word.as_str() {
        "BOOLEAN" | "BOOL" => ColumnType::Boolean,
        "BIGINT" | "INT8" | "INT" | "INTEGER" | "INT4" | "SMALLINT" | "INT2" => ColumnType::BigInt,
        "DOUBLE" | "FLOAT8" | "FLOAT" | "REAL" | "FLOAT4" => ColumnType::Double,
        "TEXT" | "VARCHAR" | "STRING" | "CHAR" => ColumnType::Text,
        "BYTES" | "BYTEA" | "BLOB" => ColumnType::Bytes,
        "TIMESTAMP" | "TIMESTAMPTZ" => ColumnType::Timestamp,
        "VECTOR" => return vector_dim(&upper.trim()[word.len()..]).map(ColumnType::Vector),
        _ => return None,
    })
}

/// The `(n)` after `VECTOR`.
fn vector_dim(rest: &str) -> Option<u32> {
    let inner = rest.trim_start().strip_prefix('(')?;
    let (n, _) = inner.split_once(')')?;
    n.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_types_keep_their_dimension() {
        assert_eq!(parse_type("VECTOR(64)"), Some(ColumnType::Vector(64)));
        assert_eq!(parse_type(" VECTOR( 3 ) "), Some(ColumnType::Vector(3)));
        assert_eq!(parse_type("VECTOR"), None);
        assert_eq!(parse_type("VECTOR(x)"), None);
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn reads_name_type_key_reply() {
        let headers = vec!["column".to_string(), "type".into(), "key".into()];
        let rows = vec![
            vec![t("id"), t("BIGINT"), Value::Bool(true)],
            vec![t("name"), t("TEXT"), Value::Bool(false)],
            vec![t("emb"), t("VECTOR(4)"), Value::Bool(false)],
        ];
        let s = Schema::from_describe("t", &headers, &rows).unwrap();
        assert_eq!(s.columns.len(), 3);
        assert_eq!(s.columns[0].ty, Ok(ColumnType::BigInt));
        assert_eq!(s.columns[2].ty, Ok(ColumnType::Vector(4)));
        assert_eq!(s.key_column(), Ok((0, ColumnType::BigInt)));
        assert_eq!(s.index_of("name"), Some(1));
        assert_eq!(s.names(), "id, name, emb");
    }

    #[test]
    fn reads_reordered_and_textual_replies() {
        let headers = vec!["Type".to_string(), "Field".into(), "Key".into()];
        let rows = vec![
            vec![t("double precision"), t("score"), t("")],
            vec![t("text"), t("sku"), t("PRI")],
        ];
        let s = Schema::from_describe("p", &headers, &rows).unwrap();
        assert_eq!(s.columns[0].ty, Ok(ColumnType::Double));
        assert_eq!(s.key_column(), Ok((1, ColumnType::Text)));

        // No key column header: key read from the type spelling; unknown headers fall back to
        // positions.
        let headers = vec!["a".to_string(), "b".into()];
        let rows = vec![
            vec![t("k"), t("TIMESTAMP PRIMARY KEY")],
            vec![t("v"), t("BYTES")],
        ];
        let s = Schema::from_describe("x", &headers, &rows).unwrap();
        assert_eq!(s.key_column(), Ok((0, ColumnType::Timestamp)));
        assert_eq!(s.columns[1].ty, Ok(ColumnType::Bytes));
    }

    #[test]
    fn reports_unusable_replies() {
        let headers = vec!["name".to_string(), "type".into()];
        assert!(Schema::from_describe("x", &headers, &[]).is_err());
        assert!(Schema::from_describe("x", &headers, &[vec![Value::Int(1), t("TEXT")]]).is_err());
        let s = Schema::from_describe("x", &headers, &[vec![t("a"), t("TEXT")]]).unwrap();
        assert!(s.key_column().unwrap_err().contains("no primary key"));
    }
}
