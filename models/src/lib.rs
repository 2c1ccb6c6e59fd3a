//! `tarn-models`: server-side models — definition, import, validation and scoring.
//!
//! Pure computation: no I/O, no clocks, no threads. A model maps one row of named numeric
//! inputs, given in the model's input order as `&[Option<f64>]` (`None` is SQL NULL), to one
//! f64 score. [`Scorer`] is the trait every model kind implements (input names, score);
//! [`Model`] is the enum a caller holds and that dispatches to a kind (Qdrant-style trait +
//! enum). Every model is validated when it is built, so scoring fails only on its inputs:
//! another number of values than inputs ([`ModelError::InputCount`]) or a value the model
//! cannot use ([`ModelError::InvalidInput`]).
//!
//! # Linear and logistic regression ([`LinearModel`])
//!
//! Per input `i`: `tᵢ` = the value, or `imputeᵢ` when it is NULL or NaN (an infinite `tᵢ` is
//! an error); with `log1p`, `tᵢ = ln(1 + tᵢ)`, and `tᵢ ≤ −1` is an error naming the input;
//! then `sᵢ = (tᵢ − meanᵢ)/stdᵢ`. The margin is `z = intercept + Σ wᵢ·sᵢ` in f64, summed left
//! to right from the intercept (an overflow to ±∞ is an error). Linear: the score is `z`.
//! Logistic: `σ(z) = 1/(1 + exp(−z))` for `z ≥ 0` and `exp(z)/(1 + exp(z))` for `z < 0`
//! ([`logistic`]). [`LinearModel::encode`] / [`LinearModel::decode`] give a checksummed,
//! versioned binary form for the catalog (diagram in the `linear` module docs).
//!
//! # Tree ensembles ([`TreeEnsemble`])
//!
//! Imported from XGBoost's JSON model ([`TreeEnsemble::from_xgboost_json`]; objectives
//! `binary:logistic` and `reg:squarederror`, `gbtree`, numerical splits, one output). A score
//! reproduces XGBoost's CPU predictor operation for operation:
//!
//! 1. Each input is rounded to f32 (`x as f32`, to nearest); NULL and NaN are missing. ±∞, and
//!    f64 values beyond the f32 range (they round to ±∞), are an error
//!    ([`ModelError::InvalidInput`]), as XGBoost refuses them when it builds a `DMatrix`.
//! 2. In each tree, from the root: at a split on feature `f` with f32 condition `c`, a missing
//!    value takes the node's default direction (`default_left`); a present value `x` goes left
//!    when `x < c` and right otherwise (so `x == c` goes right). A leaf gives its f32 value.
//! 3. The margin starts at the base margin and adds each tree's leaf value **in f32, in tree
//!    order** (XGBoost's prediction buffer is float32). The base margin is `base_score` for
//!    `reg:squarederror`, and for `binary:logistic` the f32 logit `−ln(1/p − 1)` of
//!    `p = clamp(base_score, 1e−6, 1 − 1e−6)` (`base_score` is stored as a probability).
//! 4. `reg:squarederror`: the score is the margin. `binary:logistic`: the score is XGBoost's
//!    f32 sigmoid, `1/(exp(min(−m, 88.7)) + 1)`.
//!
//! The f32 result is returned widened to f64, so it equals `Booster.predict` on a `DMatrix`
//! with `missing=NaN` up to the last ulp of `expf`/`logf` (the fixture tests measure the
//! difference over 11,000 rows). [`TreeEnsemble::margin`] gives step 3's margin, like
//! `predict(output_margin=True)`.
//!
//! # Training ([`LogisticTrainer`])
//!
//! L2-penalised logistic regression by Newton's method over a [`TrainingSet`] (raw rows in
//! input order, a 0/1 label and a sample weight `sᵢ ≥ 0` each), giving a logistic
//! [`LinearModel`] whose inputs carry the preprocessing, so it scores a training row to
//! exactly the probability the trainer fitted. Details in the `train` module docs.
//!
//! - **Preprocessing**, per input, in a first phase: NULL/NaN → `impute` (the mean of the
//!   non-NULL raw values, or a given value; an input with no value is an error), then `log1p`
//!   where flagged (a value ≤ −1 is an error naming input and row), then, when standardising,
//!   `(t − mean)/std` with the training mean and population std (ddof = 0; a constant input
//!   is an error). Means and std are unweighted.
//! - **Objective** over the preprocessed rows `xᵢ`: minimise
//!   `Σᵢ sᵢ·logloss(yᵢ, σ(b + w·xᵢ)) + (λ/2)·‖w‖²`, the intercept `b` unpenalised. This is
//!   scikit-learn's `LogisticRegression(C=1/λ)` (`C·Σ logloss + ½‖w‖²`, same minimiser).
//! - **Iterations** from `b = 0, w = 0`: a pass accumulates loss, gradient and Hessian over
//!   1,024-row chunks in row order, faer's dense Cholesky (sequential) solves `H·Δ = g`; a
//!   candidate whose loss rises has its step halved (at most 30 times). A Hessian that is not
//!   positive definite (collinear inputs; separable classes with `λ = 0`) is an error.
//! - **Stopping**: converged when `max|Δ| ≤ tol` (the current coefficients are returned),
//!   else after `max_iter` applied steps.
//! - **Steps**: [`LogisticTrainer::step`] does bounded work (some inputs' preprocessing, at
//!   most `step_rows` rows of a pass, or one solve), so a shard can train between requests;
//!   the result is bit-identical for every step size.
//!
//! # Limits
//!
//! Every bound is a named constant in [`limits`] with why it exists and what raising it costs.

mod codec;
mod error;
pub mod limits;
mod linear;
mod names;
mod train;
mod trees;
mod xgboost;

pub use error::ModelError;
pub use linear::{
    logistic, LinearInput, LinearKind, LinearModel, LINEAR_FORMAT_VERSION, LINEAR_MAGIC,
};
pub use train::{Impute, LogisticTrainer, TrainOptions, TrainProgress, TrainingSet};
pub use trees::{TreeEnsemble, TreeObjective};

/// What every model kind does: name its inputs and score one row.
pub trait Scorer {
    /// The input names, in the order [`Scorer::score`] takes their values.
    fn input_names(&self) -> Vec<&str>;

    /// The score of one row, `inputs` in [`Scorer::input_names`] order (`None` is NULL).
    fn score(&self, inputs: &[Option<f64>]) -> Result<f64, ModelError>;
}

/// A model of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Linear or logistic regression.
    Linear(LinearModel),
    /// A gradient-boosted tree ensemble.
    Trees(TreeEnsemble),
}

impl Scorer for Model {
    fn input_names(&self) -> Vec<&str> {
        match self {
            Model::Linear(m) => m.input_names(),
            Model::Trees(m) => m.input_names(),
        }
    }

    fn score(&self, inputs: &[Option<f64>]) -> Result<f64, ModelError> {
        match self {
            Model::Linear(m) => m.score(inputs),
            Model::Trees(m) => m.score(inputs),
        }
    }
}

impl From<LinearModel> for Model {
    fn from(m: LinearModel) -> Model {
        Model::Linear(m)
    }
}

impl From<TreeEnsemble> for Model {
    fn from(m: TreeEnsemble) -> Model {
        Model::Trees(m)
    }
}
