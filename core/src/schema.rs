//! Table definitions.

use serde::{Deserialize, Serialize};
use tarn_types::ColumnType;

/// One column: its (case-folded unless quoted) name and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name, at most [`crate::MAX_IDENTIFIER_BYTES`] bytes.
    pub name: String,
    /// Column type.
    pub ty: ColumnType,
}

/// An entity table: columns in declaration order and exactly one primary-key column.
/// Tables are immutable once created (no ALTER), so a row's width never changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Catalog-assigned id, never reused; 0 in a freshly parsed `CREATE TABLE`.
    pub id: u32,
    /// Table name, at most [`crate::MAX_IDENTIFIER_BYTES`] bytes.
    pub name: String,
    /// Columns in declaration order (the order of values in a stored row).
    pub columns: Vec<ColumnDef>,
    /// Index into `columns` of the primary key column.
    pub key_column: usize,
}

impl TableDef {
    /// Index of the column named exactly `name` (names are already case-folded), if any.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Type of the primary-key column.
    pub fn key_type(&self) -> ColumnType {
        self.columns[self.key_column].ty
    }

    /// Name of the primary-key column.
    pub fn key_name(&self) -> &str {
        &self.columns[self.key_column].name
    }
}

/// Quotes an identifier for SQL output when Postgres rules need it: anything but a lower-case
/// `[a-z_][a-z0-9_]*` name, and every SQL keyword. Embedded `"` are doubled.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let upper = name.to_ascii_uppercase();
    if plain
        && sqlparser::keywords::ALL_KEYWORDS
            .binary_search(&upper.as_str())
            .is_err()
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl TableDef {
    /// The `CREATE TABLE` statement that re-creates this table (identifiers quoted where
    /// needed); [`crate::sql::parse`] of it gives back this definition with id 0. Useful for
    /// `DESCRIBE` output and dumps.
    pub fn create_sql(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pk = if i == self.key_column {
                    " PRIMARY KEY"
                } else {
                    ""
                };
                format!("{} {}{pk}", quote_ident(&c.name), c.ty.sql_name())
            })
            .collect();
        format!(
            "CREATE TABLE {} ({})",
            quote_ident(&self.name),
            cols.join(", ")
        )
    }
}
