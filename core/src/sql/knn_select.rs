//! pgvector-style nearest-neighbour queries: a `SELECT` ordered by a distance to a constant
//! vector, served by a vector index.
//!
//! ```sql
//! SELECT id, tag, emb <=> '[0.1, 0.2, 0.3]' AS d FROM items
//! WHERE in_stock AND price < 20
//! ORDER BY emb <=> '[0.1, 0.2, 0.3]' LIMIT 10;
//! ```
//!
//! sqlparser 0.64's `PostgreSqlDialect` parses all three pgvector operators as binary
//! operators, so no token rewrite is needed: `<->` is `BinaryOperator::LtDashGt` (the
//! geometric distance operator), `<=>` is `Spaceship` and `<#>` is `Custom("<#>")` (Postgres
//! custom operator characters). Lowering ([`lower_knn_select`]) needs no catalog; the index,
//! the vector's dimension and the projection are resolved by [`KnnSelect::plan`].

use sqlparser::ast;
use tarn_vectors::Metric;

use super::ident::ident;
use super::insert::array_component;
use super::select::{query_parts, read_parts, single_from, QueryParts, ReadParts};
use super::{unsupported, Statement};
use crate::catalog::{Catalog, Object, ObjectKind};
use crate::expr::Expr;
use crate::index_def::IndexDef;
use crate::schema::TableDef;
use crate::vector::{self, Component};
use crate::{excerpt, CoreError};

#[cfg(test)]
mod tests;

/// The accepted form, for messages.
const KNN_FORM: &str = "kNN queries take SELECT * | col, … [, col <op> <vector> [AS name]] FROM table [WHERE condition] ORDER BY col <op> <vector> LIMIT k, with <op> one of <-> <=> <#>";

/// The default result column name of a distance in the select list without `AS`.
pub const DISTANCE_COLUMN: &str = "distance";

/// A query vector as written: the text form `'[1, 2, 3]'` or `ARRAY[1, 2, 3]` (optionally
/// cast `::vector` / `::vector(n)`); converted when its index's dimension is known.
#[derive(Clone, Debug, PartialEq)]
pub enum VectorLiteral {
    /// `'[…]'`: parsed by [`vector::parse_text`].
    Text(String),
    /// `ARRAY[…]`: its components as written.
    Array(Vec<Component>),
}

/// `column <op> vector`: the distance the query is ordered by.
#[derive(Clone, Debug, PartialEq)]
pub struct Distance {
    /// The VECTOR column (folded).
    pub column: String,
    /// The operator's metric: `<->` L2, `<=>` cosine, `<#>` negative inner product.
    pub metric: Metric,
    /// The constant vector.
    pub vector: VectorLiteral,
    /// The `n` of a `::vector(n)` cast, checked against the index's dimension.
    pub cast_dim: Option<u32>,
}

/// One select-list item of a kNN query.
#[derive(Clone, Debug, PartialEq)]
pub enum KnnItem {
    /// `*`: every column of the table, in table order.
    Star,
    /// A bare column.
    Column(String),
    /// The ORDER BY distance, under this result column name (its alias, or
    /// [`DISTANCE_COLUMN`]); a DOUBLE holding the f32 distance exactly.
    Distance(String),
}

/// A lowered kNN `SELECT`; nothing is checked against the catalog yet.
#[derive(Clone, Debug, PartialEq)]
pub struct KnnSelect {
    /// Table name.
    pub table: String,
    /// The select list, in order.
    pub items: Vec<KnnItem>,
    /// The ORDER BY distance.
    pub order: Distance,
    /// The WHERE condition, column names as written.
    pub filter: Option<Expr<String>>,
    /// `LIMIT k` as written (range-checked where the kNN opcode checks `k`).
    pub limit: u64,
}

/// A result column of a planned kNN query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnnOutput {
    /// The `i`-th of [`KnnPlan::columns`].
    Column(usize),
    /// The distance, named so.
    Distance(String),
}

/// A kNN query resolved against the catalog: what the index search needs and how its rows
/// become the result set.
#[derive(Debug)]
pub struct KnnPlan<'c> {
    /// The table.
    pub table: &'c TableDef,
    /// The index chosen (see [`choose_index`]).
    pub index: &'c IndexDef,
    /// The query vector, of the index's dimension (metric rules are checked by the search).
    pub vector: Vec<f32>,
    /// The WHERE condition, checked by the search against the table's columns.
    pub filter: Option<Expr<String>>,
    /// The table columns the rows carry, each once, in select-list order.
    pub columns: Vec<String>,
    /// The result columns in select-list order.
    pub outputs: Vec<KnnOutput>,
    /// `LIMIT k`.
    pub k: u64,
}

