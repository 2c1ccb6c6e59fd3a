//! `CREATE INDEX name ON table USING hnsw (col [opclass]) [WITH (…)]`, and the standalone
//! conditions of kNN filters ([`parse_condition`]).
//!
//! sqlparser 0.64 parses PostgreSQL's whole `CREATE INDEX` grammar into `ast::CreateIndex`;
//! everything but the name, table, method, one plain column with an optional operator class,
//! `IF NOT EXISTS`, `CONCURRENTLY` and `WITH (…)` is refused here. `CONCURRENTLY` is accepted
//! and changes nothing: an index build never blocks writes (the shards index existing rows in
//! the background while new writes keep going), which is what it asks for.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;
use tarn_vectors::{HnswParams, Metric, VectorError};

use super::ident::{ident, object_name};
use super::{parse_error, unsupported, Statement};
use crate::expr::Expr;
use crate::index_def::{IndexSpec, INDEX_METHOD};
use crate::{excerpt, CoreError};

/// Lowers `CREATE INDEX`.
pub(crate) fn lower_create_index(ci: ast::CreateIndex) -> Result<Statement, CoreError> {
    refuse_index_clauses(&ci)?;
    let Some(name) = &ci.name else {
        return Err(unsupported(
            "CREATE INDEX without a name (write CREATE INDEX name ON table …)",
        ));
    };
    let name = object_name(name, "index")?;
    let table = object_name(&ci.table_name, "table")?;
    method(&name, ci.using.as_ref())?;
    let [col] = &ci.columns[..] else {
        return Err(unsupported(format!(
            "index {name} over {} columns (a vector index covers exactly one VECTOR column)",
            ci.columns.len()
        )));
    };
    let column = match &col.column.expr {
        ast::Expr::Identifier(id)
            if col.column.options.sort.is_none()
                && col.column.options.nulls_first.is_none()
                && col.column.with_fill.is_none() =>
        {
            ident(id, "column")?
        }
        ast::Expr::Identifier(_) => {
            return Err(unsupported(format!(
                "ASC/DESC/NULLS in index {name} (a vector index has no order)"
            )))
        }
        other => {
            return Err(unsupported(format!(
                "expression `{}` in index {name} (index a VECTOR column by its name)",
                excerpt(&other.to_string(), 60)
            )))
        }
    };
    let opclass = match &col.operator_class {
        Some(oc) => Some(opclass_metric(&object_name(oc, "operator class")?)?),
        None => None,
    };
    let (metric, params) = with_options(&name, &ci.with, opclass)?;
    Ok(Statement::CreateIndex {
        spec: IndexSpec {
            name,
            table,
            column,
            metric,
            params,
        },
        if_not_exists: ci.if_not_exists,
    })
}

