//! Models in the catalog: `CREATE MODEL … ON CONTEXT … USING logistic_regression |
//! linear_regression` (syntax in [`crate::sql::model`]) planned against the catalog into a
//! [`ModelDef`], like a context is planned into a [`crate::context::ContextDef`].
//!
//! Two stages, each pure:
//! - **parse** (`crate::sql::model`): text → [`ModelSpec`] (names and numbers as written,
//!   options not yet checked);
//! - **plan** ([`plan`]): the spec resolved against the catalog → [`ModelDef`]. The context
//!   must exist; each input `item.column` must name an item of it and one of that item's
//!   reply columns; the item must be *single* (a `row` or `features` item that is not a list
//!   item: one value per call) and the column BIGINT, DOUBLE or BOOLEAN (FALSE is 0, TRUE is
//!   1); inputs are unique; option names are known and none is repeated; every tuple has one
//!   value per input; then [`tarn_models::LinearModel::new`] checks the numbers (finite,
//!   `std > 0`, …), its message kept in the error. A model is planned once, at `CREATE MODEL`,
//!   and again when the catalog file is loaded (from its stored text, like a context): its
//!   context cannot be dropped while it exists.
//!
//! Defaults: `impute` 0, `mean` 0, `std` 1 for every input, no `log1p`; `threshold` 0.5 for
//! logistic regression and none for linear regression (no decision, only a score).
//!
//! Absent (later steps of issue 10): scoring from a request (DECIDE), training, versions
//! beyond 1, and XGBoost tree ensembles through SQL (a model's JSON is ~1 MB, beyond
//! `MAX_SQL_BYTES`: it needs an import opcode).

use tarn_models::{LinearInput, LinearKind, LinearModel};
use tarn_types::ColumnType;

use crate::catalog::{Catalog, Object, ObjectKind};
use crate::context::{ContextDef, Source};
use crate::CoreError;

/// The decision threshold of a logistic model created without one.
pub const DEFAULT_LOGISTIC_THRESHOLD: f64 = 0.5;

/// The option names `WITH (…)` accepts.
pub const MODEL_OPTIONS: &[&str] = &[
    "weights",
    "intercept",
    "impute",
    "mean",
    "std",
    "log1p",
    "threshold",
];

/// A model as written: names not yet resolved, options not yet checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The model's name.
    pub name: String,
    /// The context it reads its inputs from.
    pub context: String,
    /// The inputs as `(item, column)`, in order.
    pub inputs: Vec<(String, String)>,
    /// `logistic_regression` or `linear_regression`.
    pub kind: LinearKind,
    /// The `WITH (…)` options in the order written (names lower-case).
    pub options: Vec<(String, OptionValue)>,
}

/// The value of one `WITH` option, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// One number (`intercept = -1.5`).
    Number(f64),
    /// A parenthesised list of numbers (`weights = (0.5, -2)`); one number in parentheses is a
    /// list of one.
    Numbers(Vec<f64>),
    /// A parenthesised list of `item.column` names (`log1p = (card.spend)`).
    Names(Vec<(String, String)>),
}

impl OptionValue {
    fn what(&self) -> &'static str {
        match self {
            OptionValue::Number(_) => "a number",
            OptionValue::Numbers(_) => "a list of numbers",
            OptionValue::Names(_) => "a list of item.column names",
        }
    }
}

/// One planned input of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInput {
    /// `item.column`, the input's name in the model.
    pub name: String,
    /// The item's index in the context.
    pub item: usize,
    /// The reply column's index in that item.
    pub column: usize,
    /// The column's type (BIGINT, DOUBLE or BOOLEAN).
    pub ty: ColumnType,
}

/// A planned model: what the catalog stores.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDef {
    /// Catalog id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// The catalog id of the context its inputs come from (it cannot be dropped while the
    /// model exists).
    pub context_id: u32,
    /// The inputs, in the model's order.
    pub inputs: Vec<ModelInput>,
    /// The validated model (its input names are the inputs' `item.column` names).
    pub model: LinearModel,
    /// The decision rule `score >= threshold`; `None`: no decision (a linear model created
    /// without one). Finite.
    pub threshold: Option<f64>,
    /// The model's version: 1 for every model today. The field exists for TRAIN, which will
    /// replace a model's numbers under a new version.
    pub version: u32,
    /// The `CREATE MODEL` text it was planned from (stored in the catalog file).
    pub sql: String,
}

// Models live in the catalog, which is `Eq`. Every number a definition holds was checked
// finite (no NaN), so equality is reflexive.
impl Eq for ModelDef {}

