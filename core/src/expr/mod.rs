//! Scalar expressions: the condition language of feature views (`WHERE`, `FILTER (WHERE …)`),
//! and of kNN filters and context parameters later. An [`Expr<C>`] names its columns with `C`:
//! `Expr<String>` as parsed (column names), `Expr<usize>` once checked against a column list
//! (indexes into a row). Pure code: no I/O, no clocks, no SQL parser.
//!
//! - [`check`]: resolves names against a [`check::Scope`] (an owner name and its columns) and
//!   type-checks, turning `Expr<String>` into `Expr<usize>`.
//! - [`eval`]: evaluates an `Expr<usize>` on a row, with SQL three-valued logic.
//! - [`print`]: the SQL text of an expression, which the SQL front end reads back as the same
//!   tree.
//!
//! # The language
//!
//! - Column references: bare column names of the scope (`UNKNOWN_COLUMN` names the owner and
//!   the column).
//! - Literals: integers → BIGINT (out of the i64 range: `UNSUPPORTED`); numbers with a `.` or an
//!   exponent → DOUBLE (must be finite); `'text'` (and `E'…'`) → TEXT; `X'0a1b'` → BYTES; `TRUE`,
//!   `FALSE`; `NULL`; `TIMESTAMP '2026-11-26T00:00:00Z'` → TIMESTAMP (the one timestamp rule of
//!   [`crate::timestamp`]). A leading `-` or `+` is allowed on a numeric literal only (not on a
//!   column).
//! - Operators: `=`, `<>` (`!=`), `<`, `<=`, `>`, `>=`; `+ - * /`; `AND`, `OR`, `NOT`;
//!   `IS [NOT] NULL`; `[NOT] IN (expr, …)`; `[NOT] BETWEEN low AND high`; parentheses. Anything
//!   else (functions, CASE, LIKE, casts, subqueries, `%`, `||`, `IS TRUE`, …) is `UNSUPPORTED`.
//! - Types are checked before use. The operands of a comparison, of `IN` (the left side and
//!   every list item) and of `BETWEEN` must be comparable: BIGINT and DOUBLE with each other
//!   (compared numerically, exactly); TIMESTAMP with TIMESTAMP or with an integer literal (µs
//!   since the epoch); TEXT, BOOLEAN, BYTES each with their own type; `NULL` with anything.
//!   Otherwise `TYPE_MISMATCH` (column named, `expected` = that column's type) or, when two
//!   columns or two literals disagree, `UNSUPPORTED` naming both. `+ - * /` take BIGINT or
//!   DOUBLE (`UNSUPPORTED` otherwise): BIGINT op BIGINT is BIGINT, any DOUBLE makes it DOUBLE.
//!   `AND`/`OR`/`NOT` operands and the whole condition must be BOOLEAN (or `NULL`): a column of
//!   another type is `TYPE_MISMATCH` (expected BOOLEAN), any other expression `UNSUPPORTED`.
//! - At most [`MAX_EXPR_NODES`] (256) nodes per condition (each column, literal and operator
//!   counts; parentheses do not) → `LIMIT_EXCEEDED`.
//!
//! Evaluation follows SQL three-valued logic: a comparison or arithmetic with a NULL operand is
//! NULL (unknown); `AND` is FALSE if either side is FALSE, `OR` is TRUE if either side is TRUE,
//! otherwise NULL if either side is NULL; `NOT NULL` is NULL. `x IN (…)` is TRUE if an item
//! equals `x`, else NULL if `x` or any item is NULL, else FALSE (`NOT IN` negates that).
//! `x BETWEEN a AND b` is `x >= a AND x <= b`. A row passes a condition only when it is TRUE.
//! BIGINT arithmetic is checked: overflow and division by zero give NULL (division truncates
//! toward zero); DOUBLE arithmetic (BIGINT operands converted to the nearest double) gives NULL
//! when the result is not finite (division by zero, overflow). TEXT compares by bytes (code
//! points), BYTES bytewise, FALSE < TRUE.

use serde::{Deserialize, Serialize};
use tarn_types::Value;

pub mod check;
mod eval;
pub mod print;

