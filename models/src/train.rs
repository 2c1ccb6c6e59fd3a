//! Training L2-penalised logistic regression by Newton's method, in bounded steps:
//! [`LogisticTrainer`] over a [`TrainingSet`], giving a [`LinearModel`].
//!
//! # Preprocessing (the first phase)
//!
//! Per input, over all rows of the set, exactly as [`LinearModel`] scores:
//!
//! 1. `impute` = the given value ([`Impute::Fixed`]) or the mean of the input's non-NULL raw
//!    values ([`Impute::Mean`]; unweighted, as scikit-learn's `SimpleImputer`). An input with
//!    no non-NULL value has no mean: an error naming it. NULL and NaN values become `impute`.
//! 2. With `log1p`: `t = ln(1 + t)`; a value ≤ −1 is an error naming the input and the row.
//! 3. With `standardize`: `mean` and the population std (`√(Σ(t − mean)²/n)`, ddof = 0,
//!    unweighted, as `StandardScaler`) of the transformed values; a constant input (every
//!    value equal, std 0) is an error naming it. Without: `mean = 0`, `std = 1`.
//!    Each value becomes `x = (t − mean)/std`.
//!
//! Sums over rows add 1,024-row chunks (`TRAIN_CHUNK_ROWS`) in order. The returned model's inputs
//! carry these `impute`, `log1p`, `mean` and `std`, so it scores a training row from its raw
//! values to exactly (bit for bit) the probability the trainer computed.
//!
//! # Objective
//!
//! Over the preprocessed rows `xᵢ` with labels `yᵢ ∈ {0, 1}` and sample weights `sᵢ ≥ 0`
//! (1 when unweighted), with `λ = l2 ≥ 0`, minimise over the intercept `b` and weights `w`
//!
//! ```text
//! L(b, w) = Σᵢ sᵢ·logloss(yᵢ, σ(b + w·xᵢ)) + (λ/2)·‖w‖²,
//! logloss(y, p) = −y·ln p − (1 − y)·ln(1 − p)
//! ```
//!
//! The intercept is always fitted and never penalised. scikit-learn's
//! `LogisticRegression(C=C)` (L2, `l1_ratio=0`, `fit_intercept=True`) minimises
//! `C·Σᵢ sᵢ·logloss + ½‖w‖²`, which has the same minimiser when `λ = 1/C`.
//!
//! # Newton iterations
//!
//! From `b = 0, w = 0`: a pass over the rows accumulates `L`, its gradient `g` and its Hessian
//! `H` ((d+1)×(d+1), `Σ sᵢ·pᵢ(1 − pᵢ)·x̃ᵢx̃ᵢᵀ + λ` on the weights' diagonal, `x̃ = (1, x)`),
//! each 1,024-row chunk summed row by row, then the chunks in order. Then
//! `H·Δ = g` is solved with faer's dense Cholesky (LLT, sequential). A Hessian that is not
//! positive definite — a pivot ≤ 0, or below `1e-13` of its diagonal entry (singular up to
//! rounding) — is [`ModelError::TrainingFailed`] naming the input of the pivot: inputs that
//! are collinear, or (with `λ = 0`) classes that are separable; a penalty `λ > 0` cures both.
//! No regularised retry is made: a model fitted to a singular problem would depend on the
//! retry's rule, not on the data.
//!
//! **Stopping:** when the step's largest component `max|Δ|` is ≤ `tol`, training has
//! converged ([`TrainProgress::Converged`]) and the current coefficients are the result (the
//! step is not applied: at quadratic convergence they are within about `max|Δ|` of the
//! optimum). Otherwise, after `max_iter` applied steps: [`TrainProgress::MaxIter`]. Otherwise
//! the candidate `(b, w) − t·Δ`, `t = 1`, is evaluated by the next pass (which also gives its
//! gradient and Hessian); if its loss exceeds the current one by more than `1e-12·max(|L|, 1)`
//! (rounding), or is not finite, `t` is halved and the candidate evaluated again, at most 30
//! times (then [`ModelError::TrainingFailed`]). An accepted candidate is one iteration.
//!
//! # Steps
//!
//! [`LogisticTrainer::step`] does a bounded amount of work and returns: preparing inputs
//! (at least one whole input), accumulating at most `step_rows` rows of a pass (default:
//! [`TRAIN_STEP_MADDS`] over the cost of one row), or one solve. Where steps cut a pass never
//! changes a result: every sum is ordered by rows and chunks alone, so any `step_rows` gives
//! bit-identical coefficients.

