//! Validation of client batches and their split by owner shard.
//!
//! Type rules (value → column), applied identically to upsert values and GET/DELETE keys:
//! - `NULL` fits every column except the primary key.
//! - Each non-null value must have the column's type, with two lossless coercions so JSON
//!   clients (which only have numbers) work: **`Int` → TIMESTAMP** (taken as µs since the epoch)
//!   and **`Int` → DOUBLE** when |i| ≤ 2^53 (exactly representable). Coerced values are stored
//!   as the column's type, so state and log records only ever hold exactly-typed values.
//!   No other coercion: TEXT never accepts BYTES, BIGINT never accepts TIMESTAMP or DOUBLE.
//! - TEXT/BYTES at most [`MAX_VALUE_BYTES`]; DOUBLE finite.
//! - VECTOR(n): exactly `n` finite components within the vector rules
//!   ([`crate::vector::check`]), else `BadVector` naming the row, the column and the component.

pub use tarn_types::UpsertMode;
use tarn_types::{encode_key, shard_for, ColumnType, KeyError, Value, MAX_VALUE_BYTES};

use crate::record::Mutation;
use crate::schema::{ColumnDef, TableDef};
use crate::CoreError;

/// A fully validated upsert batch: every row type-checked (and coerced), keys encoded, nothing
/// left to fail except I/O. Rows keep batch order; a key repeated in the batch is applied in
/// order, so the last occurrence wins (for `Merge`, occurrences combine in order).
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedUpsert {
    /// Target table id.
    pub table_id: u32,
    /// Replace or merge.
    pub mode: UpsertMode,
    /// Table column index of each listed column, in the client's order.
    pub column_idx: Vec<u16>,
    /// Values, `rows[r][i]` for column `column_idx[i]`.
    pub rows: Vec<Vec<Value>>,
    /// Canonical key bytes of each row (`keys[r]` for `rows[r]`).
    pub keys: Vec<Vec<u8>>,
}

impl ValidatedUpsert {
    /// Moves the batch into a log [`Mutation`] (no copies of values or keys).
    pub fn into_mutation(self) -> Mutation {
        Mutation::Upsert {
            table_id: self.table_id,
            mode: self.mode,
            column_idx: self.column_idx,
            rows: self.keys.into_iter().zip(self.rows).collect(),
        }
    }
}

/// Checks one value for column `c`; `row` is for error messages. Returns the coerced
/// replacement when a coercion applies (see the module docs), `None` when `v` is fine.
pub(crate) fn check_value(
    c: &ColumnDef,
    row: usize,
    v: &Value,
) -> Result<Option<Value>, CoreError> {
    let loc_col = || Some(c.name.clone());
    let Some(got) = v.column_type() else {
        return Ok(None);
    };
    let coerced = match (c.ty, v) {
        (ColumnType::Vector(dim), Value::Vector(x)) => {
            return crate::vector::check(x, dim)
                .map(|()| None)
                .map_err(|reason| crate::vector::bad(Some(row), Some(&c.name), reason))
        }
        (ColumnType::Timestamp, Value::Int(i)) => return Ok(Some(Value::Timestamp(*i))),
        (ColumnType::Double, Value::Int(i)) if i.unsigned_abs() <= 1u64 << 53 => {
            return Ok(Some(Value::Double(*i as f64)))
        }
        _ if got != c.ty => {
            return Err(CoreError::TypeMismatch {
                row: Some(row),
                column: loc_col(),
                expected: c.ty,
                got,
            })
        }
        _ => None,
    };
    match v {
        Value::Double(d) if !d.is_finite() => Err(CoreError::NonFiniteDouble {
            row: Some(row),
            column: loc_col(),
        }),
        Value::Text(s) if s.len() > MAX_VALUE_BYTES => Err(CoreError::ValueTooLong {
            row: Some(row),
            column: loc_col(),
            len: s.len(),
            max: MAX_VALUE_BYTES,
        }),
        Value::Bytes(b) if b.len() > MAX_VALUE_BYTES => Err(CoreError::ValueTooLong {
            row: Some(row),
            column: loc_col(),
            len: b.len(),
            max: MAX_VALUE_BYTES,
        }),
        _ => Ok(coerced),
    }
}

