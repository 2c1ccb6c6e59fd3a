//! Feature views ("materialized views" computed continuously over a stream): the SQL front end
//! and the expression evaluator of their `WHERE` and `FILTER` conditions. Pure code: no I/O, no
//! clocks.
//!
//! # CREATE MATERIALIZED VIEW
//!
//! ```sql
//! CREATE MATERIALIZED VIEW [IF NOT EXISTS] card_10m
//!   WITH (window = '10 minutes', bucket = '10 seconds')      -- or WITH (window = 'lifetime')
//! AS SELECT card_id,
//!           count(*) AS txns, sum(amount) AS spend,
//!           max(amount) FILTER (WHERE merchant <> 'x') AS max_amt,
//!           count(DISTINCT account_id) AS accounts, last(ip) AS last_ip,
//!           avg(amount), stddev(amount)
//!    FROM transactions
//!    [WHERE amount > 0 AND ip IS NOT NULL]
//!    GROUP BY card_id;
//! ```
//!
//! A view keeps, per value of its GROUP BY column (its *key*), the aggregates of the events of one
//! stream that pass its `WHERE`, over a sliding window of time buckets or over the stream's whole
//! lifetime.
//!
//! **Options** (values are quoted strings; keys are case-insensitive; each at most once):
//!
//! | option | meaning |
//! |---|---|
//! | `window` | required: a duration (`'10 minutes'`, same syntax as stream durations) for a sliding window, or `'lifetime'` (any case) for one that never expires |
//! | `bucket` | required for a sliding window, forbidden with `'lifetime'`: the bucket width; the window must be a whole multiple of it (window ≥ bucket) and hold at most [`MAX_WINDOW_BUCKETS`] (4,096) buckets |
//!
//! Any other option, a missing `window`, a non-string value → `UNSUPPORTED`; too many buckets
//! → `LIMIT_EXCEEDED`.
//!
//! **The query** is exactly `SELECT <items> FROM <stream> [WHERE <condition>] GROUP BY <column>`:
//! - `FROM` names one stream (no alias, join, subquery or several FROM items).
//! - `GROUP BY` names exactly one column of the stream, of a type that can be a key (BOOLEAN,
//!   BIGINT, TEXT, BYTES, TIMESTAMP; not DOUBLE).
//! - The select list holds that column exactly once, as a bare column name, optionally with
//!   `AS alias` (the alias names the key column of the view); it is always the view's first
//!   output column, wherever it is listed. Every other item is an aggregate call with an
//!   optional `FILTER (WHERE <condition>)` and an optional `AS name`; at least one and at most
//!   [`MAX_VIEW_AGGREGATES`] (64) aggregates.
//! - Aggregate arguments are bare column names of the stream (no expressions, no constants).
//!   `count(DISTINCT col)` is the only DISTINCT allowed.
//! - Rejected with `UNSUPPORTED`: `CREATE VIEW` without MATERIALIZED, `OR REPLACE`, TEMPORARY, a
//!   column list after the view name, `IF NOT EXISTS` after the name, WITH (CTE), DISTINCT on the
//!   select, `*`, ORDER BY, LIMIT/OFFSET/FETCH, HAVING, WINDOW, QUALIFY, UNION/EXCEPT/INTERSECT,
//!   several GROUP BY expressions or GROUP BY modifiers, window functions (`OVER`), `WITHIN
//!   GROUP`, clauses inside an aggregate's parentheses (ORDER BY, IGNORE NULLS, …), `ALL`,
//!   qualified names (`s.col`, `schema.view`), and every other clause the parser accepts.
//!
//! **Aggregates** and their result types (an input column of another type is `UNSUPPORTED`,
//! naming the function, the column and its type):
//!
//! | call | input | result |
//! |---|---|---|
//! | `count(*)` | — | BIGINT: events passing the filters |
//! | `count(col)`, `count(DISTINCT col)` | any | BIGINT (non-NULL values / distinct non-NULL values) |
//! | `sum(col)` | BIGINT, DOUBLE | same as input |
//! | `min(col)`, `max(col)` | BIGINT, DOUBLE, TIMESTAMP | same as input |
//! | `avg`, `variance` (= `var_samp`), `stddev` (= `stddev_samp`), `var_pop`, `stddev_pop` | BIGINT, DOUBLE | DOUBLE |
//! | `first(col)`, `last(col)` | any | same as input (value of the earliest / latest event time) |
//!
//! Function names fold to lower case like identifiers. The exact numeric semantics are those of
//! the aggregate kernels (`tarn-features`).
//!
//! **Output names.** An aggregate without `AS` is named `count` for `count(*)`,
//! `count_distinct_<col>` for `count(DISTINCT col)`, and `<function>_<col>` otherwise
//! (`sum_amount`, `count_account_id`, `avg_amount`; the function part is the canonical name, so
//! `var_samp(x)` is `variance_x` and `stddev_samp(x)` is `stddev_x`). Output names (the key's
//! included) must be unique (`DUPLICATE_COLUMN`: e.g. two unaliased `sum(amount)`), and at most
//! 64 bytes (`LIMIT_EXCEEDED`; a default name that is too long asks for an alias).
//!
//! # Conditions (`WHERE`, `FILTER (WHERE …)`)
//!
//! - Column references: bare column names of the stream (`UNKNOWN_COLUMN` names the stream and
//!   the column).
//! - Literals: integers → BIGINT (out of the i64 range: `UNSUPPORTED`); numbers with a `.` or an
//!   exponent → DOUBLE (must be finite); `'text'` (and `E'…'`) → TEXT; `X'0a1b'` → BYTES; `TRUE`,
//!   `FALSE`; `NULL`; `TIMESTAMP '2026-11-26T00:00:00Z'` → TIMESTAMP (RFC 3339, the rules of
//!   JSON ingest). A leading `-` or `+` is allowed on a numeric literal only (not on a column).
//! - Operators: `=`, `<>` (`!=`), `<`, `<=`, `>`, `>=`; `+ - * /`; `AND`, `OR`, `NOT`;
//!   `IS [NOT] NULL`; `[NOT] IN (expr, …)`; `[NOT] BETWEEN low AND high`; parentheses. Anything
//!   else (functions, CASE, LIKE, casts, subqueries, `%`, `||`, `IS TRUE`, …) is `UNSUPPORTED`.
//! - Types are checked when the view is created. The operands of a comparison, of `IN` (the
//!   left side and every list item) and of `BETWEEN` must be comparable: BIGINT and DOUBLE with
//!   each other (compared numerically, exactly); TIMESTAMP with TIMESTAMP or with an integer
//!   literal (µs since the epoch); TEXT, BOOLEAN, BYTES each with their own type; `NULL` with
//!   anything. Otherwise `TYPE_MISMATCH` (column named, `expected` = that column's type) or, when
//!   two columns or two literals disagree, `UNSUPPORTED` naming both. `+ - * /` take BIGINT or
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
//! `x BETWEEN a AND b` is `x >= a AND x <= b`. An event passes a `WHERE`/`FILTER` only when the
//! condition is TRUE. BIGINT arithmetic is checked: overflow and division by zero give NULL
//! (division truncates toward zero); DOUBLE arithmetic (BIGINT operands converted to the
//! nearest double) gives NULL when the result is not finite (division by zero, overflow). TEXT
//! compares by bytes (code points), BYTES bytewise, FALSE < TRUE.
//!
//! # DROP MATERIALIZED VIEW
//!
//! `DROP MATERIALIZED VIEW [IF EXISTS] name`: one view per statement, no CASCADE/RESTRICT.
//!
//! # Reading a view
//!
//! ```sql
//! SELECT * FROM card_10m WHERE card_id = 'c1';
//! SELECT txns, spend FROM card_10m WHERE card_id IN ('c1', 'c2');
//! ```
//!
//! Exactly `SELECT * | col, … FROM view WHERE key = literal` (or `literal = key`) or `WHERE key
//! IN (literal, …)`: no aliases, DISTINCT, joins, GROUP BY, ORDER BY, LIMIT, aggregates or other
//! predicates (`UNSUPPORTED`, saying so). Columns are bare names, each at most once
//! (`DUPLICATE_COLUMN`). Keys are literals with the rules above (an integer is a BIGINT value;
//! the server coerces it to the key's type); a `NULL` key is `NULL_KEY`.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sqlparser::ast;
use tarn_types::{ColumnType, Value};

use crate::schema::{quote_ident, ColumnDef, StreamDef};
use crate::sql::{fold_ident, fold_object_name, sql_excerpt, Statement};
use crate::{CoreError, MAX_IDENTIFIER_BYTES};

/// Most buckets a sliding window may hold (`window / bucket`). Every key of a view keeps up to
/// this many partial states per aggregate and a read combines them, so the bound caps per-key
/// memory and read cost. Raising it costs memory per key and read latency.
pub const MAX_WINDOW_BUCKETS: i64 = 4096;

