//! Value encodings of the window columns: the i64 key of a fixed-width value (integer order =
//! the type's total order, `f64::total_cmp` for DOUBLE) and back, the bytes of TEXT/BYTES
//! values, the f64 input of `avg`/variances, and the tie-breaking order of `first`/`last`.

use tarn_types::{ColumnType, Value};

#[inline]
pub(crate) fn f64_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

#[inline]
pub(crate) fn f64_from_key(k: i64) -> f64 {
    f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64)
}

/// The i64 key of a fixed-width value of type `ty` (None for NULL or another type).
#[inline]
pub(super) fn key_of(ty: ColumnType, v: &Value) -> Option<i64> {
    match (ty, v) {
        (ColumnType::BigInt, Value::Int(i)) => Some(*i),
        (ColumnType::Timestamp, Value::Timestamp(t)) => Some(*t),
        (ColumnType::Double, Value::Double(d)) => Some(f64_key(*d)),
        (ColumnType::Boolean, Value::Bool(b)) => Some(i64::from(*b)),
        _ => None,
    }
}

pub(super) fn value_of(ty: ColumnType, k: i64) -> Value {
    match ty {
        ColumnType::BigInt => Value::Int(k),
        ColumnType::Timestamp => Value::Timestamp(k),
        ColumnType::Double => Value::Double(f64_from_key(k)),
        _ => Value::Bool(k != 0),
    }
}

pub(super) fn blob_of(ty: ColumnType, v: &Value) -> Option<&[u8]> {
    match (ty, v) {
        (ColumnType::Text, Value::Text(s)) => Some(s.as_bytes()),
        (ColumnType::Bytes, Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

pub(super) fn blob_value(ty: ColumnType, b: &[u8]) -> Value {
    match ty {
        ColumnType::Text => Value::Text(String::from_utf8_lossy(b).into_owned()),
        _ => Value::Bytes(b.to_vec()),
    }
}

/// The f64 an `avg`/variance input contributes (BIGINT inputs are converted with `as f64`,
/// round to nearest).
#[inline]
pub(super) fn num_of(int: bool, v: &Value) -> Option<f64> {
    match (int, v) {
        (true, Value::Int(i)) => Some(*i as f64),
        (false, Value::Double(d)) => Some(*d),
        _ => None,
    }
}

/// Is (t, candidate) a better first (`!last`) / last pick than (cur_t, cur)?
#[inline]
pub(super) fn better<T: Ord + ?Sized>(last: bool, t: i64, v: &T, cur_t: i64, cur: &T) -> bool {
    if last {
        t > cur_t || (t == cur_t && v > cur)
    } else {
        t < cur_t || (t == cur_t && v < cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_order_key() {
        let xs = [
            f64::NEG_INFINITY,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::from_bits(1),
            1.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for w in xs.windows(2) {
            assert!(f64_key(w[0]) < f64_key(w[1]), "{} {}", w[0], w[1]);
            assert_eq!(w[0].total_cmp(&w[1]), f64_key(w[0]).cmp(&f64_key(w[1])));
        }
        for x in xs {
            assert_eq!(f64_from_key(f64_key(x)).to_bits(), x.to_bits());
        }
        assert!(f64_key(-f64::NAN) < f64_key(f64::NEG_INFINITY));
    }
}
