//! Conditions (`WHERE`, `FILTER (WHERE …)`) from sqlparser's AST to [`Expr<String>`]: column
//! names as written (folded), checked later against a scope by [`crate::expr::check`].

use sqlparser::ast;

use super::ident::ident;
use super::literal::literal;
use super::unsupported;
use crate::expr::{ArithOp, CmpOp, Expr, MAX_EXPR_NODES};
use crate::{excerpt, CoreError};

/// Lowers one condition; `what` names it in messages ("WHERE", "FILTER of \"x\"").
pub(crate) fn lower_condition(e: &ast::Expr, what: &str) -> Result<Expr<String>, CoreError> {
    Lowerer { nodes: 0, what }.lower(e)
}

/// Counts nodes as it goes, so an oversized condition stops early.
struct Lowerer<'w> {
    nodes: usize,
    what: &'w str,
}

type Lowered = Result<Expr<String>, CoreError>;

impl Lowerer<'_> {
    fn sub(&mut self, e: &ast::Expr) -> Result<Box<Expr<String>>, CoreError> {
        self.lower(e).map(Box::new)
    }

    fn lower(&mut self, e: &ast::Expr) -> Lowered {
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
        match e {
            ast::Expr::Identifier(id) => Ok(Expr::Column(ident(id, "column")?)),
            ast::Expr::CompoundIdentifier(parts) => Err(unsupported(format!(
                "qualified column reference `{}` in {} (write the bare column name)",
                excerpt(&ast::ObjectName::from(parts.clone()).to_string(), 80),
                self.what
            ))),
            ast::Expr::BinaryOp { left, op, right } => self.binary(left, op, right),
            ast::Expr::UnaryOp {
                op: ast::UnaryOperator::Not,
                expr,
            } => Ok(Expr::Not(self.sub(expr)?)),
            ast::Expr::UnaryOp { op, expr } => Err(unsupported(format!(
                "unary `{op}` on `{}` in {} (a sign is allowed on numeric literals only; write 0 - x)",
                excerpt(&expr.to_string(), 60),
                self.what
            ))),
            ast::Expr::IsNull(x) => Ok(Expr::IsNull {
                expr: self.sub(x)?,
                negated: false,
            }),
            ast::Expr::IsNotNull(x) => Ok(Expr::IsNull {
                expr: self.sub(x)?,
                negated: true,
            }),
            ast::Expr::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                global: false,
            } => self.in_list(expr, list, *negated),
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.sub(expr)?;
                let low = self.sub(low)?;
                Ok(Expr::Between {
                    expr: x,
                    low,
                    high: self.sub(high)?,
                    negated: *negated,
                })
            }
            ast::Expr::Function(f) => Err(unsupported(format!(
                "function call `{}` in {} (conditions take columns, literals and operators)",
                excerpt(&f.to_string(), 60),
                self.what
            ))),
            other => Err(unsupported(format!(
                "expression `{}` in {} (supported: columns, literals, = <> < <= > >= + - * / AND OR NOT IS [NOT] NULL [NOT] IN (…) [NOT] BETWEEN, parentheses)",
                excerpt(&other.to_string(), 60),
                self.what
            ))),
        }
    }

    fn binary(&mut self, left: &ast::Expr, op: &ast::BinaryOperator, right: &ast::Expr) -> Lowered {
        use ast::BinaryOperator as B;
        let l = self.sub(left)?;
        let r = self.sub(right)?;
        Ok(match op {
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
        })
    }

    fn in_list(&mut self, expr: &ast::Expr, list: &[ast::Expr], negated: bool) -> Lowered {
        let x = self.sub(expr)?;
        let list = list
            .iter()
            .map(|i| self.lower(i))
            .collect::<Result<_, _>>()?;
        Ok(Expr::InList {
            expr: x,
            list,
            negated,
        })
    }
}
