//! Value types shared by every Tarn crate: column types, values, the canonical key encoding and
//! the key -> shard routing function.
//!
//! Invariants:
//! - This crate does no I/O and knows no wire or disk format beyond the canonical key bytes.
//! - [`shard_for`] is pure and stable forever for a given [`ROUTING_HASH`]: the data directory
//!   records the hash name at creation, and a shard asserts ownership when a key lands on it.

use serde::{Deserialize, Serialize};

/// Name of the routing hash recorded in a data directory's `meta` file. Changing the function
/// behind it requires a new name and a migration, because every stored key is placed by it.
pub const ROUTING_HASH: &str = "xxh3-64-seed0-mod";

/// Longest TEXT or BYTES value, in bytes. Bounds the memory one cell can take and keeps any one
/// row well inside a frame; raising it costs memory per row and per in-flight batch.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Largest dimension of a `VECTOR(n)` column: tarn-vectors' limit, so every stored vector can
/// be indexed (see [`tarn_vectors::MAX_DIMENSIONS`] for why 4,096 and what it costs).
pub const MAX_VECTOR_DIMENSIONS: u32 = tarn_vectors::MAX_DIMENSIONS as u32;

/// Most vector components one row may hold, over all its vector columns (1 MiB of f32).
///
/// Why: a row can hold several `VECTOR(4096)` columns; this bounds one row's vector bytes so a
/// row stays well inside a frame, a log record and a checkpoint step (64 columns of the largest
/// dimension). What it costs: a table whose vector columns add up to more components is refused
/// at `CREATE TABLE`; raising it raises the memory one row, one record and one checkpoint step
/// can take.
pub const MAX_VECTOR_COMPONENTS_PER_ROW: u32 = 262_144;

/// Column types. The numeric tags are part of the wire and log formats: never renumber. A
/// vector type is tag [`VECTOR_TAG`] followed by its dimension (u32 little-endian) in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    Boolean,
    BigInt,
    Double,
    Text,
    Bytes,
    /// Microseconds since the Unix epoch, UTC.
    Timestamp,
    /// `VECTOR(n)`: exactly `n` f32 components, `1 <= n <= MAX_VECTOR_DIMENSIONS`, each finite.
    /// The catalog JSON spells it `{"Vector": n}`.
    Vector(u32),
}

/// Wire and log tag of `VECTOR(n)`; the dimension follows as u32 little-endian.
pub const VECTOR_TAG: u8 = 7;

impl ColumnType {
    /// The fieldless type of `tag`; `None` for unknown tags and for [`VECTOR_TAG`], whose
    /// dimension the caller reads next and passes to [`ColumnType::vector`].
    pub fn from_tag(tag: u8) -> Option<ColumnType> {
        Some(match tag {
            1 => ColumnType::Boolean,
            2 => ColumnType::BigInt,
            3 => ColumnType::Double,
            4 => ColumnType::Text,
            5 => ColumnType::Bytes,
            6 => ColumnType::Timestamp,
            _ => return None,
        })
    }

    /// `VECTOR(dim)`, or the reason `dim` is outside `1..=MAX_VECTOR_DIMENSIONS`.
    pub fn vector(dim: u32) -> Result<ColumnType, tarn_vectors::VectorError> {
        tarn_vectors::check_dimensions(dim as usize)?;
        Ok(ColumnType::Vector(dim))
    }

    pub fn tag(self) -> u8 {
        match self {
            ColumnType::Boolean => 1,
            ColumnType::BigInt => 2,
            ColumnType::Double => 3,
            ColumnType::Text => 4,
            ColumnType::Bytes => 5,
            ColumnType::Timestamp => 6,
            ColumnType::Vector(_) => VECTOR_TAG,
        }
    }

    /// The dimension of a vector type; `None` for the others.
    pub fn vector_dim(self) -> Option<u32> {
        match self {
            ColumnType::Vector(d) => Some(d),
            _ => None,
        }
    }

