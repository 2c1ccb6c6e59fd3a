//! Log-record payloads: one record = one shard's part of one client request.
//!
//! Layout (all integers little-endian):
//! ```text
//! u8  RECORD_FORMAT_VERSION (= 1)
//! u8  kind: 1 = Upsert, 2 = Delete (3.. reserved: stream events, feature-view updates,
//!     producer dedup marks)
//! Upsert: u32 table_id, u8 mode (0 Replace, 1 Merge), u16 ncols, ncols × u16 column index,
//!         u32 nrows, nrows × { u32 key_len, key bytes, ncols × value }
//! Delete: u32 table_id, u32 nkeys, nkeys × { u32 key_len, key bytes }
//! value:  u8 tag (0 = NULL, else the ColumnType tag) then
//!         BOOLEAN u8 (0/1) | BIGINT i64 | DOUBLE f64 bits | TEXT u32 len + UTF-8 |
//!         BYTES u32 len + bytes | TIMESTAMP i64
//! ```
//! The payload must be consumed exactly: trailing bytes are corruption. Storage adds framing and
//! the CRC; this layer still never panics and never over-allocates on hostile bytes.

use tarn_types::{ColumnType, Value};

use crate::batch::UpsertMode;
use crate::CoreError;

/// First byte of every record payload. Bumped on any incompatible layout change; older versions
/// stay decodable for as long as logs written by them may exist.
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// Record kind byte for [`Mutation::Upsert`].
pub const KIND_UPSERT: u8 = 1;
/// Record kind byte for [`Mutation::Delete`].
pub const KIND_DELETE: u8 = 2;

/// One shard's part of one client request, as logged and replayed.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// Upsert rows: `rows[r] = (canonical key, values for column_idx)`.
    Upsert {
        /// Target table id.
        table_id: u32,
        /// Replace or merge.
        mode: UpsertMode,
        /// Table column index of each value position.
        column_idx: Vec<u16>,
        /// `(key bytes, values)` in batch order.
        rows: Vec<(Vec<u8>, Vec<Value>)>,
    },
    /// Delete rows by canonical key.
    Delete {
        /// Target table id.
        table_id: u32,
        /// Canonical key bytes.
        keys: Vec<Vec<u8>>,
    },
}

impl Mutation {
    /// The table the mutation targets.
    pub fn table_id(&self) -> u32 {
        match self {
            Mutation::Upsert { table_id, .. } | Mutation::Delete { table_id, .. } => *table_id,
        }
    }

    /// Number of rows (upsert) or keys (delete).
    pub fn len(&self) -> usize {
        match self {
            Mutation::Upsert { rows, .. } => rows.len(),
            Mutation::Delete { keys, .. } => keys.len(),
        }
    }

