//! Value conversions for the CLI: JSON -> [`Value`] by column type, command-line text -> key
//! values, RFC 3339 timestamps, `\x` hex bytes, and the two output spellings of a value (table
//! text and JSON).
//!
//! Spellings (also in `tarn --help`):
//! - BOOLEAN: JSON `true`/`false`; as a key argument `true`/`false`.
//! - BIGINT: a JSON integer (no fraction, no exponent) in the i64 range.
//! - DOUBLE: any JSON number.
//! - TEXT: a JSON string.
//! - BYTES: a string `\x` + an even number of hex digits (PostgreSQL bytea hex format; inside
//!   JSON the backslash is escaped: `"\\xdeadbeef"`).
//! - TIMESTAMP: an integer (microseconds since the Unix epoch, UTC) or an RFC 3339 string such as
//!   `2024-05-01T12:00:00.25Z` / `2024-05-01 14:00:00+02:00`, read by the server's own rule
//!   ([`tarn_core::timestamp`]): the same text gives the same value, or the same refusal, as
//!   `tarn ingest` and SQL `TIMESTAMP '…'` literals.
//! - `null` is NULL for every type.

use tarn_types::{ColumnType, Value};

/// Parses an RFC 3339 date-time into microseconds since the Unix epoch (UTC), by the one
/// timestamp rule of [`tarn_core::timestamp::parse_rfc3339_us`] (which the server uses for
/// JSON ingest and SQL literals).
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    tarn_core::timestamp::parse_rfc3339_us(s)
        .map_err(|why| format!("invalid RFC 3339 timestamp {s:?}: {why}"))
}

/// Formats microseconds since the epoch as RFC 3339 in UTC: `2024-05-01T12:00:00Z`, with a
/// six-digit fraction only when the value has sub-second microseconds.
pub fn format_timestamp(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let date = if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        // Outside RFC 3339's four-digit years: still unambiguous, ISO 8601 expanded style.
        format!("{y:+}-{m:02}-{d:02}")
    };
    if micros == 0 {
        format!("{date}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{date}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z")
    }
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `\x` + lowercase hex.
pub fn format_bytes(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + b.len() * 2);
    s.push_str("\\x");
    for byte in b {
        s.push(HEX[usize::from(byte >> 4)] as char);
        s.push(HEX[usize::from(byte & 15)] as char);
    }
    s
}

/// Parses `\x` + an even number of hex digits (either case).
pub fn parse_bytes(s: &str) -> Result<Vec<u8>, String> {
    let hex = s
        .strip_prefix("\\x")
        .or_else(|| s.strip_prefix("\\X"))
        .ok_or_else(|| "BYTES must be written as \\x followed by hex digits".to_string())?;
    if hex.len() % 2 != 0 {
        return Err("BYTES hex has an odd number of digits".into());
    }
    let digit = |c: u8| -> Result<u8, String> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("BYTES hex has a non-hex character {:?}", c as char))
    };
    hex.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Converts one JSON value to a value of column type `ty`.
pub fn json_to_value(v: &serde_json::Value, ty: ColumnType) -> Result<Value, String> {
    use serde_json::Value as J;
    let mismatch = || format!("expected {} but got {}", expected(ty), json_kind(v));
    Ok(match (ty, v) {
        (_, J::Null) => Value::Null,
        (ColumnType::Vector(dim), v) => Value::Vector(tarn_core::vector::from_json(v, dim)?),
        (ColumnType::Boolean, J::Bool(b)) => Value::Bool(*b),
        (ColumnType::BigInt, J::Number(n)) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None if n.is_u64() => return Err(format!("integer {n} is out of the BIGINT range")),
            None => return Err(mismatch()),
        },
        (ColumnType::Double, J::Number(n)) => match n.as_f64() {
            Some(f) => Value::Double(f),
            None => return Err(mismatch()),
        },
        (ColumnType::Text, J::String(s)) => Value::Text(s.clone()),
        (ColumnType::Bytes, J::String(s)) => Value::Bytes(parse_bytes(s)?),
        (ColumnType::Timestamp, J::Number(n)) => match n.as_i64() {
            Some(i) => Value::Timestamp(i),
            None => return Err(format!("{} (got {n})", expected(ty))),
        },
        (ColumnType::Timestamp, J::String(s)) => Value::Timestamp(parse_timestamp(s)?),
        _ => return Err(mismatch()),
    })
}

