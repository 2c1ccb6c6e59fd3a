//! Literals (`5`, `-2.5`, `'x'`, `X'0a'`, `TRUE`, `NULL`, `TIMESTAMP '…'`) as values: in
//! conditions and as the keys of feature-view reads.

use sqlparser::ast;
use tarn_types::Value;

use super::unsupported;
use crate::{excerpt, CoreError};

/// A literal expression (`5`, `-2.5`, `'x'`, `X'0a'`, `TRUE`, `NULL`, `TIMESTAMP '…'`), or
/// `None` if `e` is not one.
pub(crate) fn literal(e: &ast::Expr) -> Option<Result<Value, CoreError>> {
    match e {
        ast::Expr::Value(v) => Some(value_literal(&v.value, false)),
        ast::Expr::UnaryOp { op, expr } => match (op, &**expr) {
            (ast::UnaryOperator::Minus | ast::UnaryOperator::Plus, ast::Expr::Value(v))
                if matches!(v.value, ast::Value::Number(..)) =>
            {
                Some(value_literal(
                    &v.value,
                    matches!(op, ast::UnaryOperator::Minus),
                ))
            }
            _ => None,
        },
        ast::Expr::TypedString(ts) => Some(typed_literal(ts)),
        _ => None,
    }
}

fn value_literal(v: &ast::Value, negative: bool) -> Result<Value, CoreError> {
    Ok(match v {
        ast::Value::Number(s, false) => {
            let text = if negative {
                format!("-{s}")
            } else {
                s.clone()
            };
            if s.bytes().all(|b| b.is_ascii_digit()) {
                Value::Int(text.parse().map_err(|_| {
                    unsupported(format!(
                        "integer literal {} is outside the BIGINT range",
                        excerpt(&text, 40)
                    ))
                })?)
            } else {
                match text.parse::<f64>() {
                    Ok(d) if d.is_finite() => Value::Double(d),
                    _ => {
                        return Err(unsupported(format!(
                            "numeric literal {} (integers are BIGINT; numbers with a '.' or an exponent are finite DOUBLEs)",
                            excerpt(&text, 40)
                        )))
                    }
                }
            }
        }
        ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
            Value::Text(s.clone())
        }
        ast::Value::HexStringLiteral(h) => {
            let bad = || {
                unsupported(format!(
                    "BYTES literal X'{}' (an even number of hex digits)",
                    excerpt(h, 40)
                ))
            };
            if h.len() % 2 != 0 {
                return Err(bad());
            }
            let mut out = Vec::with_capacity(h.len() / 2);
            for pair in h.as_bytes().chunks(2) {
                let s = std::str::from_utf8(pair).map_err(|_| bad())?;
                out.push(u8::from_str_radix(s, 16).map_err(|_| bad())?);
            }
            Value::Bytes(out)
        }
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        other => {
            return Err(unsupported(format!(
                "literal `{}` (supported: integers, decimals, 'text', X'hex', TRUE, FALSE, NULL, TIMESTAMP '…')",
                excerpt(&other.to_string(), 60)
            )))
        }
    })
}

fn typed_literal(ts: &ast::TypedString) -> Result<Value, CoreError> {
    let is_ts = matches!(
        ts.data_type,
        ast::DataType::Timestamp(None, ast::TimezoneInfo::None)
            | ast::DataType::Timestamp(None, ast::TimezoneInfo::WithoutTimeZone)
    );
    match (&ts.value.value, is_ts) {
        (ast::Value::SingleQuotedString(s), true) if !ts.uses_odbc_syntax => {
            crate::timestamp::parse_rfc3339_us(s)
                .map(Value::Timestamp)
                .map_err(|why| {
                    unsupported(format!(
                        "TIMESTAMP literal '{}': {why} (write RFC 3339, e.g. '2026-11-26T00:00:00Z')",
                        excerpt(s, 40)
                    ))
                })
        }
        _ => Err(unsupported(format!(
            "typed literal `{}` (only TIMESTAMP '<RFC 3339>')",
            excerpt(&ts.to_string(), 60)
        ))),
    }
}