mod newton;
mod set;

pub use set::TrainingSet;

use crate::error::{echo, ModelError};
use crate::limits::{MAX_TRAIN_ITERATIONS, TRAIN_STEP_MADDS};
use crate::{logistic, LinearInput, LinearKind, LinearModel};
use newton::{margin, newton_step, Accumulator};
use set::{prepare_column, ColumnPlan};

/// A candidate whose loss exceeds the current one by at most this fraction of `max(|L|, 1)`
/// is accepted: near the optimum a Newton step changes the loss by less than its rounding
/// error (~1e-16 relative per chunk sum), and refusing such a step would halve it for nothing.
const LOSS_SLACK: f64 = 1e-12;

/// Halvings of one Newton step before training fails: 2^−30 of a step is below any `tol`
/// worth asking for, so a loss that still increases means the direction is not a descent one.
const MAX_STEP_HALVINGS: usize = 30;

/// The time of one row's `exp` and `ln` calls (two σ, one softplus), in multiply-adds: with
/// few inputs they dominate a row (86–106 ns per row at 8 inputs, of which ~40 ns are
/// the 63 multiply-adds), so the default step size counts them.
const ROW_TRANSCENDENTAL_MADDS: usize = 100;

/// Operations per row and input of preparation (impute and log1p, mean, variance, standardise),
/// to convert the step budget into inputs per step.
const PREPARE_OPS_PER_VALUE: usize = 5;

/// What NULLs of an input become.
#[derive(Debug, Clone, PartialEq)]
pub enum Impute {
    /// The mean of the input's non-NULL raw training values.
    Mean,
    /// One value per input (before log1p), e.g. those of an earlier model.
    Fixed(Vec<f64>),
}

/// How to train (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// The penalty `λ` on the weights (never the intercept); finite, ≥ 0. scikit-learn's `C`
    /// is `1/λ`.
    pub l2: f64,
    /// Most Newton iterations, 1 to [`MAX_TRAIN_ITERATIONS`].
    pub max_iter: usize,
    /// Converged when the largest component of a Newton step is ≤ `tol` (finite, ≥ 0).
    pub tol: f64,
    /// Standardise inputs by their training mean and population std.
    pub standardize: bool,
    /// Per input, whether log1p applies; empty for none.
    pub log1p: Vec<bool>,
    /// What NULLs become.
    pub impute: Impute,
    /// Rows accumulated per step; `None` for [`TRAIN_STEP_MADDS`] over the cost of a row.
    pub step_rows: Option<usize>,
}

impl Default for TrainOptions {
    /// `l2 = 1` (scikit-learn's default `C = 1`), 100 iterations, `tol = 1e-10`, standardised,
    /// no log1p, mean imputation, the default step size.
    fn default() -> TrainOptions {
        TrainOptions {
            l2: 1.0,
            max_iter: 100,
            tol: 1e-10,
            standardize: true,
            log1p: Vec::new(),
            impute: Impute::Mean,
            step_rows: None,
        }
    }
}

/// Where training is after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainProgress {
    /// More steps are needed.
    Working,
    /// A Newton step's `max|Δ|` was ≤ `tol` after `iterations` applied steps.
    Converged { iterations: usize },
    /// `max_iter` steps were applied without converging.
    MaxIter { iterations: usize },
}

/// What the next step does.
#[derive(Debug, Clone)]
enum Phase {
    /// Preprocess inputs from this one on.
    Prepare {
        input: usize,
    },
    /// Accumulate the pass at `candidate` from this row on.
    Pass {
        row: usize,
    },
    /// Solve the Newton system of the accepted pass.
    Solve,
    Done(TrainProgress),
    Failed(ModelError),
}