fn expected(ty: ColumnType) -> String {
    if let ColumnType::Vector(d) = ty {
        return format!("VECTOR({d}) (an array of {d} numbers)");
    }
    match ty {
        ColumnType::Boolean => "BOOLEAN (true or false)",
        ColumnType::BigInt => "BIGINT (an integer)",
        ColumnType::Double => "DOUBLE (a number)",
        ColumnType::Text => "TEXT (a string)",
        ColumnType::Bytes => "BYTES (a string \\x<hex>)",
        ColumnType::Timestamp => {
            "TIMESTAMP (integer microseconds since the epoch or an RFC 3339 string)"
        }
        ColumnType::Vector(_) => unreachable!("handled above"),
    }
    .to_string()
}

/// Parses a key given on the command line as a value of column type `ty`.
pub fn parse_text_value(s: &str, ty: ColumnType) -> Result<Value, String> {
    let what = || format!("invalid {} {s:?}", ty.sql_name());
    Ok(match ty {
        ColumnType::Boolean => match s.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{}: expected true or false", what())),
        },
        ColumnType::BigInt => Value::Int(
            s.parse()
                .map_err(|_| format!("{}: expected an integer", what()))?,
        ),
        ColumnType::Double => Value::Double(
            s.parse()
                .map_err(|_| format!("{}: expected a number", what()))?,
        ),
        ColumnType::Text => Value::Text(s.to_string()),
        ColumnType::Bytes => Value::Bytes(parse_bytes(s).map_err(|e| format!("{}: {e}", what()))?),
        ColumnType::Timestamp => Value::Timestamp(match s.parse::<i64>() {
            Ok(us) => us,
            Err(_) => parse_timestamp(s)?,
        }),
        ColumnType::Vector(dim) => Value::Vector(
            tarn_core::vector::parse_text(s, dim).map_err(|e| format!("{}: {e}", what()))?,
        ),
    })
}

/// The table spelling of a value: NULL, true, 12, 1.5, text, \x00ff, RFC 3339.
/// Control characters in text are escaped (`\n`, `\t`, `\u{1b}`) so a row stays on one line.
pub fn format_value(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(f) => format_double(*f),
        Value::Text(s) => {
            if s.chars().any(char::is_control) {
                s.chars()
                    .map(|c| {
                        if c.is_control() {
                            c.escape_default().to_string()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect()
            } else {
                s.clone()
            }
        }
        Value::Bytes(b) => format_bytes(b),
        Value::Timestamp(t) => format_timestamp(*t),
        Value::Vector(v) => format_vector_cell(v),
    }
}

/// Components a table cell shows of a vector: longer vectors are cut to their first
/// `TABLE_VECTOR_COMPONENTS - 1` components, `…` and the dimension, e.g.
/// `[0.1,0.2,0.3,0.4,0.5,0.6,0.7,…] (768 dims)`, so a row stays readable; `--json` output and
/// `tarn get` JSON print every component.
pub const TABLE_VECTOR_COMPONENTS: usize = 8;

/// The table spelling of a vector: every component up to [`TABLE_VECTOR_COMPONENTS`], else
/// abbreviated (see there).
pub fn format_vector_cell(v: &[f32]) -> String {
    if v.len() <= TABLE_VECTOR_COMPONENTS {
        return tarn_core::vector::to_text(v);
    }
    let mut out = String::from("[");
    for &x in &v[..TABLE_VECTOR_COMPONENTS - 1] {
        tarn_core::vector::write_component(&mut out, x);
        out.push(',');
    }
    out.push_str(&format!("…] ({} dims)", v.len()));
    out
}

/// Shortest round-trip spelling, always with a decimal point or exponent (`1.0`, `1.5`,
/// `1e300`), `NaN`, `Infinity`, `-Infinity`.
pub fn format_double(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{f:?}")
    }
}

/// The JSON spelling of a value: null, booleans, numbers, strings; BYTES as a `\x` hex
/// string; TIMESTAMP as integer microseconds; non-finite doubles as the strings "NaN",
/// "Infinity", "-Infinity".
pub fn value_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Double(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None => J::String(format_double(*f)),
        },
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(format_bytes(b)),
        Value::Timestamp(t) => J::from(*t),
        Value::Vector(v) => tarn_core::vector::to_json(v),
    }
}

