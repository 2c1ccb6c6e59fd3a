//! Tables on one shard: canonical key bytes → full row, changed by idempotent overwrites
//! (replace a row, set listed columns, delete a key).

use std::rc::Rc;

use tarn_types::Value;

use super::{FastMap, ShardState};
use crate::batch::UpsertMode;
use crate::catalog::Catalog;

/// Rows of one table on this shard: canonical key bytes → full row in column order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Table {
    /// Keys are reference-counted so a checkpoint can snapshot the key list with refcount
    /// bumps instead of copying every key (that copy was the longest checkpoint pause).
    pub(super) rows: FastMap<Rc<[u8]>, Box<[Value]>>,
}

/// A key either borrowed from a `&Mutation` or moved out of an owned one.
pub(super) enum KeyRef<'a> {
    Borrowed(&'a Vec<u8>),
    Owned(Vec<u8>),
}

impl KeyRef<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            KeyRef::Borrowed(k) => k,
            KeyRef::Owned(k) => k,
        }
    }
}

impl ShardState {
    pub(super) fn upsert<'k, V: Iterator<Item = Value>>(
        &mut self,
        catalog: &Catalog,
        table_id: u32,
        mode: UpsertMode,
        column_idx: &[u16],
        rows: impl ExactSizeIterator<Item = (KeyRef<'k>, V)>,
    ) -> u64 {
        let Some(def) = catalog.table_by_id(table_id) else {
            return 0;
        };
        let width = def.columns.len();
        let n = rows.len() as u64;
        // Indexes see a row again only when its vector may have changed; a merge of other
        // columns just marks the table changed for searches in flight.
        let indexed = !self.indexes.of_table(table_id).is_empty();
        let vectors = indexed
            && (mode == UpsertMode::Replace || self.indexes.touches_vectors(table_id, column_idx));
        let table = self.tables.entry(table_id).or_default();
        for (key, values) in rows {
            let put = |row: &mut [Value], values: V| {
                for (&ci, v) in column_idx.iter().zip(values) {
                    if let Some(slot) = row.get_mut(usize::from(ci)) {
                        *slot = v;
                    }
                }
            };
            let is_new = match (mode, table.rows.get_mut(key.as_slice())) {
                (UpsertMode::Merge, Some(row)) => {
                    put(row, values);
                    false
                }
                (UpsertMode::Replace, Some(row)) => {
                    row.fill(Value::Null);
                    put(row, values);
                    false
                }
                (_, None) => {
                    let mut row = vec![Value::Null; width].into_boxed_slice();
                    put(&mut row, values);
                    table.rows.insert(Rc::from(key.as_slice()), row);
                    true
                }
            };
            if vectors || (indexed && is_new) {
                let (rc, row) = table
                    .rows
                    .get_key_value(key.as_slice())
                    .expect("just written");
                self.indexes.on_write(table_id, rc, Some(row));
            }
        }
        if indexed && !vectors {
            self.indexes.touch(table_id);
        }
        n
    }

    pub(super) fn delete(&mut self, catalog: &Catalog, table_id: u32, keys: &[Vec<u8>]) -> u64 {
        if catalog.table_by_id(table_id).is_none() {
            return 0;
        }
        let Some(table) = self.tables.get_mut(&table_id) else {
            return 0;
        };
        let mut n = 0;
        for k in keys {
            if let Some((rc, _)) = table.rows.remove_entry(k.as_slice()) {
                self.indexes.on_write(table_id, &rc, None);
                n += 1;
            }
        }
        n
    }

    /// The full row (in column order) stored under canonical key `key`, borrowed.
    pub fn get(&self, table_id: u32, key: &[u8]) -> Option<&[Value]> {
        self.tables.get(&table_id)?.rows.get(key).map(|r| &**r)
    }

    /// Forgets every row of a table (on DROP TABLE).
    pub fn drop_table(&mut self, table_id: u32) {
        self.tables.remove(&table_id);
        for id in self.indexes.of_table(table_id).to_vec() {
            self.drop_index(id);
        }
    }

    /// Rows of one table on this shard.
    pub fn table_len(&self, table_id: u32) -> u64 {
        self.tables
            .get(&table_id)
            .map_or(0, |t| t.rows.len() as u64)
    }

    /// Rows of all tables on this shard.
    pub fn total_rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows.len() as u64).sum()
    }

    /// Ids of the tables with state on this shard (unordered).
    pub fn table_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.tables.keys().copied()
    }
}
