//! The training set ([`TrainingSet`]) and its preprocessing (the first phase of training).

use crate::error::{echo, ModelError};
use crate::limits::{MAX_TRAIN_CELLS, MAX_TRAIN_ROWS};
use crate::names::check_input_names;
use crate::LinearInput;

/// Rows summed together before their sum joins the total (means, variances, and the loss,
/// gradient and Hessian of a Newton pass): chunked summation keeps the rounding error of a
/// sum over millions of rows near that of a sum of `n / TRAIN_CHUNK_ROWS` terms, at one extra
/// addition per chunk. Results depend on this constant, never on the step size.
pub(crate) const TRAIN_CHUNK_ROWS: usize = 1_024;

/// Rows to train on, one column per input: raw values as given (NaN for NULL), a label
/// (0 or 1) and a sample weight per row. Every row is checked when it is pushed; a refused
/// row leaves the set unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    pub(crate) names: Vec<String>,
    /// Per input, one value per row; NaN is NULL.
    pub(crate) columns: Vec<Vec<f64>>,
    pub(crate) labels: Vec<f64>,
    pub(crate) weights: Vec<f64>,
}

impl TrainingSet {
    /// An empty set over inputs `names` (the rules of model input names apply), with room for
    /// `rows_hint` rows (capped at what [`MAX_TRAIN_CELLS`] allows, so a hint allocates no more
    /// than the limit).
    pub fn new(names: Vec<String>, rows_hint: usize) -> Result<TrainingSet, ModelError> {
        check_input_names(names.iter().map(String::as_str))?;
        let rows = rows_hint
            .min(MAX_TRAIN_ROWS)
            .min(MAX_TRAIN_CELLS / names.len());
        Ok(TrainingSet {
            columns: vec![Vec::with_capacity(rows); names.len()],
            names,
            labels: Vec::with_capacity(rows),
            weights: Vec::with_capacity(rows),
        })
    }