    /// The SQL spelling, as `CREATE TABLE` accepts it and `DESCRIBE`/errors print it
    /// (`VECTOR(64)` with its dimension).
    pub fn sql_name(self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::BigInt => "BIGINT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Text => "TEXT",
            ColumnType::Bytes => "BYTES",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Vector(d) => return std::borrow::Cow::Owned(format!("VECTOR({d})")),
        })
    }

    /// Types allowed as a primary key. DOUBLE is excluded: NaN and -0.0 make equality
    /// ambiguous; VECTOR has no equality or order at all.
    pub fn can_be_key(self) -> bool {
        !matches!(self, ColumnType::Double | ColumnType::Vector(_))
    }

    /// Types with equality and order (`=`, `<`, `MIN`, `GROUP BY`): all but VECTOR, whose
    /// components are compared by distance, never by value.
    pub fn is_comparable(self) -> bool {
        !matches!(self, ColumnType::Vector(_))
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sql_name())
    }
}

/// How an upsert treats an existing row with the same key. The discriminant is part of the
/// wire format (a u8 in UPSERT) and of the log-record format: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum UpsertMode {
    /// Write the full row: unlisted columns become NULL.
    Replace = 0,
    /// Update the listed columns of an existing row (others keep their value); a new row gets
    /// NULL in unlisted columns.
    Merge = 1,
}

impl UpsertMode {
    /// Decodes the wire/log discriminant.
    pub fn from_u8(b: u8) -> Option<UpsertMode> {
        match b {
            0 => Some(UpsertMode::Replace),
            1 => Some(UpsertMode::Merge),
            _ => None,
        }
    }
}

/// One cell. `Null` is allowed everywhere but in primary keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// A `VECTOR(n)` cell: its `n` components.
    Vector(Box<[f32]>),
}

impl Value {
    /// The type of a non-null value; `None` for `Null`.
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => ColumnType::Boolean,
            Value::Int(_) => ColumnType::BigInt,
            Value::Double(_) => ColumnType::Double,
            Value::Text(_) => ColumnType::Text,
            Value::Bytes(_) => ColumnType::Bytes,
            Value::Timestamp(_) => ColumnType::Timestamp,
            Value::Vector(v) => ColumnType::Vector(v.len() as u32),
        })
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Why a value cannot be a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("primary key is NULL")]
    Null,
    #[error("a {0} value cannot be a primary key")]
    Type(ColumnType),
}

