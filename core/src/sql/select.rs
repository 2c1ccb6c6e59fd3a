//! `SELECT`: reads of a feature view or a table by key, and (dispatched to
//! [`super::knn_select`] when a distance operator heads an ORDER BY or select item) kNN
//! queries; and the pieces of a SELECT that view definitions share ([`SelectParts`], [`plain_select`], [`single_from`]).
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
//! (`DUPLICATE_COLUMN`). Keys are literals with the rules of [`crate::expr`] (an integer is a BIGINT value;
//! the server coerces it to the key's type); a `NULL` key is `NULL_KEY`.

use sqlparser::ast;
use tarn_types::Value;

use super::ident::{ident, object_name};
use super::literal::literal;
use super::{unsupported, Statement};
use crate::{excerpt, CoreError};

/// The parts of a plain SELECT that Tarn reads, and which other clauses it has.
pub(crate) struct SelectParts {
    pub(crate) distinct: bool,
    pub(crate) projection: Vec<ast::SelectItem>,
    pub(crate) from: Vec<ast::TableWithJoins>,
    pub(crate) selection: Option<ast::Expr>,
    pub(crate) group_by: ast::GroupByExpr,
    pub(crate) having: bool,
    /// A `WINDOW` clause.
    pub(crate) window: bool,
    pub(crate) qualify: bool,
    /// Any other clause (hints, TOP, INTO, LATERAL VIEW, CLUSTER/DISTRIBUTE/SORT BY, …).
    pub(crate) other: bool,
}

/// Takes a SELECT apart. The destructuring is exhaustive on purpose: a clause a newer
/// sqlparser adds fails to compile here instead of being silently ignored.
pub(crate) fn select_parts(select: ast::Select) -> SelectParts {
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

/// The parts of a query, and which other clauses it has. Destructured exhaustively, as
/// [`select_parts`] does.
pub(crate) struct QueryParts {
    pub(crate) with: bool,
    pub(crate) body: Box<ast::SetExpr>,
    pub(crate) order_by: Option<ast::OrderBy>,
    pub(crate) limit_clause: Option<ast::LimitClause>,
    pub(crate) fetch: bool,
    /// Locks, FOR, SETTINGS, FORMAT or pipe operators.
    pub(crate) other: bool,
}

/// Takes a query apart.
pub(crate) fn query_parts(query: ast::Query) -> QueryParts {
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
    QueryParts {
        with: with.is_some(),
        body,
        order_by,
        limit_clause,
        fetch: fetch.is_some(),
        other: !locks.is_empty()
            || for_clause.is_some()
            || settings.is_some()
            || format_clause.is_some()
            || !pipe_operators.is_empty(),
    }
}

/// The `SELECT` of a query that has nothing else (no CTE, ORDER BY, LIMIT, set operation…).
pub(crate) fn plain_select(query: ast::Query, what: &str) -> Result<ast::Select, CoreError> {
    let QueryParts {
        with,
        body,
        order_by,
        limit_clause,
        fetch,
        other,
    } = query_parts(query);
    let clause = |c: &str| unsupported(format!("{c} in {what}"));
    if with {
        return Err(clause("WITH (common table expressions)"));
    }
    if order_by.is_some() {
        return Err(clause("ORDER BY"));
    }
    if limit_clause.is_some() || fetch {
        return Err(clause("LIMIT/OFFSET/FETCH"));
    }
    if other {
        return Err(clause("query clauses"));
    }
    match *body {
        ast::SetExpr::Select(s) => Ok(*s),
        ast::SetExpr::SetOperation { op, .. } => Err(clause(&format!("{op}"))),
        other => Err(unsupported(format!(
            "`{}` in {what} (expected SELECT … FROM …)",
            excerpt(&other.to_string(), 60)
        ))),
    }
}

/// The one plain `FROM name` of a query.
pub(crate) fn single_from(from: Vec<ast::TableWithJoins>, what: &str) -> Result<String, CoreError> {
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
            object_name(&name, "stream")
        }
        other => Err(unsupported(format!(
            "FROM `{}` in {what} (name one stream, without alias or modifiers)",
            excerpt(&other.to_string(), 60)
        ))),
    }
}

/// The accepted forms of a read, for messages.
const READ_FORM: &str = "reads of views take SELECT * | col, … FROM view WHERE <key> = <literal> or WHERE <key> IN (<literal>, …)";

/// Lowers a `SELECT` statement: only reads of a feature view by key (called by
/// [`super::parse`]). Rejections are `UNSUPPORTED`, quote the statement and say which
/// reads are accepted.
pub(crate) fn lower_select(query: ast::Query) -> Result<Statement, CoreError> {
    if super::knn_select::is_knn(&query) {
        return super::knn_select::lower_knn_select(query);
    }
    let text = excerpt(&query.to_string(), 80);
    lower_select_inner(query).map_err(|e| match e {
        CoreError::Unsupported(m) => unsupported(format!("statement `{text}`: {m}")),
        other => other,
    })
}

