//! Table, stream and (re-exported from [`crate::index_def`]) vector index definitions.

use serde::{Deserialize, Serialize};
use tarn_types::ColumnType;

pub use crate::index_def::{IndexDef, IndexSpec, MAX_INDEXES_PER_TABLE};

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

/// A stream: append-only events with an event-time column. Shares the id space with tables
/// (catalog ids are never reused), so a log record's table-or-stream id is unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDef {
    /// Catalog-assigned id, never reused; 0 in a freshly parsed `CREATE STREAM`.
    pub id: u32,
    /// Stream name, at most [`crate::MAX_IDENTIFIER_BYTES`] bytes.
    pub name: String,
    /// Columns in declaration order (the order of values in an event row).
    pub columns: Vec<ColumnDef>,
    /// Index of the event-time column (TIMESTAMP, required in every event).
    pub event_time: usize,
    /// Index of the partition column: its value picks the event's home shard (required in
    /// every event, a keyable type).
    pub partition: usize,
    /// How long events are retained after their event time, in µs.
    pub retention_us: i64,
    /// How far after the server's clock an event's time may be, in µs; later events are
    /// rejected.
    pub max_future_us: i64,
    /// How many of the newest events (by event time) each partition key keeps in memory on
    /// its home shard, `1..=`[`crate::MAX_RECENT_EVENTS_PER_KEY`]; 0 = none kept (the default,
    /// and what catalogs written before the option read as). Not written to the catalog when
    /// 0, so those files stay byte for byte what they were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recent: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StreamDef {
    /// Index of the column named exactly `name`, if any.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Per column: must every event carry a non-NULL value (event time and partition)?
    pub fn required(&self) -> Vec<bool> {
        (0..self.columns.len())
            .map(|i| i == self.event_time || i == self.partition)
            .collect()
    }

    /// The `CREATE STREAM` statement that re-creates this stream.
    pub fn create_sql(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", quote_ident(&c.name), c.ty.sql_name()))
            .collect();
        format!(
            "CREATE STREAM {} ({}) WITH (event_time = '{}', partition = '{}', retention = '{}', max_future = '{}'",
            quote_ident(&self.name),
            cols.join(", "),
            self.columns[self.event_time].name.replace('\'', "''"),
            self.columns[self.partition].name.replace('\'', "''"),
            crate::duration::format_duration_us(self.retention_us),
            crate::duration::format_duration_us(self.max_future_us),
        ) + &self.recent_option()
            + ")"
    }

    /// `, recent = N` for [`StreamDef::create_sql`] when the stream keeps recent events.
    fn recent_option(&self) -> String {
        if self.recent == 0 {
            return String::new();
        }
        format!(", recent = {}", self.recent)
    }
}