/// Encodes an already type-checked key value.
fn key_bytes(def: &TableDef, row: usize, v: &Value) -> Result<Vec<u8>, CoreError> {
    let mut out = Vec::with_capacity(16);
    match encode_key(v, &mut out) {
        Ok(()) => Ok(out),
        Err(KeyError::Null) => Err(CoreError::NullKey {
            row: Some(row),
            column: Some(def.key_name().to_string()),
        }),
        Err(KeyError::Type(t)) => Err(CoreError::TypeMismatch {
            row: Some(row),
            column: Some(def.key_name().to_string()),
            expected: def.key_type(),
            got: t,
        }),
    }
}

/// Validates an upsert batch completely before anything is written.
///
/// Checks, in order: at least one row (`BatchEmpty`); every listed column exists
/// (`UnknownColumn`) and is listed once (`DuplicateColumn`); the key column is listed
/// (`MissingKey`); then row by row, column by column: row length (`RowArity`), type
/// (`TypeMismatch`), size (`ValueTooLong`), finiteness (`NonFiniteDouble`), non-NULL key
/// (`NullKey`). The first failing row is reported with its 0-based index and column name.
/// `Int` values are coerced for TIMESTAMP and DOUBLE columns (see the module docs).
pub fn validate_upsert(
    def: &TableDef,
    mode: UpsertMode,
    columns: &[String],
    mut rows: Vec<Vec<Value>>,
) -> Result<ValidatedUpsert, CoreError> {
    if rows.is_empty() {
        return Err(CoreError::BatchEmpty);
    }
    let mut column_idx: Vec<u16> = Vec::with_capacity(columns.len());
    for name in columns {
        let idx = def
            .column_index(name)
            .ok_or_else(|| CoreError::UnknownColumn {
                table: def.name.clone(),
                column: name.clone(),
            })?;
        // idx < MAX_COLUMNS (≤ u16::MAX), enforced by the SQL front end and catalog.
        let idx = u16::try_from(idx).map_err(|_| {
            CoreError::LimitExceeded(format!("column index {idx} does not fit in u16"))
        })?;
        if column_idx.contains(&idx) {
            return Err(CoreError::DuplicateColumn {
                column: name.clone(),
            });
        }
        column_idx.push(idx);
    }
    let key_pos = column_idx
        .iter()
        .position(|&i| usize::from(i) == def.key_column)
        .ok_or_else(|| CoreError::MissingKey {
            column: def.key_name().to_string(),
        })?;
    let mut keys = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter_mut().enumerate() {
        if row.len() != column_idx.len() {
            return Err(CoreError::RowArity {
                row: Some(r),
                expected: column_idx.len(),
                got: row.len(),
            });
        }
        for (v, &ci) in row.iter_mut().zip(&column_idx) {
            if let Some(coerced) = check_value(&def.columns[usize::from(ci)], r, v)? {
                *v = coerced;
            }
        }
        keys.push(key_bytes(def, r, &row[key_pos])?);
    }
    Ok(ValidatedUpsert {
        table_id: def.id,
        mode,
        column_idx,
        rows,
        keys,
    })
}

/// Validates GET/DELETE keys against the key column type and encodes them, in order.
/// `row` in errors is the key's index. An empty list is `BatchEmpty`. `Int` keys of a TIMESTAMP
/// key column are coerced (so they find rows written with `Int` values).
pub fn validate_keys(def: &TableDef, keys: &[Value]) -> Result<Vec<Vec<u8>>, CoreError> {
    if keys.is_empty() {
        return Err(CoreError::BatchEmpty);
    }
    let mut out = Vec::with_capacity(keys.len());
    for (r, k) in keys.iter().enumerate() {
        if k.is_null() {
            return Err(CoreError::NullKey {
                row: Some(r),
                column: Some(def.key_name().to_string()),
            });
        }
        let bytes = match check_value(&def.columns[def.key_column], r, k)? {
            Some(coerced) => key_bytes(def, r, &coerced)?,
            None => key_bytes(def, r, k)?,
        };
        out.push(bytes);
    }
    Ok(out)
}

