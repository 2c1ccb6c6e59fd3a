//! Name resolution and type checking: `Expr<String>` (as parsed) → `Expr<usize>` (indexes into
//! the scope's columns), with the rules of the module documentation of [`crate::expr`].

use tarn_types::{ColumnType, Value};

use super::print::to_sql;
use super::{Expr, MAX_EXPR_NODES};
use crate::schema::{quote_ident, ColumnDef};
use crate::CoreError;

/// The columns an expression may name: those of one object (a stream's event row, a table's
/// row), and that object's name for messages (`UNKNOWN_COLUMN` names it).
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The object whose columns these are (e.g. a stream name).
    pub owner: &'a str,
    /// Its columns; `Expr::Column(i)` of a checked expression is `columns[i]`.
    pub columns: &'a [ColumnDef],
}

impl<'a> Scope<'a> {
    /// The scope of `owner`'s `columns`.
    pub fn new(owner: &'a str, columns: &'a [ColumnDef]) -> Scope<'a> {
        Scope { owner, columns }
    }

    /// Index of the column named `name`, or `UNKNOWN_COLUMN` naming the owner.
    pub fn index(&self, name: &str) -> Result<usize, CoreError> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| CoreError::UnknownColumn {
                table: self.owner.to_string(),
                column: name.to_string(),
            })
    }

    fn name(&self, i: usize) -> &str {
        &self.columns[i].name
    }
}

/// Resolves and checks a whole condition (`what` names it in messages: "WHERE", "FILTER of
/// \"x\""): at most [`MAX_EXPR_NODES`] nodes, every column known, operand types compatible,
/// BOOLEAN (or NULL) as a whole. Integer literals compared with a TIMESTAMP become TIMESTAMP
/// literals.
pub fn check_condition(
    e: &Expr<String>,
    scope: &Scope<'_>,
    what: &str,
) -> Result<Expr<usize>, CoreError> {
    if e.node_count() > MAX_EXPR_NODES {
        return Err(CoreError::LimitExceeded(format!(
            "the {what} condition has {} nodes, the limit is {MAX_EXPR_NODES}",
            e.node_count()
        )));
    }
    let (out, ty) = Checker { scope }.expr(e)?;
    Checker { scope }.boolean(e, &out, ty, what)?;
    Ok(out)
}

fn unsupported(msg: impl Into<String>) -> CoreError {
    CoreError::Unsupported(msg.into())
}

struct Checker<'s, 'a> {
    scope: &'s Scope<'a>,
}

type Typed = (Expr<usize>, Option<ColumnType>);

impl Checker<'_, '_> {
    /// The unchecked expression as SQL text, for messages.
    fn show(&self, e: &Expr<String>) -> String {
        crate::excerpt(&to_sql(e, &|n: &String| quote_ident(n)), 80)
    }

    /// `resolved` (from `e`, of type `ty`) must be BOOLEAN (or NULL).
    fn boolean(
        &self,
        e: &Expr<String>,
        resolved: &Expr<usize>,
        ty: Option<ColumnType>,
        what: &str,
    ) -> Result<(), CoreError> {
        match (ty, resolved) {
            (None | Some(ColumnType::Boolean), _) => Ok(()),
            (Some(t), Expr::Column(c)) => Err(CoreError::TypeMismatch {
                row: None,
                column: Some(self.scope.name(*c).to_string()),
                expected: ColumnType::Boolean,
                got: t,
            }),
            (Some(t), _) => Err(unsupported(format!(
                "{what}: `{}` is {t}, a condition must be BOOLEAN",
                self.show(e)
            ))),
        }
    }

