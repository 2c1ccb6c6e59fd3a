//! The logistic trainer reaches reference fits, whatever its step size, and refuses every bad
//! training set with a specific error.
//!
//! - scikit-learn: tests/fixtures/logistic (made by make.py there with scikit-learn 1.9.1)
//!   holds 5,000 raw rows (NULLs, two log1p inputs), numpy's preprocessing and three fits
//!   (`C` = 1 and 0.01, and `C` = 1 with sample weights). Every coefficient must be within
//!   1e-6 **absolute** of sklearn's (the coefficients are 0.09–0.8 in magnitude, so this is
//!   also ≤ 1.2e-5 relative); the maximum difference is printed (`-- --nocapture`).
//! - An independent Newton solver written here (plain loops, Gaussian elimination with
//!   partial pivoting) on seeded random sets: within 1e-9 absolute, per coefficient.
//! - Step-size invariance: any `step_rows` gives bit-identical coefficients and loss.
//! - The returned model scores each raw training row to exactly the trainer's probability.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tarn_models::limits::MAX_TRAIN_ITERATIONS;
use tarn_models::{
    Impute, LinearKind, LogisticTrainer, ModelError, Scorer, TrainOptions, TrainProgress,
    TrainingSet,
};

const SKLEARN_TOLERANCE: f64 = 1e-6;
const NEWTON_TOLERANCE: f64 = 1e-9;

/// Raw rows with labels and weights, kept by the tests (the trainer consumes its set).
#[derive(Clone)]
struct Rows {
    names: Vec<String>,
    values: Vec<Vec<Option<f64>>>,
    labels: Vec<f64>,
    weights: Vec<f64>,
}

impl Rows {
    fn set(&self, weighted: bool) -> TrainingSet {
        let mut set = TrainingSet::new(self.names.clone(), self.values.len()).unwrap();
        for (i, row) in self.values.iter().enumerate() {
            let weight = if weighted { self.weights[i] } else { 1.0 };
            set.push(row, self.labels[i], weight).unwrap();
        }
        set
    }
}

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/logistic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

/// rows.csv: the inputs (NaN is NULL), then `label` and `weight`.
fn fixture_rows() -> Rows {
    let text = fixture("rows.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let d = header.len() - 2;
    assert_eq!(&header[d..], ["label", "weight"]);
    let mut rows = Rows {
        names: header[..d].iter().map(|s| s.to_string()).collect(),
        values: Vec::new(),
        labels: Vec::new(),
        weights: Vec::new(),
    };
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), d + 2, "{line}");
        let value = |s: &&str| (*s != "NaN").then(|| s.parse::<f64>().unwrap());
        rows.values.push(cells[..d].iter().map(value).collect());
        rows.labels.push(cells[d].parse().unwrap());
        rows.weights.push(cells[d + 1].parse().unwrap());
    }
    assert_eq!(rows.values.len(), 5_000);
    rows
}

/// One line of fits.csv.
struct Fit {
    name: String,
    c: f64,
    weighted: bool,
    /// Intercept, then the coefficients.
    beta: Vec<f64>,
}

fn fixture_fits() -> Vec<Fit> {
    let text = fixture("fits.csv");
    let fits: Vec<Fit> = (text.lines().skip(1))
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            Fit {
                name: cells[0].into(),
                c: cells[1].parse().unwrap(),
                weighted: cells[2] == "1",
                beta: cells[4..].iter().map(|s| s.parse().unwrap()).collect(),
            }
        })
        .collect();
    assert_eq!(fits.len(), 3);
    fits
}

