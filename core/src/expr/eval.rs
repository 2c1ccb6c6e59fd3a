//! Evaluation of a checked expression on one row (SQL three-valued logic; see the module
//! documentation of [`crate::expr`]).

use std::borrow::Cow;
use std::cmp::Ordering;

use tarn_types::Value;

use super::{ArithOp, CmpOp, Expr};

static NULL: Value = Value::Null;

impl Expr<usize> {
    /// Evaluates the expression on one row with SQL three-valued logic: `Value::Null` is
    /// NULL/UNKNOWN, conditions give `Value::Bool`. Total: never panics, whatever the row (a
    /// column index past its end reads as NULL; values of unexpected types make the
    /// comparison or arithmetic NULL).
    pub fn eval(&self, row: &[Value]) -> Value {
        self.value(row).into_owned()
    }

    /// True only when the expression is TRUE on `row` (the meaning of `WHERE` and `FILTER`:
    /// FALSE and NULL both reject the row).
    pub fn matches(&self, row: &[Value]) -> bool {
        self.truth(row) == Some(true)
    }

    /// The value, borrowed from the row or the tree when possible.
    fn value<'a>(&'a self, row: &'a [Value]) -> Cow<'a, Value> {
        match self {
            Expr::Column(i) => Cow::Borrowed(row.get(*i).unwrap_or(&NULL)),
            Expr::Literal(v) => Cow::Borrowed(v),
            Expr::Arith(op, a, b) => Cow::Owned(arith(*op, &a.value(row), &b.value(row))),
            _ => Cow::Owned(self.truth(row).map_or(Value::Null, Value::Bool)),
        }
    }

    /// The expression as a condition: `Some(bool)` or `None` for UNKNOWN (NULL or not a
    /// BOOLEAN).
    fn truth(&self, row: &[Value]) -> Option<bool> {
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::Arith(..) => match &*self.value(row) {
                Value::Bool(b) => Some(*b),
                _ => None,
            },
            Expr::Cmp(op, a, b) => compare(&a.value(row), &b.value(row)).map(|o| op.test(o)),
            Expr::And(a, b) => match a.truth(row) {
                Some(false) => Some(false),
                l => match (l, b.truth(row)) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
            },
            Expr::Or(a, b) => match a.truth(row) {
                Some(true) => Some(true),
                l => match (l, b.truth(row)) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
            },
            Expr::Not(a) => a.truth(row).map(|b| !b),
            Expr::IsNull { expr, negated } => Some(expr.value(row).is_null() != *negated),
            Expr::InList {
                expr,
                list,
                negated,
            } => in_list(&expr.value(row), list, row).map(|found| found != *negated),
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => between(&expr.value(row), low, high, row).map(|b| b != *negated),
        }
    }
}

/// `v IN (list)`: TRUE if an item equals `v`, else UNKNOWN if `v` or an item is NULL (or not
/// comparable), else FALSE.
fn in_list(v: &Value, list: &[Expr<usize>], row: &[Value]) -> Option<bool> {
    if v.is_null() {
        return None;
    }
    let mut unknown = false;
    for item in list {
        match compare(v, &item.value(row)) {
            Some(Ordering::Equal) => return Some(true),
            Some(_) => {}
            None => unknown = true,
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

/// `v BETWEEN low AND high` = `v >= low AND v <= high`.
fn between(v: &Value, low: &Expr<usize>, high: &Expr<usize>, row: &[Value]) -> Option<bool> {
    let ge = compare(v, &low.value(row)).map(|o| o != Ordering::Less);
    if ge == Some(false) {
        return Some(false);
    }
    let le = compare(v, &high.value(row)).map(|o| o != Ordering::Greater);
    match (ge, le) {
        (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

impl CmpOp {
    fn test(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::NotEq => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::LtEq => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::GtEq => o != Ordering::Less,
        }
    }
}

/// SQL comparison of two values; `None` when either is NULL or they are not comparable.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    match (a, b) {
        (Int(x) | Timestamp(x), Int(y) | Timestamp(y)) => Some(x.cmp(y)),
        (Double(x), Double(y)) => x.partial_cmp(y),
        (Int(x), Double(y)) => cmp_i64_f64(*x, *y),
        (Double(x), Int(y)) => cmp_i64_f64(*y, *x).map(Ordering::reverse),
        (Text(x), Text(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Bytes(x), Bytes(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Exact comparison of an integer with a double (no rounding of the integer); `None` for NaN.
fn cmp_i64_f64(i: i64, f: f64) -> Option<Ordering> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    // -2^63 <= f < 2^63: its integer part fits in an i64 exactly.
    let t = f.trunc();
    Some(match i.cmp(&(t as i64)) {
        Ordering::Equal if f > t => Ordering::Less,
        Ordering::Equal if f < t => Ordering::Greater,
        o => o,
    })
}

fn arith(op: ArithOp, a: &Value, b: &Value) -> Value {
    use Value::*;
    let float = |x: f64, y: f64| {
        let r = match op {
            ArithOp::Add => x + y,
            ArithOp::Sub => x - y,
            ArithOp::Mul => x * y,
            ArithOp::Div => x / y,
        };
        if r.is_finite() {
            Double(r)
        } else {
            Null
        }
    };
    match (a, b) {
        (Int(x), Int(y)) => match op {
            ArithOp::Add => x.checked_add(*y),
            ArithOp::Sub => x.checked_sub(*y),
            ArithOp::Mul => x.checked_mul(*y),
            ArithOp::Div => x.checked_div(*y),
        }
        .map_or(Null, Int),
        (Int(x), Double(y)) => float(*x as f64, *y),
        (Double(x), Int(y)) => float(*x, *y as f64),
        (Double(x), Double(y)) => float(*x, *y),
        _ => Null,
    }
}