/// Canonical key bytes: the type tag followed by the value's bytes (integers and timestamps as
/// 8 bytes big-endian with the sign bit flipped, so byte order is value order; text and bytes
/// raw). The same value gives the same bytes in every table, so a card id routes to the same
/// shard whether it keys a table row or, later, a feature view.
pub fn encode_key(value: &Value, out: &mut Vec<u8>) -> Result<(), KeyError> {
    out.clear();
    match value {
        Value::Null => return Err(KeyError::Null),
        Value::Double(_) => return Err(KeyError::Type(ColumnType::Double)),
        Value::Vector(v) => return Err(KeyError::Type(ColumnType::Vector(v.len() as u32))),
        Value::Bool(b) => {
            out.push(ColumnType::Boolean.tag());
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(ColumnType::BigInt.tag());
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Timestamp(t) => {
            out.push(ColumnType::Timestamp.tag());
            out.extend_from_slice(&((*t as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Text(s) => {
            out.push(ColumnType::Text.tag());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(ColumnType::Bytes.tag());
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

/// The owner shard of a key: `xxh3_64(canonical key bytes) mod shard_count`.
///
/// Pure and stable: the same key and shard count give the same shard in every process and
/// version that records [`ROUTING_HASH`] in its data directory.
pub fn shard_for(key: &[u8], shard_count: u32) -> u32 {
    assert!(shard_count > 0, "shard_count must be positive");
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(shard_count)) as u32
}

/// The shard that coordinates every multi-shard batch tagged by producer `producer_id`:
/// [`shard_for`] of the id's little-endian bytes.
///
/// Why one coordinator per producer: it gives each owner's log the attempts of one batch (a
/// first try and its retries) in the same order, through the coordinator's per-owner link
/// sequence. So the same attempt takes the producer's seq on every owner, and an attempt that
/// is durable everywhere has every earlier attempt durable everywhere too: the deduplication
/// of retries can never keep one owner's part of an attempt while another owner keeps the
/// other attempt's part.
pub fn coordinator_for_producer(producer_id: u64, shard_count: u32) -> u32 {
    shard_for(&producer_id.to_le_bytes(), shard_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(&v, &mut out).unwrap();
        out
    }

    #[test]
    fn key_bytes_are_canonical_and_ordered() {
        assert_eq!(key(Value::Int(1)), vec![2, 0x80, 0, 0, 0, 0, 0, 0, 1]);
        assert!(key(Value::Int(-1)) < key(Value::Int(0)));
        assert!(key(Value::Int(0)) < key(Value::Int(i64::MAX)));
        assert_ne!(key(Value::Int(7)), key(Value::Timestamp(7)));
        assert_eq!(key(Value::Text("ab".into())), vec![4, b'a', b'b']);
    }

    #[test]
    fn null_and_double_keys_are_rejected() {
        let mut out = Vec::new();
        assert_eq!(encode_key(&Value::Null, &mut out), Err(KeyError::Null));
        assert_eq!(
            encode_key(&Value::Double(1.0), &mut out),
            Err(KeyError::Type(ColumnType::Double))
        );
    }

    #[test]
    fn vector_type_has_tag_7_its_dimension_and_no_key() {
        let t = ColumnType::vector(64).unwrap();
        assert_eq!(t, ColumnType::Vector(64));
        assert_eq!(t.tag(), VECTOR_TAG);
        assert_eq!(ColumnType::from_tag(VECTOR_TAG), None);
        assert_eq!(t.sql_name(), "VECTOR(64)");
        assert_eq!(t.to_string(), "VECTOR(64)");
        assert_eq!(t.vector_dim(), Some(64));
        assert!(!t.can_be_key() && !t.is_comparable());
        assert!(ColumnType::Text.is_comparable() && ColumnType::Text.vector_dim().is_none());
        assert!(ColumnType::vector(0).is_err());
        assert!(ColumnType::vector(MAX_VECTOR_DIMENSIONS).is_ok());
        assert!(ColumnType::vector(MAX_VECTOR_DIMENSIONS + 1).is_err());
        // Fieldless types keep their tags; the catalog JSON spells the dimension.
        for (tag, ty) in (1..=6).map(|t| (t, ColumnType::from_tag(t).unwrap())) {
            assert_eq!(ty.tag(), tag);
        }
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"Vector":64}"#);
        assert_eq!(
            serde_json::to_string(&ColumnType::Text).unwrap(),
            r#""Text""#
        );
        let v = Value::Vector(vec![1.0, 2.0].into());
        assert_eq!(v.column_type(), Some(ColumnType::Vector(2)));
        let mut out = Vec::new();
        assert_eq!(
            encode_key(&v, &mut out),
            Err(KeyError::Type(ColumnType::Vector(2)))
        );
    }

    #[test]
    fn routing_is_stable_and_spreads() {
        // Pinned values: if these change, every existing data directory is mis-routed.
        assert_eq!(shard_for(&key(Value::Text("card-1".into())), 1), 0);
        let fixed: Vec<u32> = (0..8).map(|i| shard_for(&key(Value::Int(i)), 4)).collect();
        assert_eq!(fixed, vec![0, 0, 1, 1, 2, 1, 3, 1]);
        let mut counts = [0u32; 4];
        for i in 0..40_000 {
            counts[shard_for(&key(Value::Int(i)), 4) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "uneven spread {counts:?}");
        }
    }
}
