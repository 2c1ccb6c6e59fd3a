//! `CREATE MATERIALIZED VIEW` and `DROP MATERIALIZED VIEW`: feature views over a stream
//! ([`crate::view`] says what a view is; its conditions are [`crate::expr`]'s language).
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
//! | `bucket` | required for a sliding window, forbidden with `'lifetime'`: the bucket width; the window must be a whole multiple of it (window ≥ bucket) and hold at most [`MAX_WINDOW_BUCKETS`](crate::view::MAX_WINDOW_BUCKETS) (4,096) buckets |
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
//!   [`MAX_VIEW_AGGREGATES`](crate::view::MAX_VIEW_AGGREGATES) (64) aggregates.
//! - Aggregate arguments are bare column names of the stream (no expressions, no constants).
//!   `count(DISTINCT col)` is the only DISTINCT allowed.
//! - Rejected with `UNSUPPORTED`: `CREATE VIEW` without MATERIALIZED, `OR REPLACE`, TEMPORARY, a
//!   column list after the view name, `IF NOT EXISTS` after the name, WITH (CTE), DISTINCT on the
//!   select, `*`, ORDER BY, LIMIT/OFFSET/FETCH, HAVING, WINDOW, QUALIFY, UNION/EXCEPT/INTERSECT,
//!   several GROUP BY expressions or GROUP BY modifiers, window functions (`OVER`), `WITHIN
//!   GROUP`, clauses inside an aggregate's parentheses (ORDER BY, IGNORE NULLS, …), `ALL`,
//!   qualified names (`s.col`, `schema.view`), and every other clause the parser accepts.
//!
//! **Aggregates**: `count(*)`, `count(col)`, `count(DISTINCT col)`, `sum`, `min`, `max`, `avg`,
//! `variance` (= `var_samp`), `stddev` (= `stddev_samp`), `var_pop`, `stddev_pop`, `first`,
//! `last`; their input and result types are in [`crate::view`]. Function names fold to lower case like identifiers. The exact numeric semantics are those of
//! the aggregate kernels (`tarn-features`).
//!
//! **Output names.** An aggregate without `AS` is named `count` for `count(*)`,
//! `count_distinct_<col>` for `count(DISTINCT col)`, and `<function>_<col>` otherwise
//! (`sum_amount`, `count_account_id`, `avg_amount`; the function part is the canonical name, so
//! `var_samp(x)` is `variance_x` and `stddev_samp(x)` is `stddev_x`). Output names (the key's
//! included) must be unique (`DUPLICATE_COLUMN`: e.g. two unaliased `sum(amount)`), and at most
//! 64 bytes (`LIMIT_EXCEEDED`; a default name that is too long asks for an alias).
//!
//! # DROP MATERIALIZED VIEW
//!
//! `DROP MATERIALIZED VIEW [IF EXISTS] name`: one view per statement, no CASCADE/RESTRICT.

use sqlparser::ast;

use super::expr::lower_condition;
use super::ident::{ident, object_name};
use super::select::{plain_select, select_parts, single_from, SelectParts};
use super::{unsupported, Statement};
use crate::view::{
    AggFunc, ViewAgg, ViewDef, ViewSpec, WindowSpec, MAX_VIEW_AGGREGATES, MAX_WINDOW_BUCKETS,
};
use crate::{excerpt, CoreError, MAX_IDENTIFIER_BYTES};

/// Lowers `CREATE [MATERIALIZED] VIEW` (called by [`super::parse`]).
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
    let name = object_name(&name, "view")?;
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

/// The `WITH (window = …, bucket = …)` of a view.
fn view_window(view: &str, options: ast::CreateTableOptions) -> Result<WindowSpec, CoreError> {
    let (window, bucket) = view_options(options)?;
    window_spec(view, window, bucket)
}