/// Splits a validated upsert into per-shard parts by `shard_for(key, shard_count)`.
///
/// Moves rows and keys (no value is copied) into at most `shard_count` parts; the result is
/// indexed by shard, `None` where a shard gets no rows. Each part keeps batch order, and equal
/// keys always land on the same shard, so per-key order (last write wins) is preserved.
/// Turn a part into its log record with [`ValidatedUpsert::into_mutation`].
///
/// Panics if `shard_count` is 0 (as [`shard_for`] does).
pub fn split_by_shard(v: ValidatedUpsert, shard_count: u32) -> Vec<Option<ValidatedUpsert>> {
    let n = shard_count as usize;
    let mut parts: Vec<Option<ValidatedUpsert>> = (0..n).map(|_| None).collect();
    let ValidatedUpsert {
        table_id,
        mode,
        column_idx,
        rows,
        keys,
    } = v;
    for (row, key) in rows.into_iter().zip(keys) {
        let s = shard_for(&key, shard_count) as usize;
        let part = parts[s].get_or_insert_with(|| ValidatedUpsert {
            table_id,
            mode,
            column_idx: column_idx.clone(),
            rows: Vec::new(),
            keys: Vec::new(),
        });
        part.rows.push(row);
        part.keys.push(key);
    }
    parts
}

/// One owner's share of a request's keys: the owner shard, the request index of each of its
/// keys, and what it is sent for each (in request order).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerPart<T> {
    /// The owner.
    pub shard: u32,
    /// The request index of each of its keys, ascending.
    pub indexes: Vec<usize>,
    /// What the owner is sent for each of its keys.
    pub items: Vec<T>,
}

/// Groups a request's canonical keys (GET, DELETE, feature reads, history) by owner shard
/// (`shard_for`), so each owner can be asked once and the answers put back in request order.
/// `item(i, key)` is what the owner is sent for key `i`. Owners without keys are left out; the
/// rest ascend by shard.
///
/// Panics if `shard_count` is 0.
pub fn by_owner<T>(
    keys: Vec<Vec<u8>>,
    shard_count: u32,
    mut item: impl FnMut(usize, Vec<u8>) -> T,
) -> Vec<OwnerPart<T>> {
    let mut parts: Vec<OwnerPart<T>> = (0..shard_count)
        .map(|shard| OwnerPart {
            shard,
            indexes: Vec::new(),
            items: Vec::new(),
        })
        .collect();
    for (i, k) in keys.into_iter().enumerate() {
        let part = &mut parts[shard_for(&k, shard_count) as usize];
        part.indexes.push(i);
        part.items.push(item(i, k));
    }
    parts.retain(|p| !p.indexes.is_empty());
    parts
}

/// The rule vector indexes add to a validated upsert of their table: a `cosine` index cannot
/// hold a zero vector (it has no direction), so a row giving one to a cosine-indexed column
/// is refused with [`CoreError::BadVector`] naming the row, the column and the index, and
/// nothing of the batch is applied.
pub fn check_indexed_vectors(
    v: &ValidatedUpsert,
    catalog: &crate::catalog::Catalog,
    def: &TableDef,
) -> Result<(), CoreError> {
    for index in catalog.indexes_of_table(def.id) {
        if index.metric != tarn_vectors::Metric::Cosine {
            continue;
        }
        let Some(pos) = v.column_idx.iter().position(|&c| c == index.column) else {
            continue;
        };
        for (i, row) in v.rows.iter().enumerate() {
            if let Some(Value::Vector(x)) = row.get(pos) {
                if x.iter().all(|&c| c == 0.0) {
                    let column = &def.columns[usize::from(index.column)].name;
                    return Err(crate::vector::bad(
                        Some(i),
                        Some(column),
                        format!(
                            "a zero vector has no direction: cosine index \"{}\" cannot hold it",
                            index.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