/// UNIQUE, ASYNC, INCLUDE, NULLS [NOT] DISTINCT, WHERE (partial indexes) and the MySQL
/// options: refused, each by name.
fn refuse_index_clauses(ci: &ast::CreateIndex) -> Result<(), CoreError> {
    let refused = [
        (
            ci.unique,
            "UNIQUE indexes (a vector index enforces nothing)",
        ),
        (ci.r#async, "CREATE INDEX ASYNC"),
        (!ci.include.is_empty(), "INCLUDE columns in an index"),
        (
            ci.nulls_distinct.is_some(),
            "NULLS [NOT] DISTINCT in an index",
        ),
        (
            ci.predicate.is_some(),
            "partial indexes (CREATE INDEX … WHERE); filter at query time instead",
        ),
        (
            !ci.index_options.is_empty() || !ci.alter_options.is_empty(),
            "index options other than WITH (…)",
        ),
    ];
    match refused.iter().find(|(given, _)| *given) {
        Some((_, what)) => Err(unsupported(*what)),
        None => Ok(()),
    }
}

/// `USING hnsw` (the default when omitted); any other method is refused by name.
fn method(index: &str, using: Option<&ast::IndexType>) -> Result<(), CoreError> {
    let given = match using {
        None => return Ok(()),
        Some(ast::IndexType::Custom(id)) if id.value.eq_ignore_ascii_case(INDEX_METHOD) => {
            return Ok(())
        }
        Some(other) => other.to_string(),
    };
    Err(unsupported(format!(
        "index method {} for index {index} (only hnsw exists: USING hnsw)",
        excerpt(&given.to_lowercase(), 40)
    )))
}

/// The metric an operator class names (`vector_l2_ops`, `vector_cosine_ops`,
/// `vector_ip_ops`).
fn opclass_metric(opclass: &str) -> Result<Metric, CoreError> {
    Metric::ALL
        .into_iter()
        .find(|m| opclass.eq_ignore_ascii_case(m.opclass()))
        .ok_or_else(|| {
            CoreError::InvalidArgument(format!(
                "unknown operator class {}: expected vector_l2_ops, vector_cosine_ops or vector_ip_ops",
                excerpt(opclass, 64)
            ))
        })
}

/// The `WITH (metric = …, m = …, ef_construction = …, ef_search = …)` options, each at most
/// once; defaults for the rest; the parameters range-checked.
fn with_options(
    index: &str,
    with: &[ast::Expr],
    opclass: Option<Metric>,
) -> Result<(Metric, HnswParams), CoreError> {
    let mut metric = None;
    let mut params = HnswParams::default();
    let mut seen: Vec<String> = Vec::new();
    for option in with {
        let (key, value) = match option {
            ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            } => match &**left {
                ast::Expr::Identifier(id) => (ident(id, "option")?, &**right),
                _ => return Err(bad_option(index, option)),
            },
            _ => return Err(bad_option(index, option)),
        };
        if seen.contains(&key) {
            return Err(unsupported(format!(
                "option {key} given twice for index {index}"
            )));
        }
        match key.as_str() {
            "metric" => metric = Some(metric_option(value)?),
            "m" => params.m = count_option(&key, value)?,
            "ef_construction" => params.ef_construction = count_option(&key, value)?,
            "ef_search" => params.ef_search = count_option(&key, value)?,
            _ => {
                return Err(unsupported(format!(
                    "index option {} for index {index} (supported: metric, m, ef_construction, ef_search)",
                    excerpt(&key, 40)
                )))
            }
        }
        seen.push(key);
    }
    params.validate().map_err(invalid)?;
    let metric = match (opclass, metric) {
        (Some(a), Some(b)) if a != b => {
            return Err(CoreError::InvalidArgument(format!(
                "index {index}: operator class {} means metric {}, but WITH says metric = '{}'",
                a.opclass(),
                a.name(),
                b.name()
            )))
        }
        (a, b) => a.or(b).unwrap_or(Metric::L2),
    };
    Ok((metric, params))
}

fn bad_option(index: &str, option: &ast::Expr) -> CoreError {
    unsupported(format!(
        "option `{}` for index {index} (write name = value)",
        excerpt(&option.to_string(), 60)
    ))
}

/// A vector-crate error about a request value (metric, parameter): `INVALID_ARGUMENT` with its
/// text.
fn invalid(e: VectorError) -> CoreError {
    CoreError::InvalidArgument(e.to_string())
}

/// `metric = 'l2' | 'cosine' | 'ip'` (a string, or a bare word).
fn metric_option(value: &ast::Expr) -> Result<Metric, CoreError> {
    let text = match value {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            _ => return Err(wrong_type("metric", value, "a string such as 'cosine'")),
        },
        ast::Expr::Identifier(id) => id.value.clone(),
        _ => return Err(wrong_type("metric", value, "a string such as 'cosine'")),
    };
    Metric::parse(&text).map_err(invalid)
}