/// A steppable Newton solver for L2-penalised logistic regression (module docs).
#[derive(Debug, Clone)]
pub struct LogisticTrainer {
    set: TrainingSet,
    plans: Vec<ColumnPlan>,
    inputs: Vec<LinearInput>,
    l2: f64,
    max_iter: usize,
    tol: f64,
    step_rows: usize,
    inputs_per_step: usize,
    /// The accepted coefficients: intercept, then one weight per input.
    beta: Vec<f64>,
    /// The loss at `beta`, once the first pass is done.
    loss: Option<f64>,
    candidate: Vec<f64>,
    direction: Vec<f64>,
    scale: f64,
    halvings: usize,
    /// Halvings over the whole run.
    halved: usize,
    last_step: f64,
    iterations: usize,
    acc: Accumulator,
    /// One row's `(1, x)`.
    row: Vec<f64>,
    phase: Phase,
}

impl LogisticTrainer {
    /// A trainer over `set` (consumed: preparation standardises its values in place). Checks
    /// the options and the classes here; preprocessing errors come from [`Self::step`].
    pub fn new(set: TrainingSet, options: TrainOptions) -> Result<LogisticTrainer, ModelError> {
        set.check_classes()?;
        let d = set.names.len();
        let plans = check_options(&options, &set.names)?;
        let n = d + 1;
        // One row of a pass: the Hessian's upper triangle, the gradient, the margin, and
        // four exp/ln (about 100 multiply-adds' time, measured at 8 inputs).
        let row_cost = n * (n + 1) / 2 + 2 * n + ROW_TRANSCENDENTAL_MADDS;
        let step_rows = options
            .step_rows
            .unwrap_or((TRAIN_STEP_MADDS / row_cost).max(1));
        let inputs_per_step =
            (step_rows.saturating_mul(row_cost) / (PREPARE_OPS_PER_VALUE * set.len())).max(1);
        Ok(LogisticTrainer {
            plans,
            inputs: Vec::with_capacity(d),
            l2: options.l2,
            max_iter: options.max_iter,
            tol: options.tol,
            step_rows,
            inputs_per_step,
            beta: vec![0.0; n],
            loss: None,
            candidate: vec![0.0; n],
            direction: vec![0.0; n],
            scale: 1.0,
            halvings: 0,
            halved: 0,
            last_step: f64::INFINITY,
            iterations: 0,
            acc: Accumulator::new(n),
            row: vec![1.0; n],
            phase: Phase::Prepare { input: 0 },
            set,
        })
    }

    /// One bounded unit of work (module docs, "Steps"). After training ended, returns the same
    /// outcome again: the same progress, or the same error.
    pub fn step(&mut self) -> Result<TrainProgress, ModelError> {
        let next = match self.phase {
            Phase::Prepare { input } => self.prepare(input),
            Phase::Pass { row } => self.pass(row),
            Phase::Solve => self.solve(),
            Phase::Done(progress) => return Ok(progress),
            Phase::Failed(ref error) => return Err(error.clone()),
        };
        match next {
            Ok(phase) => {
                self.phase = phase;
                match self.phase {
                    Phase::Done(progress) => Ok(progress),
                    _ => Ok(TrainProgress::Working),
                }
            }
            Err(error) => {
                self.phase = Phase::Failed(error.clone());
                Err(error)
            }
        }
    }

    /// Steps until training ends (unbounded work: for callers that need not share the CPU).
    pub fn run(&mut self) -> Result<TrainProgress, ModelError> {
        loop {
            match self.step()? {
                TrainProgress::Working => {}
                done => return Ok(done),
            }
        }
    }

    /// Newton iterations applied so far.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// The objective `L` at the current coefficients, once the first pass is done.
    pub fn loss(&self) -> Option<f64> {
        self.loss
    }

    /// The current coefficients in standardised space: the intercept, then one weight per
    /// input (all 0 before the first pass).
    pub fn coefficients(&self) -> &[f64] {
        &self.beta
    }

    /// How many times a Newton step was halved because the loss increased, over the run.
    pub fn halved_steps(&self) -> usize {
        self.halved
    }

