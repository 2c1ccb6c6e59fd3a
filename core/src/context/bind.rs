//! Binding a call: parameters checked against the declaration, and each item's keys computed
//! from the parameters and the results of the items it refers to.

use tarn_types::{ColumnType, Value};

use super::{ContextDef, Operand, MAX_CONTEXT_FANOUT_KEYS};
use crate::schema::ColumnDef;
use crate::CoreError;

/// One key's result within an item: the key and its rows (a `row` or `features` item has
/// exactly one row; a missing table row is a row of NULLs).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultGroup {
    /// The key this group answers.
    pub key: Value,
    /// Its rows, each with one value per reply column of the item.
    pub rows: Vec<Vec<Value>>,
}

/// An item's result: one group per key, in key order (empty when the item had no key).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemResult {
    /// The groups.
    pub groups: Vec<ResultGroup>,
}

impl ItemResult {
    /// Rows over all groups.
    pub fn row_count(&self) -> usize {
        self.groups.iter().map(|g| g.rows.len()).sum()
    }
}

/// The call's parameter values, in declaration order: each declared parameter exactly once
/// (`MissingValue` naming it when absent; NULL is allowed and gives its items no key), of its
/// type (with the upsert coercions: an integer for a TIMESTAMP or DOUBLE); an unknown or
/// repeated name is `InvalidArgument`.
pub fn bind_params(def: &ContextDef, given: &[(String, Value)]) -> Result<Vec<Value>, CoreError> {
    let mut out: Vec<Option<Value>> = vec![None; def.params.len()];
    for (name, v) in given {
        let Some(n) = def.params.iter().position(|p| p.name == *name) else {
            let names: Vec<&str> = def.params.iter().map(|p| p.name.as_str()).collect();
            return Err(CoreError::InvalidArgument(if def.params.is_empty() {
                format!("context {} takes no parameters, got {name}", shown(def))
            } else {
                format!(
                    "context {} has no parameter {name} (its parameters: {})",
                    shown(def),
                    names.join(", ")
                )
            }));
        };
        if out[n].is_some() {
            return Err(CoreError::InvalidArgument(format!(
                "parameter {name} given twice"
            )));
        }
        out[n] = Some(param_value(&def.params[n], v)?);
    }
    out.into_iter()
        .zip(&def.params)
        .map(|(v, p)| {
            v.ok_or_else(|| CoreError::MissingValue {
                row: None,
                column: Some(p.name.clone()),
            })
        })
        .collect()
}

fn shown(def: &ContextDef) -> &str {
    if def.name.is_empty() {
        "(ad hoc)"
    } else {
        &def.name
    }
}

fn param_value(p: &ColumnDef, v: &Value) -> Result<Value, CoreError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match crate::batch::check_value(p, 0, v) {
        Ok(Some(coerced)) => Ok(coerced),
        Ok(None) => Ok(v.clone()),
        Err(CoreError::TypeMismatch { expected, got, .. }) => Err(CoreError::TypeMismatch {
            row: None,
            column: Some(p.name.clone()),
            expected,
            got,
        }),
        Err(e) => Err(e),
    }
}

/// The keys of item `i`: a constant or a parameter gives one key (none for a NULL
/// parameter); a reference gives the distinct non-NULL values of the column over the
/// referred item's rows, in order of first appearance — at most one for a single item, at
/// most [`MAX_CONTEXT_FANOUT_KEYS`] for a list item (more is `LimitExceeded` naming the item).
///
/// Panics if a referred item has no result yet: the phases guarantee it has.
pub fn item_keys(
    def: &ContextDef,
    i: usize,
    params: &[Value],
    results: &[Option<ItemResult>],
) -> Result<Vec<Value>, CoreError> {
    operand_values(def, i, &def.items[i].key, params, results)
}

/// The values of operand `op` of item `i` (see [`item_keys`]).
pub fn operand_values(
    def: &ContextDef,
    i: usize,
    op: &Operand,
    params: &[Value],
    results: &[Option<ItemResult>],
) -> Result<Vec<Value>, CoreError> {
    assert_eq!(params.len(), def.params.len(), "parameters bound");
    let item = &def.items[i];
    Ok(match op {
        Operand::Const(v) => vec![v.clone()],
        Operand::Param(n) if params[*n].is_null() => Vec::new(),
        Operand::Param(n) => vec![params[*n].clone()],
        Operand::Ref { item: r, column } => {
            let res = results[*r]
                .as_ref()
                .expect("a referred item is answered in an earlier phase");
            let mut out: Vec<Value> = Vec::new();
            let vectors = matches!(def.items[*r].columns[*column].ty, ColumnType::Vector(_));
            for v in res
                .groups
                .iter()
                .flat_map(|g| g.rows.iter().map(|row| &row[*column]))
            {
                if v.is_null() || (!vectors && out.contains(v)) {
                    continue;
                }
                if out.len() == MAX_CONTEXT_FANOUT_KEYS {
                    return Err(CoreError::LimitExceeded(format!(
                        "context item {} fans out to more than {MAX_CONTEXT_FANOUT_KEYS} keys of {}.{}",
                        item.name, def.items[*r].name, def.items[*r].columns[*column].name
                    )));
                }
                out.push(v.clone());
            }
            assert!(
                item.list || out.len() <= 1,
                "a single item's reference has one value at most"
            );
            out
        }
    })
}