/// The select list, FROM and WHERE of a query that reads (by key, or kNN).
pub(crate) struct ReadParts {
    pub(crate) projection: Vec<ast::SelectItem>,
    pub(crate) from: Vec<ast::TableWithJoins>,
    pub(crate) selection: Option<ast::Expr>,
}

/// Takes a reading SELECT apart: DISTINCT, GROUP BY/HAVING and every clause but `allowed`
/// (named in the message) are refused with `bad`.
pub(crate) fn read_parts(
    select: ast::Select,
    bad: &dyn Fn(&str) -> CoreError,
    allowed: &str,
) -> Result<ReadParts, CoreError> {
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
        return Err(bad(&format!("clauses other than {allowed}")));
    }
    Ok(ReadParts {
        projection,
        from,
        selection,
    })
}

/// `{m} in a SELECT; {READ_FORM}`.
fn bad(m: &str) -> CoreError {
    unsupported(format!("{m} in a SELECT; {READ_FORM}"))
}

fn lower_select_inner(query: ast::Query) -> Result<Statement, CoreError> {
    let what = "a SELECT";
    let with_form = |e: CoreError| match e {
        CoreError::Unsupported(m) => unsupported(format!("{m}; {READ_FORM}")),
        other => other,
    };
    let select = plain_select(query, what).map_err(with_form)?;
    let ReadParts {
        projection,
        from,
        selection,
    } = read_parts(select, &bad, "SELECT, FROM and WHERE")?;
    let view = single_from(from, what).map_err(with_form)?;
    let columns = read_columns(&projection)?;
    let Some(cond) = selection.as_ref() else {
        return Err(bad("a read without WHERE"));
    };
    let (key_column, keys) = read_keys(cond)?;
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

/// The select list of a read: `*` (`None`) or bare column names, each once.
fn read_columns(projection: &[ast::SelectItem]) -> Result<Option<Vec<String>>, CoreError> {
    match projection {
        [ast::SelectItem::Wildcard(opts)] => {
            if !plain_wildcard(opts) {
                return Err(bad("options of *"));
            }
            Ok(None)
        }
        items => {
            let mut cols: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let ast::SelectItem::UnnamedExpr(ast::Expr::Identifier(id)) = item else {
                    return Err(bad(&format!(
                        "select item `{}` (list bare column names or *)",
                        excerpt(&item.to_string(), 60)
                    )));
                };
                let c = ident(id, "column")?;
                if cols.contains(&c) {
                    return Err(CoreError::DuplicateColumn { column: c });
                }
                cols.push(c);
            }
            Ok(Some(cols))
        }
    }
}

/// True for a `*` without options (ILIKE, EXCLUDE, EXCEPT, REPLACE, RENAME, AS).
pub(crate) fn plain_wildcard(opts: &ast::WildcardAdditionalOptions) -> bool {
    let ast::WildcardAdditionalOptions {
        wildcard_token: _,
        opt_ilike,
        opt_exclude,
        opt_except,
        opt_replace,
        opt_rename,
        opt_alias,
    } = opts;
    opt_ilike.is_none()
        && opt_exclude.is_none()
        && opt_except.is_none()
        && opt_replace.is_none()
        && opt_rename.is_none()
        && opt_alias.is_none()
}

/// The WHERE of a read: `key = literal` (either way round) or `key IN (literal, …)`.
fn read_keys(mut cond: &ast::Expr) -> Result<(String, Vec<Value>), CoreError> {
    while let ast::Expr::Nested(inner) = cond {
        cond = inner;
    }
    let key_lit = |e: &ast::Expr| -> Result<Value, CoreError> {
        match literal(e) {
            Some(v) => v,
            None => Err(bad(&format!(
                "key `{}` (keys are literals)",
                excerpt(&e.to_string(), 60)
            ))),
        }
    };
    let bad_where = || bad(&format!("WHERE `{}`", excerpt(&cond.to_string(), 60)));
    match cond {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq,
            right,
        } => match (&**left, &**right) {
            (ast::Expr::Identifier(id), lit) | (lit, ast::Expr::Identifier(id))
                if literal(lit).is_some() =>
            {
                Ok((ident(id, "column")?, vec![key_lit(lit)?]))
            }
            _ => Err(bad_where()),
        },
        ast::Expr::In {
            expr,
            target: ast::InTarget::List(list),
            negated: false,
            global: false,
        } => match &**expr {
            ast::Expr::Identifier(id) => Ok((
                ident(id, "column")?,
                list.iter().map(key_lit).collect::<Result<Vec<_>, _>>()?,
            )),
            _ => Err(bad_where()),
        },
        _ => Err(bad_where()),
    }
}