/// The texts of the `window` and `bucket` options (each quoted, at most once; no others).
fn view_options(
    options: ast::CreateTableOptions,
) -> Result<(Option<String>, Option<String>), CoreError> {
    let opts = match options {
        ast::CreateTableOptions::None => Vec::new(),
        ast::CreateTableOptions::With(o) => o,
        other => {
            return Err(unsupported(format!(
                "view options `{}` (write WITH (window = '…', bucket = '…'))",
                excerpt(&other.to_string(), 80)
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
                excerpt(&o.to_string(), 60)
            )));
        };
        let k = key.to_string().to_ascii_lowercase();
        let slot = match k.as_str() {
            "window" => &mut window,
            "bucket" => &mut bucket,
            other => {
                return Err(unsupported(format!(
                    "view option \"{}\" (supported: window, bucket)",
                    excerpt(other, 40)
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
    Ok((window, bucket))
}

/// The window of `view` from its option texts.
fn window_spec(
    view: &str,
    window: Option<String>,
    bucket: Option<String>,
) -> Result<WindowSpec, CoreError> {
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
            excerpt(&w, 40)
        )));
    };
    let bucket_us =
        crate::duration::parse_duration_us(&b).map_err(|e| unsupported(format!("bucket: {e}")))?;
    if window_us % bucket_us != 0 {
        return Err(unsupported(format!(
            "window '{}' is not a whole multiple of bucket '{}'",
            excerpt(&w, 40),
            excerpt(&b, 40)
        )));
    }
    let n = window_us / bucket_us;
    if n > MAX_WINDOW_BUCKETS {
        return Err(CoreError::LimitExceeded(format!(
            "window '{}' / bucket '{}' is {n} buckets, the limit is {MAX_WINDOW_BUCKETS} (use a wider bucket)",
            excerpt(&w, 40),
            excerpt(&b, 40)
        )));
    }
    Ok(WindowSpec::Sliding {
        window_us,
        bucket_us,
    })
}

/// The query of a view, as far as it can be checked without the stream.
fn lower_view_query(
    name: String,
    window: WindowSpec,
    query: ast::Query,
) -> Result<ViewSpec, CoreError> {
    let what = format!("materialized view \"{name}\"");
    let select = plain_select(query, &what)?;
    let parts = select_parts(select);
    refuse_view_clauses(&name, &parts)?;
    let SelectParts {
        projection,
        from,
        selection,
        group_by,
        ..
    } = parts;
    let stream = single_from(from, &what)?;
    let key_column = group_by_key(&name, &group_by)?;
    let (key_name, aggregates) = view_items(&name, &key_column, &projection)?;
    let filter = match &selection {
        Some(e) => Some(lower_condition(e, "WHERE")?),
        None => None,
    };
    Ok(ViewDef {
        id: 0,
        name,
        stream_id: 0,
        stream,
        key_column,
        key_name,
        window,
        filter,
        aggregates,
        created_version: 0,
    })
}

/// A view's query has SELECT, FROM, WHERE and GROUP BY only.
fn refuse_view_clauses(name: &str, parts: &SelectParts) -> Result<(), CoreError> {
    let clause = |what: &str| {
        Err(unsupported(format!(
            "{what} in materialized view \"{name}\" (the query is SELECT key, aggregates FROM stream [WHERE …] GROUP BY key)"
        )))
    };
    if parts.distinct {
        return clause("SELECT DISTINCT");
    }
    if parts.having {
        return clause("HAVING");
    }
    if parts.window {
        return clause("WINDOW");
    }
    if parts.qualify {
        return clause("QUALIFY");
    }
    if parts.other {
        return clause("a clause other than SELECT, FROM, WHERE and GROUP BY");
    }
    Ok(())
}

/// GROUP BY: exactly one bare column, the view's key.
fn group_by_key(name: &str, group_by: &ast::GroupByExpr) -> Result<String, CoreError> {
    match group_by {
        ast::GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => match exprs.as_slice() {
            [ast::Expr::Identifier(id)] => ident(id, "column"),
            [] => Err(unsupported(format!(
                "materialized view \"{name}\" without GROUP BY <column> (a view is keyed by one stream column)"
            ))),
            [one] => Err(unsupported(format!(
                "GROUP BY `{}` in materialized view \"{name}\": group by one bare column name",
                excerpt(&one.to_string(), 60)
            ))),
            _ => Err(unsupported(format!(
                "GROUP BY several expressions in materialized view \"{name}\" (exactly one column: composite keys are not supported)"
            ))),
        },
        other => Err(unsupported(format!(
            "`{}` in materialized view \"{name}\" (write GROUP BY <column>)",
            excerpt(&other.to_string(), 60)
        ))),
    }
}

/// The select list: the key column exactly once (its output name) and 1..=64 aggregates with
/// unique output names.
fn view_items(
    name: &str,
    key_column: &str,
    projection: &[ast::SelectItem],
) -> Result<(String, Vec<ViewAgg<String>>), CoreError> {
    let mut key_name: Option<String> = None;
    let mut aggregates: Vec<ViewAgg<String>> = Vec::new();
    for item in projection {
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
                    excerpt(&other.to_string(), 60)
                )))
            }
        };
        let alias = alias.map(|a| ident(a, "column")).transpose()?;
        match expr {
            ast::Expr::Identifier(id) => {
                let col = ident(id, "column")?;
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
                aggregates.push(lower_aggregate(f, alias)?);
            }
            other => {
                return Err(unsupported(format!(
                    "select item `{}` in materialized view \"{name}\": items are the GROUP BY column and aggregate calls over bare columns",
                    excerpt(&other.to_string(), 60)
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
    Ok((key_name, aggregates))
}

/// One aggregate call of the select list, with its alias.
fn lower_aggregate(f: &ast::Function, alias: Option<String>) -> Result<ViewAgg<String>, CoreError> {
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
    let fname = object_name(name, "function")?;
    let call = || excerpt(&f.to_string(), 60);
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
    let (distinct, input) = aggregate_argument(&fname, args, &call())?;
    let func = aggregate_func(base, distinct, input.is_some(), &fname, &call())?;
    let name = match alias {
        Some(a) => a,
        None => {
            let n = func.default_name(input.as_deref());
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
        Some(e) => Some(lower_condition(e, &format!("FILTER of \"{name}\""))?),
        None => None,
    };
    Ok(ViewAgg {
        name,
        func,
        input,
        filter,
    })
}

/// The parenthesized argument of aggregate `fname` (`call` quotes it in messages): whether it
/// is `DISTINCT`, and its column (`None` for `*`).
fn aggregate_argument(
    fname: &str,
    args: &ast::FunctionArguments,
    call: &str,
) -> Result<(bool, Option<String>), CoreError> {
    let ast::FunctionArguments::List(list) = args else {
        return Err(unsupported(format!(
            "`{call}`: an aggregate takes one column in parentheses"
        )));
    };
    if !list.clauses.is_empty() {
        return Err(unsupported(format!(
            "clauses inside the parentheses of `{call}` (ORDER BY, IGNORE NULLS, …)"
        )));
    }
    let distinct = match list.duplicate_treatment {
        None => false,
        Some(ast::DuplicateTreatment::Distinct) => true,
        Some(ast::DuplicateTreatment::All) => {
            return Err(unsupported(format!("ALL in `{call}` (write {fname}(col))")))
        }
    };
    let [arg] = list.args.as_slice() else {
        return Err(unsupported(format!(
            "`{call}`: {fname}() takes exactly one argument, got {}",
            list.args.len()
        )));
    };
    let input = match arg {
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => None,
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Identifier(id))) => {
            Some(ident(id, "column")?)
        }
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
            return Err(unsupported(format!(
                "argument `{}` of {fname}(): aggregate arguments must be bare column names (expressions are not supported)",
                excerpt(&e.to_string(), 60)
            )))
        }
        other => {
            return Err(unsupported(format!(
                "argument `{}` of {fname}(): aggregate arguments must be bare column names",
                excerpt(&other.to_string(), 60)
            )))
        }
    };
    Ok((distinct, input))
}

/// The aggregate `base(…)` is with `DISTINCT` and a column or `*`.
fn aggregate_func(
    base: AggFunc,
    distinct: bool,
    has_input: bool,
    fname: &str,
    call: &str,
) -> Result<AggFunc, CoreError> {
    Ok(match (base, distinct, has_input) {
        (AggFunc::Count, false, false) => AggFunc::CountStar,
        (AggFunc::Count, true, true) => AggFunc::CountDistinct,
        (_, true, false) => return Err(unsupported(format!("`{call}` (DISTINCT needs a column)"))),
        (_, false, false) => {
            return Err(unsupported(format!(
                "{fname}(*) (only count(*) takes *; name a column)"
            )))
        }
        (_, true, true) => {
            return Err(unsupported(format!(
                "DISTINCT in `{call}` (only count(DISTINCT col) is supported)"
            )))
        }
        (f, false, true) => f,
    })
}