/// Most aggregates one view may have. Each costs a partial state per bucket per key and work
/// per event; the bound keeps a key's state and an output row small.
pub const MAX_VIEW_AGGREGATES: usize = 64;

/// Most nodes (columns, literals, operators; parentheses do not count) in one `WHERE` or
/// `FILTER` condition. Conditions are evaluated recursively on every event; the bound caps that
/// work and the recursion depth.
pub const MAX_EXPR_NODES: usize = 256;

/// The time span a view aggregates over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WindowSpec {
    /// The last `window_us / bucket_us` buckets of `bucket_us` µs each (`window_us` is a
    /// positive multiple of `bucket_us`, at most [`MAX_WINDOW_BUCKETS`] buckets).
    Sliding {
        /// Window length, µs.
        window_us: i64,
        /// Bucket width, µs.
        bucket_us: i64,
    },
    /// Every event since the view was created; nothing expires.
    Lifetime,
}

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggFunc {
    /// `count(*)`.
    CountStar,
    /// `count(col)`.
    Count,
    /// `sum(col)`.
    Sum,
    /// `min(col)`.
    Min,
    /// `max(col)`.
    Max,
    /// `avg(col)`.
    Avg,
    /// `variance(col)` = `var_samp(col)`.
    Variance,
    /// `stddev(col)` = `stddev_samp(col)`.
    Stddev,
    /// `var_pop(col)`.
    VarPop,
    /// `stddev_pop(col)`.
    StddevPop,
    /// `count(DISTINCT col)`.
    CountDistinct,
    /// `first(col)`.
    First,
    /// `last(col)`.
    Last,
}

impl AggFunc {
    /// The function's canonical SQL name (`count` for all three counts).
    pub fn sql_name(self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
            AggFunc::Variance => "variance",
            AggFunc::Stddev => "stddev",
            AggFunc::VarPop => "var_pop",
            AggFunc::StddevPop => "stddev_pop",
            AggFunc::First => "first",
            AggFunc::Last => "last",
        }
    }

    /// The result type for an input column of type `input` (`None` = no input, `count(*)`
    /// only); `None` if the function does not accept that input.
    pub fn result_type(self, input: Option<ColumnType>) -> Option<ColumnType> {
        use ColumnType::*;
        match (self, input) {
            (AggFunc::CountStar, None) => Some(BigInt),
            (AggFunc::CountStar, Some(_)) | (_, None) => None,
            (AggFunc::Count | AggFunc::CountDistinct, Some(_)) => Some(BigInt),
            (AggFunc::Sum, Some(t @ (BigInt | Double))) => Some(t),
            (AggFunc::Min | AggFunc::Max, Some(t @ (BigInt | Double | Timestamp))) => Some(t),
            (
                AggFunc::Avg
                | AggFunc::Variance
                | AggFunc::Stddev
                | AggFunc::VarPop
                | AggFunc::StddevPop,
                Some(BigInt | Double),
            ) => Some(Double),
            (AggFunc::First | AggFunc::Last, Some(t)) => Some(t),
            _ => None,
        }
    }

    /// The function for a (lower-case) name; counts give [`AggFunc::Count`].
    fn from_name(name: &str) -> Option<AggFunc> {
        Some(match name {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "avg" => AggFunc::Avg,
            "variance" | "var_samp" => AggFunc::Variance,
            "stddev" | "stddev_samp" => AggFunc::Stddev,
            "var_pop" => AggFunc::VarPop,
            "stddev_pop" => AggFunc::StddevPop,
            "first" => AggFunc::First,
            "last" => AggFunc::Last,
            _ => return None,
        })
    }

    /// The accepted input types, for messages.
    fn accepts(self) -> &'static str {
        match self {
            AggFunc::Sum
            | AggFunc::Avg
            | AggFunc::Variance
            | AggFunc::Stddev
            | AggFunc::VarPop
            | AggFunc::StddevPop => "BIGINT or DOUBLE",
            AggFunc::Min | AggFunc::Max => "BIGINT, DOUBLE or TIMESTAMP",
            _ => "any type",
        }
    }

    /// `count(DISTINCT col)`, `sum(col)`, … with `col` already quoted.
    fn call_sql(self, col: Option<&str>) -> String {
        match (self, col) {
            (AggFunc::CountStar, _) | (_, None) => "count(*)".into(),
            (AggFunc::CountDistinct, Some(c)) => format!("count(DISTINCT {c})"),
            (f, Some(c)) => format!("{}({c})", f.sql_name()),
        }
    }
}

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

impl CmpOp {
    fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }

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