/// Most nodes (columns, literals, operators; parentheses do not count) in one condition.
/// Conditions are evaluated recursively on every event; the bound caps that work and the
/// recursion depth.
pub const MAX_EXPR_NODES: usize = 256;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// An expression whose column references are `C`: a name (`String`) as parsed, an index into
/// the row (`usize`, the default) once checked. Stored (as `Expr<usize>`) in the catalog JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr<C = usize> {
    /// A column reference.
    Column(C),
    /// A constant.
    Literal(Value),
    /// `a <op> b`.
    Cmp(CmpOp, Box<Expr<C>>, Box<Expr<C>>),
    /// `a + b` etc.
    Arith(ArithOp, Box<Expr<C>>, Box<Expr<C>>),
    /// `a AND b`.
    And(Box<Expr<C>>, Box<Expr<C>>),
    /// `a OR b`.
    Or(Box<Expr<C>>, Box<Expr<C>>),
    /// `NOT a`.
    Not(Box<Expr<C>>),
    /// `expr IS [NOT] NULL`.
    IsNull {
        /// The tested expression.
        expr: Box<Expr<C>>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `expr [NOT] IN (list)`.
    InList {
        /// The tested expression.
        expr: Box<Expr<C>>,
        /// The candidates.
        list: Vec<Expr<C>>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `expr [NOT] BETWEEN low AND high`.
    Between {
        /// The tested expression.
        expr: Box<Expr<C>>,
        /// Lower bound (inclusive).
        low: Box<Expr<C>>,
        /// Upper bound (inclusive).
        high: Box<Expr<C>>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
}

// `Eq` although `Expr` holds `Value`s: a DOUBLE literal is always finite (the parser rejects
// others and JSON cannot encode them), so `==` is reflexive on every reachable tree. Lets the
// catalog (which stores expressions in view definitions) be `Eq`.
impl<C: Eq> Eq for Expr<C> {}

impl<C> Expr<C> {
    /// Number of nodes (what [`MAX_EXPR_NODES`] bounds).
    pub fn node_count(&self) -> usize {
        let mut n = 0;
        self.walk(&mut |_| n += 1);
        n
    }

    /// Calls `f` on every node, parents before children, left to right.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr<C>)) {
        f(self);
        match self {
            Expr::Column(_) | Expr::Literal(_) => {}
            Expr::Cmp(_, a, b) | Expr::Arith(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Not(a) | Expr::IsNull { expr: a, .. } => a.walk(f),
            Expr::InList { expr, list, .. } => {
                expr.walk(f);
                for e in list {
                    e.walk(f);
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                expr.walk(f);
                low.walk(f);
                high.walk(f);
            }
        }
    }

    /// Every column reference, in walk order (repeats included).
    pub fn columns(&self) -> Vec<&C> {
        let mut out = Vec::new();
        self.walk(&mut |n| {
            if let Expr::Column(c) = n {
                out.push(c);
            }
        });
        out
    }

    /// The same tree with every `Column(c)` replaced by `Column(f(c))`.
    pub fn map_columns<D>(&self, f: &mut dyn FnMut(&C) -> D) -> Expr<D> {
        self.try_map_columns::<D, std::convert::Infallible>(&mut |c| Ok(f(c)))
            .unwrap_or_else(|e| match e {})
    }

    /// The same tree with every `Column(c)` replaced by `Column(f(c)?)`; the first error stops.
    pub fn try_map_columns<D, E>(
        &self,
        f: &mut dyn FnMut(&C) -> Result<D, E>,
    ) -> Result<Expr<D>, E> {
        fn sub<C, D, E>(
            e: &Expr<C>,
            f: &mut dyn FnMut(&C) -> Result<D, E>,
        ) -> Result<Box<Expr<D>>, E> {
            e.try_map_columns(f).map(Box::new)
        }
        Ok(match self {
            Expr::Column(c) => Expr::Column(f(c)?),
            Expr::Literal(v) => Expr::Literal(v.clone()),
            Expr::Cmp(op, l, r) => Expr::Cmp(*op, sub(l, f)?, sub(r, f)?),
            Expr::Arith(op, l, r) => Expr::Arith(*op, sub(l, f)?, sub(r, f)?),
            Expr::And(l, r) => Expr::And(sub(l, f)?, sub(r, f)?),
            Expr::Or(l, r) => Expr::Or(sub(l, f)?, sub(r, f)?),
            Expr::Not(e) => Expr::Not(sub(e, f)?),
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: sub(expr, f)?,
                negated: *negated,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: sub(expr, f)?,
                list: list
                    .iter()
                    .map(|e| e.try_map_columns(f))
                    .collect::<Result<_, _>>()?,
                negated: *negated,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between {
                expr: sub(expr, f)?,
                low: sub(low, f)?,
                high: sub(high, f)?,
                negated: *negated,
            },
        })
    }
}