impl ModelDef {
    /// `logistic_regression` or `linear_regression`.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.model.kind())
    }
}

/// The kind as the syntax names it.
pub fn kind_name(kind: LinearKind) -> &'static str {
    match kind {
        LinearKind::Logistic => "logistic_regression",
        LinearKind::Linear => "linear_regression",
    }
}

fn invalid(model: &str, msg: String) -> CoreError {
    CoreError::InvalidArgument(format!("model {model}: {msg}"))
}

/// The numeric options of a spec, checked (names known, none repeated, right shapes).
struct Options {
    weights: Vec<f64>,
    intercept: f64,
    impute: Option<Vec<f64>>,
    mean: Option<Vec<f64>>,
    std: Option<Vec<f64>>,
    log1p: Vec<(String, String)>,
    threshold: Option<f64>,
}

fn options(spec: &ModelSpec) -> Result<Options, CoreError> {
    let name = &spec.name;
    for (i, (opt, _)) in spec.options.iter().enumerate() {
        if !MODEL_OPTIONS.contains(&opt.as_str()) {
            return Err(invalid(
                name,
                format!("unknown option {opt} (known: {})", MODEL_OPTIONS.join(", ")),
            ));
        }
        if spec.options[..i].iter().any(|(o, _)| o == opt) {
            return Err(invalid(name, format!("option {opt} is given twice")));
        }
    }
    let get = |opt: &str| spec.options.iter().find(|(o, _)| o == opt).map(|(_, v)| v);
    let n = spec.inputs.len();
    let numbers = |opt: &str| -> Result<Option<Vec<f64>>, CoreError> {
        match get(opt) {
            None => Ok(None),
            Some(OptionValue::Numbers(v)) if v.len() == n => Ok(Some(v.clone())),
            Some(OptionValue::Number(x)) if n == 1 => Ok(Some(vec![*x])),
            Some(OptionValue::Numbers(v)) => Err(invalid(
                name,
                format!(
                    "{opt} has {} values for {n} inputs (one per input, in input order)",
                    v.len()
                ),
            )),
            Some(other) => Err(invalid(
                name,
                format!(
                    "{opt} takes a list of numbers, one per input, got {}",
                    other.what()
                ),
            )),
        }
    };
    let number = |opt: &str| -> Result<Option<f64>, CoreError> {
        match get(opt) {
            None => Ok(None),
            Some(OptionValue::Number(x)) => Ok(Some(*x)),
            Some(other) => Err(invalid(
                name,
                format!("{opt} takes one number, got {}", other.what()),
            )),
        }
    };
    let weights = numbers("weights")?
        .ok_or_else(|| invalid(name, "WITH needs weights = (w, …), one per input".into()))?;
    let intercept =
        number("intercept")?.ok_or_else(|| invalid(name, "WITH needs intercept = b".into()))?;
    let log1p = match get("log1p") {
        None => Vec::new(),
        Some(OptionValue::Names(v)) => v.clone(),
        Some(other) => {
            return Err(invalid(
                name,
                format!(
                    "log1p takes a list of inputs as (item.column, …), got {}",
                    other.what()
                ),
            ))
        }
    };
    Ok(Options {
        weights,
        intercept,
        impute: numbers("impute")?,
        mean: numbers("mean")?,
        std: numbers("std")?,
        log1p,
        threshold: number("threshold")?,
    })
}

/// Plans `spec` against `catalog`; `sql` is the text it came from (kept in the definition).
///
/// Errors (each naming the offending model, context, item, column or option):
/// `UnknownContext` / `WrongKind` (the context), `InvalidArgument` (an unknown item or
/// column, a list, kNN or recent item, a column that is not BIGINT, DOUBLE or BOOLEAN,
/// a repeated input, an unknown or repeated option, a tuple of the wrong length, missing
/// weights or intercept, a number the model refuses), `LimitExceeded` (too many inputs).
pub fn plan(spec: &ModelSpec, catalog: &Catalog, sql: String) -> Result<ModelDef, CoreError> {
    let name = &spec.name;
    let context = match catalog.object(&spec.context) {
        Some(Object::Context(c)) => c,
        Some(o) => {
            return Err(CoreError::WrongKind {
                name: spec.context.clone(),
                kind: o.kind(),
                wanted: ObjectKind::Context,
            })
        }
        None => return Err(CoreError::UnknownContext(spec.context.clone())),
    };
    let inputs = resolve_inputs(spec, context)?;
    let opts = options(spec)?;
    let model = linear_model(spec, &inputs, &opts)?;
    let threshold = match (opts.threshold, spec.kind) {
        (Some(t), _) if !t.is_finite() => {
            return Err(invalid(name, format!("threshold {t} is not finite")))
        }
        (Some(t), _) => Some(t),
        (None, LinearKind::Logistic) => Some(DEFAULT_LOGISTIC_THRESHOLD),
        (None, LinearKind::Linear) => None,
    };
    Ok(ModelDef {
        id: 0,
        name: name.clone(),
        context_id: context.id,
        inputs,
        model,
        threshold,
        version: 1,
        sql,
    })
}