/// True when `query` is a kNN query: a distance operator heads an ORDER BY item or a select
/// item. Such queries are lowered here, every other SELECT by [`super::select`].
pub(crate) fn is_knn(query: &ast::Query) -> bool {
    let in_order = query.order_by.as_ref().is_some_and(|o| match &o.kind {
        ast::OrderByKind::Expressions(items) => items.iter().any(|i| metric_of(&i.expr).is_some()),
        ast::OrderByKind::All(_) => false,
    });
    let in_select = match &*query.body {
        ast::SetExpr::Select(s) => s.projection.iter().any(|item| match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                metric_of(e).is_some()
            }
            _ => false,
        }),
        _ => false,
    };
    in_order || in_select
}

/// The metric of a distance expression `a <op> b`, if `e` is one.
fn metric_of(e: &ast::Expr) -> Option<Metric> {
    let ast::Expr::BinaryOp { op, .. } = unnest(e) else {
        return None;
    };
    match op {
        ast::BinaryOperator::LtDashGt => Some(Metric::L2),
        ast::BinaryOperator::Spaceship => Some(Metric::Cosine),
        ast::BinaryOperator::Custom(s) if s == "<#>" => Some(Metric::InnerProduct),
        _ => None,
    }
}

/// `e` without its enclosing parentheses.
fn unnest(mut e: &ast::Expr) -> &ast::Expr {
    while let ast::Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// `{m}` in a kNN query, with the accepted form.
fn bad(m: impl std::fmt::Display) -> CoreError {
    unsupported(format!("{m} in a kNN SELECT; {KNN_FORM}"))
}

/// Lowers a kNN `SELECT` (one [`is_knn`] accepts). Refusals are `UNSUPPORTED` and quote the
/// statement, except a bad `LIMIT` value (`INVALID_ARGUMENT` / `LIMIT_EXCEEDED`, as the kNN
/// opcode's `k`).
pub(crate) fn lower_knn_select(query: ast::Query) -> Result<Statement, CoreError> {
    let text = excerpt(&query.to_string(), 80);
    lower_inner(query)
        .map(|q| Statement::SelectKnn(Box::new(q)))
        .map_err(|e| match e {
            CoreError::Unsupported(m) => unsupported(format!("statement `{text}`: {m}")),
            other => other,
        })
}

fn lower_inner(query: ast::Query) -> Result<KnnSelect, CoreError> {
    let QueryParts {
        with,
        body,
        order_by,
        limit_clause,
        fetch,
        other,
    } = query_parts(query);
    if with {
        return Err(bad("WITH (common table expressions)"));
    }
    if fetch {
        return Err(bad("FETCH (write LIMIT k)"));
    }
    if other {
        return Err(bad("query clauses"));
    }
    let ast::SetExpr::Select(select) = *body else {
        return Err(bad(format!(
            "`{}` (expected SELECT … FROM …)",
            excerpt(&body.to_string(), 60)
        )));
    };
    let order = order_distance(order_by)?;
    let limit = limit_k(limit_clause)?;
    select_clauses(*select, order, limit)
}

/// The query from its FROM, select list and WHERE (every other clause is refused), `order`
/// and `limit`.
fn select_clauses(
    select: ast::Select,
    order: Distance,
    limit: u64,
) -> Result<KnnSelect, CoreError> {
    let ReadParts {
        projection,
        from,
        selection,
    } = read_parts(
        select,
        &|m| bad(m),
        "SELECT, FROM, WHERE, ORDER BY and LIMIT",
    )?;
    let table = single_from(from, "a kNN SELECT").map_err(|e| match e {
        CoreError::Unsupported(m) => unsupported(format!("{m}; {KNN_FORM}")),
        other => other,
    })?;
    let items = projection
        .iter()
        .map(|item| select_item(item, &order))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = selection
        .as_ref()
        .map(|c| super::expr::lower_condition(c, "WHERE"))
        .transpose()?;
    Ok(KnnSelect {
        table,
        items,
        order,
        filter,
        limit,
    })
}

/// `ORDER BY col <op> vector`, exactly one item, ascending.
fn order_distance(order_by: Option<ast::OrderBy>) -> Result<Distance, CoreError> {
    let Some(order_by) = order_by else {
        return Err(bad(
            "a distance in the select list without ORDER BY (write ORDER BY col <op> <vector> LIMIT k)",
        ));
    };
    if order_by.interpolate.is_some() {
        return Err(bad("INTERPOLATE"));
    }
    let ast::OrderByKind::Expressions(items) = order_by.kind else {
        return Err(bad("ORDER BY ALL"));
    };
    let [item] = &items[..] else {
        return Err(bad(format!(
            "ORDER BY of {} items (order by exactly one distance)",
            items.len()
        )));
    };
    match &item.options.sort {
        None | Some(ast::OrderBySort::Asc) => {}
        Some(ast::OrderBySort::Desc) => {
            return Err(bad(
                "ORDER BY … DESC (a vector index gives the nearest rows first: ascending only)",
            ))
        }
        Some(ast::OrderBySort::Using(_)) => return Err(bad("ORDER BY … USING")),
    }
    if item.options.nulls_first.is_some() || item.with_fill.is_some() {
        return Err(bad("NULLS FIRST/LAST or WITH FILL in ORDER BY"));
    }
    distance(&item.expr)?.ok_or_else(|| {
        bad(format!(
            "ORDER BY `{}` (order by a distance: col <-> | <=> | <#> <vector>)",
            excerpt(&item.expr.to_string(), 60)
        ))
    })
}

/// `e` as a distance `col <op> vector` (either way round), `None` if it has no distance
/// operator at its head.
fn distance(e: &ast::Expr) -> Result<Option<Distance>, CoreError> {
    let Some(metric) = metric_of(e) else {
        return Ok(None);
    };
    let ast::Expr::BinaryOp { left, right, .. } = unnest(e) else {
        unreachable!("metric_of matched a binary operator");
    };
    let (id, value) = match (unnest(left), unnest(right)) {
        (ast::Expr::Identifier(id), v) | (v, ast::Expr::Identifier(id)) => (id, v),
        _ => {
            return Err(bad(format!(
                "distance `{}` (one side names a VECTOR column, the other is a vector literal)",
                excerpt(&e.to_string(), 60)
            )))
        }
    };
    let (vector, cast_dim) = vector_literal(value)?;
    Ok(Some(Distance {
        column: ident(id, "column")?,
        metric,
        vector,
        cast_dim,
    }))
}

/// `'[…]'`, `ARRAY[…]`, either cast to `vector` or `vector(n)`.
fn vector_literal(e: &ast::Expr) -> Result<(VectorLiteral, Option<u32>), CoreError> {
    let not_vector = || {
        bad(format!(
            "vector `{}` (write '[1, 2, 3]', ARRAY[1, 2, 3] or '[1, 2, 3]'::vector)",
            excerpt(&e.to_string(), 60)
        ))
    };
    let (inner, cast_dim) = match e {
        ast::Expr::Cast {
            kind: ast::CastKind::DoubleColon | ast::CastKind::Cast,
            expr,
            data_type: ast::DataType::Custom(name, modifiers),
            format: None,
        } if name.to_string().eq_ignore_ascii_case("vector") => {
            let dim = match &modifiers[..] {
                [] => None,
                [ast::TypeModifier::Number(n, false)] => {
                    Some(n.parse::<u32>().map_err(|_| not_vector())?)
                }
                _ => return Err(not_vector()),
            };
            (&**expr, dim)
        }
        other => (other, None),
    };
    let literal = match inner {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => VectorLiteral::Text(s.clone()),
            _ => return Err(not_vector()),
        },
        ast::Expr::Array(a) => VectorLiteral::Array(a.elem.iter().map(array_component).collect()),
        _ => return Err(not_vector()),
    };
    Ok((literal, cast_dim))
}

