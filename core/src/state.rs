//! One shard's in-memory state and its checkpoint payload.

use std::collections::HashMap;

use rkyv::rancor;
use rkyv::with::InlineAsBox;
use tarn_types::Value;

use crate::batch::UpsertMode;
use crate::catalog::Catalog;
use crate::record::Mutation;
use crate::CoreError;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Magic at the start of a checkpoint payload.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"TARNCKPT";

/// Checkpoint payload format. Layout: 8-byte [`CHECKPOINT_MAGIC`], u32 LE format version,
/// 4 reserved zero bytes, then the rkyv archive (so the archive stays 16-byte aligned when the
/// payload is). Bumped on any change of the archived types; the version is read before the
/// archive is touched, so an old reader rejects a new checkpoint cleanly.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

const HEADER_LEN: usize = 16;

/// Rows of one table on this shard: canonical key bytes → full row in column order.
#[derive(Clone, Debug, Default, PartialEq)]
struct Table {
    rows: FastMap<Vec<u8>, Box<[Value]>>,
}

/// Everything one shard owns: for each table id, its rows keyed by canonical key bytes.
/// Single-threaded; no interior mutability. Equality compares contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardState {
    tables: FastMap<u32, Table>,
}

// ---- checkpoint archive types (private mirror of the state; borrowed on write) ----

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
enum CkValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(#[rkyv(with = InlineAsBox)] &'a str),
    Bytes(#[rkyv(with = InlineAsBox)] &'a [u8]),
    Timestamp(i64),
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkRow<'a> {
    #[rkyv(with = InlineAsBox)]
    key: &'a [u8],
    values: Vec<CkValue<'a>>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkTable<'a> {
    table_id: u32,
    rows: Vec<CkRow<'a>>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(bytecheck())]
struct CkState<'a> {
    tables: Vec<CkTable<'a>>,
}

/// A key either borrowed from a `&Mutation` or moved out of an owned one.
enum KeyRef<'a> {
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
    fn into_owned(self) -> Vec<u8> {
        match self {
            KeyRef::Borrowed(k) => k.clone(),
            KeyRef::Owned(k) => k,
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("checkpoint: {what}"))
}

impl ShardState {
    /// An empty state.
    pub fn new() -> Self {
        ShardState::default()
    }

    /// Applies a decoded mutation. Records for a table id the catalog does not have (dropped,
    /// or never created) are skipped and count 0. Returns rows applied (upsert) or rows that
    /// existed and were deleted (delete). Column indices beyond the table's width are ignored
    /// (cannot happen for validated batches). Deterministic: same mutations, same state.
    ///
    /// Values and new keys are cloned out of `m` (replay decodes into a temporary anyway, so
    /// prefer [`ShardState::apply_owned`] there and on the live write path: it moves them).
    pub fn apply(&mut self, catalog: &Catalog, m: &Mutation) -> u64 {
        match m {
            Mutation::Upsert {
                table_id,
                mode,
                column_idx,
                rows,
            } => self.upsert(
                catalog,
                *table_id,
                *mode,
                column_idx,
                rows.iter()
                    .map(|(k, v)| (KeyRef::Borrowed(k), v.iter().cloned())),
            ),
            Mutation::Delete { table_id, keys } => self.delete(catalog, *table_id, keys),
        }
    }

    /// [`ShardState::apply`] taking the mutation by value: keys and values are moved into the
    /// state, no per-value clone. Same result as `apply(catalog, &m)`.
    pub fn apply_owned(&mut self, catalog: &Catalog, m: Mutation) -> u64 {
        match m {
            Mutation::Upsert {
                table_id,
                mode,
                column_idx,
                rows,
            } => self.upsert(
                catalog,
                table_id,
                mode,
                &column_idx,
                rows.into_iter()
                    .map(|(k, v)| (KeyRef::Owned(k), v.into_iter())),
            ),
            Mutation::Delete { table_id, keys } => self.delete(catalog, table_id, &keys),
        }
    }

    fn upsert<'k, V: Iterator<Item = Value>>(
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
        let table = self.tables.entry(table_id).or_default();
        for (key, values) in rows {
            let put = |row: &mut [Value], values: V| {
                for (&ci, v) in column_idx.iter().zip(values) {
                    if let Some(slot) = row.get_mut(usize::from(ci)) {
                        *slot = v;
                    }
                }
            };
            match (mode, table.rows.get_mut(key.as_slice())) {
                (UpsertMode::Merge, Some(row)) => put(row, values),
                (UpsertMode::Replace, Some(row)) => {
                    row.fill(Value::Null);
                    put(row, values);
                }
                (_, None) => {
                    let mut row = vec![Value::Null; width].into_boxed_slice();
                    put(&mut row, values);
                    table.rows.insert(key.into_owned(), row);
                }
            }
        }
        n
    }

    fn delete(&mut self, catalog: &Catalog, table_id: u32, keys: &[Vec<u8>]) -> u64 {
        if catalog.table_by_id(table_id).is_none() {
            return 0;
        }
        let Some(table) = self.tables.get_mut(&table_id) else {
            return 0;
        };
        keys.iter()
            .filter(|k| table.rows.remove(k.as_slice()).is_some())
            .count() as u64
    }

    /// The full row (in column order) stored under canonical key `key`, borrowed.
    pub fn get(&self, table_id: u32, key: &[u8]) -> Option<&[Value]> {
        self.tables.get(&table_id)?.rows.get(key).map(|r| &**r)
    }

    /// Forgets every row of a table (on DROP TABLE).
    pub fn drop_table(&mut self, table_id: u32) {
        self.tables.remove(&table_id);
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

    /// The checkpoint payload: a 16-byte header (magic, [`CHECKPOINT_FORMAT_VERSION`]) and an
    /// rkyv archive of every row. Values and keys are borrowed while serializing (no copy of
    /// the data besides the archive itself). Tables and rows are written in key order, so equal
    /// states give identical bytes.
    pub fn to_checkpoint(&self) -> rkyv::util::AlignedVec<16> {
        let mut ids: Vec<u32> = self.tables.keys().copied().collect();
        ids.sort_unstable();
        let tables = ids
            .into_iter()
            .map(|id| {
                let mut rows: Vec<(&Vec<u8>, &Box<[Value]>)> =
                    self.tables[&id].rows.iter().collect();
                rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
                CkTable {
                    table_id: id,
                    rows: rows
                        .into_iter()
                        .map(|(k, vals)| CkRow {
                            key: k,
                            values: vals.iter().map(ck_value).collect(),
                        })
                        .collect(),
                }
            })
            .collect();
        let mut out = rkyv::util::AlignedVec::<16>::new();
        out.extend_from_slice(&CHECKPOINT_MAGIC);
        out.extend_from_slice(&CHECKPOINT_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        // Serialize straight after the header: rkyv pointers are relative, and the 16-byte
        // header keeps the archive's alignment.
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(&CkState { tables }, out)
            .expect("checkpoint serialization cannot fail in memory")
    }

    /// Rebuilds a state from a checkpoint payload (16-byte aligned, as storage maps it).
    /// The archive is validated with bytecheck; a bad header, a failed validation, duplicate
    /// tables or keys, or rows whose width or value types disagree with the table's definition
    /// are [`CoreError::Corrupt`]. Rows of tables missing from `catalog` (dropped) are skipped.
    pub fn from_checkpoint(bytes: &[u8], catalog: &Catalog) -> Result<ShardState, CoreError> {
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format_args!(
                "{} bytes is shorter than the header",
                bytes.len()
            )));
        }
        if bytes[..8] != CHECKPOINT_MAGIC {
            return Err(corrupt("bad magic"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != CHECKPOINT_FORMAT_VERSION {
            return Err(corrupt(format_args!(
                "unsupported format version {version} (this build reads {CHECKPOINT_FORMAT_VERSION})"
            )));
        }
        let body = &bytes[HEADER_LEN..];
        if (body.as_ptr() as usize) % 16 != 0 {
            return Err(corrupt("payload is not 16-byte aligned"));
        }
        let archived = rkyv::access::<ArchivedCkState<'static>, rancor::Error>(body)
            .map_err(|e| corrupt(format_args!("invalid archive: {e}")))?;
        let mut state = ShardState::new();
        for t in archived.tables.iter() {
            let id = t.table_id.to_native();
            if state.tables.contains_key(&id) {
                return Err(corrupt(format_args!("table {id} appears twice")));
            }
            let Some(def) = catalog.table_by_id(id) else {
                continue; // dropped since the checkpoint
            };
            let mut table = Table::default();
            table.rows.reserve(t.rows.len());
            for row in t.rows.iter() {
                if row.values.len() != def.columns.len() {
                    return Err(corrupt(format_args!(
                        "table {id}: row has {} values, the table has {} columns",
                        row.values.len(),
                        def.columns.len()
                    )));
                }
                let mut vals = Vec::with_capacity(row.values.len());
                for (v, col) in row.values.iter().zip(&def.columns) {
                    let v = value_from(v);
                    if let Some(t) = v.column_type() {
                        if t != col.ty {
                            return Err(corrupt(format_args!(
                                "table {id}, column \"{}\": {t} value in a {} column",
                                col.name, col.ty
                            )));
                        }
                    }
                    vals.push(v);
                }
                let key: &[u8] = &row.key;
                if table
                    .rows
                    .insert(key.to_vec(), vals.into_boxed_slice())
                    .is_some()
                {
                    return Err(corrupt(format_args!("table {id}: duplicate key")));
                }
            }
            state.tables.insert(id, table);
        }
        Ok(state)
    }
}

fn ck_value(v: &Value) -> CkValue<'_> {
    match v {
        Value::Null => CkValue::Null,
        Value::Bool(b) => CkValue::Bool(*b),
        Value::Int(i) => CkValue::Int(*i),
        Value::Double(d) => CkValue::Double(*d),
        Value::Text(s) => CkValue::Text(s),
        Value::Bytes(b) => CkValue::Bytes(b),
        Value::Timestamp(t) => CkValue::Timestamp(*t),
    }
}

fn value_from(v: &ArchivedCkValue<'_>) -> Value {
    match v {
        ArchivedCkValue::Null => Value::Null,
        ArchivedCkValue::Bool(b) => Value::Bool(*b),
        ArchivedCkValue::Int(i) => Value::Int(i.to_native()),
        ArchivedCkValue::Double(d) => Value::Double(d.to_native()),
        ArchivedCkValue::Text(s) => Value::Text(s.as_ref().to_owned()),
        ArchivedCkValue::Bytes(b) => Value::Bytes(b.as_ref().to_vec()),
        ArchivedCkValue::Timestamp(t) => Value::Timestamp(t.to_native()),
    }
}
