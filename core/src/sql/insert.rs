//! `INSERT INTO t [(col, …)] VALUES (…), (…)`: rows of literals for a table, written as an
//! upsert that replaces whole rows (Tarn has no separate insert: a row with an existing key
//! replaces it, as `UPSERT` mode Replace does).
//!
//! Values are the literals of [`super::literal`] plus vector literals for `VECTOR(n)`
//! columns: the text form `'[1, 2.5, -3]'` and `ARRAY[1, 2.5, -3]` (components are numeric
//! literals, optionally signed). Which literal a column gets is decided against the table in
//! [`resolve_insert`], when the server knows the catalog.

use sqlparser::ast;
use tarn_types::{ColumnType, Value};

use super::ident::{ident, object_name};
use super::literal::literal;
use super::{unsupported, Statement};
use crate::schema::TableDef;
use crate::vector::{self, Component};
use crate::{excerpt, CoreError};

/// One value of an INSERT row, before it is matched with its column's type.
#[derive(Clone, Debug, PartialEq)]
pub enum InsertValue {
    /// A plain literal (a `'…'` text may still become a vector for a VECTOR column).
    Literal(Value),
    /// `ARRAY[…]`: its components as written.
    Array(Vec<Component>),
}

/// Lowers `INSERT` (called by [`super::parse`]): only `INSERT INTO name [(cols)] VALUES …`.
pub(crate) fn lower_insert(ins: ast::Insert) -> Result<Statement, CoreError> {
    let extra = ins.or.is_some()
        || ins.ignore
        || ins.table_alias.is_some()
        || ins.overwrite
        || !ins.assignments.is_empty()
        || ins.partitioned.is_some()
        || !ins.after_columns.is_empty()
        || ins.overriding.is_some()
        || ins.on.is_some()
        || ins.returning.is_some()
        || ins.output.is_some()
        || ins.replace_into
        || ins.priority.is_some()
        || ins.insert_alias.is_some()
        || ins.settings.is_some()
        || ins.format_clause.is_some()
        || ins.by_name
        || !ins.optimizer_hints.is_empty();
    if extra {
        return Err(unsupported(
            "INSERT clauses (supported: INSERT INTO t [(col, …)] VALUES (…), …)",
        ));
    }
    let ast::TableObject::TableName(name) = &ins.table else {
        return Err(unsupported("INSERT into a table function"));
    };
    let table = object_name(name, "table")?;
    let columns = insert_columns(&ins.columns)?;
    let Some(source) = ins.source else {
        return Err(unsupported("INSERT without VALUES"));
    };
    let rows = insert_rows(*source)?;
    Ok(Statement::Insert {
        table,
        columns,
        rows,
    })
}

fn insert_columns(cols: &[ast::ObjectName]) -> Result<Option<Vec<String>>, CoreError> {
    if cols.is_empty() {
        return Ok(None);
    }
    let mut out: Vec<String> = Vec::with_capacity(cols.len());
    for c in cols {
        let [ast::ObjectNamePart::Identifier(id)] = c.0.as_slice() else {
            return Err(unsupported(format!(
                "INSERT column `{c}` (bare column names)"
            )));
        };
        let name = ident(id, "column")?;
        if out.contains(&name) {
            return Err(CoreError::DuplicateColumn { column: name });
        }
        out.push(name);
    }
    Ok(Some(out))
}

fn insert_rows(q: ast::Query) -> Result<Vec<Vec<InsertValue>>, CoreError> {
    let ast::SetExpr::Values(values) = *q.body else {
        return Err(unsupported(format!(
            "INSERT source `{}` (only VALUES (…), …)",
            excerpt(&q.body.to_string(), 60)
        )));
    };
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() {
        return Err(unsupported("INSERT … VALUES with WITH, ORDER BY or LIMIT"));
    }
    values
        .rows
        .iter()
        .map(|row| row.content.iter().map(insert_value).collect())
        .collect()
}

fn insert_value(e: &ast::Expr) -> Result<InsertValue, CoreError> {
    if let ast::Expr::Array(a) = e {
        return Ok(InsertValue::Array(
            a.elem.iter().map(array_component).collect(),
        ));
    }
    match literal(e) {
        Some(v) => Ok(InsertValue::Literal(v?)),
        None => Err(unsupported(format!(
            "INSERT value `{}` (values are literals; vectors are '[1,2,3]' or ARRAY[1,2,3])",
            excerpt(&e.to_string(), 60)
        ))),
    }
}

/// One `ARRAY[…]` element: a numeric literal (optionally signed), or what it is instead.
fn array_component(e: &ast::Expr) -> Component {
    let (negative, inner) = match e {
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => (true, &**expr),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Plus,
            expr,
        } => (false, &**expr),
        other => (false, other),
    };
    match inner {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(s, false) => {
                let text = if negative { format!("-{s}") } else { s.clone() };
                vector::text_component(&text)
            }
            ast::Value::Null => Component::Other("NULL"),
            ast::Value::SingleQuotedString(_) => Component::Other("a string"),
            ast::Value::Boolean(_) => Component::Other("a boolean"),
            _ => Component::Other("a non-numeric literal"),
        },
        _ => Component::Other("an expression"),
    }
}

/// The rows of an INSERT as upsert values for `def`: the column list (all columns in table
/// order when none was given) and one value per listed column. Vector literals become
/// vectors for VECTOR columns (errors name the 0-based row, the column and the component).
/// Unknown columns and rows of the wrong length are refused here (their values cannot be
/// typed); every other check (types, key) is [`crate::batch::validate_upsert`]'s.
pub fn resolve_insert(
    def: &TableDef,
    columns: Option<Vec<String>>,
    rows: Vec<Vec<InsertValue>>,
) -> Result<(Vec<String>, Vec<Vec<Value>>), CoreError> {
    let columns = columns.unwrap_or_else(|| def.columns.iter().map(|c| c.name.clone()).collect());
    let types = columns
        .iter()
        .map(|n| {
            def.column_index(n)
                .map(|i| def.columns[i].ty)
                .ok_or_else(|| CoreError::UnknownColumn {
                    table: def.name.clone(),
                    column: n.clone(),
                })
        })
        .collect::<Result<Vec<ColumnType>, CoreError>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, row) in rows.into_iter().enumerate() {
        if row.len() != columns.len() {
            return Err(CoreError::RowArity {
                row: Some(r),
                expected: columns.len(),
                got: row.len(),
            });
        }
        let mut vals = Vec::with_capacity(row.len());
        for ((v, ty), name) in row.into_iter().zip(&types).zip(&columns) {
            vals.push(insert_cell(r, name, *ty, v)?);
        }
        out.push(vals);
    }
    Ok((columns, out))
}

fn insert_cell(
    row: usize,
    column: &str,
    ty: ColumnType,
    v: InsertValue,
) -> Result<Value, CoreError> {
    let bad = |reason: String| vector::bad(Some(row), Some(column), reason);
    match (ty, v) {
        (ColumnType::Vector(dim), InsertValue::Literal(Value::Text(s))) => {
            Ok(Value::Vector(vector::parse_text(&s, dim).map_err(bad)?))
        }
        (ColumnType::Vector(dim), InsertValue::Array(items)) => Ok(Value::Vector(
            vector::from_components(items.into_iter(), dim).map_err(bad)?,
        )),
        (ty, InsertValue::Array(items)) => Err(CoreError::TypeMismatch {
            row: Some(row),
            column: Some(column.to_string()),
            expected: ty,
            got: ColumnType::Vector(items.len() as u32),
        }),
        (_, InsertValue::Literal(v)) => Ok(v),
    }
}