/// The fixture's options: log1p on `amount` and `distance_km`, tight tolerance.
fn fixture_options(rows: &Rows, l2: f64) -> TrainOptions {
    TrainOptions {
        l2,
        tol: 1e-12,
        log1p: (rows.names.iter())
            .map(|n| n == "amount" || n == "distance_km")
            .collect(),
        ..TrainOptions::default()
    }
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn coefficients_equal_scikit_learn() {
    let rows = fixture_rows();
    for fit in fixture_fits() {
        let options = fixture_options(&rows, 1.0 / fit.c);
        let mut trainer = LogisticTrainer::new(rows.set(fit.weighted), options).unwrap();
        let progress = trainer.run().unwrap();
        assert!(
            matches!(progress, TrainProgress::Converged { .. }),
            "{progress:?}"
        );
        let difference = max_difference(trainer.coefficients(), &fit.beta);
        println!(
            "{}: {progress:?}, last max|Δ| {:e}, loss {}, max |ours − sklearn| {difference:e}",
            fit.name,
            trainer.last_step(),
            trainer.loss().unwrap()
        );
        assert!(
            difference <= SKLEARN_TOLERANCE,
            "{}: {difference:e}",
            fit.name
        );
    }
}

#[test]
fn preprocessing_equals_numpy() {
    let rows = fixture_rows();
    let mut trainer = LogisticTrainer::new(rows.set(false), fixture_options(&rows, 1.0)).unwrap();
    trainer.run().unwrap();
    let model = trainer.finish().unwrap();
    let text = fixture("params.csv");
    for (input, line) in model.inputs().iter().zip(text.lines().skip(1)) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(input.name, cells[0]);
        assert_eq!(input.log1p, cells[2] == "1");
        for (ours, numpy) in [
            (input.impute, cells[1]),
            (input.mean, cells[3]),
            (input.std, cells[4]),
        ] {
            let numpy: f64 = numpy.parse().unwrap();
            // numpy sums pairwise, the trainer in 1,024-row chunks: a few ulps apart.
            assert!(
                (ours - numpy).abs() <= 1e-13 * numpy.abs(),
                "{}: {ours} vs {numpy}",
                input.name
            );
        }
    }
}

/// A seeded random set: `d` inputs (input 0 log-normal, trained with log1p), 10 % NULLs in
/// the odd inputs, labels drawn from a logistic model, weights in [0.25, 4).
fn random_rows(seed: u64, n: usize, d: usize) -> Rows {
    let mut rng = StdRng::seed_from_u64(seed);
    let truth: Vec<f64> = (0..=d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut rows = Rows {
        names: (0..d).map(|j| format!("x{j}")).collect(),
        values: Vec::new(),
        labels: Vec::new(),
        weights: Vec::new(),
    };
    for _ in 0..n {
        let row: Vec<Option<f64>> = (0..d)
            .map(|j| match j {
                0 => Some(rng.random_range(-1.0f64..3.0).exp() * 10.0),
                _ if j % 2 == 1 && rng.random_bool(0.1) => None,
                _ => Some(rng.random_range(-5.0..5.0) * j as f64),
            })
            .collect();
        let mut z = truth[0];
        for (j, v) in row.iter().enumerate() {
            let t = v.unwrap_or(0.0);
            z += truth[j + 1]
                * if j == 0 {
                    t.ln() - 3.0
                } else {
                    t / (3.0 * j as f64)
                };
        }
        rows.labels
            .push(f64::from(rng.random_bool(1.0 / (1.0 + (-z).exp()))));
        rows.weights.push(rng.random_range(0.25..4.0));
        rows.values.push(row);
    }
    rows
}

/// The trainer's preprocessing written plainly: per row `(1, x₁ … x_d)`.
// Indexed loops on purpose: the reference reads like the textbook formulas.
#[allow(clippy::needless_range_loop)]
fn reference_inputs(rows: &Rows, log1p: &[bool]) -> Vec<Vec<f64>> {
    let n = rows.values.len();
    let mut x = vec![vec![1.0; rows.names.len() + 1]; n];
    for j in 0..rows.names.len() {
        let present: Vec<f64> = rows.values.iter().filter_map(|r| r[j]).collect();
        let impute = present.iter().sum::<f64>() / present.len() as f64;
        let t: Vec<f64> = (rows.values.iter())
            .map(|r| r[j].unwrap_or(impute))
            .map(|v| if log1p[j] { (1.0 + v).ln() } else { v })
            .collect();
        let mean = t.iter().sum::<f64>() / n as f64;
        let var = t.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        for i in 0..n {
            x[i][j + 1] = (t[i] - mean) / var.sqrt();
        }
    }
    x
}

/// Solves `a·s = b` by Gaussian elimination with partial pivoting.
// Indexed loops on purpose: the reference reads like the textbook formulas.
#[allow(clippy::needless_range_loop)]
fn gauss(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs()))
            .unwrap();
        a.swap(k, p);
        b.swap(k, p);
        for i in k + 1..n {
            let f = a[i][k] / a[k][k];
            for j in k..n {
                a[i][j] -= f * a[k][j];
            }
            b[i] -= f * b[k];
        }
    }
    let mut s = vec![0.0; n];
    for k in (0..n).rev() {
        let tail: f64 = (k + 1..n).map(|j| a[k][j] * s[j]).sum();
        s[k] = (b[k] - tail) / a[k][k];
    }
    s
}