    /// `max|Δ|` of the last Newton step solved (∞ before the first).
    pub fn last_step(&self) -> f64 {
        self.last_step
    }

    /// The fitted probability of every training row at the current coefficients, computed by
    /// the code the passes use (`None` until preprocessing is done, or if it failed).
    pub fn fitted_probabilities(&self) -> Option<Vec<f64>> {
        // Also after a failed preparation: its columns are half standardised.
        if self.inputs.len() < self.set.names.len() {
            return None;
        }
        let mut x = self.row.clone();
        let probabilities = (0..self.set.len())
            .map(|r| {
                self.gather(r, &mut x);
                logistic(margin(&self.beta, &x))
            })
            .collect();
        Some(probabilities)
    }

    /// The fitted model (kind logistic) once training ended, converged or not; its inputs
    /// carry the preprocessing used. Before the end: [`ModelError::TrainingFailed`].
    pub fn finish(self) -> Result<LinearModel, ModelError> {
        match self.phase {
            Phase::Done(_) => {}
            Phase::Failed(error) => return Err(error),
            _ => {
                return Err(ModelError::TrainingFailed(
                    "finish before training ended: step until Converged or MaxIter".into(),
                ))
            }
        }
        let weights = self.beta[1..].to_vec();
        LinearModel::new(LinearKind::Logistic, self.inputs, weights, self.beta[0])
    }
}

impl LogisticTrainer {
    /// Preprocesses inputs `first..` (at least one, at most `inputs_per_step`).
    fn prepare(&mut self, first: usize) -> Result<Phase, ModelError> {
        let d = self.set.names.len();
        let end = (first + self.inputs_per_step).min(d);
        for j in first..end {
            let input =
                prepare_column(&self.set.names[j], &mut self.set.columns[j], self.plans[j])?;
            self.inputs.push(input);
        }
        if end < d {
            return Ok(Phase::Prepare { input: end });
        }
        self.acc.reset();
        Ok(Phase::Pass { row: 0 })
    }

    /// `(1, x)` of row `r` into `x`.
    fn gather(&self, r: usize, x: &mut [f64]) {
        for (v, column) in x[1..].iter_mut().zip(&self.set.columns) {
            *v = column[r];
        }
    }

    /// Accumulates rows `first..` of the pass at `candidate` (at most `step_rows`).
    fn pass(&mut self, first: usize) -> Result<Phase, ModelError> {
        let rows = self.set.len();
        let end = first.saturating_add(self.step_rows).min(rows);
        let mut x = std::mem::take(&mut self.row);
        for r in first..end {
            self.gather(r, &mut x);
            let z = margin(&self.candidate, &x);
            self.acc
                .add_row(&x, z, self.set.labels[r], self.set.weights[r]);
        }
        self.row = x;
        if end < rows {
            return Ok(Phase::Pass { row: end });
        }
        self.acc.end_chunk();
        self.acc.add_penalty(self.l2, &self.candidate);
        self.judge()
    }

    /// After a whole pass: accept the candidate (then solve) or halve its step.
    fn judge(&mut self) -> Result<Phase, ModelError> {
        let loss = self.acc.loss;
        if let Some(current) = self.loss {
            // A NaN loss is no decrease either.
            let decreased = loss <= current + LOSS_SLACK * current.abs().max(1.0);
            if !decreased {
                return self.halve(loss);
            }
            self.iterations += 1;
        }
        if !(loss.is_finite() && self.acc.is_finite()) {
            return Err(ModelError::TrainingFailed(format!(
                "the loss ({loss}), gradient or Hessian is not finite at iteration {}: values \
                 too large in magnitude (standardise the inputs?)",
                self.iterations
            )));
        }
        std::mem::swap(&mut self.beta, &mut self.candidate);
        self.loss = Some(loss);
        Ok(Phase::Solve)
    }

