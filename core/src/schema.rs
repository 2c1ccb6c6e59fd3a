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