    /// Adds one row: `values` in input order (`None` or NaN is NULL, as when scoring), `label`
    /// exactly 0 or 1, `weight` finite and ≥ 0 (1 for an unweighted row).
    pub fn push(
        &mut self,
        values: &[Option<f64>],
        label: f64,
        weight: f64,
    ) -> Result<(), ModelError> {
        ModelError::check_input_count(self.names.len(), values.len())?;
        let row = self.labels.len();
        check_room(row + 1, self.names.len())?;
        if label != 0.0 && label != 1.0 {
            return Err(ModelError::InvalidTraining(format!(
                "row {row}: label {label}: a label must be 0 or 1"
            )));
        }
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(ModelError::InvalidTraining(format!(
                "row {row}: sample weight {weight}: a weight must be finite and >= 0"
            )));
        }
        for (name, value) in self.names.iter().zip(values) {
            if value.is_some_and(f64::is_infinite) {
                return Err(ModelError::InvalidInput {
                    input: echo(name),
                    reason: format!("row {row}: {} is not a finite number", value.unwrap()),
                });
            }
        }
        for (column, value) in self.columns.iter_mut().zip(values) {
            column.push(value.unwrap_or(f64::NAN));
        }
        self.labels.push(label);
        self.weights.push(weight);
        Ok(())
    }

    /// Rows pushed.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The input names, in the order rows give their values.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Refuses a set the trainer cannot fit: no rows, or one class only among the rows of
    /// positive weight (the likelihood has no finite optimum without both classes).
    pub(crate) fn check_classes(&self) -> Result<(), ModelError> {
        if self.is_empty() {
            return Err(ModelError::InvalidTraining(
                "the training set has no rows".into(),
            ));
        }
        let weighted = || {
            self.labels
                .iter()
                .zip(&self.weights)
                .filter(|(_, &w)| w > 0.0)
        };
        let ones = weighted().filter(|(&y, _)| y == 1.0).count();
        let zeros = weighted().count() - ones;
        match (zeros, ones) {
            (0, 0) => Err(ModelError::InvalidTraining(
                "every row has sample weight 0".into(),
            )),
            (0, _) => Err(ModelError::InvalidTraining(
                "all labels are 1 (of rows with weight > 0): logistic regression needs both \
                 classes"
                    .into(),
            )),
            (_, 0) => Err(ModelError::InvalidTraining(
                "all labels are 0 (of rows with weight > 0): logistic regression needs both \
                 classes"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Refuses `rows` rows of `inputs` values beyond [`MAX_TRAIN_ROWS`] or [`MAX_TRAIN_CELLS`].
fn check_room(rows: usize, inputs: usize) -> Result<(), ModelError> {
    ModelError::check_limit("training rows", rows, MAX_TRAIN_ROWS)?;
    let cells = rows.saturating_mul(inputs);
    ModelError::check_limit("training values (rows × inputs)", cells, MAX_TRAIN_CELLS)
}

/// How one input is preprocessed: the options' part of a [`LinearInput`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnPlan {
    pub log1p: bool,
    /// The impute value, or `None` for the mean of the non-NULL training values.
    pub impute: Option<f64>,
    pub standardize: bool,
}

/// Preprocesses one column in place, exactly as [`crate::LinearModel`] scores (impute, log1p,
/// `(t − mean)/std`, the same operations in the same order, so scores reproduce the training
/// values bit for bit), and returns the input the model will carry.
pub(crate) fn prepare_column(
    name: &str,
    column: &mut [f64],
    plan: ColumnPlan,
) -> Result<LinearInput, ModelError> {
    let bad =
        |reason: String| ModelError::InvalidTraining(format!("input `{}`: {reason}", echo(name)));
    let impute = match plan.impute {
        Some(value) => value,
        None => mean_of_present(column).ok_or_else(|| {
            bad("no row has a value (all are NULL): its impute mean is undefined".into())
        })?,
    };
    if plan.log1p && impute <= -1.0 {
        return Err(bad(format!(
            "impute value {impute} under log1p: log1p needs a value > -1"
        )));
    }
    for (row, v) in column.iter_mut().enumerate() {
        let t = if v.is_nan() { impute } else { *v };
        *v = if plan.log1p {
            if t <= -1.0 {
                return Err(bad(format!(
                    "row {row}: log1p of {t} is undefined: log1p needs a value > -1"
                )));
            }
            t.ln_1p()
        } else {
            t
        };
    }
    let (mean, std) = if plan.standardize {
        moments(column).map_err(bad)?
    } else {
        (0.0, 1.0)
    };
    for v in column.iter_mut() {
        *v = (*v - mean) / std;
    }
    Ok(LinearInput {
        name: name.to_owned(),
        impute,
        log1p: plan.log1p,
        mean,
        std,
    })
}

/// The mean of the non-NaN values (chunked sum), or `None` when every value is NaN.
fn mean_of_present(column: &[f64]) -> Option<f64> {
    let present = column.iter().filter(|v| !v.is_nan()).count();
    let sum = chunked_sum(column.iter().copied().filter(|v| !v.is_nan()));
    (present > 0).then(|| sum / present as f64)
}

/// Mean and population standard deviation (two passes: the mean, then the mean squared
/// deviation from it). A constant column (every value equal) is refused: it carries nothing
/// a model can use, and its std is 0 (or, after rounding the mean, a tiny number that would
/// blow its standardised values up). Non-finite moments (values near the f64 range) too.
fn moments(column: &[f64]) -> Result<(f64, f64), String> {
    let first = column[0];
    if column.iter().all(|&v| v == first) {
        return Err(format!(
            "constant: every training value is {first} after imputation and log1p, so its \
             std is 0 and it cannot be standardised (drop the input)"
        ));
    }
    let n = column.len() as f64;
    let mean = chunked_sum(column.iter().copied()) / n;
    let var = chunked_sum(column.iter().map(|&v| (v - mean) * (v - mean))) / n;
    let std = var.sqrt();
    if !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(format!(
            "mean {mean} and std {std} of the training values: they must be finite and the \
             std > 0 (values too large in magnitude?)"
        ));
    }
    Ok((mean, std))
}

/// Σ of `values`: each [`TRAIN_CHUNK_ROWS`] consecutive values summed in order, then the
/// chunk sums in order.
pub(crate) fn chunked_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut total, mut chunk, mut in_chunk) = (0.0, 0.0, 0);
    for v in values {
        chunk += v;
        in_chunk += 1;
        if in_chunk == TRAIN_CHUNK_ROWS {
            total += chunk;
            (chunk, in_chunk) = (0.0, 0);
        }
    }
    total + chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: ColumnPlan = ColumnPlan {
        log1p: false,
        impute: None,
        standardize: true,
    };

    #[test]
    fn chunked_sum_is_exact_on_integers_and_chunks_at_the_boundary() {
        for n in [
            0,
            1,
            TRAIN_CHUNK_ROWS - 1,
            TRAIN_CHUNK_ROWS,
            3 * TRAIN_CHUNK_ROWS + 5,
        ] {
            let sum = chunked_sum((0..n).map(|i| i as f64));
            assert_eq!(sum, (n * n.saturating_sub(1) / 2) as f64, "{n}");
        }
        // A chunk of 1 then three chunks of 1e-16s: a running sum from 1 would drop every
        // 1e-16 (half an ulp of 1 is 1.1e-16); chunk sums keep them.
        let first = std::iter::once(1.0).chain(std::iter::repeat_n(0.0, TRAIN_CHUNK_ROWS - 1));
        let values = first.chain(std::iter::repeat_n(1e-16, 3 * TRAIN_CHUNK_ROWS));
        let expected = 1.0 + 3.0 * TRAIN_CHUNK_ROWS as f64 * 1e-16;
        assert!((chunked_sum(values) - expected).abs() <= f64::EPSILON);
        let plain: f64 = std::iter::repeat_n(1e-16, 3 * TRAIN_CHUNK_ROWS).fold(1.0, |a, v| a + v);
        assert_eq!(plain, 1.0);
    }

    #[test]
    fn room_on_both_sides_of_each_limit() {
        assert!(check_room(MAX_TRAIN_ROWS, 1).is_ok());
        let rows = check_room(MAX_TRAIN_ROWS + 1, 1).unwrap_err();
        assert!(matches!(
            rows,
            ModelError::LimitExceeded {
                what: "training rows",
                ..
            }
        ));
        assert!(check_room(MAX_TRAIN_CELLS / 8, 8).is_ok());
        let cells = check_room(MAX_TRAIN_CELLS / 8 + 1, 8).unwrap_err();
        assert!(cells.to_string().contains("rows × inputs"), "{cells}");
    }

    #[test]
    fn impute_log1p_and_moments() {
        let mut column = vec![f64::NAN, 0.0, 2.0, f64::NAN];
        let plan = ColumnPlan {
            log1p: true,
            ..PLAN
        };
        let input = prepare_column("x", &mut column, plan).unwrap();
        assert_eq!(input.impute, 1.0);
        let t = [2f64.ln(), 0.0, 3f64.ln(), 2f64.ln()];
        let mean = (t[0] + t[1] + t[2] + t[3]) / 4.0;
        assert_eq!(input.mean, mean);
        let var: f64 = t.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 4.0;
        assert!((input.std - var.sqrt()).abs() < 1e-15);
        assert_eq!(column[1], (0.0 - input.mean) / input.std);
    }

    #[test]
    fn refusals_name_the_input() {
        let message = |column: &mut [f64], plan| {
            prepare_column("amount", column, plan)
                .unwrap_err()
                .to_string()
        };
        let all_null = message(&mut [f64::NAN, f64::NAN], PLAN);
        assert!(all_null.contains("`amount`") && all_null.contains("all are NULL"));
        let constant = message(&mut [0.1, f64::NAN, 0.1], PLAN);
        assert!(constant.contains("constant"), "{constant}");
        let log = message(
            &mut [3.0, -1.0],
            ColumnPlan {
                log1p: true,
                ..PLAN
            },
        );
        assert!(log.contains("row 1") && log.contains("log1p"), "{log}");
        let huge = message(&mut [1e300, -1e300], PLAN);
        assert!(huge.contains("finite"), "{huge}");
        // Unstandardised, a constant column is kept as it is (mean 0, std 1).
        let mut column = [0.1, f64::NAN];
        let plan = ColumnPlan {
            standardize: false,
            ..PLAN
        };
        let input = prepare_column("c", &mut column, plan).unwrap();
        assert_eq!((input.mean, input.std, column), (0.0, 1.0, [0.1, 0.1]));
    }
}
