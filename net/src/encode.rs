//! Encoding of the primitive fields and of values (`docs/PROTOCOL.md` §2): infallible, used
//! by every message encoder in `codec`.

use tarn_types::{ColumnType, Value, VECTOR_TAG};

/// Value tag for NULL; non-null values use their [`ColumnType`] tag (1..=7).
pub const VALUE_TAG_NULL: u8 = 0;

pub(crate) fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("length exceeds u32::MAX and cannot be encoded")
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}
pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_count(out: &mut Vec<u8>, n: usize) {
    put_u32(out, len32(n));
}
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_count(out, b.len());
    out.extend_from_slice(b);
}
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

pub(crate) fn put_f32(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A vector body (VECTOR value after its tag, KNN query vector): count + f32 LE each.
pub(crate) fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    put_count(out, v.len());
    for &x in v {
        put_f32(out, x);
    }
}

/// Appends one Value: u8 tag + body.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => put_u8(out, VALUE_TAG_NULL),
        Value::Bool(b) => {
            put_u8(out, ColumnType::Boolean.tag());
            put_u8(out, u8::from(*b));
        }
        Value::Int(i) => {
            put_u8(out, ColumnType::BigInt.tag());
            put_i64(out, *i);
        }
        Value::Double(d) => {
            put_u8(out, ColumnType::Double.tag());
            put_u64(out, d.to_bits());
        }
        Value::Text(s) => {
            put_u8(out, ColumnType::Text.tag());
            put_str(out, s);
        }
        Value::Bytes(b) => {
            put_u8(out, ColumnType::Bytes.tag());
            put_bytes(out, b);
        }
        Value::Timestamp(t) => {
            put_u8(out, ColumnType::Timestamp.tag());
            put_i64(out, *t);
        }
        Value::Vector(v) => {
            put_u8(out, VECTOR_TAG);
            put_f32s(out, v);
        }
    }
}

/// Appends one column type: its tag, and for `VECTOR(n)` the dimension as u32.
pub fn encode_column_type(ty: ColumnType, out: &mut Vec<u8>) {
    put_u8(out, ty.tag());
    if let ColumnType::Vector(dim) = ty {
        put_u32(out, dim);
    }
}

pub(crate) fn put_row(out: &mut Vec<u8>, row: &[Value]) {
    put_count(out, row.len());
    for v in row {
        encode_value(v, out);
    }
}