/// `LIMIT k`: required, an integer literal, no OFFSET.
fn limit_k(limit: Option<ast::LimitClause>) -> Result<u64, CoreError> {
    let needs = "a kNN query needs LIMIT k (the number of nearest rows to return)";
    let (expr, offset, limit_by) = match limit {
        None => return Err(CoreError::InvalidArgument(needs.into())),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => (limit, offset, limit_by),
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => return Err(bad("LIMIT offset, k")),
    };
    if offset.is_some() || !limit_by.is_empty() {
        return Err(bad("OFFSET or LIMIT BY"));
    }
    let Some(expr) = expr else {
        return Err(CoreError::InvalidArgument(format!("LIMIT ALL: {needs}")));
    };
    match &expr {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, false) if n.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits only: a parse failure is an overflow, far above any k allowed.
                n.parse::<u64>().map_err(|_| {
                    CoreError::LimitExceeded(format!(
                        "k is {}, the limit is {}",
                        excerpt(n, 40),
                        tarn_vectors::MAX_K
                    ))
                })
            }
            _ => Err(bad(format!("LIMIT {expr} (k is an integer literal)"))),
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            ..
        } => Err(CoreError::InvalidArgument(format!(
            "LIMIT {expr}: k must be at least 1"
        ))),
        _ => Err(bad(format!(
            "LIMIT {} (k is an integer literal)",
            excerpt(&expr.to_string(), 40)
        ))),
    }
}