    fn expr(&self, e: &Expr<String>) -> Result<Typed, CoreError> {
        let bx = Box::new;
        let boolean = Some(ColumnType::Boolean);
        Ok(match e {
            Expr::Column(name) => {
                let idx = self.scope.index(name)?;
                (Expr::Column(idx), Some(self.scope.columns[idx].ty))
            }
            Expr::Literal(v) => (Expr::Literal(v.clone()), v.column_type()),
            Expr::Cmp(op, a, b) => {
                let mut ops = [self.expr(a)?, self.expr(b)?];
                self.unify(e, &mut ops)?;
                let [(a, _), (b, _)] = ops;
                (Expr::Cmp(*op, bx(a), bx(b)), boolean)
            }
            Expr::Arith(op, a, b) => {
                let (ra, ta) = self.expr(a)?;
                let (rb, tb) = self.expr(b)?;
                let ty = self.arith_type(e, [(&ra, ta), (&rb, tb)])?;
                (Expr::Arith(*op, bx(ra), bx(rb)), ty)
            }
            Expr::And(a, b) => {
                let (ra, rb) = self.logic_operands(a, b, "AND")?;
                (Expr::And(bx(ra), bx(rb)), boolean)
            }
            Expr::Or(a, b) => {
                let (ra, rb) = self.logic_operands(a, b, "OR")?;
                (Expr::Or(bx(ra), bx(rb)), boolean)
            }
            Expr::Not(a) => {
                let (ra, ta) = self.expr(a)?;
                self.boolean(a, &ra, ta, "operand of NOT")?;
                (Expr::Not(bx(ra)), boolean)
            }
            Expr::IsNull { expr, negated } => {
                let (r, _) = self.expr(expr)?;
                let negated = *negated;
                (
                    Expr::IsNull {
                        expr: bx(r),
                        negated,
                    },
                    boolean,
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => (self.in_list(e, expr, list, *negated)?, boolean),
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let mut ops = [self.expr(expr)?, self.expr(low)?, self.expr(high)?];
                self.unify(e, &mut ops)?;
                let [(x, _), (l, _), (h, _)] = ops;
                let (expr, low, high, negated) = (bx(x), bx(l), bx(h), *negated);
                (
                    Expr::Between {
                        expr,
                        low,
                        high,
                        negated,
                    },
                    boolean,
                )
            }
        })
    }

    /// The operands of `AND` / `OR` (`word`), each BOOLEAN.
    fn logic_operands(
        &self,
        a: &Expr<String>,
        b: &Expr<String>,
        word: &str,
    ) -> Result<(Expr<usize>, Expr<usize>), CoreError> {
        let what = format!("operand of {word}");
        let (ra, ta) = self.expr(a)?;
        self.boolean(a, &ra, ta, &what)?;
        let (rb, tb) = self.expr(b)?;
        self.boolean(b, &rb, tb, &what)?;
        Ok((ra, rb))
    }

    /// `expr [NOT] IN (list)`: the tested expression and every item mutually comparable.
    fn in_list(
        &self,
        e: &Expr<String>,
        expr: &Expr<String>,
        list: &[Expr<String>],
        negated: bool,
    ) -> Result<Expr<usize>, CoreError> {
        let mut ops = Vec::with_capacity(1 + list.len());
        ops.push(self.expr(expr)?);
        for item in list {
            ops.push(self.expr(item)?);
        }
        self.unify(e, &mut ops)?;
        let mut it = ops.into_iter().map(|(x, _)| x);
        let expr = Box::new(it.next().expect("the tested expression"));
        Ok(Expr::InList {
            expr,
            list: it.collect(),
            negated,
        })
    }

    /// The type of `a op b` (`+ - * /` take BIGINT or DOUBLE; any DOUBLE makes it DOUBLE).
    fn arith_type(
        &self,
        e: &Expr<String>,
        operands: [(&Expr<usize>, Option<ColumnType>); 2],
    ) -> Result<Option<ColumnType>, CoreError> {
        for (r, t) in operands {
            match (t, r) {
                (None | Some(ColumnType::BigInt | ColumnType::Double), _) => {}
                (Some(t), Expr::Column(c)) => {
                    return Err(unsupported(format!(
                        "arithmetic on column \"{}\" of type {t} in `{}` (+ - * / take BIGINT or DOUBLE)",
                        self.scope.name(*c),
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
        let [(_, ta), (_, tb)] = operands;
        Ok(match (ta, tb) {
            (Some(ColumnType::Double), _) | (_, Some(ColumnType::Double)) => {
                Some(ColumnType::Double)
            }
            (Some(t), _) | (_, Some(t)) => Some(t),
            (None, None) => None,
        })
    }

    /// Checks that the operands of one comparison (`=`…, `IN`, `BETWEEN`) are mutually
    /// comparable and turns integer literals compared with a TIMESTAMP into TIMESTAMP literals.
    fn unify(&self, e: &Expr<String>, ops: &mut [Typed]) -> Result<(), CoreError> {
        use ColumnType::*;
        if let Some((x, t)) = ops
            .iter()
            .find(|(_, t)| t.is_some_and(|t| !t.is_comparable()))
        {
            let what = match x {
                Expr::Column(c) => format!("column \"{}\"", self.scope.name(*c)),
                _ => "a value".to_string(),
            };
            return Err(unsupported(format!(
                "{what} is {}: vectors cannot be compared (=, <, IN, BETWEEN) in `{}`",
                t.expect("typed"),
                self.show(e)
            )));
        }
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
            if !ok {
                return Err(self.incomparable(e, (&ops[a].0, at), (x, t)));
            }
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

    /// The error for comparing `anchor` (of type `at`) with `x` (of type `t`) in `e`.
    fn incomparable(
        &self,
        e: &Expr<String>,
        (anchor, at): (&Expr<usize>, ColumnType),
        (x, t): (&Expr<usize>, ColumnType),
    ) -> CoreError {
        match (anchor, x) {
            (Expr::Column(c), Expr::Column(d)) => unsupported(format!(
                "cannot compare column \"{}\" ({at}) with column \"{}\" ({t}) in `{}`",
                self.scope.name(*c),
                self.scope.name(*d),
                self.show(e)
            )),
            (Expr::Column(c), _) => CoreError::TypeMismatch {
                row: None,
                column: Some(self.scope.name(*c).to_string()),
                expected: at,
                got: t,
            },
            (_, Expr::Column(d)) => CoreError::TypeMismatch {
                row: None,
                column: Some(self.scope.name(*d).to_string()),
                expected: t,
                got: at,
            },
            _ => unsupported(format!(
                "cannot compare {at} with {t} in `{}`",
                self.show(e)
            )),
        }
    }
}