    /// The candidate's loss was higher: try half the step.
    fn halve(&mut self, loss: f64) -> Result<Phase, ModelError> {
        self.halvings += 1;
        self.halved += 1;
        if self.halvings > MAX_STEP_HALVINGS {
            return Err(ModelError::TrainingFailed(format!(
                "the loss did not decrease along the Newton direction at iteration {} \
                 ({} at the current coefficients, {loss} at 2^-{MAX_STEP_HALVINGS} of the step)",
                self.iterations,
                self.loss.unwrap_or(f64::NAN)
            )));
        }
        self.scale *= 0.5;
        self.move_candidate();
        Ok(Phase::Pass { row: 0 })
    }

    /// `candidate = beta − scale·direction`, and a new pass.
    fn move_candidate(&mut self) {
        for ((c, b), d) in self
            .candidate
            .iter_mut()
            .zip(&self.beta)
            .zip(&self.direction)
        {
            *c = b - self.scale * d;
        }
        self.acc.reset();
    }

    /// Solves the Newton system of the accepted pass; stops or starts the next pass.
    fn solve(&mut self) -> Result<Phase, ModelError> {
        let delta = newton_step(&self.acc.hessian, &self.acc.gradient)
            .map_err(|pivot| self.not_positive_definite(pivot))?;
        let largest = delta.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        if !largest.is_finite() {
            return Err(ModelError::TrainingFailed(format!(
                "the Newton step is not finite at iteration {}",
                self.iterations
            )));
        }
        self.last_step = largest;
        let iterations = self.iterations;
        if largest <= self.tol {
            return Ok(Phase::Done(TrainProgress::Converged { iterations }));
        }
        if iterations >= self.max_iter {
            return Ok(Phase::Done(TrainProgress::MaxIter { iterations }));
        }
        self.direction = delta;
        self.scale = 1.0;
        self.halvings = 0;
        self.move_candidate();
        Ok(Phase::Pass { row: 0 })
    }

    fn not_positive_definite(&self, pivot: usize) -> ModelError {
        let at = match pivot {
            0 => "the intercept".to_owned(),
            j => format!("input `{}`", echo(&self.set.names[j - 1])),
        };
        ModelError::TrainingFailed(format!(
            "the Hessian is not positive definite at {at} (pivot {pivot}, iteration {}): \
             collinear inputs, or separable classes without a penalty; use l2 > 0 or drop \
             the input",
            self.iterations
        ))
    }
}

/// Checks the options against the inputs `names`; returns each input's preprocessing.
fn check_options(options: &TrainOptions, names: &[String]) -> Result<Vec<ColumnPlan>, ModelError> {
    let invalid = |what: String| Err(ModelError::InvalidTraining(what));
    let d = names.len();
    if !(options.l2.is_finite() && options.l2 >= 0.0) {
        return invalid(format!(
            "l2 is {}: the penalty must be finite and >= 0",
            options.l2
        ));
    }
    if !(options.tol.is_finite() && options.tol >= 0.0) {
        return invalid(format!(
            "tol is {}: it must be finite and >= 0",
            options.tol
        ));
    }
    if options.max_iter == 0 {
        return invalid("max_iter is 0: at least one iteration is needed".into());
    }
    ModelError::check_limit("Newton iterations", options.max_iter, MAX_TRAIN_ITERATIONS)?;
    if options.step_rows == Some(0) {
        return invalid("step_rows is 0: a step accumulates at least one row".into());
    }
    if !options.log1p.is_empty() && options.log1p.len() != d {
        return invalid(format!(
            "{} log1p flags for {d} inputs",
            options.log1p.len()
        ));
    }
    let impute: Vec<Option<f64>> = match &options.impute {
        Impute::Mean => vec![None; d],
        Impute::Fixed(values) if values.len() != d => {
            return invalid(format!("{} impute values for {d} inputs", values.len()))
        }
        Impute::Fixed(values) => {
            if let Some(j) = values.iter().position(|v| !v.is_finite()) {
                let name = echo(&names[j]);
                return invalid(format!("impute value of input `{name}` is {}", values[j]));
            }
            values.iter().copied().map(Some).collect()
        }
    };
    let plans = (0..d)
        .map(|j| ColumnPlan {
            log1p: options.log1p.get(j).copied().unwrap_or(false),
            impute: impute[j],
            standardize: options.standardize,
        })
        .collect();
    Ok(plans)
}