impl ArithOp {
    fn sql(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// A `WHERE`/`FILTER` expression. In a [`ViewDef`], `Column(i)` is stream column `i` (an index
/// into the event row); in a [`ViewSpec`], it is `ViewSpec::expr_columns[i]` (a name, not yet
/// resolved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// A column reference.
    Column(usize),
    /// A constant.
    Literal(Value),
    /// `a <op> b`.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a + b` etc.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
    /// `NOT a`.
    Not(Box<Expr>),
    /// `expr IS [NOT] NULL`.
    IsNull {
        /// The tested expression.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `expr [NOT] IN (list)`.
    InList {
        /// The tested expression.
        expr: Box<Expr>,
        /// The candidates.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `expr [NOT] BETWEEN low AND high`.
    Between {
        /// The tested expression.
        expr: Box<Expr>,
        /// Lower bound (inclusive).
        low: Box<Expr>,
        /// Upper bound (inclusive).
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
}

// `Eq` although `Expr` holds `Value`s: a DOUBLE literal is always finite (the parser rejects
// others and JSON cannot encode them), so `==` is reflexive on every reachable tree. Lets the
// catalog (which stores `ViewDef`s) be `Eq`.
impl Eq for Expr {}
impl Eq for ViewAgg {}
impl Eq for ViewDef {}
impl Eq for ViewSpecAgg {}
impl Eq for ViewSpec {}

static NULL: Value = Value::Null;

impl Expr {
    /// Evaluates the expression on one event row with SQL three-valued logic: `Value::Null` is
    /// NULL/UNKNOWN, conditions give `Value::Bool`. Total: never panics, whatever the row (a
    /// column index past its end reads as NULL; values of unexpected types make the
    /// comparison or arithmetic NULL).
    pub fn eval(&self, row: &[Value]) -> Value {
        self.value(row).into_owned()
    }

    /// True only when the expression is TRUE on `row` (the meaning of `WHERE` and `FILTER`:
    /// FALSE and NULL both reject the event).
    pub fn matches(&self, row: &[Value]) -> bool {
        self.truth(row) == Some(true)
    }

    /// Number of nodes (what [`MAX_EXPR_NODES`] bounds).
    pub fn node_count(&self) -> usize {
        let mut n = 0;
        self.walk(&mut |_| n += 1);
        n
    }

    /// Calls `f` on every node, parents before children, left to right.
    fn walk(&self, f: &mut dyn FnMut(&Expr)) {
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

    /// The same tree with every `Column(i)` replaced by `Column(f(i)?)`.
    fn map_columns(
        &self,
        f: &mut dyn FnMut(usize) -> Result<usize, CoreError>,
    ) -> Result<Expr, CoreError> {
        let b = |e: &Expr, f: &mut dyn FnMut(usize) -> Result<usize, CoreError>| {
            e.map_columns(f).map(Box::new)
        };
        Ok(match self {
            Expr::Column(i) => Expr::Column(f(*i)?),
            Expr::Literal(v) => Expr::Literal(v.clone()),
            Expr::Cmp(op, l, r) => {
                let l = b(l, f)?;
                Expr::Cmp(*op, l, b(r, f)?)
            }
            Expr::Arith(op, l, r) => {
                let l = b(l, f)?;
                Expr::Arith(*op, l, b(r, f)?)
            }
            Expr::And(l, r) => {
                let l = b(l, f)?;
                Expr::And(l, b(r, f)?)
            }
            Expr::Or(l, r) => {
                let l = b(l, f)?;
                Expr::Or(l, b(r, f)?)
            }
            Expr::Not(e) => Expr::Not(b(e, f)?),
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: b(expr, f)?,
                negated: *negated,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let expr = b(expr, f)?;
                let list = list
                    .iter()
                    .map(|e| e.map_columns(f))
                    .collect::<Result<_, _>>()?;
                Expr::InList {
                    expr,
                    list,
                    negated: *negated,
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let expr = b(expr, f)?;
                let low = b(low, f)?;
                Expr::Between {
                    expr,
                    low,
                    high: b(high, f)?,
                    negated: *negated,
                }
            }
        })
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
            } => {
                let v = expr.value(row);
                if v.is_null() {
                    return None;
                }
                let mut unknown = false;
                for item in list {
                    match compare(&v, &item.value(row)) {
                        Some(Ordering::Equal) => return Some(!*negated),
                        Some(_) => {}
                        None => unknown = true,
                    }
                }
                if unknown {
                    None
                } else {
                    Some(*negated)
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let v = expr.value(row);
                let ge = compare(&v, &low.value(row)).map(|o| o != Ordering::Less);
                if ge == Some(false) {
                    return Some(*negated);
                }
                let le = compare(&v, &high.value(row)).map(|o| o != Ordering::Greater);
                let both = match (ge, le) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                both.map(|b| b != *negated)
            }
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

/// One aggregate of a [`ViewDef`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewAgg {
    /// Output column name.
    pub name: String,
    /// The function.
    pub func: AggFunc,
    /// Input stream column; `None` only for [`AggFunc::CountStar`].
    pub input: Option<usize>,
    /// `FILTER (WHERE …)`, over stream columns.
    pub filter: Option<Expr>,
}

/// A feature view, checked against its stream: column references are stream column indexes.
/// Stored in the catalog JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    /// Catalog-assigned id (shared id space, never reused); 0 until the catalog assigns one.
    pub id: u32,
    /// View name.
    pub name: String,
    /// Id of the stream it reads.
    pub stream_id: u32,
    /// Name of the stream it reads.
    pub stream: String,
    /// The GROUP BY column (stream column index): the view's key.
    pub key_column: usize,
    /// Output name of the key column.
    pub key_name: String,
    /// The window.
    pub window: WindowSpec,
    /// `WHERE`, over stream columns: events it does not match are ignored.
    pub filter: Option<Expr>,
    /// Aggregates in select-list order (1..=[`MAX_VIEW_AGGREGATES`]).
    pub aggregates: Vec<ViewAgg>,
    /// The catalog version that created the view (set by the catalog; 0 in a resolved spec).
    /// Events routed under an older catalog version never reached the view: they are the ones
    /// back-filled from the stream's retained home copies.
    #[serde(default)]
    pub created_version: u64,
}

/// One aggregate of a [`ViewSpec`] (column names unresolved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewSpecAgg {
    /// Output column name (the alias, or the default name).
    pub name: String,
    /// The function.
    pub func: AggFunc,
    /// Input column name; `None` only for [`AggFunc::CountStar`].
    pub input: Option<String>,
    /// `FILTER (WHERE …)`; `Expr::Column(i)` means `ViewSpec::expr_columns[i]`.
    pub filter: Option<Expr>,
}

/// A parsed `CREATE MATERIALIZED VIEW`, not yet checked against the stream (column names
/// unresolved, types unchecked). [`ViewSpec::resolve`] turns it into a [`ViewDef`].
///
/// Everything checkable without the stream is checked by the parser: options and window,
/// clause shapes, aggregate names and arity, output-name uniqueness and length, literal syntax,
/// expression size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewSpec {
    /// View name.
    pub name: String,
    /// Stream name (the `FROM`).
    pub stream: String,
    /// The window.
    pub window: WindowSpec,
    /// The GROUP BY column name.
    pub key_column: String,
    /// Output name of the key column (its alias, or `key_column`).
    pub key_name: String,
    /// The column names the conditions mention, in order of first mention (aggregate filters
    /// in select-list order, then `WHERE`); `Expr::Column(i)` in `filter` and in the
    /// aggregates' filters means `expr_columns[i]`.
    pub expr_columns: Vec<String>,
    /// `WHERE`.
    pub filter: Option<Expr>,
    /// The aggregates, in select-list order.
    pub aggregates: Vec<ViewSpecAgg>,
}

fn unsupported(msg: impl Into<String>) -> CoreError {
    CoreError::Unsupported(msg.into())
}

impl ViewSpec {
    /// Checks the spec against `stream` (the stream named `self.stream`) and resolves it:
    /// column names to indexes, the key's type (`UNSUPPORTED` for DOUBLE), aggregate input
    /// types, condition types (integer literals compared with a TIMESTAMP become TIMESTAMP
    /// literals). `id` is 0; `stream_id` is `stream.id`.
    ///
    /// Errors: `UNKNOWN_STREAM` if `stream` is not the named stream, `UNKNOWN_COLUMN`,
    /// `UNSUPPORTED`, `TYPE_MISMATCH` (see the module documentation).
    pub fn resolve(&self, stream: &StreamDef) -> Result<ViewDef, CoreError> {
        if stream.name != self.stream {
            return Err(CoreError::UnknownStream(self.stream.clone()));
        }
        let col = |name: &str| {
            stream
                .column_index(name)
                .ok_or_else(|| CoreError::UnknownColumn {
                    table: stream.name.clone(),
                    column: name.to_string(),
                })
        };
        let key_column = col(&self.key_column)?;
        let key_ty = stream.columns[key_column].ty;
        if !key_ty.can_be_key() {
            return Err(unsupported(format!(
                "GROUP BY column \"{}\" is {key_ty}; a view key must be BOOLEAN, BIGINT, TEXT, BYTES or TIMESTAMP (NaN and -0.0 make DOUBLE equality ambiguous)",
                self.key_column
            )));
        }
        let r = Resolver {
            stream,
            names: &self.expr_columns,
        };
        let mut aggregates = Vec::with_capacity(self.aggregates.len());
        for a in &self.aggregates {
            let input = a.input.as_deref().map(col).transpose()?;
            let in_ty = input.map(|i| stream.columns[i].ty);
            if a.func.result_type(in_ty).is_none() {
                return Err(match (a.input.as_deref(), in_ty) {
                    (Some(c), Some(t)) => unsupported(format!(
                        "{}: column \"{c}\" is {t}; {}() takes {}",
                        a.func.call_sql(Some(&quote_ident(c))),
                        a.func.sql_name(),
                        a.func.accepts()
                    )),
                    _ => unsupported(format!(
                        "aggregate \"{}\": {}() needs one input column",
                        a.name,
                        a.func.sql_name()
                    )),
                });
            }
            let filter = match &a.filter {
                Some(f) => Some(r.condition(f, &format!("FILTER of \"{}\"", a.name))?),
                None => None,
            };
            aggregates.push(ViewAgg {
                name: a.name.clone(),
                func: a.func,
                input,
                filter,
            });
        }
        let filter = match &self.filter {
            Some(f) => Some(r.condition(f, "WHERE")?),
            None => None,
        };
        Ok(ViewDef {
            id: 0,
            name: self.name.clone(),
            stream_id: stream.id,
            stream: stream.name.clone(),
            key_column,
            key_name: self.key_name.clone(),
            window: self.window,
            filter,
            aggregates,
            created_version: 0,
        })
    }

    /// The `CREATE MATERIALIZED VIEW` text of this spec: every aggregate with an explicit
    /// `AS`, the key first, identifiers quoted where needed. [`crate::sql::parse`] of it gives
    /// back an equal spec.
    pub fn create_sql(&self) -> String {
        let name = |i: usize| {
            self.expr_columns
                .get(i)
                .map_or_else(|| format!("\"#{i}\""), |n| quote_ident(n))
        };
        let window = match self.window {
            WindowSpec::Lifetime => "window = 'lifetime'".to_string(),
            WindowSpec::Sliding {
                window_us,
                bucket_us,
            } => format!(
                "window = '{}', bucket = '{}'",
                crate::duration::format_duration_us(window_us),
                crate::duration::format_duration_us(bucket_us)
            ),
        };
        let mut items = vec![if self.key_name == self.key_column {
            quote_ident(&self.key_column)
        } else {
            format!(
                "{} AS {}",
                quote_ident(&self.key_column),
                quote_ident(&self.key_name)
            )
        }];
        for a in &self.aggregates {
            let input = a.input.as_deref().map(quote_ident);
            let mut s = a.func.call_sql(input.as_deref());
            if let Some(f) = &a.filter {
                s.push_str(" FILTER (WHERE ");
                write_expr(&mut s, f, &name, 0);
                s.push(')');
            }
            s.push_str(" AS ");
            s.push_str(&quote_ident(&a.name));
            items.push(s);
        }
        let mut sql = format!(
            "CREATE MATERIALIZED VIEW {} WITH ({window}) AS SELECT {} FROM {}",
            quote_ident(&self.name),
            items.join(", "),
            quote_ident(&self.stream)
        );
        if let Some(f) = &self.filter {
            sql.push_str(" WHERE ");
            write_expr(&mut sql, f, &name, 0);
        }
        sql.push_str(" GROUP BY ");
        sql.push_str(&quote_ident(&self.key_column));
        sql
    }
}

impl ViewDef {
    /// The view's output columns: the key (named `key_name`, the stream column's type), then
    /// one per aggregate with its result type (see the module documentation).
    ///
    /// A def that [`ViewDef::check`] accepts (every def [`ViewSpec::resolve`] returns) has a
    /// result type for every aggregate; for one it would reject, an impossible combination
    /// falls back to BIGINT rather than panicking.
    pub fn result_columns(&self, stream: &StreamDef) -> Vec<ColumnDef> {
        let ty = |i: usize| stream.columns.get(i).map(|c| c.ty);
        let mut out = Vec::with_capacity(1 + self.aggregates.len());
        out.push(ColumnDef {
            name: self.key_name.clone(),
            ty: ty(self.key_column).unwrap_or(ColumnType::BigInt),
        });
        for a in &self.aggregates {
            out.push(ColumnDef {
                name: a.name.clone(),
                ty: a
                    .func
                    .result_type(a.input.and_then(ty))
                    .unwrap_or(ColumnType::BigInt),
            });
        }
        out
    }

    /// The spec this definition was resolved from, up to literal coercion: column indexes back
    /// to `stream`'s column names.
    pub fn to_spec(&self, stream: &StreamDef) -> ViewSpec {
        let cname = |i: usize| {
            stream
                .columns
                .get(i)
                .map_or_else(|| format!("#{i}"), |c| c.name.clone())
        };
        let mut expr_columns: Vec<String> = Vec::new();
        let mut unresolve = |e: &Expr| {
            e.map_columns(&mut |i| {
                let n = cname(i);
                Ok(match expr_columns.iter().position(|x| *x == n) {
                    Some(p) => p,
                    None => {
                        expr_columns.push(n);
                        expr_columns.len() - 1
                    }
                })
            })
            .expect("infallible")
        };
        let aggregates = self
            .aggregates
            .iter()
            .map(|a| ViewSpecAgg {
                name: a.name.clone(),
                func: a.func,
                input: a.input.map(cname),
                filter: a.filter.as_ref().map(&mut unresolve),
            })
            .collect();
        let filter = self.filter.as_ref().map(&mut unresolve);
        ViewSpec {
            name: self.name.clone(),
            stream: self.stream.clone(),
            window: self.window,
            key_column: cname(self.key_column),
            key_name: self.key_name.clone(),
            expr_columns,
            filter,
            aggregates,
        }
    }

    /// The `CREATE MATERIALIZED VIEW` statement that re-creates this view over `stream`;
    /// parsing it and resolving against `stream` gives back this definition (with id 0).
    pub fn create_sql(&self, stream: &StreamDef) -> String {
        self.to_spec(stream).create_sql()
    }

    /// Consistency check of a stored definition against its stream (for loading a catalog):
    /// stream id, column indexes in range, key keyable, aggregate count and input types,
    /// unique non-empty output names, window bounds, condition column indexes and sizes. The
    /// error says what is wrong. Types inside conditions are not re-checked (evaluation is
    /// total anyway).
    pub fn check(&self, stream: &StreamDef) -> Result<(), String> {
        let width = stream.columns.len();
        if self.stream_id != stream.id {
            return Err(format!(
                "stream id {} is not {}'s ({})",
                self.stream_id, stream.name, stream.id
            ));
        }
        if self.key_column >= width || !stream.columns[self.key_column].ty.can_be_key() {
            return Err("key column out of range or not keyable".into());
        }
        if self.aggregates.is_empty() || self.aggregates.len() > MAX_VIEW_AGGREGATES {
            return Err(format!("{} aggregates", self.aggregates.len()));
        }
        match self.window {
            WindowSpec::Lifetime => {}
            WindowSpec::Sliding {
                window_us,
                bucket_us,
            } => {
                if bucket_us <= 0
                    || window_us <= 0
                    || window_us % bucket_us != 0
                    || window_us / bucket_us > MAX_WINDOW_BUCKETS
                {
                    return Err(format!(
                        "invalid window {window_us} µs / bucket {bucket_us} µs"
                    ));
                }
            }
        }
        let mut names: Vec<&str> = vec![&self.key_name];
        let expr_ok = |e: &Expr| {
            let mut ok = true;
            e.walk(&mut |n| {
                if let Expr::Column(i) = n {
                    ok &= *i < width;
                }
            });
            ok && e.node_count() <= MAX_EXPR_NODES
        };
        for a in &self.aggregates {
            if a.input.is_some_and(|i| i >= width) {
                return Err(format!(
                    "aggregate \"{}\": input column out of range",
                    a.name
                ));
            }
            let in_ty = a.input.map(|i| stream.columns[i].ty);
            if a.func.result_type(in_ty).is_none() {
                return Err(format!(
                    "aggregate \"{}\": {:?} does not take {:?}",
                    a.name, a.func, in_ty
                ));
            }
            if a.filter.as_ref().is_some_and(|f| !expr_ok(f)) {
                return Err(format!("aggregate \"{}\": invalid FILTER", a.name));
            }
            names.push(&a.name);
        }
        if self.filter.as_ref().is_some_and(|f| !expr_ok(f)) {
            return Err("invalid WHERE".into());
        }
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() || names[..i].contains(n) {
                return Err(format!("output name \"{n}\" empty or repeated"));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Type checking (ViewSpec::resolve).

struct Resolver<'a> {
    stream: &'a StreamDef,
    names: &'a [String],
}

impl Resolver<'_> {
    /// The spec expression as SQL text, for messages.
    fn show(&self, e: &Expr) -> String {
        let mut s = String::new();
        let name = |i: usize| {
            self.names
                .get(i)
                .map_or_else(|| format!("#{i}"), |n| quote_ident(n))
        };
        write_expr(&mut s, e, &name, 0);
        sql_excerpt(&s, 80)
    }

    fn col_name(&self, i: usize) -> &str {
        &self.stream.columns[i].name
    }

    /// Resolves a whole condition (`what`: "WHERE", "FILTER of \"x\""): must be BOOLEAN.
    fn condition(&self, e: &Expr, what: &str) -> Result<Expr, CoreError> {
        if e.node_count() > MAX_EXPR_NODES {
            return Err(CoreError::LimitExceeded(format!(
                "the {what} condition has {} nodes, the limit is {MAX_EXPR_NODES}",
                e.node_count()
            )));
        }
        let (out, ty) = self.expr(e)?;
        self.boolean(e, &out, ty, what)?;
        Ok(out)
    }

    /// `resolved` (from spec `e`, of type `ty`) must be BOOLEAN (or NULL).
    fn boolean(
        &self,
        e: &Expr,
        resolved: &Expr,
        ty: Option<ColumnType>,
        what: &str,
    ) -> Result<(), CoreError> {
        match (ty, resolved) {
            (None | Some(ColumnType::Boolean), _) => Ok(()),
            (Some(t), Expr::Column(c)) => Err(CoreError::TypeMismatch {
                row: None,
                column: Some(self.col_name(*c).to_string()),
                expected: ColumnType::Boolean,
                got: t,
            }),
            (Some(t), _) => Err(unsupported(format!(
                "{what}: `{}` is {t}, a condition must be BOOLEAN",
                self.show(e)
            ))),
        }
    }

    fn expr(&self, e: &Expr) -> Result<(Expr, Option<ColumnType>), CoreError> {
        let bx = Box::new;
        Ok(match e {
            Expr::Column(i) => {
                let name = self.names.get(*i).ok_or_else(|| {
                    unsupported(format!("column reference #{i} of a view spec out of range"))
                })?;
                let idx =
                    self.stream
                        .column_index(name)
                        .ok_or_else(|| CoreError::UnknownColumn {
                            table: self.stream.name.clone(),
                            column: name.clone(),
                        })?;
                (Expr::Column(idx), Some(self.stream.columns[idx].ty))
            }
            Expr::Literal(v) => (Expr::Literal(v.clone()), v.column_type()),
            Expr::Cmp(op, a, b) => {
                let mut ops = [self.expr(a)?, self.expr(b)?];
                self.unify(e, &mut ops)?;
                let [(a, _), (b, _)] = ops;
                (Expr::Cmp(*op, bx(a), bx(b)), Some(ColumnType::Boolean))
            }
            Expr::Arith(op, a, b) => {
                let (ra, ta) = self.expr(a)?;
                let (rb, tb) = self.expr(b)?;
                for (r, t) in [(&ra, ta), (&rb, tb)] {
                    match (t, r) {
                        (None | Some(ColumnType::BigInt | ColumnType::Double), _) => {}
                        (Some(t), Expr::Column(c)) => {
                            return Err(unsupported(format!(
                                "arithmetic on column \"{}\" of type {t} in `{}` (+ - * / take BIGINT or DOUBLE)",
                                self.col_name(*c),
                                self.show(e)
                            )))
                        }
                        (Some(t), _) => {
                            return Err(unsupported(format!(
                                "arithmetic on a {t} value in `{}` (+ - * / take BIGINT or DOUBLE)",
                                self.show(e)
                            )))
                        }
                    }
                }
                let ty = match (ta, tb) {
                    (Some(ColumnType::Double), _) | (_, Some(ColumnType::Double)) => {
                        Some(ColumnType::Double)
                    }
                    (Some(t), _) | (_, Some(t)) => Some(t),
                    (None, None) => None,
                };
                (Expr::Arith(*op, bx(ra), bx(rb)), ty)
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                let word = if matches!(e, Expr::And(..)) {
                    "AND"
                } else {
                    "OR"
                };
                let (ra, ta) = self.expr(a)?;
                self.boolean(a, &ra, ta, &format!("operand of {word}"))?;
                let (rb, tb) = self.expr(b)?;
                self.boolean(b, &rb, tb, &format!("operand of {word}"))?;
                let out = if word == "AND" {
                    Expr::And(bx(ra), bx(rb))
                } else {
                    Expr::Or(bx(ra), bx(rb))
                };
                (out, Some(ColumnType::Boolean))
            }
            Expr::Not(a) => {
                let (ra, ta) = self.expr(a)?;
                self.boolean(a, &ra, ta, "operand of NOT")?;
                (Expr::Not(bx(ra)), Some(ColumnType::Boolean))
            }
            Expr::IsNull { expr, negated } => {
                let (r, _) = self.expr(expr)?;
                (
                    Expr::IsNull {
                        expr: bx(r),
                        negated: *negated,
                    },
                    Some(ColumnType::Boolean),
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let mut ops = Vec::with_capacity(1 + list.len());
                ops.push(self.expr(expr)?);
                for item in list {
                    ops.push(self.expr(item)?);
                }
                self.unify(e, &mut ops)?;
                let mut it = ops.into_iter().map(|(x, _)| x);
                let expr = bx(it.next().expect("the tested expression"));
                (
                    Expr::InList {
                        expr,
                        list: it.collect(),
                        negated: *negated,
                    },
                    Some(ColumnType::Boolean),
                )
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let mut ops = [self.expr(expr)?, self.expr(low)?, self.expr(high)?];
                self.unify(e, &mut ops)?;
                let [(x, _), (l, _), (h, _)] = ops;
                (
                    Expr::Between {
                        expr: bx(x),
                        low: bx(l),
                        high: bx(h),
                        negated: *negated,
                    },
                    Some(ColumnType::Boolean),
                )
            }
        })
    }

    /// Checks that the operands of one comparison (`=`…, `IN`, `BETWEEN`) are mutually
    /// comparable and turns integer literals compared with a TIMESTAMP into TIMESTAMP literals.
    fn unify(&self, e: &Expr, ops: &mut [(Expr, Option<ColumnType>)]) -> Result<(), CoreError> {
        use ColumnType::*;
        let anchor = ops
            .iter()
            .position(|(_, t)| *t == Some(Timestamp))
            .or_else(|| {
                ops.iter()
                    .position(|(x, t)| t.is_some() && matches!(x, Expr::Column(_)))
            })
            .or_else(|| ops.iter().position(|(_, t)| t.is_some()));
        let Some(a) = anchor else {
            return Ok(());
        };
        let at = ops[a].1.expect("typed anchor");
        for (x, t) in ops.iter() {
            let Some(t) = *t else { continue };
            let ok = match at {
                Timestamp => {
                    t == Timestamp || (t == BigInt && matches!(x, Expr::Literal(Value::Int(_))))
                }
                BigInt | Double => matches!(t, BigInt | Double),
                other => t == other,
            };
            if ok {
                continue;
            }
            return Err(match (&ops[a].0, x) {
                (Expr::Column(c), Expr::Column(d)) => unsupported(format!(
                    "cannot compare column \"{}\" ({at}) with column \"{}\" ({t}) in `{}`",
                    self.col_name(*c),
                    self.col_name(*d),
                    self.show(e)
                )),
                (Expr::Column(c), _) => CoreError::TypeMismatch {
                    row: None,
                    column: Some(self.col_name(*c).to_string()),
                    expected: at,
                    got: t,
                },
                (_, Expr::Column(d)) => CoreError::TypeMismatch {
                    row: None,
                    column: Some(self.col_name(*d).to_string()),
                    expected: t,
                    got: at,
                },
                _ => unsupported(format!(
                    "cannot compare {at} with {t} in `{}`",
                    self.show(e)
                )),
            });
        }
        if at == Timestamp {
            for (x, t) in ops.iter_mut() {
                if let Expr::Literal(Value::Int(us)) = x {
                    *x = Expr::Literal(Value::Timestamp(*us));
                    *t = Some(Timestamp);
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// SQL text of expressions (create_sql and messages). Parentheses only where sqlparser's
// PostgreSQL precedences need them, so re-parsing gives the same tree and left-deep AND/OR
// chains do not nest parentheses (sqlparser limits nesting depth).

fn prec(e: &Expr) -> u8 {
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
fn write_expr(out: &mut String, e: &Expr, name: &dyn Fn(usize) -> String, min: u8) {
    let p = prec(e);
    let paren = p < min;
    if paren {
        out.push('(');
    }
    let binary = |out: &mut String, a: &Expr, op: &str, b: &Expr, left_min: u8| {
        write_expr(out, a, name, left_min);
        out.push(' ');
        out.push_str(op);
        out.push(' ');
        write_expr(out, b, name, p + 1);
    };
    match e {
        Expr::Column(i) => out.push_str(&name(*i)),
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

/// A literal as SQL that [`literal`] reads back as the same value.
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
            let text = crate::ingest::format_rfc3339_us(*us);
            if crate::ingest::parse_rfc3339_us(&text) == Ok(*us) {
                let _ = write!(out, "TIMESTAMP '{text}'");
            } else {
                // Beyond year 9999: the µs count, which resolves back to a TIMESTAMP where it
                // is compared with one.
                let _ = write!(out, "{us}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lowering from sqlparser's AST.

/// A literal expression (`5`, `-2.5`, `'x'`, `X'0a'`, `TRUE`, `NULL`, `TIMESTAMP '…'`), or
/// `None` if `e` is not one.
fn literal(e: &ast::Expr) -> Option<Result<Value, CoreError>> {
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
                        sql_excerpt(&text, 40)
                    ))
                })?)
            } else {
                match text.parse::<f64>() {
                    Ok(d) if d.is_finite() => Value::Double(d),
                    _ => {
                        return Err(unsupported(format!(
                            "numeric literal {} (integers are BIGINT; numbers with a '.' or an exponent are finite DOUBLEs)",
                            sql_excerpt(&text, 40)
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
                    sql_excerpt(h, 40)
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
                sql_excerpt(&other.to_string(), 60)
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
            crate::ingest::parse_rfc3339_us(s)
                .map(Value::Timestamp)
                .map_err(|why| {
                    unsupported(format!(
                        "TIMESTAMP literal '{}': {why} (write RFC 3339, e.g. '2026-11-26T00:00:00Z')",
                        sql_excerpt(s, 40)
                    ))
                })
        }
        _ => Err(unsupported(format!(
            "typed literal `{}` (only TIMESTAMP '<RFC 3339>')",
            sql_excerpt(&ts.to_string(), 60)
        ))),
    }
}

/// Lowers one condition; column names go into `names`.
struct Lowerer<'a> {
    names: &'a mut Vec<String>,
    nodes: usize,
    what: String,
}

impl Lowerer<'_> {
    fn column(&mut self, id: &ast::Ident) -> Result<Expr, CoreError> {
        let name = fold_ident(id, "column")?;
        let i = match self.names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                self.names.push(name);
                self.names.len() - 1
            }
        };
        Ok(Expr::Column(i))
    }

    fn sub(&mut self, e: &ast::Expr) -> Result<Box<Expr>, CoreError> {
        self.lower(e).map(Box::new)
    }

    fn lower(&mut self, e: &ast::Expr) -> Result<Expr, CoreError> {
        if let ast::Expr::Nested(inner) = e {
            return self.lower(inner);
        }
        self.nodes += 1;
        if self.nodes > MAX_EXPR_NODES {
            return Err(CoreError::LimitExceeded(format!(
                "the {} condition has more than {MAX_EXPR_NODES} nodes",
                self.what
            )));
        }
        if let Some(v) = literal(e) {
            return Ok(Expr::Literal(v?));
        }
        Ok(match e {
            ast::Expr::Identifier(id) => self.column(id)?,
            ast::Expr::CompoundIdentifier(parts) => {
                return Err(unsupported(format!(
                    "qualified column reference `{}` in {} (write the bare column name)",
                    sql_excerpt(&ast::ObjectName::from(parts.clone()).to_string(), 80),
                    self.what
                )))
            }
            ast::Expr::BinaryOp { left, op, right } => {
                use ast::BinaryOperator as B;
                let l = self.sub(left)?;
                let r = self.sub(right)?;
                match op {
                    B::Eq => Expr::Cmp(CmpOp::Eq, l, r),
                    B::NotEq => Expr::Cmp(CmpOp::NotEq, l, r),
                    B::Lt => Expr::Cmp(CmpOp::Lt, l, r),
                    B::LtEq => Expr::Cmp(CmpOp::LtEq, l, r),
                    B::Gt => Expr::Cmp(CmpOp::Gt, l, r),
                    B::GtEq => Expr::Cmp(CmpOp::GtEq, l, r),
                    B::Plus => Expr::Arith(ArithOp::Add, l, r),
                    B::Minus => Expr::Arith(ArithOp::Sub, l, r),
                    B::Multiply => Expr::Arith(ArithOp::Mul, l, r),
                    B::Divide => Expr::Arith(ArithOp::Div, l, r),
                    B::And => Expr::And(l, r),
                    B::Or => Expr::Or(l, r),
                    other => {
                        return Err(unsupported(format!(
                            "operator `{other}` in {} (supported: = <> < <= > >= + - * / AND OR NOT IS [NOT] NULL [NOT] IN [NOT] BETWEEN)",
                            self.what
                        )))
                    }
                }
            }
            ast::Expr::UnaryOp {
                op: ast::UnaryOperator::Not,
                expr,
            } => Expr::Not(self.sub(expr)?),
            ast::Expr::UnaryOp { op, expr } => {
                return Err(unsupported(format!(
                    "unary `{op}` on `{}` in {} (a sign is allowed on numeric literals only; write 0 - x)",
                    sql_excerpt(&expr.to_string(), 60),
                    self.what
                )))
            }
            ast::Expr::IsNull(x) => Expr::IsNull {
                expr: self.sub(x)?,
                negated: false,
            },
            ast::Expr::IsNotNull(x) => Expr::IsNull {
                expr: self.sub(x)?,
                negated: true,
            },
            ast::Expr::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                global: false,
            } => {
                let x = self.sub(expr)?;
                let list = list
                    .iter()
                    .map(|i| self.lower(i))
                    .collect::<Result<_, _>>()?;
                Expr::InList {
                    expr: x,
                    list,
                    negated: *negated,
                }
            }
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.sub(expr)?;
                let low = self.sub(low)?;
                Expr::Between {
                    expr: x,
                    low,
                    high: self.sub(high)?,
                    negated: *negated,
                }
            }
            ast::Expr::Function(f) => {
                return Err(unsupported(format!(
                    "function call `{}` in {} (conditions take columns, literals and operators)",
                    sql_excerpt(&f.to_string(), 60),
                    self.what
                )))
            }
            other => {
                return Err(unsupported(format!(
                    "expression `{}` in {} (supported: columns, literals, = <> < <= > >= + - * / AND OR NOT IS [NOT] NULL [NOT] IN (…) [NOT] BETWEEN, parentheses)",
                    sql_excerpt(&other.to_string(), 60),
                    self.what
                )))
            }
        })
    }
}

/// Lowers `CREATE [MATERIALIZED] VIEW` (called by [`crate::sql::parse`]).
pub(crate) fn lower_create_view(cv: ast::CreateView) -> Result<Statement, CoreError> {
    let ast::CreateView {
        or_alter,
        or_replace,
        materialized,
        secure,
        name,
        name_before_not_exists,
        columns,
        query,
        options,
        cluster_by,
        comment,
        with_no_schema_binding,
        if_not_exists,
        temporary,
        copy_grants,
        to,
        params,
    } = cv;
    if !materialized {
        return Err(unsupported(
            "CREATE VIEW (only CREATE MATERIALIZED VIEW: a feature view over a stream)",
        ));
    }
    if or_replace || or_alter {
        return Err(unsupported(
            "CREATE OR REPLACE MATERIALIZED VIEW (drop the view, then create it)",
        ));
    }
    if temporary || secure {
        return Err(unsupported("TEMPORARY or SECURE materialized views"));
    }
    let name = fold_object_name(&name, "view")?;
    if name_before_not_exists {
        return Err(unsupported(
            "IF NOT EXISTS after the view name (write CREATE MATERIALIZED VIEW IF NOT EXISTS name)",
        ));
    }
    if !columns.is_empty() {
        return Err(unsupported(format!(
            "a column list after view \"{name}\" (name the outputs with AS in the SELECT)"
        )));
    }
    if !cluster_by.is_empty()
        || comment.is_some()
        || with_no_schema_binding
        || copy_grants
        || to.is_some()
        || params.is_some()
    {
        return Err(unsupported(format!(
            "clauses of view \"{name}\" other than WITH (window = …, bucket = …) AS SELECT …"
        )));
    }
    let window = view_window(&name, options)?;
    let spec = lower_view_query(name, window, *query)?;
    Ok(Statement::CreateView {
        spec,
        if_not_exists,
    })
}

fn view_window(view: &str, options: ast::CreateTableOptions) -> Result<WindowSpec, CoreError> {
    let opts = match options {
        ast::CreateTableOptions::None => Vec::new(),
        ast::CreateTableOptions::With(o) => o,
        other => {
            return Err(unsupported(format!(
                "view options `{}` (write WITH (window = '…', bucket = '…'))",
                sql_excerpt(&other.to_string(), 80)
            )))
        }
    };
    let quoted = |k: &str| {
        unsupported(format!(
            "value of view option {k}: write it as a quoted string, e.g. {k} = '10 minutes'"
        ))
    };
    let mut window: Option<String> = None;
    let mut bucket: Option<String> = None;
    for o in &opts {
        let ast::SqlOption::KeyValue { key, value } = o else {
            return Err(unsupported(format!(
                "view option `{}` (write key = 'value')",
                sql_excerpt(&o.to_string(), 60)
            )));
        };
        let k = key.to_string().to_ascii_lowercase();
        let slot = match k.as_str() {
            "window" => &mut window,
            "bucket" => &mut bucket,
            other => {
                return Err(unsupported(format!(
                    "view option \"{}\" (supported: window, bucket)",
                    sql_excerpt(other, 40)
                )))
            }
        };
        let text = match value {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => s.clone(),
                _ => return Err(quoted(&k)),
            },
            _ => return Err(quoted(&k)),
        };
        if slot.is_some() {
            return Err(unsupported(format!("view option {k} given twice")));
        }
        *slot = Some(text);
    }
    let Some(w) = window else {
        return Err(unsupported(format!(
            "materialized view \"{view}\" without WITH (window = '<duration>', bucket = '<duration>') or WITH (window = 'lifetime')"
        )));
    };
    if w.trim().eq_ignore_ascii_case("lifetime") {
        if bucket.is_some() {
            return Err(unsupported(
                "bucket with window = 'lifetime' (a lifetime view has no buckets)",
            ));
        }
        return Ok(WindowSpec::Lifetime);
    }
    let window_us = crate::duration::parse_duration_us(&w)
        .map_err(|e| unsupported(format!("window: {e} (or 'lifetime')")))?;
    let Some(b) = bucket else {
        return Err(unsupported(format!(
            "window = '{}' needs bucket = '<duration>' (the window is a whole number of buckets)",
            sql_excerpt(&w, 40)
        )));
    };
    let bucket_us =
        crate::duration::parse_duration_us(&b).map_err(|e| unsupported(format!("bucket: {e}")))?;
    if window_us % bucket_us != 0 {
        return Err(unsupported(format!(
            "window '{}' is not a whole multiple of bucket '{}'",
            sql_excerpt(&w, 40),
            sql_excerpt(&b, 40)
        )));
    }
    let n = window_us / bucket_us;
    if n > MAX_WINDOW_BUCKETS {
        return Err(CoreError::LimitExceeded(format!(
            "window '{}' / bucket '{}' is {n} buckets, the limit is {MAX_WINDOW_BUCKETS} (use a wider bucket)",
            sql_excerpt(&w, 40),
            sql_excerpt(&b, 40)
        )));
    }
    Ok(WindowSpec::Sliding {
        window_us,
        bucket_us,
    })
}

/// The parts of a plain SELECT that Tarn reads, and which other clauses it has.
struct SelectParts {
    distinct: bool,
    projection: Vec<ast::SelectItem>,
    from: Vec<ast::TableWithJoins>,
    selection: Option<ast::Expr>,
    group_by: ast::GroupByExpr,
    having: bool,
    /// A `WINDOW` clause.
    window: bool,
    qualify: bool,
    /// Any other clause (hints, TOP, INTO, LATERAL VIEW, CLUSTER/DISTRIBUTE/SORT BY, …).
    other: bool,
}

/// Takes a SELECT apart. The destructuring is exhaustive on purpose: a clause a newer
/// sqlparser adds fails to compile here instead of being silently ignored.
fn select_parts(select: ast::Select) -> SelectParts {
    let ast::Select {
        select_token: _,
        optimizer_hints,
        distinct,
        select_modifiers,
        top,
        top_before_distinct: _,
        projection,
        exclude,
        into,
        from,
        lateral_views,
        prewhere,
        selection,
        connect_by,
        group_by,
        cluster_by,
        distribute_by,
        sort_by,
        having,
        named_window,
        qualify,
        window_before_qualify: _,
        value_table_mode,
        flavor,
    } = select;
    SelectParts {
        distinct: distinct.is_some(),
        projection,
        from,
        selection,
        group_by,
        having: having.is_some(),
        window: !named_window.is_empty(),
        qualify: qualify.is_some(),
        other: !optimizer_hints.is_empty()
            || select_modifiers.is_some()
            || top.is_some()
            || exclude.is_some()
            || into.is_some()
            || !lateral_views.is_empty()
            || prewhere.is_some()
            || !connect_by.is_empty()
            || !cluster_by.is_empty()
            || !distribute_by.is_empty()
            || !sort_by.is_empty()
            || value_table_mode.is_some()
            || flavor != ast::SelectFlavor::Standard,
    }
}

/// The query of a view, as far as it can be checked without the stream.
fn lower_view_query(
    name: String,
    window: WindowSpec,
    query: ast::Query,
) -> Result<ViewSpec, CoreError> {
    let select = plain_select(query, &format!("materialized view \"{name}\""))?;
    let SelectParts {
        distinct,
        projection,
        from,
        selection,
        group_by,
        having,
        window: window_clause,
        qualify,
        other,
    } = select_parts(select);
    let clause = |what: &str| {
        unsupported(format!(
            "{what} in materialized view \"{name}\" (the query is SELECT key, aggregates FROM stream [WHERE …] GROUP BY key)"
        ))
    };
    if distinct {
        return Err(clause("SELECT DISTINCT"));
    }
    if having {
        return Err(clause("HAVING"));
    }
    if window_clause {
        return Err(clause("WINDOW"));
    }
    if qualify {
        return Err(clause("QUALIFY"));
    }
    if other {
        return Err(clause(
            "a clause other than SELECT, FROM, WHERE and GROUP BY",
        ));
    }
    let stream = single_from(from, &format!("materialized view \"{name}\""))?;
    // GROUP BY: exactly one bare column.
    let key_column = match &group_by {
        ast::GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => match exprs.as_slice() {
            [ast::Expr::Identifier(id)] => fold_ident(id, "column")?,
            [] => {
                return Err(unsupported(format!(
                    "materialized view \"{name}\" without GROUP BY <column> (a view is keyed by one stream column)"
                )))
            }
            [one] => {
                return Err(unsupported(format!(
                    "GROUP BY `{}` in materialized view \"{name}\": group by one bare column name",
                    sql_excerpt(&one.to_string(), 60)
                )))
            }
            _ => {
                return Err(unsupported(format!(
                    "GROUP BY several expressions in materialized view \"{name}\" (exactly one column: composite keys are not supported)"
                )))
            }
        },
        other => {
            return Err(unsupported(format!(
                "`{}` in materialized view \"{name}\" (write GROUP BY <column>)",
                sql_excerpt(&other.to_string(), 60)
            )))
        }
    };
    let mut expr_columns = Vec::new();
    let mut key_name: Option<String> = None;
    let mut aggregates: Vec<ViewSpecAgg> = Vec::new();
    for item in &projection {
        let (expr, alias) = match item {
            ast::SelectItem::UnnamedExpr(e) => (e, None),
            ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                return Err(unsupported(format!(
                    "`*` in materialized view \"{name}\" (list the GROUP BY column and the aggregates)"
                )))
            }
            other => {
                return Err(unsupported(format!(
                    "select item `{}` in materialized view \"{name}\"",
                    sql_excerpt(&other.to_string(), 60)
                )))
            }
        };
        let alias = alias.map(|a| fold_ident(a, "column")).transpose()?;
        match expr {
            ast::Expr::Identifier(id) => {
                let col = fold_ident(id, "column")?;
                if col != key_column {
                    return Err(unsupported(format!(
                        "column \"{col}\" in the select list of materialized view \"{name}\": every item other than the GROUP BY column \"{key_column}\" must be an aggregate (count, sum, min, max, avg, …)"
                    )));
                }
                if key_name.is_some() {
                    return Err(unsupported(format!(
                        "the GROUP BY column \"{key_column}\" is listed twice in materialized view \"{name}\""
                    )));
                }
                key_name = Some(alias.unwrap_or(col));
            }
            ast::Expr::Function(f) => {
                if aggregates.len() == MAX_VIEW_AGGREGATES {
                    return Err(CoreError::LimitExceeded(format!(
                        "materialized view \"{name}\" has more than {MAX_VIEW_AGGREGATES} aggregates"
                    )));
                }
                aggregates.push(lower_aggregate(f, alias, &mut expr_columns)?);
            }
            other => {
                return Err(unsupported(format!(
                    "select item `{}` in materialized view \"{name}\": items are the GROUP BY column and aggregate calls over bare columns",
                    sql_excerpt(&other.to_string(), 60)
                )))
            }
        }
    }
    let Some(key_name) = key_name else {
        return Err(unsupported(format!(
            "materialized view \"{name}\" must list its GROUP BY column \"{key_column}\" in the select list"
        )));
    };
    if aggregates.is_empty() {
        return Err(unsupported(format!(
            "materialized view \"{name}\" has no aggregate (e.g. count(*))"
        )));
    }
    let mut seen: Vec<&str> = vec![&key_name];
    for a in &aggregates {
        if seen.contains(&a.name.as_str()) {
            return Err(CoreError::DuplicateColumn {
                column: a.name.clone(),
            });
        }
        seen.push(&a.name);
    }
    let filter = match &selection {
        Some(e) => Some(
            Lowerer {
                names: &mut expr_columns,
                nodes: 0,
                what: "WHERE".into(),
            }
            .lower(e)?,
        ),
        None => None,
    };
    Ok(ViewSpec {
        name,
        stream,
        window,
        key_column,
        key_name,
        expr_columns,
        filter,
        aggregates,
    })
}

fn lower_aggregate(
    f: &ast::Function,
    alias: Option<String>,
    expr_columns: &mut Vec<String>,
) -> Result<ViewSpecAgg, CoreError> {
    let ast::Function {
        name,
        uses_odbc_syntax,
        parameters,
        args,
        within_group,
        filter,
        null_treatment,
        over,
    } = f;
    let fname = fold_object_name(name, "function")?;
    let call = || sql_excerpt(&f.to_string(), 60);
    let Some(base) = AggFunc::from_name(&fname) else {
        return Err(unsupported(format!(
            "function {fname}() in `{}` (supported aggregates: count, sum, min, max, avg, variance, stddev, var_samp, stddev_samp, var_pop, stddev_pop, first, last)",
            call()
        )));
    };
    if over.is_some() {
        return Err(unsupported(format!(
            "window function `{}` (OVER); the view's window is WITH (window = …)",
            call()
        )));
    }
    if *uses_odbc_syntax
        || !matches!(parameters, ast::FunctionArguments::None)
        || !within_group.is_empty()
        || null_treatment.is_some()
    {
        return Err(unsupported(format!(
            "`{}`: only plain aggregate calls, optionally with FILTER (WHERE …)",
            call()
        )));
    }
    let ast::FunctionArguments::List(list) = args else {
        return Err(unsupported(format!(
            "`{}`: an aggregate takes one column in parentheses",
            call()
        )));
    };
    if !list.clauses.is_empty() {
        return Err(unsupported(format!(
            "clauses inside the parentheses of `{}` (ORDER BY, IGNORE NULLS, …)",
            call()
        )));
    }
    let distinct = match list.duplicate_treatment {
        None => false,
        Some(ast::DuplicateTreatment::Distinct) => true,
        Some(ast::DuplicateTreatment::All) => {
            return Err(unsupported(format!(
                "ALL in `{}` (write {fname}(col))",
                call()
            )))
        }
    };
    let [arg] = list.args.as_slice() else {
        return Err(unsupported(format!(
            "`{}`: {fname}() takes exactly one argument, got {}",
            call(),
            list.args.len()
        )));
    };
    let input = match arg {
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => None,
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Identifier(id))) => {
            Some(fold_ident(id, "column")?)
        }
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
            return Err(unsupported(format!(
                "argument `{}` of {fname}(): aggregate arguments must be bare column names (expressions are not supported)",
                sql_excerpt(&e.to_string(), 60)
            )))
        }
        other => {
            return Err(unsupported(format!(
                "argument `{}` of {fname}(): aggregate arguments must be bare column names",
                sql_excerpt(&other.to_string(), 60)
            )))
        }
    };
    let func = match (base, distinct, &input) {
        (AggFunc::Count, false, None) => AggFunc::CountStar,
        (AggFunc::Count, true, Some(_)) => AggFunc::CountDistinct,
        (_, true, None) => {
            return Err(unsupported(format!(
                "`{}` (DISTINCT needs a column)",
                call()
            )))
        }
        (_, false, None) => {
            return Err(unsupported(format!(
                "{fname}(*) (only count(*) takes *; name a column)"
            )))
        }
        (_, true, Some(_)) => {
            return Err(unsupported(format!(
                "DISTINCT in `{}` (only count(DISTINCT col) is supported)",
                call()
            )))
        }
        (f, false, Some(_)) => f,
    };
    let name = match alias {
        Some(a) => a,
        None => {
            let n = match (func, &input) {
                (AggFunc::CountStar, _) | (_, None) => "count".to_string(),
                (AggFunc::CountDistinct, Some(c)) => format!("count_distinct_{c}"),
                (f, Some(c)) => format!("{}_{c}", f.sql_name()),
            };
            if n.len() > MAX_IDENTIFIER_BYTES {
                return Err(CoreError::LimitExceeded(format!(
                    "the default output name of `{}` is {} bytes, the limit is {MAX_IDENTIFIER_BYTES}; name it with AS",
                    call(),
                    n.len()
                )));
            }
            n
        }
    };
    let filter = match filter {
        Some(e) => Some(
            Lowerer {
                names: expr_columns,
                nodes: 0,
                what: format!("FILTER of \"{name}\""),
            }
            .lower(e)?,
        ),
        None => None,
    };
    Ok(ViewSpecAgg {
        name,
        func,
        input,
        filter,
    })
}

/// The `SELECT` of a query that has nothing else (no CTE, ORDER BY, LIMIT, set operation…).
fn plain_select(query: ast::Query, what: &str) -> Result<ast::Select, CoreError> {
    let ast::Query {
        with,
        body,
        order_by,
        limit_clause,
        fetch,
        locks,
        for_clause,
        settings,
        format_clause,
        pipe_operators,
    } = query;
    let clause = |c: &str| unsupported(format!("{c} in {what}"));
    if with.is_some() {
        return Err(clause("WITH (common table expressions)"));
    }
    if order_by.is_some() {
        return Err(clause("ORDER BY"));
    }
    if limit_clause.is_some() || fetch.is_some() {
        return Err(clause("LIMIT/OFFSET/FETCH"));
    }
    if !locks.is_empty()
        || for_clause.is_some()
        || settings.is_some()
        || format_clause.is_some()
        || !pipe_operators.is_empty()
    {
        return Err(clause("query clauses"));
    }
    match *body {
        ast::SetExpr::Select(s) => Ok(*s),
        ast::SetExpr::SetOperation { op, .. } => Err(clause(&format!("{op}"))),
        other => Err(unsupported(format!(
            "`{}` in {what} (expected SELECT … FROM …)",
            sql_excerpt(&other.to_string(), 60)
        ))),
    }
}

/// The one plain `FROM name` of a query.
fn single_from(from: Vec<ast::TableWithJoins>, what: &str) -> Result<String, CoreError> {
    let [twj] = <[ast::TableWithJoins; 1]>::try_from(from).map_err(|from| {
        unsupported(if from.is_empty() {
            format!("{what} without FROM")
        } else {
            format!("several FROM items in {what} (one stream or view, no joins)")
        })
    })?;
    if !twj.joins.is_empty() {
        return Err(unsupported(format!("JOIN in {what}")));
    }
    match twj.relation {
        ast::TableFactor::Table {
            name,
            alias: None,
            args: None,
            with_hints,
            version: None,
            with_ordinality: false,
            partitions,
            json_path: None,
            sample: None,
            index_directives,
            inheritance: None,
        } if with_hints.is_empty() && partitions.is_empty() && index_directives.is_empty() => {
            fold_object_name(&name, "stream")
        }
        other => Err(unsupported(format!(
            "FROM `{}` in {what} (name one stream, without alias or modifiers)",
            sql_excerpt(&other.to_string(), 60)
        ))),
    }
}

/// The accepted forms of a read, for messages.
const READ_FORM: &str = "reads of views take SELECT * | col, … FROM view WHERE <key> = <literal> or WHERE <key> IN (<literal>, …)";

/// Lowers a `SELECT` statement: only reads of a feature view by key (called by
/// [`crate::sql::parse`]). Rejections are `UNSUPPORTED`, quote the statement and say which
/// reads are accepted.
pub(crate) fn lower_select(query: ast::Query) -> Result<Statement, CoreError> {
    let text = sql_excerpt(&query.to_string(), 80);
    lower_select_inner(query).map_err(|e| match e {
        CoreError::Unsupported(m) => unsupported(format!("statement `{text}`: {m}")),
        other => other,
    })
}

fn lower_select_inner(query: ast::Query) -> Result<Statement, CoreError> {
    let what = "a SELECT";
    let select = plain_select(query, what).map_err(|e| match e {
        CoreError::Unsupported(m) => unsupported(format!("{m}; {READ_FORM}")),
        other => other,
    })?;
    let bad = |m: &str| unsupported(format!("{m} in a SELECT; {READ_FORM}"));
    let SelectParts {
        distinct,
        projection,
        from,
        selection,
        group_by,
        having,
        window,
        qualify,
        other,
    } = select_parts(select);
    if distinct {
        return Err(bad("DISTINCT"));
    }
    if !matches!(&group_by, ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        || having
    {
        return Err(bad("GROUP BY/HAVING"));
    }
    if other || window || qualify {
        return Err(bad("clauses other than SELECT, FROM and WHERE"));
    }
    let view = single_from(from, what).map_err(|e| match e {
        CoreError::Unsupported(m) => unsupported(format!("{m}; {READ_FORM}")),
        other => other,
    })?;
    let columns = match projection.as_slice() {
        [ast::SelectItem::Wildcard(opts)] => {
            let ast::WildcardAdditionalOptions {
                wildcard_token: _,
                opt_ilike,
                opt_exclude,
                opt_except,
                opt_replace,
                opt_rename,
                opt_alias,
            } = opts;
            if opt_ilike.is_some()
                || opt_exclude.is_some()
                || opt_except.is_some()
                || opt_replace.is_some()
                || opt_rename.is_some()
                || opt_alias.is_some()
            {
                return Err(bad("options of *"));
            }
            None
        }
        items => {
            let mut cols: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let ast::SelectItem::UnnamedExpr(ast::Expr::Identifier(id)) = item else {
                    return Err(bad(&format!(
                        "select item `{}` (list bare column names or *)",
                        sql_excerpt(&item.to_string(), 60)
                    )));
                };
                let c = fold_ident(id, "column")?;
                if cols.contains(&c) {
                    return Err(CoreError::DuplicateColumn { column: c });
                }
                cols.push(c);
            }
            Some(cols)
        }
    };
    let Some(mut cond) = selection.as_ref() else {
        return Err(bad("a read without WHERE"));
    };
    while let ast::Expr::Nested(inner) = cond {
        cond = inner;
    }
    let key_lit = |e: &ast::Expr| -> Result<Value, CoreError> {
        match literal(e) {
            Some(v) => v,
            None => Err(bad(&format!(
                "key `{}` (keys are literals)",
                sql_excerpt(&e.to_string(), 60)
            ))),
        }
    };
    let (key_column, keys) = match cond {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq,
            right,
        } => match (&**left, &**right) {
            (ast::Expr::Identifier(id), lit) | (lit, ast::Expr::Identifier(id))
                if literal(lit).is_some() =>
            {
                (fold_ident(id, "column")?, vec![key_lit(lit)?])
            }
            _ => {
                return Err(bad(&format!(
                    "WHERE `{}`",
                    sql_excerpt(&cond.to_string(), 60)
                )))
            }
        },
        ast::Expr::In {
            expr,
            target: ast::InTarget::List(list),
            negated: false,
            global: false,
        } => match &**expr {
            ast::Expr::Identifier(id) => (
                fold_ident(id, "column")?,
                list.iter().map(key_lit).collect::<Result<Vec<_>, _>>()?,
            ),
            _ => {
                return Err(bad(&format!(
                    "WHERE `{}`",
                    sql_excerpt(&cond.to_string(), 60)
                )))
            }
        },
        other => {
            return Err(bad(&format!(
                "WHERE `{}`",
                sql_excerpt(&other.to_string(), 60)
            )))
        }
    };
    if let Some(i) = keys.iter().position(Value::is_null) {
        return Err(CoreError::NullKey {
            row: Some(i),
            column: Some(key_column),
        });
    }
    Ok(Statement::SelectFeatures {
        view,
        columns,
        key_column,
        keys,
    })
}