/// One select item: `*`, a bare column, or the ORDER BY distance with an optional alias.
fn select_item(item: &ast::SelectItem, order: &Distance) -> Result<KnnItem, CoreError> {
    let (e, alias) = match item {
        ast::SelectItem::Wildcard(opts) => {
            return if super::select::plain_wildcard(opts) {
                Ok(KnnItem::Star)
            } else {
                Err(bad("options of *"))
            }
        }
        ast::SelectItem::UnnamedExpr(e) => (e, None),
        ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
        other => {
            return Err(bad(format!(
                "select item `{}`",
                excerpt(&other.to_string(), 60)
            )))
        }
    };
    if let Some(d) = distance(e)? {
        if d.column != order.column || d.metric != order.metric {
            return Err(bad(format!(
                "select item `{}` (the select list may show the ORDER BY distance only: {} {} …)",
                excerpt(&e.to_string(), 60),
                order.column,
                order.metric.operator()
            )));
        }
        if d.vector != order.vector || d.cast_dim != order.cast_dim {
            return Err(bad(format!(
                "select item `{}` (its vector differs from the ORDER BY vector; write the same one)",
                excerpt(&e.to_string(), 60)
            )));
        }
        let name = match alias {
            Some(a) => ident(a, "column")?,
            None => DISTANCE_COLUMN.to_string(),
        };
        return Ok(KnnItem::Distance(name));
    }
    match (e, alias) {
        (ast::Expr::Identifier(id), None) => Ok(KnnItem::Column(ident(id, "column")?)),
        _ => Err(bad(format!(
            "select item `{}` (list *, bare column names and the distance [AS name])",
            excerpt(&item.to_string(), 60)
        ))),
    }
}

impl KnnSelect {
    /// Resolves the query against `catalog`: the table, its VECTOR column, the index (see
    /// [`choose_index`]), the vector at the index's dimension and the result columns.
    ///
    /// Errors: unknown table or column; a non-VECTOR column (`TYPE_MISMATCH`); no index
    /// for the column and metric (`UNSUPPORTED`, saying which CREATE INDEX would serve it); a
    /// bad vector (`BAD_VECTOR`, naming the column); a column listed twice, or the distance
    /// named like a listed column (`DUPLICATE_COLUMN`).
    pub fn plan<'c>(&self, catalog: &'c Catalog) -> Result<KnnPlan<'c>, CoreError> {
        let table = match catalog.object(&self.table) {
            None => return Err(CoreError::UnknownTable(self.table.clone())),
            Some(Object::Table(t)) => t,
            Some(other) => {
                return Err(CoreError::WrongKind {
                    name: self.table.clone(),
                    kind: other.kind(),
                    wanted: ObjectKind::Table,
                })
            }
        };
        let index = choose_index(catalog, table, &self.order)?;
        let vector = query_vector(&self.order, index, &self.order.column)?;
        assert_eq!(vector.len(), index.dim as usize, "the index's dimension");
        let (columns, outputs) = outputs(table, &self.items)?;
        Ok(KnnPlan {
            table,
            index,
            vector,
            filter: self.filter.clone(),
            columns,
            outputs,
            k: self.limit,
        })
    }
}