/// A positive integer option (`m = 16`); its range is checked by [`HnswParams::validate`].
fn count_option(key: &str, value: &ast::Expr) -> Result<usize, CoreError> {
    let ast::Expr::Value(v) = value else {
        return Err(wrong_type(key, value, "an integer"));
    };
    let ast::Value::Number(n, false) = &v.value else {
        return Err(wrong_type(key, value, "an integer"));
    };
    if !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(wrong_type(key, value, "an integer"));
    }
    // Digits only: a parse failure is an overflow, out of every range; the message has the
    // text and range `VectorError::ParameterOutOfRange` would give.
    n.parse().map_err(|_| {
        let (min, max) = param_range(key);
        CoreError::InvalidArgument(format!(
            "{key} = {} is out of range: must be {min}..={max}",
            excerpt(n, 40)
        ))
    })
}

/// The range of an HNSW parameter, as [`HnswParams::validate`] checks it.
fn param_range(key: &str) -> (usize, usize) {
    match key {
        "m" => (tarn_vectors::HNSW_M_MIN, tarn_vectors::HNSW_M_MAX),
        "ef_construction" => (
            tarn_vectors::HNSW_EF_CONSTRUCTION_MIN,
            tarn_vectors::HNSW_EF_CONSTRUCTION_MAX,
        ),
        _ => (
            tarn_vectors::HNSW_EF_SEARCH_MIN,
            tarn_vectors::HNSW_EF_SEARCH_MAX,
        ),
    }
}

fn wrong_type(key: &str, value: &ast::Expr, expected: &str) -> CoreError {
    CoreError::InvalidArgument(format!(
        "index option {key} = {} must be {expected}",
        excerpt(&value.to_string(), 40)
    ))
}

/// Statement keywords, unquoted, first in a filter: sqlparser would read `SELECT 1` as the
/// column `select` followed by junk, so they are named here instead.
fn refuse_statement(first: &Token) -> Result<(), CoreError> {
    use sqlparser::keywords::Keyword as K;
    const STATEMENTS: &[K] = &[
        K::SELECT,
        K::INSERT,
        K::UPDATE,
        K::DELETE,
        K::CREATE,
        K::DROP,
        K::ALTER,
        K::WITH,
        K::SHOW,
        K::VALUES,
        K::TABLE,
    ];
    match first {
        Token::Word(w) if w.quote_style.is_none() && STATEMENTS.contains(&w.keyword) => {
            Err(CoreError::SqlParse(format!(
                "the filter is a condition on the table's columns, not a statement (it starts with {})",
                w.value.to_uppercase()
            )))
        }
        _ => Ok(()),
    }
}

/// Parses a standalone boolean condition (a kNN filter such as `in_stock AND price < 20 AND
/// region IN ('eu','us')`) with the lowering of a view's `WHERE`. Column names are not checked
/// here: [`crate::expr::check::check_condition`] does that against the table.
///
/// Errors: empty text, text that is not one expression (a statement, trailing tokens) →
/// `SQL_PARSE`; constructs the expression language lacks → `UNSUPPORTED`; over
/// [`crate::expr::MAX_EXPR_NODES`] nodes → `LIMIT_EXCEEDED`.
pub fn parse_condition(text: &str) -> Result<Expr<String>, CoreError> {
    if text.trim().is_empty() {
        return Err(CoreError::SqlParse("empty filter condition".into()));
    }
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(parse_error)?;
    refuse_statement(&parser.peek_token().token)?;
    let e = parser.parse_expr().map_err(parse_error)?;
    let next = parser.peek_token().token;
    if next != Token::EOF {
        return Err(CoreError::SqlParse(format!(
            "unexpected {next} after the filter condition"
        )));
    }
    if let ast::Expr::Subquery(_) | ast::Expr::Exists { .. } = e {
        return Err(unsupported(
            "a query as a filter condition (write a condition on the table's columns)",
        ));
    }
    super::expr::lower_condition(&e, "filter")
}