/// Whether a value is right-aligned in a table.
pub fn is_numeric(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::Double(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.5Z"), Ok(1_500_000));
        assert_eq!(parse_timestamp("1970-01-01t00:00:00.000001z"), Ok(1));
        assert_eq!(
            parse_timestamp("2024-05-01T12:00:00Z"),
            Ok(1_714_564_800_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-05-01 14:00:00+02:00"),
            Ok(1_714_564_800_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-05-01T06:30:00-05:30"),
            Ok(1_714_564_800_000_000)
        );
        // Digits past microseconds must be 0: never silently truncated.
        assert_eq!(
            parse_timestamp("2024-05-01T12:00:00.123456000Z"),
            Ok(1_714_564_800_123_456)
        );
        assert!(parse_timestamp("2024-05-01T12:00:00.123456789Z")
            .unwrap_err()
            .contains("sub-microsecond precision is not supported"));
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.999999Z"), Ok(-1));
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:00Z"),
            Ok(951_782_400_000_000)
        );
        assert_eq!(
            parse_timestamp("0001-01-01T00:00:00Z"),
            Ok(-62_135_596_800_000_000)
        );
    }

    #[test]
    fn bad_timestamps_are_rejected() {
        for s in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:60Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00.1234567890Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+02:00x",
            "2024/05/01T12:00:00Z",
            "2024-05-01T12:00:00 Z",
            "2024-05-01T1a:00:00Z",
        ] {
            assert!(parse_timestamp(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn timestamps_format_and_round_trip() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            format_timestamp(1_714_564_800_250_000),
            "2024-05-01T12:00:00.250000Z"
        );
        for us in [
            0,
            1,
            -1,
            951_782_400_000_000,
            1_714_564_800_123_456,
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
        ] {
            assert_eq!(parse_timestamp(&format_timestamp(us)), Ok(us), "{us}");
        }
        // Extreme values still format without panicking.
        assert!(format_timestamp(i64::MAX).starts_with("+294247-"));
        assert!(format_timestamp(i64::MIN).starts_with("-290308-"));
    }

    #[test]
    fn bytes_hex() {
        assert_eq!(parse_bytes("\\x00fFa1"), Ok(vec![0, 255, 161]));
        assert_eq!(parse_bytes("\\x"), Ok(vec![]));
        assert!(parse_bytes("00ff").is_err());
        assert!(parse_bytes("\\x0").is_err());
        assert!(parse_bytes("\\xzz").is_err());
        assert_eq!(format_bytes(&[0, 255, 161]), "\\x00ffa1");
    }

    #[test]
    fn json_converts_per_column_type() {
        use ColumnType::*;
        let ok = |v: serde_json::Value, ty| json_to_value(&v, ty).unwrap();
        assert_eq!(ok(json!(true), Boolean), Value::Bool(true));
        assert_eq!(ok(json!(-12), BigInt), Value::Int(-12));
        assert_eq!(ok(json!(i64::MAX), BigInt), Value::Int(i64::MAX));
        assert_eq!(ok(json!(2), Double), Value::Double(2.0));
        assert_eq!(ok(json!(1.5), Double), Value::Double(1.5));
        assert_eq!(ok(json!("héllo"), Text), Value::Text("héllo".into()));
        assert_eq!(ok(json!("\\xdead"), Bytes), Value::Bytes(vec![0xde, 0xad]));
        assert_eq!(ok(json!(1_000_000), Timestamp), Value::Timestamp(1_000_000));
        assert_eq!(
            ok(json!("1970-01-01T00:00:01Z"), Timestamp),
            Value::Timestamp(1_000_000)
        );
        for ty in [Boolean, BigInt, Double, Text, Bytes, Timestamp] {
            assert_eq!(ok(json!(null), ty), Value::Null);
        }
    }

    #[test]
    fn json_type_errors_are_clear() {
        use ColumnType::*;
        let err = |v: serde_json::Value, ty| json_to_value(&v, ty).unwrap_err();
        assert_eq!(
            err(json!(1.5), BigInt),
            "expected BIGINT (an integer) but got a number"
        );
        assert_eq!(
            err(json!(u64::MAX), BigInt),
            "integer 18446744073709551615 is out of the BIGINT range"
        );
        assert_eq!(
            err(json!("1"), BigInt),
            "expected BIGINT (an integer) but got a string"
        );
        assert_eq!(
            err(json!(1), Boolean),
            "expected BOOLEAN (true or false) but got an integer"
        );
        assert_eq!(
            err(json!(1), Text),
            "expected TEXT (a string) but got an integer"
        );
        assert!(err(json!([1]), Double).contains("got an array"));
        assert!(err(json!({}), Text).contains("got an object"));
        assert!(err(json!("dead"), Bytes).contains("\\x"));
        assert!(err(json!(1.5), Timestamp).contains("TIMESTAMP"));
        assert!(err(json!("yesterday"), Timestamp).contains("RFC 3339"));
    }

    #[test]
    fn text_keys_parse_per_type() {
        use ColumnType::*;
        assert_eq!(parse_text_value("42", BigInt), Ok(Value::Int(42)));
        assert!(parse_text_value("4x", BigInt).is_err());
        assert_eq!(
            parse_text_value("card-1", Text),
            Ok(Value::Text("card-1".into()))
        );
        assert_eq!(parse_text_value("TRUE", Boolean), Ok(Value::Bool(true)));
        assert_eq!(parse_text_value("\\x01", Bytes), Ok(Value::Bytes(vec![1])));
        assert_eq!(parse_text_value("7", Timestamp), Ok(Value::Timestamp(7)));
        assert_eq!(
            parse_text_value("1970-01-01T00:00:00.000007Z", Timestamp),
            Ok(Value::Timestamp(7))
        );
    }

    #[test]
    fn values_format_for_tables_and_json() {
        assert_eq!(format_value(&Value::Null), "NULL");
        assert_eq!(format_value(&Value::Bool(false)), "false");
        assert_eq!(format_value(&Value::Int(-3)), "-3");
        assert_eq!(format_value(&Value::Double(1.0)), "1.0");
        assert_eq!(format_value(&Value::Double(1.5)), "1.5");
        assert_eq!(format_value(&Value::Double(f64::NAN)), "NaN");
        assert_eq!(format_value(&Value::Double(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(format_value(&Value::Text("a\nb\tc".into())), "a\\nb\\tc");
        assert_eq!(format_value(&Value::Bytes(vec![1, 2])), "\\x0102");
        assert_eq!(format_value(&Value::Timestamp(0)), "1970-01-01T00:00:00Z");

        assert_eq!(value_to_json(&Value::Null), json!(null));
        assert_eq!(value_to_json(&Value::Double(1.5)), json!(1.5));
        assert_eq!(
            value_to_json(&Value::Double(f64::INFINITY)),
            json!("Infinity")
        );
        assert_eq!(value_to_json(&Value::Bytes(vec![255])), json!("\\xff"));
        assert_eq!(value_to_json(&Value::Timestamp(5)), json!(5));
        // JSON output converts back to the same values.
        for (v, ty) in [
            (Value::Bytes(vec![0, 9]), ColumnType::Bytes),
            (Value::Timestamp(-5), ColumnType::Timestamp),
            (Value::Int(i64::MIN), ColumnType::BigInt),
            (Value::Double(0.1), ColumnType::Double),
            (
                Value::Vector(vec![0.1, -2.5, 1e-30].into()),
                ColumnType::Vector(3),
            ),
        ] {
            assert_eq!(json_to_value(&value_to_json(&v), ty), Ok(v));
        }
    }

    #[test]
    fn vectors_print_whole_in_json_and_abbreviated_in_tables() {
        let v = Value::Vector(vec![1.0, 2.5, -3.0].into());
        assert_eq!(format_value(&v), "[1,2.5,-3]");
        assert_eq!(value_to_json(&v), json!([1.0, 2.5, -3.0]));
        let long: Vec<f32> = (0..768).map(|i| i as f32 / 10.0).collect();
        assert_eq!(
            format_value(&Value::Vector(long.clone().into())),
            "[0,0.1,0.2,0.3,0.4,0.5,0.6,…] (768 dims)"
        );
        let json = value_to_json(&Value::Vector(long.into()));
        assert_eq!(json.as_array().unwrap().len(), 768);
        let e = json_to_value(&json!([1, 2]), ColumnType::Vector(3)).unwrap_err();
        assert!(e.contains("vector has 2 dimensions, expected 3"), "{e}");
        let e = json_to_value(&json!("x"), ColumnType::Vector(3)).unwrap_err();
        assert!(e.contains("JSON array of numbers"), "{e}");
    }
}