    /// True when the mutation carries no rows/keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // Lengths are bounded by MAX_VALUE_BYTES / batch limits far below u32::MAX.
    let n = u32::try_from(n).expect("record length fits in u32");
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Bool(b) => {
            out.push(ColumnType::Boolean.tag());
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(ColumnType::BigInt.tag());
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Double(d) => {
            out.push(ColumnType::Double.tag());
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Text(s) => {
            out.push(ColumnType::Text.tag());
            put_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(ColumnType::Bytes.tag());
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
        Value::Timestamp(t) => {
            out.push(ColumnType::Timestamp.tag());
            out.extend_from_slice(&t.to_le_bytes());
        }
    }
}

/// Appends the payload of `m` to `out` (does not clear it).
pub fn encode(m: &Mutation, out: &mut Vec<u8>) {
    out.push(RECORD_FORMAT_VERSION);
    match m {
        Mutation::Upsert {
            table_id,
            mode,
            column_idx,
            rows,
        } => {
            out.push(KIND_UPSERT);
            out.extend_from_slice(&table_id.to_le_bytes());
            out.push(*mode as u8);
            let ncols = u16::try_from(column_idx.len()).expect("column count fits in u16");
            out.extend_from_slice(&ncols.to_le_bytes());
            for c in column_idx {
                out.extend_from_slice(&c.to_le_bytes());
            }
            put_len(out, rows.len());
            for (key, values) in rows {
                debug_assert_eq!(values.len(), column_idx.len());
                put_len(out, key.len());
                out.extend_from_slice(key);
                for v in values {
                    put_value(out, v);
                }
            }
        }
        Mutation::Delete { table_id, keys } => {
            out.push(KIND_DELETE);
            out.extend_from_slice(&table_id.to_le_bytes());
            put_len(out, keys.len());
            for key in keys {
                put_len(out, key.len());
                out.extend_from_slice(key);
            }
        }
    }
}

/// Convenience: the payload of `m` in a new buffer.
pub fn encode_to_vec(m: &Mutation) -> Vec<u8> {
    let mut out = Vec::new();
    encode(m, &mut out);
    out
}

fn corrupt(what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("log record: {what}"))
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CoreError> {
        if self.b.len() - self.pos < n {
            return Err(corrupt(format_args!(
                "truncated {what} at byte {} (need {n}, have {})",
                self.pos,
                self.b.len() - self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N], CoreError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self, what: &str) -> Result<u8, CoreError> {
        Ok(self.arr::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, CoreError> {
        Ok(u16::from_le_bytes(self.arr(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, CoreError> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
    fn i64(&mut self, what: &str) -> Result<i64, CoreError> {
        Ok(i64::from_le_bytes(self.arr(what)?))
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    /// A count whose items take at least `min_item` bytes each: bounded by what is left, so a
    /// corrupt count can never trigger a huge allocation.
    fn count(&mut self, min_item: usize, what: &str) -> Result<usize, CoreError> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(corrupt(format_args!(
                "{what} {n} exceeds the remaining {} bytes",
                self.remaining()
            )));
        }
        Ok(n)
    }
    fn bytes(&mut self, what: &str) -> Result<&'a [u8], CoreError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    fn value(&mut self) -> Result<Value, CoreError> {
        let tag = self.u8("value tag")?;
        if tag == 0 {
            return Ok(Value::Null);
        }
        let at = self.pos - 1;
        let ty = ColumnType::from_tag(tag)
            .ok_or_else(|| corrupt(format_args!("unknown value tag {tag} at byte {at}")))?;
        Ok(match ty {
            ColumnType::Boolean => match self.u8("BOOLEAN")? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(corrupt(format_args!("BOOLEAN byte {b} at byte {}", at + 1))),
            },
            ColumnType::BigInt => Value::Int(self.i64("BIGINT")?),
            ColumnType::Double => Value::Double(f64::from_bits(self.i64("DOUBLE")? as u64)),
            ColumnType::Timestamp => Value::Timestamp(self.i64("TIMESTAMP")?),
            ColumnType::Text => {
                let b = self.bytes("TEXT")?;
                let s = std::str::from_utf8(b)
                    .map_err(|e| corrupt(format_args!("TEXT at byte {at}: {e}")))?;
                Value::Text(s.to_owned())
            }
            ColumnType::Bytes => Value::Bytes(self.bytes("BYTES")?.to_vec()),
        })
    }
}

/// Decodes a record payload. Any malformed byte (unknown version/kind/mode/tag, truncation,
/// bad UTF-8, trailing bytes) is [`CoreError::Corrupt`]; never panics.
pub fn decode(bytes: &[u8]) -> Result<Mutation, CoreError> {
    let mut r = Reader { b: bytes, pos: 0 };
    let version = r.u8("format version")?;
    if version != RECORD_FORMAT_VERSION {
        return Err(corrupt(format_args!(
            "unsupported format version {version} (this build reads {RECORD_FORMAT_VERSION})"
        )));
    }
    let kind = r.u8("record kind")?;
    let m = match kind {
        KIND_UPSERT => {
            let table_id = r.u32("table id")?;
            let mode_b = r.u8("upsert mode")?;
            let mode = UpsertMode::from_u8(mode_b)
                .ok_or_else(|| corrupt(format_args!("unknown upsert mode {mode_b}")))?;
            let ncols = usize::from(r.u16("column count")?);
            let mut column_idx = Vec::with_capacity(ncols.min(r.remaining() / 2));
            for _ in 0..ncols {
                column_idx.push(r.u16("column index")?);
            }
            // Each row: 4-byte key length + one tag byte per value, at least.
            let nrows = r.count(4 + ncols, "row count")?;
            let mut rows = Vec::with_capacity(nrows);
            for _ in 0..nrows {
                let key = r.bytes("key")?.to_vec();
                let mut values = Vec::with_capacity(ncols);
                for _ in 0..ncols {
                    values.push(r.value()?);
                }
                rows.push((key, values));
            }
            Mutation::Upsert {
                table_id,
                mode,
                column_idx,
                rows,
            }
        }
        KIND_DELETE => {
            let table_id = r.u32("table id")?;
            let n = r.count(4, "key count")?;
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                keys.push(r.bytes("key")?.to_vec());
            }
            Mutation::Delete { table_id, keys }
        }
        k => return Err(corrupt(format_args!("unknown record kind {k}"))),
    };
    if r.remaining() != 0 {
        return Err(corrupt(format_args!(
            "{} trailing bytes after the record",
            r.remaining()
        )));
    }
    Ok(m)
}