/// The index serving `d`: one over `d.column` whose metric is the operator's; of several, the
/// oldest (lowest id), so the choice is stable while indexes come and go.
pub fn choose_index<'c>(
    catalog: &'c Catalog,
    table: &TableDef,
    d: &Distance,
) -> Result<&'c IndexDef, CoreError> {
    let position = table
        .column_index(&d.column)
        .ok_or_else(|| CoreError::UnknownColumn {
            table: table.name.clone(),
            column: d.column.clone(),
        })?;
    let ty = table.columns[position].ty;
    if !matches!(ty, tarn_types::ColumnType::Vector(_)) {
        return Err(CoreError::NotAVectorColumn {
            table: table.name.clone(),
            column: d.column.clone(),
            got: ty,
        });
    }
    let on_column: Vec<&IndexDef> = catalog
        .indexes_of_table(table.id)
        .filter(|i| usize::from(i.column) == position)
        .collect();
    if let Some(i) = on_column.iter().find(|i| i.metric == d.metric) {
        return Ok(i);
    }
    let others: Vec<String> = on_column
        .iter()
        .map(|i| {
            format!(
                "{} has metric {} (operator {})",
                i.name,
                i.metric.name(),
                i.metric.operator()
            )
        })
        .collect();
    let metric = d.metric.name();
    Err(unsupported(format!(
        "no hnsw index on {}.{} with metric {metric} (needed by {}){}; CREATE INDEX <name> ON {} USING hnsw ({}) WITH (metric = '{metric}')",
        table.name,
        d.column,
        d.metric.operator(),
        if others.is_empty() {
            String::new()
        } else {
            format!(" ({})", others.join(", "))
        },
        table.name,
        d.column,
    )))
}

/// The query vector at the index's dimension (the VECTOR(n) rules of [`crate::vector`]).
fn query_vector(d: &Distance, index: &IndexDef, column: &str) -> Result<Vec<f32>, CoreError> {
    let bad_vector =
        |reason: String| vector::bad(None, Some(column), format!("query vector: {reason}"));
    if let Some(n) = d.cast_dim.filter(|&n| n != index.dim) {
        return Err(bad_vector(format!(
            "cast to vector({n}) but {column} is VECTOR({})",
            index.dim
        )));
    }
    let v = match &d.vector {
        VectorLiteral::Text(s) => vector::parse_text(s, index.dim),
        VectorLiteral::Array(items) => vector::from_components(items.iter().copied(), index.dim),
    }
    .map_err(bad_vector)?;
    Ok(v.into_vec())
}

/// The table columns to fetch (each once, in select-list order) and the result columns.
fn outputs(
    table: &TableDef,
    items: &[KnnItem],
) -> Result<(Vec<String>, Vec<KnnOutput>), CoreError> {
    let mut columns: Vec<String> = Vec::new();
    let mut outputs = Vec::with_capacity(items.len());
    let mut names: Vec<&str> = Vec::with_capacity(items.len());
    for item in items {
        match item {
            KnnItem::Star => {
                for c in &table.columns {
                    add_column(table, &c.name, &mut columns, &mut outputs)?;
                }
            }
            KnnItem::Column(c) => add_column(table, c, &mut columns, &mut outputs)?,
            KnnItem::Distance(name) => {
                names.push(name);
                outputs.push(KnnOutput::Distance(name.clone()));
            }
        }
    }
    // The result columns are named uniquely: a distance may not reuse a listed column's (or
    // another distance's) name.
    for (i, name) in names.iter().enumerate() {
        if columns.iter().any(|c| c == name) || names[..i].contains(name) {
            return Err(CoreError::DuplicateColumn {
                column: name.to_string(),
            });
        }
    }
    Ok((columns, outputs))
}

/// Adds table column `name` to the fetched columns and the result columns: it must exist and
/// be listed once.
fn add_column(
    table: &TableDef,
    name: &str,
    columns: &mut Vec<String>,
    outputs: &mut Vec<KnnOutput>,
) -> Result<(), CoreError> {
    if table.column_index(name).is_none() {
        return Err(CoreError::UnknownColumn {
            table: table.name.clone(),
            column: name.to_string(),
        });
    }
    if columns.iter().any(|c| c == name) {
        return Err(CoreError::DuplicateColumn {
            column: name.to_string(),
        });
    }
    outputs.push(KnnOutput::Column(columns.len()));
    columns.push(name.to_string());
    Ok(())
}