/// Each input of `spec` resolved in `context`: an item of it, single (row or features, not a
/// list item), and one of its BIGINT, DOUBLE or BOOLEAN reply columns, none listed twice.
fn resolve_inputs(spec: &ModelSpec, context: &ContextDef) -> Result<Vec<ModelInput>, CoreError> {
    let name = &spec.name;
    if spec.inputs.is_empty() {
        return Err(invalid(name, "a model needs at least one input".into()));
    }
    let mut inputs: Vec<ModelInput> = Vec::with_capacity(spec.inputs.len());
    for (item_name, column_name) in &spec.inputs {
        let input_name = format!("{item_name}.{column_name}");
        if inputs.iter().any(|i| i.name == input_name) {
            return Err(invalid(name, format!("input {input_name} is listed twice")));
        }
        let Some(item) = context.items.iter().position(|i| i.name == *item_name) else {
            return Err(invalid(
                name,
                format!(
                    "input {input_name}: context {} has no item {item_name}",
                    context.name
                ),
            ));
        };
        let it = &context.items[item];
        if it.list || !matches!(it.source, Source::Row { .. } | Source::Features { .. }) {
            return Err(invalid(
                name,
                format!(
                    "input {input_name}: item {item_name} is a list item ({}{}); a model input \
                     needs a single item (row or features, one value per call)",
                    it.source.kind_name(),
                    if it.list {
                        ", keyed by a list item"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let Some(column) = it.columns.iter().position(|c| c.name == *column_name) else {
            let columns: Vec<&str> = it.columns.iter().map(|c| c.name.as_str()).collect();
            return Err(invalid(
                name,
                format!(
                    "input {input_name}: item {item_name} has no column {column_name} (its \
                     columns: {})",
                    columns.join(", ")
                ),
            ));
        };
        let ty = it.columns[column].ty;
        if !matches!(
            ty,
            ColumnType::BigInt | ColumnType::Double | ColumnType::Boolean
        ) {
            return Err(invalid(
                name,
                format!(
                    "input {input_name} is {}: a model input must be BIGINT, DOUBLE or BOOLEAN",
                    ty.sql_name()
                ),
            ));
        }
        inputs.push(ModelInput {
            name: input_name,
            item,
            column,
            ty,
        });
    }
    Ok(inputs)
}

/// The [`LinearModel`] of `spec` over its resolved `inputs`: `log1p` names resolved to flags,
/// defaults applied, every number checked by [`LinearModel::new`].
fn linear_model(
    spec: &ModelSpec,
    inputs: &[ModelInput],
    opts: &Options,
) -> Result<LinearModel, CoreError> {
    let name = &spec.name;
    let mut log1p = vec![false; inputs.len()];
    for (item, column) in &opts.log1p {
        let input_name = format!("{item}.{column}");
        let Some(i) = inputs.iter().position(|x| x.name == input_name) else {
            return Err(invalid(
                name,
                format!("log1p names {input_name}, which is not one of the inputs"),
            ));
        };
        if log1p[i] {
            return Err(invalid(name, format!("log1p names {input_name} twice")));
        }
        log1p[i] = true;
    }
    let n = inputs.len();
    let impute = opts.impute.clone().unwrap_or_else(|| vec![0.0; n]);
    let mean = opts.mean.clone().unwrap_or_else(|| vec![0.0; n]);
    let std = opts.std.clone().unwrap_or_else(|| vec![1.0; n]);
    let linear_inputs = (0..n)
        .map(|i| LinearInput {
            name: inputs[i].name.clone(),
            impute: impute[i],
            log1p: log1p[i],
            mean: mean[i],
            std: std[i],
        })
        .collect();
    LinearModel::new(
        spec.kind,
        linear_inputs,
        opts.weights.clone(),
        opts.intercept,
    )
    .map_err(|e| match e {
        tarn_models::ModelError::LimitExceeded { .. } => {
            CoreError::LimitExceeded(format!("model {name}: {e}"))
        }
        e => invalid(name, e.to_string()),
    })
}