/// Plain Newton on the objective of the module docs, full steps, until they vanish.
// Indexed loops on purpose: the reference reads like the textbook formulas.
#[allow(clippy::needless_range_loop)]
fn reference_fit(x: &[Vec<f64>], rows: &Rows, l2: f64, weighted: bool) -> Vec<f64> {
    let n = x[0].len();
    let mut beta = vec![0.0; n];
    for _ in 0..100 {
        let mut g = vec![0.0; n];
        let mut h = vec![vec![0.0; n]; n];
        for (i, xi) in x.iter().enumerate() {
            let z: f64 = xi.iter().zip(&beta).map(|(v, b)| v * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let s = if weighted { rows.weights[i] } else { 1.0 };
            for a in 0..n {
                g[a] += s * (p - rows.labels[i]) * xi[a];
                for b in 0..n {
                    h[a][b] += s * p * (1.0 - p) * xi[a] * xi[b];
                }
            }
        }
        for k in 1..n {
            g[k] += l2 * beta[k];
            h[k][k] += l2;
        }
        let step = gauss(h, g);
        for (b, s) in beta.iter_mut().zip(&step) {
            *b -= s;
        }
        if step.iter().all(|s| s.abs() < 1e-15) {
            break;
        }
    }
    beta
}

#[test]
fn coefficients_equal_an_independent_newton_solver() {
    for (seed, n, d, l2, weighted) in [
        (0x7a12_1001, 2_000, 5, 0.5, false),
        (0x7a12_1002, 3_000, 12, 0.0, false),
        (0x7a12_1003, 1_500, 3, 10.0, true),
        (0x7a12_1004, 2_500, 7, 1e-3, true),
    ] {
        let rows = random_rows(seed, n, d);
        let log1p: Vec<bool> = (0..d).map(|j| j == 0).collect();
        let expected = reference_fit(&reference_inputs(&rows, &log1p), &rows, l2, weighted);
        let options = TrainOptions {
            l2,
            tol: 1e-13,
            log1p,
            ..TrainOptions::default()
        };
        let mut trainer = LogisticTrainer::new(rows.set(weighted), options).unwrap();
        let progress = trainer.run().unwrap();
        let difference = max_difference(trainer.coefficients(), &expected);
        println!("seed {seed:#x} ({n} × {d}, λ {l2}): {progress:?}, max difference {difference:e}");
        assert!(matches!(progress, TrainProgress::Converged { .. }));
        assert!(
            difference <= NEWTON_TOLERANCE,
            "seed {seed:#x}: {difference:e}"
        );
    }
}

#[test]
fn any_step_size_gives_bit_identical_results() {
    let rows = fixture_rows();
    let train = |step_rows: Option<usize>| {
        let options = TrainOptions {
            step_rows,
            ..fixture_options(&rows, 1.0)
        };
        let mut trainer = LogisticTrainer::new(rows.set(true), options).unwrap();
        let mut steps = 0usize;
        while trainer.step().unwrap() == TrainProgress::Working {
            steps += 1;
        }
        let bits: Vec<u64> = trainer.coefficients().iter().map(|v| v.to_bits()).collect();
        (
            bits,
            trainer.loss().unwrap().to_bits(),
            trainer.iterations(),
            steps,
        )
    };
    let (bits, loss, iterations, default_steps) = train(None);
    for step_rows in [1, 7, 1_023, 1_024, 1_025, 4_999, 5_000] {
        let (b, l, i, steps) = train(Some(step_rows));
        assert_eq!(
            (&b, l, i),
            (&bits, loss, iterations),
            "step_rows {step_rows}"
        );
        // Every pass (one more than the iterations, without halvings) took its share of steps.
        let passes = iterations + 1;
        assert!(
            steps >= passes * 5_000usize.div_ceil(step_rows),
            "{step_rows}: {steps} steps"
        );
    }
    println!("{iterations} iterations, {default_steps} steps at the default step size");
}

#[test]
fn the_model_scores_training_rows_to_the_trainers_probabilities() {
    let rows = fixture_rows();
    let l2 = 1.0;
    let mut trainer = LogisticTrainer::new(rows.set(false), fixture_options(&rows, l2)).unwrap();
    trainer.run().unwrap();
    let fitted = trainer.fitted_probabilities().unwrap();
    let (loss, beta) = (trainer.loss().unwrap(), trainer.coefficients().to_vec());
    let model = trainer.finish().unwrap();
    assert_eq!(model.kind(), LinearKind::Logistic);
    assert_eq!((model.intercept(), model.weights()), (beta[0], &beta[1..]));
    let mut recomputed = 0.5 * l2 * beta[1..].iter().map(|w| w * w).sum::<f64>();
    for (i, row) in rows.values.iter().enumerate() {
        let p = model.score(row).unwrap();
        assert_eq!(
            p.to_bits(),
            fitted[i].to_bits(),
            "row {i}: {p} vs {}",
            fitted[i]
        );
        recomputed -= if rows.labels[i] == 1.0 {
            p.ln()
        } else {
            (1.0 - p).ln()
        };
    }
    assert!(
        (recomputed - loss).abs() <= 1e-10 * loss,
        "{recomputed} vs {loss}"
    );
    // Through the catalog encoding too.
    let decoded = tarn_models::LinearModel::decode(&model.encode()).unwrap();
    assert_eq!(
        decoded.score(&rows.values[0]).unwrap().to_bits(),
        fitted[0].to_bits()
    );
}

// ---- Refusals: each asserts the variant and a key phrase of the message. ----

fn names(n: usize) -> Vec<String> {
    (0..n).map(|j| format!("x{j}")).collect()
}

/// A small valid set over `x0`, `x1`: both classes, values spread.
fn small_set() -> TrainingSet {
    let mut set = TrainingSet::new(names(2), 8).unwrap();
    for i in 0..8 {
        let v = i as f64;
        set.push(
            &[Some(v), Some((v * 3.0) % 5.0)],
            f64::from(i % 3 == 0),
            1.0,
        )
        .unwrap();
    }
    set
}

/// Trains to the end (or the first error).
fn train(set: TrainingSet, options: TrainOptions) -> Result<LogisticTrainer, ModelError> {
    let mut trainer = LogisticTrainer::new(set, options)?;
    trainer.run()?;
    Ok(trainer)
}

fn assert_error<T>(result: Result<T, ModelError>, variant: fn(&ModelError) -> bool, phrase: &str) {
    let Err(err) = result else {
        panic!("expected an error with `{phrase}`")
    };
    let message = err.to_string();
    assert!(variant(&err), "wrong variant: {err:?}");
    assert!(message.contains(phrase), "`{message}` lacks `{phrase}`");
}

fn is_training(e: &ModelError) -> bool {
    matches!(e, ModelError::InvalidTraining(_))
}
fn is_failed(e: &ModelError) -> bool {
    matches!(e, ModelError::TrainingFailed(_))
}
fn is_limit(e: &ModelError) -> bool {
    matches!(e, ModelError::LimitExceeded { .. })
}

#[test]
fn the_small_set_trains() {
    let trainer = train(small_set(), TrainOptions::default()).unwrap();
    assert!(trainer.iterations() > 0 && trainer.finish().is_ok());
}

#[test]
fn no_rows_and_one_class() {
    let empty = TrainingSet::new(names(2), 0).unwrap();
    assert_error(
        train(empty, TrainOptions::default()),
        is_training,
        "no rows",
    );
    for (label, phrase) in [(1.0, "all labels are 1"), (0.0, "all labels are 0")] {
        let mut set = TrainingSet::new(names(1), 3).unwrap();
        for i in 0..3 {
            set.push(&[Some(i as f64)], label, 1.0).unwrap();
        }
        // A row of the other class with weight 0 does not count.
        set.push(&[Some(9.0)], 1.0 - label, 0.0).unwrap();
        assert_error(train(set, TrainOptions::default()), is_training, phrase);
    }
    let mut set = TrainingSet::new(names(1), 2).unwrap();
    set.push(&[Some(1.0)], 1.0, 0.0).unwrap();
    set.push(&[Some(2.0)], 0.0, 0.0).unwrap();
    assert_error(train(set, TrainOptions::default()), is_training, "weight 0");
}

#[test]
fn bad_rows_are_refused_and_leave_the_set_unchanged() {
    let mut set = small_set();
    let before = set.clone();
    for label in [2.0, -1.0, 0.5, f64::NAN] {
        let result = set.push(&[Some(1.0), Some(2.0)], label, 1.0);
        assert_error(result, is_training, "row 8: label");
    }
    for weight in [-1.0, f64::NAN, f64::INFINITY] {
        let result = set.push(&[Some(1.0), Some(2.0)], 1.0, weight);
        assert_error(result, is_training, "sample weight");
    }
    let inf = set.push(&[Some(1.0), Some(f64::NEG_INFINITY)], 1.0, 1.0);
    assert_error(
        inf,
        |e| matches!(e, ModelError::InvalidInput { input, .. } if input == "x1"),
        "row 8",
    );
    let count = set.push(&[Some(1.0)], 1.0, 1.0);
    assert_eq!(
        count,
        Err(ModelError::InputCount {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(set, before);
    // NaN is NULL, as when scoring.
    assert!(set.push(&[Some(f64::NAN), None], 1.0, 1.0).is_ok());
    assert_eq!(set.len(), 9);
}

#[test]
fn bad_names_and_too_many_inputs() {
    let duplicate = TrainingSet::new(vec!["a".into(), "a".into()], 0);
    assert_error(
        duplicate,
        |e| matches!(e, ModelError::Invalid(_)),
        "duplicate",
    );
    let too_many = TrainingSet::new(names(tarn_models::limits::MAX_MODEL_INPUTS + 1), 0);
    assert_error(too_many, is_limit, "inputs");
    // The rows and cells limits are tested on both sides in the crate (they need GiBs here).
}

#[test]
fn bad_options() {
    let with = |change: fn(&mut TrainOptions)| {
        let mut options = TrainOptions::default();
        change(&mut options);
        LogisticTrainer::new(small_set(), options)
    };
    assert_error(with(|o| o.l2 = -0.1), is_training, "l2 is -0.1");
    assert_error(with(|o| o.l2 = f64::NAN), is_training, "l2 is NaN");
    assert_error(with(|o| o.tol = -1.0), is_training, "tol");
    assert_error(with(|o| o.max_iter = 0), is_training, "max_iter");
    assert_error(
        with(|o| o.max_iter = MAX_TRAIN_ITERATIONS + 1),
        is_limit,
        "Newton iterations",
    );
    assert!(with(|o| o.max_iter = MAX_TRAIN_ITERATIONS).is_ok());
    assert_error(with(|o| o.step_rows = Some(0)), is_training, "step_rows");
    assert_error(
        with(|o| o.log1p = vec![true]),
        is_training,
        "1 log1p flags for 2 inputs",
    );
    assert_error(
        with(|o| o.impute = Impute::Fixed(vec![0.0])),
        is_training,
        "1 impute values",
    );
    let nan = with(|o| o.impute = Impute::Fixed(vec![0.0, f64::NAN]));
    assert_error(nan, is_training, "input `x1` is NaN");
}

#[test]
fn preprocessing_refusals_name_the_input() {
    let set = |rows: &[[Option<f64>; 2]]| {
        let mut set = TrainingSet::new(names(2), rows.len()).unwrap();
        for (i, row) in rows.iter().enumerate() {
            set.push(row, f64::from(i % 2 == 0), 1.0).unwrap();
        }
        set
    };
    let all_null = set(&[[Some(1.0), None], [Some(2.0), None]]);
    assert_error(
        train(all_null, TrainOptions::default()),
        is_training,
        "`x1`: no row has a value",
    );
    let constant = set(&[[Some(1.0), Some(4.0)], [Some(2.0), None]]);
    assert_error(
        train(constant, TrainOptions::default()),
        is_training,
        "`x1`: constant",
    );
    let log = TrainOptions {
        log1p: vec![true, false],
        ..TrainOptions::default()
    };
    let below = set(&[[Some(1.0), Some(4.0)], [Some(-1.0), Some(5.0)]]);
    assert_error(
        train(below, log.clone()),
        is_training,
        "`x0`: row 1: log1p of -1",
    );
    let fixed = TrainOptions {
        impute: Impute::Fixed(vec![-2.0, 0.0]),
        ..log
    };
    let null = set(&[[None, Some(4.0)], [Some(1.0), Some(5.0)]]);
    assert_error(
        train(null, fixed),
        is_training,
        "impute value -2 under log1p",
    );
}

#[test]
fn a_singular_hessian_names_the_input() {
    // x1 repeats x0: collinear. Without a penalty the Hessian is singular; with one, not.
    let mut set = TrainingSet::new(names(2), 40).unwrap();
    let mut rng = StdRng::seed_from_u64(0x7a12_1005);
    for i in 0..40 {
        let v = rng.random_range(-3.0..3.0);
        set.push(&[Some(v), Some(v)], f64::from(i % 2 == 0), 1.0)
            .unwrap();
    }
    let unpenalised = TrainOptions {
        l2: 0.0,
        ..TrainOptions::default()
    };
    let result = train(set.clone(), unpenalised);
    assert_error(result, is_failed, "not positive definite at input `x1`");
    let trainer = train(set, TrainOptions::default()).unwrap();
    let w = &trainer.coefficients()[1..];
    assert!(
        (w[0] - w[1]).abs() < 1e-12,
        "the penalty splits the weight evenly: {w:?}"
    );
}

#[test]
fn separable_classes_without_a_penalty() {
    // Perfectly separated classes have no finite optimum: the weight grows each iteration
    // until the Hessian underflows to singular (or max_iter ends it first).
    let mut set = TrainingSet::new(names(1), 4).unwrap();
    for (v, y) in [(-2.0, 0.0), (-1.0, 0.0), (1.0, 1.0), (2.0, 1.0)] {
        set.push(&[Some(v)], y, 1.0).unwrap();
    }
    let options = TrainOptions {
        l2: 0.0,
        max_iter: 20,
        ..TrainOptions::default()
    };
    let mut trainer = LogisticTrainer::new(set.clone(), options).unwrap();
    assert_eq!(trainer.run(), Ok(TrainProgress::MaxIter { iterations: 20 }));
    assert!(
        trainer.coefficients()[1] > 10.0,
        "{:?}",
        trainer.coefficients()
    );
    assert!(
        trainer.finish().is_ok(),
        "a MaxIter result is still a model"
    );
    let options = TrainOptions {
        l2: 0.0,
        max_iter: MAX_TRAIN_ITERATIONS,
        ..TrainOptions::default()
    };
    assert_error(train(set, options), is_failed, "not positive definite");
}

#[test]
fn non_finite_results_are_refused() {
    // Unstandardised values near 1e200: their squares overflow the Hessian.
    let mut set = TrainingSet::new(names(1), 4).unwrap();
    for (v, y) in [(-2e200, 0.0), (1e200, 0.0), (3e200, 1.0), (2e200, 1.0)] {
        set.push(&[Some(v)], y, 1.0).unwrap();
    }
    let raw = TrainOptions {
        standardize: false,
        ..TrainOptions::default()
    };
    assert_error(train(set.clone(), raw), is_failed, "not finite");
    // Standardised, the same values overflow the variance first.
    assert_error(
        train(set, TrainOptions::default()),
        is_training,
        "must be finite",
    );
}

#[test]
fn finish_before_the_end_and_steps_after_an_error() {
    let mut trainer = LogisticTrainer::new(small_set(), TrainOptions::default()).unwrap();
    assert_eq!(trainer.fitted_probabilities(), None, "before preprocessing");
    assert_eq!(trainer.step(), Ok(TrainProgress::Working));
    assert_error(trainer.finish(), is_failed, "finish before training ended");
    let mut set = TrainingSet::new(names(1), 2).unwrap();
    set.push(&[Some(0.5)], 1.0, 1.0).unwrap();
    set.push(&[Some(-0.5)], 0.0, 1.0).unwrap();
    let options = TrainOptions {
        log1p: vec![true],
        impute: Impute::Fixed(vec![0.0]),
        ..TrainOptions::default()
    };
    let mut ok = LogisticTrainer::new(set, options).unwrap();
    let done = ok.run().unwrap();
    assert_eq!(
        ok.step(),
        Ok(done),
        "a finished trainer answers the same again"
    );
    let constant = {
        let mut set = TrainingSet::new(names(1), 2).unwrap();
        set.push(&[Some(3.0)], 1.0, 1.0).unwrap();
        set.push(&[Some(3.0)], 0.0, 1.0).unwrap();
        set
    };
    let mut failing = LogisticTrainer::new(constant, TrainOptions::default()).unwrap();
    let first = failing.step().unwrap_err();
    assert_eq!(
        failing.step().unwrap_err(),
        first,
        "a failed trainer answers the same error"
    );
    assert_eq!(failing.fitted_probabilities(), None, "preprocessing failed");
    assert_error(failing.finish(), is_training, "constant");
}

#[test]
fn a_step_that_raises_the_loss_is_halved() {
    // Unstandardised, unpenalised, one positive far from the rest: the full Newton step of
    // iteration 5 raises the loss from 1.27 to 12.1 (found by a search in numpy).
    let rows = [
        ([-0.3, 2.4], 1.0),
        ([-0.5, 2.0], 0.0),
        ([-11.1, -26.8], 0.0),
        ([7.8, -0.9], 0.0),
        ([1.6, -1.3], 0.0),
        ([0.8, -1.8], 0.0),
    ];
    let mut set = TrainingSet::new(names(2), rows.len()).unwrap();
    for (x, y) in rows {
        set.push(&[Some(x[0]), Some(x[1])], y, 1.0).unwrap();
    }
    let options = TrainOptions {
        l2: 0.0,
        standardize: false,
        max_iter: 8,
        ..TrainOptions::default()
    };
    let mut trainer = LogisticTrainer::new(set, options).unwrap();
    let mut losses = Vec::new();
    while let Ok(TrainProgress::Working) = trainer.step() {
        if losses.last().copied() != trainer.loss() {
            losses.extend(trainer.loss());
        }
    }
    assert!(trainer.halved_steps() > 0, "{losses:?}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
}
