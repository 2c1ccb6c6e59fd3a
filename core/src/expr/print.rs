//! SQL text of expressions (view definitions' `create_sql`, error messages). Parentheses only
//! where sqlparser's PostgreSQL precedences need them, so re-parsing gives the same tree and
//! left-deep AND/OR chains do not nest parentheses (sqlparser limits nesting depth).

use tarn_types::Value;

use super::{ArithOp, CmpOp, Expr};

impl CmpOp {
    /// The operator's SQL spelling.
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

impl ArithOp {
    /// The operator's SQL spelling.
    pub fn sql(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// `e` as SQL, with column `c` written as `name(c)` (already quoted as needed).
pub fn to_sql<C>(e: &Expr<C>, name: &dyn Fn(&C) -> String) -> String {
    let mut out = String::new();
    write_expr(&mut out, e, name, 0);
    out
}

fn prec<C>(e: &Expr<C>) -> u8 {
    match e {
        Expr::Column(_) | Expr::Literal(_) => 200,
        Expr::Arith(ArithOp::Mul | ArithOp::Div, ..) => 90,
        Expr::Arith(ArithOp::Add | ArithOp::Sub, ..) => 80,
        Expr::InList { .. } | Expr::Between { .. } => 60,
        Expr::Cmp(..) => 50,
        Expr::IsNull { .. } => 40,
        Expr::Not(_) => 30,
        Expr::And(..) => 20,
        Expr::Or(..) => 10,
    }
}

/// Writes `e`, parenthesized when its precedence is below `min`.
fn write_expr<C>(out: &mut String, e: &Expr<C>, name: &dyn Fn(&C) -> String, min: u8) {
    let p = prec(e);
    let paren = p < min;
    if paren {
        out.push('(');
    }
    let binary = |out: &mut String, a: &Expr<C>, op: &str, b: &Expr<C>, left_min: u8| {
        write_expr(out, a, name, left_min);
        out.push(' ');
        out.push_str(op);
        out.push(' ');
        write_expr(out, b, name, p + 1);
    };
    match e {
        Expr::Column(c) => out.push_str(&name(c)),
        Expr::Literal(v) => write_literal(out, v),
        // Left-associative: a left operand of the same precedence needs no parentheses.
        Expr::Arith(op, a, b) => binary(out, a, op.sql(), b, p),
        Expr::And(a, b) => binary(out, a, "AND", b, p),
        Expr::Or(a, b) => binary(out, a, "OR", b, p),
        Expr::Cmp(op, a, b) => binary(out, a, op.sql(), b, p + 1),
        Expr::Not(a) => {
            out.push_str("NOT ");
            write_expr(out, a, name, p);
        }
        Expr::IsNull { expr, negated } => {
            write_expr(out, expr, name, p + 1);
            out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            write_expr(out, expr, name, p + 1);
            out.push_str(if *negated { " NOT IN (" } else { " IN (" });
            for (i, item) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, item, name, 0);
            }
            out.push(')');
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            write_expr(out, expr, name, p + 1);
            out.push_str(if *negated {
                " NOT BETWEEN "
            } else {
                " BETWEEN "
            });
            write_expr(out, low, name, p + 1);
            out.push_str(" AND ");
            write_expr(out, high, name, p + 1);
        }
    }
    if paren {
        out.push(')');
    }
}

/// A literal as SQL that the SQL front end reads back as the same value.
fn write_literal(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Null => out.push_str("NULL"),
        Value::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // `{:?}` is the shortest text that parses back to the same f64 and always has a `.` or
        // an exponent, so it reads back as a DOUBLE. Non-finite values cannot be written as
        // literals (never produced by the parser).
        Value::Double(d) if d.is_finite() => {
            let _ = write!(out, "{d:?}");
        }
        Value::Double(_) => out.push_str("NULL"),
        // Expressions never hold vectors (they cannot be compared); printed as the ARRAY
        // literal the SQL front end reads back.
        Value::Vector(v) => {
            out.push_str("ARRAY");
            out.push_str(&crate::vector::to_text(v));
        }
        Value::Text(s) => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Value::Bytes(b) => {
            out.push_str("X'");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('\'');
        }
        Value::Timestamp(us) => {
            let text = crate::timestamp::format_rfc3339_us(*us);
            if crate::timestamp::parse_rfc3339_us(&text) == Ok(*us) {
                let _ = write!(out, "TIMESTAMP '{text}'");
            } else {
                // Beyond year 9999: the µs count, which resolves back to a TIMESTAMP where it
                // is compared with one.
                let _ = write!(out, "{us}");
            }
        }
    }
}
